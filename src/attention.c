/* attention.c: cached (decoder) and full (vision) attention over the
 * kernel table (see attention.h). */
#include "src/attention.h"

#include <math.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "simd/kernels.h"
#include "src/matmul.h"

static int thread_id(void)
{
#ifdef _OPENMP
	return omp_get_thread_num();
#else
	return 0;
#endif
}

/* ---- cached ------------------------------------------------------------- */

size_t rvi_attn_cached_scratch(const rvi_attn_heads *h, int64_t n_ctx, int n_threads)
{
	/* per thread: a score row per query head of a KV head, for up to
	 * RVI_ATTN_ITEMS items, then their queries and outputs; each part
	 * rounded to 16 floats so every thread's block stays 64-byte aligned */
	const size_t group = (size_t)(h->n_head / h->n_head_kv);
	const size_t att = ((size_t)RVI_ATTN_ITEMS * group * (size_t)n_ctx + 15) / 16 * 16;
	const size_t qo = ((size_t)2 * RVI_ATTN_ITEMS * group * (size_t)h->head_dim + 15) / 16 * 16;
	return (size_t)n_threads * (att + qo);
}

/* att[j * att_stride + (p - lo)] = scale * q_j . k_p for the cache rows
 * p in [lo, hi) of layer il as seq sees them, run by run (a ring layer's
 * rows wrap, a candidate's continue in its suffix). */
static void scores_rows(float *att, int64_t att_stride, const float *q, int64_t nq,
                        const rvi_attn_heads *h, const rvi_kvcache *kv, int il, int seq,
                        int64_t kvo, int64_t lo, int64_t hi)
{
	const rvk_table *K = rvk_active();
	for (int64_t p = lo; p < hi;) {
		const int64_t n = rvi_kv_run(kv, il, seq, p, hi - p);
		K->attn_scores(att + (p - lo), att_stride, q, h->head_dim, nq,
		               rvi_kv_key(kv, il, seq, p) + kvo, kv->kv_dim, n, h->head_dim,
		               h->scale);
		p += n;
	}
}

/* out_j += sum over p in [lo, hi) of att[j * att_stride + (p - lo)] v_p,
 * run by run as scores_rows. */
static void values_rows(float *out, const float *att, int64_t att_stride, int64_t nq,
                        const rvi_attn_heads *h, const rvi_kvcache *kv, int il, int seq,
                        int64_t kvo, int64_t lo, int64_t hi)
{
	const rvk_table *K = rvk_active();
	for (int64_t p = lo; p < hi;) {
		const int64_t n = rvi_kv_run(kv, il, seq, p, hi - p);
		K->attn_values(out, h->head_dim, att + (p - lo), att_stride, nq,
		               rvi_kv_value(kv, il, seq, p) + kvo, kv->kv_dim, n, h->head_dim);
		p += n;
	}
}

/* Items of the prefix: each (item, KV head) is one task; the query heads of
 * the KV head go through the kernels together, so its rows are read once
 * for all of them. */
static void cached_prefix(const rvi_attn_heads *h, const rvi_kvcache *kv, int il, const float *q,
                          float *out, const rvi_attn_items *it, float *scratch, size_t per_thread,
                          int nt)
{
	const rvk_table *K = rvk_active();
	const int64_t hd = h->head_dim, q_dim = h->n_head * hd;
	const int64_t group = h->n_head / h->n_head_kv, ctx = kv->n_ctx;
	const int64_t tasks = it->n * h->n_head_kv;

#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
	for (int64_t task = 0; task < tasks; task++) {
		const int64_t t = task / h->n_head_kv, g = task % h->n_head_kv;
		const int64_t lo = it->first ? it->first[t] : 0, hi = it->n_visible[t];
		/* the group's query heads, their score rows, their outputs */
		const float *qg = q + t * q_dim + g * group * hd;
		float *att = scratch + (size_t)thread_id() * per_thread;
		float *og = out + t * q_dim + g * group * hd;
		scores_rows(att, ctx, qg, group, h, kv, il, -1, g * hd, lo, hi);
		for (int64_t i = 0; i < group; i++)
			K->softmax(att + i * ctx, hi - lo);
		memset(og, 0, (size_t)(group * hd) * sizeof(float));
		values_rows(og, att, ctx, group, h, kv, il, -1, g * hd, lo, hi);
	}
}

/* Items of candidates (each continues a suffix). Without windows all see
 * the whole prefix of their slot: the query heads of up to RVI_ATTN_ITEMS
 * items of one slot for one KV head go through the prefix rows in one
 * call, each row read once for all of them, then each item's through its
 * own suffix rows. With windows
 * (first), each item reads its own window, prefix rows and suffix rows in
 * turn. */
static void cached_candidates(const rvi_attn_heads *h, const rvi_kvcache *kv, int il,
                              const float *q, float *out, const rvi_attn_items *it, float *scratch,
                              size_t per_thread, int nt)
{
	const rvk_table *K = rvk_active();
	const int64_t hd = h->head_dim, q_dim = h->n_head * hd;
	const int64_t group = h->n_head / h->n_head_kv, ctx = kv->n_ctx;
	const int64_t gw = group * hd;
	const int64_t tasks = (it->n + RVI_ATTN_ITEMS - 1) / RVI_ATTN_ITEMS * h->n_head_kv;
	const size_t att_floats =
	    ((size_t)RVI_ATTN_ITEMS * (size_t)group * (size_t)ctx + 15) / 16 * 16;

#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
	for (int64_t task = 0; task < tasks; task++) {
		const int64_t t0 = task / h->n_head_kv * RVI_ATTN_ITEMS, g = task % h->n_head_kv;
		const int64_t ni = it->n - t0 < RVI_ATTN_ITEMS ? it->n - t0 : RVI_ATTN_ITEMS;
		const int64_t kvo = g * hd;
		float *att = scratch + (size_t)thread_id() * per_thread;
		float *qs = att + att_floats;
		float *outs = qs + RVI_ATTN_ITEMS * gw;
		for (int64_t i = 0; i < ni; i++)
			memcpy(qs + i * gw, q + (t0 + i) * q_dim + g * gw,
			       (size_t)gw * sizeof(float));
		memset(outs, 0, (size_t)(ni * gw) * sizeof(float));
		if (it->first) {
			for (int64_t i = 0; i < ni; i++) {
				const int seq = it->seq[t0 + i];
				const int64_t lo = it->first[t0 + i], hi = it->n_visible[t0 + i];
				float *ai = att + i * group * ctx;
				scores_rows(ai, ctx, qs + i * gw, group, h, kv, il, seq, kvo, lo,
				            hi);
				for (int64_t j = 0; j < group; j++)
					K->softmax(ai + j * ctx, hi - lo);
				values_rows(outs + i * gw, ai, ctx, group, h, kv, il, seq, kvo, lo,
				            hi);
			}
		} else {
			/* the items of one slot (one prompt) share its prefix rows */
			for (int64_t i0 = 0, i1; i0 < ni; i0 = i1) {
				const int seq0 = it->seq[t0 + i0];
				for (i1 = i0 + 1; i1 < ni && it->seq[t0 + i1] / RVI_KV_SEQS ==
				                                 seq0 / RVI_KV_SEQS;
				     i1++)
					;
				int s0 = seq0;
				const int64_t n_pre = rvi_kv_slot(kv, &s0)->n_past;
				float *a0 = att + i0 * group * ctx;
				scores_rows(a0, ctx, qs + i0 * gw, (i1 - i0) * group, h, kv, il,
				            seq0, kvo, 0, n_pre);
				for (int64_t i = i0; i < i1; i++) {
					const int seq = it->seq[t0 + i];
					const int64_t hi = it->n_visible[t0 + i];
					float *ai = att + i * group * ctx;
					scores_rows(ai + n_pre, ctx, qs + i * gw, group, h, kv, il,
					            seq, kvo, n_pre, hi);
					for (int64_t j = 0; j < group; j++)
						K->softmax(ai + j * ctx, hi);
				}
				values_rows(outs + i0 * gw, a0, ctx, (i1 - i0) * group, h, kv, il,
				            seq0, kvo, 0, n_pre);
				for (int64_t i = i0; i < i1; i++)
					values_rows(outs + i * gw, att + i * group * ctx + n_pre,
					            ctx, group, h, kv, il, it->seq[t0 + i], kvo,
					            n_pre, it->n_visible[t0 + i]);
			}
		}
		for (int64_t i = 0; i < ni; i++)
			memcpy(out + (t0 + i) * q_dim + g * gw, outs + i * gw,
			       (size_t)gw * sizeof(float));
	}
}

void rvi_attn_cached(const rvi_attn_heads *h, const rvi_kvcache *kv, int il, const float *q,
                     float *out, const rvi_attn_items *items, float *scratch, int n_threads)
{
	if (items->n < 1)
		return;
	const size_t per_thread = rvi_attn_cached_scratch(h, kv->n_ctx, 1);
	if (items->seq[0] >= 0)
		cached_candidates(h, kv, il, q, out, items, scratch, per_thread, n_threads);
	else
		cached_prefix(h, kv, il, q, out, items, scratch, per_thread, n_threads);
}

/* ---- full --------------------------------------------------------------- */

/* Queries of one head per task: with the kernels, the head's key and value
 * rows are read once for all of them (see rvk_table's attn_scores); with
 * an optimized BLAS, two sgemm calls of that height. */
#define FULL_QUERIES      8
#define FULL_QUERIES_BLAS 64

size_t rvi_attn_full_scratch(int64_t n, int n_threads)
{
	return (size_t)n_threads * FULL_QUERIES_BLAS * (size_t)n;
}

void rvi_attn_full(const rvi_attn_heads *h, const float *q, const float *k, const float *v,
                   float *out, int64_t n, const int64_t *windows, int64_t n_win, float *scratch,
                   int n_threads)
{
	const rvk_table *K = rvk_active();
	/* Where OpenBLAS runs kernels made for the CPU, its sgemm (one thread
	 * per task) computes scores and values several times faster than the
	 * kernel table; its generic kernels are slower than the table. */
	const bool blas = !rvi_blas_generic();
	if (blas)
		rvi_blas_serial();
	const int64_t hd = h->head_dim, W = h->n_head * hd;
	const int64_t chunk = blas ? FULL_QUERIES_BLAS : FULL_QUERIES;
	const int64_t one[2] = {0, n};
	if (!windows) {
		windows = one;
		n_win = 1;
	}
	/* tasks: (head, window, run of chunk queries of the window) */
	int64_t per_head = 0;
	for (int64_t w = 0; w < n_win; w++)
		per_head += (windows[w + 1] - windows[w] + chunk - 1) / chunk;
	const int64_t tasks = h->n_head * per_head;
	(void)n_threads;
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(n_threads) if (n_threads > 1)
#endif
	for (int64_t task = 0; task < tasks; task++) {
		const int64_t hh = task / per_head;
		int64_t c = task % per_head, w = 0;
		while (c >= (windows[w + 1] - windows[w] + chunk - 1) / chunk) {
			c -= (windows[w + 1] - windows[w] + chunk - 1) / chunk;
			w++;
		}
		const int64_t lo = windows[w], len = windows[w + 1] - lo;
		const int64_t i0 = lo + c * chunk;
		const int64_t nq = lo + len - i0 < chunk ? lo + len - i0 : chunk;
		float *s = scratch + (int64_t)thread_id() * FULL_QUERIES_BLAS * n;
		const float *qh = q + i0 * W + hh * hd;
		const float *kh = k + lo * W + hh * hd, *vh = v + lo * W + hh * hd;
		float *oh = out + i0 * W + hh * hd;
		if (blas)
			rvi_sgemm(true, nq, len, hd, h->scale, qh, W, kh, W, s, len);
		else
			K->attn_scores(s, len, qh, W, nq, kh, W, len, hd, h->scale);
		for (int64_t j = 0; j < nq; j++)
			K->softmax(s + j * len, len);
		if (blas) {
			rvi_sgemm(false, nq, hd, len, 1.0f, s, len, vh, W, oh, W);
			continue;
		}
		for (int64_t j = 0; j < nq; j++)
			memset(oh + j * W, 0, (size_t)hd * sizeof(float));
		K->attn_values(oh, W, s, len, nq, vh, W, len, hd);
	}
}
