/* test_bestofn.c: best-of-N. Ranking and the reward formulas against values
 * computed here; batched decoding against each candidate decoded alone;
 * log-probs collected while generating against teacher-forced rescoring and
 * against llama.cpp's recorded log-probs; thread-count determinism. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/llama.h"
#include "src/api_internal.h"
#include "src/bestofn.h"
#include "rlaifv.h"
#include "tests/testutil.h"

/* ---- ranking on hand-made candidates ------------------------------------ */

static void set_candidate(rv_candidate *c, int n, const double *lp, const double *ref,
                          rv_finish fin)
{
	memset(c, 0, sizeof(*c));
	c->n_tokens = n;
	c->tokens = calloc((size_t)(n ? n : 1), sizeof(int32_t));
	c->logprobs = malloc(sizeof(double) * (size_t)(n ? n : 1));
	memcpy(c->logprobs, lp, sizeof(double) * (size_t)n);
	if (ref) {
		c->ref_logprobs = malloc(sizeof(double) * (size_t)(n ? n : 1));
		memcpy(c->ref_logprobs, ref, sizeof(double) * (size_t)n);
	}
	c->text = strdup("x");
	c->finish_reason = fin;
}

static void test_ranking(void)
{
	/* mean log-probs: c0 -1.0 (eos), c1 -0.5 (truncated), c2 -0.75 (eos),
	 * c3 -0.75 (eos, ties c2), c4 -0.2 (truncated) */
	const double a[] = {-1.5, -0.5}, b[] = {-0.5}, c[] = {-0.25, -1.25, -0.75}, d[] = {-0.75},
	             e[] = {-0.1, -0.3};
	rv_result r;
	memset(&r, 0, sizeof(r));
	r.n_candidates = 5;
	r.candidates = calloc(5, sizeof(rv_candidate));
	set_candidate(&r.candidates[0], 2, a, NULL, RV_FINISH_EOS);
	set_candidate(&r.candidates[1], 1, b, NULL, RV_FINISH_LENGTH);
	set_candidate(&r.candidates[2], 3, c, NULL, RV_FINISH_EOS);
	set_candidate(&r.candidates[3], 1, d, NULL, RV_FINISH_EOS);
	set_candidate(&r.candidates[4], 2, e, NULL, RV_FINISH_LENGTH);
	CHECK(rvi_bestofn_rank(&r, RV_SCORE_MEAN, 0.1) == RV_OK, "rank");
	const double want_score[] = {-1.0, -0.5, -0.75, -0.75, -0.2};
	/* finished first by score (c2, c3 tie -> lower index first, then c0),
	 * then the truncated ones by score (c4, c1) */
	const int want_rank[] = {2, 4, 0, 1, 3};
	for (int i = 0; i < 5; i++) {
		CHECK(fabs(r.candidates[i].score - want_score[i]) < 1e-12, "mean score %d: %g", i,
		      r.candidates[i].score);
		CHECK(r.candidates[i].rank == want_rank[i], "rank of %d: %d, want %d", i,
		      r.candidates[i].rank, want_rank[i]);
	}
	CHECK(r.chosen == 2 && r.n_tokens == 3 && r.logprobs[2] == -0.75 &&
	          r.finish_reason == RV_FINISH_EOS,
	      "chosen %d", r.chosen);
	free(r.text);
	free(r.tokens);
	free(r.logprobs);
	r.text = NULL;
	r.tokens = NULL;
	r.logprobs = NULL;

	/* summed: c0 -2.0, c2 -2.25, c3 -0.75 -> c3, c0, c2; then c1 -0.5, c4 -0.4 */
	CHECK(rvi_bestofn_rank(&r, RV_SCORE_SUM, 0.1) == RV_OK, "rank sum");
	const int want_sum_rank[] = {1, 4, 2, 0, 3};
	for (int i = 0; i < 5; i++)
		CHECK(r.candidates[i].rank == want_sum_rank[i], "sum rank of %d: %d, want %d", i,
		      r.candidates[i].rank, want_sum_rank[i]);
	CHECK(r.chosen == 3, "sum chosen %d", r.chosen);
	rv_result_free(&r);

	/* with a reference: (beta/T) sum (lp - ref_lp) */
	const double lp0[] = {-1.0, -2.0}, ref0[] = {-1.5, -1.0}; /* (0.5 - 1.0)/2 */
	const double lp1[] = {-3.0, -3.0}, ref1[] = {-4.0, -4.0}; /* (1 + 1)/2 */
	memset(&r, 0, sizeof(r));
	r.n_candidates = 2;
	r.candidates = calloc(2, sizeof(rv_candidate));
	set_candidate(&r.candidates[0], 2, lp0, ref0, RV_FINISH_EOS);
	set_candidate(&r.candidates[1], 2, lp1, ref1, RV_FINISH_EOS);
	CHECK(rvi_bestofn_rank(&r, RV_SCORE_MEAN, 0.5) == RV_OK, "rank ref");
	CHECK(fabs(r.candidates[0].score - 0.5 * -0.25) < 1e-12, "ref score 0: %g",
	      r.candidates[0].score);
	CHECK(fabs(r.candidates[1].score - 0.5 * 1.0) < 1e-12, "ref score 1: %g",
	      r.candidates[1].score);
	CHECK(fabs(r.candidates[0].ref_score - -1.25) < 1e-12, "ref_score %g",
	      r.candidates[0].ref_score);
	CHECK(r.chosen == 1, "ref chosen %d (the lower own log-prob wins on the ratio)", r.chosen);
	/* beta scales, it does not reorder */
	int order[2] = {r.candidates[0].rank, r.candidates[1].rank};
	CHECK(rvi_bestofn_rank(&r, RV_SCORE_MEAN, 7.0) == RV_OK, "rank ref beta 7");
	CHECK(r.candidates[0].rank == order[0] && r.candidates[1].rank == order[1],
	      "beta reordered");
	rv_result_free(&r);
}

/* ---- generation on the fixture models ----------------------------------- */

static rv_model *load(const char *file, int n_threads)
{
	rv_model *m = NULL;
	char err[512];
	rv_model_params mp = rv_model_default_params();
	mp.n_threads = n_threads;
	CHECK(rv_model_load(tu_data(file), &mp, &m, err, sizeof(err)) == RV_OK, "%s: %s", file,
	      err);
	return m;
}

static rv_context *context(rv_model *m, int n_ctx)
{
	rv_context *ctx = NULL;
	char err[512];
	rv_context_params cp = rv_context_default_params();
	cp.n_ctx = n_ctx;
	CHECK(m && rv_context_new(m, &cp, &ctx, err, sizeof(err)) == RV_OK, "context: %s", err);
	return ctx;
}

static rv_gen_params sampling(int n, uint64_t seed, int n_predict)
{
	rv_gen_params gp = rv_gen_default_params();
	gp.n_candidates = n;
	gp.temp = 0.9f;
	gp.seed = seed;
	gp.n_predict = n_predict;
	return gp;
}

static bool same_candidate(const rv_candidate *a, const rv_candidate *b)
{
	return a->n_tokens == b->n_tokens && a->finish_reason == b->finish_reason &&
	       !memcmp(a->tokens, b->tokens, sizeof(int32_t) * (size_t)a->n_tokens) &&
	       !memcmp(a->logprobs, b->logprobs, sizeof(double) * (size_t)a->n_tokens) &&
	       !strcmp(a->text, b->text);
}

/* Batched decoding gives each candidate exactly what decoding it alone
 * with its seed gives: same tokens, bit-identical log-probs. */
static void test_batched_equals_single(const char *file)
{
	enum { N = 5 };
	rv_model *m = load(file, 2);
	rv_context *ctx = context(m, 128);
	if (!ctx) {
		rv_model_free(m);
		return;
	}
	rv_gen_params gp = sampling(N, 42, 24);
	rv_result batch;
	CHECK(rv_generate(ctx, "Once upon a time", &gp, &batch) == RV_OK, "batch: %s",
	      rv_context_error(ctx));
	CHECK(batch.n_candidates == N, "%d candidates", batch.n_candidates);
	int distinct = 0;
	for (int i = 0; i < N && batch.n_candidates == N; i++) {
		rv_gen_params one = sampling(1, rv_candidate_seed(42, i), 24);
		rv_result r;
		CHECK(rv_generate(ctx, "Once upon a time", &one, &r) == RV_OK, "single %d", i);
		CHECK(r.n_candidates == 1 && same_candidate(&r.candidates[0], &batch.candidates[i]),
		      "%s: candidate %d decoded alone differs from the batch", file, i);
		distinct += i > 0 && !same_candidate(&batch.candidates[i], &batch.candidates[0]);
		rv_result_free(&r);
	}
	CHECK(distinct > 0, "all candidates are the same: seeds not applied");
	CHECK(rv_candidate_seed(42, 0) == 42, "candidate 0 keeps the seed");
	rv_result_free(&batch);
	rv_context_free(ctx);
	rv_model_free(m);
}

/* Same seed, same candidates with 1 and 2 threads. */
static void test_thread_determinism(const char *file)
{
	rv_result r[2];
	rv_status st[2];
	for (int t = 0; t < 2; t++) {
		rv_model *m = load(file, t + 1);
		rv_context *ctx = context(m, 128);
		rv_gen_params gp = sampling(4, 7, 20);
		st[t] = ctx ? rv_generate(ctx, "Lily", &gp, &r[t]) : RV_ERR_INTERNAL;
		rv_context_free(ctx);
		rv_model_free(m);
	}
	CHECK(st[0] == RV_OK && st[1] == RV_OK, "generate");
	if (st[0] == RV_OK && st[1] == RV_OK) {
		bool same = r[0].n_candidates == r[1].n_candidates && r[0].chosen == r[1].chosen;
		for (int i = 0; same && i < r[0].n_candidates; i++)
			same = same_candidate(&r[0].candidates[i], &r[1].candidates[i]);
		CHECK(same, "%s: best-of-4 differs between 1 and 2 threads", file);
	}
	for (int t = 0; t < 2; t++)
		if (st[t] == RV_OK)
			rv_result_free(&r[t]);
}

/* The model as its own reference: teacher forcing all candidates in one
 * batched pass must give back the log-probs collected while generating
 * (1e-3 per token is the bound; they are computed the same way). */
static void test_rescoring(const char *file)
{
	rv_model *m = load(file, 2);
	rv_context *ctx = context(m, 256), *ref = context(m, 256);
	if (!ctx || !ref) {
		rv_context_free(ctx);
		rv_context_free(ref);
		rv_model_free(m);
		return;
	}
	rv_gen_params gp = sampling(4, 3, 30);
	gp.reference = ref;
	gp.beta = 0.1f;
	rv_result r;
	CHECK(rv_generate(ctx, "Once upon a time", &gp, &r) == RV_OK, "%s", rv_context_error(ctx));
	double worst = 0;
	for (int i = 0; i < r.n_candidates; i++) {
		const rv_candidate *c = &r.candidates[i];
		CHECK(c->ref_logprobs != NULL, "no ref_logprobs");
		for (int t = 0; c->ref_logprobs && t < c->n_tokens; t++) {
			double d = fabs(c->ref_logprobs[t] - c->logprobs[t]);
			worst = d > worst ? d : worst;
		}
		CHECK(fabs(c->score) < 1e-3, "self-referenced score %g", c->score);
	}
	CHECK(worst <= 1e-3, "%s: teacher forcing differs from generation by %g", file, worst);
	printf("%s: teacher-forced rescoring max |diff| %.3g\n", file, worst);
	rv_result_free(&r);
	rv_context_free(ref);
	rv_context_free(ctx);
	rv_model_free(m);
}

/* Teacher forcing of llama.cpp's recorded greedy continuation gives its
 * recorded log-probs (an independent check of the scoring path). */
static void test_teacher_forcing_ref(const char *model_file, const char *ref_file, double tol)
{
	tu_json *ref = tu_json_load(tu_data(ref_file));
	rv_model *m = load(model_file, 2);
	rv_context *ctx = context(m, 512);
	CHECK(ref != NULL, "%s", ref_file);
	if (!ref || !ctx) {
		tu_json_free(ref);
		rv_context_free(ctx);
		rv_model_free(m);
		return;
	}
	const tu_json *pt = tu_json_get(ref, "prompt_tokens");
	const tu_json *toks = tu_json_get(ref, "greedy.tokens");
	const tu_json *lps = tu_json_get(ref, "greedy.token_logprobs");
	int32_t prompt[64];
	int np = (int)pt->n;
	for (int i = 0; i < np && i < 64; i++)
		prompt[i] = (int32_t)tu_json_at(pt, (size_t)i)->num;
	/* two candidates: the whole continuation and its first half */
	rv_result r;
	memset(&r, 0, sizeof(r));
	r.n_candidates = 2;
	r.candidates = calloc(2, sizeof(rv_candidate));
	for (int c = 0; c < 2; c++) {
		int n = c == 0 ? (int)toks->n : (int)toks->n / 2;
		r.candidates[c].n_tokens = n;
		r.candidates[c].tokens = malloc(sizeof(int32_t) * (size_t)n);
		for (int t = 0; t < n; t++)
			r.candidates[c].tokens[t] = (int32_t)tu_json_at(toks, (size_t)t)->num;
	}
	rvi_err err = {0};
	rvi_kvcache_clear(ctx->kv);
	CHECK(rvi_llama_forward(m->text_model, ctx->state, prompt, NULL, np, ctx->logits, false, &err) ==
	          RV_OK,
	      "prefill: %s", err.msg);
	ctx->pos_next = np; /* what rvi_prompt_prefill would leave */
	CHECK(rvi_bestofn_score_reference(ctx, ctx->logits, &r) == RV_OK, "score: %s",
	      rv_context_error(ctx));
	double worst = 0;
	for (int c = 0; c < 2; c++)
		for (int t = 0; r.candidates[c].ref_logprobs && t < r.candidates[c].n_tokens; t++) {
			double d =
			    fabs(r.candidates[c].ref_logprobs[t] - tu_json_at(lps, (size_t)t)->num);
			worst = d > worst ? d : worst;
		}
	CHECK(worst <= tol, "%s: teacher-forced log-probs differ from llama.cpp's by %g",
	      model_file, worst);
	printf("%s: teacher forcing vs llama.cpp max |diff| %.3g\n", model_file, worst);
	rv_result_free(&r);
	rv_context_free(ctx);
	rv_model_free(m);
	tu_json_free(ref);
}

/* A candidate cut by -n is marked truncated; one that ends with EOS is
 * not, and its EOS token counts in its score. */
static void test_finish_reasons(void)
{
	/* A random-weight model at a high temperature reaches EOS by chance
	 * (stories260K never does: llama2.c separated its stories with BOS). */
	rv_model *m = load("tiny-llava-text-q8_0.gguf", 2);
	rv_context *ctx = context(m, 128);
	if (!ctx) {
		rv_model_free(m);
		return;
	}
	rv_gen_params gp = sampling(16, 11, -1);
	gp.temp = 1.5f;
	gp.top_k = 0;
	gp.top_p = 1.0f;
	gp.min_p = 0;
	rv_result r;
	CHECK(rv_generate(ctx, "Once upon a time", &gp, &r) == RV_OK, "generate");
	int eos = 0;
	for (int i = 0; i < r.n_candidates; i++) {
		const rv_candidate *c = &r.candidates[i];
		if (c->finish_reason == RV_FINISH_EOS) {
			eos++;
			CHECK(c->tokens[c->n_tokens - 1] == 2, "EOS candidate ends with %d",
			      c->tokens[c->n_tokens - 1]);
			double s = 0;
			for (int t = 0; t < c->n_tokens; t++)
				s += c->logprobs[t];
			CHECK(fabs(c->score - s / c->n_tokens) < 1e-12, "score with EOS");
		} else {
			CHECK(c->finish_reason == RV_FINISH_LENGTH &&
			          5 + c->n_tokens == rv_context_n_ctx(ctx),
			      "candidate %d: %d tokens, reason %d", i, c->n_tokens,
			      c->finish_reason);
		}
	}
	CHECK(eos > 0 && eos < r.n_candidates, "%d of %d candidates reached EOS", eos,
	      r.n_candidates);
	if (eos > 0)
		CHECK(r.candidates[r.chosen].finish_reason == RV_FINISH_EOS,
		      "a truncated candidate was chosen");
	rv_result_free(&r);

	/* -N > 1 with temperature 0 is refused */
	gp.temp = 0;
	CHECK(rv_generate(ctx, "Lily", &gp, &r) == RV_ERR_INVALID_ARG, "N>1 greedy");
	rv_context_free(ctx);
	rv_model_free(m);
}

int main(void)
{
	test_ranking();
	test_batched_equals_single("stories260K.gguf");
	test_batched_equals_single("tiny-llava-text-q8_0.gguf");
	test_batched_equals_single("tiny-kq-text-q4_k_m.gguf");
	test_thread_determinism("stories260K.gguf");
	test_thread_determinism("tiny-kq-text-q6_k.gguf");
	test_rescoring("tiny-llava-text-f32.gguf");
	test_rescoring("tiny-llava-text-q8_0.gguf");
	test_teacher_forcing_ref("tiny-llava-text-f32.gguf", "refs/text-f32.once_upon_a_time.json",
	                         1e-4);
	test_teacher_forcing_ref("stories260K.gguf", "refs/stories260K.Lily.json", 1e-4);
	test_finish_reasons();
	return tu_finish("test_bestofn");
}
