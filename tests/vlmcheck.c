/* vlmcheck.c: the shared end-to-end checks of the vision-language tests
 * (see vlmcheck.h). */
#include "tests/vlmcheck.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "src/api_internal.h"
#include "src/bestofn.h"
#include "src/prompt.h"

static double num(const tu_json *j, const char *path)
{
	const tu_json *v = tu_json_get(j, path);
	return v ? v->num : NAN;
}

rv_context *vc_open(const char *text, const char *mmproj, rv_model **m)
{
	char err[512];
	rv_model_params mp = rv_model_default_params();
	mp.n_threads = 2;
	*m = NULL;
	CHECK(rv_model_load(tu_data(text), &mp, m, err, sizeof(err)) == RV_OK, "%s", err);
	if (!*m)
		return NULL;
	if (mmproj)
		CHECK(rv_model_load_mmproj(*m, tu_data(mmproj), err, sizeof(err)) == RV_OK, "%s",
		      err);
	rv_context_params cp = rv_context_default_params();
	cp.no_cache = 1;
	rv_context *ctx = NULL;
	CHECK(rv_context_new(*m, &cp, &ctx, err, sizeof(err)) == RV_OK, "%s", err);
	return ctx;
}

void *vc_load_vision(const rvi_vision_arch *a, const char *name, rvi_gguf **g)
{
	rvi_err err = {0};
	void *model = NULL;
	*g = NULL;
	int rc = rvi_gguf_open(g, tu_data(name), &err);
	if (rc == RV_OK)
		rc = a->load(*g, &model, &err);
	CHECK(rc == RV_OK, "%s: %s", name, err.msg);
	if (rc != RV_OK) {
		rvi_gguf_close(*g);
		*g = NULL;
	}
	return model;
}

float *vc_encode(const rvi_vision_arch *a, const void *model, const rvi_pixels *px,
                 const char *name)
{
	rvi_err err = {0};
	const size_t n = (size_t)(px->shape.rows * a->n_embd_out(model));
	float *out = malloc(n * sizeof(float)), *out2 = malloc(n * sizeof(float));
	int rc = out && out2 ? a->encode(model, px, 1, out, &err) : RV_ERR_NOMEM;
	CHECK(rc == RV_OK, "%s: encode: %s", name, err.msg);
	rc = rc == RV_OK ? a->encode(model, px, 3, out2, &err) : rc;
	CHECK(rc == RV_OK && !memcmp(out, out2, n * sizeof(float)),
	      "%s: the embeddings depend on the thread count", name);
	free(out2);
	if (rc != RV_OK) {
		free(out);
		return NULL;
	}
	return out;
}

int vc_prefill(rv_context *ctx, const rv_prompt *p, const char *name)
{
	rvi_prompt pr;
	double ms;
	int rc = rvi_prompt_prepare(ctx, p, -1, &pr);
	if (rc == RV_OK)
		rc = rvi_prompt_encode_images(ctx, &pr, NULL, NULL, &ms);
	if (rc == RV_OK)
		rc = rvi_prompt_prefill(ctx, &pr);
	CHECK(rc == RV_OK, "%s: prefill: %s", name, rv_context_error(ctx));
	rvi_prompt_free(&pr);
	return rc;
}

void vc_prompt_ids(rv_context *ctx, const rv_prompt *p, const tu_json *want, int image_id,
                   const char *name)
{
	rvi_prompt pr;
	int rc = rvi_prompt_prepare(ctx, p, -1, &pr);
	CHECK(rc == RV_OK, "%s: prepare: %s", name, rv_context_error(ctx));
	if (rc != RV_OK)
		return;
	size_t k = 0;
	bool same = want != NULL;
	for (int i = 0; same && i < pr.n_parts; i++) {
		const rvi_prompt_part *part = &pr.parts[i];
		for (int64_t t = 0; same && t < part->n; t++, k++)
			same = k < want->n && tu_json_at(want, k)->num ==
			                          (part->tokens ? part->tokens[t] : image_id);
	}
	CHECK(same && k == want->n, "%s: prompt ids differ from the reference at %zu", name, k);
	rvi_prompt_free(&pr);
}

void vc_first_top10(rv_context *ctx, const rv_prompt *p, const tu_json *top, double tol,
                    bool same_order, const char *name)
{
	if (vc_prefill(ctx, p, name) != RV_OK || !top)
		return;
	const int64_t nv = ctx->model->info.n_vocab;
	const float *lg = ctx->logits;
	double mx = -INFINITY, z = 0;
	for (int64_t v = 0; v < nv; v++)
		mx = lg[v] > mx ? lg[v] : mx;
	for (int64_t v = 0; v < nv; v++)
		z += exp(lg[v] - mx);
	const double lse = mx + log(z);
	int in_top = 0, in_place = 0;
	double worst = 0;
	for (size_t k = 0; k < top->n; k++) {
		const int id = (int)num(tu_json_at(top, k), "id");
		int above = 0;
		for (int64_t v = 0; v < nv; v++)
			above += lg[v] > lg[id];
		in_top += above < 10;
		in_place += above == (int)k;
		const double d = fabs(lg[id] - lse - num(tu_json_at(top, k), "logprob"));
		worst = d > worst ? d : worst;
	}
	/* Q8_0 activations move near-tied logits: one of ten may trade places
	 * with the eleventh (its log-prob is still checked below) */
	CHECK(in_top >= (int)top->n - (same_order ? 0 : 1),
	      "%s: %d of the reference's top 10 are in ours", name, in_top);
	CHECK(!same_order || in_place == (int)top->n, "%s: %d of the top 10 in the same place",
	      name, in_place);
	CHECK(worst <= tol, "%s: first-position log-probs differ by %g", name, worst);
}

/* A near tie at the first step: our token within tol of the reference's
 * best in the reference's own distribution, and its log-prob as there. */
static void check_first_tie(const rv_result *r, const tu_json *ref, double tol, const char *name)
{
	const tu_json *top = tu_json_get(ref, "first_position_top10");
	double best = top ? tu_json_get(tu_json_at(top, 0), "logprob")->num : 0, ours = -INFINITY;
	for (size_t k = 0; top && k < top->n; k++)
		if ((int32_t)tu_json_get(tu_json_at(top, k), "id")->num == r->tokens[0])
			ours = tu_json_get(tu_json_at(top, k), "logprob")->num;
	CHECK(best - ours <= tol, "%s: first token %d is %g below the reference's", name,
	      r->tokens[0], best - ours);
	CHECK(fabs(r->logprobs[0] - ours) <= tol, "%s: first log-prob %g, reference %g", name,
	      r->logprobs[0], ours);
	printf("%s: first token a near tie (%.3g apart in the reference)\n", name, best - ours);
}

double vc_greedy(rv_context *ctx, const rv_prompt *p, const tu_json *ref, double tol,
                 vc_greedy_rule rule, int n_positions, const char *name)
{
	const tu_json *ids = tu_json_get(ref, "greedy.ids");
	const tu_json *lps = tu_json_get(ref, "greedy.logprobs");
	CHECK(ids && lps, "%s: no greedy reference", name);
	if (!ids || !lps)
		return -1;
	rv_gen_params gp = rv_gen_default_params();
	gp.temp = 0;
	gp.n_candidates = 1;
	gp.n_predict = (int)ids->n;
	gp.ignore_eos = 1; /* the reference does not stop at EOS */
	rv_result r;
	rv_status st = rv_generate_prompt(ctx, p, &gp, &r);
	CHECK(st == RV_OK, "%s: %s", name, rv_context_error(ctx));
	if (st != RV_OK)
		return -1;
	CHECK(n_positions < 0 || r.n_prompt_tokens == n_positions,
	      "%s: %d prompt positions, want %d", name, r.n_prompt_tokens, n_positions);
	int same = 0;
	double worst = 0;
	while (same < r.n_tokens && same < (int)ids->n &&
	       r.tokens[same] == (int32_t)tu_json_at(ids, (size_t)same)->num) {
		const double d = fabs(r.logprobs[same] - tu_json_at(lps, (size_t)same)->num);
		worst = d > worst ? d : worst;
		same++;
	}
	if (rule == VC_ALL_TOKENS)
		CHECK(same == (int)ids->n, "%s: greedy tokens part at step %d", name, same);
	else if (rule == VC_FIRST_TOKEN || r.n_tokens == 0)
		CHECK(same >= 1, "%s: the first greedy token differs", name);
	else if (same == 0)
		check_first_tie(&r, ref, tol, name);
	CHECK(worst <= tol, "%s: log-probs differ by %g (tolerance %g)", name, worst, tol);
	printf("%s: %d/%zu greedy tokens equal, max |logprob diff| %.3g\n", name, same, ids->n,
	       worst);
	const double ms = r.timings.image_encode_ms;
	rv_result_free(&r);
	return ms;
}

void vc_score_candidates(rv_context *ctx, const tu_json *cands, const char *tok_key,
                         const char *lp_key, int best, double tol, const char *name)
{
	CHECK(cands != NULL, "%s: no scored candidates", name);
	if (!cands)
		return;
	rv_result r;
	memset(&r, 0, sizeof(r));
	r.n_candidates = (int)cands->n;
	r.candidates = calloc(cands->n, sizeof(rv_candidate));
	for (size_t c = 0; c < cands->n; c++) {
		const tu_json *toks = tu_json_get(tu_json_at(cands, c), tok_key);
		rv_candidate *cd = &r.candidates[c];
		cd->n_tokens = toks ? (int)toks->n : 0;
		cd->tokens = malloc(sizeof(int32_t) * (size_t)cd->n_tokens + 1);
		cd->logprobs = calloc((size_t)cd->n_tokens + 1, sizeof(double));
		cd->text = strdup("");
		cd->finish_reason = RV_FINISH_EOS;
		for (int t = 0; t < cd->n_tokens; t++)
			cd->tokens[t] = (int32_t)tu_json_at(toks, (size_t)t)->num;
	}
	int rc = rvi_bestofn_score_reference(ctx, ctx->logits, &r);
	CHECK(rc == RV_OK, "%s: score: %s", name, rv_context_error(ctx));
	double worst = 0;
	for (size_t c = 0; rc == RV_OK && c < cands->n; c++) {
		const tu_json *lps = tu_json_get(tu_json_at(cands, c), lp_key);
		rv_candidate *cd = &r.candidates[c];
		CHECK(lps && lps->n == (size_t)cd->n_tokens, "%s: candidate %zu's log-probs", name,
		      c);
		for (int t = 0; lps && t < cd->n_tokens && (size_t)t < lps->n; t++) {
			const double d =
			    fabs(cd->ref_logprobs[t] - tu_json_at(lps, (size_t)t)->num);
			worst = d > worst ? d : worst;
			cd->logprobs[t] = cd->ref_logprobs[t]; /* rank on these */
		}
		free(cd->ref_logprobs);
		cd->ref_logprobs = NULL;
	}
	CHECK(worst <= tol, "%s: scored candidates differ by %g", name, worst);
	CHECK(rc == RV_OK && rvi_bestofn_rank(&r, RV_SCORE_MEAN, 0.1) == RV_OK && r.chosen == best,
	      "%s: best candidate %d", name, r.chosen);
	printf("%s: scored candidates max |logprob diff| %.3g\n", name, worst);
	rv_result_free(&r);
}

void vc_scored(rv_context *ctx, const rv_prompt *p, const tu_json *ref, const vc_scored_keys *k,
               double tol, const char *name)
{
	const tu_json *best = tu_json_get(ref, k->best);
	if (vc_prefill(ctx, p, name) == RV_OK)
		vc_score_candidates(ctx, tu_json_get(ref, k->candidates), k->tokens, k->logprobs,
		                    best ? (int)best->num : -1, tol, name);
}

static bool same_candidate(const rv_candidate *a, const rv_candidate *b)
{
	return a->n_tokens == b->n_tokens && a->finish_reason == b->finish_reason &&
	       !memcmp(a->tokens, b->tokens, sizeof(int32_t) * (size_t)a->n_tokens) &&
	       !memcmp(a->logprobs, b->logprobs, sizeof(double) * (size_t)a->n_tokens);
}

void vc_bestofn(rv_context *ctx, const rv_prompt *p, rv_context *ref, double ref_tol,
                const char *name)
{
	enum { N = 4 };
	rv_gen_params gp = rv_gen_default_params();
	gp.n_candidates = N;
	gp.temp = 0.9f;
	gp.seed = 42;
	gp.n_predict = 12;
	gp.ignore_eos = 1;
	rv_result batch;
	rv_status st = rv_generate_prompt(ctx, p, &gp, &batch);
	CHECK(st == RV_OK && batch.n_candidates == N, "%s: best-of-%d: %s", name, N,
	      rv_context_error(ctx));
	if (st != RV_OK)
		return;
	int distinct = 0;
	for (int i = 0; i < N; i++) {
		rv_gen_params one = gp;
		one.n_candidates = 1;
		one.seed = rv_candidate_seed(42, i);
		rv_result r;
		CHECK(rv_generate_prompt(ctx, p, &one, &r) == RV_OK, "single %d", i);
		CHECK(r.n_candidates == 1 && same_candidate(&r.candidates[0], &batch.candidates[i]),
		      "%s: candidate %d decoded alone differs from the batch", name, i);
		distinct += i > 0 && !same_candidate(&batch.candidates[i], &batch.candidates[0]);
		rv_result_free(&r);
	}
	CHECK(distinct > 0, "%s: all candidates are the same", name);
	rv_result_free(&batch);

	/* the reference scores the candidates: the model itself gives their
	 * own log-probs (up to float summation order) */
	rv_context *own = NULL;
	if (!ref) {
		char err[512];
		rv_context_params cp = rv_context_default_params();
		cp.no_cache = 1;
		CHECK(rv_context_new(ctx->model, &cp, &own, err, sizeof(err)) == RV_OK, "%s", err);
		ref = own;
	}
	gp.reference = ref;
	st = ref ? rv_generate_prompt(ctx, p, &gp, &batch) : RV_ERR_INTERNAL;
	CHECK(st == RV_OK, "%s: with a reference: %s", name, rv_context_error(ctx));
	double worst = 0;
	for (int i = 0; st == RV_OK && i < batch.n_candidates; i++) {
		const rv_candidate *c = &batch.candidates[i];
		CHECK(c->ref_logprobs != NULL, "candidate %d has no reference log-probs", i);
		for (int t = 0; c->ref_logprobs && t < c->n_tokens; t++) {
			double d = fabs(c->ref_logprobs[t] - c->logprobs[t]);
			worst = d > worst ? d : worst;
		}
	}
	CHECK(worst <= ref_tol, "%s: reference log-probs differ from the sampled ones by %g", name,
	      worst);
	printf("%s: best-of-%d equal to solo runs; reference log-probs within %.3g\n", name, N,
	       worst);
	if (st == RV_OK)
		rv_result_free(&batch);
	rv_context_free(own);
}
