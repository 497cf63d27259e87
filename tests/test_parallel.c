/* test_parallel.c: rv_generate_batch against each task run alone. For
 * every family's tiny model (LLaMA-like text, LLaVA, SmolVLM, Qwen2.5-VL's
 * M-RoPE positions, Gemma 3's sliding-window rings, MiniCPM-V), a batch of
 * tasks with different prompts, images, lengths, seeds and candidate
 * counts (best-of-N inside a task beside single answers) is run with 1, 4
 * and 8 tasks at once: every result, its tokens, log-probabilities,
 * reference log-probabilities, scores and ranks, must equal the one
 * rv_generate_prompt gives alone, bit for bit; a task's own error (a
 * missing image) is its own. Also the limits: the slots' positions are
 * checked against RV_MAX_CTX, n_parallel against RV_MAX_PARALLEL. */
#include <stdlib.h>
#include <string.h>

#include "src/kvcache.h"
#include "rlaifv.h"
#include "tests/testutil.h"

#define MAX_TASKS 10

typedef struct family {
	const char *name, *model, *mmproj, *ref_model;
	const char *img[3]; /* three images of different sizes */
	int n_batch;        /* Gemma 3: small, so the rings wrap */
} family;

static const family families[] = {
    {"stories (LLaMA, text)", "stories260K.gguf", NULL, NULL, {NULL, NULL, NULL}, 512},
    {"llava (with a reference model)",
     "tiny-llava-text-f32.gguf",
     "tiny-llava-mmproj-f32.gguf",
     "tiny-llava-text-q8_0.gguf",
     {"shapes_64x48.png", "shapes_100x80.jpg", "image-topdown.bmp"},
     512},
    {"smolvlm",
     "smolvlm/tiny-smolvlm-text-f32.gguf",
     "smolvlm/tiny-smolvlm-mmproj-f32.gguf",
     NULL,
     {"shapes_64x48.png", "smolvlm/wide_200x80.png", "smolvlm/small_40x28.png"},
     512},
    {"qwen2.5-vl",
     "qwen25vl/tiny-qwen25vl-text-f32.gguf",
     "qwen25vl/tiny-qwen25vl-mmproj-f32.gguf",
     NULL,
     {"qwen25vl/shapes_64x48.png", "qwen25vl/wide_294x84.png", "qwen25vl/tall_140x170.png"},
     512},
    {"gemma3",
     "gemma3/tiny-gemma3-text-f32.gguf",
     "gemma3/tiny-gemma3-mmproj-f32.gguf",
     NULL,
     {"gemma3/shapes_64x48.png", "gemma3/wide_96x40.png", "gemma3/shapes_100x80.jpg"},
     20},
    {"minicpm-v",
     "minicpmv/tiny-minicpmv-text-f32.gguf",
     "minicpmv/tiny-minicpmv-mmproj-f32.gguf",
     NULL,
     {"minicpmv/grid_200x150.png", "shapes_64x48.png", "shapes_100x80.jpg"},
     512},
};

typedef struct outcome {
	rv_status st;
	rv_result res;
	int calls;
} outcome;

static void on_task(int index, rv_status st, const char *msg, rv_result *res, void *user)
{
	outcome *o = user;
	(void)msg;
	o[index].st = st;
	o[index].res = *res;
	o[index].calls++;
	memset(res, 0, sizeof(*res)); /* taken over */
}

static rv_context *open_ctx(const char *model, const char *mmproj, int n_batch, rv_model **m)
{
	char err[512];
	rv_model_params mp = rv_model_default_params();
	mp.n_threads = 2;
	*m = NULL;
	rv_context *ctx = NULL;
	CHECK(rv_model_load(tu_data(model), &mp, m, err, sizeof(err)) == RV_OK, "%s: %s", model,
	      err);
	if (*m && mmproj)
		CHECK(rv_model_load_mmproj(*m, tu_data(mmproj), err, sizeof(err)) == RV_OK,
		      "%s: %s", mmproj, err);
	rv_context_params cp = rv_context_default_params();
	cp.n_ctx = 1024;
	cp.n_batch = n_batch;
	cp.no_cache = 1;
	if (*m)
		CHECK(rv_context_new(*m, &cp, &ctx, err, sizeof(err)) == RV_OK, "%s", err);
	return ctx;
}

static int same_doubles(const double *a, const double *b, int n)
{
	return (!a && !b) || (a && b && memcmp(a, b, (size_t)n * sizeof(double)) == 0);
}

/* got equals want in every token, log-prob, score and rank */
static void compare(const char *fam, int k, int i, const outcome *got, const outcome *want)
{
	CHECK(got->calls == 1, "%s K=%d task %d: on_task called %d times", fam, k, i, got->calls);
	CHECK(got->st == want->st, "%s K=%d task %d: status %d, alone %d", fam, k, i, got->st,
	      want->st);
	const rv_result *a = &got->res, *b = &want->res;
	if (got->st != RV_OK || want->st != RV_OK)
		return;
	CHECK(a->n_candidates == b->n_candidates && a->chosen == b->chosen &&
	          a->n_tokens == b->n_tokens && a->n_prompt_tokens == b->n_prompt_tokens,
	      "%s K=%d task %d: %d candidates (chosen %d, %d tokens), alone %d (%d, %d)", fam, k, i,
	      a->n_candidates, a->chosen, a->n_tokens, b->n_candidates, b->chosen, b->n_tokens);
	CHECK(a->text && b->text && !strcmp(a->text, b->text), "%s K=%d task %d: '%s', alone '%s'",
	      fam, k, i, a->text ? a->text : "(null)", b->text ? b->text : "(null)");
	for (int c = 0; c < a->n_candidates && c < b->n_candidates; c++) {
		const rv_candidate *x = &a->candidates[c], *y = &b->candidates[c];
		const int n = x->n_tokens;
		CHECK(n == y->n_tokens && x->finish_reason == y->finish_reason &&
		          !memcmp(x->tokens, y->tokens, (size_t)n * sizeof(int32_t)) &&
		          same_doubles(x->logprobs, y->logprobs, n) &&
		          same_doubles(x->ref_logprobs, y->ref_logprobs, n) &&
		          x->score == y->score && x->ref_score == y->ref_score &&
		          x->rank == y->rank && !strcmp(x->text, y->text),
		      "%s K=%d task %d candidate %d: %d tokens (score %.17g), alone %d (%.17g)",
		      fam, k, i, c, n, x->score, y->n_tokens, y->score);
	}
}

static void test_family(const family *f)
{
	rv_model *m = NULL, *rm = NULL;
	rv_context *ctx = open_ctx(f->model, f->mmproj, f->n_batch, &m);
	rv_context *ref = f->ref_model ? open_ctx(f->ref_model, f->mmproj, f->n_batch, &rm) : NULL;
	if (!ctx || (f->ref_model && !ref))
		goto out;
	const bool vis = f->mmproj != NULL;
	char paths[3][4096];
	const char *im[3];
	for (int i = 0; i < 3; i++) {
		snprintf(paths[i], sizeof(paths[i]), "%s", vis ? tu_data(f->img[i]) : "");
		im[i] = paths[i];
	}
	const char *two[2] = {im[0], im[1]};
	const char *missing[1] = {"no-such-image.png"};
	const char *tmpl = vis ? NULL : "none";
	/* prompts of different lengths, images of different sizes, and best-of-N
	 * beside single answers; ignore_eos makes some long enough to wrap
	 * Gemma 3's rings */
	rv_prompt pr[MAX_TASKS] = {
	    {"describe", vis ? im : NULL, vis, tmpl, NULL, 0, 0},
	    {"What is in this picture, and what colours are the shapes?", vis ? im + 1 : NULL, vis,
	     tmpl, NULL, 0, 0},
	    {"Once upon a time", NULL, 0, vis ? "none" : tmpl, NULL, 0, 0},
	    {"compare the two", vis ? two : NULL, vis ? 2 : 0, tmpl, NULL, 0, 0},
	    {"Lily", vis ? im + 2 : NULL, vis, tmpl, NULL, 0, 0},
	    {"The little dog", NULL, 0, vis ? NULL : tmpl, NULL, 0, 0},
	    {"describe", vis ? im + 1 : NULL, vis, tmpl, NULL, 0, 0},
	    {"a missing picture", vis ? missing : NULL, vis, tmpl, NULL, 0, 0},
	    {"Once", NULL, 0, tmpl, NULL, 0, 0},
	};
	const int n_tasks = 9;
	rv_gen_params gp[MAX_TASKS];
	const int cands[] = {1, 3, 1, 2, 1, 4, 1, 1, 2};
	const int npred[] = {12, 20, 8, 10, 40, 10, 5, 6, 0};
	for (int i = 0; i < n_tasks; i++) {
		gp[i] = rv_gen_default_params();
		gp[i].n_candidates = cands[i];
		gp[i].n_predict = npred[i];
		gp[i].seed = 100 + (uint64_t)i;
		gp[i].temp = i == 2 || i == 6 ? 0.0f : 0.9f;
		gp[i].ignore_eos = i == 4 || i == 1;
		gp[i].reference = ref;
	}
	outcome alone[MAX_TASKS] = {0};
	for (int i = 0; i < n_tasks; i++) {
		alone[i].st = rv_generate_prompt(ctx, &pr[i], &gp[i], &alone[i].res);
		alone[i].calls = 1;
		CHECK(alone[i].st == (i == 7 && vis ? RV_ERR_IMAGE : RV_OK),
		      "%s: task %d alone: %s", f->name, i, rv_context_error(ctx));
	}
	const int ks[] = {1, 4, 8};
	for (size_t kk = 0; kk < sizeof(ks) / sizeof(ks[0]); kk++) {
		outcome got[MAX_TASKS] = {0};
		rv_status st = rv_generate_batch(ctx, n_tasks, pr, gp, ks[kk], on_task, got);
		CHECK(st == RV_OK, "%s K=%d: %s", f->name, ks[kk], rv_context_error(ctx));
		for (int i = 0; i < n_tasks; i++) {
			compare(f->name, ks[kk], i, &got[i], &alone[i]);
			rv_result_free(&got[i].res);
		}
	}
	/* the context is as before: a single run still gives the same */
	outcome again = {0};
	again.st = rv_generate_prompt(ctx, &pr[1], &gp[1], &again.res);
	again.calls = 1;
	compare(f->name, 0, 1, &again, &alone[1]);
	rv_result_free(&again.res);
	for (int i = 0; i < n_tasks; i++)
		rv_result_free(&alone[i].res);
out:
	rv_context_free(ref);
	rv_context_free(ctx);
	rv_model_free(rm);
	rv_model_free(m);
}

static void test_limits(void)
{
	/* slots x n_ctx beyond RV_MAX_CTX: refused before any allocation */
	rvi_kvcache kv;
	rvi_err err = {0};
	CHECK(rvi_kvcache_init(&kv, 1, RV_MAX_CTX / 4, 16, &err) == RV_OK, "%s", err.msg);
	CHECK(rvi_kvcache_slots(&kv, 5, &err) == RV_ERR_CONTEXT && strstr(err.msg, "5 prompts"),
	      "5 slots of a quarter of RV_MAX_CTX: '%s'", err.msg);
	CHECK(rvi_kvcache_slots(&kv, 4, &err) == RV_OK && kv.n_slots == 4, "4 slots: %s", err.msg);
	CHECK(rvi_kvcache_slots(&kv, RVI_KV_SLOTS + 1, &err) == RV_ERR_INVALID_ARG,
	      "too many slots");
	rvi_kvcache_free(&kv);

	rv_model *m = NULL;
	rv_context *ctx = open_ctx("stories260K.gguf", NULL, 512, &m);
	if (ctx) {
		rv_prompt pr = {"Lily", NULL, 0, "none", NULL, 0, 0};
		rv_gen_params gp = rv_gen_default_params();
		outcome got[1] = {0};
		CHECK(rv_generate_batch(ctx, 1, &pr, &gp, 0, on_task, got) == RV_ERR_INVALID_ARG &&
		          rv_generate_batch(ctx, 1, &pr, &gp, RV_MAX_PARALLEL + 1, on_task, got) ==
		              RV_ERR_INVALID_ARG &&
		          strstr(rv_context_error(ctx), "n_parallel") && got[0].calls == 0,
		      "n_parallel out of range: %s", rv_context_error(ctx));
		CHECK(rv_generate_batch(ctx, 1, &pr, &gp, 2, NULL, NULL) == RV_ERR_INVALID_ARG,
		      "no on_task");
		CHECK(rv_generate_batch(ctx, 0, NULL, NULL, 2, on_task, got) == RV_OK &&
		          got[0].calls == 0,
		      "an empty batch");
	}
	rv_context_free(ctx);
	rv_model_free(m);
}

int main(void)
{
	test_limits();
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
		test_family(&families[i]);
	return tu_finish("test_parallel");
}
