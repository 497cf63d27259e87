/* kvcache.c: allocation of the key/value cache and its suffixes (see
 * kvcache.h). */
#include "kvcache.h"

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

int rvi_kvcache_init(rvi_kvcache *kv, int n_layer, int64_t n_ctx, int64_t kv_dim, rvi_err *err)
{
	memset(kv, 0, sizeof(*kv));
	uint64_t n = n_layer > 0 && n_ctx > 0 && kv_dim > 0
	                 ? floats_bytes((uint64_t)n_layer, (uint64_t)n_ctx, (uint64_t)kv_dim, 1)
	                 : 0;
	if (n == 0)
		return rvi_errorf(err, RV_ERR_INVALID_ARG,
		                  "KV cache of %d layers x %lld positions x %lld is too large",
		                  n_layer, (long long)n_ctx, (long long)kv_dim);
	/* calloc: untouched positions cost address space, not memory. */
	kv->k = calloc(1, (size_t)n);
	kv->v = calloc(1, (size_t)n);
	if (!kv->k || !kv->v) {
		rvi_kvcache_free(kv);
		return rvi_errorf(err, RV_ERR_NOMEM,
		                  "cannot allocate a %lld-position KV cache (%llu MiB)",
		                  (long long)n_ctx, (unsigned long long)(2 * n >> 20));
	}
	kv->n_layer = n_layer;
	kv->n_ctx = n_ctx;
	kv->kv_dim = kv_dim;
	return RV_OK;
}

static void drop_suffixes(rvi_kvcache *kv)
{
	free(kv->sk);
	free(kv->sv);
	free(kv->seq_len);
	kv->sk = kv->sv = NULL;
	kv->seq_len = NULL;
	kv->n_seq = 0;
	kv->seq_cap = 0;
}

void rvi_kvcache_free(rvi_kvcache *kv)
{
	drop_suffixes(kv);
	free(kv->k);
	free(kv->v);
	memset(kv, 0, sizeof(*kv));
}

void rvi_kvcache_clear(rvi_kvcache *kv)
{
	drop_suffixes(kv);
	kv->n_past = 0;
}

int rvi_kvcache_fork(rvi_kvcache *kv, int n_seq, int64_t seq_cap, rvi_err *err)
{
	drop_suffixes(kv);
	if (n_seq < 1 || seq_cap < 1 || seq_cap > kv->n_ctx - kv->n_past)
		return rvi_errorf(err, RV_ERR_CONTEXT,
		                  "%lld more positions per candidate do not fit in the context "
		                  "(%lld of %lld used)",
		                  (long long)seq_cap, (long long)kv->n_past, (long long)kv->n_ctx);
	uint64_t n = floats_bytes((uint64_t)n_seq, (uint64_t)kv->n_layer, (uint64_t)seq_cap,
	                          (uint64_t)kv->kv_dim);
	if (n == 0)
		return rvi_errorf(err, RV_ERR_NOMEM, "KV cache for %d candidates is too large",
		                  n_seq);
	kv->sk = calloc(1, (size_t)n);
	kv->sv = calloc(1, (size_t)n);
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
