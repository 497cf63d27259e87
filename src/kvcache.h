/* kvcache.h: the attention keys and values of past positions, per layer.
 *
 * A shared prefix (the image and prompt, written once) and, for best-of-N,
 * n_seq suffix sequences that continue it independently: candidate s sees
 * the prefix positions 0..n_past-1 followed by its own seq_len[s] positions.
 * Memory is the prefix plus N suffixes, never N copies of the prefix.
 *
 * A layer keeps every position, or (a sliding-window layer, Gemma 3's) only
 * the last ring[il] of them: position p lives at row p % ring[il] of the
 * prefix, and a suffix keeps its own positions the same way on top of the
 * prefix's. The caller picks ring[il] large enough for what its queries
 * read (window - 1 + the most rows one forward call writes).
 *
 * Several prompts at once (rv_generate_batch): slots, each a prefix and
 * its suffixes of its own. The cache itself is slot 0; rvi_kvcache_slots
 * adds the others. Prefix items go to the current slot (cur); suffix
 * sequence s of slot g is addressed as g * RVI_KV_SEQS + s, so that one
 * batch can hold candidates of every slot. A slot reads only its own rows,
 * exactly as a cache holding that prompt alone would.
 *
 * Stored in f32 (the reference outputs were made with an F32 cache).
 * Buffers are calloc'ed up front but only the pages positions reach become
 * resident. Knows nothing of attention. */
#ifndef RLAIFV_KVCACHE_H
#define RLAIFV_KVCACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "src/util.h"

/* Suffix sequences one slot may hold (rlaifv.h's RV_MAX_CANDIDATES). */
#define RVI_KV_SEQS 64
/* Slots a cache may hold (rlaifv.h's RV_MAX_PARALLEL). */
#define RVI_KV_SLOTS 64

typedef struct rvi_kvcache {
	int n_layer;
	int64_t kv_dim; /* n_head_kv * head_dim */

	int64_t n_ctx;  /* positions the whole context may reach */
	float *k;       /* prefix keys (off[n_layer], kv_dim): layer il from row off[il] */
	float *v;       /* prefix values, the same layout */
	int64_t n_past; /* prefix positions filled */
	int64_t *ring;  /* (n_layer) rows each layer keeps: n_ctx, or fewer (a ring) */
	int64_t *off;   /* (n_layer + 1) first row of each layer; off[n_layer]: all */

	int n_seq;        /* suffix sequences (0: none allocated) */
	int64_t seq_cap;  /* positions each suffix can hold */
	float *sk, *sv;   /* (n_seq, soff[n_layer], kv_dim) */
	int64_t *soff;    /* (n_layer + 1) first row of each layer in a suffix */
	void *mem[4];     /* the blocks behind k, v, sk, sv (see zeroed_lines) */
	int64_t *seq_len; /* (n_seq) positions filled in each suffix */

	/* slots 1..n_slots-1 (the same fields, ring and off shared with
	 * slot 0); cur: the slot prefix items and rvi_kvcache_clear/fork go to */
	int n_slots, cur;
	struct rvi_kvcache *more;
} rvi_kvcache;

/* Every layer keeps every position. */
int rvi_kvcache_init(rvi_kvcache *kv, int n_layer, int64_t n_ctx, int64_t kv_dim, rvi_err *err);
/* Layer il keeps the last ring[il] positions (ring[il] >= n_ctx, or ring
 * NULL: all of them). */
int rvi_kvcache_init_rings(rvi_kvcache *kv, int n_layer, int64_t n_ctx, int64_t kv_dim,
                           const int64_t *ring, rvi_err *err);
void rvi_kvcache_free(rvi_kvcache *kv);

/* Empties the current slot's prefix and drops its suffixes. */
void rvi_kvcache_clear(rvi_kvcache *kv);

/* Makes the cache hold n_slots slots (1..RVI_KV_SLOTS) of n_ctx positions
 * each, every one empty, slot 0 current. Their prefixes are address space
 * until positions reach them. RV_ERR_CONTEXT when n_slots x n_ctx exceeds
 * RV_MAX_CTX, RV_ERR_NOMEM when the memory cannot be had. */
int rvi_kvcache_slots(rvi_kvcache *kv, int n_slots, rvi_err *err);

/* Allocates n_seq empty suffixes of seq_cap positions after the current
 * slot's prefix (replacing any earlier ones of that slot); n_past + seq_cap
 * must fit in n_ctx. A ring layer's suffix keeps at most ring[il] rows. */
int rvi_kvcache_fork(rvi_kvcache *kv, int n_seq, int64_t seq_cap, rvi_err *err);

/* Bytes of keys and values allocated (the prefixes and every suffix). */
uint64_t rvi_kvcache_bytes(const rvi_kvcache *kv);

/* The slot sequence *seq belongs to, and its index there: seq < 0 (the
 * prefix) is the current slot's. */
static inline const rvi_kvcache *rvi_kv_slot(const rvi_kvcache *kv, int *seq)
{
	const int g = *seq < 0 ? kv->cur : *seq / RVI_KV_SEQS;
	if (*seq >= 0)
		*seq %= RVI_KV_SEQS;
	return g == 0 ? kv : &kv->more[g - 1];
}

static inline rvi_kvcache *rvi_kv_slot_mut(rvi_kvcache *kv, int *seq)
{
	return (rvi_kvcache *)rvi_kv_slot(kv, seq);
}

/* Key / value row (kv_dim floats) of layer il at position pos as sequence
 * seq sees it: prefix rows below n_past, its own suffix rows above. seq < 0
 * addresses the prefix itself. A ring layer gives the row pos shares with
 * the positions a ring apart: the caller reads only the ones still kept. */
static inline float *rvi_kv_row(const rvi_kvcache *kv, bool value, int il, int seq, int64_t pos)
{
	kv = rvi_kv_slot(kv, &seq);
	float *prefix = value ? kv->v : kv->k, *suffix = value ? kv->sv : kv->sk;
	if (seq < 0 || pos < kv->n_past)
		return prefix + (kv->off[il] + pos % kv->ring[il]) * kv->kv_dim;
	const int64_t rows = kv->soff[il + 1] - kv->soff[il];
	return suffix +
	       ((int64_t)seq * kv->soff[kv->n_layer] + kv->soff[il] + (pos - kv->n_past) % rows) *
	           kv->kv_dim;
}

static inline float *rvi_kv_key(const rvi_kvcache *kv, int il, int seq, int64_t pos)
{
	return rvi_kv_row(kv, false, il, seq, pos);
}

static inline float *rvi_kv_value(const rvi_kvcache *kv, int il, int seq, int64_t pos)
{
	return rvi_kv_row(kv, true, il, seq, pos);
}

/* How many of the n positions from pos (as seq sees them) lie in
 * consecutive rows from rvi_kv_key(kv, il, seq, pos): the length of the
 * run to hand to a kernel, which a ring's wrap or the end of the prefix
 * cuts. */
static inline int64_t rvi_kv_run(const rvi_kvcache *kv, int il, int seq, int64_t pos, int64_t n)
{
	kv = rvi_kv_slot(kv, &seq);
	int64_t left;
	if (seq < 0 || pos < kv->n_past) {
		left = kv->ring[il] - pos % kv->ring[il];
		if (seq >= 0 && kv->n_past - pos < left)
			left = kv->n_past - pos;
	} else {
		const int64_t rows = kv->soff[il + 1] - kv->soff[il];
		left = rows - (pos - kv->n_past) % rows;
	}
	return n < left ? n : left;
}

#endif
