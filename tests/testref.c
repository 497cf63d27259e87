/* testref.c: checks against the Hugging Face references (see testref.h). */
#include "tests/testref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "src/api_internal.h"
#include "src/bestofn.h"
#include "src/prompt.h"

int tr_prefill(rv_context *ctx, const rv_prompt *p, const char *name)
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

double tr_check_greedy(rv_context *ctx, const rv_prompt *p, const tu_json *ref, double tol,
                       tr_greedy_rule rule, int n_positions, const char *name)
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
	if (rule == TR_ALL_TOKENS)
		CHECK(same == (int)ids->n, "%s: greedy tokens part at step %d", name, same);
	else if (rule == TR_FIRST_TOKEN || r.n_tokens == 0)
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

void tr_check_scored(rv_context *ctx, const tu_json *cands, const char *tok_key, const char *lp_key,
                     int best, double tol, const char *name)
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
		cd->n_tokens = (int)toks->n;
		cd->tokens = malloc(sizeof(int32_t) * toks->n);
		cd->logprobs = calloc(toks->n, sizeof(double));
		cd->text = strdup("");
		cd->finish_reason = RV_FINISH_EOS;
		for (size_t t = 0; t < toks->n; t++)
			cd->tokens[t] = (int32_t)tu_json_at(toks, t)->num;
	}
	int rc = rvi_bestofn_score_reference(ctx, ctx->logits, &r);
	CHECK(rc == RV_OK, "%s: score: %s", name, rv_context_error(ctx));
	double worst = 0;
	for (size_t c = 0; rc == RV_OK && c < cands->n; c++) {
		const tu_json *lps = tu_json_get(tu_json_at(cands, c), lp_key);
		rv_candidate *cd = &r.candidates[c];
		for (int t = 0; t < cd->n_tokens; t++) {
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
