/* matmul.c: y = x @ W^T over threads (see matmul.h).
 *
 * Four paths:
 *  - prepared dots (weight types whose kernel set has vec_dot_prep):
 *    activations are converted to the vec_dot_type and prepared once, then
 *    blocks of output rows meet the tokens a chunk at a time in the
 *    kernels' register tiles.
 *  - dots (the other types): activations are converted once to the weight
 *    type's vec_dot_type (Q8_0 / Q8_K blocks in the scratch buffer; f32 rows
 *    are used as they are), then output rows are split over OpenMP threads
 *    in static chunks and every output is one kernel-table dot. Tokens are
 *    looped inside the row loop so each weight row is streamed from memory
 *    once per call.
 *  In both, each output depends only on its weight row and its activation
 *  row, so results do not depend on n_threads or on how many tokens share
 *  the call.
 *  - the active table's own wide product (gemm_pack, gemm_rows), where it
 *    has one and the kernel choice kept it: float weights and more than
 *    RVI_MATMUL_EXACT_BATCH tokens, panels of weight rows over the threads.
 *  - sgemm (float weights and more than RVI_MATMUL_EXACT_BATCH tokens: the
 *    prefill and the vision encoder; not for a type with prepared dots when
 *    the BLAS runs its generic kernels): OpenBLAS, F16/BF16 weights
 *    dequantized to f32 a chunk of rows at a time. Quantized weights never
 *    take it, so that their activations are quantized as llama.cpp
 *    quantizes them. */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include "src/matmul.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "simd/kernels.h"
#include "src/util.h"

#define BUF_ALIGN 64

/* Below this many multiply-adds a call runs on the calling thread: waking a
 * team costs more than the work. Whichever way it runs, the results are the
 * same. */
#define MIN_PARALLEL_WORK (1 << 15)

void *rvi_buf_reserve(rvi_buf *b, size_t size)
{
	if (b->ptr != NULL && b->size >= size)
		return b->ptr;
	/* Round up to the alignment (aligned storage of any size, and room for
	 * vector loads that read a whole last line). */
	if (size > SIZE_MAX - BUF_ALIGN)
		return NULL;
	size_t want = (size + BUF_ALIGN - 1) / BUF_ALIGN * BUF_ALIGN;
	if (want == 0)
		want = BUF_ALIGN;
	void *p = NULL;
	if (posix_memalign(&p, BUF_ALIGN, want) != 0)
		return NULL; /* the old buffer stays valid and owned by b */
	/* Scratch contents are not preserved: nothing to copy. */
	free(b->ptr);
	b->ptr = p;
	b->size = want;
	return p;
}

void rvi_buf_free(rvi_buf *b)
{
	free(b->ptr);
	b->ptr = NULL;
	b->size = 0;
}

#ifdef _OPENMP
static int64_t work_of(int64_t a, int64_t b, int64_t c)
{
	/* Saturating a * b * c: only compared with MIN_PARALLEL_WORK. */
	const double w = (double)a * (double)b * (double)c;
	return w > (double)INT64_MAX / 2 ? INT64_MAX / 2 : (int64_t)w;
}
#endif

/* True when a BLAS call may be made here: dimensions fit its int arguments
 * and we are not already inside an OpenMP team (OpenBLAS must be called
 * from outside parallel regions). */
static bool blas_ok(int64_t n_tok, int64_t n_out, int64_t n_in)
{
	if (n_tok > INT_MAX || n_out > INT_MAX || n_in > INT_MAX)
		return false;
#ifdef _OPENMP
	if (omp_in_parallel())
		return false;
#endif
	return true;
}

bool rvi_blas_generic(void)
{
#if defined(HAVE_OPENBLAS_GET_CONFIG) && defined(__x86_64__)
	return strstr(openblas_get_config(), "Prescott") != NULL;
#else
	return false;
#endif
}

bool rvi_blas_fallback(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx2") && rvi_blas_generic();
#else
	return false;
#endif
}

static void blas_threads(int n_threads)
{
#ifdef HAVE_OPENBLAS_SET_NUM_THREADS
	openblas_set_num_threads(n_threads);
#else
	(void)n_threads;
#endif
}

void rvi_sgemm(bool b_trans, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
               int64_t lda, const float *b, int64_t ldb, float *c, int64_t ldc)
{
	cblas_sgemm(CblasRowMajor, CblasNoTrans, b_trans ? CblasTrans : CblasNoTrans, (int)m,
	            (int)n, (int)k, alpha, a, (int)lda, b, (int)ldb, 0.0f, c, (int)ldc);
}

void rvi_blas_serial(void)
{
	blas_threads(1);
}

/* The tiles of the BLAS path: SGEMM_TOKENS activation rows by SGEMM_ROWS
 * output rows, constants never derived from n_threads. Measured on Zen 5
 * with OpenBLAS's Haswell kernels for the encoders' shapes (n_in 1152 and
 * 4304): one sgemm call over a whole image's 4096 patches by 128 rows ran
 * at 0.85 of the square sgemm's rate, as it packs all the patches again for
 * every 128 rows; tiles of 256 x 192 ran at 0.95-1.0 of it, and leave enough
 * tiles for any thread count to share evenly. */
#define SGEMM_TOKENS 256
#define SGEMM_ROWS   192

static int thread_num(void)
{
#ifdef _OPENMP
	return omp_get_thread_num();
#else
	return 0;
#endif
}

/* The bias of output columns [r0, r0 + nr) added to n_tok rows of y (row
 * stride n_out): the epilogue of a tile while it is in cache. */
static void add_bias_cols(const rvk_table *k, float *y, int64_t n_tok, int64_t n_out,
                          const float *bias, int64_t r0, int64_t nr)
{
	for (int64_t t = 0; t < n_tok; t++)
		k->add_bias(y + t * n_out + r0, bias + r0, 1, nr);
}

/* y (n_tok x n_out) = x @ W^T (+ bias) for float weights through BLAS, with
 * every output bit independent of n_threads. OpenBLAS's own threading splits
 * a call differently for different thread counts, and the split changes the
 * kernels (and so the rounding) some outputs go through. Instead, the
 * product is cut into fixed tiles, each one single-threaded sgemm call of the
 * same shape whatever n_threads is, spread over OpenMP threads. Tiles are
 * taken row block by row block, so a thread usually meets the same block of
 * F16/BF16 rows again and dequantizes it into its own slice of scratch only
 * when the block changes. The bias is added to a tile while it is in cache
 * (the same additions as after the product: the same bits). */
static int blas_matmul(const rvi_weight *W, const rvk_table *k, const float *bias, const float *x,
                       int64_t n_tok, float *y, int n_threads, rvi_buf *scratch)
{
	const int64_t n_in = W->n_in, n_out = W->n_out;
	const int64_t n_rb = (n_out + SGEMM_ROWS - 1) / SGEMM_ROWS;
	const int64_t n_tb = (n_tok + SGEMM_TOKENS - 1) / SGEMM_TOKENS;
	const int64_t n_tiles = n_rb * n_tb;
	const int nt = n_tiles < n_threads ? (int)n_tiles : n_threads;
	const bool f32 = W->type == RVI_TYPE_F32;
	float *wf = NULL;
	int64_t *held = NULL; /* the row block in each thread's slice, or -1 */
	if (!f32) {
		uint64_t bytes;
		if (!rvi_mul_ok((uint64_t)nt * SGEMM_ROWS, (uint64_t)n_in * sizeof(float) + 1,
		                &bytes) ||
		    bytes > SIZE_MAX - 64 ||
		    (wf = rvi_buf_reserve(scratch, (size_t)bytes + 64)) == NULL)
			return RV_ERR_NOMEM;
		held = (int64_t *)(void *)(wf + (size_t)nt * SGEMM_ROWS * (size_t)n_in);
		for (int i = 0; i < nt; i++)
			held[i] = -1;
	}
	const rvk_dequant_fn dequant = k->dequant[W->type];
	const size_t w_row = rvi_row_size(W->type, n_in);
	const char *wd = W->data;
	blas_threads(1);
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (nt > 1)
#endif
	for (int64_t tile = 0; tile < n_tiles; tile++) {
		const int64_t rb = tile / n_tb, r0 = rb * SGEMM_ROWS;
		const int64_t t0 = (tile % n_tb) * SGEMM_TOKENS;
		const int64_t nr = n_out - r0 < SGEMM_ROWS ? n_out - r0 : SGEMM_ROWS;
		const int64_t ntok = n_tok - t0 < SGEMM_TOKENS ? n_tok - t0 : SGEMM_TOKENS;
		const float *w = (const float *)(const void *)(wd + (size_t)r0 * w_row);
		if (!f32) {
			const int me = thread_num();
			float *mine = wf + (size_t)me * SGEMM_ROWS * (size_t)n_in;
			if (held[me] != rb) {
				for (int64_t r = 0; r < nr; r++)
					dequant(wd + (size_t)(r0 + r) * w_row, mine + r * n_in,
					        n_in);
				held[me] = rb;
			}
			w = mine;
		}
		/* y[t0:t0 + ntok, r0:r0 + nr] = x[t0:t0 + ntok] @ w^T */
		float *yt = y + t0 * n_out + r0;
		rvi_sgemm(true, ntok, nr, n_in, 1.0f, x + t0 * n_in, n_in, w, n_in, yt, n_out);
		if (bias)
			add_bias_cols(k, y + t0 * n_out, ntok, n_out, bias, r0, nr);
	}
	return RV_OK;
}

/* y (n_tok x n_out) = x @ W^T (+ bias) for float weights by a kernel
 * table's own product (g's gemm_pack and gemm_rows): panels of
 * RVK_GEMM_ROWS weight rows spread over the threads, each dequantized
 * (F16, BF16) and laid out in the thread's own scratch, then met by every
 * activation row. Every output is one chain of FMAs over n_in whatever the
 * thread count; the bias is added to a panel's columns as in blas_matmul. */
static int gemm_matmul(const rvi_weight *W, const rvk_table *k, const rvk_table *g,
                       const float *bias, const float *x, int64_t n_tok, float *y, int n_threads,
                       rvi_buf *scratch)
{
	const int64_t n_in = W->n_in, n_out = W->n_out;
	const int64_t n_panels = (n_out + RVK_GEMM_ROWS - 1) / RVK_GEMM_ROWS;
	const int nt = n_panels < n_threads ? (int)n_panels : n_threads;
	const bool f32 = W->type == RVI_TYPE_F32;
	/* per thread: the dequantized rows (not for F32) and the panel */
	const uint64_t per = (f32 ? 1u : 2u) * (uint64_t)RVK_GEMM_ROWS;
	uint64_t bytes;
	float *buf;
	if (!rvi_mul_ok((uint64_t)nt * per, (uint64_t)n_in * sizeof(float), &bytes) ||
	    bytes > SIZE_MAX || (buf = rvi_buf_reserve(scratch, (size_t)bytes)) == NULL)
		return RV_ERR_NOMEM;
	const rvk_dequant_fn dequant = k->dequant[W->type];
	const size_t w_row = rvi_row_size(W->type, n_in);
	const char *wd = W->data;
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (nt > 1)
#endif
	for (int64_t p = 0; p < n_panels; p++) {
		const int64_t r0 = p * RVK_GEMM_ROWS;
		const int64_t nr = n_out - r0 < RVK_GEMM_ROWS ? n_out - r0 : RVK_GEMM_ROWS;
		float *panel = buf + (size_t)thread_num() * (size_t)per * (size_t)n_in;
		const float *w = (const float *)(const void *)(wd + (size_t)r0 * w_row);
		if (!f32) {
			float *rows = panel + (size_t)RVK_GEMM_ROWS * (size_t)n_in;
			for (int64_t r = 0; r < nr; r++)
				dequant(wd + (size_t)(r0 + r) * w_row, rows + r * n_in, n_in);
			w = rows;
		}
		g->gemm_pack(panel, w, nr, n_in);
		g->gemm_rows(y + r0, n_out, x, n_tok, panel, nr, n_in);
		if (bias)
			add_bias_cols(k, y, n_tok, n_out, bias, r0, nr);
	}
	return RV_OK;
}

/* Output rows per block of the prepared path: a block's weights stay in the
 * core's cache while every chunk of tokens goes past them. */
#define PREP_ROWS   64
#define PREP_TOKENS 32

static size_t align_up(size_t v)
{
	return (v + BUF_ALIGN - 1) / BUF_ALIGN * BUF_ALIGN;
}

/* Activation row t of x converted for the dots: quantized by quant into q
 * (a_row bytes apart) unless quant is NULL, then prepared by prep (from q,
 * or from x when there is no quant) into pa (p_row bytes apart) unless
 * prep is NULL. */
static void convert_row(const rvk_quant_fn quant, const rvk_prep_fn prep, const float *x, int64_t t,
                        int64_t n_in, char *q, size_t a_row, char *pa, size_t p_row)
{
	if (quant)
		quant(x + t * n_in, q + (size_t)t * a_row, n_in);
	if (prep)
		prep(n_in, quant ? (const void *)(q + (size_t)t * a_row) : x + t * n_in,
		     pa + (size_t)t * p_row);
}

/* Blocks of PREP_ROWS output rows of W. */
static int64_t row_blocks(const rvi_weight *W)
{
	return (W->n_out + PREP_ROWS - 1) / PREP_ROWS;
}

/* The prepared path (see rvk_vec_dot_prep_fn) of n_w weights of one type
 * and width that share x, y[i] = x @ W[i]^T: the activations are quantized
 * and prepared once, then each block of PREP_ROWS output rows of any of the
 * weights meets the tokens PREP_TOKENS at a time, all in one parallel
 * region (one wake-up of the team for a layer's q, k and v). */
static int prep_matmul(const rvi_weight *const *W, float *const *y, int n_w, const rvk_table *k,
                       const float *x, int64_t n_tok, int n_threads, rvi_buf *scratch)
{
	const enum rvi_type type = W[0]->type;
	const int64_t n_in = W[0]->n_in;
	const enum rvi_type vdt = rvi_type_traits_of((int)type)->vec_dot_type;
	const bool is_f32 = vdt == RVI_TYPE_F32; /* prepared straight from x */
	const rvk_quant_fn quant = is_f32 ? NULL : k->quant[vdt];
	const rvk_prep_fn prep = k->prep[type];
	const rvk_vec_dot_prep_fn dot = k->vec_dot_prep[type];
	if ((!is_f32 && quant == NULL) || prep == NULL || k->prep_size[type] == NULL)
		return RV_ERR_INVALID_ARG;
	const size_t a_row = is_f32 ? 0 : align_up(rvi_row_size(vdt, n_in));
	const size_t p_row = align_up(k->prep_size[type](n_in));
	uint64_t bytes;
	if (!rvi_mul_ok((uint64_t)n_tok, (uint64_t)a_row + p_row, &bytes) || bytes > SIZE_MAX)
		return RV_ERR_NOMEM;
	char *q = rvi_buf_reserve(scratch, (size_t)bytes);
	if (q == NULL)
		return RV_ERR_NOMEM;
	char *pa = q + (size_t)n_tok * a_row;

	const size_t w_row = rvi_row_size(type, n_in);
	int64_t n_blocks = 0, n_out = 0;
	for (int i = 0; i < n_w; i++) {
		n_blocks += row_blocks(W[i]);
		n_out += W[i]->n_out;
	}
#ifdef _OPENMP
#pragma omp parallel num_threads(n_threads) if (n_threads > 1 &&                                   \
                                                work_of(n_out, n_in, n_tok) >= MIN_PARALLEL_WORK)
#endif
	{
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
		for (int64_t t = 0; t < n_tok; t++)
			convert_row(quant, prep, x, t, n_in, q, a_row, pa, p_row);
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
		for (int64_t b = 0; b < n_blocks; b++) {
			/* block b of the weights taken in turn */
			int i = 0;
			int64_t bi = b;
			for (; bi >= row_blocks(W[i]); i++)
				bi -= row_blocks(W[i]);
			const int64_t r0 = bi * PREP_ROWS;
			const int64_t m = W[i]->n_out;
			const int64_t nr = m - r0 < PREP_ROWS ? m - r0 : PREP_ROWS;
			const char *wd = (const char *)W[i]->data + (size_t)r0 * w_row;
			for (int64_t t0 = 0; t0 < n_tok; t0 += PREP_TOKENS) {
				const int64_t nt =
				    n_tok - t0 < PREP_TOKENS ? n_tok - t0 : PREP_TOKENS;
				dot(n_in, y[i] + t0 * m + r0, m, wd, w_row, nr,
				    pa + (size_t)t0 * p_row, p_row, nt);
			}
		}
	}
	return RV_OK;
}

/* The table a product of W takes: a measured table names, per weight type,
 * another one for the wide products (see rvk_compose); the exact ones, and
 * so every candidate's, stay on k's own entries. */
static const rvk_table *table_for(const rvi_weight *W, const rvk_table *k, int64_t n_tok,
                                  bool exact)
{
	const rvk_table *wide = k->wide[W->type];
	return wide && !exact && n_tok > RVI_MATMUL_EXACT_BATCH ? wide : k;
}

/* Which path a product takes (see the top of this file). */
enum route { ROUTE_GEMM, ROUTE_BLAS, ROUTE_PREP, ROUTE_DOT };

static enum route route_of(const rvi_weight *W, const rvk_table *k, const rvk_table *g,
                           int64_t n_tok, bool exact)
{
	const bool is_float =
	    W->type == RVI_TYPE_F32 || W->type == RVI_TYPE_F16 || W->type == RVI_TYPE_BF16;
	/* the active table's own wide product where the choice keeps it */
	if (is_float && !exact && n_tok > RVI_MATMUL_EXACT_BATCH && g->gemm_rows && g->gemm_pack)
		return ROUTE_GEMM;
	/* A float type with a prepared path of its own takes it rather than a
	 * BLAS running generic kernels (it is faster); otherwise wide batches of
	 * float weights go to the BLAS. */
	const bool prepared = k->vec_dot_prep[W->type] != NULL;
	if (is_float && !exact && n_tok > RVI_MATMUL_EXACT_BATCH &&
	    blas_ok(n_tok, W->n_out, W->n_in) && !(prepared && rvi_blas_generic()))
		return ROUTE_BLAS;
	return prepared ? ROUTE_PREP : ROUTE_DOT;
}

int rvi_matmul(const rvi_weight *W, const float *x, int64_t n_tok, float *y, int n_threads,
               rvi_buf *scratch)
{
	return rvi_matmul_ex(W, x, n_tok, y, n_threads, scratch, false);
}

/* The checks every product makes of its weight. */
static bool weight_ok(const rvi_weight *W, const rvk_table *k)
{
	const rvi_type_traits *tr = rvi_type_traits_of((int)W->type);
	return tr->supported && k->vec_dot[W->type] != NULL && W->n_in > 0 && W->n_out >= 0 &&
	       W->n_in % tr->block_size == 0;
}

int rvi_matmul_shared(const rvi_weight *const *W, float *const *y, int n_w, const float *x,
                      int64_t n_tok, int n_threads, rvi_buf *scratch, bool exact)
{
	const rvk_table *active = rvk_active();
	for (int i = 0; i < n_w; i++)
		if (!weight_ok(W[i], active) || W[i]->n_in != W[0]->n_in)
			return RV_ERR_INVALID_ARG;
	for (int i = 0; i < n_w && n_tok > 0;) {
		int n = 1; /* the run of weights from i that go together */
		const rvk_table *k = table_for(W[i], active, n_tok, exact);
		if (route_of(W[i], k, active, n_tok, exact) == ROUTE_PREP)
			while (i + n < n_w && W[i + n]->type == W[i]->type)
				n++;
		const int rc = n > 1
		                   ? prep_matmul(W + i, y + i, n, k, x, n_tok,
		                                 n_threads < 1 ? 1 : n_threads, scratch)
		                   : rvi_matmul_ex(W[i], x, n_tok, y[i], n_threads, scratch, exact);
		if (rc != RV_OK)
			return rc;
		i += n;
	}
	return RV_OK;
}

/* rvi_matmul_ex with an optional bias added to every row of y. */
static int matmul_impl(const rvi_weight *W, const float *bias, const float *x, int64_t n_tok,
                       float *y, int n_threads, rvi_buf *scratch, bool exact)
{
	const rvi_type_traits *tr = rvi_type_traits_of((int)W->type);
	const rvk_table *active = rvk_active();
	const rvk_table *k = table_for(W, active, n_tok, exact);
	const int64_t n_in = W->n_in, n_out = W->n_out;

	if (!weight_ok(W, k))
		return RV_ERR_INVALID_ARG;
	if (n_tok <= 0 || n_out == 0)
		return RV_OK;
	if (n_threads < 1)
		n_threads = 1;

	switch (route_of(W, k, active, n_tok, exact)) {
	case ROUTE_GEMM:
		return gemm_matmul(W, k, active, bias, x, n_tok, y, n_threads, scratch);
	case ROUTE_BLAS:
		return blas_matmul(W, k, bias, x, n_tok, y, n_threads, scratch);
	case ROUTE_PREP: {
		const int rc = prep_matmul(&W, &y, 1, k, x, n_tok, n_threads, scratch);
		if (rc == RV_OK && bias)
			k->add_bias(y, bias, n_tok, n_out);
		return rc;
	}
	case ROUTE_DOT:
		break;
	}

	/* Activations in the weight type's vec_dot_type. */
	const enum rvi_type vdt = tr->vec_dot_type;
	const char *act = (const char *)x;
	size_t a_row = (size_t)n_in * sizeof(float);
	if (vdt != RVI_TYPE_F32) {
		const rvk_quant_fn quant = k->quant[vdt];
		uint64_t bytes;
		a_row = rvi_row_size(vdt, n_in);
		if (quant == NULL)
			return RV_ERR_INVALID_ARG;
		if (!rvi_mul_ok((uint64_t)n_tok, a_row, &bytes) || bytes > SIZE_MAX)
			return RV_ERR_NOMEM;
		char *q = rvi_buf_reserve(scratch, (size_t)bytes);
		if (q == NULL)
			return RV_ERR_NOMEM;
#ifdef _OPENMP
#pragma omp parallel for schedule(static)                                                          \
    num_threads(n_threads) if (n_threads > 1 && work_of(n_tok, n_in, 1) >= MIN_PARALLEL_WORK)
#endif
		for (int64_t t = 0; t < n_tok; t++)
			convert_row(quant, NULL, x, t, n_in, q, a_row, NULL, 0);
		act = q;
	}

	const rvk_vec_dot_fn dot = k->vec_dot[W->type];
	const rvk_vec_dot_rows_fn dot_rows = k->vec_dot_rows[W->type];
	const size_t w_row = rvi_row_size(W->type, n_in);
	const char *wd = W->data;
#ifdef _OPENMP
#pragma omp parallel for schedule(static)                                                          \
    num_threads(n_threads) if (n_threads > 1 && work_of(n_out, n_in, n_tok) >= MIN_PARALLEL_WORK)
#endif
	for (int64_t r = 0; r < n_out; r++) {
		const char *wr = wd + (size_t)r * w_row;
		if (dot_rows && n_tok > 1) {
			dot_rows(n_in, &y[r], n_out, wr, act, a_row, n_tok);
			continue;
		}
		for (int64_t t = 0; t < n_tok; t++)
			dot(n_in, &y[t * n_out + r], wr, act + (size_t)t * a_row);
	}
	if (bias)
		k->add_bias(y, bias, n_tok, n_out);
	return RV_OK;
}

int rvi_matmul_ex(const rvi_weight *W, const float *x, int64_t n_tok, float *y, int n_threads,
                  rvi_buf *scratch, bool exact)
{
	return matmul_impl(W, NULL, x, n_tok, y, n_threads, scratch, exact);
}

int rvi_matmul_bias(const rvi_weight *W, const float *bias, const float *x, int64_t n_tok, float *y,
                    int n_threads, rvi_buf *scratch)
{
	return matmul_impl(W, bias, x, n_tok, y, n_threads, scratch, false);
}

void rvi_weight_row(const rvi_weight *W, int64_t row, float *out)
{
	const rvk_dequant_fn dequant =
	    rvi_type_traits_of((int)W->type)->supported ? rvk_active()->dequant[W->type] : NULL;
	if (dequant == NULL || row < 0 || row >= W->n_out) {
		/* A caller bug (types are checked when a model is loaded): make
		 * it loud in the results rather than reading out of bounds. */
		for (int64_t i = 0; i < W->n_in; i++)
			out[i] = NAN;
		return;
	}
	const size_t w_row = rvi_row_size(W->type, W->n_in);
	dequant((const char *)W->data + (size_t)row * w_row, out, W->n_in);
}

/* One pass of either path of rvi_matmul_measure. */
typedef struct matmul_trial {
	const rvk_table *g;
	const rvi_weight *W;
	const float *x;
	float *y;
	int64_t n_tok;
	rvi_buf *scratch;
} matmul_trial;

static bool matmul_trial_run(int path, void *arg)
{
	const matmul_trial *t = arg;
	return (path == 0
	            ? gemm_matmul(t->W, t->g, t->g, NULL, t->x, t->n_tok, t->y, 1, t->scratch)
	            : blas_matmul(t->W, t->g, NULL, t->x, t->n_tok, t->y, 1, t->scratch)) == RV_OK;
}

void rvi_matmul_measure(const rvk_table *g, double budget_ms, double *own, double *blas)
{
	enum { N_TOK = 512, N_OUT = 384, N_IN = 1152 }; /* a SigLIP block's shape */
	*own = *blas = 0;
	if (!g->gemm_rows || !g->gemm_pack || rvi_blas_generic() || !g->dequant[RVI_TYPE_F16])
		return; /* nothing to choose between */
	const size_t w_bytes = rvi_row_size(RVI_TYPE_F16, N_IN) * N_OUT;
	float *x = rvi_alloc((size_t)N_TOK * (N_IN + N_OUT), sizeof(float));
	uint16_t *w = rvi_alloc(w_bytes, 1);
	rvi_buf scratch = {0};
	if (x && w) {
		rvi_fill_uniform(x, (size_t)N_TOK * N_IN, 0x2545f4914f6cdd1du);
		for (size_t i = 0; i < w_bytes / 2; i++) /* small positive halves */
			w[i] = (uint16_t)(0x2c00 + (i * 2654435761u >> 22 & 0x3ff));
		const rvi_weight W = {RVI_TYPE_F16, N_IN, N_OUT, w};
		matmul_trial t = {g, &W, x, x + (size_t)N_TOK * N_IN, N_TOK, &scratch};
		const double flop = 2.0 * N_TOK * N_OUT * N_IN, flops[2] = {flop, flop};
		double best[2];
		rvi_time_two(budget_ms, matmul_trial_run, &t, flops, best);
		*own = best[0];
		*blas = best[1];
	}
	rvi_buf_free(&scratch);
	free(x);
	free(w);
}
