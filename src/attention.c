/* attention.c: cached (decoder) and full (vision) attention over the
 * kernel table (see attention.h). */
#include "src/attention.h"

#include <math.h>
#include <stdlib.h>
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
 * an optimized BLAS, two sgemm calls of that height (measured on Zen 5:
 * 256 ran at 1.1x 64's rate, 128 and 512 in between); with the fused
 * kernel, its RVK_ATTN_ROWS. */
#define FULL_QUERIES      8
#define FULL_QUERIES_BLAS 256

/* True when rvi_attn_full takes the table's fused kernel. */
static bool use_fused(const rvk_table *K, const rvi_attn_heads *h)
{
	return K->attn_rows && K->attn_kv_pack && h->head_dim <= RVK_ATTN_MAX_HD;
}

/* Floats of the fused kernel's packed keys and values for all heads, at
 * most: windows of 16 keys or more pad their keys to at most twice. */
static size_t fused_budget(const rvi_attn_heads *h, int64_t n)
{
	const int64_t hd = h->head_dim;
	return (size_t)h->n_head * (size_t)(2 * RVK_ATTN_PAD(n) * hd + n * RVK_ATTN_PAD(hd));
}

size_t rvi_attn_full_scratch(const rvi_attn_heads *h, int64_t n, int n_threads)
{
	const size_t blas = (size_t)n_threads * FULL_QUERIES_BLAS * (size_t)n;
	if (h->head_dim > RVK_ATTN_MAX_HD)
		return blas;
	/* the packed keys and values, and each thread's rows */
	const size_t fused =
	    fused_budget(h, n) + (size_t)n_threads * (size_t)RVK_ATTN_SCRATCH(n, h->head_dim);
	return blas > fused ? blas : fused;
}

/* Task `task` of rvi_attn_full: head *hh, window *w = [*lo, *lo + *len)
 * and its queries [*i0, *i0 + *nq), for runs of `chunk` queries per
 * window; *kv_off is the window's offset in a head's packed keys and
 * values (fused kernel). */
static void task_of(int64_t task, int64_t per_head, const int64_t *windows, int64_t chunk,
                    int64_t hd, int64_t *hh, int64_t *lo, int64_t *len, int64_t *i0, int64_t *nq,
                    int64_t *kv_off)
{
	*hh = task / per_head;
	int64_t c = task % per_head, w = 0;
	*kv_off = 0;
	while (c >= (windows[w + 1] - windows[w] + chunk - 1) / chunk) {
		c -= (windows[w + 1] - windows[w] + chunk - 1) / chunk;
		*kv_off += RVK_ATTN_KV_FLOATS(windows[w + 1] - windows[w], hd);
		w++;
	}
	*lo = windows[w];
	*len = windows[w + 1] - *lo;
	*i0 = *lo + c * chunk;
	*nq = *lo + *len - *i0 < chunk ? *lo + *len - *i0 : chunk;
}

/* rvi_attn_full by the fused kernel: every head's keys and values laid out
 * once per window (a head per task), then runs of RVK_ATTN_ROWS queries. */
static void attn_fused(const rvk_table *K, const rvi_attn_heads *h, const float *q, const float *k,
                       const float *v, float *out, int64_t n, const int64_t *windows, int64_t n_win,
                       int64_t per_head, size_t head_floats, float *scratch, int n_threads)
{
	const int64_t hd = h->head_dim, W = h->n_head * hd;
	float *rows = scratch + (size_t)h->n_head * head_floats;
	(void)n_threads;
#ifdef _OPENMP
#pragma omp parallel num_threads(n_threads) if (n_threads > 1)
#endif
	{
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
		for (int64_t hh = 0; hh < h->n_head; hh++) {
			float *kv = scratch + (size_t)hh * head_floats;
			for (int64_t w = 0; w < n_win; w++) {
				const int64_t lo = windows[w], len = windows[w + 1] - lo;
				K->attn_kv_pack(kv, k + lo * W + hh * hd, W, v + lo * W + hh * hd,
				                W, len, hd);
				kv += RVK_ATTN_KV_FLOATS(len, hd);
			}
		}
		float *mine = rows + (size_t)thread_id() * (size_t)RVK_ATTN_SCRATCH(n, hd);
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
		for (int64_t task = 0; task < h->n_head * per_head; task++) {
			int64_t hh, lo, len, i0, nq, off;
			task_of(task, per_head, windows, RVK_ATTN_ROWS, hd, &hh, &lo, &len, &i0,
			        &nq, &off);
			K->attn_rows(out + i0 * W + hh * hd, W, q + i0 * W + hh * hd, W, nq,
			             scratch + (size_t)hh * head_floats + off, len, hd, h->scale,
			             mine);
		}
	}
}

/* out (nq rows of hd, stride W) = softmax(scale q k^T) v for nq queries
 * of one head against len keys and values (rows W floats apart), without
 * the fused kernel: scores and values by the BLAS when blas, else by the
 * table's dots; s holds nq * len floats. */
static void rows_unfused(const rvk_table *K, bool blas, const rvi_attn_heads *h, const float *q,
                         const float *k, const float *v, float *out, int64_t nq, int64_t len,
                         float *s)
{
	const int64_t hd = h->head_dim, W = h->n_head * hd;
	if (blas)
		rvi_sgemm(true, nq, len, hd, h->scale, q, W, k, W, s, len);
	else
		K->attn_scores(s, len, q, W, nq, k, W, len, hd, h->scale);
	for (int64_t j = 0; j < nq; j++)
		K->softmax(s + j * len, len);
	if (blas) {
		rvi_sgemm(false, nq, hd, len, 1.0f, s, len, v, W, out, W);
		return;
	}
	for (int64_t j = 0; j < nq; j++)
		memset(out + j * W, 0, (size_t)hd * sizeof(float));
	K->attn_values(out, W, s, len, nq, v, W, len, hd);
}

void rvi_attn_full(const rvi_attn_heads *h, const float *q, const float *k, const float *v,
                   float *out, int64_t n, const int64_t *windows, int64_t n_win, float *scratch,
                   int n_threads)
{
	const rvk_table *K = rvk_active();
	const int64_t one[2] = {0, n};
	if (!windows) {
		windows = one;
		n_win = 1;
	}
	/* the fused kernel where the table has one and its packed keys and
	 * values fit the working memory (rvi_attn_full_scratch) */
	size_t head_floats = 0;
	for (int64_t w = 0; w < n_win; w++)
		head_floats += (size_t)RVK_ATTN_KV_FLOATS(windows[w + 1] - windows[w], h->head_dim);
	const bool fused = use_fused(K, h) && head_floats * (size_t)h->n_head <= fused_budget(h, n);
	/* Where OpenBLAS runs kernels made for the CPU, its sgemm (one thread
	 * per task) computes scores and values several times faster than the
	 * kernel table's dots; its generic kernels are slower than them. */
	const bool blas = !fused && !rvi_blas_generic();
	if (blas)
		rvi_blas_serial();
	const int64_t hd = h->head_dim, W = h->n_head * hd;
	const int64_t chunk = fused ? RVK_ATTN_ROWS : blas ? FULL_QUERIES_BLAS : FULL_QUERIES;
	/* tasks: (head, window, run of chunk queries of the window) */
	int64_t per_head = 0;
	for (int64_t w = 0; w < n_win; w++)
		per_head += (windows[w + 1] - windows[w] + chunk - 1) / chunk;
	if (fused) {
		attn_fused(K, h, q, k, v, out, n, windows, n_win, per_head, head_floats, scratch,
		           n_threads);
		return;
	}
	const int64_t tasks = h->n_head * per_head;
	(void)n_threads;
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(n_threads) if (n_threads > 1)
#endif
	for (int64_t task = 0; task < tasks; task++) {
		int64_t hh, lo, len, i0, nq, off;
		task_of(task, per_head, windows, chunk, hd, &hh, &lo, &len, &i0, &nq, &off);
		rows_unfused(K, blas, h, q + i0 * W + hh * hd, k + lo * W + hh * hd,
		             v + lo * W + hh * hd, out + i0 * W + hh * hd, nq, len,
		             scratch + (int64_t)thread_id() * FULL_QUERIES_BLAS * n);
	}
}

/* The measured problem: one head of a SigLIP-So400m image (16 heads of 72,
 * 4096 patches), one task's worth of queries of each path against all the
 * keys. The fused kernel's layout of the keys and values is left out of
 * its time: in an encoder it is made once for all 4096 queries. */
#define MEASURE_KEYS  4096
#define MEASURE_HEADS 16
#define MEASURE_HD    72

/* One task of either path of rvi_attn_measure. */
typedef struct attn_trial {
	const rvk_table *K;
	rvi_attn_heads h;
	const float *q, *k, *v, *packed;
	float *out, *scr;
	int64_t n, nq[2];
} attn_trial;

static bool attn_trial_run(int path, void *arg)
{
	const attn_trial *t = arg;
	const int64_t hd = t->h.head_dim, W = t->h.n_head * hd;
	if (path == 1) {
		rows_unfused(t->K, true, &t->h, t->q, t->k, t->v, t->out, t->nq[1], t->n, t->scr);
		return true;
	}
	for (int64_t i0 = 0; i0 < t->nq[0]; i0 += RVK_ATTN_ROWS)
		t->K->attn_rows(t->out + i0 * W, W, t->q + i0 * W, W, RVK_ATTN_ROWS, t->packed,
		                t->n, hd, t->h.scale, t->scr);
	return true;
}

void rvi_attn_measure(const rvk_table *K, double budget_ms, double *fused, double *blas)
{
	*fused = *blas = 0;
	const rvi_attn_heads h = {MEASURE_HEADS, MEASURE_HEADS, MEASURE_HD,
	                          (float)(1.0 / sqrt((double)MEASURE_HD))};
	const int64_t n = MEASURE_KEYS, hd = MEASURE_HD, W = MEASURE_HEADS * MEASURE_HD;
	if (!use_fused(K, &h) || rvi_blas_generic())
		return; /* nothing to choose between */
	/* q, k, v (n, W) of which the first head is used, out (n, W), the
	 * packed keys and values, the working rows of either path */
	const size_t nw = (size_t)(n * W), kv = (size_t)RVK_ATTN_KV_FLOATS(n, hd);
	const size_t rows = (size_t)RVK_ATTN_SCRATCH(n, hd) > (size_t)(FULL_QUERIES_BLAS * n)
	                        ? (size_t)RVK_ATTN_SCRATCH(n, hd)
	                        : (size_t)(FULL_QUERIES_BLAS * n);
	float *buf = rvi_alloc(4 * nw + kv + rows, sizeof(float));
	if (!buf)
		return;
	rvi_fill_uniform(buf, 3 * nw, 0x9e3779b97f4a7c15u);
	/* one task's worth of queries of each path against all the keys */
	attn_trial t = {K,
	                h,
	                buf,
	                buf + nw,
	                buf + 2 * nw,
	                buf + 4 * nw,
	                buf + 3 * nw,
	                buf + 4 * nw + kv,
	                n,
	                {11 * RVK_ATTN_ROWS, FULL_QUERIES_BLAS}};
	K->attn_kv_pack(buf + 4 * nw, t.k, W, t.v, W, n, hd);
	rvi_blas_serial();
	const double flop[2] = {4.0 * (double)t.nq[0] * (double)n * (double)hd,
	                        4.0 * (double)t.nq[1] * (double)n * (double)hd};
	double best[2];
	rvi_time_two(budget_ms, attn_trial_run, &t, flop, best);
	free(buf);
	*fused = best[0];
	*blas = best[1];
}
