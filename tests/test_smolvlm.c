/* test_smolvlm.c: SmolVLM (clip.projector_type "idefics3") end to end
 * against the float64 references of the Hugging Face pipeline
 * (tests/data/smolvlm/, see its README): per image the tile pixels bit for
 * bit (sha256 of the float32 tensor), the tile geometry, the image
 * embeddings within 1e-4, the prompt ids with the processor's expansion,
 * the first position's top 10, 16 greedy tokens and their log-probs, and
 * teacher-forced scores of three continuations; for the F32 and the Q8_0
 * text model, and the text-only prompt. F32 must match to 1e-3 with
 * identical tokens. Q8_0 (we quantize activations as llama.cpp does, the
 * reference does not): the first greedy token identical, log-probs within
 * TOL_Q8 while the greedy paths agree. Also: a projector made for another
 * text width is refused. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/arch.h"
#include "models/idefics3.h"
#include "rlaifv.h"
#include "src/api_internal.h"
#include "src/bestofn.h"
#include "src/chat.h"
#include "src/prompt.h"
#include "tests/vlmcheck.h"
#include "tests/testutil.h"

#define TOL_EMBD 1e-4
#define TOL_F32  1e-3
#define TOL_Q8   0.15
#define IMAGE_ID 983 /* <image> in the reference ids: where the rows go */

#define MMPROJ "smolvlm/tiny-smolvlm-mmproj-f32.gguf"

typedef struct image_case {
	const char *file; /* under tests/data */
	const char *ref;  /* the reference's image name */
} image_case;

static const image_case images[] = {
    {"shapes_64x48.png", "shapes_64x48.png"},
    {"smolvlm/wide_200x80.png", "wide_200x80.png"},
    {"smolvlm/small_40x28.png", "small_40x28.png"},
    /* we decode JPEGs with stb_image: its reference starts from stb's pixels */
    {"shapes_100x80.jpg", "shapes_100x80.jpg.stb-decoded"},
};

static tu_json *load_ref(const char *text, const char *image)
{
	char name[256];
	snprintf(name, sizeof(name), "smolvlm/ref-hf-smolvlm-text-%s.mmproj-f32.%s.describe.json",
	         text, image);
	tu_json *j = tu_json_load(tu_data(name));
	CHECK(j != NULL, "%s", name);
	return j;
}

static double num(const tu_json *j, const char *path)
{
	const tu_json *v = tu_json_get(j, path);
	return v ? v->num : NAN;
}

/* Element i of the array at path, or NaN. */
static double at(const tu_json *j, const char *path, size_t i)
{
	const tu_json *v = tu_json_at(tu_json_get(j, path), i);
	return v ? v->num : NAN;
}

/* ---- pixels and embeddings ---------------------------------------------- */

static void test_vision(const rvi_gguf *g, const void *model, const image_case *ic)
{
	tu_json *ref = load_ref("f32", ic->ref);
	if (!ref)
		return;
	const rvi_vision_arch *a = &rvi_idefics3_arch;
	rvi_err err = {0};
	rvi_image img = {0};
	rvi_pixels px = {0};
	float *out = NULL;
	int rc = rvi_image_load_file(tu_data(ic->file), NULL, true, &img, &err);
	CHECK(rc == RV_OK, "%s: %s", ic->file, err.msg);
	if (rc == RV_OK)
		rc = a->preprocess(model, &img, NULL, &px, &err);
	CHECK(rc == RV_OK, "%s: preprocess: %s", ic->file, err.msg);
	if (rc != RV_OK)
		goto done;
	const int rows = (int)num(ref, "preprocess.rows"), cols = (int)num(ref, "preprocess.cols");
	CHECK(px.shape.tiles_h == rows && px.shape.tiles_w == cols, "%s: %dx%d tiles, want %dx%d",
	      ic->file, px.shape.tiles_h, px.shape.tiles_w, rows, cols);
	rvi_idefics3_geom geo;
	const rvi_idefics3 *m = model;
	rc = rvi_idefics3_geometry(img.w, img.h, (int)m->longest_edge, (int)m->hp.image_size, &geo,
	                           &err);
	CHECK(rc == RV_OK && geo.w1 == at(ref, "preprocess.step1_longest_edge_size_wh", 0) &&
	          geo.h1 == at(ref, "preprocess.step1_longest_edge_size_wh", 1) &&
	          geo.w2 == at(ref, "preprocess.step2_multiple_of_tile_size_wh", 0) &&
	          geo.h2 == at(ref, "preprocess.step2_multiple_of_tile_size_wh", 1),
	      "%s: resize sizes %dx%d, %dx%d", ic->file, geo.w1, geo.h1, geo.w2, geo.h2);
	/* the pixels bit for bit: the float32 tensor's sha256 */
	char hex[65];
	tu_sha256_hex(px.data, (size_t)px.n_floats * sizeof(float), hex);
	const tu_json *want_sha = tu_json_get(ref, "preprocess.pixels.sha256_f32");
	CHECK(want_sha && !strcmp(hex, want_sha->str), "%s: pixels differ from HF's (sha256 %s)",
	      ic->file, hex);

	/* the embeddings, on two thread counts (must not matter) */
	const tu_json *vals = tu_json_get(ref, "image_embedding.values");
	const int64_t n_out = a->n_embd_out(model);
	const size_t n = (size_t)(px.shape.rows * n_out);
	out = malloc(n * sizeof(float));
	float *out2 = malloc(n * sizeof(float));
	CHECK(vals && out && out2, "no reference values");
	if (!vals || !out || !out2) {
		free(out2);
		goto done;
	}
	rc = a->encode(model, &px, 1, out, &err);
	CHECK(rc == RV_OK, "%s: encode: %s", ic->file, err.msg);
	rc = rc == RV_OK ? a->encode(model, &px, 3, out2, &err) : rc;
	CHECK(rc == RV_OK && !memcmp(out, out2, n * sizeof(float)),
	      "%s: the embeddings depend on the thread count", ic->file);
	free(out2);
	size_t flat = 0;
	double worst = 0;
	for (size_t r = 0; r < vals->n; r++) {
		const tu_json *row = tu_json_at(vals, r);
		for (size_t c = 0; row && c < row->n; c++, flat++) {
			const double d =
			    flat < n ? fabs(out[flat] - tu_json_at(row, c)->num) : INFINITY;
			worst = d > worst ? d : worst;
		}
	}
	CHECK(flat == n, "%s: %zu reference values for %zu of ours", ic->file, flat, n);
	CHECK(worst <= TOL_EMBD, "%s: embeddings differ by %g", ic->file, worst);
	printf("%s: %dx%d tiles + global, pixels identical, embeddings max |diff| %.3g\n", ic->file,
	       rows, cols, worst);
done:
	free(out);
	rvi_pixels_free(&px);
	rvi_image_free(&img);
	tu_json_free(ref);
	(void)g;
}

/* ---- the text model over the image prompt -------------------------------- */

static rv_context *open_smolvlm(const char *text, rv_model **m)
{
	char name[128];
	snprintf(name, sizeof(name), "smolvlm/tiny-smolvlm-text-%s.gguf", text);
	return vc_open(name, MMPROJ, m);
}

static const vc_scored_keys scored_keys = {"scored_candidates", "tokens", "token_logprobs",
                                           "best_by_mean_logprob"};

static void test_text_model(const char *text)
{
	const bool f32 = !strcmp(text, "f32");
	const double tol = f32 ? TOL_F32 : TOL_Q8;
	rv_model *m;
	rv_context *ctx = open_smolvlm(text, &m);
	for (size_t i = 0; ctx && i < sizeof(images) / sizeof(images[0]); i++) {
		tu_json *ref = load_ref(text, images[i].ref);
		if (!ref)
			continue;
		char name[160];
		snprintf(name, sizeof(name), "%s/%s", text, images[i].ref);
		char path[4096];
		snprintf(path, sizeof(path), "%s", tu_data(images[i].file));
		const char *imgs[1] = {path};
		/* the default template of an idefics3 projector is SmolVLM's */
		rv_prompt p = {"describe", imgs, 1, NULL, NULL};
		vc_prompt_ids(ctx, &p, tu_json_get(ref, "tokens.ids"), IMAGE_ID, name);
		vc_first_top10(ctx, &p, tu_json_get(ref, "first_position_top10"), tol, f32, name);
		vc_greedy(ctx, &p, ref, tol, f32 ? VC_ALL_TOKENS : VC_FIRST_TOKEN,
		          (int)num(ref, "tokens.n_positions"), name);
		if (f32) /* Q8_0: the reference's candidates score its own activations */
			vc_scored(ctx, &p, ref, &scored_keys, tol, name);
		tu_json_free(ref);
	}

	/* the text-only prompt through the template ("User: " before text) */
	char refname[128];
	snprintf(refname, sizeof(refname), "smolvlm/ref-hf-smolvlm-text-%s.text-only.json", text);
	tu_json *ref = tu_json_load(tu_data(refname));
	CHECK(ref != NULL, "%s", refname);
	if (ctx && ref) {
		rv_prompt p = {"Once upon a time", NULL, 0, "smolvlm", NULL};
		const tu_json *ids = tu_json_get(ref, "prompt_ids");
		vc_prompt_ids(ctx, &p, ids, IMAGE_ID, refname);
		vc_first_top10(ctx, &p, tu_json_get(ref, "first_position_top10"), tol, f32,
		               refname);
		vc_greedy(ctx, &p, ref, tol, f32 ? VC_ALL_TOKENS : VC_FIRST_TOKEN,
		          ids ? (int)ids->n : -1, refname);
	}
	tu_json_free(ref);
	rv_context_free(ctx);
	rv_model_free(m);
}

/* The template as HF's chat_template.json writes it, and recognised in the
 * GGUF's own template. */
static void test_template(void)
{
	rvi_chat c;
	rvi_err err = {0};
	CHECK(rvi_chat_build("smolvlm", NULL, "describe", 1, &c, &err) == RV_OK, "%s", err.msg);
	CHECK(c.n_seg == 3 && !strcmp(c.seg[0].text, "<|im_start|>User:") && !c.seg[1].text &&
	          !strcmp(c.seg[2].text, "describe<end_of_utterance>\nAssistant:"),
	      "image prompt");
	rvi_chat_free(&c);
	CHECK(rvi_chat_build("smolvlm", "Be brief.", "Hi", 0, &c, &err) == RV_OK, "%s", err.msg);
	CHECK(c.n_seg == 1 &&
	          !strcmp(c.seg[0].text, "<|im_start|>System: Be brief.<end_of_utterance>"
	                                 "\nUser: Hi<end_of_utterance>\nAssistant:"),
	      "system + text prompt: '%s'", c.seg[0].text);
	rvi_chat_free(&c);
	rvi_gguf *g = NULL;
	rvi_str s = {0};
	CHECK(rvi_gguf_open(&g, tu_data("smolvlm/tiny-smolvlm-text-f32.gguf"), &err) == RV_OK &&
	          rvi_gguf_get_str(g, "tokenizer.chat_template", true, &s, &err) == RV_OK,
	      "%s", err.msg);
	const char *t = s.ptr ? rvi_chat_recognise(s.ptr, s.len) : NULL;
	CHECK(t && !strcmp(t, "smolvlm"), "the GGUF's template is recognised as %s",
	      t ? t : "nothing");
	rvi_gguf_close(g);
}

/* A projector whose rows do not fit the text model is refused at load. */
static void test_width_mismatch(void)
{
	char err[512] = "";
	rv_model_params mp = rv_model_default_params();
	rv_model *m = NULL;
	CHECK(rv_model_load(tu_data("tiny-llava-text-f32.gguf"), &mp, &m, err, sizeof(err)) ==
	          RV_OK,
	      "%s", err);
	if (!m)
		return;
	rv_status st = rv_model_load_mmproj(m, tu_data(MMPROJ), err, sizeof(err));
	CHECK(st == RV_ERR_MODEL && strstr(err, "tiny-smolvlm-mmproj-f32.gguf") &&
	          strstr(err, "96"),
	      "width mismatch: %d '%s'", st, err);
	rv_model_free(m);
}

/* Geometry the fixtures do not reach: a tall image whose float32 ceil
 * would add a tile row in llama.cpp (HF: 92x192, 3 rows x 2 cols), and one
 * that fits one tile (no split: the global image alone). */
static void test_geometry(void)
{
	rvi_idefics3_geom g;
	rvi_err err = {0};
	CHECK(rvi_idefics3_geometry(40, 84, 192, 64, &g, &err) == RV_OK && g.w1 == 92 &&
	          g.h1 == 192 && g.w2 == 128 && g.h2 == 192 && g.rows == 3 && g.cols == 2,
	      "40x84: %dx%d %dx%d %dx%d", g.w1, g.h1, g.w2, g.h2, g.rows, g.cols);
	CHECK(rvi_idefics3_geometry(100, 80, 64, 64, &g, &err) == RV_OK && g.w1 == 64 &&
	          g.h1 == 52 && g.w2 == 64 && g.h2 == 64 && g.rows == 0 && g.cols == 0,
	      "one tile: %dx%d %dx%d %dx%d", g.w1, g.h1, g.w2, g.h2, g.rows, g.cols);
	CHECK(rvi_idefics3_geometry(100, 80, 5000, 64, &g, &err) == RV_ERR_INVALID_ARG,
	      "longest edge 5000 accepted");
}

/* The prompt of shapes_64x48 with longest edge 64 (one tile: HF's
 * processor writes the global image alone): <|im_start|>User:<fake>
 * <global-img><image>x4<fake>describe<eou>\nAssistant:, as a JSON array in
 * items (N_ONE_TILE of them), which it returns. */
#define N_ONE_TILE 21
static tu_json *one_tile_ids(tu_json *items)
{
	static const double ids[N_ONE_TILE] = {1,   55,  493, 28,  982, 945, 983,
	                                       983, 983, 983, 982, 270, 780, 848,
	                                       984, 187, 35,  406, 411, 675, 28};
	for (size_t i = 0; i < N_ONE_TILE; i++)
		items[i] = (tu_json){.kind = TU_JNUM, .num = ids[i]};
	return items;
}

/* rv_model_set_image_longest_edge: fewer tiles, the prompt as HF's
 * processor writes an unsplit image, the cache identity per value, and
 * refusals. */
static void test_longest_edge(void)
{
	rv_model *m;
	rv_context *ctx = open_smolvlm("f32", &m);
	if (!ctx)
		return;
	char err[512];
	CHECK(rv_model_set_image_longest_edge(m, 64, err, sizeof(err)) == RV_OK, "%s", err);
	/* the cache key and the sharing of rows follow it (src/prompt.c) */
	CHECK(m->image_longest_edge == 64, "the longest edge was not kept");
	char path[4096];
	snprintf(path, sizeof(path), "%s", tu_data("shapes_64x48.png"));
	const char *imgs[1] = {path};
	rv_prompt p = {"describe", imgs, 1, NULL, NULL};
	/* <|im_start|>User:<fake><global-img><image>x4<fake>describe<eou>\nAssistant: */
	static const double want_ids[] = {1,   55,  493, 28,  982, 945, 983, 983, 983, 983, 982,
	                                  270, 780, 848, 984, 187, 35,  406, 411, 675, 28};
	tu_json want = {0};
	tu_json items[sizeof(want_ids) / sizeof(want_ids[0])];
	want.kind = TU_JARR;
	want.n = sizeof(want_ids) / sizeof(want_ids[0]);
	want.items = items;
	for (size_t i = 0; i < want.n; i++)
		items[i] = (tu_json){.kind = TU_JNUM, .num = want_ids[i]};
	vc_prompt_ids(ctx, &p, &want, IMAGE_ID, "longest edge 64");
	rv_gen_params gp = rv_gen_default_params();
	gp.temp = 0;
	gp.n_candidates = 1;
	gp.n_predict = 2;
	rv_result r;
	CHECK(rv_generate_prompt(ctx, &p, &gp, &r) == RV_OK && r.n_prompt_tokens == 21,
	      "longest edge 64: %s", rv_context_error(ctx));
	rv_result_free(&r);
	CHECK(rv_model_set_image_longest_edge(m, 0, err, sizeof(err)) == RV_OK &&
	          m->image_longest_edge == 0,
	      "0 does not restore the file's value");
	CHECK(rv_model_set_image_longest_edge(m, 5000, err, sizeof(err)) == RV_ERR_INVALID_ARG &&
	          strstr(err, "5000"),
	      "5000: '%s'", err);
	rv_context_free(ctx);
	rv_model_free(m);

	/* a projector without tiles refuses it */
	ctx = vc_open("tiny-llava-text-f32.gguf", "tiny-llava-mmproj-f32.gguf", &m);
	CHECK(m && rv_model_set_image_longest_edge(m, 64, err, sizeof(err)) == RV_ERR_UNSUPPORTED &&
	          strstr(err, "mlp"),
	      "LLaVA: '%s'", err);
	rv_context_free(ctx);
	rv_model_free(m);
}

/* SmolVLM-Instruct (v1) files: the vocabulary has no <global-img> token,
 * and Idefics3Processor writes it as plain text, which HF's tokenizer
 * BPEs. The fixture vocabulary with that token renamed stands for one. The
 * pieces' ids (<, g lo b al, -, im g, >) were worked out by hand from the
 * mini smollm tokenizer.json: the GPT-2 pre-tokenizer's splits, then its
 * merges by rank. The prompt is the reference's with them for 945. */
static void test_v1_no_global_img(void)
{
	static const double pieces[] = {30, 73, 300, 68, 263, 15, 433, 73, 32};
	const size_t n_pieces = sizeof(pieces) / sizeof(pieces[0]);
	const char *path =
	    tu_patched(tu_data("smolvlm/tiny-smolvlm-text-f32.gguf"),
	               "tiny-smolvlm-v1-text-f32.gguf", "<global-img>", "<global-imX>", -1, 0);
	CHECK(path != NULL, "patched text model");
	if (!path)
		return;
	char err[512];
	rv_model_params mp = rv_model_default_params();
	rv_model *m = NULL;
	rv_context *ctx = NULL;
	rv_context_params cp = rv_context_default_params();
	cp.no_cache = 1;
	CHECK(rv_model_load(path, &mp, &m, err, sizeof(err)) == RV_OK &&
	          rv_model_load_mmproj(m, tu_data(MMPROJ), err, sizeof(err)) == RV_OK &&
	          rv_context_new(m, &cp, &ctx, err, sizeof(err)) == RV_OK,
	      "%s", err);
	remove(path);
	tu_json *ref = load_ref("f32", "shapes_64x48.png");
	const tu_json *ids = ref ? tu_json_get(ref, "tokens.ids") : NULL;
	CHECK(ids != NULL, "reference ids");
	char img[4096];
	snprintf(img, sizeof(img), "%s", tu_data("shapes_64x48.png"));
	const char *imgs[1] = {img};
	rv_prompt p = {"describe", imgs, 1, NULL, NULL, 0, 0};
	for (int pass = 0; ctx && ids && pass < 2; pass++) {
		/* pass 1: longest edge 64, the global image alone (no split) */
		const tu_json *from = ids;
		tu_json one = {.kind = TU_JARR, .n = N_ONE_TILE};
		tu_json one_items[N_ONE_TILE];
		if (pass == 1) {
			CHECK(rv_model_set_image_longest_edge(m, 64, err, sizeof(err)) == RV_OK,
			      "%s", err);
			one.items = one_tile_ids(one_items);
			from = &one;
		}
		tu_json want = {.kind = TU_JARR};
		want.items = calloc(from->n + n_pieces, sizeof(tu_json));
		for (size_t i = 0; want.items && i < from->n; i++) {
			const double id = tu_json_at(from, i)->num;
			for (size_t k = 0; k < (id == 945 ? n_pieces : 1); k++)
				want.items[want.n++] =
				    (tu_json){.kind = TU_JNUM, .num = id == 945 ? pieces[k] : id};
		}
		CHECK(want.n == from->n + n_pieces - 1, "one <global-img> in the reference");
		vc_prompt_ids(ctx, &p, &want, IMAGE_ID, pass ? "v1, longest edge 64" : "v1, tiles");
		rv_gen_params gp = rv_gen_default_params();
		gp.temp = 0;
		gp.n_predict = 2;
		rv_result r;
		CHECK(rv_generate_prompt(ctx, &p, &gp, &r) == RV_OK &&
		          r.n_prompt_tokens == (int)want.n && r.n_tokens == 2,
		      "v1 generation: %d positions, want %zu: %s", r.n_prompt_tokens, want.n,
		      rv_context_error(ctx));
		rv_result_free(&r);
		free(want.items);
	}
	tu_json_free(ref);
	rv_context_free(ctx);
	rv_model_free(m);
}

/* A tile side that is not a multiple of the patch (SmolVLM2-2.2B's SigLIP:
 * 384 pixels, patches of 14): HF's unpadded stride-p convolution drops
 * the rest at the right and bottom. The fixture's mmproj with 70-pixel
 * tiles (8 x 8 patches of 8, as with 64) encodes a tile as the original
 * encodes its top-left 64 x 64 pixels, bit for bit. */
static void test_tile_remainder(void)
{
	enum { S = 64, S2 = 70 };
	const char *path = tu_patched(tu_data(MMPROJ), "tiny-smolvlm-mmproj-70.gguf",
	                              "clip.vision.image_size", "clip.vision.image_size", 4, S2);
	rvi_gguf *g = NULL, *g2 = NULL;
	rvi_err err = {0};
	void *m = NULL, *m2 = NULL;
	CHECK(path && rvi_gguf_open(&g, tu_data(MMPROJ), &err) == RV_OK &&
	          rvi_idefics3_arch.load(g, &m, &err) == RV_OK &&
	          rvi_gguf_open(&g2, path, &err) == RV_OK &&
	          rvi_idefics3_arch.load(g2, &m2, &err) == RV_OK,
	      "70-pixel tiles: %s", err.msg);
	if (m && m2) {
		const rvi_idefics3 *a = m, *b = m2;
		const int64_t rows = rvi_idefics3_rows_per_tile(a), cols = a->hp.n_mm_out;
		float *big = malloc(sizeof(float) * 3 * S2 * S2),
		      *crop = malloc(sizeof(float) * 3 * S * S);
		float *o1 = malloc(sizeof(float) * (size_t)(rows * cols));
		float *o2 = malloc(sizeof(float) * (size_t)(rows * cols));
		uint64_t rng = 5;
		for (int i = 0; i < 3 * S2 * S2; i++)
			big[i] = tu_rand_uniform(&rng, -1.8f, 2.1f);
		for (int c = 0; c < 3; c++)
			for (int y = 0; y < S; y++)
				memcpy(crop + (c * S + y) * S, big + (c * S2 + y) * S2,
				       sizeof(float) * S);
		CHECK(b->hp.n_patches == a->hp.n_patches && rvi_idefics3_rows_per_tile(b) == rows,
		      "70-pixel tiles: %lld patches", (long long)b->hp.n_patches);
		CHECK(rvi_idefics3_encode(a, crop, 1, 2, o1, &err) == RV_OK &&
		          rvi_idefics3_encode(b, big, 1, 2, o2, &err) == RV_OK &&
		          !memcmp(o1, o2, sizeof(float) * (size_t)(rows * cols)),
		      "a 70-pixel tile is not its 64-pixel crop: %s", err.msg);
		free(big);
		free(crop);
		free(o1);
		free(o2);
	}
	if (m)
		rvi_idefics3_arch.free(m);
	if (m2)
		rvi_idefics3_arch.free(m2);
	rvi_gguf_close(g);
	rvi_gguf_close(g2);
	if (path)
		remove(path);
}

int main(void)
{
	rvi_gguf *g = NULL;
	rvi_err err = {0};
	void *model = NULL;
	int rc = rvi_gguf_open(&g, tu_data(MMPROJ), &err);
	if (rc == RV_OK)
		rc = rvi_idefics3_arch.load(g, &model, &err);
	CHECK(rc == RV_OK, "%s", err.msg);
	for (size_t i = 0; rc == RV_OK && i < sizeof(images) / sizeof(images[0]); i++)
		test_vision(g, model, &images[i]);
	if (model)
		rvi_idefics3_arch.free(model);
	rvi_gguf_close(g);
	test_template();
	test_geometry();
	test_longest_edge();
	test_text_model("f32");
	test_text_model("q8_0");
	test_width_mismatch();
	test_v1_no_global_img();
	test_tile_remainder();
	return tu_finish("test_smolvlm");
}
