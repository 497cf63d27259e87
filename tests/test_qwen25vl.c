/* test_qwen25vl.c: Qwen2.5-VL against the training-code references of
 * tests/data/qwen25vl (see its README): the Qwen2 decoder with M-RoPE on
 * text-only chat prompts, the image path (pixels, patches, ViT output and
 * embeddings against the float64 npy references, prompt ids and M-RoPE
 * positions, first-position top 10, greedy ids and log-probs, teacher-forced
 * candidate scores), best-of-N with 3-component positions equal to solo
 * runs, and bad files refused naming the key or tensor. F32 weights must
 * match to 1e-3 in log-prob with identical tokens; Q8_0 (activations
 * quantized, as llama.cpp does; the reference keeps them in float64) as the
 * README says: same ids, first token, log-probs within 0.25 until the
 * greedy paths part. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/qwen25vl.h"
#include "src/api_internal.h"
#include "src/image/image.h"
#include "src/bestofn.h"
#include "src/prompt.h"
#include "rlaifv.h"
#include "tests/vlmcheck.h"
#include "tests/testutil.h"

#define TOL_F32 1e-3
#define TOL_Q8  0.25
#define MMPROJ  "qwen25vl/tiny-qwen25vl-mmproj-f32.gguf"

/* Prompt ids (image rows as the <|image_pad|> id) and positions. */
static void check_prompt(rv_context *ctx, const rv_prompt *p, const tu_json *ids,
                         const tu_json *toks, const char *name)
{
	rvi_prompt pr;
	CHECK(rvi_prompt_prepare(ctx, p, -1, &pr) == RV_OK, "%s: prepare: %s", name,
	      rv_context_error(ctx));
	size_t k = 0;
	bool same = true;
	for (int i = 0; i < pr.n_parts; i++) {
		const rvi_prompt_part *part = &pr.parts[i];
		for (int64_t t = 0; t < part->n; t++, k++)
			same &= k < ids->n &&
			        tu_json_at(ids, k)->num == (part->tokens ? part->tokens[t] : 961);
	}
	CHECK(same && k == ids->n, "%s: prompt ids differ from the reference", name);
	const tu_json *thw = toks ? tu_json_get(toks, "position_ids_thw") : NULL;
	if (thw && k == ids->n) {
		/* M-RoPE positions (t, h, w) of every item, as get_rope_index */
		rvi_pos *pos = malloc(sizeof(rvi_pos) * k);
		int64_t next = rvi_prompt_positions(ctx, &pr, pos);
		const tu_json *t = tu_json_at(thw, 0), *h = tu_json_at(thw, 1),
		              *w = tu_json_at(thw, 2);
		bool pos_ok = t && h && w && t->n == k;
		for (size_t i = 0; pos_ok && i < k; i++)
			pos_ok = pos[i].t == tu_json_at(t, i)->num &&
			         pos[i].h == tu_json_at(h, i)->num &&
			         pos[i].w == tu_json_at(w, i)->num;
		CHECK(pos_ok, "%s: positions differ from get_rope_index's", name);
		CHECK(next == (int64_t)tu_json_get(toks, "next_position")->num,
		      "%s: next position %lld", name, (long long)next);
		free(pos);
	}
	rvi_prompt_free(&pr);
}

static void run_text(const char *model, const char *ref_name, double tol, bool exact)
{
	tu_json *ref = tu_json_load(tu_data(ref_name));
	CHECK(ref != NULL, "%s", ref_name);
	rv_model *m;
	rv_context *ctx = vc_open(model, NULL, &m);
	const tu_json *prompts = ref ? tu_json_get(ref, "prompts") : NULL;
	for (size_t i = 0; ctx && prompts && i < prompts->n; i++) {
		const tu_json *pj = tu_json_at(prompts, i);
		rv_prompt p = {tu_json_get(pj, "prompt")->str, NULL, 0, "gguf", NULL};
		char name[256];
		snprintf(name, sizeof(name), "%s \"%s\"", ref_name, p.text);
		check_prompt(ctx, &p, tu_json_get(pj, "prompt_ids"), NULL, name);
		vc_greedy(ctx, &p, pj, tol, exact ? VC_ALL_TOKENS : VC_FIRST_OR_TIE, -1, name);
	}
	rv_context_free(ctx);
	rv_model_free(m);
	tu_json_free(ref);
}

/* tests/data/name as a float32 .npy (tu_npy_f32). */
static float *load_npy(const char *name, size_t *n)
{
	return tu_npy_f32(tu_data(name), n);
}

/* max |a - b| over n values, against a reference of ref_n values. */
static double max_diff(const float *a, const float *ref, size_t n, size_t ref_n)
{
	if (!ref || n != ref_n)
		return INFINITY;
	double worst = 0;
	for (size_t i = 0; i < n; i++) {
		double d = fabs((double)a[i] - (double)ref[i]);
		if (!(d <= worst))
			worst = d;
	}
	return worst;
}

typedef struct fixture {
	const char *image; /* in tests/data/qwen25vl */
	const char *stem;  /* of the npy references */
	const char *ref;   /* the f32 describe reference */
	const char *ref_q8;
} fixture;

static const fixture fixtures[] = {
    {"shapes_64x48.png", "shapes_64x48", "ref-hf-qwen25vl-f32.shapes_64x48.describe.json",
     "ref-hf-qwen25vl-q8_0.shapes_64x48.describe.json"},
    {"shapes_100x80.jpg", "shapes_100x80.stb-decoded",
     "ref-hf-qwen25vl-f32.shapes_100x80.describe.stb-decoded.json",
     "ref-hf-qwen25vl-q8_0.shapes_100x80.describe.stb-decoded.json"},
    {"wide_294x84.png", "wide_294x84", "ref-hf-qwen25vl-f32.wide_294x84.describe.json",
     "ref-hf-qwen25vl-q8_0.wide_294x84.describe.json"},
    {"tall_140x170.png", "tall_140x170", "ref-hf-qwen25vl-f32.tall_140x170.describe.json",
     "ref-hf-qwen25vl-q8_0.tall_140x170.describe.json"},
};

static const char *path_of(const char *name)
{
	static char path[4096];
	char rel[512];
	snprintf(rel, sizeof(rel), "qwen25vl/%s", name);
	snprintf(path, sizeof(path), "%s", tu_data(rel));
	return path;
}

/* Pixels and patches identical, the ViT output and the embedding within
 * 1e-4 of the float64 reference. */
static void check_vision(const rv_model *model, const fixture *f, const tu_json *ref)
{
	const rvi_qwen25vl *m = model->vision_model;
	rvi_image img;
	rvi_err err = {0};
	int rc = rvi_image_load_file(path_of(f->image), NULL, false, &img, &err);
	CHECK(rc == RV_OK, "%s: %s", f->image, err.msg);
	if (rc != RV_OK)
		return;
	int rw = 0, rh = 0;
	CHECK(rvi_qwen2vl_smart_resize(img.w, img.h, 28, 3136, 12845056, &rw, &rh, &err) == RV_OK,
	      "%s", err.msg);
	const tu_json *rs = tu_json_get(ref, "preprocess.resized_size_wh");
	CHECK(rw == (int)tu_json_at(rs, 0)->num && rh == (int)tu_json_at(rs, 1)->num,
	      "%s: resized to %dx%d", f->image, rw, rh);
	char name[256];
	size_t n_ref;
	float *want;

	float *chw = malloc(sizeof(float) * 3 * (size_t)rw * (size_t)rh);
	CHECK(rvi_image_preprocess_qwen2vl(&img, rw, rh, m->hp.image_mean, m->hp.image_std, chw,
	                                   &err) == RV_OK,
	      "%s", err.msg);
	snprintf(name, sizeof(name), "qwen25vl/ref-hf-npy/%s-pixels.npy", f->stem);
	want = tu_npy_load(name, &n_ref);
	double d = max_diff(chw, want, 3 * (size_t)rw * (size_t)rh, n_ref);
	CHECK(d == 0, "%s: pixels differ by %g", f->image, d);
	free(want);
	free(chw);

	rvi_pixels px;
	rc = model->vision->preprocess(m, &img, NULL, &px, &err);
	CHECK(rc == RV_OK, "%s", err.msg);
	rvi_image_free(&img);
	if (rc != RV_OK)
		return;
	snprintf(name, sizeof(name), "qwen25vl/ref-hf-npy/%s-patches.npy", f->stem);
	want = tu_npy_load(name, &n_ref);
	d = max_diff(px.data, want, (size_t)px.n_floats, n_ref);
	CHECK(d == 0, "%s: patches differ by %g", f->image, d);
	free(want);

	const int64_t gh = px.h / 14, gw = px.w / 14, n = gh * gw;
	CHECK(px.shape.rows == n / 4 && px.shape.grid_h == gh / 2 && px.shape.grid_w == gw / 2,
	      "%s: %lld rows", f->image, (long long)px.shape.rows);
	float *vit = malloc(sizeof(float) * (size_t)(n * m->hp.n_embd));
	float *out = malloc(sizeof(float) * (size_t)(n / 4 * m->hp.n_out));
	rc = rvi_qwen25vl_encode(m, px.data, gh, gw, 2, out, vit, &err);
	CHECK(rc == RV_OK, "%s", err.msg);
	snprintf(name, sizeof(name), "qwen25vl/ref-hf-npy/%s-vit.npy", f->stem);
	want = tu_npy_load(name, &n_ref);
	double dv = max_diff(vit, want, (size_t)(n * m->hp.n_embd), n_ref);
	CHECK(dv <= 1e-4, "%s: ViT output differs by %g", f->image, dv);
	free(want);
	snprintf(name, sizeof(name), "qwen25vl/ref-hf-npy/%s-embd.npy", f->stem);
	want = tu_npy_load(name, &n_ref);
	double de = max_diff(out, want, (size_t)(n / 4 * m->hp.n_out), n_ref);
	CHECK(de <= 1e-4, "%s: embedding differs by %g", f->image, de);
	free(want);
	printf("%s: pixels, patches equal; ViT max diff %.3g, embedding %.3g\n", f->image, dv, de);
	free(vit);
	free(out);
	rvi_pixels_free(&px);
}

/* Teacher-forced log-probs of the reference's fixed continuations right
 * after the image prompt (their M-RoPE positions continue after the
 * prompt's largest), and the best by mean log-prob. */
static const vc_scored_keys scored_keys = {"scored_candidates.candidates", "ids", "logprobs",
                                           "scored_candidates.best_by_mean_logprob"};

static void run_image(const fixture *f, bool q8)
{
	char rel[512];
	snprintf(rel, sizeof(rel), "qwen25vl/%s", q8 ? f->ref_q8 : f->ref);
	tu_json *ref = tu_json_load(tu_data(rel));
	CHECK(ref != NULL, "%s", rel);
	rv_model *m;
	rv_context *ctx = vc_open(q8 ? "qwen25vl/tiny-qwen25vl-text-q8_0.gguf"
	                             : "qwen25vl/tiny-qwen25vl-text-f32.gguf",
	                          MMPROJ, &m);
	if (ref && ctx) {
		if (!q8)
			check_vision(m, f, ref);
		char path[4096];
		snprintf(path, sizeof(path), "%s", path_of(f->image));
		const char *images[1] = {path};
		rv_prompt p = {"describe", images, 1, "gguf", NULL};
		check_prompt(ctx, &p, tu_json_get(ref, "tokens.ids"), tu_json_get(ref, "tokens"),
		             rel);
		vc_greedy(ctx, &p, ref, q8 ? TOL_Q8 : TOL_F32, q8 ? VC_FIRST_OR_TIE : VC_ALL_TOKENS,
		          -1, rel);
		vc_scored(ctx, &p, ref, &scored_keys, q8 ? TOL_Q8 : TOL_F32, rel);
		if (!q8 && f == &fixtures[2]) /* three windows, a 10x3 grid */
			vc_bestofn(ctx, &p, NULL, 1e-4, rel);
	}
	rv_context_free(ctx);
	rv_model_free(m);
	tu_json_free(ref);
}

/* A copy of qwen25vl/name patched as tu_patched says. */
static const char *patched(const char *name, const char *find, const char *repl, long value_at,
                           int32_t value)
{
	char rel[256];
	snprintf(rel, sizeof(rel), "qwen25vl/%s", name);
	return tu_patched(tu_data(rel), name, find, repl, value_at, value);
}

/* What must be refused, and how: the message names the key or tensor. */
static void check_errors(void)
{
	char err[512];
	rv_model *m = NULL;
	rv_model_params mp = rv_model_default_params();
	/* rope sections [4, 6, 5, 0] do not cover the 16 rotary pairs: after
	 * the key come its type, element type and count (4 + 4 + 8 bytes),
	 * then the values */
	const char *path = patched("tiny-qwen25vl-text-f32.gguf", "qwen2vl.rope.dimension_sections",
	                           "qwen2vl.rope.dimension_sections", 16 + 8, 5);
	CHECK(path != NULL, "patched text model");
	rv_status st = path ? rv_model_load(path, &mp, &m, err, sizeof(err)) : RV_ERR_INTERNAL;
	CHECK(st == RV_ERR_MODEL && strstr(err, "qwen2vl.rope.dimension_sections"),
	      "bad sections: %d %s", st, err);
	if (path)
		remove(path);
	/* no sections at all */
	path = patched("tiny-qwen25vl-text-f32.gguf", "qwen2vl.rope.dimension_sections",
	               "qwen2vl.rope.dimension_sectionX", -1, 0);
	st = path ? rv_model_load(path, &mp, &m, err, sizeof(err)) : RV_ERR_INTERNAL;
	CHECK(st == RV_ERR_MODEL && strstr(err, "qwen2vl.rope.dimension_sections"),
	      "missing sections: %d %s", st, err);
	if (path)
		remove(path);

	CHECK(rv_model_load(tu_data("qwen25vl/tiny-qwen25vl-text-f32.gguf"), &mp, &m, err,
	                    sizeof(err)) == RV_OK,
	      "%s", err);
	static const struct {
		const char *find, *repl, *want;
	} bad[] = {
	    /* the second frame's patch kernel */
	    {"v.patch_embd.weight.1", "v.patch_embd.weight.X", "v.patch_embd.weight.1"},
	    {"clip.vision.n_wa_pattern", "clip.vision.n_wa_patterX", "clip.vision.n_wa_pattern"},
	    {"v.blk.2.ffn_gate.bias", "v.blk.2.ffn_gate.biaX", "v.blk.2.ffn_gate.bias"},
	    {"v.post_ln.weight", "v.post_ln.weighX", "v.post_ln.weight"},
	};
	for (size_t i = 0; m && i < sizeof(bad) / sizeof(bad[0]); i++) {
		path = patched("tiny-qwen25vl-mmproj-f32.gguf", bad[i].find, bad[i].repl, -1, 0);
		st = path ? rv_model_load_mmproj(m, path, err, sizeof(err)) : RV_ERR_INTERNAL;
		CHECK(st == RV_ERR_MODEL && strstr(err, bad[i].want), "%s: %d %s", bad[i].want, st,
		      err);
		if (path)
			remove(path);
	}
	/* keys whose values the tower cannot run with (u32 values: the key's
	 * type, 4 bytes, then the value) */
	static const struct {
		const char *key;
		int32_t value;
		const char *want;
	} bad_value[] = {
	    /* 112-pixel windows are not whole 2x2 merged 16-pixel patches */
	    {"clip.vision.patch_size", 16, "not a whole number of 2x2 merged patches"},
	    {"clip.vision.patch_size", 0, "clip.vision.patch_size"},
	    /* 64 wide over 3 heads */
	    {"clip.vision.attention.head_count", 3, "multiple of 4 wide"},
	    {"clip.vision.n_wa_pattern", 0, "clip.vision.n_wa_pattern"},
	    {"clip.vision.block_count", 100000, "clip.vision.block_count"},
	};
	for (size_t i = 0; m && i < sizeof(bad_value) / sizeof(bad_value[0]); i++) {
		path = patched("tiny-qwen25vl-mmproj-f32.gguf", bad_value[i].key, bad_value[i].key,
		               4, bad_value[i].value);
		st = path ? rv_model_load_mmproj(m, path, err, sizeof(err)) : RV_ERR_INTERNAL;
		CHECK(st == RV_ERR_MODEL && strstr(err, bad_value[i].want), "%s = %d: %d %s",
		      bad_value[i].key, bad_value[i].value, st, err);
		if (path)
			remove(path);
	}

	/* The merge size (2, not stored) must divide the patch grid: a grid
	 * that is not whole 2x2 blocks is refused before anything is read or
	 * allocated (the patches pointer is never touched). */
	CHECK(m && rv_model_load_mmproj(m, tu_data("qwen25vl/tiny-qwen25vl-mmproj-f32.gguf"), err,
	                                sizeof(err)) == RV_OK,
	      "%s", err);
	static const int64_t bad_grid[][2] = {{3, 4}, {4, 3},  {1, 2},     {2, 1},
	                                      {0, 2}, {-2, 2}, {6, 65538}, {65538, 6}};
	for (size_t i = 0; m && m->vision_model && i < sizeof(bad_grid) / sizeof(bad_grid[0]);
	     i++) {
		rvi_err e = {0};
		float dummy = 0;
		char want[64];
		snprintf(want, sizeof(want), "a %lldx%lld patch grid is not whole 2x2",
		         (long long)bad_grid[i][0], (long long)bad_grid[i][1]);
		const int rc = rvi_qwen25vl_encode(m->vision_model, &dummy, bad_grid[i][0],
		                                   bad_grid[i][1], 1, &dummy, NULL, &e);
		CHECK(rc == RV_ERR_INVALID_ARG && strstr(e.msg, want), "grid %lldx%lld: %d %s",
		      (long long)bad_grid[i][0], (long long)bad_grid[i][1], rc, e.msg);
	}
	rv_model_free(m);

	/* pixel limits and image sizes smart_resize cannot serve */
	rvi_err e = {0};
	int w, h;
	CHECK(rvi_qwen2vl_smart_resize(64, 48, 28, 5000, 4000, &w, &h, &e) == RV_ERR_INVALID_ARG,
	      "min above max");
	CHECK(rvi_qwen2vl_smart_resize(64, 48, 28, 0, 4000, &w, &h, &e) == RV_ERR_INVALID_ARG,
	      "min 0");
	CHECK(rvi_qwen2vl_smart_resize(64, 48, 28, 3136, (int64_t)1 << 50, &w, &h, &e) ==
	          RV_ERR_INVALID_ARG,
	      "absurd max");
	CHECK(rvi_qwen2vl_smart_resize(20, 48, 28, 3136, 12845056, &w, &h, &e) == RV_ERR_IMAGE &&
	          strstr(e.msg, "20x48"),
	      "a side below 28: %s", e.msg);
	CHECK(rvi_qwen2vl_smart_resize(30, 6100, 28, 3136, 12845056, &w, &h, &e) == RV_ERR_IMAGE,
	      "aspect ratio 203");
	/* the ties go to even: 294 / 28 = 10.5 -> 10, 70 / 28 = 2.5 -> 2 (then
	 * scaled up to the minimum) */
	CHECK(rvi_qwen2vl_smart_resize(294, 84, 28, 3136, 12845056, &w, &h, &e) == RV_OK &&
	          w == 280 && h == 84,
	      "294x84 -> %dx%d", w, h);
	CHECK(rvi_qwen2vl_smart_resize(4000, 3000, 28, 3136, 1003520, &w, &h, &e) == RV_OK &&
	          (int64_t)w * h <= 1003520 && w % 28 == 0 && h % 28 == 0,
	      "max pixels: %dx%d", w, h);
}

/* Qwen2-VL's tower (clip.projector_type "qwen2vl_merger", tests/data/qwen2vl
 * written by tools/make_qwen2vl_fixture.py): on the Qwen2.5-VL fixtures'
 * patches (the same processor), the embeddings within 1e-4 of the numpy
 * float64 reference that follows HF's Qwen2-VL code; an image prompt runs
 * through it with the Qwen2.5-VL text model; a missing LayerNorm bias is
 * refused naming it. */
static void check_qwen2vl(void)
{
	static const struct {
		const char *stem;
		int64_t gh, gw;
	} imgs[] = {{"shapes_64x48", 4, 4}, {"wide_294x84", 6, 20}, {"tall_140x170", 12, 10}};
	rv_model *m = NULL;
	rv_context *ctx = vc_open("qwen25vl/tiny-qwen25vl-text-f32.gguf", NULL, &m);
	char err[512];
	CHECK(m && rv_model_load_mmproj(m, tu_data("qwen2vl/tiny-qwen2vl-mmproj-f32.gguf"), err,
	                                sizeof(err)) == RV_OK,
	      "%s", err);
	if (!m || !m->vision_model) {
		rv_context_free(ctx);
		rv_model_free(m);
		return;
	}
	CHECK(m->vision == &rvi_qwen2vl_merger_arch, "qwen2vl_merger picks %s", m->vision->name);
	const rvi_qwen25vl *v = m->vision_model;
	for (size_t i = 0; i < sizeof(imgs) / sizeof(imgs[0]); i++) {
		char name[128];
		size_t n_p, n_ref;
		snprintf(name, sizeof(name), "qwen25vl/ref-hf-npy/%s-patches.npy", imgs[i].stem);
		float *patches = load_npy(name, &n_p);
		snprintf(name, sizeof(name), "qwen2vl/ref-qwen2vl-%s-embd.npy", imgs[i].stem);
		float *want = load_npy(name, &n_ref);
		const size_t n_out = (size_t)(imgs[i].gh * imgs[i].gw / 4 * v->hp.n_out);
		float *out = malloc(sizeof(float) * n_out);
		rvi_err e = {0};
		CHECK(patches && want && out &&
		          rvi_qwen25vl_encode(v, patches, imgs[i].gh, imgs[i].gw, 2, out, NULL,
		                              &e) == RV_OK,
		      "%s: %s", imgs[i].stem, e.msg);
		const double d = patches && want ? max_diff(out, want, n_out, n_ref) : INFINITY;
		CHECK(d <= 1e-4, "qwen2-vl %s: embedding differs by %g", imgs[i].stem, d);
		printf("qwen2-vl %s: embedding max diff %.3g\n", imgs[i].stem, d);
		free(patches);
		free(want);
		free(out);
	}
	/* an image prompt through the public API: rows = 30 merged tokens */
	char path[4096];
	snprintf(path, sizeof(path), "%s", tu_data("qwen25vl/wide_294x84.png"));
	const char *paths[1] = {path};
	rv_prompt p = {"describe", paths, 1, NULL, NULL, 0, 0};
	rv_gen_params gp = rv_gen_default_params();
	gp.temp = 0;
	gp.n_predict = 4;
	gp.ignore_eos = 1;
	rv_result r;
	CHECK(ctx && rv_generate_prompt(ctx, &p, &gp, &r) == RV_OK && r.n_prompt_tokens == 67 &&
	          r.n_tokens == 4,
	      "qwen2-vl image prompt: %s", ctx ? rv_context_error(ctx) : "no context");
	if (ctx)
		rv_result_free(&r);
	rv_context_free(ctx);
	rv_model_free(m);

	/* the merger's LayerNorm bias missing */
	m = NULL;
	rv_model_params mp = rv_model_default_params();
	const char *bad =
	    tu_patched(tu_data("qwen2vl/tiny-qwen2vl-mmproj-f32.gguf"),
	               "tiny-qwen2vl-mmproj-f32.gguf", "v.post_ln.bias", "v.post_ln.biaX", -1, 0);
	CHECK(bad && rv_model_load(tu_data("qwen25vl/tiny-qwen25vl-text-f32.gguf"), &mp, &m, err,
	                           sizeof(err)) == RV_OK,
	      "%s", err);
	const rv_status st =
	    bad && m ? rv_model_load_mmproj(m, bad, err, sizeof(err)) : RV_ERR_INTERNAL;
	CHECK(st == RV_ERR_MODEL && strstr(err, "v.post_ln.bias"), "no merger bias: %d %s", st,
	      err);
	if (bad)
		remove(bad);
	rv_model_free(m);
}

int main(void)
{
	run_text("qwen25vl/tiny-qwen25vl-text-f32.gguf", "qwen25vl/ref-hf-qwen25vl-text-f32.json",
	         TOL_F32, true);
	run_text("qwen25vl/tiny-qwen25vl-text-q8_0.gguf", "qwen25vl/ref-hf-qwen25vl-text-q8_0.json",
	         TOL_Q8, false);
	for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
		run_image(&fixtures[i], false);
		run_image(&fixtures[i], true);
	}
	check_errors();
	check_qwen2vl();
	return tu_finish("test_qwen25vl");
}
