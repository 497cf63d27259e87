/* kvcache.c: allocation of the key/value cache (see kvcache.h). */
#include "kvcache.h"

#include <stdlib.h>
#include <string.h>

int rvi_kvcache_init(rvi_kvcache *kv, int n_layer, int64_t n_ctx, int64_t kv_dim, rvi_err *err)
{
	memset(kv, 0, sizeof(*kv));
	uint64_t n;
	if (n_layer <= 0 || n_ctx <= 0 || kv_dim <= 0 ||
	    !rvi_mul_ok((uint64_t)n_layer, (uint64_t)n_ctx, &n) ||
	    !rvi_mul_ok(n, (uint64_t)kv_dim, &n) || !rvi_mul_ok(n, sizeof(float), &n) ||
	    n > SIZE_MAX)
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

void rvi_kvcache_free(rvi_kvcache *kv)
{
	free(kv->k);
	free(kv->v);
	memset(kv, 0, sizeof(*kv));
}
