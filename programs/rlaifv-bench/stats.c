/* stats.c: statistics, FLOP/byte counts and limit ratios of
 * rlaifv-bench (see stats.h). Pure functions only. */
#include "programs/rlaifv-bench/stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b)
{
	const double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Median of a sorted array (the mean of the middle two for even n). */
static double sorted_median(const double *s, int n)
{
	return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

rvb_stats rvb_stats_of(const double *v, int n)
{
	rvb_stats r = {0, NAN, NAN, NAN, NAN};
	if (n <= 0 || !v)
		return r;
	double *s = malloc((size_t)n * sizeof(double));
	if (!s)
		return r;
	memcpy(s, v, (size_t)n * sizeof(double));
	qsort(s, (size_t)n, sizeof(double), cmp_double);
	r.n = n;
	r.min = s[0];
	r.max = s[n - 1];
	r.median = sorted_median(s, n);
	for (int i = 0; i < n; i++)
		s[i] = fabs(s[i] - r.median);
	qsort(s, (size_t)n, sizeof(double), cmp_double);
	r.mad = sorted_median(s, n);
	free(s);
	return r;
}

double rvb_ratio(double value, double limit)
{
	if (!(limit > 0) || isnan(value))
		return NAN;
	return value / limit;
}

double rvb_decode_bw_ratio(double tok_s, double bytes_per_token, double bw_bytes_per_s)
{
	return rvb_ratio(tok_s * bytes_per_token, bw_bytes_per_s);
}

double rvb_gflops(double flops, double ms)
{
	if (!(ms > 0))
		return NAN;
	return flops / (ms * 1e6);
}

double rvb_per_second(double n, double ms)
{
	if (!(ms > 0))
		return NAN;
	return n * 1000.0 / ms;
}

double rvb_llama_layer_flops_per_token(const rvb_llama_shape *s)
{
	const double d = (double)s->n_embd;
	const double q_dim = (double)(s->n_head * s->head_dim);
	const double kv_dim = (double)(s->n_head_kv * s->head_dim);
	/* wq (q_dim x d), wk, wv (kv_dim x d), wo (d x q_dim), gate, up (ff x d), down (d x ff) */
	const double params = d * q_dim + 2 * d * kv_dim + q_dim * d + 3 * d * (double)s->n_ff;
	return 2.0 * params * (double)s->n_layer;
}

double rvb_llama_flops(const rvb_llama_shape *s, int64_t n_past, int64_t n_tok,
                       int64_t n_logit_rows)
{
	const double q_dim = (double)(s->n_head * s->head_dim);
	/* sum over the new positions p of (p + 1) attended positions */
	const double first = (double)n_past + 1, last = (double)(n_past + n_tok);
	const double attended = (first + last) * (double)n_tok / 2.0;
	const double attn = 4.0 * q_dim * attended * (double)s->n_layer;
	const double out = 2.0 * (double)s->n_embd * (double)s->n_vocab * (double)n_logit_rows;
	return rvb_llama_layer_flops_per_token(s) * (double)n_tok + attn + out;
}

double rvb_llama_kv_read_bytes(const rvb_llama_shape *s, int64_t n_ctx)
{
	return rvb_llama_kv_cache_bytes(s, n_ctx);
}

double rvb_llama_kv_cache_bytes(const rvb_llama_shape *s, int64_t n_ctx)
{
	const double kv_dim = (double)(s->n_head_kv * s->head_dim);
	return 2.0 * (double)s->n_layer * (double)n_ctx * kv_dim * sizeof(float);
}

double rvb_clip_flops(const rvb_clip_shape *s)
{
	const double side = (double)(s->image_size / s->patch_size);
	const double n_p = side * side, n = n_p + 1;
	const double W = (double)s->n_embd, F = (double)s->n_ff;
	const double kpp = 3.0 * (double)(s->patch_size * s->patch_size);
	const double patch = 2.0 * n_p * kpp * W;
	const double block = 2.0 * n * 4.0 * W * W   /* q, k, v, o */
	                     + 2.0 * n * 2.0 * W * F /* fc1, fc2 */
	                     + 4.0 * n * n * W;      /* q.k and att.v, all heads */
	const double proj =
	    2.0 * n_p * (W * (double)s->n_mm_hidden + (double)s->n_mm_hidden * (double)s->n_mm_out);
	return patch + block * (double)s->n_layer + proj;
}

double rvb_rss_budget(double file_bytes, double kv_bytes, double slack)
{
	return (file_bytes + kv_bytes) * (1.0 + slack);
}

bool rvb_load_mapped(double rss_growth_bytes, double file_bytes)
{
	return file_bytes > 0 && rss_growth_bytes <= RVB_TARGET_LOAD_RESIDENT * file_bytes;
}
