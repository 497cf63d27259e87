/* kvcache.h: the attention keys and values of past positions, per layer.
 * Stored in f32 (the reference outputs were made with an F32 cache).
 * Memory is calloc'ed for the whole context up front but only pages that
 * positions actually reach become resident. Knows nothing of attention. */
#ifndef RLAIFV_KVCACHE_H
#define RLAIFV_KVCACHE_H

#include <stdint.h>

#include "util.h"

typedef struct rvi_kvcache {
	int n_layer;
	int64_t n_ctx;  /* positions it can hold */
	int64_t kv_dim; /* n_head_kv * head_dim */
	float *k;       /* (n_layer, n_ctx, kv_dim) */
	float *v;       /* (n_layer, n_ctx, kv_dim) */
	int64_t n_past; /* positions filled, 0..n_ctx */
} rvi_kvcache;

int rvi_kvcache_init(rvi_kvcache *kv, int n_layer, int64_t n_ctx, int64_t kv_dim, rvi_err *err);
void rvi_kvcache_free(rvi_kvcache *kv);

/* Key / value row of position pos in layer il (kv_dim floats). */
static inline float *rvi_kv_key(const rvi_kvcache *kv, int il, int64_t pos)
{
	return kv->k + ((int64_t)il * kv->n_ctx + pos) * kv->kv_dim;
}

static inline float *rvi_kv_value(const rvi_kvcache *kv, int il, int64_t pos)
{
	return kv->v + ((int64_t)il * kv->n_ctx + pos) * kv->kv_dim;
}

#endif
