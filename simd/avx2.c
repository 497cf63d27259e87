/* avx2.c: the AVX2 + FMA + F16C kernels (Intel Haswell and later, AMD Zen
 * and later). This file is compiled with -mavx2 -mfma -mf16c only, into its
 * own convenience library; dispatch.c calls rvk_avx2_fill after checking the
 * CPU, and nothing else here is visible outside the file.
 *
 * Semantics are those of scalar.c, entry by entry:
 *  - quant (Q8_0, Q8_K) writes the same bytes as the scalar code: same
 *    scale computation (done on scalars, as there), same products,
 *    rounding to nearest even, and the same stored byte (see
 *    pack_low_bytes for inputs where the scalar code's conversion is
 *    undefined);
 *  - dequant gives the same floats: every product is computed as the scalar
 *    code computes it (one float multiply of the same operands, or exact);
 *  - the dots accumulate in float lanes rather than in double (float
 *    types) or in one running float (quantized types), so they agree with
 *    the scalar ones to the test tolerances, not to the bit. The integer
 *    part of each quantized block (the dot of the quants) is exact.
 *
 * vec_dot and vec_dot_rows of a type share one row-group routine
 * (TYPE_rows below) that computes R outputs at once: the weights of a block
 * are loaded and unpacked once for the R activation rows, and each row has
 * its own accumulators that see exactly the operations vec_dot (the group
 * of one row) performs, in the same order. So vec_dot_rows is bit-identical
 * to vec_dot per row, whatever the batch, while unpacking the weights once
 * per group. */
#include "simd/kernels.h"

#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* The row-group routines rely on full unrolling of their loops over rows
 * (so per-row accumulators live in registers), hence always_inline and
 * explicit unroll requests. */
#define KINLINE static inline __attribute__((always_inline))
#define UNROLL  _Pragma("GCC unroll 8")

/* Largest row group of the quantized types; the float types use 2 (they
 * keep 4 accumulators a row, and AVX2 has 16 vector registers). */
#define MAX_GROUP 4

/* The dots prefetch the weights this many rows ahead, a block's bytes at a
 * time: the hardware prefetchers alone leave single-token decoding at about
 * half the memory bandwidth. */
#define PREFETCH_ROWS 4

KINLINE void prefetch_block(const void *row, int64_t n_blocks, size_t bsz, int64_t ib)
{
	const char *p = (const char *)row + ((size_t)(PREFETCH_ROWS * n_blocks) + (size_t)ib) * bsz;
	for (size_t o = 0; o < bsz; o += 64)
		_mm_prefetch(p + o, _MM_HINT_T0);
}

/* ---- helpers ------------------------------------------------------------ */

/* Sum of the 8 lanes in a fixed order (the same for every caller, so equal
 * accumulators give equal sums). */
KINLINE float hsum_ps(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

/* Largest of the 8 lanes (none of them NaN). */
KINLINE float hmax_ps(__m256 v)
{
	__m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	m = _mm_max_ps(m, _mm_movehl_ps(m, m));
	m = _mm_max_ss(m, _mm_movehdup_ps(m));
	return _mm_cvtss_f32(m);
}

KINLINE __m256 abs_ps(__m256 v)
{
	return _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)));
}

/* 8 int32 partial sums of w[i] * a[i] over 32 int8 pairs, given abs_w =
 * |w|. maddubs multiplies an unsigned operand by a signed one, so it gets
 * |w| and a with w's sign moved onto it (sign_epi8 also zeroes a where w is
 * 0). |w| = 128 (w = -128) is right read as unsigned; a must not be -128,
 * which quant never produces (|q| <= 127). Pair sums are at most
 * 2 * 128 * 127 < 2^15, so maddubs's saturation never triggers. */
KINLINE __m256i dot_i8(__m256i abs_w, __m256i w, __m256i a)
{
	const __m256i p16 = _mm256_maddubs_epi16(abs_w, _mm256_sign_epi8(a, w));
	return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

/* A shuffle_epi8 control that repeats int16 element k of each 128-bit lane
 * over that lane. */
KINLINE __m256i i16_broadcast_ctl(int k)
{
	return _mm256_set1_epi16((short)(((2 * k + 1) << 8) | (2 * k)));
}

/* The 8 six-bit scales (bytes 0..7) and mins (bytes 8..15) of a Q4_K/Q5_K
 * block from its 12 packed bytes (layout in scalar.c's k4_scales_mins),
 * four bytes at a time in 32-bit words: sub-blocks 0..3 are the low 6 bits
 * of bytes 0..3 (scales) and 4..7 (mins); sub-blocks 4..7 take their low 4
 * bits from the nibbles of bytes 8..11 and their top 2 bits from the top 2
 * bits of bytes 0..3 / 4..7 ((b >> 6) << 4 is (b >> 2) & 0x30). */
KINLINE __m128i k4_scales_mins(const uint8_t s[RV_K_SCALE_SIZE])
{
	uint32_t u[3];
	memcpy(u, s, sizeof(u));
	const uint32_t sc_lo = u[0] & 0x3f3f3f3fu;
	const uint32_t mn_lo = u[1] & 0x3f3f3f3fu;
	const uint32_t sc_hi = (u[2] & 0x0f0f0f0fu) | ((u[0] >> 2) & 0x30303030u);
	const uint32_t mn_hi = ((u[2] >> 4) & 0x0f0f0f0fu) | ((u[1] >> 2) & 0x30303030u);
	return _mm_set_epi32((int)mn_hi, (int)mn_lo, (int)sc_hi, (int)sc_lo);
}

/* Bit s of each byte of qh moved to bit 4 (value 16), other bits cleared:
 * the fifth bit of the Q5_K quants of sub-block s. The 16-bit shifts move
 * bits across byte boundaries, but never into bit 4 of a byte for these
 * counts (at most 4 either way). */
KINLINE __m256i q5_high_bit(__m256i qh, int s)
{
	const __m256i v = s <= 4 ? _mm256_slli_epi16(qh, 4 - s) : _mm256_srli_epi16(qh, s - 4);
	return _mm256_and_si256(v, _mm256_set1_epi8(16));
}

/* The rounding of quant: to nearest, ties to even, as nearbyintf (default
 * rounding mode) and scalar.c's round_even do. */
KINLINE __m256i round_epi32(__m256 v)
{
	return _mm256_cvtps_epi32(
	    _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

/* 32 bytes, element i the low byte of element i % 8 of v[i / 8]: what the
 * scalar code's (int8_t) casts store. For the quants' range (-127..127) this
 * is the value. On degenerate inputs (NaN or infinite products, from NaN or
 * infinite activations or a block so small that 127 / amax overflows) the
 * scalar code converts NaN or inf to an integer, which C leaves undefined;
 * x86 conversions give INT32_MIN, and taking its low byte (0) rather than
 * saturating (-128) matches the scalar code as GCC compiles it (clang
 * vectorizes that loop with saturating packs and gets -128). */
KINLINE __m256i pack_low_bytes(__m256i v0, __m256i v1, __m256i v2, __m256i v3)
{
	const __m256i m = _mm256_set1_epi32(0xff);
	/* unsigned packs of values 0..255 are exact; they interleave the
	 * 128-bit lanes, which the final permute undoes */
	const __m256i p01 = _mm256_packus_epi32(_mm256_and_si256(v0, m), _mm256_and_si256(v1, m));
	const __m256i p23 = _mm256_packus_epi32(_mm256_and_si256(v2, m), _mm256_and_si256(v3, m));
	const __m256i b = _mm256_packus_epi16(p01, p23);
	return _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* Up to 7 elements into a zero-padded vector (tails of the float loops).
 * Copies rather than masked loads, so nothing past the arrays is touched,
 * not even under a mask. */
KINLINE __m256 load_tail_ps(const float *x, int64_t cnt)
{
	float buf[8] = {0};
	memcpy(buf, x, (size_t)cnt * sizeof(float));
	return _mm256_loadu_ps(buf);
}

KINLINE __m128i load_tail_u16(const uint16_t *x, int64_t cnt)
{
	uint16_t buf[8] = {0};
	memcpy(buf, x, (size_t)cnt * sizeof(uint16_t));
	return _mm_loadu_si128((const __m128i *)buf);
}

KINLINE __m256 bf16x8_to_ps(__m128i h)
{
	return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

/* e^x for 8 floats, within about 1 ulp (0.5 of rounding, the rest from the
 * polynomial and its evaluation). x = n ln2 + r, |r| <= ln2 / 2, with n
 * rounded and r computed in two steps from a split ln2 (the first step is
 * exact); e^r by its degree-7 Taylor polynomial, whose truncation error is
 * under 0.05 ulp on that interval; then 2^n applied as two factors
 * 2^(n/2) 2^(n - n/2) so that results below 2^-126 round once into the
 * subnormals (and to 0 far enough out). x is clamped first: e^-110 is
 * below half the smallest subnormal, so everything under it (including
 * -inf) gives 0, and e^88.8 overflows to inf as it should. NaN passes
 * through: max/min return their second operand when one is NaN. */
KINLINE __m256 exp_ps(__m256 x)
{
	x = _mm256_min_ps(_mm256_set1_ps(88.8f), _mm256_max_ps(_mm256_set1_ps(-110.0f), x));
	const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(0x1.715476p+0f)),
	                                 _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.62e430p-1f), x);
	r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-0x1.05c610p-29f), r);
	__m256 p = _mm256_set1_ps(1.0f / 5040.0f);
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
	const __m256i ni = _mm256_cvtps_epi32(n);
	const __m256i n1 = _mm256_srai_epi32(ni, 1);
	const __m256i n2 = _mm256_sub_epi32(ni, n1);
	const __m256i bias = _mm256_set1_epi32(127);
	const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
	const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
	return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

/* ---- dequantization: x (n elements of the type) -> y (n floats) ---------- */

// x (n f32) -> y (n)
static void dequant_f32(const void *x, float *y, int64_t n)
{
	memcpy(y, x, (size_t)n * sizeof(float));
}

/* F16C converts exactly, like rvk_f16_to_f32, except that it quiets
 * signaling NaNs; a group of 8 holding a NaN is redone with the scalar
 * conversion so that even NaN payloads are the reference's. */
// x (n f16) -> y (n)
static void dequant_f16(const void *x, float *y, int64_t n)
{
	const uint16_t *h = x;
	int64_t i = 0;
	for (; i + 8 <= n; i += 8) {
		const __m256 v = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i)));
		_mm256_storeu_ps(y + i, v);
		if (__builtin_expect(_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)) != 0, 0))
			for (int j = 0; j < 8; j++)
				y[i + j] = rvk_f16_to_f32(h[i + j]);
	}
	for (; i < n; i++)
		y[i] = rvk_f16_to_f32(h[i]);
}

// x (n bf16) -> y (n)
static void dequant_bf16(const void *x, float *y, int64_t n)
{
	const uint16_t *h = x;
	int64_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(y + i, bf16x8_to_ps(_mm_loadu_si128((const __m128i *)(h + i))));
	if (i < n) {
		float buf[8];
		_mm256_storeu_ps(buf, bf16x8_to_ps(load_tail_u16(h + i, n - i)));
		memcpy(y + i, buf, (size_t)(n - i) * sizeof(float));
	}
}

/* 8 bytes at p, sign- or zero-extended, as floats. */
KINLINE __m256 i8x8_to_ps(const void *p)
{
	return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}

KINLINE __m256 u8x8_to_ps(__m128i v)
{
	return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v));
}

// x (n / 32 Q8_0 blocks) -> y (n): y = q * d
static void dequant_q8_0(const void *x, float *y, int64_t n)
{
	const rv_block_q8_0 *b = x;
	for (int64_t ib = 0; ib < n / RV_QK8_0; ib++, y += RV_QK8_0) {
		const __m256 d = _mm256_set1_ps(_cvtsh_ss(b[ib].d));
		for (int j = 0; j < RV_QK8_0; j += 8)
			_mm256_storeu_ps(y + j, _mm256_mul_ps(i8x8_to_ps(b[ib].qs + j), d));
	}
}

/* The 32 quants of a Q4_0 block in weight order, as int8 -8..7: low nibbles
 * (weights 0..15) in the low lane, high nibbles (16..31) in the high one. */
KINLINE __m256i q4_0_unpack(const rv_block_q4_0 *b)
{
	const __m128i q = _mm_loadu_si128((const __m128i *)b->qs);
	const __m256i nib =
	    _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0f));
	return _mm256_sub_epi8(nib, _mm256_set1_epi8(8));
}

// x (n / 32 Q4_0 blocks) -> y (n): y = (nibble - 8) * d
static void dequant_q4_0(const void *x, float *y, int64_t n)
{
	const rv_block_q4_0 *b = x;
	for (int64_t ib = 0; ib < n / RV_QK4_0; ib++, y += RV_QK4_0) {
		const __m256 d = _mm256_set1_ps(_cvtsh_ss(b[ib].d));
		int8_t q[RV_QK4_0];
		_mm256_storeu_si256((__m256i *)q, q4_0_unpack(&b[ib]));
		for (int j = 0; j < RV_QK4_0; j += 8)
			_mm256_storeu_ps(y + j, _mm256_mul_ps(i8x8_to_ps(q + j), d));
	}
}

/* 32 unsigned quants (bytes of q) of one sub-block as y = ds * q - ms, the
 * scalar code's operations (ds * q is exact, see scalar.c). */
KINLINE void k_subblock_out(float *y, __m256i q, float ds, float ms)
{
	const __m256 vd = _mm256_set1_ps(ds), vm = _mm256_set1_ps(ms);
	const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
	_mm256_storeu_ps(y, _mm256_sub_ps(_mm256_mul_ps(vd, u8x8_to_ps(lo)), vm));
	_mm256_storeu_ps(y + 8,
	                 _mm256_sub_ps(_mm256_mul_ps(vd, u8x8_to_ps(_mm_srli_si128(lo, 8))), vm));
	_mm256_storeu_ps(y + 16, _mm256_sub_ps(_mm256_mul_ps(vd, u8x8_to_ps(hi)), vm));
	_mm256_storeu_ps(y + 24,
	                 _mm256_sub_ps(_mm256_mul_ps(vd, u8x8_to_ps(_mm_srli_si128(hi, 8))), vm));
}

// x (n / 256 Q4_K blocks) -> y (n)
static void dequant_q4_K(const void *x, float *y, int64_t n)
{
	const rv_block_q4_K *b = x;
	const __m256i m4 = _mm256_set1_epi8(0x0f);
	for (int64_t ib = 0; ib < n / RV_QK_K; ib++, y += RV_QK_K) {
		const float d = _cvtsh_ss(b[ib].d), dmin = _cvtsh_ss(b[ib].dmin);
		uint8_t sm[16]; /* scales 0..7, mins 8..15 */
		_mm_storeu_si128((__m128i *)sm, k4_scales_mins(b[ib].scales));
		for (int g = 0; g < 4; g++) {
			const __m256i q = _mm256_loadu_si256((const __m256i *)(b[ib].qs + 32 * g));
			const int s = 2 * g;
			k_subblock_out(y + 32 * s, _mm256_and_si256(q, m4), d * sm[s],
			               dmin * sm[8 + s]);
			k_subblock_out(y + 32 * s + 32,
			               _mm256_and_si256(_mm256_srli_epi16(q, 4), m4), d * sm[s + 1],
			               dmin * sm[9 + s]);
		}
	}
}

// x (n / 256 Q5_K blocks) -> y (n)
static void dequant_q5_K(const void *x, float *y, int64_t n)
{
	const rv_block_q5_K *b = x;
	const __m256i m4 = _mm256_set1_epi8(0x0f);
	for (int64_t ib = 0; ib < n / RV_QK_K; ib++, y += RV_QK_K) {
		const float d = _cvtsh_ss(b[ib].d), dmin = _cvtsh_ss(b[ib].dmin);
		uint8_t sm[16];
		_mm_storeu_si128((__m128i *)sm, k4_scales_mins(b[ib].scales));
		const __m256i qh = _mm256_loadu_si256((const __m256i *)b[ib].qh);
		UNROLL
		for (int g = 0; g < 4; g++) {
			const __m256i q = _mm256_loadu_si256((const __m256i *)(b[ib].qs + 32 * g));
			const int s = 2 * g;
			const __m256i lo =
			    _mm256_or_si256(_mm256_and_si256(q, m4), q5_high_bit(qh, s));
			const __m256i hi = _mm256_or_si256(
			    _mm256_and_si256(_mm256_srli_epi16(q, 4), m4), q5_high_bit(qh, s + 1));
			k_subblock_out(y + 32 * s, lo, d * sm[s], dmin * sm[8 + s]);
			k_subblock_out(y + 32 * s + 32, hi, d * sm[s + 1], dmin * sm[9 + s]);
		}
	}
}

/* The unsigned 6-bit quants (0..63, stored value + 32) of the 32 weights
 * 128 h + 32 j .. + 31 of a Q6_K block (j = 0..3), from the half's ql
 * vectors l0 = ql[64h..], l1 = ql[64h + 32..] and qh vector hb = qh[32h..]:
 * low nibbles of l0 / l1 for j = 0 / 1, high nibbles for j = 2 / 3; top
 * bits from bit pair j of hb, moved to bits 4-5 (16-bit shifts are safe
 * here: the mask keeps only bits that came from the same byte). */
KINLINE __m256i q6_K_quants(__m256i l0, __m256i l1, __m256i hb, int j)
{
	const __m256i m4 = _mm256_set1_epi8(0x0f), m2 = _mm256_set1_epi8(0x30);
	const __m256i l = j & 1 ? l1 : l0;
	const __m256i low =
	    j < 2 ? _mm256_and_si256(l, m4) : _mm256_and_si256(_mm256_srli_epi16(l, 4), m4);
	const __m256i top = j == 0   ? _mm256_slli_epi16(hb, 4)
	                    : j == 1 ? _mm256_slli_epi16(hb, 2)
	                    : j == 2 ? hb
	                             : _mm256_srli_epi16(hb, 2);
	return _mm256_or_si256(low, _mm256_and_si256(top, m2));
}

// x (n / 256 Q6_K blocks) -> y (n): y = (d * scale) * (q - 32)
static void dequant_q6_K(const void *x, float *y, int64_t n)
{
	const rv_block_q6_K *b = x;
	for (int64_t ib = 0; ib < n / RV_QK_K; ib++, y += RV_QK_K) {
		const float d = _cvtsh_ss(b[ib].d);
		int8_t q[RV_QK_K];
		for (int h = 0; h < 2; h++) {
			const __m256i l0 = _mm256_loadu_si256((const __m256i *)(b[ib].ql + 64 * h));
			const __m256i l1 =
			    _mm256_loadu_si256((const __m256i *)(b[ib].ql + 64 * h + 32));
			const __m256i hb = _mm256_loadu_si256((const __m256i *)(b[ib].qh + 32 * h));
			UNROLL
			for (int j = 0; j < 4; j++)
				_mm256_storeu_si256((__m256i *)(q + 128 * h + 32 * j),
				                    _mm256_sub_epi8(q6_K_quants(l0, l1, hb, j),
				                                    _mm256_set1_epi8(32)));
		}
		for (int s = 0; s < RV_QK_K / 16; s++) {
			const __m256 ds = _mm256_set1_ps(d * (float)b[ib].scales[s]);
			_mm256_storeu_ps(y + 16 * s, _mm256_mul_ps(ds, i8x8_to_ps(q + 16 * s)));
			_mm256_storeu_ps(y + 16 * s + 8,
			                 _mm256_mul_ps(ds, i8x8_to_ps(q + 16 * s + 8)));
		}
	}
}

// x (n / 256 Q8_K blocks) -> y (n): activations only; for tests and debugging
static void dequant_q8_K(const void *x, float *y, int64_t n)
{
	const rv_block_q8_K *b = x;
	for (int64_t ib = 0; ib < n / RV_QK_K; ib++, y += RV_QK_K) {
		const __m256 d = _mm256_set1_ps(b[ib].d);
		for (int j = 0; j < RV_QK_K; j += 8)
			_mm256_storeu_ps(y + j, _mm256_mul_ps(d, i8x8_to_ps(b[ib].qs + j)));
	}
}

/* ---- quantization of activations: x (n floats) -> y (n / block blocks) --- */

/* Q8_0 as scalar.c: amax, d = amax / 127 as fp16 (F16C rounds to nearest
 * even, as rvk_f32_to_f16 does: checked equal over all non-negative
 * floats, and d is never NaN), q = x * (127 / amax) rounded ties to even.
 * The running maximum keeps the accumulator as max_ps's second operand,
 * which it returns when the other is NaN: NaN inputs are skipped like
 * fmaxf skips them. */
// x (n) -> y (n / 32 Q8_0 blocks)
static void quant_q8_0(const float *x, void *vy, int64_t n)
{
	rv_block_q8_0 *y = vy;
	for (int64_t ib = 0; ib < n / RV_QK8_0; ib++, x += RV_QK8_0) {
		__m256 v[4];
		__m256 amaxv = _mm256_setzero_ps();
		for (int k = 0; k < 4; k++) {
			v[k] = _mm256_loadu_ps(x + 8 * k);
			amaxv = _mm256_max_ps(abs_ps(v[k]), amaxv);
		}
		const float amax = hmax_ps(amaxv);
		const float d = amax / 127.0f;
		const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
		y[ib].d = (uint16_t)_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
		const __m256 vid = _mm256_set1_ps(id);
		const __m256i q = pack_low_bytes(
		    round_epi32(_mm256_mul_ps(v[0], vid)), round_epi32(_mm256_mul_ps(v[1], vid)),
		    round_epi32(_mm256_mul_ps(v[2], vid)), round_epi32(_mm256_mul_ps(v[3], vid)));
		_mm256_storeu_si256((__m256i *)y[ib].qs, q);
	}
}

/* Q8_K as scalar.c: max is the first element of largest magnitude (found
 * as the first lane equal to amax; NaNs are skipped by the running maximum
 * as by the scalar comparison), iscale = -127 / max, q = iscale * x
 * rounded ties to even and clamped to 127, d = 1 / iscale. bsums are the
 * sums of each 16 stored quants: sad_epu8 sums 8 bytes at a time, of
 * q + 128 (the xor with 0x80), so each sum of 16 carries 16 * 128 extra. */
// x (n) -> y (n / 256 Q8_K blocks)
static void quant_q8_K(const float *x, void *vy, int64_t n)
{
	rv_block_q8_K *y = vy;
	for (int64_t ib = 0; ib < n / RV_QK_K; ib++, x += RV_QK_K) {
		__m256 amaxv = _mm256_setzero_ps();
		for (int j = 0; j < RV_QK_K; j += 8)
			amaxv = _mm256_max_ps(abs_ps(_mm256_loadu_ps(x + j)), amaxv);
		const float amax = hmax_ps(amaxv);
		if (amax == 0.0f) {
			memset(&y[ib], 0, sizeof(y[ib]));
			continue;
		}
		const __m256 vamax = _mm256_set1_ps(amax);
		int jmax = 0;
		for (int j = 0; j < RV_QK_K; j += 8) {
			const __m256 eq =
			    _mm256_cmp_ps(abs_ps(_mm256_loadu_ps(x + j)), vamax, _CMP_EQ_OQ);
			const int m = _mm256_movemask_ps(eq);
			if (m != 0) {
				jmax = j + __builtin_ctz((unsigned)m);
				break;
			}
		}
		const float iscale = -127.0f / x[jmax];
		const __m256 vis = _mm256_set1_ps(iscale);
		const __m256i c127 = _mm256_set1_epi32(127);
		for (int j = 0; j < RV_QK_K; j += 32) {
			__m256i v[4];
			for (int k = 0; k < 4; k++)
				v[k] = _mm256_min_epi32(
				    round_epi32(_mm256_mul_ps(vis, _mm256_loadu_ps(x + j + 8 * k))),
				    c127);
			const __m256i q = pack_low_bytes(v[0], v[1], v[2], v[3]);
			_mm256_storeu_si256((__m256i *)(y[ib].qs + j), q);
			const __m256i sad =
			    _mm256_sad_epu8(_mm256_xor_si256(q, _mm256_set1_epi8((char)0x80)),
			                    _mm256_setzero_si256());
			/* low 64 bits of each lane: the sum of that lane's 16 bytes */
			const __m256i s16 = _mm256_add_epi64(sad, _mm256_srli_si256(sad, 8));
			y[ib].bsums[j / 16] = (int16_t)(_mm256_extract_epi32(s16, 0) - 16 * 128);
			y[ib].bsums[j / 16 + 1] =
			    (int16_t)(_mm256_extract_epi32(s16, 4) - 16 * 128);
		}
		y[ib].d = 1.0f / iscale;
	}
}

/* ---- dot products: one weight row against R activation rows ------------ */

/* Each TYPE_rows(n, w, a, a_stride, R, out) computes out[r] = w . a_r for
 * r < R, a_r = a + r * a_stride bytes, R a constant after inlining. */

/* Float weights against f32 activations: 4 accumulators of 8 lanes a row
 * (element i goes to lane i % 8 of accumulator (i / 8) % 4 in the main
 * loop; the last < 32 elements, zero-padded, go to accumulators 0..3 in
 * 8-element steps), summed as (acc0 + acc1) + (acc2 + acc3), then across
 * lanes. kind: 0 f32, 1 f16, 2 bf16 weights. */
KINLINE __m256 load_w8(int kind, const void *w, int64_t i)
{
	if (kind == 0)
		return _mm256_loadu_ps((const float *)w + i);
	const __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)w + i));
	return kind == 1 ? _mm256_cvtph_ps(h) : bf16x8_to_ps(h);
}

KINLINE __m256 load_w_tail(int kind, const void *w, int64_t i, int64_t cnt)
{
	if (kind == 0)
		return load_tail_ps((const float *)w + i, cnt);
	const __m128i h = load_tail_u16((const uint16_t *)w + i, cnt);
	return kind == 1 ? _mm256_cvtph_ps(h) : bf16x8_to_ps(h);
}

KINLINE void float_rows(int kind, int64_t n, const void *w, const char *a, size_t a_stride,
                        const int R, float *out)
{
	__m256 acc[2][4];
	UNROLL
	for (int r = 0; r < R; r++)
		for (int k = 0; k < 4; k++)
			acc[r][k] = _mm256_setzero_ps();
	int64_t i = 0;
	for (; i + 32 <= n; i += 32) {
		__m256 wv[4];
		UNROLL
		for (int k = 0; k < 4; k++)
			wv[k] = load_w8(kind, w, i + 8 * k);
		UNROLL
		for (int r = 0; r < R; r++) {
			const float *x = (const float *)(a + (size_t)r * a_stride) + i;
			UNROLL
			for (int k = 0; k < 4; k++)
				acc[r][k] =
				    _mm256_fmadd_ps(wv[k], _mm256_loadu_ps(x + 8 * k), acc[r][k]);
		}
	}
	/* the tail (under 32): full groups of 8, then a zero-padded last one;
	 * k stays a constant of the unrolled copies so acc stays in registers */
	UNROLL
	for (int k = 0; k < 4; k++, i += 8) {
		if (i >= n)
			break;
		const int64_t cnt = n - i < 8 ? n - i : 8;
		const __m256 wv = cnt == 8 ? load_w8(kind, w, i) : load_w_tail(kind, w, i, cnt);
		UNROLL
		for (int r = 0; r < R; r++) {
			const float *x = (const float *)(a + (size_t)r * a_stride) + i;
			const __m256 xv = cnt == 8 ? _mm256_loadu_ps(x) : load_tail_ps(x, cnt);
			acc[r][k] = _mm256_fmadd_ps(wv, xv, acc[r][k]);
		}
	}
	UNROLL
	for (int r = 0; r < R; r++)
		out[r] = hsum_ps(_mm256_add_ps(_mm256_add_ps(acc[r][0], acc[r][1]),
		                               _mm256_add_ps(acc[r][2], acc[r][3])));
}

KINLINE void f32_rows(int64_t n, const void *w, const char *a, size_t a_stride, const int R,
                      float *out)
{
	float_rows(0, n, w, a, a_stride, R, out);
}

KINLINE void f16_rows(int64_t n, const void *w, const char *a, size_t a_stride, const int R,
                      float *out)
{
	float_rows(1, n, w, a, a_stride, R, out);
}

KINLINE void bf16_rows(int64_t n, const void *w, const char *a, size_t a_stride, const int R,
                       float *out)
{
	float_rows(2, n, w, a, a_stride, R, out);
}

/* The fp16 scale d at the start of a Q8_0 / Q4_0 block, as a float in
 * lane 0 (the other lanes are don't-cares): 4 bytes are loaded (d and the
 * first quants, inside the block) with one movd, which is cheaper than
 * inserting a 16-bit word. */
KINLINE __m128 block_scale(const void *block)
{
	int32_t v;
	memcpy(&v, block, sizeof(v));
	return _mm_cvtph_ps(_mm_cvtsi32_si128(v));
}

/* Q8_0 . Q8_0 and Q4_0 . Q8_0, shape: w (n / 32 blocks) . a_r (n / 32 Q8_0
 * blocks). Per block: the weights as int8 (Q4_0 unpacked to -8..7), the
 * integer dot in 8 int32 lanes (dot_i8, lane j the products of bytes
 * 4j .. 4j + 3), converted to float and accumulated as
 * acc += (d_w * d_a) * sumi in one accumulator a row, summed across lanes
 * at the end by hsum_ps. This is the order of llama.cpp's AVX2 kernels
 * for these types, and it matters: the Q8_0 model references were made
 * with them (this order reproduces their log-probs to 5e-7), and a
 * different one (two accumulators, say) flips enough roundings of the next
 * layers' quantized activations to move a log-prob by 4e-3, over the test's
 * tolerance. q4: 0 for Q8_0 weights, 1 for Q4_0. */
KINLINE void q32_block(int q4, const void *w, int64_t ib, const char *a, size_t a_stride,
                       const int R, __m256 *acc)
{
	const __m256i qw =
	    q4 ? q4_0_unpack((const rv_block_q4_0 *)w + ib)
	       : _mm256_loadu_si256((const __m256i *)((const rv_block_q8_0 *)w)[ib].qs);
	const __m128 dw = block_scale(q4 ? (const void *)((const rv_block_q4_0 *)w + ib)
	                                 : (const void *)((const rv_block_q8_0 *)w + ib));
	const __m256i aw = _mm256_abs_epi8(qw);
	UNROLL
	for (int r = 0; r < R; r++) {
		const rv_block_q8_0 *ab = (const rv_block_q8_0 *)(a + (size_t)r * a_stride) + ib;
		const __m256i qa = _mm256_loadu_si256((const __m256i *)ab->qs);
		const __m256 sumi = _mm256_cvtepi32_ps(dot_i8(aw, qw, qa));
		const __m256 d = _mm256_broadcastss_ps(_mm_mul_ss(dw, block_scale(ab)));
		acc[r] = _mm256_fmadd_ps(d, sumi, acc[r]);
	}
}

KINLINE void q32_rows(int q4, int64_t n, const void *w, const char *a, size_t a_stride, const int R,
                      float *out)
{
	__m256 acc[MAX_GROUP];
	UNROLL
	for (int r = 0; r < R; r++)
		acc[r] = _mm256_setzero_ps();
	const size_t bsz = q4 ? sizeof(rv_block_q4_0) : sizeof(rv_block_q8_0);
	for (int64_t ib = 0; ib < n / RV_QK8_0; ib++) {
		prefetch_block(w, n / RV_QK8_0, bsz, ib);
		q32_block(q4, w, ib, a, a_stride, R, acc);
	}
	UNROLL
	for (int r = 0; r < R; r++)
		out[r] = hsum_ps(acc[r]);
}

KINLINE void q8_0_rows(int64_t n, const void *w, const char *a, size_t a_stride, const int R,
                       float *out)
{
	q32_rows(0, n, w, a, a_stride, R, out);
}

KINLINE void q4_0_rows(int64_t n, const void *w, const char *a, size_t a_stride, const int R,
                       float *out)
{
	q32_rows(1, n, w, a, a_stride, R, out);
}

/* The integer part of a K-quant block against one activation row, in
 * steps: the block's weights unpacked as 8 vectors q_k of 32 unsigned
 * quants (weights 32k .. 32k + 31), each with int16 scales sc_k for its
 * pair sums; qa the row's 256 quants. maddubs takes the unsigned quants
 * against the signed activations, madd applies the scales and sums pairs
 * into int32 lanes, added over k = 0..7. Integer sums are exact, so the
 * lanes hold the same values whatever the order of the steps: a single
 * row interleaves unpacking and steps (few live registers), a group of
 * rows unpacks the block first and then runs each row's steps (the
 * compiler keeps what fits of q and sc in registers and reloads the rest,
 * rather than spilling per-row partial sums). */
KINLINE __m256i k_step(__m256i isum, __m256i q, __m256i sc, const int8_t *qa)
{
	const __m256i p = _mm256_maddubs_epi16(q, _mm256_loadu_si256((const __m256i *)qa));
	return _mm256_add_epi32(isum, _mm256_madd_epi16(p, sc));
}

/* Vector k of a Q4_K / Q5_K block: 32-byte group k / 2 of qs, low nibbles
 * for even k (sub-block k), high nibbles for odd k; Q5_K (hbits) adds the
 * fifth bit, bit k of the qh bytes. */
KINLINE __m256i k4_vec(const uint8_t *qs, __m256i qhv, int hbits, int k)
{
	const __m256i m4 = _mm256_set1_epi8(0x0f);
	const __m256i v = _mm256_loadu_si256((const __m256i *)(qs + 32 * (k / 2)));
	const __m256i q = _mm256_and_si256(k & 1 ? _mm256_srli_epi16(v, 4) : v, m4);
	return hbits ? _mm256_or_si256(q, q5_high_bit(qhv, k)) : q;
}

/* Q4_K and Q5_K . Q8_K, shape: w (n / 256 blocks) . a_r (n / 256 blocks).
 * Per block (see scalar.c for the algebra):
 *   isum = sum_s sc_s (q_s . qa_s) by k_step: the quants are unsigned (0..15
 *     or 0..31; pair sums <= 2 * 31 * 128 < 2^15), sub-block s is vector s
 *     and its scale is broadcast over the vector;
 *   msum = sum_s mn_s (bsums_2s + bsums_2s+1): one madd of the 16 bsums
 *     with each min repeated twice, leaving lane s = sub-block s's term;
 * then acc += (d_w d_a) isum, acc -= (dmin_w d_a) msum, lane-wise in
 * float. hbits: 0 for Q4_K; 1 for Q5_K, whose 32 qh bytes give the fifth
 * bit of sub-block s in bit s. */
KINLINE __m256 k4_finish(__m256 acc, __m256i isum, const rv_block_q8_K *ab, __m256 dw, __m256 dminw,
                         __m256i mins2)
{
	const __m256i msum =
	    _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)ab->bsums), mins2);
	const __m256 ad = _mm256_set1_ps(ab->d);
	acc = _mm256_fmadd_ps(_mm256_mul_ps(dw, ad), _mm256_cvtepi32_ps(isum), acc);
	return _mm256_fnmadd_ps(_mm256_mul_ps(dminw, ad), _mm256_cvtepi32_ps(msum), acc);
}

KINLINE void k4_block(const uint8_t *scales, const uint8_t *qs, const uint8_t *qh, int hbits,
                      float dw_f, float dminw_f, const char *a, size_t a_stride, int64_t ib,
                      const int R, __m256 *acc)
{
	const __m128i sm = k4_scales_mins(scales);
	const __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));
	const __m256i mins2 = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(sm, sm));
	const __m256i qhv =
	    hbits ? _mm256_loadu_si256((const __m256i *)qh) : _mm256_setzero_si256();
	const __m256 dw = _mm256_set1_ps(dw_f), dminw = _mm256_set1_ps(dminw_f);
	if (R == 1) {
		const rv_block_q8_K *ab = (const rv_block_q8_K *)a + ib;
		__m256i isum = _mm256_setzero_si256();
		UNROLL
		for (int k = 0; k < 8; k++)
			isum = k_step(isum, k4_vec(qs, qhv, hbits, k),
			              _mm256_shuffle_epi8(sc16, i16_broadcast_ctl(k)),
			              ab->qs + 32 * k);
		acc[0] = k4_finish(acc[0], isum, ab, dw, dminw, mins2);
		return;
	}
	__m256i q[8], sc[8];
	UNROLL
	for (int k = 0; k < 8; k++) {
		q[k] = k4_vec(qs, qhv, hbits, k);
		sc[k] = _mm256_shuffle_epi8(sc16, i16_broadcast_ctl(k));
	}
	UNROLL
	for (int r = 0; r < R; r++) {
		const rv_block_q8_K *ab = (const rv_block_q8_K *)(a + (size_t)r * a_stride) + ib;
		__m256i isum = _mm256_setzero_si256();
		UNROLL
		for (int k = 0; k < 8; k++)
			isum = k_step(isum, q[k], sc[k], ab->qs + 32 * k);
		acc[r] = k4_finish(acc[r], isum, ab, dw, dminw, mins2);
	}
}

KINLINE void q4_K_rows(int64_t n, const void *vw, const char *a, size_t a_stride, const int R,
                       float *out)
{
	const rv_block_q4_K *w = vw;
	__m256 acc[MAX_GROUP];
	UNROLL
	for (int r = 0; r < R; r++)
		acc[r] = _mm256_setzero_ps();
	for (int64_t ib = 0; ib < n / RV_QK_K; ib++) {
		prefetch_block(w, n / RV_QK_K, sizeof(*w), ib);
		k4_block(w[ib].scales, w[ib].qs, NULL, 0, _cvtsh_ss(w[ib].d), _cvtsh_ss(w[ib].dmin),
		         a, a_stride, ib, R, acc);
	}
	UNROLL
	for (int r = 0; r < R; r++)
		out[r] = hsum_ps(acc[r]);
}

KINLINE void q5_K_rows(int64_t n, const void *vw, const char *a, size_t a_stride, const int R,
                       float *out)
{
	const rv_block_q5_K *w = vw;
	__m256 acc[MAX_GROUP];
	UNROLL
	for (int r = 0; r < R; r++)
		acc[r] = _mm256_setzero_ps();
	for (int64_t ib = 0; ib < n / RV_QK_K; ib++) {
		prefetch_block(w, n / RV_QK_K, sizeof(*w), ib);
		k4_block(w[ib].scales, w[ib].qs, w[ib].qh, 1, _cvtsh_ss(w[ib].d),
		         _cvtsh_ss(w[ib].dmin), a, a_stride, ib, R, acc);
	}
	UNROLL
	for (int r = 0; r < R; r++)
		out[r] = hsum_ps(acc[r]);
}

/* Q6_K . Q8_K, shape: w (n / 256 blocks) . a_r (n / 256 blocks). The quants
 * are taken unsigned (q + 32, 0..63) for k_step (pair sums <= 2 * 63 * 128
 * < 2^15); the offset comes back as 32 sum_s sc_s bsums_s, one madd of
 * the scales with the bsums. Each vector of 32 weights is two sub-blocks
 * of 16, one per 128-bit lane, so the scales are arranged even ones in the
 * low lane and odd ones in the high lane, and vector k multiplies by int16
 * element k of each lane. Bounds: |isum| <= 256 * 63 * 128 * 128 < 2^31. */
KINLINE __m256i q6_K_vec(const rv_block_q6_K *b, int k)
{
	const int h = k / 4, j = k % 4;
	const __m256i l0 = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h));
	const __m256i l1 = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h + 32));
	const __m256i hb = _mm256_loadu_si256((const __m256i *)(b->qh + 32 * h));
	return q6_K_quants(l0, l1, hb, j);
}

KINLINE __m256 q6_K_finish(__m256 acc, __m256i isum, const rv_block_q8_K *ab, __m256 dw,
                           __m256i sc_all)
{
	const __m256i off = _mm256_slli_epi32(
	    _mm256_madd_epi16(sc_all, _mm256_loadu_si256((const __m256i *)ab->bsums)), 5);
	return _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(ab->d)),
	                       _mm256_cvtepi32_ps(_mm256_sub_epi32(isum, off)), acc);
}

KINLINE void q6_K_rows(int64_t n, const void *vw, const char *a, size_t a_stride, const int R,
                       float *out)
{
	const rv_block_q6_K *w = vw;
	const __m128i even_odd =
	    _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
	__m256 acc[MAX_GROUP];
	UNROLL
	for (int r = 0; r < R; r++)
		acc[r] = _mm256_setzero_ps();
	for (int64_t ib = 0; ib < n / RV_QK_K; ib++) {
		prefetch_block(w, n / RV_QK_K, sizeof(*w), ib);
		const __m128i s8 = _mm_loadu_si128((const __m128i *)w[ib].scales);
		const __m256i sc_pairs = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(s8, even_odd));
		const __m256i sc_all = _mm256_cvtepi8_epi16(s8);
		const __m256 dw = _mm256_set1_ps(_cvtsh_ss(w[ib].d));
		if (R == 1) {
			const rv_block_q8_K *ab = (const rv_block_q8_K *)a + ib;
			__m256i isum = _mm256_setzero_si256();
			UNROLL
			for (int k = 0; k < 8; k++)
				isum = k_step(isum, q6_K_vec(&w[ib], k),
				              _mm256_shuffle_epi8(sc_pairs, i16_broadcast_ctl(k)),
				              ab->qs + 32 * k);
			acc[0] = q6_K_finish(acc[0], isum, ab, dw, sc_all);
			continue;
		}
		__m256i q[8], sc[8];
		UNROLL
		for (int k = 0; k < 8; k++) {
			q[k] = q6_K_vec(&w[ib], k);
			sc[k] = _mm256_shuffle_epi8(sc_pairs, i16_broadcast_ctl(k));
		}
		UNROLL
		for (int r = 0; r < R; r++) {
			const rv_block_q8_K *ab =
			    (const rv_block_q8_K *)(a + (size_t)r * a_stride) + ib;
			__m256i isum = _mm256_setzero_si256();
			UNROLL
			for (int k = 0; k < 8; k++)
				isum = k_step(isum, q[k], sc[k], ab->qs + 32 * k);
			acc[r] = q6_K_finish(acc[r], isum, ab, dw, sc_all);
		}
	}
	UNROLL
	for (int r = 0; r < R; r++)
		out[r] = hsum_ps(acc[r]);
}

/* The table entries of a type from its row-group routine: vec_dot is the
 * group of one row; vec_dot_rows runs groups of GMAX rows (4 or 2), then
 * one of 2 and one of 1 for what is left. A row's result is the same bits
 * in every group size. */
#define DOT_ENTRIES(name, GMAX)                                                                    \
	static void vec_dot_##name(int64_t n, float *s, const void *w, const void *a)              \
	{                                                                                          \
		name##_rows(n, w, a, 0, 1, s);                                                     \
	}                                                                                          \
	static void vec_dot_rows_##name(int64_t n, float *s, int64_t s_stride, const void *w,      \
	                                const void *a, size_t a_stride, int64_t nrows)             \
	{                                                                                          \
		const char *ar = a;                                                                \
		float out[MAX_GROUP];                                                              \
		int64_t r = 0;                                                                     \
		for (; r + GMAX <= nrows; r += GMAX) {                                             \
			name##_rows(n, w, ar + (size_t)r * a_stride, a_stride, GMAX, out);         \
			for (int k = 0; k < GMAX; k++)                                             \
				s[(r + k) * s_stride] = out[k];                                    \
		}                                                                                  \
		if (GMAX > 2 && r + 2 <= nrows) {                                                  \
			name##_rows(n, w, ar + (size_t)r * a_stride, a_stride, 2, out);            \
			s[r * s_stride] = out[0];                                                  \
			s[(r + 1) * s_stride] = out[1];                                            \
			r += 2;                                                                    \
		}                                                                                  \
		if (r < nrows)                                                                     \
			name##_rows(n, w, ar + (size_t)r * a_stride, a_stride, 1,                  \
			            &s[r * s_stride]);                                             \
	}

// w (n f32) . a_r (n f32) -> s
DOT_ENTRIES(f32, 2)
// w (n f16) . a_r (n f32) -> s
DOT_ENTRIES(f16, 2)
// w (n bf16) . a_r (n f32) -> s
DOT_ENTRIES(bf16, 2)
// w (n / 32 Q8_0 blocks) . a_r (n / 32 Q8_0 blocks) -> s
DOT_ENTRIES(q8_0, 4)
// w (n / 32 Q4_0 blocks) . a_r (n / 32 Q8_0 blocks) -> s
DOT_ENTRIES(q4_0, 4)
// w (n / 256 Q4_K blocks) . a_r (n / 256 Q8_K blocks) -> s
DOT_ENTRIES(q4_K, 4)
// w (n / 256 Q5_K blocks) . a_r (n / 256 Q8_K blocks) -> s
DOT_ENTRIES(q5_K, 4)
// w (n / 256 Q6_K blocks) . a_r (n / 256 Q8_K blocks) -> s
DOT_ENTRIES(q6_K, 4)

/* ---- f32 helpers of the forward passes ---------------------------------- */

/* dot of two f32 vectors (n): vec_dot_f32's routine, so attention scores
 * and F32 weights round alike. */
static float dot_f32(const float *a, const float *b, int64_t n)
{
	float s;
	f32_rows(n, a, (const char *)b, 0, 1, &s);
	return s;
}

/* o (n) = x (n) / rms(x) * w (n): the sum of squares in double lanes (each
 * square is exact in double), then o = (x * scale) * w as scalar.c. */
/* rmsnorm (w) or rmsnorm_1p (1 + w) */
KINLINE void rmsnorm_body(const int plus1, float *o, const float *x, const float *w, int64_t n,
                          float eps)
{
	const __m256 one = _mm256_set1_ps(1.0f);
	__m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
	int64_t i = 0;
	for (; i + 8 <= n; i += 8) {
		const __m256 v = _mm256_loadu_ps(x + i);
		const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
		const __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
		s0 = _mm256_fmadd_pd(lo, lo, s0);
		s1 = _mm256_fmadd_pd(hi, hi, s1);
	}
	double lanes[4];
	_mm256_storeu_pd(lanes, _mm256_add_pd(s0, s1));
	double ss = (lanes[0] + lanes[2]) + (lanes[1] + lanes[3]);
	for (; i < n; i++)
		ss += (double)x[i] * x[i];
	const float mean = n > 0 ? (float)(ss / (double)n) : 0.0f;
	const float scale = 1.0f / sqrtf(mean + eps);
	const __m256 vs = _mm256_set1_ps(scale);
	for (i = 0; i + 8 <= n; i += 8)
		_mm256_storeu_ps(o + i,
		                 _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vs),
		                               plus1 ? _mm256_add_ps(one, _mm256_loadu_ps(w + i))
		                                     : _mm256_loadu_ps(w + i)));
	for (; i < n; i++)
		o[i] = (x[i] * scale) * (plus1 ? 1.0f + w[i] : w[i]);
}

static void rmsnorm(float *o, const float *x, const float *w, int64_t n, float eps)
{
	rmsnorm_body(0, o, x, w, n, eps);
}

// o (n) = (x * scale) * (1 + w), as scalar.c
static void rmsnorm_1p(float *o, const float *x, const float *w, int64_t n, float eps)
{
	rmsnorm_body(1, o, x, w, n, eps);
}

/* x (n) = softmax(x) in place: max, e^(x - max) by exp_ps, sum in double,
 * scale by the float 1 / sum. Masked (-inf) entries give exactly 0; the
 * tail runs through a buffer padded with -inf, which adds nothing. Runs
 * with subnormals flushed (rvk_ftz_begin): what would be one is 0. */
static void softmax(float *x, int64_t n)
{
	if (n <= 0)
		return;
	const unsigned int csr = rvk_ftz_begin();
	__m256 mv = _mm256_set1_ps(x[0]);
	int64_t i = 0;
	for (; i + 8 <= n; i += 8)
		mv = _mm256_max_ps(_mm256_loadu_ps(x + i), mv);
	float max = hmax_ps(mv);
	for (; i < n; i++)
		max = x[i] > max ? x[i] : max;

	const __m256 vmax = _mm256_set1_ps(max);
	__m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
	for (i = 0; i < n; i += 8) {
		const int64_t cnt = n - i < 8 ? n - i : 8;
		float buf[8];
		if (cnt < 8) {
			for (int j = 0; j < 8; j++)
				buf[j] = j < cnt ? x[i + j] : -INFINITY;
		}
		const float *src = cnt < 8 ? buf : x + i;
		const __m256 e = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(src), vmax));
		s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
		s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
		if (cnt == 8) {
			_mm256_storeu_ps(x + i, e);
		} else {
			_mm256_storeu_ps(buf, e);
			memcpy(x + i, buf, (size_t)cnt * sizeof(float));
		}
	}
	double lanes[4];
	_mm256_storeu_pd(lanes, _mm256_add_pd(s0, s1));
	const double sum = (lanes[0] + lanes[2]) + (lanes[1] + lanes[3]);
	const float inv = (float)(1.0 / sum);
	const __m256 vinv = _mm256_set1_ps(inv), tiny = _mm256_set1_ps(FLT_MIN);
	for (i = 0; i + 8 <= n; i += 8) {
		const __m256 y = _mm256_mul_ps(_mm256_loadu_ps(x + i), vinv);
		_mm256_storeu_ps(x + i, _mm256_andnot_ps(_mm256_cmp_ps(y, tiny, _CMP_LT_OQ), y));
	}
	for (; i < n; i++) {
		x[i] *= inv;
		x[i] = x[i] < FLT_MIN ? 0.0f : x[i];
	}
	rvk_ftz_end(csr);
}

/* g (n) = silu(g) * u (n) = g / (1 + e^-g) * u, the scalar order of
 * operations; for g very negative e^-g is inf and the result -0 (or +0). */
KINLINE __m256 swiglu8(__m256 g, __m256 u)
{
	const __m256 one = _mm256_set1_ps(1.0f);
	const __m256 neg = _mm256_xor_ps(g, _mm256_set1_ps(-0.0f));
	return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(one, exp_ps(neg))), u);
}

static void swiglu(float *g, const float *u, int64_t n)
{
	int64_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(g + i, swiglu8(_mm256_loadu_ps(g + i), _mm256_loadu_ps(u + i)));
	if (i < n) {
		float buf[8];
		_mm256_storeu_ps(buf,
		                 swiglu8(load_tail_ps(g + i, n - i), load_tail_ps(u + i, n - i)));
		memcpy(g + i, buf, (size_t)(n - i) * sizeof(float));
	}
}

/* y (n) += a * x (n): a multiply then an add, as scalar.c, so the results
 * are the scalar ones bit for bit (an FMA would round once less). */
static void axpy(float *y, float a, const float *x, int64_t n)
{
	const __m256 va = _mm256_set1_ps(a);
	int64_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i),
		                                      _mm256_mul_ps(va, _mm256_loadu_ps(x + i))));
	for (; i < n; i++)
		y[i] += a * x[i];
}

// attention scores and values: dot_f32 and axpy over rows
RVK_ATTN_FROM_DOT_AXPY(dot_f32, axpy)

/* ---- norms, activations, bias and RoPE of the model recipes ------------- */

/* o (n) = (x - mean) / sqrt(var + eps) * w + b: mean and variance summed in
 * double lanes (another order than scalar.c's, within its tolerance), each
 * output as scalar.c computes it. o may be x: the output pass comes after
 * both sums. */
static void layernorm(float *o, const float *x, const float *w, const float *b, int64_t n,
                      float eps)
{
	__m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
	int64_t i = 0;
	for (; i + 8 <= n; i += 8) {
		const __m256 v = _mm256_loadu_ps(x + i);
		s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
		s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
	}
	double lanes[4];
	_mm256_storeu_pd(lanes, _mm256_add_pd(s0, s1));
	double sum = (lanes[0] + lanes[2]) + (lanes[1] + lanes[3]);
	for (; i < n; i++)
		sum += x[i];
	const double mean = sum / (double)n;
	const __m256d vm = _mm256_set1_pd(mean);
	s0 = _mm256_setzero_pd();
	s1 = _mm256_setzero_pd();
	for (i = 0; i + 8 <= n; i += 8) {
		const __m256 v = _mm256_loadu_ps(x + i);
		const __m256d d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), vm);
		const __m256d d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), vm);
		s0 = _mm256_fmadd_pd(d0, d0, s0);
		s1 = _mm256_fmadd_pd(d1, d1, s1);
	}
	_mm256_storeu_pd(lanes, _mm256_add_pd(s0, s1));
	double var = (lanes[0] + lanes[2]) + (lanes[1] + lanes[3]);
	for (; i < n; i++)
		var += ((double)x[i] - mean) * ((double)x[i] - mean);
	const double inv = 1.0 / sqrt(var / (double)n + (double)eps);
	const __m256d vi = _mm256_set1_pd(inv);
	for (i = 0; i + 8 <= n; i += 8) {
		const __m256 v = _mm256_loadu_ps(x + i);
		const __m128 lo = _mm256_cvtpd_ps(_mm256_mul_pd(
		    _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), vm), vi));
		const __m128 hi = _mm256_cvtpd_ps(_mm256_mul_pd(
		    _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), vm), vi));
		const __m256 t = _mm256_insertf128_ps(_mm256_castps128_ps256(lo), hi, 1);
		_mm256_storeu_ps(o + i, _mm256_add_ps(_mm256_mul_ps(t, _mm256_loadu_ps(w + i)),
		                                      _mm256_loadu_ps(b + i)));
	}
	for (; i < n; i++)
		o[i] = (float)(((double)x[i] - mean) * inv) * w[i] + b[i];
}

enum { ACT_SILU, ACT_QUICK, ACT_TANH, ACT_ERF };

/* One activation on 8 floats, as avx512_float.c's act16 (see there: the
 * sigmoids as x / (1 + e^-k), GELU-erf from the erfcc fit). */
KINLINE __m256 act8(const int kind, __m256 x)
{
	const __m256 one = _mm256_set1_ps(1.0f);
	if (kind == ACT_ERF) {
		const __m256 z = _mm256_mul_ps(abs_ps(x), _mm256_set1_ps(0.70710678f));
		const __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(_mm256_set1_ps(0.5f), z, one));
		static const float c[10] = {0.17087277f, -0.82215223f, 1.48851587f, -1.13520398f,
		                            0.27886807f, -0.18628806f, 0.09678418f, 0.37409196f,
		                            1.00002368f, -1.26551223f};
		__m256 p = _mm256_set1_ps(c[0]);
		for (int k = 1; k < 10; k++)
			p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(c[k]));
		const __m256 half_erfc = _mm256_mul_ps(
		    _mm256_set1_ps(0.5f), _mm256_mul_ps(t, exp_ps(_mm256_fnmadd_ps(z, z, p))));
		const __m256 pos = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ);
		const __m256 phi = _mm256_blendv_ps(half_erfc, _mm256_sub_ps(one, half_erfc), pos);
		return _mm256_mul_ps(x, phi);
	}
	__m256 k = x;
	if (kind == ACT_QUICK)
		k = _mm256_mul_ps(_mm256_set1_ps(1.702f), x);
	if (kind == ACT_TANH) {
		const __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
		k = _mm256_mul_ps(_mm256_set1_ps(1.5957691216f),
		                  _mm256_fmadd_ps(_mm256_set1_ps(0.044715f), x3, x));
	}
	return _mm256_div_ps(x, _mm256_add_ps(one, exp_ps(_mm256_sub_ps(_mm256_setzero_ps(), k))));
}

KINLINE void act_row(const int kind, float *x, int64_t n)
{
	int64_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(x + i, act8(kind, _mm256_loadu_ps(x + i)));
	if (i < n) {
		float buf[8];
		_mm256_storeu_ps(buf, act8(kind, load_tail_ps(x + i, n - i)));
		memcpy(x + i, buf, (size_t)(n - i) * sizeof(float));
	}
}

// x (n) = act(x) in place, each within the tolerance of scalar.c's
static void gelu_erf(float *x, int64_t n)
{
	act_row(ACT_ERF, x, n);
}

static void gelu_tanh(float *x, int64_t n)
{
	act_row(ACT_TANH, x, n);
}

static void gelu_quick(float *x, int64_t n)
{
	act_row(ACT_QUICK, x, n);
}

static void silu(float *x, int64_t n)
{
	act_row(ACT_SILU, x, n);
}

// y (rows, n) += b (n): the scalar bits
static void add_bias(float *y, const float *b, int64_t rows, int64_t n)
{
	for (int64_t t = 0; t < rows; t++, y += n) {
		int64_t i = 0;
		for (; i + 8 <= n; i += 8)
			_mm256_storeu_ps(
			    y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_loadu_ps(b + i)));
		for (; i < n; i++)
			y[i] += b[i];
	}
}

/* RoPE with scalar.c's operations (a c - b s, a s + b c, no FMA): the
 * same bits. Adjacent pairs: x and cs line up, so 4 pairs are
 * addsub([a b ...] * [c c ...], [b a ...] * [s s ...]). */
static void rope(float *x, int64_t n_heads, int64_t head_dim, int64_t n_rot, const float *cs)
{
	for (int64_t h = 0; h < n_heads; h++) {
		float *v = x + h * head_dim;
		int64_t i = 0;
		for (; i + 8 <= n_rot; i += 8) {
			const __m256 ab = _mm256_loadu_ps(v + i), r = _mm256_loadu_ps(cs + i);
			const __m256 ba = _mm256_permute_ps(ab, 0xb1);
			_mm256_storeu_ps(
			    v + i, _mm256_addsub_ps(_mm256_mul_ps(ab, _mm256_moveldup_ps(r)),
			                            _mm256_mul_ps(ba, _mm256_movehdup_ps(r))));
		}
		for (; i < n_rot; i += 2)
			rvk_rope_pair(&v[i], &v[i + 1], cs[i], cs[i + 1]);
	}
}

/* Half-split pairs: 8 pairs a vector, cos and sin taken apart from 16
 * floats of cs. */
static void rope_neox(float *x, int64_t n_heads, int64_t head_dim, int64_t n_rot, const float *cs)
{
	const int64_t half = n_rot / 2;
	for (int64_t h = 0; h < n_heads; h++) {
		float *v = x + h * head_dim;
		int64_t i = 0;
		for (; i + 8 <= half; i += 8) {
			const __m256 r0 = _mm256_loadu_ps(cs + 2 * i),
			             r1 = _mm256_loadu_ps(cs + 2 * i + 8);
			const __m256 c = _mm256_castpd_ps(_mm256_permute4x64_pd(
			    _mm256_castps_pd(_mm256_shuffle_ps(r0, r1, 0x88)), 0xd8));
			const __m256 s = _mm256_castpd_ps(_mm256_permute4x64_pd(
			    _mm256_castps_pd(_mm256_shuffle_ps(r0, r1, 0xdd)), 0xd8));
			const __m256 a = _mm256_loadu_ps(v + i), b = _mm256_loadu_ps(v + i + half);
			_mm256_storeu_ps(v + i,
			                 _mm256_sub_ps(_mm256_mul_ps(a, c), _mm256_mul_ps(b, s)));
			_mm256_storeu_ps(v + i + half,
			                 _mm256_add_ps(_mm256_mul_ps(a, s), _mm256_mul_ps(b, c)));
		}
		for (; i < half; i++)
			rvk_rope_pair(&v[i], &v[i + half], cs[2 * i], cs[2 * i + 1]);
	}
}

/* ---- the table ---------------------------------------------------------- */

void rvk_avx2_fill(rvk_table *t)
{
	t->name = "avx2";
#define RVK_avx2(entry, function) t->entry = function;
#include "simd/kernel_entries.h"
}
