/* kvcache.h: the attention keys and values of past positions, per layer.
 *
 * A shared prefix (the image and prompt, written once) and, for best-of-N,
 * n_seq suffix sequences that continue it independently: candidate s sees
 * the prefix positions 0..n_past-1 followed by its own seq_len[s] positions.
 * Memory is the prefix plus N suffixes, never N copies of the prefix.
 * Stored in f32 (the reference outputs were made with an F32 cache).
 * Buffers are calloc'ed up front but only the pages positions reach become
 * resident. Knows nothing of attention. */
#ifndef RLAIFV_KVCACHE_H
#define RLAIFV_KVCACHE_H

#include <stdint.h>

#include "src/util.h"

typedef struct rvi_kvcache {
	int n_layer;
	int64_t kv_dim; /* n_head_kv * head_dim */

	int64_t n_ctx;  /* positions the whole context may reach */
	float *k;       /* prefix keys (n_layer, n_ctx, kv_dim) */
	float *v;       /* prefix values (n_layer, n_ctx, kv_dim) */
	int64_t n_past; /* prefix positions filled */

	int n_seq;        /* suffix sequences (0: none allocated) */
	int64_t seq_cap;  /* positions each suffix can hold */
	float *sk, *sv;   /* (n_seq, n_layer, seq_cap, kv_dim) */
	void *mem[4];     /* the blocks behind k, v, sk, sv (see zeroed_lines) */
	int64_t *seq_len; /* (n_seq) positions filled in each suffix */
} rvi_kvcache;

int rvi_kvcache_init(rvi_kvcache *kv, int n_layer, int64_t n_ctx, int64_t kv_dim, rvi_err *err);
void rvi_kvcache_free(rvi_kvcache *kv);

/* Empties the prefix and drops every suffix. */
void rvi_kvcache_clear(rvi_kvcache *kv);

/* Allocates n_seq empty suffixes of seq_cap positions after the current
 * prefix (replacing any earlier ones); n_past + seq_cap must fit in n_ctx. */
int rvi_kvcache_fork(rvi_kvcache *kv, int n_seq, int64_t seq_cap, rvi_err *err);

/* Key / value row (kv_dim floats) of layer il at position pos as sequence
 * seq sees it: prefix rows below n_past, its own suffix rows above. seq < 0
 * addresses the prefix itself. */
static inline float *rvi_kv_row(const rvi_kvcache *kv, float *prefix, float *suffix, int il,
                                int seq, int64_t pos)
{
	if (seq < 0 || pos < kv->n_past)
		return prefix + ((int64_t)il * kv->n_ctx + pos) * kv->kv_dim;
	return suffix +
	       (((int64_t)seq * kv->n_layer + il) * kv->seq_cap + (pos - kv->n_past)) * kv->kv_dim;
}

static inline float *rvi_kv_key(const rvi_kvcache *kv, int il, int seq, int64_t pos)
{
	return rvi_kv_row(kv, kv->k, kv->sk, il, seq, pos);
}

static inline float *rvi_kv_value(const rvi_kvcache *kv, int il, int seq, int64_t pos)
{
	return rvi_kv_row(kv, kv->v, kv->sv, il, seq, pos);
}

#endif
