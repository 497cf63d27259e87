/* loader.c: GGUF helpers shared by the model loaders (see loader.h). */
#include "models/loader.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int rvi_load_dim(const rvi_gguf *g, const char *key, bool required, int64_t lo, int64_t hi,
                 int64_t *out, rvi_err *err)
{
	int64_t v = *out;
	int rc = rvi_gguf_get_i64(g, key, required, &v, err);
	if (rc != RV_OK)
		return rc;
	if (v < lo || v > hi)
		return rvi_errorf(err, RV_ERR_MODEL, "%s: %s = %lld is out of range [%lld, %lld]",
		                  g->path, key, (long long)v, (long long)lo, (long long)hi);
	*out = v;
	return RV_OK;
}

int rvi_load_tensor(const rvi_gguf *g, const char *name, const rvi_gguf_tensor **out, rvi_err *err)
{
	*out = rvi_gguf_find_tensor(g, name);
	if (!*out)
		return rvi_errorf(err, RV_ERR_MODEL, "%s: missing tensor %s", g->path, name);
	return RV_OK;
}

int rvi_load_shape_error(const rvi_gguf *g, const char *name, const rvi_gguf_tensor *t,
                         const char *expected, rvi_err *err)
{
	return rvi_errorf(err, RV_ERR_MODEL,
	                  "%s: tensor %s has shape [%lld, %lld, %lld, %lld], expected %s", g->path,
	                  name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
	                  (long long)t->ne[3], expected);
}

int rvi_load_weight(const rvi_gguf *g, const char *name, int64_t n_in, int64_t n_out, rvi_weight *w,
                    rvi_err *err)
{
	const rvi_gguf_tensor *t;
	int rc = rvi_load_tensor(g, name, &t, err);
	if (rc != RV_OK)
		return rc;
	if (t->n_dims > 2 || t->ne[0] != n_in || t->ne[1] != n_out) {
		char want[64];
		snprintf(want, sizeof(want), "[%lld, %lld]", (long long)n_in, (long long)n_out);
		return rvi_load_shape_error(g, name, t, want, err);
	}
	w->type = t->type;
	w->n_in = n_in;
	w->n_out = n_out;
	w->data = t->data;
	return RV_OK;
}

int rvi_load_floats(const rvi_gguf *g, const char *name, int64_t n, int64_t n_rows, float **out,
                    rvi_err *err)
{
	const rvi_gguf_tensor *t;
	int rc = rvi_load_tensor(g, name, &t, err);
	if (rc != RV_OK)
		return rc;
	const bool ok = n_rows == 0 ? t->n_dims == 1 && t->ne[0] == n
	                            : t->n_dims == 2 && t->ne[0] == n && t->ne[1] == n_rows;
	if (!ok) {
		char want[64];
		if (n_rows == 0)
			snprintf(want, sizeof(want), "[%lld]", (long long)n);
		else
			snprintf(want, sizeof(want), "[%lld, %lld]", (long long)n,
			         (long long)n_rows);
		return rvi_load_shape_error(g, name, t, want, err);
	}
	const int64_t rows = n_rows == 0 ? 1 : n_rows;
	*out = rvi_alloc((size_t)(n * rows), sizeof(float));
	if (!*out)
		return rvi_errorf(err, RV_ERR_NOMEM, "out of memory loading %s", name);
	rvi_weight w = {t->type, n, rows, t->data};
	for (int64_t r = 0; r < rows; r++)
		rvi_weight_row(&w, r, *out + r * n);
	return RV_OK;
}

int rvi_load_check_blocks(const rvi_gguf *g, const char *prefix, int64_t n_blocks,
                          const char *count_key, rvi_err *err)
{
	const size_t pl = strlen(prefix);
	for (uint64_t i = 0; i < g->n_tensors; i++) {
		rvi_str s = g->tensors[i].name;
		if (s.len <= pl || memcmp(s.ptr, prefix, pl) != 0)
			continue;
		int64_t n = 0;
		uint64_t j = pl;
		while (j < s.len && j < pl + 8 && s.ptr[j] >= '0' && s.ptr[j] <= '9')
			n = n * 10 + (s.ptr[j++] - '0');
		if (j > pl && n >= n_blocks)
			return rvi_errorf(err, RV_ERR_MODEL,
			                  "%s: tensor %.*s belongs to a block past %s (%lld)",
			                  g->path, (int)(s.len > 96 ? 96 : s.len), s.ptr, count_key,
			                  (long long)n_blocks);
	}
	return RV_OK;
}

/* A float array of exactly 3 (one value per RGB channel). Its values are
 * copied into out[3], so nothing is ever indexed by a count from the file. */
int rvi_load_rgb(const rvi_gguf *g, const char *key, float out[3], rvi_err *err)
{
	const rvi_gguf_kv *kv = rvi_gguf_find(g, key);
	if (!kv)
		return rvi_errorf(err, RV_ERR_MODEL, "%s: missing key %s", g->path, key);
	if (kv->type != RVI_GGUF_ARRAY ||
	    (kv->arr_type != RVI_GGUF_FLOAT32 && kv->arr_type != RVI_GGUF_FLOAT64))
		return rvi_errorf(err, RV_ERR_MODEL, "%s: %s must be an array of 3 floats", g->path,
		                  key);
	if (kv->arr_n != 3)
		return rvi_errorf(err, RV_ERR_MODEL,
		                  "%s: %s has %llu elements, expected 3 (one per RGB channel)",
		                  g->path, key, (unsigned long long)kv->arr_n);
	for (int i = 0; i < 3; i++) {
		double v = rvi_gguf_arr_f64(kv, (uint64_t)i);
		if (!isfinite(v) || fabs(v) > 1e6)
			return rvi_errorf(err, RV_ERR_MODEL, "%s: %s[%d] = %g is out of range",
			                  g->path, key, i, v);
		out[i] = (float)v;
	}
	return RV_OK;
}
