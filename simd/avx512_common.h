/* avx512_common.h: what the AVX-512 kernel files (avx512_dot.c,
 * avx512_prep.c, avx512_float.c; overview in avx512.c) share: inline
 * helpers (loads, horizontal sums, prefetches, the unpacking of K-quant
 * blocks), block sizes, the layouts of prepared activations that
 * avx512_prep.c writes and avx512_dot.c reads, and the declarations of the
 * table entries. Private to those files; it needs their compiler flags. */
#ifndef RLAIFV_AVX512_COMMON_H
#define RLAIFV_AVX512_COMMON_H

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

#define Q8_0_SZ sizeof(rv_block_q8_0) /* 34 */
#define Q4_0_SZ sizeof(rv_block_q4_0) /* 18 */
_Static_assert(sizeof(rv_block_q8_0) == 34 && sizeof(rv_block_q4_0) == 18, "block sizes");

#define Q8_K_SZ sizeof(rv_block_q8_K) /* 292: float d, 256 qs, 16 bsums */
#define Q8_K_QS offsetof(rv_block_q8_K, qs)
#define Q8_K_BS offsetof(rv_block_q8_K, bsums)

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
 * go in stripes, see "stripes" below):
 * the 256 quants, then bsums[l] * d as 16 floats, then d; 384 bytes. */
#define KP_SZ 384
#define KP_BF 256
#define KP_D  320

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

/* ---- Q8_0 against prepared activations ----------------------------------
 * The decode and prefill path of Q8_0 weights (vec_dot_prep): activations
 * are prepared once per matmul call, so nothing an activation row needs is
 * redone for each of the thousands of weight rows it meets. Pairs of
 * blocks, one zmm; a prepared pair is the 64 activation bytes as a + 128
 * (see the overview in avx512.c), then 16 floats, the first block's scale 8
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

/* The block in lane m of a stripe. */
static ALWAYS_INLINE int stripe_block(int m)
{
	return 4 * (m % 4) + m / 4;
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

/* ---- F16 weights against prepared f32 activations -----------------------
 * The wide-batch path of F16 weights (vision encoders, F16 prefill) when
 * the BLAS would be slower (see matmul.c): prepared rows are the f32
 * activations padded with zeros to a multiple of 16, so the last, partial
 * step needs a masked load on the weight side only. Tiles of up to 4 weight
 * rows (converted once per 16 columns) by up to 6 activation rows keep 24
 * accumulators in registers; each (weight row, activation row) sees the
 * same operations in any tile. */

#define F16P_AR 6

/* ---- float tiles (avx512_attn.c, avx512_gemm.c) ----------------------------- */

/* Rows and column vectors of a tile: 6 x 4 accumulators, 4 loads of the
 * panel and 6 broadcasts per step of the inner dimension. */
#define TILE_ROWS 6
#define TILE_VECS 4

/* c[i][0:64) = (c[i][0:64) if accumulate, else 0) + sum over d in [d0, d1)
 * of a[i * a_stride + d] * b_d, then times scale if scaled, for NA <= 6
 * rows of a and the 4 blocks of 16 columns of a panel b (block j's values
 * for step d at b + j * b_block + d * 16). Lane masks m[j] cut the columns
 * past the end (neither read nor written). Each c element is one chain of
 * FMAs over d in order: the same bits for any NA and any split of d. */
static ALWAYS_INLINE void tile_6x64(const int NA, const int accumulate, const int scaled, float *c,
                                    int64_t c_stride, const float *a, int64_t a_stride,
                                    const float *b, int64_t b_block, int64_t d0, int64_t d1,
                                    const __mmask16 m[TILE_VECS], __m512 scale)
{
	__m512 acc[TILE_ROWS][TILE_VECS];
	UNROLL
	for (int i = 0; i < NA; i++)
		UNROLL
	for (int j = 0; j < TILE_VECS; j++)
		acc[i][j] = accumulate ? _mm512_maskz_loadu_ps(m[j], c + i * c_stride + j * 16)
		                       : _mm512_setzero_ps();
	for (int64_t d = d0; d < d1; d++) {
		__m512 bv[TILE_VECS];
		UNROLL
		for (int j = 0; j < TILE_VECS; j++)
			bv[j] = _mm512_maskz_loadu_ps(m[j], b + j * b_block + d * 16);
		UNROLL
		for (int i = 0; i < NA; i++) {
			const __m512 ai = _mm512_set1_ps(a[i * a_stride + d]);
			UNROLL
			for (int j = 0; j < TILE_VECS; j++)
				acc[i][j] = _mm512_fmadd_ps(ai, bv[j], acc[i][j]);
		}
	}
	UNROLL
	for (int i = 0; i < NA; i++)
		UNROLL
	for (int j = 0; j < TILE_VECS; j++)
		_mm512_mask_storeu_ps(c + i * c_stride + j * 16, m[j],
		                      scaled ? _mm512_mul_ps(acc[i][j], scale) : acc[i][j]);
}

/* The masks of the 4 column blocks of a tile whose columns start at col
 * of n. */
static inline void tile_masks(int64_t col, int64_t n, __mmask16 m[TILE_VECS])
{
	for (int j = 0; j < TILE_VECS; j++) {
		const int64_t left = n - col - j * 16;
		m[j] = left >= 16 ? (__mmask16)0xffff : left > 0 ? mask16(left) : 0;
	}
}

/* The table entries of the AVX-512 files, declared from kernel_entries.h:
 * rvk_avx512_ + the function named there, of the entry's type. */
#define RVK_avx512(entry, function)                                                                \
	extern __typeof__(*((rvk_table *)0)->entry) rvk_avx512_##function;
#include "simd/kernel_entries.h"

#endif
