/* avx512.c: the kernel table for CPUs with AVX-512 F/BW/VL and VNNI (Intel
 * Ice Lake, Sapphire Rapids and later; AMD Zen 4 and later). Compiled with
 * -mavx512f -mavx512bw -mavx512vl -mavx512vnni (plus AVX2/FMA/F16C), so
 * nothing here may run before dispatch.c has checked the CPU; the only
 * exported symbol is rvk_avx512_fill.
 *
 * Semantics are those of scalar.c, entry by entry. What is exact there is
 * exact here: quantization (same bytes), dequantization (same floats), the
 * integer part of every quantized dot product. Float sums run in vector
 * lanes, in another order than the scalar reference, within the tolerances
 * test_kernels allows.
 *
 * Integer dot products use VNNI's vpdpbusd, which multiplies UNSIGNED bytes
 * by signed bytes and adds each group of 4 products to an int32 lane:
 *  - K-quant weights are unsigned already (nibbles, 5-bit or 6-bit values
 *    before their offset), so they are the unsigned operand and the Q8_K
 *    activations the signed one. The Q6_K offset of -32 is folded in with the
 *    activation sums bsums, which the Q8_K format carries.
 *  - Q8_0 and Q4_0 weights are signed. There the activation byte a is made
 *    unsigned as a + 128 (a xor 0x80) and the weights stay signed:
 *    sum (a + 128) w = sum a w + 128 sum w. The correction -128 sum w depends
 *    on the weights only, so it is computed once per weight block and shared
 *    by every activation row. This is exact for all byte values (a sign
 *    transfer would not be when a = -128).
 *  - The K-quant sub-block scales are applied with vpdpwssd (int16 pairs):
 *    one vpdpbusd lane sums 4 products of at most 63 * 128, so it fits an
 *    int16; two such vectors are packed (vpackssdw, exact) and one vpdpwssd
 *    multiplies each int16 by its sub-block's scale and adds the pairs into
 *    int32 lanes, without a slow 32-bit multiply.
 *  - Q8_0 (every path) and Q4_0's vec_dot keep the float order of
 *    llama.cpp's x86 kernels (one 8-lane accumulator, one FMA per block):
 *    the end-to-end Q8_0 references are sensitive to it (see that
 *    section). Q4_0's prepared path (decode, prefill) does not: it sums
 *    16 blocks a vector (see its section), and no reference needs that
 *    order.
 *
 * vec_dot_rows runs one weight row against several activation rows: a
 * "rows" routine takes R = 1..4 rows (K-quants also 8), loads and unpacks
 * each weight block once, then runs every row through the same per-row
 * steps. vec_dot is the R = 1 case of the same routine, and vec_dot_rows
 * takes groups of 8 (K-quants) and 4, then one group of the remainder, so
 * each row's accumulators see exactly the operations they see in vec_dot:
 * bit-identical results, whatever the batch. (Rows never interact; R only
 * changes how many are interleaved.)
 *
 * Q8_0, Q4_0, Q4_K, Q5_K and Q6_K also have vec_dot_prep, which matmul.c
 * uses in their place: activations prepared once per call in a layout made
 * for these kernels (see those sections), so no activation row repeats work
 * for each weight row it meets. Q4_0, Q4_K and Q6_K's go in "stripes", one
 * (sub-)block's dot per 32-bit lane.
 *
 * No float multiply in the dot products feeds an add that a compiler could
 * fuse differently in two instantiations (sums go through explicit FMAs),
 * and the build is ISO C (GCC does not contract there; clang is told
 * below).
 */
#include "simd/kernels.h"

#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* The rows routines are instantiated with a constant R (1..R_MAX); forcing
 * them inline and their short loops (rows, groups of a block) unrolled keeps
 * every accumulator and unpacked weight in a register. */
#define ALWAYS_INLINE __attribute__((always_inline)) inline
#define R_MAX         4
/* K-quant rows also come 8 at a time: their per-row work is mostly integer
 * dots, so unpacking a block once for 8 rows pays (best-of-8 decoding). */
#define R_KQ   8
#define UNROLL _Pragma("GCC unroll 8")

/* ---- small helpers ------------------------------------------------------- */

static inline uint16_t ld16(const void *p)
{
	uint16_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static inline uint32_t ld32(const void *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static inline float ldf(const void *p)
{
	float v;
	memcpy(&v, p, sizeof(v));
	return v;
}

/* fp16 -> float with F16C for the scales of the dot products (exact). */
static inline float h2f(const void *p)
{
	return _cvtsh_ss(ld16(p));
}

/* Mask of the first k (0..16) lanes of a 16-lane vector. */
static inline __mmask16 mask16(int64_t k)
{
	return (__mmask16)((1u << k) - 1u);
}

/* The upper 8 floats (vextractf32x8 would need AVX512DQ). */
static inline __m256 hi256(__m512 v)
{
	return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
}

/* Horizontal sum of 8 floats, in a fixed order. */
static inline float hsum256(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

static inline float hsum512(__m512 v)
{
	return hsum256(_mm256_add_ps(_mm512_castps512_ps256(v), hi256(v)));
}

/* Prefetches the bytes of a block (a constant size: the loop unrolls).
 * The dot kernels ask for the weights a few rows ahead: the hardware
 * prefetchers alone leave single-token decoding at about half the memory
 * bandwidth. */
static ALWAYS_INLINE void prefetch_block(const uint8_t *p, const size_t bytes)
{
	for (size_t o = 0; o < bytes; o += 64)
		_mm_prefetch((const char *)p + o, _MM_HINT_T0);
}

/* K-quant dots prefetch this many weight rows ahead. */
#define KQ_PREFETCH_ROWS 4

/* ---- F32 / F16 / BF16 weights against f32 activations --------------------- */

enum { W_F32, W_F16, W_BF16 };

/* 16 weights from element i on, as floats (all conversions are exact). */
static ALWAYS_INLINE __m512 wload(const int kind, const void *w, int64_t i)
{
	const uint16_t *h = (const uint16_t *)w + i;
	switch (kind) {
	case W_F16:
		return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)h));
	case W_BF16: /* bf16 is the top half of a float */
		return _mm512_castsi512_ps(_mm512_slli_epi32(
		    _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)h)), 16));
	default:
		return _mm512_loadu_ps((const float *)w + i);
	}
}

/* The same for the lanes of m only (the others 0); masked loads do not touch
 * memory outside the mask, so tails need no copy. */
static ALWAYS_INLINE __m512 wload_mask(const int kind, const void *w, int64_t i, __mmask16 m)
{
	const uint16_t *h = (const uint16_t *)w + i;
	switch (kind) {
	case W_F16:
		return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, h));
	case W_BF16:
		return _mm512_castsi512_ps(
		    _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, h)), 16));
	default:
		return _mm512_maskz_loadu_ps(m, (const float *)w + i);
	}
}

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

#define Q8_0_SZ sizeof(rv_block_q8_0) /* 34 */
#define Q4_0_SZ sizeof(rv_block_q4_0) /* 18 */
_Static_assert(sizeof(rv_block_q8_0) == 34 && sizeof(rv_block_q4_0) == 18, "block sizes");

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

#define Q8_K_SZ sizeof(rv_block_q8_K) /* 292: float d, 256 qs, 16 bsums */
#define Q8_K_QS offsetof(rv_block_q8_K, qs)
#define Q8_K_BS offsetof(rv_block_q8_K, bsums)

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

/* The 8 six-bit scales and mins of a Q4_K/Q5_K block (layout in scalar.c),
 * unpacked four at a time in 32-bit words: bytes 0..3 keep scales 0..3 and
 * bytes 4..7 mins 0..3 in their low 6 bits; bytes 8..11 keep the low 4 bits
 * of scales 4..7 (low nibbles) and mins 4..7 (high nibbles), whose top 2
 * bits are the top 2 bits of bytes 0..3 and 4..7. One byte per value. */
static inline void k4_scales_mins(const uint8_t *p, uint64_t *sc, uint64_t *mn)
{
	const uint32_t w0 = ld32(p), w1 = ld32(p + 4), w2 = ld32(p + 8);
	const uint32_t sc_lo = w0 & 0x3f3f3f3fu, mn_lo = w1 & 0x3f3f3f3fu;
	const uint32_t sc_hi = (w2 & 0x0f0f0f0fu) | (((w0 >> 6) & 0x03030303u) << 4);
	const uint32_t mn_hi = ((w2 >> 4) & 0x0f0f0f0fu) | (((w1 >> 6) & 0x03030303u) << 4);
	*sc = (uint64_t)sc_lo | (uint64_t)sc_hi << 32;
	*mn = (uint64_t)mn_lo | (uint64_t)mn_hi << 32;
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

/* Group g (0..3) of a Q4_K/Q5_K block is 32 bytes whose low nibbles are
 * sub-block 2g and high nibbles sub-block 2g + 1: as one zmm of unsigned
 * weights [sub-block 2g | sub-block 2g + 1], matching the 64 activation
 * bytes 64g.. of the Q8_K block. */
static ALWAYS_INLINE __m512i k4_group(const uint8_t *q)
{
	const __m512i t = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)q));
	return _mm512_and_si512(_mm512_mask_srli_epi16(t, 0xffff0000u, t, 4),
	                        _mm512_set1_epi8(0x0f));
}

/* The 4 zmm of unsigned quants of a Q4_K (0..15) or Q5_K (0..31) block,
 * group g = [sub-block 2g | sub-block 2g + 1] (see k4_group). For Q5_K the
 * fifth bit of weight l of sub-block 2g is bit 2g of qh[l], that of
 * sub-block 2g + 1 bit 2g + 1: tested against [0x01 x32 | 0x02 x32] << 2g
 * with qh in both halves, and added as 16 where set. */
static ALWAYS_INLINE void k45_quants(const int q5, const uint8_t *b, __m512i Q[4])
{
	const size_t o_qs = q5 ? offsetof(rv_block_q5_K, qs) : offsetof(rv_block_q4_K, qs);
	UNROLL
	for (int g = 0; g < 4; g++)
		Q[g] = k4_group(b + o_qs + 32 * g);
	if (q5) {
		const __m512i H = _mm512_broadcast_i64x4(
		    _mm256_loadu_si256((const __m256i *)(b + offsetof(rv_block_q5_K, qh))));
		const __m512i bit0 =
		    _mm512_inserti64x4(_mm512_set1_epi8(1), _mm256_set1_epi8(2), 1);
		UNROLL
		for (int g = 0; g < 4; g++) {
			const __mmask64 k =
			    _mm512_test_epi8_mask(H, _mm512_slli_epi64(bit0, 2u * (unsigned)g));
			Q[g] = _mm512_mask_add_epi8(Q[g], k, Q[g], _mm512_set1_epi8(16));
		}
	}
}

/* A Q8_K activation block prepared for Q5_K weights (vec_dot_prep; Q4_K's
 * go in stripes, below):
 * the 256 quants, then bsums[l] * d as 16 floats, then d; 384 bytes. */
#define KP_SZ 384
#define KP_BF 256
#define KP_D  320

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

static size_t prep_size_kq(int64_t n)
{
	return (size_t)(n / RV_QK_K) * KP_SZ;
}

/* Q8_K blocks -> prepared ones (see KP_SZ). */
static void prep_kq(int64_t n, const void *a, void *p)
{
	const uint8_t *b = a;
	uint8_t *o = p;
	for (int64_t ib = 0; ib < n / RV_QK_K; ib++, b += Q8_K_SZ, o += KP_SZ) {
		UNROLL
		for (int z = 0; z < 4; z++)
			_mm512_storeu_si512(
			    o + 64 * z, _mm512_loadu_si512((const void *)(b + Q8_K_QS + 64 * z)));
		const __m512 d = _mm512_set1_ps(ldf(b));
		const __m512i bs =
		    _mm512_cvtepi16_epi32(_mm256_loadu_si256((const __m256i *)(b + Q8_K_BS)));
		_mm512_storeu_ps(o + KP_BF, _mm512_mul_ps(_mm512_cvtepi32_ps(bs), d));
		_mm512_storeu_ps(o + KP_D, _mm512_maskz_mov_ps(1, d));
	}
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
	static void vec_dot_prep_##name(int64_t n, float *y, int64_t y_stride, const void *w,      \
	                                size_t w_stride, int64_t n_w, const void *p,               \
	                                size_t p_stride, int64_t n_a)                              \
	{                                                                                          \
		impl(flag, n, y, y_stride, w, w_stride, n_w, p, p_stride, n_a);                    \
	}

DEFINE_DOT_PREP(q5_K, k45_prep, 1)

/* The 4 zmm of a Q6_K block's 6-bit values (0..63, before the -32), in
 * weight order: Q[2h] weights 128h + 0..63, Q[2h + 1] 128h + 64..127. In
 * half h, ql[64h + l] holds the low 4 bits of weights l (low nibble) and
 * l + 64 (high), ql[64h + 32 + l] those of l + 32 and l + 96, and
 * qh[32h + l] the top 2 bits of l, l + 32, l + 64, l + 96 (bit pairs 0-1,
 * 2-3, 4-5, 6-7). With the 64 ql bytes of a half in one zmm and its 32 qh
 * bytes in both halves of another, each pair is moved to bits 4-5 by a
 * 64-bit shift of its own count per 256-bit half; bits that cross into a
 * neighbouring byte are masked away. */
static ALWAYS_INLINE void q6_K_unpack(const uint8_t *b, __m512i Q[4])
{
	const __m512i m0f = _mm512_set1_epi8(0x0f), m30 = _mm512_set1_epi8(0x30);
	const __m512i sh_a = _mm512_set_epi64(2, 2, 2, 2, 4, 4, 4, 4); /* << */
	const __m512i sh_b = _mm512_set_epi64(2, 2, 2, 2, 0, 0, 0, 0); /* >> */
	UNROLL
	for (int h = 0; h < 2; h++) {
		const __m512i L =
		    _mm512_loadu_si512((const void *)(b + offsetof(rv_block_q6_K, ql) + 64 * h));
		const __m512i H = _mm512_broadcast_i64x4(_mm256_loadu_si256(
		    (const __m256i *)(b + offsetof(rv_block_q6_K, qh) + 32 * h)));
		Q[2 * h] = _mm512_or_si512(_mm512_and_si512(L, m0f),
		                           _mm512_and_si512(_mm512_sllv_epi64(H, sh_a), m30));
		Q[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(L, 4), m0f),
		                               _mm512_and_si512(_mm512_srlv_epi64(H, sh_b), m30));
	}
}

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
	static void vec_dot_##name(int64_t n, float *s, const void *w, const void *a)              \
	{                                                                                          \
		ROWS(1, n, s, 0, w, a, 0);                                                         \
	}                                                                                          \
	static void vec_dot_rows_##name(int64_t n, float *s, int64_t s_stride, const void *w,      \
	                                const void *a, size_t a_stride, int64_t nrows)             \
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

/* ---- Q8_0 against prepared activations ----------------------------------
 * The decode and prefill path of Q8_0 weights (vec_dot_prep): activations
 * are prepared once per matmul call, so nothing an activation row needs is
 * redone for each of the thousands of weight rows it meets. Pairs of
 * blocks, one zmm; a prepared pair is the 64 activation bytes as a + 128
 * (see the top of this file), then 16 floats, the first block's scale 8
 * times and the second's (a missing second block at the end of a row:
 * zeros on both sides). The weights stay signed. Float sums keep
 * llama.cpp's order (one 8-lane FMA per block, in block order): the Q8_0
 * references need it. Weight rows go in groups of up to 4 and activation
 * rows in groups of up to 3, or 2 and 8 (accumulators, weights and scales
 * then fill the 32 registers); each (weight row, activation row) sees the
 * same operations in any group, so the results do not depend on the
 * grouping. */

#define AR_MAX   8
#define QP_BYTES 128 /* a prepared pair */

static size_t prep_size_q8_0(int64_t n)
{
	return (size_t)((n / 32 + 1) / 2) * QP_BYTES;
}

/* The 16 bytes at offset off of the nv (0..4) blocks bsz apart from b0, one
 * per 128-bit lane; zeros for the missing ones. */
static ALWAYS_INLINE __m512i quad_lanes(const uint8_t *b0, size_t bsz, size_t off, const int nv)
{
	const __m128i z = _mm_setzero_si128();
	/* lane l of the nv present, else zeros (the lane numbers are literals:
	 * clang wants the insert's immediate before unrolling) */
#define QUAD_LANE(l) ((l) < nv ? _mm_loadu_si128((const __m128i *)(b0 + (size_t)(l)*bsz + off)) : z)
	__m512i q = _mm512_castsi128_si512(QUAD_LANE(0));
	q = _mm512_inserti32x4(q, QUAD_LANE(1), 1);
	q = _mm512_inserti32x4(q, QUAD_LANE(2), 2);
	q = _mm512_inserti32x4(q, QUAD_LANE(3), 3);
#undef QUAD_LANE
	return q;
}

/* The fp16 scales of the nv (1..2) blocks from b0 (0 for a missing one),
 * each repeated over 8 lanes. */
static ALWAYS_INLINE __m512 pair_scales(const uint8_t *b0, const int nv)
{
	const uint32_t h = ld16(b0) | (nv > 1 ? (uint32_t)ld16(b0 + Q8_0_SZ) << 16 : 0);
	const __m512i idx = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
	return _mm512_permutexvar_ps(
	    idx, _mm512_castps128_ps512(_mm_cvtph_ps(_mm_cvtsi32_si128((int)h))));
}

static void prep_q8_0(int64_t n, const void *a, void *p)
{
	const int64_t nb = n / 32;
	const uint8_t *ab = a;
	uint8_t *pp = p;
	for (int64_t ib = 0; ib < nb; ib += 2, pp += QP_BYTES) {
		const uint8_t *b0 = ab + (size_t)ib * Q8_0_SZ;
		const int nv = nb - ib < 2 ? 1 : 2;
		_mm512_storeu_ps(pp + QP_BYTES - 64, pair_scales(b0, nv));
		const __m256i lo = _mm256_loadu_si256((const __m256i *)(b0 + 2));
		const __m256i hi = nv > 1 ? _mm256_loadu_si256((const __m256i *)(b0 + Q8_0_SZ + 2))
		                          : _mm256_setzero_si256();
		__m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
		q = _mm512_mask_xor_epi64(q, nv > 1 ? 0xff : 0x0f, q, _mm512_set1_epi8((char)0x80));
		_mm512_storeu_si512(pp, q);
	}
}

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
static void vec_dot_prep_q8_0(int64_t n, float *y, int64_t y_stride, const void *w, size_t w_stride,
                              int64_t n_w, const void *p, size_t p_stride, int64_t n_a)
{
	const int tw = n_a >= 4 ? 2 : R_MAX, ta = n_a >= 4 ? AR_MAX : 3;
	FOR_TILES(tw, ta, QP_TILE(1, 1); QP_TILE(1, 2); QP_TILE(1, 3); QP_TILE(1, 4); QP_TILE(1, 5);
	          QP_TILE(1, 6); QP_TILE(1, 7); QP_TILE(1, 8); QP_TILE(2, 1); QP_TILE(2, 2);
	          QP_TILE(2, 3); QP_TILE(2, 4); QP_TILE(2, 5); QP_TILE(2, 6); QP_TILE(2, 7);
	          QP_TILE(2, 8); QP_TILE(3, 1); QP_TILE(3, 2); QP_TILE(3, 3); QP_TILE(4, 1);
	          QP_TILE(4, 2); QP_TILE(4, 3);)
}

/* ---- Q4_0, Q6_K and Q4_K against prepared activations: stripes ----------
 * One block of dot per 32-bit lane: 16 blocks of 32 Q4_0 weights, the 16
 * sub-blocks of 16 weights of a Q6_K block, or the 16 sub-blocks of 32 of
 * two Q4_K blocks make a stripe, and a lane's vpdpbusd sums end as that
 * (sub-)block's whole integer dot, so the float work (conversion, scale
 * product, FMA) is done once per stripe and activation row rather than
 * once per block. The (sub-)blocks come one per 128-bit lane (4 zmm: Q4_0's
 * 16 qs bytes, Q6_K's 16 unpacked weights) and go through 4x4 dword
 * transposes: result p then holds dword p of every block, block 4k + l in
 * lane 4l + k (stripe_block); Q4_K's 8 zmm of nibbles (two sub-blocks of 8
 * dwords each) go through 8x8 transposes (stripe_transpose8, k4_lane_*).
 *  - Q4_0: the low nibbles of result p are weights 4p..4p+3 of each block,
 *    its high nibbles 16 + 4p..: 8 vpdpbusd a row. Missing blocks at the
 *    end of a row are zeros on both sides.
 *  - Q6_K: result p is weights 4p..4p+3 of each sub-block: 4 vpdpbusd.
 *  - Q4_K: result k is weights 4k..4k+3 of each sub-block: 8 vpdpbusd; the
 *    scales times d in float lanes, and the mins part as one more FMA a
 *    row (mins * dmin against the prepared d * sub-block sums). A last
 *    stripe of one block has zeros for the other.
 * The weights u (Q4_0 0..15, Q6_K 0..63) are vpdpbusd's unsigned operand
 * and the activations stay signed: sum (u - c) a = sum u a - c sum a (c = 8
 * or 32). A prepared stripe is the activations in the same lanes and
 * order, 16 int32 of -c * each block's sum, which start the accumulator
 * (Q4_K: the 16 floats of the mins' sums), and 16 floats of the activation
 * scale of each lane. The weights are transposed and unpacked once for up
 * to AR_MAX activation rows; a row's operations do not depend on how many
 * rows share the call. */

enum { ST_Q4_0, ST_Q6_K, ST_Q4_K };

/* weights of a stripe */
static ALWAYS_INLINE int64_t st_weights(const int kind)
{
	return kind == ST_Q6_K ? RV_QK_K : 512;
}

/* vpdpbusd a stripe and row */
static ALWAYS_INLINE int st_dots(const int kind)
{
	return kind == ST_Q6_K ? 4 : 8;
}

/* bytes of a stripe of weights, of a prepared stripe */
static ALWAYS_INLINE size_t st_wbytes(const int kind)
{
	return kind == ST_Q4_0   ? 16 * Q4_0_SZ
	       : kind == ST_Q4_K ? 2 * sizeof(rv_block_q4_K)
	                         : sizeof(rv_block_q6_K);
}

static ALWAYS_INLINE size_t st_pbytes(const int kind)
{
	return 64 * (size_t)st_dots(kind) + 128;
}

/* a prepared stripe's start sums and scales */
static ALWAYS_INLINE size_t st_init(const int kind)
{
	return 64 * (size_t)st_dots(kind);
}

static ALWAYS_INLINE size_t st_scales(const int kind)
{
	return 64 * (size_t)st_dots(kind) + 64;
}

static ALWAYS_INLINE int64_t st_count(const int kind, int64_t n)
{
	return (n + st_weights(kind) - 1) / st_weights(kind);
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

/* weight rows ahead whose stripe is prefetched */
#define STRIPE_PREFETCH_ROWS 4

static size_t prep_size_q4_0(int64_t n)
{
	return (size_t)st_count(ST_Q4_0, n) * st_pbytes(ST_Q4_0);
}

static size_t prep_size_q6_K(int64_t n)
{
	return (size_t)st_count(ST_Q6_K, n) * st_pbytes(ST_Q6_K);
}

static size_t prep_size_q4_K(int64_t n)
{
	return (size_t)st_count(ST_Q4_K, n) * st_pbytes(ST_Q4_K);
}

/* The block in lane m of a stripe. */
static ALWAYS_INLINE int stripe_block(int m)
{
	return 4 * (m % 4) + m / 4;
}

/* Lanes whose block is one of the first nv of the stripe. */
static ALWAYS_INLINE __mmask16 stripe_live(int nv)
{
	unsigned live = 0;
	_Pragma("GCC unroll 16") for (int m = 0; m < 16; m++) live |=
	    (unsigned)(stripe_block(m) < nv) << m;
	return (__mmask16)live;
}

/* t[p] = dword p of each 128-bit lane of z[0..3], in stripe lanes. */
static ALWAYS_INLINE void stripe_transpose(const __m512i z[4], __m512i t[4])
{
	const __m512i a = _mm512_unpacklo_epi32(z[0], z[1]), b = _mm512_unpackhi_epi32(z[0], z[1]);
	const __m512i c = _mm512_unpacklo_epi32(z[2], z[3]), d = _mm512_unpackhi_epi32(z[2], z[3]);
	t[0] = _mm512_unpacklo_epi64(a, c);
	t[1] = _mm512_unpackhi_epi64(a, c);
	t[2] = _mm512_unpacklo_epi64(b, d);
	t[3] = _mm512_unpackhi_epi64(b, d);
}

/* The 8x8 dword transposes of the two 256-bit halves of x[0..7]: t[k] lane
 * 8g + i = x[i] lane 8g + k. */
static ALWAYS_INLINE void stripe_transpose8(const __m512i x[8], __m512i t[8])
{
	__m512i a[8], b[8];
	UNROLL
	for (int i = 0; i < 4; i++) {
		a[2 * i] = _mm512_unpacklo_epi32(x[2 * i], x[2 * i + 1]);
		a[2 * i + 1] = _mm512_unpackhi_epi32(x[2 * i], x[2 * i + 1]);
	}
	/* b[4q + p], 128-bit lane c: x[4q + r] lane 4c + p, r = 0..3 */
	UNROLL
	for (int q = 0; q < 2; q++) {
		b[4 * q] = _mm512_unpacklo_epi64(a[4 * q], a[4 * q + 2]);
		b[4 * q + 1] = _mm512_unpackhi_epi64(a[4 * q], a[4 * q + 2]);
		b[4 * q + 2] = _mm512_unpacklo_epi64(a[4 * q + 1], a[4 * q + 3]);
		b[4 * q + 3] = _mm512_unpackhi_epi64(a[4 * q + 1], a[4 * q + 3]);
	}
	const __m512i lo = _mm512_set_epi64(13, 12, 5, 4, 9, 8, 1, 0);
	const __m512i hi = _mm512_set_epi64(15, 14, 7, 6, 11, 10, 3, 2);
	UNROLL
	for (int p = 0; p < 4; p++) {
		t[p] = _mm512_permutex2var_epi64(b[p], lo, b[4 + p]);
		t[4 + p] = _mm512_permutex2var_epi64(b[p], hi, b[4 + p]);
	}
}

/* Q4_K stripes: lane L = 8g + 4B + 2h + c holds sub-block 4h + 2g + c of
 * the stripe's block B (see stripe_weights). */
static ALWAYS_INLINE int k4_lane_block(int L)
{
	return (L >> 2) & 1;
}

static ALWAYS_INLINE int k4_lane_sub(int L)
{
	return 4 * ((L >> 1) & 1) + 2 * (L >> 3) + (L & 1);
}

/* t[p] = dword p of the 16 bytes at offset off of each of the nv blocks bsz
 * apart from b0, in stripe lanes (zeros for missing blocks). */
static ALWAYS_INLINE void stripe_dwords(const uint8_t *b0, size_t bsz, size_t off, int nv,
                                        __m512i t[4])
{
	__m512i z[4];
	UNROLL
	for (int k = 0; k < 4; k++) {
		const int left = nv - 4 * k;
		z[k] = left >= 4   ? quad_lanes(b0 + (size_t)(4 * k) * bsz, bsz, off, 4)
		       : left <= 0 ? _mm512_setzero_si512()
		                   : quad_lanes(b0 + (size_t)(4 * k) * bsz, bsz, off, left);
	}
	stripe_transpose(z, t);
}

static void prep_q4_0(int64_t n, const void *a, void *p)
{
	const int64_t nb = n / 32;
	const uint8_t *ab = a;
	uint8_t *pp = p;
	const __m512i eights = _mm512_set1_epi8(8);
	for (int64_t ib = 0; ib < nb; ib += 16, pp += st_pbytes(ST_Q4_0)) {
		const uint8_t *b0 = ab + (size_t)ib * Q8_0_SZ;
		const int nv = nb - ib < 16 ? (int)(nb - ib) : 16;
		__m512i t[8];
		stripe_dwords(b0, Q8_0_SZ, 2, nv, t);
		stripe_dwords(b0, Q8_0_SZ, 18, nv, t + 4);
		__m512i s8 = _mm512_setzero_si512();
		UNROLL
		for (int k = 0; k < 8; k++) {
			_mm512_store_si512(pp + 64 * k, t[k]);
			s8 = _mm512_dpbusd_epi32(s8, eights, t[k]);
		}
		_mm512_store_si512(pp + st_init(ST_Q4_0),
		                   _mm512_sub_epi32(_mm512_setzero_si512(), s8));
		float d[16];
		_Pragma("GCC unroll 16") for (int m = 0; m < 16; m++) d[m] =
		    stripe_block(m) < nv ? h2f(b0 + (size_t)stripe_block(m) * Q8_0_SZ) : 0.0f;
		_mm512_store_ps(pp + st_scales(ST_Q4_0), _mm512_loadu_ps(d));
	}
}

/* Q8_K blocks prepared for Q6_K stripes: -32 * the 16-sum of each sub-block
 * is -32 * its bsum. */
static void prep_q6_K(int64_t n, const void *a, void *p)
{
	const uint8_t *b = a;
	uint8_t *pp = p;
	for (int64_t ib = 0; ib < n / RV_QK_K; ib++, b += Q8_K_SZ, pp += st_pbytes(ST_Q6_K)) {
		__m512i z[4], t[4];
		UNROLL
		for (int k = 0; k < 4; k++)
			z[k] = _mm512_loadu_si512((const void *)(b + Q8_K_QS + 64 * k));
		stripe_transpose(z, t);
		UNROLL
		for (int k = 0; k < 4; k++)
			_mm512_store_si512(pp + 64 * k, t[k]);
		int32_t init[16];
		_Pragma("GCC unroll 16") for (int m = 0; m < 16; m++) init[m] =
		    -32 * (int16_t)ld16(b + Q8_K_BS + 2 * (size_t)stripe_block(m));
		_mm512_store_si512(pp + st_init(ST_Q6_K), _mm512_loadu_si512(init));
		_mm512_store_ps(pp + st_scales(ST_Q6_K), _mm512_set1_ps(ldf(b)));
	}
}

/* Q8_K blocks prepared for Q4_K stripes: x[4B + 2h + c] is sub-blocks
 * 4h + c (low half) and 4h + 2 + c (high half) of block B, so that the
 * transposes put them where the weights' nibbles go; then, for the mins,
 * d * (the sum of each lane's sub-block), and d. */
static void prep_q4_K(int64_t n, const void *a, void *p)
{
	const int64_t nb = n / RV_QK_K;
	const uint8_t *ab = a;
	uint8_t *pp = p;
	for (int64_t ib = 0; ib < nb; ib += 2, pp += st_pbytes(ST_Q4_K)) {
		const int nv = nb - ib < 2 ? 1 : 2;
		__m512i x[8], t[8];
		float bs[16], d[16];
		UNROLL
		for (int i = 0; i < 8; i++) {
			const uint8_t *q = ab + (size_t)(ib + i / 4) * Q8_K_SZ + Q8_K_QS;
			const int sub = 4 * ((i >> 1) & 1) + (i & 1);
			x[i] =
			    i / 4 < nv
			        ? _mm512_inserti64x4(
			              _mm512_castsi256_si512(
			                  _mm256_loadu_si256((const __m256i *)(q + 32 * sub))),
			              _mm256_loadu_si256((const __m256i *)(q + 32 * (sub + 2))), 1)
			        : _mm512_setzero_si512();
		}
		stripe_transpose8(x, t);
		UNROLL
		for (int k = 0; k < 8; k++)
			_mm512_store_si512(pp + 64 * k, t[k]);
		_Pragma("GCC unroll 16") for (int L = 0; L < 16; L++)
		{
			const int B = k4_lane_block(L), sub = k4_lane_sub(L);
			const uint8_t *b = ab + (size_t)(ib + B) * Q8_K_SZ;
			d[L] = B < nv ? ldf(b) : 0.0f;
			bs[L] =
			    B < nv
			        ? d[L] * (float)((int16_t)ld16(b + Q8_K_BS + 4 * (size_t)sub) +
			                         (int16_t)ld16(b + Q8_K_BS + 4 * (size_t)sub + 2))
			        : 0.0f;
		}
		_mm512_store_ps(pp + st_init(ST_Q4_K), _mm512_loadu_ps(bs));
		_mm512_store_ps(pp + st_scales(ST_Q4_K), _mm512_loadu_ps(d));
	}
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

/* Tiles of 2 weight rows x up to 3 activation rows for decoding one or a
 * few tokens; 1 x up to 8 for more (a best-of-8 step, a prompt), in column
 * spans. */
static ALWAYS_INLINE void stripe_prep(const int kind, int64_t n, float *y, int64_t y_stride,
                                      const void *w, size_t w_stride, int64_t n_w, const void *p,
                                      size_t p_stride, int64_t n_a)
{
	const int64_t ns = st_count(kind, n);
	if (n_a < 4) {
		FOR_TILES(2, 3, STRIPE_TILE(1, 1); STRIPE_TILE(1, 2); STRIPE_TILE(1, 3);
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

/* ---- F16 weights against prepared f32 activations -----------------------
 * The wide-batch path of F16 weights (vision encoders, F16 prefill) when
 * the BLAS would be slower (see matmul.c): prepared rows are the f32
 * activations padded with zeros to a multiple of 16, so the last, partial
 * step needs a masked load on the weight side only. Tiles of up to 4 weight
 * rows (converted once per 16 columns) by up to 6 activation rows keep 24
 * accumulators in registers; each (weight row, activation row) sees the
 * same operations in any tile. */

#define F16P_AR 6

static size_t prep_size_f16(int64_t n)
{
	return (size_t)((n + 15) / 16) * 64;
}

static void prep_f16(int64_t n, const void *a, void *p)
{
	const float *x = a;
	float *o = p;
	int64_t i = 0;
	for (; i + 16 <= n; i += 16)
		_mm512_storeu_ps(o + i, _mm512_loadu_ps(x + i));
	if (i < n)
		_mm512_storeu_ps(o + i, _mm512_maskz_loadu_ps(mask16(n - i), x + i));
}

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

/* Per (weight row, activation row) the sum runs in one 16-lane accumulator
 * over the columns in order, whatever the tile and the column chunk (the
 * accumulators go to memory between chunks): results do not depend on the
 * grouping. */
static void vec_dot_prep_f16(int64_t n, float *y, int64_t y_stride, const void *w, size_t w_stride,
                             int64_t n_w, const void *p, size_t p_stride, int64_t n_a)
{
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

/* ---- dequantization: the same floats as scalar.c ------------------------- */

// x (n f32) -> y (n)
static void dequant_f32(const void *x, float *y, int64_t n)
{
	memcpy(y, x, (size_t)n * sizeof(float));
}

/* 16 fp16 -> float with integer operations, as rvk_f16_to_f32 does: vcvtph2ps
 * would quiet signalling NaNs, which the reference keeps bit for bit.
 * Normal and special values are a shift and an exponent re-bias; zero and
 * subnormals m * 2^-24 are the exact product float(m) * 2^-24. */
static inline __m512 f16x16_exact(__m256i h16)
{
	const __m512i h = _mm512_cvtepu16_epi32(h16);
	const __m512i rest = _mm512_and_si512(h, _mm512_set1_epi32(0x7fff));
	const __m512i rebias = _mm512_set1_epi32(112 << 23);
	__m512i bits = _mm512_add_epi32(_mm512_slli_epi32(rest, 13), rebias);
	const __mmask16 special = _mm512_cmpge_epu32_mask(rest, _mm512_set1_epi32(0x7c00));
	bits = _mm512_mask_add_epi32(bits, special, bits, rebias);
	const __mmask16 sub = _mm512_cmplt_epu32_mask(rest, _mm512_set1_epi32(0x0400));
	const __m512 subv = _mm512_mul_ps(_mm512_cvtepi32_ps(rest), _mm512_set1_ps(0x1p-24f));
	bits = _mm512_mask_blend_epi32(sub, bits, _mm512_castps_si512(subv));
	const __m512i sign = _mm512_slli_epi32(_mm512_and_si512(h, _mm512_set1_epi32(0x8000)), 16);
	return _mm512_castsi512_ps(_mm512_or_si512(bits, sign));
}

// x (n f16) -> y (n)
static void dequant_f16(const void *x, float *y, int64_t n)
{
	const uint16_t *h = x;
	int64_t i = 0;
	for (; i + 16 <= n; i += 16)
		_mm512_storeu_ps(y + i, f16x16_exact(_mm256_loadu_si256((const __m256i *)(h + i))));
	if (i < n) {
		const __mmask16 m = mask16(n - i);
		_mm512_mask_storeu_ps(y + i, m, f16x16_exact(_mm256_maskz_loadu_epi16(m, h + i)));
	}
}

// x (n bf16) -> y (n)
static void dequant_bf16(const void *x, float *y, int64_t n)
{
	const uint16_t *h = x;
	int64_t i = 0;
	for (; i + 16 <= n; i += 16)
		_mm512_storeu_ps(y + i, wload(W_BF16, h, i));
	if (i < n) {
		const __mmask16 m = mask16(n - i);
		_mm512_mask_storeu_ps(y + i, m, wload_mask(W_BF16, h, i, m));
	}
}

/* 16 signed bytes -> 16 floats */
static inline __m512 i8x16_ps(__m128i v)
{
	return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(v));
}

// x (n / 32 Q8_0 blocks) -> y (n): y = q * d
static void dequant_q8_0(const void *x, float *y, int64_t n)
{
	const uint8_t *b = x;
	for (int64_t ib = 0; ib < n / RV_QK8_0; ib++, b += Q8_0_SZ, y += RV_QK8_0) {
		const __m512 d = _mm512_set1_ps(h2f(b));
		UNROLL
		for (int j = 0; j < 2; j++)
			_mm512_storeu_ps(
			    y + 16 * j,
			    _mm512_mul_ps(
			        i8x16_ps(_mm_loadu_si128((const __m128i *)(b + 2 + 16 * j))), d));
	}
}

// x (n / 32 Q4_0 blocks) -> y (n): y = (nibble - 8) * d
static void dequant_q4_0(const void *x, float *y, int64_t n)
{
	const uint8_t *b = x;
	for (int64_t ib = 0; ib < n / RV_QK4_0; ib++, b += Q4_0_SZ, y += RV_QK4_0) {
		const __m512 d = _mm512_set1_ps(h2f(b));
		const __m128i q = _mm_loadu_si128((const __m128i *)(b + 2));
		const __m128i lo = _mm_and_si128(q, _mm_set1_epi8(0x0f));
		const __m128i hi = _mm_and_si128(_mm_srli_epi16(q, 4), _mm_set1_epi8(0x0f));
		const __m128i eight = _mm_set1_epi8(8);
		_mm512_storeu_ps(y, _mm512_mul_ps(i8x16_ps(_mm_sub_epi8(lo, eight)), d));
		_mm512_storeu_ps(y + 16, _mm512_mul_ps(i8x16_ps(_mm_sub_epi8(hi, eight)), d));
	}
}

/* x (n / 256 Q4_K or Q5_K blocks) -> y (n): y = (d * sc) * q - (dmin * mn),
 * the scalar's two roundings (the product is exact, so only the subtraction
 * rounds, fused or not). */
static ALWAYS_INLINE void dequant_k45(const int q5, const void *x, float *y, int64_t n)
{
	const size_t wsz = q5 ? sizeof(rv_block_q5_K) : sizeof(rv_block_q4_K);
	const size_t o_sc = q5 ? offsetof(rv_block_q5_K, scales) : offsetof(rv_block_q4_K, scales);
	const uint8_t *b = x;
	for (int64_t ib = 0; ib < n / RV_QK_K; ib++, b += wsz) {
		/* d and dmin lead both layouts */
		const float d = h2f(b), dmin = h2f(b + 2);
		uint64_t sc, mn;
		uint8_t scb[8], mnb[8], q[RV_QK_K];
		k4_scales_mins(b + o_sc, &sc, &mn);
		memcpy(scb, &sc, 8);
		memcpy(mnb, &mn, 8);
		__m512i Q[4];
		k45_quants(q5, b, Q);
		UNROLL
		for (int g = 0; g < 4; g++)
			_mm512_storeu_si512((void *)(q + 64 * g), Q[g]);
		for (int sb = 0; sb < 8; sb++) {
			const __m512 ds = _mm512_set1_ps(d * (float)scb[sb]);
			const __m512 ms = _mm512_set1_ps(dmin * (float)mnb[sb]);
			for (int j = 0; j < 2; j++, y += 16) {
				const __m512 qf = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(
				    _mm_loadu_si128((const __m128i *)(q + 32 * sb + 16 * j))));
				_mm512_storeu_ps(y, _mm512_sub_ps(_mm512_mul_ps(ds, qf), ms));
			}
		}
	}
}

// x (n / 256 Q4_K blocks) -> y (n)
static void dequant_q4_K(const void *x, float *y, int64_t n)
{
	dequant_k45(0, x, y, n);
}

// x (n / 256 Q5_K blocks) -> y (n)
static void dequant_q5_K(const void *x, float *y, int64_t n)
{
	dequant_k45(1, x, y, n);
}

// x (n / 256 Q6_K blocks) -> y (n): y = (d * scale) * (q - 32), per 16
static void dequant_q6_K(const void *x, float *y, int64_t n)
{
	const uint8_t *b = x;
	for (int64_t ib = 0; ib < n / RV_QK_K; ib++, b += sizeof(rv_block_q6_K)) {
		const float d = h2f(b + offsetof(rv_block_q6_K, d));
		const int8_t *scales = (const int8_t *)(b + offsetof(rv_block_q6_K, scales));
		uint8_t q[RV_QK_K];
		__m512i Q[4];
		q6_K_unpack(b, Q);
		UNROLL
		for (int z = 0; z < 4; z++)
			_mm512_storeu_si512((void *)(q + 64 * z),
			                    _mm512_sub_epi8(Q[z], _mm512_set1_epi8(32)));
		for (int sb = 0; sb < RV_QK_K / 16; sb++, y += 16)
			_mm512_storeu_ps(y, _mm512_mul_ps(_mm512_set1_ps(d * (float)scales[sb]),
			                                  i8x16_ps(_mm_loadu_si128(
			                                      (const __m128i *)(q + 16 * sb)))));
	}
}

// x (n / 256 Q8_K blocks) -> y (n): activations only; for tests and debugging
static void dequant_q8_K(const void *x, float *y, int64_t n)
{
	const uint8_t *b = x;
	for (int64_t ib = 0; ib < n / RV_QK_K; ib++, b += Q8_K_SZ) {
		const __m512 d = _mm512_set1_ps(ldf(b));
		for (int j = 0; j < RV_QK_K / 16; j++, y += 16)
			_mm512_storeu_ps(
			    y, _mm512_mul_ps(d, i8x16_ps(_mm_loadu_si128(
			                            (const __m128i *)(b + Q8_K_QS + 16 * j)))));
	}
}

/* ---- quantization of activations: the same bytes as scalar.c ------------- */

/* max_ps returns its second operand when either is NaN: with the running
 * maximum second, NaN inputs are skipped, as fmaxf and the scalar's
 * comparisons skip them. */
static inline __m512 absmax_step(__m512 m, __m512 v)
{
	return _mm512_max_ps(_mm512_abs_ps(v), m);
}

/* Q8_0: d = amax / 127 as fp16, q = nearbyint(x * (127 / amax)) (vcvtps2dq
 * rounds in the current mode, as nearbyintf does; ties to even by default). */
// x (n) -> y (n / 32 Q8_0 blocks)
static void quant_q8_0(const float *x, void *vy, int64_t n)
{
	uint8_t *y = vy;
	for (int64_t ib = 0; ib < n / RV_QK8_0; ib++, x += RV_QK8_0, y += Q8_0_SZ) {
		const __m512 x0 = _mm512_loadu_ps(x), x1 = _mm512_loadu_ps(x + 16);
		const float amax =
		    _mm512_reduce_max_ps(absmax_step(absmax_step(_mm512_setzero_ps(), x0), x1));
		const float d = amax / 127.0f;
		const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
		const uint16_t dh = rvk_f32_to_f16(d);
		memcpy(y, &dh, sizeof(dh));
		const __m512 idv = _mm512_set1_ps(id);
		/* in range by construction; vpmovdb keeps the low byte, as the
		 * scalar's conversion does for the out-of-range NaN case */
		_mm_storeu_si128((__m128i *)(y + 2),
		                 _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(x0, idv))));
		_mm_storeu_si128((__m128i *)(y + 18),
		                 _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(x1, idv))));
	}
}

/* Q8_K: max is the first element of the largest magnitude, iscale =
 * -127 / max, q = round-to-even(iscale * x) clamped to 127, bsums the sums of
 * each 16 stored quants, d = 1 / iscale. The scalar rounds with the
 * 1.5 * 2^23 trick, which for |v| <= 127 is vcvtps2dq's rounding; NaN gives
 * INT_MIN in both, whose low byte (0) is what is stored and summed. */
// x (n) -> y (n / 256 Q8_K blocks)
static void quant_q8_K(const float *x, void *vy, int64_t n)
{
	uint8_t *y = vy;
	for (int64_t ib = 0; ib < n / RV_QK_K; ib++, x += RV_QK_K, y += Q8_K_SZ) {
		__m512 m = _mm512_setzero_ps();
		for (int j = 0; j < RV_QK_K / 16; j++)
			m = absmax_step(m, _mm512_loadu_ps(x + 16 * j));
		const float amax = _mm512_reduce_max_ps(m);
		if (amax == 0.0f) {
			memset(y, 0, Q8_K_SZ);
			continue;
		}
		int jmax = 0;
		for (int j = 0; j < RV_QK_K / 16; j++) {
			const __mmask16 k =
			    _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(x + 16 * j)),
			                       _mm512_set1_ps(amax), _CMP_EQ_OQ);
			if (k) {
				jmax = 16 * j + __builtin_ctz(k);
				break;
			}
		}
		const float iscale = -127.0f / x[jmax];
		const __m512 isv = _mm512_set1_ps(iscale);
		int16_t bsums[RV_QK_K / 16];
		for (int j = 0; j < RV_QK_K / 16; j++) {
			const __m512i v = _mm512_min_epi32(
			    _mm512_cvtps_epi32(_mm512_mul_ps(isv, _mm512_loadu_ps(x + 16 * j))),
			    _mm512_set1_epi32(127));
			const __m128i q = _mm512_cvtepi32_epi8(v);
			_mm_storeu_si128((__m128i *)(y + Q8_K_QS + 16 * j), q);
			bsums[j] = (int16_t)_mm512_reduce_add_epi32(_mm512_cvtepi8_epi32(q));
		}
		memcpy(y + Q8_K_BS, bsums, sizeof(bsums));
		const float d = 1.0f / iscale;
		memcpy(y, &d, sizeof(d));
	}
}

/* ---- f32 helpers of the forward passes ---------------------------------- */

/* e^x for 16 floats, within about 1 ulp: e^x = 2^k e^r with k = round(x /
 * ln 2) and r = x - k ln 2 (ln 2 in two parts, so r keeps its accuracy for
 * large k), |r| <= 0.35; e^r by its degree-7 Taylor polynomial (truncation
 * 5e-9, under 0.05 ulp); vscalef multiplies by 2^k with IEEE overflow to inf
 * and gradual underflow. x is clamped to [-110, 89] first, beyond which the
 * result is 0 or inf anyway, so -inf gives exactly 0; max/min return their
 * second operand for NaN, which keeps NaN. */
static inline __m512 exp512(__m512 x)
{
	x = _mm512_max_ps(_mm512_set1_ps(-110.0f), x);
	x = _mm512_min_ps(_mm512_set1_ps(89.0f), x);
	const __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(0x1.715476p+0f)),
	                                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0x1.62e43p-1f), x);
	r = _mm512_fnmadd_ps(k, _mm512_set1_ps(-0x1.05c61p-29f), r);
	__m512 p = _mm512_set1_ps(0x1.a01a02p-13f);                 /* 1/7! */
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0x1.6c16c2p-10f)); /* 1/6! */
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0x1.111112p-7f));  /* 1/5! */
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0x1.555556p-5f));  /* 1/4! */
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0x1.555556p-3f));  /* 1/3! */
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
	return _mm512_scalef_ps(p, k);
}

/* o (n) = (x (n) * scale) * w (n), scale = 1 / sqrt(mean(x^2) + eps) with
 * the sum of squares in double, as scalar.c. */
static void rmsnorm(float *o, const float *x, const float *w, int64_t n, float eps)
{
	__m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
	int64_t i = 0;
	for (; i + 16 <= n; i += 16) {
		const __m512 v = _mm512_loadu_ps(x + i);
		const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
		const __m512d hi = _mm512_cvtps_pd(hi256(v));
		s0 = _mm512_fmadd_pd(lo, lo, s0); /* products exact in double */
		s1 = _mm512_fmadd_pd(hi, hi, s1);
	}
	if (i < n) {
		const __m512 v = _mm512_maskz_loadu_ps(mask16(n - i), x + i);
		const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
		const __m512d hi = _mm512_cvtps_pd(hi256(v));
		s0 = _mm512_fmadd_pd(lo, lo, s0);
		s1 = _mm512_fmadd_pd(hi, hi, s1);
	}
	const double ss = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
	const float mean = n > 0 ? (float)(ss / (double)n) : 0.0f;
	const __m512 scale = _mm512_set1_ps(1.0f / sqrtf(mean + eps));
	for (i = 0; i + 16 <= n; i += 16)
		_mm512_storeu_ps(o + i, _mm512_mul_ps(_mm512_mul_ps(_mm512_loadu_ps(x + i), scale),
		                                      _mm512_loadu_ps(w + i)));
	if (i < n) {
		const __mmask16 m = mask16(n - i);
		_mm512_mask_storeu_ps(
		    o + i, m,
		    _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), scale),
		                  _mm512_maskz_loadu_ps(m, w + i)));
	}
}

/* x (n) = softmax(x) in place: max, e^(x - max) with the sum in double
 * (8 + 8 lanes), then times 1 / sum. -inf entries become exactly 0. Runs
 * with subnormals flushed (rvk_ftz_begin): what would be one is 0. */
static void softmax(float *x, int64_t n)
{
	if (n <= 0)
		return;
	const unsigned int csr = rvk_ftz_begin();
	__m512 mx = _mm512_set1_ps(-INFINITY);
	int64_t i = 0;
	for (; i + 16 <= n; i += 16)
		mx = _mm512_max_ps(_mm512_loadu_ps(x + i), mx);
	if (i < n)
		mx = _mm512_mask_max_ps(mx, mask16(n - i),
		                        _mm512_maskz_loadu_ps(mask16(n - i), x + i), mx);
	const __m512 max = _mm512_set1_ps(_mm512_reduce_max_ps(mx));

	__m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
	for (i = 0; i < n; i += 16) {
		const __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : mask16(n - i);
		const __m512 e = _mm512_maskz_mov_ps(
		    m, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), max)));
		_mm512_mask_storeu_ps(x + i, m, e);
		s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
		s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(hi256(e)));
	}
	const __m512 inv =
	    _mm512_set1_ps((float)(1.0 / _mm512_reduce_add_pd(_mm512_add_pd(s0, s1))));
	for (i = 0; i < n; i += 16) {
		const __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : mask16(n - i);
		const __m512 y = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv);
		_mm512_mask_storeu_ps(
		    x + i, m,
		    _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(y, _mm512_set1_ps(FLT_MIN), _CMP_NLT_UQ),
		                        y));
	}
	rvk_ftz_end(csr);
}

/* g (n) = g / (1 + e^-g) * u (n). For g very negative e^-g is inf and the
 * quotient -0, the right limit. */
static void swiglu(float *g, const float *u, int64_t n)
{
	for (int64_t i = 0; i < n; i += 16) {
		const __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : mask16(n - i);
		const __m512 gv = _mm512_maskz_loadu_ps(m, g + i);
		const __m512 den = _mm512_add_ps(_mm512_set1_ps(1.0f),
		                                 exp512(_mm512_sub_ps(_mm512_setzero_ps(), gv)));
		_mm512_mask_storeu_ps(
		    g + i, m,
		    _mm512_mul_ps(_mm512_div_ps(gv, den), _mm512_maskz_loadu_ps(m, u + i)));
	}
}

// y (n) += a * x (n), one rounding per element (FMA)
static void axpy(float *y, float a, const float *x, int64_t n)
{
	const __m512 av = _mm512_set1_ps(a);
	int64_t i = 0;
	for (; i + 16 <= n; i += 16)
		_mm512_storeu_ps(
		    y + i, _mm512_fmadd_ps(av, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
	if (i < n) {
		const __mmask16 m = mask16(n - i);
		_mm512_mask_storeu_ps(y + i, m,
		                      _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(m, x + i),
		                                      _mm512_maskz_loadu_ps(m, y + i)));
	}
}

// a (n f32) . b (n f32) -> float: the F32 vec_dot
static float dot_f32(const float *a, const float *b, int64_t n)
{
	float s;
	vec_dot_f32(n, &s, a, b);
	return s;
}

/* ---- attention ------------------------------------------------------------
 * Scores 16 rows at a time: each row's products go to one zmm (hd / 16
 * FMAs with q held in registers), then the 16 zmm are reduced together by
 * a transpose-and-add tree (45 shuffles and adds for 16 rows instead of a
 * horizontal sum each), leaving row i's dot in lane i. Values keep the
 * output in two sets of accumulators (even and odd rows, for independent
 * FMAs) rather than load and store it once a row. The rows go ATT_BLOCK at
 * a time, and each block meets every query of the call while it is in the
 * L1 cache: with grouped-query attention 4 to 8 query heads read one KV
 * head, and the cache of a long context does not fit in L2. A query sees
 * the same operations whatever the block or nq. Head dimensions over
 * ATT_MAX_HD or not a multiple of 16 take the row-by-row dot_f32 and axpy. */

// the fallbacks: dot_f32 and axpy over rows
RVK_ATTN_FROM_DOT_AXPY(dot_f32, axpy)

#define ATT_MAX_HD 128
#define ATT_BLOCK  32 /* rows; a multiple of 16 (and even: the values' row pairs) */
#define ATT_MAX_Q  8  /* queries whose value accumulators are kept at a time */

/* The lanes of the 16 vectors summed, vector i's sum in lane i. */
static ALWAYS_INLINE __m512 sum16x16(const __m512 r[16])
{
	__m512 t[8], u[4], w[2];
	UNROLL
	for (int i = 0; i < 8; i++) /* 128-bit lane: [r2i r2i+1 r2i r2i+1] */
		t[i] = _mm512_add_ps(_mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]),
		                     _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]));
	UNROLL
	for (int i = 0; i < 4; i++) { /* 128-bit lane: [r4i .. r4i+3] */
		const __m512d a = _mm512_castps_pd(t[2 * i]), b = _mm512_castps_pd(t[2 * i + 1]);
		u[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(a, b)),
		                     _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)));
	}
	UNROLL
	for (int i = 0; i < 2; i++) /* 128-bit lanes halved in number */
		w[i] = _mm512_add_ps(_mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], 0x88),
		                     _mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], 0xdd));
	return _mm512_add_ps(_mm512_shuffle_f32x4(w[0], w[1], 0x88),
	                     _mm512_shuffle_f32x4(w[0], w[1], 0xdd));
}

/* att[p] = scale * (q . k_p) for the n (<= ATT_BLOCK) rows of a block.
 * Inlined for each head width (nc vectors) so that the query and the 16
 * row sums stay in registers. */
static ALWAYS_INLINE void scores_block(float *att, const float *q, const float *k, int64_t k_stride,
                                       int64_t n, const int nc, __m512 sv)
{
	__m512 qv[ATT_MAX_HD / 16];
	UNROLL
	for (int c = 0; c < nc; c++)
		qv[c] = _mm512_loadu_ps(q + 16 * c);
	for (int64_t p = 0; p < n; p += 16) {
		const int rows = n - p < 16 ? (int)(n - p) : 16;
		__m512 r[16];
		_Pragma("GCC unroll 16") for (int i = 0; i < 16; i++)
		{
			const float *kr = k + (p + (i < rows ? i : 0)) * k_stride;
			__m512 acc = _mm512_mul_ps(qv[0], _mm512_loadu_ps(kr));
			UNROLL
			for (int c = 1; c < nc; c++)
				acc = _mm512_fmadd_ps(qv[c], _mm512_loadu_ps(kr + 16 * c), acc);
			r[i] = acc;
		}
		_mm512_mask_storeu_ps(att + p, mask16(rows), _mm512_mul_ps(sum16x16(r), sv));
	}
}

static void attn_scores(float *att, int64_t att_stride, const float *q, int64_t q_stride,
                        int64_t nq, const float *k, int64_t k_stride, int64_t n, int64_t hd,
                        float scale)
{
	if (hd % 16 != 0 || hd > ATT_MAX_HD) {
		attn_scores_loop(att, att_stride, q, q_stride, nq, k, k_stride, n, hd, scale);
		return;
	}
	const __m512 sv = _mm512_set1_ps(scale);
	for (int64_t p0 = 0; p0 < n; p0 += ATT_BLOCK) {
		const int64_t rows = n - p0 < ATT_BLOCK ? n - p0 : ATT_BLOCK;
		for (int64_t j = 0; j < nq; j++) {
			float *a = att + j * att_stride + p0;
			const float *qj = q + j * q_stride, *kb = k + p0 * k_stride;
			switch (hd / 16) {
#define SCORES_NC(NC)                                                                              \
	case NC:                                                                                   \
		scores_block(a, qj, kb, k_stride, rows, NC, sv);                                   \
		break
				SCORES_NC(1);
				SCORES_NC(2);
				SCORES_NC(3);
				SCORES_NC(4);
				SCORES_NC(5);
				SCORES_NC(6);
				SCORES_NC(7);
				SCORES_NC(8);
#undef SCORES_NC
			default:
				break;
			}
		}
	}
}

/* The accumulators of one query (a0: even rows, started from out; a1: odd
 * rows) over the n rows of a block, the first of them even. */
static ALWAYS_INLINE void values_block(float *a0m, float *a1m, const float *att, const float *v,
                                       int64_t v_stride, int64_t n, const int nc)
{
	__m512 a0[ATT_MAX_HD / 16], a1[ATT_MAX_HD / 16];
	UNROLL
	for (int c = 0; c < nc; c++) {
		a0[c] = _mm512_loadu_ps(a0m + 16 * c);
		a1[c] = _mm512_loadu_ps(a1m + 16 * c);
	}
	int64_t p = 0;
	for (; p + 2 <= n; p += 2) {
		const __m512 w0 = _mm512_set1_ps(att[p]), w1 = _mm512_set1_ps(att[p + 1]);
		const float *v0 = v + p * v_stride, *v1 = v0 + v_stride;
		UNROLL
		for (int c = 0; c < nc; c++) {
			a0[c] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(v0 + 16 * c), a0[c]);
			a1[c] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(v1 + 16 * c), a1[c]);
		}
	}
	if (p < n) {
		const __m512 w0 = _mm512_set1_ps(att[p]);
		UNROLL
		for (int c = 0; c < nc; c++)
			a0[c] =
			    _mm512_fmadd_ps(w0, _mm512_loadu_ps(v + p * v_stride + 16 * c), a0[c]);
	}
	UNROLL
	for (int c = 0; c < nc; c++) {
		_mm512_storeu_ps(a0m + 16 * c, a0[c]);
		_mm512_storeu_ps(a1m + 16 * c, a1[c]);
	}
}

static void attn_values(float *out, int64_t out_stride, const float *att, int64_t att_stride,
                        int64_t nq, const float *v, int64_t v_stride, int64_t n, int64_t hd)
{
	if (hd % 16 != 0 || hd > ATT_MAX_HD) {
		attn_values_loop(out, out_stride, att, att_stride, nq, v, v_stride, n, hd);
		return;
	}
	const int nc = (int)(hd / 16);
	float a0[ATT_MAX_Q][ATT_MAX_HD], a1[ATT_MAX_Q][ATT_MAX_HD];
	for (int64_t j0 = 0; j0 < nq; j0 += ATT_MAX_Q) {
		const int qn = nq - j0 < ATT_MAX_Q ? (int)(nq - j0) : ATT_MAX_Q;
		for (int j = 0; j < qn; j++) {
			memcpy(a0[j], out + (j0 + j) * out_stride, (size_t)hd * sizeof(float));
			memset(a1[j], 0, (size_t)hd * sizeof(float));
		}
		for (int64_t p0 = 0; p0 < n; p0 += ATT_BLOCK) {
			const int64_t rows = n - p0 < ATT_BLOCK ? n - p0 : ATT_BLOCK;
			for (int j = 0; j < qn; j++) {
				const float *aj = att + (j0 + j) * att_stride + p0;
				const float *vb = v + p0 * v_stride;
				switch (nc) {
#define VALUES_NC(NC)                                                                              \
	case NC:                                                                                   \
		values_block(a0[j], a1[j], aj, vb, v_stride, rows, NC);                            \
		break
					VALUES_NC(1);
					VALUES_NC(2);
					VALUES_NC(3);
					VALUES_NC(4);
					VALUES_NC(5);
					VALUES_NC(6);
					VALUES_NC(7);
					VALUES_NC(8);
#undef VALUES_NC
				default:
					break;
				}
			}
		}
		for (int j = 0; j < qn; j++) {
			float *o = out + (j0 + j) * out_stride;
			for (int c = 0; c < nc; c++)
				_mm512_storeu_ps(o + 16 * c,
				                 _mm512_add_ps(_mm512_loadu_ps(a0[j] + 16 * c),
				                               _mm512_loadu_ps(a1[j] + 16 * c)));
		}
	}
}

/* ---- the table ---------------------------------------------------------- */

void rvk_avx512_fill(rvk_table *t)
{
	t->name = "avx512";

	t->vec_dot[RVI_TYPE_F32] = vec_dot_f32;
	t->vec_dot[RVI_TYPE_F16] = vec_dot_f16;
	t->vec_dot[RVI_TYPE_BF16] = vec_dot_bf16;
	t->vec_dot[RVI_TYPE_Q8_0] = vec_dot_q8_0;
	t->vec_dot[RVI_TYPE_Q4_0] = vec_dot_q4_0;
	t->vec_dot[RVI_TYPE_Q4_K] = vec_dot_q4_K;
	t->vec_dot[RVI_TYPE_Q5_K] = vec_dot_q5_K;
	t->vec_dot[RVI_TYPE_Q6_K] = vec_dot_q6_K;

	t->vec_dot_rows[RVI_TYPE_F32] = vec_dot_rows_f32;
	t->vec_dot_rows[RVI_TYPE_F16] = vec_dot_rows_f16;
	t->vec_dot_rows[RVI_TYPE_BF16] = vec_dot_rows_bf16;
	t->vec_dot_rows[RVI_TYPE_Q8_0] = vec_dot_rows_q8_0;
	t->vec_dot_rows[RVI_TYPE_Q4_0] = vec_dot_rows_q4_0;
	t->vec_dot_rows[RVI_TYPE_Q4_K] = vec_dot_rows_q4_K;
	t->vec_dot_rows[RVI_TYPE_Q5_K] = vec_dot_rows_q5_K;
	t->vec_dot_rows[RVI_TYPE_Q6_K] = vec_dot_rows_q6_K;

	t->prep_size[RVI_TYPE_F16] = prep_size_f16;
	t->prep[RVI_TYPE_F16] = prep_f16;
	t->vec_dot_prep[RVI_TYPE_F16] = vec_dot_prep_f16;
	t->prep_size[RVI_TYPE_Q8_0] = prep_size_q8_0;
	t->prep[RVI_TYPE_Q8_0] = prep_q8_0;
	t->vec_dot_prep[RVI_TYPE_Q8_0] = vec_dot_prep_q8_0;
	t->prep_size[RVI_TYPE_Q4_K] = prep_size_q4_K;
	t->prep[RVI_TYPE_Q4_K] = prep_q4_K;
	t->vec_dot_prep[RVI_TYPE_Q4_K] = vec_dot_prep_q4_K;
	t->prep_size[RVI_TYPE_Q5_K] = prep_size_kq;
	t->prep[RVI_TYPE_Q5_K] = prep_kq;
	t->vec_dot_prep[RVI_TYPE_Q5_K] = vec_dot_prep_q5_K;
	t->prep_size[RVI_TYPE_Q4_0] = prep_size_q4_0;
	t->prep[RVI_TYPE_Q4_0] = prep_q4_0;
	t->vec_dot_prep[RVI_TYPE_Q4_0] = vec_dot_prep_q4_0;
	t->prep_size[RVI_TYPE_Q6_K] = prep_size_q6_K;
	t->prep[RVI_TYPE_Q6_K] = prep_q6_K;
	t->vec_dot_prep[RVI_TYPE_Q6_K] = vec_dot_prep_q6_K;

	t->dequant[RVI_TYPE_F32] = dequant_f32;
	t->dequant[RVI_TYPE_F16] = dequant_f16;
	t->dequant[RVI_TYPE_BF16] = dequant_bf16;
	t->dequant[RVI_TYPE_Q8_0] = dequant_q8_0;
	t->dequant[RVI_TYPE_Q4_0] = dequant_q4_0;
	t->dequant[RVI_TYPE_Q4_K] = dequant_q4_K;
	t->dequant[RVI_TYPE_Q5_K] = dequant_q5_K;
	t->dequant[RVI_TYPE_Q6_K] = dequant_q6_K;
	t->dequant[RVI_TYPE_Q8_K] = dequant_q8_K;

	t->quant[RVI_TYPE_Q8_0] = quant_q8_0;
	t->quant[RVI_TYPE_Q8_K] = quant_q8_K;

	t->rmsnorm = rmsnorm;
	t->softmax = softmax;
	t->swiglu = swiglu;
	t->axpy = axpy;
	t->dot_f32 = dot_f32;
	t->attn_scores = attn_scores;
	t->attn_values = attn_values;
}
