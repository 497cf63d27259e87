/* avx512_dot.c: the AVX-512 dot products of weight rows with activation
 * rows: vec_dot and vec_dot_rows of every weight type (F32, F16, BF16
 * against f32; Q8_0, Q4_0 against Q8_0; Q4_K, Q5_K, Q6_K against Q8_K),
 * and vec_dot_prep against the prepared activations of avx512_prep.c
 * (layouts in avx512_common.h): Q8_0 in pairs of blocks, Q4_0, Q4_K and
 * Q6_K in stripes, Q5_K, F16 in tiles. The integer and float order rules
 * they keep are in avx512.c's overview. */
#include "simd/avx512_common.h"

/* ---- F32 / F16 / BF16 weights against f32 activations --------------------- */

/* w (n of kind) . a_r (n f32) -> s[r * s_stride] for R rows a_stride bytes
 * apart. Four accumulators per row (64 elements a step) hide the FMA
 * latency; then 16 at a time into acc 0, the masked tail into acc 1, and the
 * sum ((0 + 1) + (2 + 3)) across lanes. */
static ALWAYS_INLINE void fdot_rows(const int kind, const int R, int64_t n, float *s,
                                    int64_t s_stride, const void *w, const void *a, size_t a_stride)
{
	const float *ar[R_MAX];
	__m512 acc[R_MAX][4];
	UNROLL
	for (int r = 0; r < R; r++) {
		ar[r] = (const float *)((const char *)a + (size_t)r * a_stride);
		UNROLL
		for (int j = 0; j < 4; j++)
			acc[r][j] = _mm512_setzero_ps();
	}
	int64_t i = 0;
	for (; i + 64 <= n; i += 64) {
		const __m512 w0 = wload(kind, w, i), w1 = wload(kind, w, i + 16);
		const __m512 w2 = wload(kind, w, i + 32), w3 = wload(kind, w, i + 48);
		UNROLL
		for (int r = 0; r < R; r++) {
			acc[r][0] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(ar[r] + i), acc[r][0]);
			acc[r][1] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(ar[r] + i + 16), acc[r][1]);
			acc[r][2] = _mm512_fmadd_ps(w2, _mm512_loadu_ps(ar[r] + i + 32), acc[r][2]);
			acc[r][3] = _mm512_fmadd_ps(w3, _mm512_loadu_ps(ar[r] + i + 48), acc[r][3]);
		}
	}
	for (; i + 16 <= n; i += 16) {
		const __m512 w0 = wload(kind, w, i);
		UNROLL
		for (int r = 0; r < R; r++)
			acc[r][0] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(ar[r] + i), acc[r][0]);
	}
	if (i < n) {
		const __mmask16 m = mask16(n - i);
		const __m512 w0 = wload_mask(kind, w, i, m);
		UNROLL
		for (int r = 0; r < R; r++)
			acc[r][1] =
			    _mm512_fmadd_ps(w0, _mm512_maskz_loadu_ps(m, ar[r] + i), acc[r][1]);
	}
	UNROLL
	for (int r = 0; r < R; r++) {
		const __m512 t = _mm512_add_ps(_mm512_add_ps(acc[r][0], acc[r][1]),
		                               _mm512_add_ps(acc[r][2], acc[r][3]));
		s[r * s_stride] = hsum512(t);
	}
}

/* ---- Q8_0 and Q4_0 weights against Q8_0 activations ---------------------- */

/* Per block and row, the order of llama.cpp's x86 kernels, on purpose: the
 * integer dot in 8 int32 lanes (lane k: bytes 4k..4k + 3), converted to
 * float, then acc = fma(dw * da, sumi, acc) with one 8-lane accumulator,
 * block after block, and the lanes summed at the end as hsum256 does. The
 * end-to-end Q8_0 references were made that way, and they are sensitive to
 * the last bit: one activation that lands on the other side of a rounding
 * tie in the next quantization moves a log-prob by 1e-3 to 1e-2. A 16-lane
 * order (two blocks a zmm) failed test_llama's Q8_0 parity by such a flip.
 * So the blocks run on 256-bit vectors; the dot itself is one vpdpbusd. */

/* The fp16 d of 4 blocks `stride` bytes apart (d first in the block), as
 * 4 floats: one conversion for four blocks. */
static inline __m128 d4(const uint8_t *p, size_t stride)
{
	const uint64_t v = (uint64_t)ld16(p) | (uint64_t)ld16(p + stride) << 16 |
	                   (uint64_t)ld16(p + 2 * stride) << 32 |
	                   (uint64_t)ld16(p + 3 * stride) << 48;
	return _mm_cvtph_ps(_mm_cvtsi64_si128((long long)v));
}

/* The 32 weights of the Q8_0 (q4 = 0) or Q4_0 block at b as signed bytes in
 * weight order. Q4_0 byte j holds weight j (low nibble) and j + 16 (high):
 * the 16 bytes go to both 128-bit halves, the upper one shifted right by 4,
 * then nibble - 8. */
static ALWAYS_INLINE __m256i q80_weights(const int q4, const uint8_t *b)
{
	if (!q4)
		return _mm256_loadu_si256((const __m256i *)(b + 2));
	__m256i t = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(b + 2)));
	t = _mm256_mask_srli_epi16(t, 0xff00, t, 4);
	return _mm256_sub_epi8(_mm256_and_si256(t, _mm256_set1_epi8(0x0f)), _mm256_set1_epi8(8));
}

/* One block for R rows: weights wv, activation blocks ab[r], scales d[r]
 * (dw * da broadcast). The activations are made unsigned as a + 128, and
 * the vpdpbusd starts from -128 * (sum of each 4 weights), computed once for
 * all rows: the lanes are then exactly sum a w. */
static ALWAYS_INLINE void q80_block(const int R, __m256i wv, const uint8_t *const *ab,
                                    const __m256 *d, __m256 *acc)
{
	const __m256i x80 = _mm256_set1_epi8((char)0x80);
	const __m256i init = _mm256_sub_epi32(_mm256_setzero_si256(),
	                                      _mm256_dpbusd_epi32(_mm256_setzero_si256(), x80, wv));
	UNROLL
	for (int r = 0; r < R; r++) {
		const __m256i av =
		    _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(ab[r] + 2)), x80);
		const __m256 sumi = _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(init, av, wv));
		acc[r] = _mm256_fmadd_ps(d[r], sumi, acc[r]);
	}
}

/* w (n / 32 Q8_0 or Q4_0 blocks) . a_r (n / 32 Q8_0 blocks) -> s[r * s_stride]
 * for R rows. The scales of 4 blocks are converted and multiplied at once;
 * the 0..3 blocks after the last group of 4 take theirs one by one (the
 * same product dw * da, so the same operations per block). */
static ALWAYS_INLINE void q80_rows(const int q4, const int R, int64_t n, float *s, int64_t s_stride,
                                   const void *w, const void *a, size_t a_stride)
{
	const size_t wsz = q4 ? Q4_0_SZ : Q8_0_SZ;
	const int64_t nb = n / 32;
	const uint8_t *wp = w;
	const uint8_t *ap[R_MAX];
	__m256 acc[R_MAX];
	UNROLL
	for (int r = 0; r < R; r++) {
		ap[r] = (const uint8_t *)a + (size_t)r * a_stride;
		acc[r] = _mm256_setzero_ps();
	}
	int64_t ib = 0;
	for (; ib + 4 <= nb; ib += 4) {
		const __m128 dw = d4(wp + (size_t)ib * wsz, wsz);
		__m128 d[R_MAX];
		UNROLL
		for (int r = 0; r < R; r++)
			d[r] = _mm_mul_ps(dw, d4(ap[r] + (size_t)ib * Q8_0_SZ, Q8_0_SZ));
		UNROLL
		for (int k = 0; k < 4; k++) {
			const uint8_t *ab[R_MAX];
			__m256 dk[R_MAX];
			UNROLL
			for (int r = 0; r < R; r++) {
				ab[r] = ap[r] + (size_t)(ib + k) * Q8_0_SZ;
				dk[r] = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(d[r]),
				                                 _mm256_set1_epi32(k));
			}
			q80_block(R, q80_weights(q4, wp + (size_t)(ib + k) * wsz), ab, dk, acc);
		}
	}
	for (; ib < nb; ib++) {
		const float dw = h2f(wp + (size_t)ib * wsz);
		const uint8_t *ab[R_MAX];
		__m256 dk[R_MAX];
		UNROLL
		for (int r = 0; r < R; r++) {
			ab[r] = ap[r] + (size_t)ib * Q8_0_SZ;
			dk[r] = _mm256_set1_ps(dw * h2f(ab[r]));
		}
		q80_block(R, q80_weights(q4, wp + (size_t)ib * wsz), ab, dk, acc);
	}
	UNROLL
	for (int r = 0; r < R; r++)
		s[r * s_stride] = hsum256(acc[r]);
}

/* ---- K-quants against Q8_K activations ---------------------------------- */

/* All three follow one pattern per block and activation row: 4 zmm of
 * unsigned weights Q[0..3] (64 each, in the order of the activation bytes);
 * P[z] = vpdpbusd(Q[z], a[64z..]), 16 int32 lanes of 4 products each;
 * scales applied with vpdpwssd. A lane of P is at most 4 * 63 * 128 = 32256
 * in magnitude (Q6_K; less for Q4_K/Q5_K), so vpackssdw of P[0], P[1] (and
 * of P[2], P[3]) is exact, and one vpdpwssd per pair multiplies each int16
 * by its sub-block's scale and adds the pairs into int32 lanes: 2 vpdpwssd
 * and 2 packs a row instead of 4 vpdpwssd. The scale vectors (int16, laid
 * out as the packs lay out the P lanes) are built once per weight block
 * and shared by the rows. */

/* vpackssdw(P[2p], P[2p + 1]) puts, in each 128-bit chunk c, lanes 4c..4c+3
 * of P[2p] in int16 positions 0..3 and those of P[2p + 1] in 4..7. These
 * tables give, for each of the 32 int16 positions 8c + j, the sub-block
 * whose products it holds, for p = 0 (add the sub-blocks of the pair before
 * for p = 1: 4 for Q4_K/Q5_K, 8 for Q6_K).
 * Q4_K/Q5_K: P[z] lanes 0..7 are sub-block 2z, 8..15 sub-block 2z + 1, so
 * the sub-block is 2 (j >= 4) + (c >= 2).
 * Q6_K: P[z] lane i is sub-block 4z + i / 4, so it is 4 (j >= 4) + c. */
static const int16_t k4_pack_sub[32] = {0, 0, 0, 0, 2, 2, 2, 2, 0, 0, 0, 0, 2, 2, 2, 2,
                                        1, 1, 1, 1, 3, 3, 3, 3, 1, 1, 1, 1, 3, 3, 3, 3};
static const int16_t q6_pack_sub[32] = {0, 0, 0, 0, 4, 4, 4, 4, 1, 1, 1, 1, 5, 5, 5, 5,
                                        2, 2, 2, 2, 6, 6, 6, 6, 3, 3, 3, 3, 7, 7, 7, 7};

/* The two packed scale vectors from the scales as int16 (sc16, lanes 0..15)
 * and the table above; step is the sub-blocks per pair. */
static ALWAYS_INLINE void pack_scales(__m512i sc16, const int16_t *sub, int step, __m512i S[2])
{
	const __m512i idx = _mm512_loadu_si512((const void *)sub);
	S[0] = _mm512_permutexvar_epi16(idx, sc16);
	S[1] =
	    _mm512_permutexvar_epi16(_mm512_add_epi16(idx, _mm512_set1_epi16((short)step)), sc16);
}

/* isum (16 int32 lanes) += sum over the block of scale * (q . a) for one
 * activation row's 256 quants at qa. */
static ALWAYS_INLINE __m512i kq_isum(__m512i isum, const __m512i Q[4], const __m512i S[2],
                                     const uint8_t *qa)
{
	__m512i P[4];
	UNROLL
	for (int z = 0; z < 4; z++)
		P[z] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), Q[z],
		                           _mm512_loadu_si512((const void *)(qa + 64 * z)));
	isum = _mm512_dpwssd_epi32(isum, _mm512_packs_epi32(P[0], P[1]), S[0]);
	return _mm512_dpwssd_epi32(isum, _mm512_packs_epi32(P[2], P[3]), S[1]);
}

/* The same in a vector, from the 12 bytes at the start of r: bytes 0..7
 * the scales 0..7, bytes 8..15 the mins. */
static ALWAYS_INLINE __m128i k4_scales_mins_x(__m128i r)
{
	/* [w0 w2 w1 w2] and, for the top bits, [0 w0 0 w1] (w: 32-bit words) */
	const __m128i a =
	    _mm_shuffle_epi8(r, _mm_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11));
	const __m128i b = _mm_shuffle_epi8(
	    r, _mm_setr_epi8(-1, -1, -1, -1, 0, 1, 2, 3, -1, -1, -1, -1, 4, 5, 6, 7));
	const __m128i lo = _mm_and_si128(
	    _mm_blend_epi32(a, _mm_srli_epi16(a, 4), 0x8),
	    _mm_setr_epi8(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 15, 15, 15, 15));
	return _mm_or_si128(lo, _mm_and_si128(_mm_srli_epi16(b, 2), _mm_set1_epi8(0x30)));
}

/* w (n / 256 Q4_K or Q5_K blocks) . a_r (n / 256 Q8_K blocks, or prepared
 * ones when pk) for R rows. Per block and row: isum = sum_s sc_s (q . a)_s
 * (kq_isum), then acc += (float(isum) * d) * a.d. The mins' part dmin *
 * sum_s min_s (bsums[2s] + bsums[2s + 1]) goes to accm, from Q8_K blocks
 * as msum (8 lanes: one vpmaddwd with the mins doubled up), accm +=
 * (float(msum) * dmin) * a.d; from prepared ones as one FMA a row of the
 * mins * dmin (shared) with the prepared bsums * a.d. s = sum(acc) -
 * sum(accm). */
static ALWAYS_INLINE void k45_rows(const int q5, const int pk, const int R, int64_t n, float *s,
                                   int64_t s_stride, const void *w, const void *a, size_t a_stride)
{
	const size_t wsz = q5 ? sizeof(rv_block_q5_K) : sizeof(rv_block_q4_K);
	const size_t o_d = q5 ? offsetof(rv_block_q5_K, d) : offsetof(rv_block_q4_K, d);
	const size_t o_dm = q5 ? offsetof(rv_block_q5_K, dmin) : offsetof(rv_block_q4_K, dmin);
	const size_t o_sc = q5 ? offsetof(rv_block_q5_K, scales) : offsetof(rv_block_q4_K, scales);
	const size_t a_bsz = pk ? KP_SZ : Q8_K_SZ, a_qs = pk ? 0 : Q8_K_QS, a_d = pk ? KP_D : 0;
	const uint8_t *ap[R_KQ];
	__m512 acc[R_KQ], accm16[R_KQ];
	__m256 accm[R_KQ];
	UNROLL
	for (int r = 0; r < R; r++) {
		ap[r] = (const uint8_t *)a + (size_t)r * a_stride;
		acc[r] = _mm512_setzero_ps();
		accm[r] = _mm256_setzero_ps();
		accm16[r] = _mm512_setzero_ps();
	}
	const size_t ahead = KQ_PREFETCH_ROWS * (size_t)(n / RV_QK_K) * wsz;
	for (int64_t ib = 0; ib < n / RV_QK_K; ib++) {
		const uint8_t *b = (const uint8_t *)w + (size_t)ib * wsz;
		prefetch_block(b + ahead, wsz);
		const __m512 dwv = _mm512_set1_ps(h2f(b + o_d));
		const float dmin = h2f(b + o_dm);
		uint64_t sc, mn;
		k4_scales_mins(b + o_sc, &sc, &mn);
		const __m128i scx = _mm_cvtsi64_si128((long long)sc);
		const __m128i mnx = _mm_cvtsi64_si128((long long)mn);
		/* the mins as 16 int16, min s at positions 2s and 2s + 1 */
		const __m256i M = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(mnx, mnx));
		const __m512 Mf = pk ? _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu16_epi32(M)),
		                                     _mm512_set1_ps(dmin))
		                     : _mm512_setzero_ps();
		__m512i S[2], Q[4];
		pack_scales(_mm512_cvtepu8_epi16(_mm256_castsi128_si256(scx)), k4_pack_sub, 4, S);
		k45_quants(q5, b, Q);
		UNROLL
		for (int r = 0; r < R; r++) {
			const uint8_t *qa = ap[r] + (size_t)ib * a_bsz;
			const __m512i isum = kq_isum(_mm512_setzero_si512(), Q, S, qa + a_qs);
			/* (isum * dw) * da: dw is a shared vector and da a broadcast
			 * load, where dw * da would cost a multiply and a shuffle a row */
			const __m512 da = _mm512_set1_ps(ldf(qa + a_d));
			acc[r] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(isum), dwv), da,
			                         acc[r]);
			if (pk) {
				accm16[r] = _mm512_fmadd_ps(
				    Mf, _mm512_load_ps((const float *)(qa + KP_BF)), accm16[r]);
				continue;
			}
			const __m256i msum = _mm256_madd_epi16(
			    _mm256_loadu_si256((const __m256i *)(qa + Q8_K_BS)), M);
			accm[r] = _mm256_fmadd_ps(
			    _mm256_mul_ps(_mm256_cvtepi32_ps(msum), _mm256_set1_ps(dmin)),
			    _mm512_castps512_ps256(da), accm[r]);
		}
	}
	UNROLL
	for (int r = 0; r < R; r++)
		s[r * s_stride] = hsum512(acc[r]) - (pk ? hsum512(accm16[r]) : hsum256(accm[r]));
}

/* Each weight row against the prepared rows 8, then 4, then the rest at a
 * time: the same operations for every (weight row, activation row). */
static ALWAYS_INLINE void k45_prep(const int q5, int64_t n, float *y, int64_t y_stride,
                                   const void *w, size_t w_stride, int64_t n_w, const void *p,
                                   size_t p_stride, int64_t n_a)
{
	for (int64_t i = 0; i < n_w; i++) {
		const uint8_t *wi = (const uint8_t *)w + (size_t)i * w_stride;
		const uint8_t *pj = p;
		float *yj = y + i;
		int64_t left = n_a;
		for (; left >= R_KQ; left -= R_KQ, pj += R_KQ * p_stride, yj += R_KQ * y_stride)
			k45_rows(q5, 1, R_KQ, n, yj, y_stride, wi, pj, p_stride);
		for (; left >= 4; left -= 4, pj += 4 * p_stride, yj += 4 * y_stride)
			k45_rows(q5, 1, 4, n, yj, y_stride, wi, pj, p_stride);
		switch (left) {
		case 3:
			k45_rows(q5, 1, 3, n, yj, y_stride, wi, pj, p_stride);
			break;
		case 2:
			k45_rows(q5, 1, 2, n, yj, y_stride, wi, pj, p_stride);
			break;
		case 1:
			k45_rows(q5, 1, 1, n, yj, y_stride, wi, pj, p_stride);
			break;
		default:
			break;
		}
	}
}

/* vec_dot_prep_NAME: the table's entry point for one weight type of IMPL. */
#define DEFINE_DOT_PREP(name, impl, flag)                                                          \
	void rvk_avx512_vec_dot_prep_##name(int64_t n, float *y, int64_t y_stride, const void *w,  \
	                                    size_t w_stride, int64_t n_w, const void *p,           \
	                                    size_t p_stride, int64_t n_a)                          \
	{                                                                                          \
		impl(flag, n, y, y_stride, w, w_stride, n_w, p, p_stride, n_a);                    \
	}

DEFINE_DOT_PREP(q5_K, k45_prep, 1)

/* w (n / 256 Q6_K blocks) . a_r (n / 256 Q8_K blocks) for R rows. With q the
 * stored 0..63 values, sum_s sc_s sum_i (q_i - 32) a_i
 * = sum_s sc_s (q . a)_s - 32 sum_s sc_s bsums_s; the second term (one
 * vpmaddwd of the bsums with -32 * scales) starts the int32 accumulator.
 * Then acc += (float(isum) * d) * a.d per block. */
static ALWAYS_INLINE void q6_K_rows(const int R, int64_t n, float *s, int64_t s_stride,
                                    const void *w, const void *a, size_t a_stride)
{
	const uint8_t *ap[R_KQ];
	__m512 acc[R_KQ];
	UNROLL
	for (int r = 0; r < R; r++) {
		ap[r] = (const uint8_t *)a + (size_t)r * a_stride;
		acc[r] = _mm512_setzero_ps();
	}
	const size_t ahead = KQ_PREFETCH_ROWS * (size_t)(n / RV_QK_K) * sizeof(rv_block_q6_K);
	for (int64_t ib = 0; ib < n / RV_QK_K; ib++) {
		const uint8_t *b = (const uint8_t *)w + (size_t)ib * sizeof(rv_block_q6_K);
		prefetch_block(b + ahead, sizeof(rv_block_q6_K));
		const __m512 dwv = _mm512_set1_ps(h2f(b + offsetof(rv_block_q6_K, d)));
		const __m256i sc16 = _mm256_cvtepi8_epi16(
		    _mm_loadu_si128((const __m128i *)(b + offsetof(rv_block_q6_K, scales))));
		const __m256i c16 = _mm256_mullo_epi16(sc16, _mm256_set1_epi16(-32));
		__m512i S[2], Q[4];
		pack_scales(_mm512_castsi256_si512(sc16), q6_pack_sub, 8, S);
		q6_K_unpack(b, Q);
		UNROLL
		for (int r = 0; r < R; r++) {
			const uint8_t *qa = ap[r] + (size_t)ib * Q8_K_SZ;
			const __m512i init = _mm512_zextsi256_si512(_mm256_madd_epi16(
			    _mm256_loadu_si256((const __m256i *)(qa + Q8_K_BS)), c16));
			const __m512i isum = kq_isum(init, Q, S, qa + Q8_K_QS);
			acc[r] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(isum), dwv),
			                         _mm512_set1_ps(ldf(qa)), acc[r]);
		}
	}
	UNROLL
	for (int r = 0; r < R; r++)
		s[r * s_stride] = hsum512(acc[r]);
}

/* ---- vec_dot / vec_dot_rows entries --------------------------------------- */

/* Each type's rows routine, called as ROWS(R, n, s, s_stride, w, a, a_stride). */
#define F32_ROWS(R, ...)  fdot_rows(W_F32, R, __VA_ARGS__)
#define F16_ROWS(R, ...)  fdot_rows(W_F16, R, __VA_ARGS__)
#define BF16_ROWS(R, ...) fdot_rows(W_BF16, R, __VA_ARGS__)
#define Q8_0_ROWS(R, ...) q80_rows(0, R, __VA_ARGS__)
#define Q4_0_ROWS(R, ...) q80_rows(1, R, __VA_ARGS__)
#define Q4_K_ROWS(R, ...) k45_rows(0, 0, R, __VA_ARGS__)
#define Q5_K_ROWS(R, ...) k45_rows(1, 0, R, __VA_ARGS__)
#define Q6_K_ROWS(R, ...) q6_K_rows(R, __VA_ARGS__)

/* vec_dot: w . a -> *s, the one-row case. vec_dot_rows: w . a_r -> s[r *
 * s_stride] for nrows rows a_stride bytes apart, in groups of R_KQ rows
 * when BIG, of R_MAX rows, then the remaining 1..3 as one group (same
 * per-row operations: the same bits as vec_dot). */
_Static_assert(R_MAX == 4, "vec_dot_rows handles remainders of 1..3 rows");
#define DEFINE_DOTS(name, ROWS, BIG)                                                               \
	void rvk_avx512_vec_dot_##name(int64_t n, float *s, const void *w, const void *a)          \
	{                                                                                          \
		ROWS(1, n, s, 0, w, a, 0);                                                         \
	}                                                                                          \
	void rvk_avx512_vec_dot_rows_##name(int64_t n, float *s, int64_t s_stride, const void *w,  \
	                                    const void *a, size_t a_stride, int64_t nrows)         \
	{                                                                                          \
		const char *ac = a;                                                                \
		int64_t r = 0;                                                                     \
		for (; BIG && r + R_KQ <= nrows; r += R_KQ)                                        \
			ROWS(R_KQ, n, s + r * s_stride, s_stride, w, ac + (size_t)r * a_stride,    \
			     a_stride);                                                            \
		for (; r + R_MAX <= nrows; r += R_MAX)                                             \
			ROWS(R_MAX, n, s + r * s_stride, s_stride, w, ac + (size_t)r * a_stride,   \
			     a_stride);                                                            \
		switch (nrows - r) {                                                               \
		case 3:                                                                            \
			ROWS(3, n, s + r * s_stride, s_stride, w, ac + (size_t)r * a_stride,       \
			     a_stride);                                                            \
			break;                                                                     \
		case 2:                                                                            \
			ROWS(2, n, s + r * s_stride, s_stride, w, ac + (size_t)r * a_stride,       \
			     a_stride);                                                            \
			break;                                                                     \
		case 1:                                                                            \
			ROWS(1, n, s + r * s_stride, s_stride, w, ac + (size_t)r * a_stride,       \
			     a_stride);                                                            \
			break;                                                                     \
		default:                                                                           \
			break;                                                                     \
		}                                                                                  \
	}

// w (n f32) . a (n f32) -> s
DEFINE_DOTS(f32, F32_ROWS, 0)
// w (n f16) . a (n f32) -> s
DEFINE_DOTS(f16, F16_ROWS, 0)
// w (n bf16) . a (n f32) -> s
DEFINE_DOTS(bf16, BF16_ROWS, 0)
// w (n / 32 Q8_0 blocks) . a (n / 32 Q8_0 blocks) -> s
DEFINE_DOTS(q8_0, Q8_0_ROWS, 0)
// w (n / 32 Q4_0 blocks) . a (n / 32 Q8_0 blocks) -> s
DEFINE_DOTS(q4_0, Q4_0_ROWS, 0)
// w (n / 256 Q4_K blocks) . a (n / 256 Q8_K blocks) -> s
DEFINE_DOTS(q4_K, Q4_K_ROWS, 1)
// w (n / 256 Q5_K blocks) . a (n / 256 Q8_K blocks) -> s
DEFINE_DOTS(q5_K, Q5_K_ROWS, 1)
// w (n / 256 Q6_K blocks) . a (n / 256 Q8_K blocks) -> s
DEFINE_DOTS(q6_K, Q6_K_ROWS, 1)

/* ---- Q8_0 against prepared activations (avx512_common.h) ----------------- */

/* The weights of the pair at b0 (nv blocks): q signed bytes, init the
 * vpdpbusd start -128 * (sum of each 4), d the scales. */
static ALWAYS_INLINE void qp_weights(const uint8_t *b0, const int nv, __m512i *q, __m512i *init,
                                     __m512 *d)
{
	const __m256i x0 = _mm256_loadu_si256((const __m256i *)(b0 + 2));
	const __m256i x1 = nv > 1 ? _mm256_loadu_si256((const __m256i *)(b0 + Q8_0_SZ + 2))
	                          : _mm256_setzero_si256();
	*q = _mm512_inserti64x4(_mm512_castsi256_si512(x0), x1, 1);
	*init = _mm512_sub_epi32(
	    _mm512_setzero_si512(),
	    _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8((char)0x80), *q));
	*d = pair_scales(b0, nv);
}

/* One pair of blocks for WR weight rows and AR prepared rows. */
static ALWAYS_INLINE void qp_group(const int WR, const int AR, const int nv, const uint8_t *w,
                                   size_t w_stride, const uint8_t *p, size_t p_stride,
                                   __m256 acc8[R_MAX][AR_MAX])
{
	__m512i q[R_MAX], init[R_MAX];
	__m512 dw[R_MAX];
	UNROLL
	for (int i = 0; i < WR; i++) {
		/* the same pair one tile of rows further on */
		prefetch_block(w + (size_t)(WR + i) * w_stride, 2 * Q8_0_SZ);
		qp_weights(w + (size_t)i * w_stride, nv, &q[i], &init[i], &dw[i]);
	}
	UNROLL
	for (int j = 0; j < AR; j++) {
		const uint8_t *pj = p + (size_t)j * p_stride;
		const __m512i a = _mm512_load_si512(pj);
		const __m512 da = _mm512_load_ps(pj + QP_BYTES - 64);
		UNROLL
		for (int i = 0; i < WR; i++) {
			const __m512 d = _mm512_mul_ps(dw[i], da);
			const __m512 s = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(init[i], a, q[i]));
			acc8[i][j] = _mm256_fmadd_ps(_mm512_castps512_ps256(d),
			                             _mm512_castps512_ps256(s), acc8[i][j]);
			if (nv > 1)
				acc8[i][j] = _mm256_fmadd_ps(hi256(d), hi256(s), acc8[i][j]);
		}
	}
}

static ALWAYS_INLINE void qp_tile(const int WR, const int AR, int64_t n, float *y, int64_t y_stride,
                                  const uint8_t *w, size_t w_stride, const uint8_t *p,
                                  size_t p_stride)
{
	const int64_t nb = n / 32;
	__m256 acc8[R_MAX][AR_MAX];
	UNROLL
	for (int i = 0; i < WR; i++) {
		UNROLL
		for (int j = 0; j < AR; j++)
			acc8[i][j] = _mm256_setzero_ps();
	}
	int64_t ib = 0;
	for (; ib + 2 <= nb; ib += 2)
		qp_group(WR, AR, 2, w + (size_t)ib * Q8_0_SZ, w_stride,
		         p + (size_t)(ib / 2) * QP_BYTES, p_stride, acc8);
	if (ib < nb)
		qp_group(WR, AR, 1, w + (size_t)ib * Q8_0_SZ, w_stride,
		         p + (size_t)(ib / 2) * QP_BYTES, p_stride, acc8);
	UNROLL
	for (int i = 0; i < WR; i++) {
		UNROLL
		for (int j = 0; j < AR; j++)
			y[j * y_stride + i] = hsum256(acc8[i][j]);
	}
}

/* Runs the tiles of an n_w x n_a prepared dot, tw x ta at a time (fewer
 * at the edges): each case of the switch (on wr * 16 + ar) calls a tile
 * routine with wt, pt and yt, the tile's weights, prepared rows and
 * results. */
#define FOR_TILES(tw, ta, ...)                                                                     \
	for (int64_t i = 0; i < n_w; i += (tw)) {                                                  \
		const int wr = n_w - i < (tw) ? (int)(n_w - i) : (tw);                             \
		const uint8_t *wt = (const uint8_t *)w + (size_t)i * w_stride;                     \
		for (int64_t j = 0; j < n_a; j += (ta)) {                                          \
			const int ar = n_a - j < (ta) ? (int)(n_a - j) : (ta);                     \
			const uint8_t *pt = (const uint8_t *)p + (size_t)j * p_stride;             \
			float *yt = y + j * y_stride + i;                                          \
			switch (wr * 16 + ar) {                                                    \
				__VA_ARGS__                                                        \
			default:                                                                   \
				break;                                                             \
			}                                                                          \
		}                                                                                  \
	}

#define QP_TILE(WR, AR)                                                                            \
	case (WR)*16 + (AR):                                                                       \
		qp_tile(WR, AR, n, yt, y_stride, wt, w_stride, pt, p_stride);                      \
		break

/* Tiles of up to 4 weight rows x 3 activation rows for decoding one or a
 * few tokens, of 2 x 8 for more (a best-of-8 step, a prompt), where the
 * weights are then unpacked once for 8 rows. */
void rvk_avx512_vec_dot_prep_q8_0(int64_t n, float *y, int64_t y_stride, const void *w,
                                  size_t w_stride, int64_t n_w, const void *p, size_t p_stride,
                                  int64_t n_a)
{
	const int tw = n_a >= 4 ? 2 : R_MAX, ta = n_a >= 4 ? AR_MAX : 3;
	FOR_TILES(tw, ta, QP_TILE(1, 1); QP_TILE(1, 2); QP_TILE(1, 3); QP_TILE(1, 4); QP_TILE(1, 5);
	          QP_TILE(1, 6); QP_TILE(1, 7); QP_TILE(1, 8); QP_TILE(2, 1); QP_TILE(2, 2);
	          QP_TILE(2, 3); QP_TILE(2, 4); QP_TILE(2, 5); QP_TILE(2, 6); QP_TILE(2, 7);
	          QP_TILE(2, 8); QP_TILE(3, 1); QP_TILE(3, 2); QP_TILE(3, 3); QP_TILE(4, 1);
	          QP_TILE(4, 2); QP_TILE(4, 3);)
}

/* bytes of a stripe of weights, of a prepared stripe */
static ALWAYS_INLINE size_t st_wbytes(const int kind)
{
	return kind == ST_Q4_0   ? 16 * Q4_0_SZ
	       : kind == ST_Q4_K ? 2 * sizeof(rv_block_q4_K)
	                         : sizeof(rv_block_q6_K);
}

/* the blocks of a whole stripe (Q4_0 blocks, Q4_K blocks, Q6_K sub-blocks),
 * and those of the last one of a row of n */
static ALWAYS_INLINE int st_full(const int kind)
{
	return kind == ST_Q4_K ? 2 : 16;
}

static ALWAYS_INLINE int st_last(const int kind, int64_t n)
{
	const int64_t before = st_count(kind, n) - 1;
	return kind == ST_Q4_0   ? (int)(n / 32 - 16 * before)
	       : kind == ST_Q4_K ? (int)(n / RV_QK_K - 2 * before)
	                         : 16;
}

/* ---- Q4_0, Q6_K and Q4_K stripes (avx512_common.h) ----------------------- */

/* weight rows ahead whose stripe is prefetched */
#define STRIPE_PREFETCH_ROWS 4

/* Lanes whose block is one of the first nv of the stripe. */
static ALWAYS_INLINE __mmask16 stripe_live(int nv)
{
	unsigned live = 0;
	_Pragma("GCC unroll 16") for (int m = 0; m < 16; m++) live |=
	    (unsigned)(stripe_block(m) < nv) << m;
	return (__mmask16)live;
}

/* The unpacked weights of the stripe at b0 (nv blocks of Q4_0 or Q4_K, or
 * one Q6_K block), q[k] against prepared zmm k, their scales in stripe
 * lanes, and (Q4_K) their mins * dmin. */
static ALWAYS_INLINE void stripe_weights(const int kind, const uint8_t *b0, int nv, __m512i q[8],
                                         __m512 *dw, __m512 *dm)
{
	if (kind == ST_Q4_K) {
		/* x[4B + 2h + c]: nibbles c of qs bytes 64h.. of block B, i.e.
		 * dword 8g + k holds weights 4k.. of sub-block 4h + 2g + c */
		const __m512i m = _mm512_set1_epi8(0x0f);
		__m512i x[8];
		__m512i smd[2];  /* per block: its 8 scales, then its 8 mins, as int32 */
		uint64_t dd = 0; /* the fp16 d and dmin of both, converted at once */
		UNROLL
		for (int B = 0; B < 2; B++) {
			const uint8_t *b = b0 + (size_t)B * sizeof(rv_block_q4_K);
			UNROLL
			for (int h = 0; h < 2; h++) {
				const __m512i z =
				    B < nv ? _mm512_loadu_si512(
				                 (const void *)(b + offsetof(rv_block_q4_K, qs) +
				                                64 * h))
				           : _mm512_setzero_si512();
				x[4 * B + 2 * h] = _mm512_and_si512(z, m);
				x[4 * B + 2 * h + 1] = _mm512_and_si512(_mm512_srli_epi16(z, 4), m);
			}
			smd[B] = B < nv
			             ? _mm512_cvtepu8_epi32(k4_scales_mins_x(_mm_loadu_si128(
			                   (const __m128i *)(b + offsetof(rv_block_q4_K, scales)))))
			             : _mm512_setzero_si512();
			if (B < nv)
				dd |= (uint64_t)ld32(b) << (32 * B);
		}
		stripe_transpose8(x, q);
		__m512i si = _mm512_setzero_si512(), di = _mm512_setzero_si512();
		_Pragma("GCC unroll 16") for (int L = 0; L < 16; L++)
		{
			si = _mm512_mask_set1_epi32(si, (__mmask16)(1u << L),
			                            16 * k4_lane_block(L) + k4_lane_sub(L));
			di = _mm512_mask_set1_epi32(di, (__mmask16)(1u << L), 2 * k4_lane_block(L));
		}
		const __m512 dv =
		    _mm512_castps128_ps512(_mm_cvtph_ps(_mm_cvtsi64_si128((long long)dd)));
		*dw =
		    _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_permutex2var_epi32(smd[0], si, smd[1])),
		                  _mm512_permutexvar_ps(di, dv));
		*dm = _mm512_mul_ps(
		    _mm512_cvtepi32_ps(_mm512_permutex2var_epi32(
		        smd[0], _mm512_add_epi32(si, _mm512_set1_epi32(8)), smd[1])),
		    _mm512_permutexvar_ps(_mm512_add_epi32(di, _mm512_set1_epi32(1)), dv));
		return;
	}
	if (kind == ST_Q6_K) {
		__m512i z[4];
		q6_K_unpack(b0, z);
		stripe_transpose(z, q);
		/* stripe_block(m), m = 0..15 */
		const __m128i idx =
		    _mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
		const __m128i sc = _mm_shuffle_epi8(
		    _mm_loadu_si128((const __m128i *)(b0 + offsetof(rv_block_q6_K, scales))), idx);
		*dw = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(sc)),
		                    _mm512_set1_ps(h2f(b0 + offsetof(rv_block_q6_K, d))));
		return;
	}
	__m512i t[4];
	stripe_dwords(b0, Q4_0_SZ, 2, nv, t);
	const __m512i m = _mm512_set1_epi8(0x0f);
	UNROLL
	for (int k = 0; k < 4; k++) {
		q[k] = _mm512_and_si512(t[k], m);
		q[4 + k] = _mm512_and_si512(_mm512_srli_epi16(t[k], 4), m);
	}
	__m512i idx = _mm512_setzero_si512();
	_Pragma("GCC unroll 16") for (int l = 0; l < 16; l++) idx =
	    _mm512_mask_set1_epi32(idx, (__mmask16)(1u << l), (int)(stripe_block(l) * Q4_0_SZ));
	const __m512i h = nv == 16 ? _mm512_i32gather_epi32(idx, b0, 1)
	                           : _mm512_mask_i32gather_epi32(_mm512_setzero_si512(),
	                                                         stripe_live(nv), idx, b0, 1);
	*dw = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(h));
}

static ALWAYS_INLINE void stripe_dot(const int kind, const int WR, const int AR, int nv,
                                     const uint8_t *w, size_t w_stride, const uint8_t *p,
                                     size_t p_stride, __m512 acc[2][AR_MAX])
{
	const int K = st_dots(kind);
	__m512i q[2][8];
	__m512 dw[2], dm[2];
	UNROLL
	for (int i = 0; i < WR; i++) {
		prefetch_block(w + (size_t)(STRIPE_PREFETCH_ROWS + i) * w_stride, st_wbytes(kind));
		stripe_weights(kind, w + (size_t)i * w_stride, nv, q[i], &dw[i], &dm[i]);
	}
	UNROLL
	for (int j = 0; j < AR; j++) {
		const uint8_t *pj = p + (size_t)j * p_stride;
		const __m512 da = _mm512_load_ps(pj + st_scales(kind));
		UNROLL
		for (int i = 0; i < WR; i++) {
			/* Integer sums are exact, so the chains can be split as
			 * suits: in two for a single row, where vpdpbusd's latency
			 * would bound it. */
			__m512i s = kind == ST_Q4_K ? _mm512_setzero_si512()
			                            : _mm512_load_si512(pj + st_init(kind));
			if (WR * AR < 4) {
				__m512i s2 = _mm512_setzero_si512();
				UNROLL
				for (int k = 0; k < K / 2; k++) {
					s = _mm512_dpbusd_epi32(s, q[i][k],
					                        _mm512_load_si512(pj + 64 * k));
					s2 = _mm512_dpbusd_epi32(
					    s2, q[i][K / 2 + k],
					    _mm512_load_si512(pj + 64 * (K / 2 + k)));
				}
				s = _mm512_add_epi32(s, s2);
			} else {
				UNROLL
				for (int k = 0; k < K; k++)
					s = _mm512_dpbusd_epi32(s, q[i][k],
					                        _mm512_load_si512(pj + 64 * k));
			}
			acc[i][j] = _mm512_fmadd_ps(_mm512_mul_ps(dw[i], da), _mm512_cvtepi32_ps(s),
			                            acc[i][j]);
			if (kind == ST_Q4_K)
				acc[i][j] = _mm512_fnmadd_ps(
				    dm[i], _mm512_load_ps(pj + st_init(kind)), acc[i][j]);
		}
	}
}

/* WR weight rows against AR prepared rows over stripes s0..s1 of the row.
 * The accumulators start from part (WR x AR_MAX x 16 floats) unless s0 is
 * 0, and go back to it unless s1 ends the row, where their sums are the
 * results: a row cut into column spans gets the same bits as a row run
 * whole. */
static ALWAYS_INLINE void stripe_tile(const int kind, const int WR, const int AR, int64_t n,
                                      int64_t s0, int64_t s1, float *part, float *y,
                                      int64_t y_stride, const uint8_t *w, size_t w_stride,
                                      const uint8_t *p, size_t p_stride)
{
	const int64_t ns = st_count(kind, n);
	const int last_nv = st_last(kind, n);
	__m512 acc[2][AR_MAX];
	UNROLL
	for (int i = 0; i < WR; i++) {
		UNROLL
		for (int j = 0; j < AR; j++)
			acc[i][j] = s0 == 0 ? _mm512_setzero_ps()
			                    : _mm512_load_ps(part + (i * AR_MAX + j) * 16);
	}
	int64_t s = s0;
	const int64_t full_end = s1 == ns && last_nv < st_full(kind) ? s1 - 1 : s1;
	for (; s < full_end; s++)
		stripe_dot(kind, WR, AR, st_full(kind), w + (size_t)s * st_wbytes(kind), w_stride,
		           p + (size_t)s * st_pbytes(kind), p_stride, acc);
	if (s < s1)
		stripe_dot(kind, WR, AR, last_nv, w + (size_t)s * st_wbytes(kind), w_stride,
		           p + (size_t)s * st_pbytes(kind), p_stride, acc);
	UNROLL
	for (int i = 0; i < WR; i++) {
		UNROLL
		for (int j = 0; j < AR; j++) {
			if (s1 == ns)
				y[j * y_stride + i] = hsum512(acc[i][j]);
			else
				_mm512_store_ps(part + (i * AR_MAX + j) * 16, acc[i][j]);
		}
	}
}

#define STRIPE_TILE(WR, AR)                                                                        \
	case (WR)*16 + (AR):                                                                       \
		stripe_tile(kind, WR, AR, n, 0, ns, NULL, yt, y_stride, wt, w_stride, pt,          \
		            p_stride);                                                             \
		break

#define STRIPE_SPAN_TILE(AR)                                                                       \
	case AR:                                                                                   \
		stripe_tile(kind, 1, AR, n, s0, s1, part[i - i0], y + j * y_stride + i, y_stride,  \
		            (const uint8_t *)w + (size_t)i * w_stride, w_stride,                   \
		            (const uint8_t *)p + (size_t)j * p_stride, p_stride);                  \
		break

/* Weights of a column span, and weight rows per pass over the spans: 8
 * prepared rows of a span (20-24 KB) stay in L1 while the weights stream
 * past (8 whole rows of 5632 columns would not: 0.31 against 0.23 ns a
 * Q4_0 block). */
#define STRIPE_SPAN 2048
#define STRIPE_PASS 8

/* Tiles of 1 weight row (one token) or 2 (two or three) x up to 3
 * activation rows for decoding; 1 x up to 8 for more (a best-of-8 step, a
 * prompt), in column spans. */
static ALWAYS_INLINE void stripe_prep(const int kind, int64_t n, float *y, int64_t y_stride,
                                      const void *w, size_t w_stride, int64_t n_w, const void *p,
                                      size_t p_stride, int64_t n_a)
{
	const int64_t ns = st_count(kind, n);
	if (n_a < 4) {
		/* One token: one weight row at a time. Streamed from memory on
		 * AMD Zen 5 (a shared KVM guest, noisy, one thread), 2 rows side
		 * by side ran at 6-9 GB/s where 1 ran at 10-12 (Q4_0, Q4_K,
		 * Q6_K), though 5-12% slower in cache; the tiles give the same
		 * bits whatever their shape. */
		const int tw = n_a == 1 ? 1 : 2;
		FOR_TILES(tw, 3, STRIPE_TILE(1, 1); STRIPE_TILE(1, 2); STRIPE_TILE(1, 3);
		          STRIPE_TILE(2, 1); STRIPE_TILE(2, 2); STRIPE_TILE(2, 3);)
		return;
	}
	const int64_t span = STRIPE_SPAN / st_weights(kind);
	_Alignas(64) float part[STRIPE_PASS][AR_MAX * 16];
	for (int64_t j = 0; j < n_a; j += AR_MAX) {
		const int ar = n_a - j < AR_MAX ? (int)(n_a - j) : AR_MAX;
		for (int64_t i0 = 0; i0 < n_w; i0 += STRIPE_PASS) {
			const int64_t i1 = n_w - i0 < STRIPE_PASS ? n_w : i0 + STRIPE_PASS;
			for (int64_t s0 = 0; s0 < ns; s0 += span) {
				const int64_t s1 = ns - s0 < span ? ns : s0 + span;
				for (int64_t i = i0; i < i1; i++) {
					switch (ar) {
						STRIPE_SPAN_TILE(1);
						STRIPE_SPAN_TILE(2);
						STRIPE_SPAN_TILE(3);
						STRIPE_SPAN_TILE(4);
						STRIPE_SPAN_TILE(5);
						STRIPE_SPAN_TILE(6);
						STRIPE_SPAN_TILE(7);
						STRIPE_SPAN_TILE(8);
					default:
						break;
					}
				}
			}
		}
	}
}

DEFINE_DOT_PREP(q4_0, stripe_prep, ST_Q4_0)
DEFINE_DOT_PREP(q6_K, stripe_prep, ST_Q6_K)
DEFINE_DOT_PREP(q4_K, stripe_prep, ST_Q4_K)

/* ---- F16 against prepared f32 activations (avx512_common.h) -------------- */

/* Columns of the weight rows converted to f32 at a time, and activation
 * rows whose accumulators are kept while they are: the conversion is done
 * once for all of them rather than once per tile. */
#define F16P_COLS 1024
#define F16P_ROWS (6 * F16P_AR)

/* acc_mem[i][jo + j] += w_i . a_j over the cl (a multiple of 16) converted
 * columns wf (R_MAX rows of F16P_COLS) and the prepared rows a_j = p + j *
 * p_stride (floats, at the same column). */
static ALWAYS_INLINE void f16p_tile(const int WR, const int AR, int64_t cl, const float *wf,
                                    const float *p, size_t p_stride,
                                    __m512 acc_mem[R_MAX][F16P_ROWS], int64_t jo)
{
	__m512 acc[R_MAX][F16P_AR];
	UNROLL
	for (int i = 0; i < WR; i++) {
		UNROLL
		for (int j = 0; j < AR; j++)
			acc[i][j] = acc_mem[i][jo + j];
	}
	for (int64_t k = 0; k < cl; k += 16) {
		__m512 wv[R_MAX];
		UNROLL
		for (int i = 0; i < WR; i++)
			wv[i] = _mm512_load_ps(wf + (size_t)i * F16P_COLS + k);
		UNROLL
		for (int j = 0; j < AR; j++) {
			const __m512 av = _mm512_load_ps(
			    (const float *)((const uint8_t *)p + (size_t)j * p_stride) + k);
			UNROLL
			for (int i = 0; i < WR; i++)
				acc[i][j] = _mm512_fmadd_ps(wv[i], av, acc[i][j]);
		}
	}
	UNROLL
	for (int i = 0; i < WR; i++) {
		UNROLL
		for (int j = 0; j < AR; j++)
			acc_mem[i][jo + j] = acc[i][j];
	}
}

#define F16P_TILE(WR, AR)                                                                          \
	case (WR)*16 + (AR):                                                                       \
		f16p_tile(WR, AR, cl, &wf[0][0], pt, p_stride, acc_mem, j);                        \
		break

/* Decoding (up to F16D_AR activation rows): the sums of the staged path
 * below, one 16-lane accumulator per (weight row, activation row) over the
 * columns in order from zero, the same fused multiply-adds on the same
 * (zero-padded) lanes, so the same bits; but the weights are converted in
 * registers as they stream in, one row at a time, instead of being stored
 * to wf and loaded back. Measured on AMD Zen 5 (a shared KVM guest, noisy):
 * the staging made avx512 F16 decode half as fast as avx2's; full vectors
 * are loaded unmasked, as masked loads of streamed weights ran 3-5 times
 * slower there (masks only for the tail); and one row at a time streamed
 * faster than 2 or 4 side by side (10-12 against 5-9 GB/s, one thread). */
#define F16D_AR 3
static ALWAYS_INLINE void f16d_row(const int AR, int64_t n, float *y, int64_t y_stride,
                                   const uint16_t *h, const uint8_t *p, size_t p_stride)
{
	__m512 acc[F16D_AR];
	UNROLL
	for (int j = 0; j < AR; j++)
		acc[j] = _mm512_setzero_ps();
	for (int64_t k = 0; k < n; k += 16) {
		const __m512 wv =
		    _mm512_cvtph_ps(n - k >= 16 ? _mm256_loadu_si256((const __m256i *)(h + k))
		                                : _mm256_maskz_loadu_epi16(mask16(n - k), h + k));
		UNROLL
		for (int j = 0; j < AR; j++)
			acc[j] = _mm512_fmadd_ps(
			    wv,
			    _mm512_load_ps((const float *)(const void *)(p + (size_t)j * p_stride) +
			                   k),
			    acc[j]);
	}
	UNROLL
	for (int j = 0; j < AR; j++)
		y[j * y_stride] = hsum512(acc[j]);
}

static void f16_decode(int64_t n, float *y, int64_t y_stride, const void *w, size_t w_stride,
                       int64_t n_w, const void *p, size_t p_stride, int64_t n_a)
{
	for (int64_t i = 0; i < n_w; i++) {
		const uint16_t *h =
		    (const uint16_t *)(const void *)((const uint8_t *)w + (size_t)i * w_stride);
		switch (n_a) {
		case 1:
			f16d_row(1, n, y + i, y_stride, h, (const uint8_t *)p, p_stride);
			break;
		case 2:
			f16d_row(2, n, y + i, y_stride, h, (const uint8_t *)p, p_stride);
			break;
		default:
			f16d_row(3, n, y + i, y_stride, h, (const uint8_t *)p, p_stride);
			break;
		}
	}
}

/* Per (weight row, activation row) the sum runs in one 16-lane accumulator
 * over the columns in order, whatever the tile and the column chunk (the
 * accumulators go to memory between chunks): results do not depend on the
 * grouping. */
void rvk_avx512_vec_dot_prep_f16(int64_t n, float *y, int64_t y_stride, const void *w,
                                 size_t w_stride, int64_t n_w, const void *p, size_t p_stride,
                                 int64_t n_a)
{
	if (n_a <= F16D_AR) {
		f16_decode(n, y, y_stride, w, w_stride, n_w, p, p_stride, n_a);
		return;
	}
	_Alignas(64) float wf[R_MAX][F16P_COLS];
	__m512 acc_mem[R_MAX][F16P_ROWS];
	for (int64_t i = 0; i < n_w; i += R_MAX) {
		const int wr = n_w - i < R_MAX ? (int)(n_w - i) : R_MAX;
		const uint8_t *wt = (const uint8_t *)w + (size_t)i * w_stride;
		for (int64_t j0 = 0; j0 < n_a; j0 += F16P_ROWS) {
			const int64_t rows = n_a - j0 < F16P_ROWS ? n_a - j0 : F16P_ROWS;
			for (int r = 0; r < wr; r++)
				for (int64_t j = 0; j < rows; j++)
					acc_mem[r][j] = _mm512_setzero_ps();
			for (int64_t c0 = 0; c0 < n; c0 += F16P_COLS) {
				const int64_t cols = n - c0 < F16P_COLS ? n - c0 : F16P_COLS;
				const int64_t cl = (cols + 15) / 16 * 16;
				for (int r = 0; r < wr; r++) {
					const uint16_t *h =
					    (const uint16_t *)(const void *)(wt +
					                                     (size_t)r * w_stride) +
					    c0;
					for (int64_t k = 0; k < cl; k += 16) {
						const __mmask16 m = cols - k >= 16
						                        ? (__mmask16)0xffff
						                        : mask16(cols - k);
						_mm512_store_ps(
						    &wf[r][k],
						    _mm512_cvtph_ps(
						        _mm256_maskz_loadu_epi16(m, h + k)));
					}
				}
				for (int64_t j = 0; j < rows; j += F16P_AR) {
					const int ar =
					    rows - j < F16P_AR ? (int)(rows - j) : F16P_AR;
					const float *pt =
					    (const float *)((const uint8_t *)p +
					                    (size_t)(j0 + j) * p_stride) +
					    c0;
					switch (wr * 16 + ar) {
						F16P_TILE(1, 1);
						F16P_TILE(1, 2);
						F16P_TILE(1, 3);
						F16P_TILE(1, 4);
						F16P_TILE(1, 5);
						F16P_TILE(1, 6);
						F16P_TILE(2, 1);
						F16P_TILE(2, 2);
						F16P_TILE(2, 3);
						F16P_TILE(2, 4);
						F16P_TILE(2, 5);
						F16P_TILE(2, 6);
						F16P_TILE(3, 1);
						F16P_TILE(3, 2);
						F16P_TILE(3, 3);
						F16P_TILE(3, 4);
						F16P_TILE(3, 5);
						F16P_TILE(3, 6);
						F16P_TILE(4, 1);
						F16P_TILE(4, 2);
						F16P_TILE(4, 3);
						F16P_TILE(4, 4);
						F16P_TILE(4, 5);
						F16P_TILE(4, 6);
					default:
						break;
					}
				}
			}
			for (int r = 0; r < wr; r++)
				for (int64_t j = 0; j < rows; j++)
					y[(j0 + j) * y_stride + i + r] = hsum512(acc_mem[r][j]);
		}
	}
}

// a (n f32) . b (n f32) -> float: the F32 vec_dot
float rvk_avx512_dot_f32(const float *a, const float *b, int64_t n)
{
	float s;
	rvk_avx512_vec_dot_f32(n, &s, a, b);
	return s;
}