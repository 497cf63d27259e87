/* testref.h: the checks the vision-language tests share against the
 * Hugging Face reference JSON files (greedy ids and log-probs, teacher-
 * forced continuations). They call the library (link the internal one);
 * testutil.h's helpers do not. */
#ifndef RLAIFV_TESTREF_H
#define RLAIFV_TESTREF_H

#include "rlaifv.h"
#include "tests/testutil.h"

/* Prepares p in ctx, encodes its images and prefills it: ctx's logits are
 * then the first generated position's. RV_OK, or the status (checked,
 * naming name). */
int tr_prefill(rv_context *ctx, const rv_prompt *p, const char *name);

/* How far greedy ids must follow the reference's. */
typedef enum tr_greedy_rule {
	TR_ALL_TOKENS,  /* every one */
	TR_FIRST_TOKEN, /* the first */
	/* the first, or a near tie: our first token within tol of the
	 * reference's best in its first_position_top10 (quantized
	 * activations may flip one) */
	TR_FIRST_OR_TIE,
} tr_greedy_rule;

/* Greedy decoding of p (no stop at EOS) against ref's greedy.ids and
 * greedy.logprobs: the ids as rule says, the log-probs within tol while
 * the ids agree, and with n_positions >= 0 the prompt's positions. Prints
 * a summary line; returns the image encode time (ms), -1 when generation
 * failed. */
double tr_check_greedy(rv_context *ctx, const rv_prompt *p, const tu_json *ref, double tol,
                       tr_greedy_rule rule, int n_positions, const char *name);

/* The continuations cands (objects with the ids under tok_key and the
 * reference's log-probs under lp_key) scored by teacher forcing after the
 * prompt ctx has prefilled: every log-prob within tol of the reference's,
 * and best (an index) the best by mean log-prob. */
void tr_check_scored(rv_context *ctx, const tu_json *cands, const char *tok_key, const char *lp_key,
                     int best, double tol, const char *name);

#endif
