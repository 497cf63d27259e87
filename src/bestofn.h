/* bestofn.h: self-feedback inference-time scaling (RLAIF-V): N candidate
 * answers decoded together from one shared, already-prefilled prompt, each
 * scored by its length-normalized log-probability (or against a reference
 * model), and ranked. Owns the candidates' decoding loop, scoring and
 * ranking; prompt building and prefill belong to api.c. */
#ifndef RLAIFV_BESTOFN_H
#define RLAIFV_BESTOFN_H

#include "src/api_internal.h"
#include "rlaifv.h"

/* Decodes p->n_candidates answers (at least one) in batched steps after
 * the prompt that ctx's cache holds; prefix_logits (n_vocab) are the
 * prompt's last-position logits, which every candidate samples its first
 * token from. Each candidate continues the prefix in a KV suffix of its
 * own; a finished one leaves the batch. Fills res->candidates (n_tokens,
 * tokens, logprobs, text, finish_reason). max_new is the most tokens per
 * candidate. RV_ERR_INTERRUPTED leaves what was generated. */
int rvi_bestofn_decode(rv_context *ctx, const rv_gen_params *p, const float *prefix_logits,
                       int64_t max_new, rv_result *res);

/* The same for several prompts at once (rv_generate_batch): each prompt's
 * candidates are a job in a slot of ctx's cache, and every step decodes the
 * live candidates of all jobs in one batch. A candidate's tokens and
 * log-probabilities are those rvi_bestofn_decode gives it alone. */
typedef struct rvi_live_cand rvi_live_cand;

typedef struct rvi_job {
	rv_gen_params p;
	int64_t max_new, pos0; /* pos0: the position after the prompt */
	int slot, n, n_done, n_generated;
	rv_result *res;
	rvi_live_cand *lc; /* (n) */
	double t0;
} rvi_job;

/* The working memory of steps (rows of logits, the batch), kept between
 * steps; zero-initialized before the first. */
typedef struct rvi_step {
	float *logits;
	int32_t *tok, *seq;
	rvi_pos *pos;
	rvi_live_cand **who;
	int cap;
	char *piece;
	size_t piece_cap;
} rvi_step;

/* Starts decoding p->n_candidates answers of the prompt slot `slot` of
 * ctx's cache holds, ctx->pos_next being the position after it; draws each
 * candidate's first token from prefix_logits (which may then go). Fills
 * res->candidates as rvi_bestofn_decode. Call rvi_job_end even on failure. */
int rvi_job_start(rv_context *ctx, rvi_job *j, const rv_gen_params *p, const float *prefix_logits,
                  int64_t max_new, int slot, rv_result *res);

/* One step of the jobs: takes every live candidate's token (a finished one
 * leaves), decodes those going on in one batch and draws their next
 * tokens. *stop is set when an on_text callback asks to stop. */
int rvi_jobs_step(rv_context *ctx, rvi_job *const *jobs, int n_jobs, rvi_step *st, bool *stop);

/* Ends a job: flushes held-back text, marks unfinished candidates STOPPED
 * when stopped (then RV_ERR_INTERRUPTED), sets the decode timings and frees
 * the samplers. rc: the job's status so far, returned when not RV_OK. */
int rvi_job_end(rv_context *ctx, rvi_job *j, rvi_step *st, bool stopped, int rc);
void rvi_step_free(rvi_step *st);

/* Teacher forcing: with ref's cache holding the prompt and prefix_logits
 * its last-position logits, computes every candidate's ref_logprobs in
 * batched passes (all candidates' tokens in one batch). */
int rvi_bestofn_score_reference(rv_context *ref, const float *prefix_logits, rv_result *res);

/* score = the reward of rlaifv.h's rv_candidate (ref_logprobs used when
 * present), then ranks: finished before truncated, higher score first,
 * lower index on ties; sets rank, res->chosen and copies the chosen one's
 * text, tokens and log-probs into the top-level fields. */
int rvi_bestofn_rank(rv_result *res, rv_score_mode mode, double beta);

#endif
