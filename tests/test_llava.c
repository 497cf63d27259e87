/* test_llava.c: the image path end to end against the training-code
 * references (ref-hf-*.json): the LLaVA v1 prompt's token ids around the
 * image, the first position's top tokens, greedy tokens and log-probs, and
 * teacher-forced scores of fixed continuations on llama.cpp's prompt
 * layout. F32 weights must match to 1e-3 with identical tokens; Q8_0 (we
 * quantize activations as llama.cpp does, the reference does not) is
 * compared as the fixtures README says: first token, top-5 set, log-probs
 * within 0.15 until the greedy paths part. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "src/api_internal.h"
#include "src/bestofn.h"
#include "src/prompt.h"
#include "rlaifv.h"
#include "src/sampler.h"
#include "tests/vlmcheck.h"
#include "tests/testutil.h"

#define TOL_F32 1e-3
#define TOL_Q8  0.15

typedef struct fixture {
	const char *text_model;
	const char *image;
	const char *ref;
	double tol;
	bool exact_tokens;
} fixture;

#define MMPROJ "tiny-llava-mmproj-f32.gguf"

/* Prompt ids with the image's place as -200, as the reference writes them. */
static void check_prompt_ids(rv_context *ctx, const rv_prompt *p, const tu_json *want,
                             const char *name)
{
	rvi_prompt pr;
	CHECK(rvi_prompt_prepare(ctx, p, -1, &pr) == RV_OK, "%s: prepare: %s", name,
	      rv_context_error(ctx));
	size_t k = 0;
	bool same = true;
	for (int i = 0; i < pr.n_parts; i++) {
		const rvi_prompt_part *part = &pr.parts[i];
		if (!part->tokens) {
			same &= k < want->n && tu_json_at(want, k)->num == -200;
			k++;
			continue;
		}
		for (int64_t t = 0; t < part->n; t++, k++)
			same &= k < want->n && tu_json_at(want, k)->num == part->tokens[t];
	}
	CHECK(same && k == want->n, "%s: prompt ids differ from the reference", name);
	rvi_prompt_free(&pr);
}

/* Our first-position top 5 is the reference's. */
static void check_first_top5(rv_context *ctx, const rv_prompt *p, const tu_json *top,
                             const char *name)
{
	if (vc_prefill(ctx, p, name) != RV_OK)
		return;
	const int64_t nv = ctx->model->info.n_vocab;
	int found = 0;
	for (size_t k = 0; k < 5; k++) {
		int id = (int)tu_json_get(tu_json_at(top, k), "id")->num;
		int above = 0; /* tokens with a higher logit than id */
		for (int64_t v = 0; v < nv; v++)
			above += ctx->logits[v] > ctx->logits[id];
		found += above < 5;
	}
	CHECK(found == 5, "%s: %d of the reference's first-position top 5 are in ours", name,
	      found);
}

static void check_greedy(rv_context *ctx, const rv_prompt *p, const tu_json *ref, const fixture *f)
{
	const double ms =
	    vc_greedy(ctx, p, ref, f->tol, f->exact_tokens ? VC_ALL_TOKENS : VC_FIRST_OR_TIE,
	              (int)tu_json_get(ref, "tokens.n_positions")->num, f->ref);
	CHECK(ms > 0, "no image encode time");
}

/* llama.cpp's layout "USER: <image>\n{q}\nASSISTANT:" (no system sentence),
 * the model's log-probs of three fixed continuations by teacher forcing. */
static void check_scored_candidates(rv_context *ctx, const rv_prompt *p, const tu_json *ref,
                                    const fixture *f)
{
	const tu_json *same = tu_json_get(ref, "same_prompt_as_llamacpp");
	const tu_json *cands = tu_json_get(same, "scored_candidates");
	if (!same || !cands)
		return; /* the stb-decoded references have none */
	rv_model *m = ctx->model;
	rvi_prompt pr;
	double ms;
	int rc = rvi_prompt_prepare(ctx, p, -1, &pr); /* for the image rows */
	if (rc == RV_OK)
		rc = rvi_prompt_encode_images(ctx, &pr, NULL, NULL, &ms);
	CHECK(rc == RV_OK, "%s", rv_context_error(ctx));
	if (rc != RV_OK)
		return;
	/* rebuild the text parts in llama.cpp's layout */
	const char *texts[2] = {"USER: ", "\ndescribe\nASSISTANT:"};
	rvi_prompt alt = {0};
	rvi_prompt_part parts[3] = {{0}};
	rvi_err err = {0};
	for (int i = 0; i < 2; i++)
		CHECK(rvi_tokenize(m->tok, texts[i], strlen(texts[i]), i == 0, false,
		                   &parts[2 * i].tokens, &parts[2 * i].n, &err) == RV_OK,
		      "%s", err.msg);
	parts[1].n = pr.images[0].shape.rows;
	alt.parts = parts;
	alt.n_parts = 3;
	alt.n_images = 1;
	alt.embd = pr.embd;
	alt.images = pr.images;
	const tu_json *want_ids = tu_json_get(same, "token_ids");
	size_t k = 0;
	bool ids_ok = true;
	for (int i = 0; i < 3; i++) {
		if (!parts[i].tokens) { /* one -200 stands for the image's rows */
			ids_ok &= k < want_ids->n && tu_json_at(want_ids, k++)->num == -200;
			continue;
		}
		for (int64_t t = 0; t < parts[i].n; t++, k++)
			ids_ok &=
			    k < want_ids->n && tu_json_at(want_ids, k)->num == parts[i].tokens[t];
	}
	ids_ok &= k == want_ids->n;
	CHECK(ids_ok, "llama.cpp-layout prompt ids differ");
	rc = rvi_prompt_prefill(ctx, &alt);
	CHECK(rc == RV_OK, "prefill: %s", rv_context_error(ctx));

	if (rc == RV_OK)
		vc_score_candidates(ctx, cands, "tokens", "token_logprobs",
		                    (int)tu_json_get(same, "best_by_mean_logprob")->num, f->tol,
		                    f->ref);
	free(parts[0].tokens);
	free(parts[2].tokens);
	rvi_prompt_free(&pr);
}

static void run_fixture(const fixture *f)
{
	tu_json *ref = tu_json_load(tu_data(f->ref));
	CHECK(ref != NULL, "%s", f->ref);
	rv_model *m;
	rv_context *ctx = vc_open(f->text_model, MMPROJ, &m);
	if (ref && ctx) {
		const char *images[1] = {tu_data(f->image)};
		char path[4096];
		snprintf(path, sizeof(path), "%s", images[0]);
		images[0] = path;
		rv_prompt p = {"describe", images, 1, NULL, NULL};
		check_prompt_ids(ctx, &p, tu_json_get(ref, "tokens.ids"), f->ref);
		check_first_top5(ctx, &p, tu_json_get(ref, "first_position_top10"), f->ref);
		check_greedy(ctx, &p, ref, f);
		check_scored_candidates(ctx, &p, ref, f);
	}
	rv_context_free(ctx);
	rv_model_free(m);
	tu_json_free(ref);
}

/* What must fail, and how. */
static void check_errors(void)
{
	char err[512];
	rv_model *m = NULL;
	rv_model_params mp = rv_model_default_params();
	/* a projector 128 wide on a 64-wide model: refused at load */
	CHECK(rv_model_load(tu_data("stories260K.gguf"), &mp, &m, err, sizeof(err)) == RV_OK, "%s",
	      err);
	rv_status st =
	    rv_model_load_mmproj(m, tu_data("tiny-llava-mmproj-f32.gguf"), err, sizeof(err));
	CHECK(st == RV_ERR_MODEL && strstr(err, "128") && strstr(err, "64"),
	      "width mismatch: %d %s", st, err);
	CHECK(!rv_model_has_vision(m), "a refused projector stays off");
	/* an image without a projector */
	rv_context *ctx = NULL;
	rv_context_params cp = rv_context_default_params();
	cp.no_cache = 1;
	CHECK(rv_context_new(m, &cp, &ctx, err, sizeof(err)) == RV_OK, "%s", err);
	const char *img[1] = {"x.png"};
	rv_prompt p = {"describe", img, 1, NULL, NULL};
	rv_gen_params gp = rv_gen_default_params();
	rv_result r;
	st = ctx ? rv_generate_prompt(ctx, &p, &gp, &r) : RV_ERR_INTERNAL;
	CHECK(st == RV_ERR_INVALID_ARG && strstr(rv_context_error(ctx), "mmproj"),
	      "image without projector: %d %s", st, ctx ? rv_context_error(ctx) : "");
	rv_context_free(ctx);
	rv_model_free(m);

	ctx = vc_open("tiny-llava-text-f32.gguf", MMPROJ, &m);
	if (!ctx) {
		rv_model_free(m);
		return;
	}
	gp.temp = 0;
	gp.n_candidates = 1;
	gp.n_predict = 4;
	/* corrupt, missing, too large: RV_ERR_IMAGE naming the file */
	static const char *const bad[] = {"bad/image-truncated.png", "bad/image-gif.gif",
	                                  "bad/image-huge-dims.png", "no-such-image.png"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char path[4096];
		snprintf(path, sizeof(path), "%s", tu_data(bad[i]));
		img[0] = path;
		st = rv_generate_prompt(ctx, &p, &gp, &r);
		CHECK(st == RV_ERR_IMAGE && strstr(rv_context_error(ctx), bad[i]), "%s: %d %s",
		      bad[i], st, rv_context_error(ctx));
	}
	/* a context too small for the image rows: refused before any compute */
	rv_context *small = NULL;
	cp.n_ctx = 40;
	CHECK(rv_context_new(m, &cp, &small, err, sizeof(err)) == RV_OK, "%s", err);
	char path[4096];
	snprintf(path, sizeof(path), "%s", tu_data("shapes_64x48.png"));
	img[0] = path;
	p.chat_template = "chatml"; /* a short system sentence: the image rows overflow */
	st = small ? rv_generate_prompt(small, &p, &gp, &r) : RV_ERR_INTERNAL;
	CHECK(st == RV_ERR_CONTEXT && strstr(rv_context_error(small), "image"),
	      "small context: %d %s", st, small ? rv_context_error(small) : "");
	CHECK(r.timings.image_encode_ms == 0, "the image was encoded before the check");
	rv_context_free(small);
	p.chat_template = "none";
	st = rv_generate_prompt(ctx, &p, &gp, &r);
	CHECK(st == RV_ERR_INVALID_ARG, "images with no template: %d", st);
	p.chat_template = "jinja-magic";
	st = rv_generate_prompt(ctx, &p, &gp, &r);
	CHECK(st == RV_ERR_INVALID_ARG && strstr(rv_context_error(ctx), "jinja-magic"),
	      "unknown template: %d", st);
	rv_context_free(ctx);
	rv_model_free(m);
}

int main(void)
{
	static const fixture fixtures[] = {
	    {"tiny-llava-text-f32.gguf", "shapes_64x48.png",
	     "ref-hf-llava-f32.shapes_64x48.describe.json", TOL_F32, true},
	    {"tiny-llava-text-f32.gguf", "shapes_100x80.jpg",
	     "ref-hf-llava-f32.shapes_100x80.describe.stb-decoded.json", TOL_F32, true},
	    {"tiny-llava-text-q8_0.gguf", "shapes_64x48.png",
	     "ref-hf-llava-q8_0.shapes_64x48.describe.json", TOL_Q8, false},
	    {"tiny-llava-text-q8_0.gguf", "shapes_100x80.jpg",
	     "ref-hf-llava-q8_0.shapes_100x80.describe.stb-decoded.json", TOL_Q8, false},
	};
	for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++)
		run_fixture(&fixtures[i]);
	check_errors();
	return tu_finish("test_llava");
}
