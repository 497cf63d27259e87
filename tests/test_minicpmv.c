/* test_minicpmv.c: MiniCPM-V 2.6 (clip.projector_type "resampler", a Qwen2
 * text model) against the float64 references of the Hugging Face pipeline
 * (tests/data/minicpmv/, see its README): per image the slice grid and
 * sizes, every slice's pixels bit for bit, SigLIP outputs and the
 * resampler's embeddings within 1e-4 on every kernel set; the prompt ids
 * with the processor's placeholders (<image_id>, <slice>), the first
 * position's top 10, 16 greedy tokens and their log-probs, and three
 * scored continuations, for the F32 and Q8_0 text models and a text-only
 * prompt; best-of-N candidates equal to their solo runs, a reference
 * model's scores; --max-slices; the bucketed position ids. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/arch.h"
#include "models/minicpmv.h"
#include "rlaifv.h"
#include "simd/kernels.h"
#include "src/api_internal.h"
#include "src/image/minicpmv.h"
#include "src/prompt.h"
#include "src/tokenizer/tokenizer.h"
#include "tests/testutil.h"
#include "tests/vlmcheck.h"

#define TOL_EMBD 1e-4
#define TOL_F32  1e-3
#define TOL_Q8   0.15
#define UNK_ID   971 /* <unk> in the reference ids: where the rows go */

#define MMPROJ "minicpmv/tiny-minicpmv-mmproj-f32.gguf"

typedef struct image_case {
	const char *file; /* under tests/data */
	const char *ref;  /* the reference JSON's name between "<text>." and ".json" */
	const char *npy;  /* its .npy files' image name */
} image_case;

static const image_case images[] = {
    {"shapes_64x48.png", "shapes_64x48.describe", "shapes_64x48"},
    {"minicpmv/grid_200x150.png", "grid_200x150.describe", "grid_200x150"},
    /* we decode JPEGs with stb_image: its reference starts from stb's pixels */
    {"shapes_100x80.jpg", "shapes_100x80.describe.stb-decoded", "shapes_100x80.stb-decoded"},
};

static tu_json *load_ref(const char *text, const char *image)
{
	char name[256];
	snprintf(name, sizeof(name), "minicpmv/ref-hf-minicpmv-%s.%s.json", text, image);
	tu_json *j = tu_json_load(tu_data(name));
	CHECK(j != NULL, "%s", name);
	return j;
}

static double at(const tu_json *j, const char *path, size_t i)
{
	const tu_json *v = tu_json_at(tu_json_get(j, path), i);
	return v ? v->num : NAN;
}

/* ---- position buckets and geometry -------------------------------------- */

static void test_buckets(void)
{
	/* the grids (up to 76 patches a side) where HF's float32 buckets
	 * leave floor(70 i / n), per the fixture README */
	static const int want[] = {25, 49, 50, 55, 58};
	int got[16], n_got = 0;
	for (int n = 1; n <= 76; n++) {
		bool differs = false;
		for (int i = 0; i < n; i++)
			differs |= rvi_minicpmv_bucket(i, n) != 70 * i / n;
		if (differs && n_got < 16)
			got[n_got++] = n;
	}
	CHECK(n_got == 5 && !memcmp(got, want, sizeof(want)), "%d grids differ from floor", n_got);
	CHECK(rvi_minicpmv_bucket(5, 25) == 13, "n = 25, i = 5: %d", rvi_minicpmv_bucket(5, 25));
	CHECK(rvi_minicpmv_bucket(0, 1) == 0 && rvi_minicpmv_bucket(69, 70) == 69, "ends");
}

static void test_geometry(void)
{
	rvi_minicpmv_geom g;
	rvi_err err = {0};
	/* the fixtures' (S = 112) */
	CHECK(rvi_minicpmv_geometry(200, 150, 112, 14, 9, &g, &err) == RV_OK && g.cols == 2 &&
	          g.rows == 2 && g.ow == 126 && g.oh == 98 && g.sw == 126 && g.sh == 98,
	      "200x150: %dx%d %dx%d slices %dx%d", g.ow, g.oh, g.cols, g.rows, g.sw, g.sh);
	/* a side over S but the area under S^2: not sliced (llama.cpp slices) */
	CHECK(rvi_minicpmv_geometry(126, 98, 112, 14, 9, &g, &err) == RV_OK && g.cols == 0 &&
	          g.ow == 126 && g.oh == 98,
	      "126x98: %dx%d slices", g.cols, g.rows);
	/* max_slice_nums 1: the overview alone */
	CHECK(rvi_minicpmv_geometry(200, 150, 112, 14, 1, &g, &err) == RV_OK && g.cols == 0 &&
	          g.rows == 0 && g.ow == 126 && g.oh == 98,
	      "one slice: %dx%d", g.cols, g.rows);
	/* MiniCPM-V 2.6's own size: a 1344x448 panorama, ratio 3: grid 3x1
	 * of 448x448; overview 784x252 (int(448/sqrt 3) = 258 -> 252) */
	CHECK(rvi_minicpmv_geometry(1344, 448, 448, 14, 9, &g, &err) == RV_OK && g.cols == 3 &&
	          g.rows == 1 && g.sw == 448 && g.sh == 448 && g.ow == 770 && g.oh == 252,
	      "1344x448: %dx%d %dx%d slices %dx%d", g.ow, g.oh, g.cols, g.rows, g.sw, g.sh);
	CHECK(rvi_minicpmv_geometry(200, 150, 112, 14, 0, &g, &err) == RV_ERR_INVALID_ARG,
	      "0 slices accepted");
}

/* ---- pixels, SigLIP and the resampler ------------------------------------ */

static void test_vision(const void *model, const image_case *ic)
{
	tu_json *ref = load_ref("f32", ic->ref);
	if (!ref)
		return;
	const rvi_vision_arch *a = &rvi_minicpmv_arch;
	const rvi_minicpmv *m = model;
	rvi_err err = {0};
	rvi_image img = {0};
	rvi_pixels px = {0};
	float *out = NULL, *feats = NULL;
	int rc = rvi_image_load_file(tu_data(ic->file), NULL, true, &img, &err);
	CHECK(rc == RV_OK, "%s: %s", ic->file, err.msg);
	if (rc == RV_OK)
		rc = a->preprocess(model, &img, NULL, &px, &err);
	CHECK(rc == RV_OK, "%s: preprocess: %s", ic->file, err.msg);
	if (rc != RV_OK)
		goto done;
	/* the grid and the sizes */
	const tu_json *grid = tu_json_get(ref, "preprocess.grid_cols_rows");
	const int cols =
	    grid && grid->kind == TU_JARR ? (int)at(ref, "preprocess.grid_cols_rows", 0) : 0;
	const int rows =
	    grid && grid->kind == TU_JARR ? (int)at(ref, "preprocess.grid_cols_rows", 1) : 0;
	CHECK(px.shape.tiles_w == cols && px.shape.tiles_h == rows, "%s: %dx%d slices, want %dx%d",
	      ic->file, px.shape.tiles_w, px.shape.tiles_h, cols, rows);
	const tu_json *slices = tu_json_get(ref, "preprocess.slices");
	const int n_img = (int)(slices ? slices->n : 0);
	CHECK(n_img == 1 + cols * rows && px.shape.rows == 64 * n_img, "%s: %d images", ic->file,
	      n_img);
	const int64_t W = m->hp.n_embd, D = m->hp.n_mm_out;
	feats = malloc(sizeof(float) * (size_t)(64 * 64 * W));
	const float *chw = px.data;
	double worst_v = 0;
	for (int k = 0; k < n_img && feats; k++) {
		const tu_json *s = tu_json_at(slices, (size_t)k);
		const int w = k ? px.w2 : px.w, h = k ? px.h2 : px.h;
		CHECK(w == at(s, "size_wh", 0) && h == at(s, "size_wh", 1), "%s: image %d is %dx%d",
		      ic->file, k, w, h);
		if (w != at(s, "size_wh", 0) || h != at(s, "size_wh", 1))
			break;
		char hex[65];
		tu_sha256_hex(chw, sizeof(float) * 3 * (size_t)w * h, hex);
		const tu_json *want = tu_json_get(s, "pixels.sha256_f32");
		CHECK(want && !strcmp(hex, want->str), "%s: image %d's pixels differ from HF's",
		      ic->file, k);
		/* the position ids */
		const int nh = h / 14, nw = w / 14;
		const tu_json *ids = tu_json_get(s, "position_ids");
		bool same = ids && ids->n == (size_t)(nh * nw);
		for (int i = 0; same && i < nh * nw; i++)
			same =
			    tu_json_at(ids, (size_t)i)->num ==
			    rvi_minicpmv_bucket(i / nw, nh) * 70 + rvi_minicpmv_bucket(i % nw, nw);
		CHECK(same, "%s: image %d's position ids", ic->file, k);
		/* SigLIP's output */
		char name[160];
		snprintf(name, sizeof(name), "minicpmv/ref-npy/mmproj-f32.%s-s%d-vision.npy",
		         ic->npy, k);
		rc = rvi_minicpmv_siglip(m, chw, w, h, 2, feats, &err);
		CHECK(rc == RV_OK, "%s: siglip: %s", ic->file, err.msg);
		const double d = tu_npy_max_diff(feats, (size_t)(nh * nw * W), name);
		worst_v = d > worst_v ? d : worst_v;
		chw += 3 * (size_t)w * h;
	}
	CHECK(worst_v <= TOL_EMBD, "%s: SigLIP outputs differ by %g", ic->file, worst_v);

	/* the embeddings, on two thread counts (must not matter) */
	const size_t n = (size_t)(px.shape.rows * D);
	if (!(out = vc_encode(a, model, &px, ic->file)))
		goto done;
	char name[160];
	snprintf(name, sizeof(name), "minicpmv/ref-npy/mmproj-f32.%s-embd.npy", ic->npy);
	const double worst = tu_npy_max_diff(out, n, name);
	CHECK(worst <= TOL_EMBD, "%s: embeddings differ by %g", ic->file, worst);
	printf("%s: %dx%d slices + overview, pixels identical, SigLIP max |diff| %.3g, "
	       "embeddings %.3g\n",
	       ic->file, cols, rows, worst_v, worst);
done:
	free(out);
	free(feats);
	rvi_pixels_free(&px);
	rvi_image_free(&img);
	tu_json_free(ref);
}

/* ---- the text model over the image prompt -------------------------------- */

static const vc_scored_keys scored_keys = {"scored_candidates.candidates", "ids", "logprobs",
                                           "scored_candidates.best_by_mean_logprob"};

static rv_context *open_minicpmv(const char *text, rv_model **m)
{
	char name[128];
	snprintf(name, sizeof(name), "minicpmv/tiny-minicpmv-text-%s.gguf", text);
	return vc_open(name, MMPROJ, m);
}

static void test_text_model(const char *text)
{
	const bool f32 = !strcmp(text, "f32");
	const double tol = f32 ? TOL_F32 : TOL_Q8;
	rv_model *m;
	rv_context *ctx = open_minicpmv(text, &m);
	/* chat()'s terminators: <|im_end|> (the file's EOS) and <|endoftext|> */
	CHECK(ctx && rvi_tokenizer_is_eog(m->tok, 958) && rvi_tokenizer_is_eog(m->tok, 956) &&
	          !rvi_tokenizer_is_eog(m->tok, 957),
	      "%s: the end-of-generation tokens", text);
	for (size_t i = 0; ctx && i < sizeof(images) / sizeof(images[0]); i++) {
		tu_json *ref = load_ref(text, images[i].ref);
		if (!ref)
			continue;
		char name[160];
		snprintf(name, sizeof(name), "%s/%s", text, images[i].ref);
		char path[4096];
		snprintf(path, sizeof(path), "%s", tu_data(images[i].file));
		const char *imgs[1] = {path};
		/* the default template of a resampler projector is ChatML */
		rv_prompt p = {.text = "describe", .images = imgs, .n_images = 1};
		const tu_json *ids = tu_json_get(ref, "tokens.ids");
		vc_prompt_ids(ctx, &p, ids, UNK_ID, name);
		vc_first_top10(ctx, &p, tu_json_get(ref, "first_position_top10"), tol, f32, name);
		vc_greedy(ctx, &p, ref, tol, f32 ? VC_ALL_TOKENS : VC_FIRST_TOKEN,
		          ids ? (int)ids->n : -1, name);
		if (f32) /* Q8_0: the reference's candidates score its own activations */
			vc_scored(ctx, &p, ref, &scored_keys, tol, name);
		tu_json_free(ref);
	}

	/* the text-only prompt through the same template */
	char refname[128];
	snprintf(refname, sizeof(refname), "minicpmv/ref-hf-minicpmv-%s.text.once_upon_a_time.json",
	         text);
	tu_json *ref = tu_json_load(tu_data(refname));
	CHECK(ref != NULL, "%s", refname);
	const tu_json *q = ref ? tu_json_get(ref, "chat_content") : NULL;
	if (ctx && ref) {
		rv_prompt p = {.text = q && q->str ? q->str : "", .chat_template = "chatml"};
		const tu_json *ids = tu_json_get(ref, "tokens.ids");
		vc_prompt_ids(ctx, &p, ids, UNK_ID, refname);
		vc_first_top10(ctx, &p, tu_json_get(ref, "first_position_top10"), tol, f32,
		               refname);
		vc_greedy(ctx, &p, ref, tol, f32 ? VC_ALL_TOKENS : VC_FIRST_TOKEN,
		          ids ? (int)ids->n : -1, refname);
		if (f32)
			vc_scored(ctx, &p, ref, &scored_keys, tol, refname);
	}
	tu_json_free(ref);
	rv_context_free(ctx);
	rv_model_free(m);
}

/* Best-of-N on the sliced image: candidates equal to their solo runs; the
 * model as its own reference, then the Q8_0 model (with the same
 * projector, whose rows it shares) as RLAIF-V's reference model. */
static void test_bestofn(void)
{
	rv_model *m, *mq;
	rv_context *ctx = open_minicpmv("f32", &m);
	rv_context *ref = open_minicpmv("q8_0", &mq);
	char path[4096];
	snprintf(path, sizeof(path), "%s", tu_data("minicpmv/grid_200x150.png"));
	const char *imgs[1] = {path};
	rv_prompt p = {.text = "describe", .images = imgs, .n_images = 1};
	if (ctx && ref) {
		vc_bestofn(ctx, &p, NULL, 1e-4, "best-of-4, own reference");
		vc_bestofn(ctx, &p, ref, TOL_Q8, "best-of-4, Q8_0 reference");
	}
	rv_context_free(ref);
	rv_model_free(mq);
	rv_context_free(ctx);
	rv_model_free(m);
}

/* Two images: HF numbers them, <image_id>0</image_id> and
 * <image_id>1</image_id>, each followed by "\n" as chat() joins them. */
static void test_two_images(void)
{
	rv_model *m;
	rv_context *ctx = open_minicpmv("f32", &m);
	char a[4096], b[4096];
	snprintf(a, sizeof(a), "%s", tu_data("shapes_64x48.png"));
	snprintf(b, sizeof(b), "%s", tu_data("minicpmv/grid_200x150.png"));
	const char *imgs[2] = {a, b};
	rv_prompt p = {.text = "describe", .images = imgs, .n_images = 2};
	rvi_prompt pr;
	const int rc = ctx ? rvi_prompt_prepare(ctx, &p, -1, &pr) : RV_ERR_INTERNAL;
	CHECK(rc == RV_OK, "two images: %s", ctx ? rv_context_error(ctx) : "no context");
	int ids[2] = {-1, -1}, n_id = 0, rows = 0;
	for (int i = 0; rc == RV_OK && i < pr.n_parts; i++) {
		const rvi_prompt_part *part = &pr.parts[i];
		rows += part->tokens ? 0 : (int)part->n;
		for (int64_t t = 0; part->tokens && t + 2 < part->n; t++)
			if (part->tokens[t] == 972 && part->tokens[t + 2] == 973 && n_id < 2)
				ids[n_id++] = part->tokens[t + 1];
	}
	/* "0" is id 15 and "1" id 16 in the Qwen2 vocabulary */
	CHECK(n_id == 2 && ids[0] == 15 && ids[1] == 16 && rows == 64 * 6,
	      "two images: <image_id> %d, %d; %d rows", ids[0], ids[1], rows);
	if (rc == RV_OK)
		rvi_prompt_free(&pr);
	rv_context_free(ctx);
	rv_model_free(m);
}

/* rv_model_set_image_max_slices: 1 gives the overview alone (the prompt
 * as HF's processor writes an unsliced image: 105 positions), a cache
 * entry of its own, and refusals out of range or on other projectors. */
static void test_max_slices(void)
{
	rv_model *m;
	rv_context *ctx = open_minicpmv("f32", &m);
	if (!ctx)
		return;
	char err[512], path[4096];
	snprintf(path, sizeof(path), "%s", tu_data("minicpmv/grid_200x150.png"));
	const char *imgs[1] = {path};
	rv_prompt p = {.text = "describe", .images = imgs, .n_images = 1};
	rv_gen_params gp = rv_gen_default_params();
	gp.temp = 0;
	gp.n_candidates = 1;
	gp.n_predict = 2;
	rv_result r;
	CHECK(rv_model_set_image_max_slices(m, 1, err, sizeof(err)) == RV_OK, "%s", err);
	CHECK(m->image_max_slices == 1, "the setting was not kept");
	CHECK(rv_generate_prompt(ctx, &p, &gp, &r) == RV_OK && r.n_prompt_tokens == 105,
	      "max slices 1: %d positions: %s", r.n_prompt_tokens, rv_context_error(ctx));
	rv_result_free(&r);
	/* 3: the candidates of 2.39 are 2 and 3 slices; [2, 1] fits 4:3 best */
	CHECK(rv_model_set_image_max_slices(m, 3, err, sizeof(err)) == RV_OK, "%s", err);
	CHECK(rv_generate_prompt(ctx, &p, &gp, &r) == RV_OK && r.n_prompt_tokens == 105 + 2 * 66,
	      "max slices 3: %d positions: %s", r.n_prompt_tokens, rv_context_error(ctx));
	rv_result_free(&r);
	CHECK(rv_model_set_image_max_slices(m, 0, err, sizeof(err)) == RV_OK &&
	          rv_generate_prompt(ctx, &p, &gp, &r) == RV_OK && r.n_prompt_tokens == 370,
	      "0 does not restore the default");
	rv_result_free(&r);
	CHECK(rv_model_set_image_max_slices(m, 65, err, sizeof(err)) == RV_ERR_INVALID_ARG &&
	          strstr(err, "65"),
	      "65: '%s'", err);
	rv_context_free(ctx);
	rv_model_free(m);

	/* a projector without slices refuses it */
	ctx = vc_open("tiny-llava-text-f32.gguf", "tiny-llava-mmproj-f32.gguf", &m);
	CHECK(m && rv_model_set_image_max_slices(m, 2, err, sizeof(err)) == RV_ERR_UNSUPPORTED &&
	          strstr(err, "mlp"),
	      "LLaVA: '%s'", err);
	rv_context_free(ctx);
	rv_model_free(m);
}

int main(void)
{
	test_buckets();
	test_geometry();
	rvi_gguf *g;
	void *model = vc_load_vision(&rvi_minicpmv_arch, MMPROJ, &g);
	const char *isas[8];
	const int n_isas = rvk_usable_isas(isas, 8);
	const rvk_table *first = rvk_active();
	for (int k = 0; model && k < n_isas && k < 8; k++) {
		CHECK(rvk_select(isas[k], NULL, 0), "select %s", isas[k]);
		printf("-- %s kernels\n", isas[k]);
		for (size_t i = 0; i < sizeof(images) / sizeof(images[0]); i++)
			test_vision(model, &images[i]);
	}
	CHECK(rvk_select(first->name, NULL, 0), "restore %s", first->name);
	if (model)
		rvi_minicpmv_arch.free(model);
	rvi_gguf_close(g);
	test_text_model("f32");
	test_text_model("q8_0");
	test_bestofn();
	test_two_images();
	test_max_slices();
	return tu_finish("test_minicpmv");
}
