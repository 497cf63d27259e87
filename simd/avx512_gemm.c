/* avx512_gemm.c: the wide float products of the encoders and prompts
 * (gemm_pack, gemm_rows; see rvk_table).
 *
 * y = x @ W^T for many activation rows (an image's patches, a prompt) and
 * float weights (F32, or F16/BF16 dequantized by the caller). A panel of up
 * to 64 weight rows is laid out once per call as 4 blocks of 16 rows, each
 * transposed (step d of the inner dimension: 16 floats, one per row), then
 * every activation row meets it in tiles of 6 rows by 64 (tile_6x64,
 * avx512_common.h: 24 accumulators, 4 panel loads and 6 broadcasts per
 * step). The inner dimension is walked in blocks of GEMM_STEPS so that a
 * block of the panel stays in L2 while all the activation rows go past
 * it; partial sums wait in y between blocks. Each output is one chain of
 * FMAs over the inner dimension in order, whatever the tile, the blocks or
 * the threads. */
#include "simd/avx512_common.h"

#define ROWS_PER_BLOCK 16
/* Steps of the inner dimension per pass: 64 rows x 512 x 4 bytes = 128 KiB
 * of the panel, in L2 on every AVX-512 core. */
#define GEMM_STEPS 512

void rvk_avx512_gemm_pack(float *panel, const float *w, int64_t n_rows, int64_t n_in)
{
	for (int64_t r0 = 0; r0 < RVK_GEMM_ROWS; r0 += ROWS_PER_BLOCK) {
		float *blk = panel + r0 * n_in;
		for (int64_t d = 0; d < n_in; d++)
			for (int64_t r = 0; r < ROWS_PER_BLOCK; r++)
				blk[d * ROWS_PER_BLOCK + r] =
				    r0 + r < n_rows ? w[(r0 + r) * n_in + d] : 0.0f;
	}
}

/* One pass over steps [d0, d1) of every activation row: tiles of 6 rows,
 * then one by one; partial sums from y when accumulate. */
static ALWAYS_INLINE void gemm_pass(const int accumulate, float *y, int64_t y_stride,
                                    const float *x, int64_t n_tok, const float *panel, int64_t n_in,
                                    int64_t d0, int64_t d1, const __mmask16 m[TILE_VECS])
{
	const __m512 one = _mm512_set1_ps(1.0f);
	const int64_t block = n_in * ROWS_PER_BLOCK;
	int64_t t = 0;
	for (; t + TILE_ROWS <= n_tok; t += TILE_ROWS)
		tile_6x64(TILE_ROWS, accumulate, 0, y + t * y_stride, y_stride, x + t * n_in, n_in,
		          panel, block, d0, d1, m, one);
	for (; t < n_tok; t++)
		tile_6x64(1, accumulate, 0, y + t * y_stride, y_stride, x + t * n_in, n_in, panel,
		          block, d0, d1, m, one);
}

void rvk_avx512_gemm_rows(float *y, int64_t y_stride, const float *x, int64_t n_tok,
                          const float *panel, int64_t n_rows, int64_t n_in)
{
	__mmask16 m[TILE_VECS];
	tile_masks(0, n_rows, m);
	for (int64_t d0 = 0; d0 < n_in; d0 += GEMM_STEPS) {
		const int64_t d1 = n_in - d0 < GEMM_STEPS ? n_in : d0 + GEMM_STEPS;
		if (d0 == 0)
			gemm_pass(0, y, y_stride, x, n_tok, panel, n_in, d0, d1, m);
		else
			gemm_pass(1, y, y_stride, x, n_tok, panel, n_in, d0, d1, m);
	}
}
