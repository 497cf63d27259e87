/* vlmcheck.h: the end-to-end checks the vision-language tests share,
 * against a Hugging Face reference JSON: prompt ids with image rows, the
 * first position's top 10, greedy tokens and log-probs, teacher-forced
 * candidate scores, and best-of-N against solo runs and a reference
 * model. Each counts through CHECK (testutil.h). They call the library
 * (link the internal one); testutil.h's helpers do not. */
#ifndef RLAIFV_VLMCHECK_H
#define RLAIFV_VLMCHECK_H

#include <stdbool.h>

#include "models/arch.h"
#include "rlaifv.h"
#include "tests/testutil.h"

/* A text model (tests/data/text) with a projector (tests/data/mmproj, or
 * NULL) and a context without the image cache; NULL on failure. */
rv_context *vc_open(const char *text, const char *mmproj, rv_model **m);

/* The projector tests/data/name loaded by a (checked): the model, and in
 * *g its open file (rvi_gguf_close after a->free); NULL on failure, with
 * *g closed. */
void *vc_load_vision(const rvi_vision_arch *a, const char *name, rvi_gguf **g);

/* px through a's encoder at 1 and at 3 threads, which must agree bit for
 * bit (checked, naming name): its (rows, n_embd_out) embeddings,
 * malloc'ed, or NULL on failure. */
float *vc_encode(const rvi_vision_arch *a, const void *model, const rvi_pixels *px,
                 const char *name);

/* Prepares p in ctx, encodes its images afresh and prefills it: ctx's
 * logits are then the first generated position's. RV_OK, or the status
 * (checked, naming name). */
int vc_prefill(rv_context *ctx, const rv_prompt *p, const char *name);

/* Our prompt's ids, with image_id for every image row, are want's. */
void vc_prompt_ids(rv_context *ctx, const rv_prompt *p, const tu_json *want, int image_id,
                   const char *name);

/* After the prompt: each of the reference's first-position top 10 (ids
 * and logprobs) within our top 10 and its log-prob within tol; with
 * same_order, in the same places (else one may trade places). */
void vc_first_top10(rv_context *ctx, const rv_prompt *p, const tu_json *top, double tol,
                    bool same_order, const char *name);

/* How far greedy ids must follow the reference's. */
typedef enum vc_greedy_rule {
	VC_ALL_TOKENS,  /* every one */
	VC_FIRST_TOKEN, /* the first */
	/* the first, or a near tie: our first token within tol of the
	 * reference's best in its first_position_top10 (quantized
	 * activations may flip one) */
	VC_FIRST_OR_TIE,
} vc_greedy_rule;

/* Greedy decoding of p (no stop at EOS) against ref's greedy.ids and
 * greedy.logprobs: the ids as rule says, the log-probs within tol while
 * the ids agree, and with n_positions >= 0 the prompt's positions. Prints
 * a summary line; returns the image encode time (ms), -1 when generation
 * failed. */
double vc_greedy(rv_context *ctx, const rv_prompt *p, const tu_json *ref, double tol,
                 vc_greedy_rule rule, int n_positions, const char *name);

/* Where a reference JSON keeps its scored candidates: the array, each
 * candidate's token and log-prob arrays, and the index of the best by
 * mean log-prob. */
typedef struct vc_scored_keys {
	const char *candidates, *tokens, *logprobs, *best;
} vc_scored_keys;

/* The continuations cands (objects with the ids under tok_key and the
 * reference's log-probs under lp_key) scored by teacher forcing after the
 * prompt ctx has prefilled: every log-prob within tol of the reference's,
 * and best (an index) the best by mean log-prob. */
void vc_score_candidates(rv_context *ctx, const tu_json *cands, const char *tok_key,
                         const char *lp_key, int best, double tol, const char *name);

/* vc_prefill of p, then vc_score_candidates of ref's candidates as k
 * names them. */
void vc_scored(rv_context *ctx, const rv_prompt *p, const tu_json *ref, const vc_scored_keys *k,
               double tol, const char *name);

/* Best-of-4 at temperature 0.9: every candidate equal bit for bit to its
 * solo run with its own seed; then ref (NULL: ctx's model on a context of
 * its own) scores the candidates: their ref_logprobs within ref_tol of
 * the sampled log-probs. */
void vc_bestofn(rv_context *ctx, const rv_prompt *p, rv_context *ref, double ref_tol,
                const char *name);

#endif
