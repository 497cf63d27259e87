/* attention.h: scaled dot-product attention for every family, on the kernel
 * table (and, for vision encoders, on the BLAS where it runs kernels made
 * for this CPU). Two shapes of the problem:
 *
 * - cached: a decoder's queries against the rows of a KV cache layer, each
 *   item seeing the rows its sequence sees (causal, or a whole image span);
 *   best-of-N candidates meet the shared prefix rows in one kernel call;
 * - full: a vision encoder's rows against each other, in one window or in
 *   several (Qwen2.5-VL's window attention).
 *
 * Queries arrive already rotated: RoPE is the caller's (src/rope.h), since
 * keys are rotated once, before the cache keeps them. Every result depends
 * only on its own query and the rows it sees, never on the thread count or
 * on what else shares a call, so batched and single decoding stay
 * bit-identical. */
#ifndef RLAIFV_ATTENTION_H
#define RLAIFV_ATTENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "src/kvcache.h"
#include "simd/kernels.h"

/* Heads of one attention layer. GQA: query head h reads KV head
 * h / (n_head / n_head_kv). */
typedef struct rvi_attn_heads {
	int64_t n_head, n_head_kv, head_dim;
	float scale; /* usually 1/sqrt(head_dim) */
} rvi_attn_heads;

/* Candidates whose queries meet the shared prefix rows in one call. */
#define RVI_ATTN_ITEMS 8

/* The items of a cached call: item i is of sequence seq[i] (-1: the
 * prefix) and sees rows first[i] .. n_visible[i] - 1 of the cache as that
 * sequence sees it (rvi_kv_key); first NULL: from row 0 (a sliding-window
 * layer gives where each item's window starts). A call is all-prefix or
 * all-suffix. */
typedef struct rvi_attn_items {
	int64_t n;
	const int32_t *seq;
	const int64_t *n_visible;
	const int64_t *first;
} rvi_attn_items;

/* Floats of per-thread working memory rvi_attn_cached needs. */
size_t rvi_attn_cached_scratch(const rvi_attn_heads *h, int64_t n_ctx, int n_threads);

/* out (n, n_head * head_dim) = per head softmax(scale q k^T) v over the
 * visible rows of cache layer il; q (n, n_head * head_dim). scratch:
 * rvi_attn_cached_scratch floats, 64-byte aligned. */
void rvi_attn_cached(const rvi_attn_heads *h, const rvi_kvcache *kv, int il, const float *q,
                     float *out, const rvi_attn_items *items, float *scratch, int n_threads);

/* Floats of working memory rvi_attn_full needs for n rows of heads h. */
size_t rvi_attn_full_scratch(const rvi_attn_heads *h, int64_t n, int n_threads);

/* out (n, W) = per head softmax(scale q k^T) v, W = n_head * head_dim,
 * q, k, v (n, W): every row sees every row of its window. windows: n_win
 * + 1 ascending row bounds (windows [b[i], b[i+1])), or NULL: one window of
 * all n rows. Scores and values go to the kernel table's fused attention
 * where it has one, else to the BLAS's sgemm where it runs kernels made for
 * this CPU, else to the table's dots; either way a row's result does not
 * depend on n_threads. */
void rvi_attn_full(const rvi_attn_heads *h, const float *q, const float *k, const float *v,
                   float *out, int64_t n, const int64_t *windows, int64_t n_win, float *scratch,
                   int n_threads);

/* rvi_attn_full's fused kernel of table K against its BLAS path, timed in
 * turn on one thread for about budget_ms (at least one pass each): the
 * best GFLOP/s of each, both 0 when there is no choice (K has no fused
 * kernel, or the BLAS runs generic kernels). */
void rvi_attn_measure(const rvk_table *K, double budget_ms, double *fused, double *blas);

#endif
