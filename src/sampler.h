/* sampler.h: choosing the next token from raw logits (greedy, temperature,
 * top-k, top-p, min-p, seeded), and the chosen token's log-probability under
 * the raw, untempered, unfiltered distribution, which best-of-N scoring is
 * built on. Owns its RNG state and scratch; knows nothing of models. */
#ifndef RLAIFV_SAMPLER_H
#define RLAIFV_SAMPLER_H

#include <stdint.h>

#include "src/util.h"

typedef struct rvi_sampler_params {
	float temp;  /* <= 0: greedy (argmax, ties to the lowest id) */
	int top_k;   /* <= 0: off */
	float top_p; /* >= 1: off */
	float min_p; /* <= 0: off */
	uint64_t seed;
} rvi_sampler_params;

rvi_sampler_params
rvi_sampler_default_params(void); /* temp 0.8, top_k 40, top_p 0.95, min_p 0.05, seed 0 */

typedef struct rvi_sampler rvi_sampler;

int rvi_sampler_new(rvi_sampler **out, const rvi_sampler_params *p, int64_t n_vocab, rvi_err *err);
void rvi_sampler_free(rvi_sampler *s);

/* Picks a token from logits (n_vocab floats, not modified). When logprob is
 * not NULL it receives log_softmax(logits)[id] computed in double. The
 * filters apply in the order top-k, top-p, min-p, then temperature. */
int32_t rvi_sample(rvi_sampler *s, const float *logits, double *logprob);

/* log_softmax(logits)[id] over n values, in double. */
double rvi_logprob(const float *logits, int64_t n, int32_t id);

#endif
