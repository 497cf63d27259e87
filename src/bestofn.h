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
