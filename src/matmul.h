/* matmul.h: the matrix products of the forward passes, run over threads.
 * It picks the path (kernel-table dots for decode and small batches, OpenBLAS
 * sgemm for wide prefill of float weights) and quantizes activations to the
 * weight type's vec_dot_type first. Kernels themselves live in simd/. */
#ifndef RLAIFV_MATMUL_H
#define RLAIFV_MATMUL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "simd/kernels.h"
#include "src/tensor.h"

/* A weight matrix: n_out rows of n_in elements of `type`, row-major in
 * memory (GGUF ne[0] = n_in, ne[1] = n_out). */
typedef struct rvi_weight {
	enum rvi_type type;
	int64_t n_in;
	int64_t n_out;
	const void *data;
} rvi_weight;

/* Growable scratch memory owned by a context (never shared between threads
 * of different contexts). */
typedef struct rvi_buf {
	void *ptr;
	size_t size;
} rvi_buf;

/* Returns b->ptr with at least size bytes (64-byte aligned), NULL on OOM. */
void *rvi_buf_reserve(rvi_buf *b, size_t size);
void rvi_buf_free(rvi_buf *b);

/* y (n_tok, n_out) = x (n_tok, n_in) @ W^T, rows of x and y contiguous.
 * Each output element is computed independently of how many rows share the
 * call and of n_threads when n_tok <= RVI_MATMUL_EXACT_BATCH (decode and
 * batched decode); wider calls may use BLAS. Returns RV_OK or RV_ERR_NOMEM. */
#define RVI_MATMUL_EXACT_BATCH 16
int rvi_matmul(const rvi_weight *W, const float *x, int64_t n_tok, float *y, int n_threads,
               rvi_buf *scratch);

/* True when the BLAS is OpenBLAS running its generic x86-64 ("Prescott",
 * SSE3) kernels: a DYNAMIC_ARCH build older than the CPU falls back to them,
 * several times slower than the CPU allows. */
bool rvi_blas_generic(void);

/* rvi_blas_generic on a CPU that has AVX2 or AVX-512: a DYNAMIC_ARCH build
 * older than the CPU does not recognise it and falls back to them, several
 * times slower (OPENBLAS_CORETYPE=Haswell or SkylakeX selects a core it
 * knows). */
bool rvi_blas_fallback(void);

/* c (m x n, row stride ldc) = alpha * a (m x k, row stride lda) @ b^T, b
 * (n x k, row stride ldb) when b_trans, else @ b (k x n): one BLAS sgemm on
 * the calling thread. For callers that split their work over their own
 * threads: they call rvi_blas_serial() first, outside the parallel region,
 * so that OpenBLAS starts no threads of its own. The sizes must fit an int
 * (the caller's shapes: an image's patches and a head's width). */
void rvi_sgemm(bool b_trans, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
               int64_t lda, const float *b, int64_t ldb, float *c, int64_t ldc);
void rvi_blas_serial(void);

/* rvi_matmul, but when exact is true never the BLAS path, whatever n_tok:
 * every output element is then independent of n_tok and n_threads. */
int rvi_matmul_ex(const rvi_weight *W, const float *x, int64_t n_tok, float *y, int n_threads,
                  rvi_buf *scratch, bool exact);

/* y[i] (n_tok, W[i]->n_out) = x @ W[i]^T for n_w weights of the same n_in
 * that share x (a layer's q, k and v; its gate and up): the results of n_w
 * rvi_matmul_ex calls, but where neighbouring weights share a type and the
 * prepared path, x is converted once for them and their rows are split
 * over the threads together. */
int rvi_matmul_shared(const rvi_weight *const *W, float *const *y, int n_w, const float *x,
                      int64_t n_tok, int n_threads, rvi_buf *scratch, bool exact);

/* rvi_matmul, then bias (n_out floats, or NULL) added to every row of y:
 * a torch nn.Linear. Where the product is cut into tiles, each tile takes
 * its bias while it is in cache; the bits are those of adding it after. */
int rvi_matmul_bias(const rvi_weight *W, const float *bias, const float *x, int64_t n_tok, float *y,
                    int n_threads, rvi_buf *scratch);

/* The table g's own wide product (gemm_rows) against the BLAS path, timed
 * in turn on one thread for about budget_ms (at least two passes each) on
 * a SigLIP block's shape with F16 weights: the best GFLOP/s of each, both 0
 * when there is no choice. */
void rvi_matmul_measure(const rvk_table *g, double budget_ms, double *own, double *blas);

/* Row `row` of W dequantized to f32 (n_in floats): embedding lookups. */
void rvi_weight_row(const rvi_weight *W, int64_t row, float *out);

#endif
