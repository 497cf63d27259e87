/* kvcache.c: allocation of the key/value cache and its suffixes (see
 * kvcache.h). */
#include "src/kvcache.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* bytes of n_a x n_b x n_c x n_d floats, or 0 when that overflows */
static uint64_t floats_bytes(uint64_t a, uint64_t b, uint64_t c, uint64_t d)
{
	uint64_t n;
	if (!rvi_mul_ok(a, b, &n) || !rvi_mul_ok(n, c, &n) || !rvi_mul_ok(n, d, &n) ||
	    !rvi_mul_ok(n, sizeof(float), &n) || n > SIZE_MAX)
		return 0;
	return n;
}

/* n zeroed bytes from a 64-byte boundary, so that no row of kv_dim floats
 * (a multiple of 16) straddles two cache lines; *mem gets the block to
 * free. calloc: untouched positions cost address space, not memory. */
static float *zeroed_lines(size_t n, void **mem)
{
	*mem = n <= SIZE_MAX - 64 ? calloc(1, n + 64) : NULL;
	if (*mem == NULL)
		return NULL;
	return (float *)(void *)(((uintptr_t)*mem + 63) & ~(uintptr_t)63);
}

int rvi_kvcache_init(rvi_kvcache *kv, int n_layer, int64_t n_ctx, int64_t kv_dim, rvi_err *err)
{
	return rvi_kvcache_init_rings(kv, n_layer, n_ctx, kv_dim, NULL, err);
}

int rvi_kvcache_init_rings(rvi_kvcache *kv, int n_layer, int64_t n_ctx, int64_t kv_dim,
                           const int64_t *ring, rvi_err *err)
{
	memset(kv, 0, sizeof(*kv));
	const bool sane = n_layer > 0 && n_ctx > 0 && kv_dim > 0;
	kv->ring = sane ? calloc((size_t)n_layer, sizeof(int64_t)) : NULL;
	kv->off = sane ? calloc((size_t)n_layer + 1, sizeof(int64_t)) : NULL;
	kv->soff = sane ? calloc((size_t)n_layer + 1, sizeof(int64_t)) : NULL;
	if (sane && (!kv->ring || !kv->off || !kv->soff)) {
		rvi_kvcache_free(kv);
		return rvi_errorf(err, RV_ERR_NOMEM, "out of memory");
	}
	uint64_t rows = 0;
	for (int il = 0; sane && il < n_layer; il++) {
		kv->ring[il] = ring && ring[il] > 0 && ring[il] < n_ctx ? ring[il] : n_ctx;
		kv->off[il] = (int64_t)rows;
		rows += (uint64_t)kv->ring[il]; /* at most n_layer * n_ctx: checked below */
	}
	uint64_t n =
	    sane ? floats_bytes((uint64_t)n_layer, (uint64_t)n_ctx, (uint64_t)kv_dim, 1) : 0;
	if (n == 0) {
		rvi_kvcache_free(kv);
		return rvi_errorf(err, RV_ERR_INVALID_ARG,
		                  "KV cache of %d layers x %lld positions x %lld is too large",
		                  n_layer, (long long)n_ctx, (long long)kv_dim);
	}
	kv->off[n_layer] = (int64_t)rows;
	n = floats_bytes(rows, (uint64_t)kv_dim, 1, 1);
	kv->k = zeroed_lines((size_t)n, &kv->mem[0]);
	kv->v = zeroed_lines((size_t)n, &kv->mem[1]);
	if (!kv->k || !kv->v) {
		rvi_kvcache_free(kv);
		return rvi_errorf(err, RV_ERR_NOMEM,
		                  "cannot allocate a %lld-position KV cache (%llu MiB)",
		                  (long long)n_ctx, (unsigned long long)(2 * n >> 20));
	}
	kv->n_layer = n_layer;
	kv->n_ctx = n_ctx;
	kv->n_slots = 1;
	kv->kv_dim = kv_dim;
	return RV_OK;
}

static void drop_suffixes(rvi_kvcache *kv)
{
	free(kv->mem[2]);
	free(kv->mem[3]);
	free(kv->seq_len);
	kv->sk = kv->sv = NULL;
	kv->mem[2] = kv->mem[3] = NULL;
	kv->seq_len = NULL;
	kv->n_seq = 0;
	kv->seq_cap = 0;
}

/* frees slots 1.. (their prefixes, suffixes and soff) */
static void drop_slots(rvi_kvcache *kv)
{
	for (int g = 0; kv->more && g < kv->n_slots - 1; g++) {
		rvi_kvcache *s = &kv->more[g];
		drop_suffixes(s);
		free(s->mem[0]);
		free(s->mem[1]);
		free(s->soff);
	}
	free(kv->more);
	kv->more = NULL;
	kv->n_slots = 1;
	kv->cur = 0;
}

void rvi_kvcache_free(rvi_kvcache *kv)
{
	drop_slots(kv);
	drop_suffixes(kv);
	free(kv->mem[0]);
	free(kv->mem[1]);
	free(kv->ring);
	free(kv->off);
	free(kv->soff);
	memset(kv, 0, sizeof(*kv));
}

void rvi_kvcache_clear(rvi_kvcache *kv)
{
	int prefix = -1;
	kv = rvi_kv_slot_mut(kv, &prefix);
	drop_suffixes(kv);
	kv->n_past = 0;
}

int rvi_kvcache_slots(rvi_kvcache *kv, int n_slots, rvi_err *err)
{
	drop_slots(kv);
	drop_suffixes(kv);
	kv->n_past = 0;
	if (n_slots < 1 || n_slots > RVI_KV_SLOTS)
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "%d prompts at once: outside 1..%d",
		                  n_slots, RVI_KV_SLOTS);
	if ((int64_t)n_slots * kv->n_ctx > RV_MAX_CTX)
		return rvi_errorf(err, RV_ERR_CONTEXT,
		                  "%d prompts of a %lld-position context each need %lld "
		                  "positions of KV cache, more than %d: use a smaller context or "
		                  "fewer at once",
		                  n_slots, (long long)kv->n_ctx, (long long)n_slots * kv->n_ctx,
		                  RV_MAX_CTX);
	if (n_slots == 1)
		return RV_OK;
	kv->more = calloc((size_t)n_slots - 1, sizeof(*kv->more));
	if (!kv->more)
		return rvi_errorf(err, RV_ERR_NOMEM, "out of memory");
	kv->n_slots = n_slots;
	/* a slot's prefix has slot 0's layout: rows and sizes checked at init */
	const size_t n = (size_t)kv->off[kv->n_layer] * (size_t)kv->kv_dim * sizeof(float);
	for (int g = 0; g < n_slots - 1; g++) {
		rvi_kvcache *s = &kv->more[g];
		s->n_layer = kv->n_layer;
		s->kv_dim = kv->kv_dim;
		s->n_ctx = kv->n_ctx;
		s->ring = kv->ring;
		s->off = kv->off;
		s->soff = calloc((size_t)kv->n_layer + 1, sizeof(int64_t));
		s->k = zeroed_lines(n, &s->mem[0]);
		s->v = zeroed_lines(n, &s->mem[1]);
		if (!s->soff || !s->k || !s->v) {
			drop_slots(kv);
			return rvi_errorf(err, RV_ERR_NOMEM,
			                  "cannot allocate the KV cache of %d prompts (%llu MiB)",
			                  n_slots,
			                  (unsigned long long)((uint64_t)n_slots * 2 * n >> 20));
		}
	}
	return RV_OK;
}

int rvi_kvcache_fork(rvi_kvcache *kv, int n_seq, int64_t seq_cap, rvi_err *err)
{
	int prefix = -1;
	kv = rvi_kv_slot_mut(kv, &prefix);
	drop_suffixes(kv);
	if (n_seq < 1 || n_seq > RVI_KV_SEQS || seq_cap < 1 || seq_cap > kv->n_ctx - kv->n_past)
		return rvi_errorf(err, RV_ERR_CONTEXT,
		                  "%lld more positions per candidate do not fit in the context "
		                  "(%lld of %lld used)",
		                  (long long)seq_cap, (long long)kv->n_past, (long long)kv->n_ctx);
	/* a ring layer's suffix needs no more rows than its ring */
	int64_t rows = 0;
	for (int il = 0; il < kv->n_layer; il++) {
		kv->soff[il] = rows;
		rows += seq_cap < kv->ring[il] ? seq_cap : kv->ring[il];
	}
	kv->soff[kv->n_layer] = rows;
	uint64_t n = floats_bytes((uint64_t)n_seq, (uint64_t)rows, (uint64_t)kv->kv_dim, 1);
	if (n == 0)
		return rvi_errorf(err, RV_ERR_NOMEM, "KV cache for %d candidates is too large",
		                  n_seq);
	kv->sk = zeroed_lines((size_t)n, &kv->mem[2]);
	kv->sv = zeroed_lines((size_t)n, &kv->mem[3]);
	kv->seq_len = calloc((size_t)n_seq, sizeof(int64_t));
	if (!kv->sk || !kv->sv || !kv->seq_len) {
		drop_suffixes(kv);
		return rvi_errorf(err, RV_ERR_NOMEM,
		                  "cannot allocate the KV cache of %d candidates (%llu MiB)", n_seq,
		                  (unsigned long long)(2 * n >> 20));
	}
	kv->n_seq = n_seq;
	kv->seq_cap = seq_cap;
	return RV_OK;
}

uint64_t rvi_kvcache_bytes(const rvi_kvcache *kv)
{
	if (!kv->off)
		return 0;
	uint64_t rows = 0;
	for (int g = 0; g < (kv->n_slots > 1 ? kv->n_slots : 1); g++) {
		const rvi_kvcache *s = g == 0 ? kv : &kv->more[g - 1];
		rows += (uint64_t)kv->off[kv->n_layer] +
		        (uint64_t)s->n_seq * (uint64_t)s->soff[kv->n_layer];
	}
	return 2 * rows * (uint64_t)kv->kv_dim * sizeof(float);
}
