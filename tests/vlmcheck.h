/* vlmcheck.h: the end-to-end checks the vision-language tests share,
 * against a Hugging Face reference JSON: prompt ids with image rows, the
 * first position's top 10, greedy tokens and log-probs, teacher-forced
 * candidate scores, and best-of-N against solo runs and a reference
 * model. Each counts through CHECK (testutil.h). */
#ifndef RLAIFV_VLMCHECK_H
#define RLAIFV_VLMCHECK_H

#include <stdbool.h>

#include "rlaifv.h"
#include "tests/testutil.h"

/* A text model (tests/data/text) with a projector (tests/data/mmproj, or
 * NULL) and a context without the image cache; NULL on failure. */
rv_context *vc_open(const char *text, const char *mmproj, rv_model **m);

/* Our prompt's ids, with image_id for every image row, are want's. */
void vc_prompt_ids(rv_context *ctx, const rv_prompt *p, const tu_json *want, int image_id,
                   const char *name);

/* After the prompt: each of the reference's first-position top 10 (ids
 * and logprobs) within our top 10 and its log-prob within tol; with
 * same_order, in the same places (else one may trade places). */
void vc_first_top10(rv_context *ctx, const rv_prompt *p, const tu_json *top, double tol,
                    bool same_order, const char *name);

/* ref's greedy.ids and greedy.logprobs: exact, every token equal, else
 * the first; log-probs within tol while the tokens agree; the prompt
 * takes n_positions. */
void vc_greedy(rv_context *ctx, const rv_prompt *p, const tu_json *ref, double tol, bool exact,
               const char *name, int n_positions);

/* Where a reference JSON keeps its scored candidates: the array, each
 * candidate's token and log-prob arrays, and the index of the best by
 * mean log-prob. */
typedef struct vc_scored_keys {
	const char *candidates, *tokens, *logprobs, *best;
} vc_scored_keys;

/* The candidates scored by teacher forcing right after the prompt, within
 * tol, and the best by mean log-prob the same. */
void vc_scored(rv_context *ctx, const rv_prompt *p, const tu_json *ref, const vc_scored_keys *k,
               double tol, const char *name);

/* Best-of-4 at temperature 0.9: every candidate equal bit for bit to its
 * solo run with its own seed; then ref (NULL: ctx's model on a context of
 * its own) scores the candidates: their ref_logprobs within ref_tol of
 * the sampled log-probs. */
void vc_bestofn(rv_context *ctx, const rv_prompt *p, rv_context *ref, double ref_tol,
                const char *name);

#endif
