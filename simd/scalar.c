/* scalar.c: the portable C reference for every entry of the kernel table.
 *
 * Each SIMD table (AVX2, AVX-512, NEON...) is tested against these, so they
 * are written for clarity: one loop per format rule, integer arithmetic where
 * the format is integer, and the float operations in the order that makes
 * dequantization bit-exact with ggml's reference dequantization (the order is
 * a fact of the format's definition: y = (d * scale) * q - (dmin * min)).
 *
 * Fusing a*b - c into an FMA (one rounding instead of two) cannot change
 * the K-quant dequantization: d (fp16, 11 significant bits) * scale (6 bits)
 * * q (5 bits) is exact in a float, so only the subtraction rounds. Still,
 * the reference is defined with separate roundings, so contraction is off:
 * GCC does not contract in ISO C mode (-std=c11, which the build uses) and
 * clang is told so below.
 *
 * Block layouts (all little-endian, see src/blocks.h for the structs):
 *   Q8_0  32 weights: fp16 d, int8 q[32];            w = d * q
 *   Q4_0  32 weights: fp16 d, 16 bytes of nibbles;   w = d * (nibble - 8);
 *         byte j holds weight j (low nibble) and weight j + 16 (high nibble)
 *   Q4_K  256 weights in 8 sub-blocks of 32: fp16 d, dmin, 12 bytes of
 *         packed 6-bit (scale, min) pairs, 128 bytes of nibbles;
 *         w = d * scale[s] * nibble - dmin * min[s]. Each 32-byte group g
 *         (0..3) holds sub-block 2g in its low nibbles, 2g+1 in the high ones.
 *   Q5_K  as Q4_K plus qh[32]: bit 2g of qh[l] is the fifth bit of weight
 *         64g + l, bit 2g+1 that of weight 64g + 32 + l.
 *   Q6_K  256 weights in 16 sub-blocks of 16 with int8 scales, fp16 d:
 *         w = d * scale[i / 16] * (q - 32), q 6-bit: 4 low bits in ql, 2 high
 *         bits in qh (layout in q6_K_unpack below).
 *   Q8_K  float d, int8 q[256], int16 bsums[16] (sums of each 16 quants).
 */
#include "simd/kernels.h"

#include <float.h>
#include <math.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* ---- helpers ------------------------------------------------------------ */

/* Unpacks the 8 six-bit scales and 8 six-bit mins of a Q4_K/Q5_K block from
 * its 12 bytes. Sub-blocks 0..3 keep scale and min in the low 6 bits of bytes
 * 0..3 and 4..7; sub-blocks 4..7 keep their low 4 bits in the nibbles of bytes
 * 8..11 (scale low, min high) and their top 2 bits in the otherwise unused top
 * 2 bits of bytes 0..3 (scales) and 4..7 (mins). */
static void k4_scales_mins(const uint8_t s[RV_K_SCALE_SIZE], uint8_t sc[8], uint8_t mn[8])
{
	for (int j = 0; j < 4; j++) {
		sc[j] = s[j] & 63;
		mn[j] = s[j + 4] & 63;
	}
	for (int j = 4; j < 8; j++) {
		sc[j] = (uint8_t)((s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4));
		mn[j] = (uint8_t)((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
	}
}

/* Rounds to the nearest integer, ties to even, for |v| < 2^22: adding
 * 1.5 * 2^23 pushes the fraction bits out of a float's significand, so the
 * addition itself rounds (in the default rounding mode). This is the rounding
 * ggml uses for Q8_K, and it is cheap where rintf can be a libm call. The
 * assignment to a float drops any excess precision (C11 5.2.4.2.2), so this
 * also holds where float arithmetic is evaluated wider (x87). */
static inline int round_even(float v)
{
	const float magic = 12582912.0f; /* 1.5 * 2^23 */
	const float t = v + magic;
	return (int)(t - magic);
}

/* rvi_bf16_to_f32, inline for the loops: bf16 is the top half of a float. */
static inline float bf16_to_f32(uint16_t h)
{
	const uint32_t bits = (uint32_t)h << 16;
	float f;
	memcpy(&f, &bits, sizeof(f));
	return f;
}

/* The IEEE-754 binary32 encoding of f. */
static inline uint32_t f32_bits_of(float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof(u));
	return u;
}

uint16_t rvk_f32_to_f16(float f)
{
	const uint32_t x = f32_bits_of(f);
	const uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
	const uint32_t ax = x & 0x7fffffffu;

	if (ax >= 0x7f800000u) {
		if (ax == 0x7f800000u)
			return sign | 0x7c00u;
		/* NaN: stay quiet, keep the top payload bits. */
		return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
	}
	/* 65520 is halfway between 65504 (largest half, odd mantissa) and 2^16:
	 * ties go to even, i.e. to infinity, and so does everything above. */
	if (ax >= 0x477ff000u)
		return sign | 0x7c00u;

	if (ax < 0x38800000u) {
		/* Below 2^-14: a half subnormal, value q * 2^-24. With the float's
		 * 24-bit significand m and biased exponent e the value is
		 * m * 2^(e-150), so q = m >> (126 - e) rounded. Anything under
		 * 2^-25 rounds to zero (shift > 24). */
		const uint32_t e = ax >> 23;
		const uint32_t shift = 126u - e;
		if (e == 0 || shift > 24u)
			return sign;
		const uint32_t m = (ax & 0x7fffffu) | 0x800000u;
		uint32_t q = m >> shift;
		const uint32_t rem = m & ((1u << shift) - 1u);
		const uint32_t half = 1u << (shift - 1u);
		if (rem > half || (rem == half && (q & 1u)))
			q++; /* may carry into 0x400, the smallest normal: correct */
		return (uint16_t)(sign | q);
	}

	/* Normal: re-bias the exponent (127 -> 15) and drop 13 mantissa bits,
	 * rounding to nearest even; a carry out of the mantissa correctly bumps
	 * the exponent, and cannot reach infinity given the check above. */
	uint32_t h = (ax >> 13) - (112u << 10);
	const uint32_t rem = ax & 0x1fffu;
	if (rem > 0x1000u || (rem == 0x1000u && (h & 1u)))
		h++;
	return (uint16_t)(sign | h);
}

/* ---- dequantization: x (n elements of the type) -> y (n floats) ---------- */

// x (n f32) -> y (n)
static void dequant_f32(const void *x, float *y, int64_t n)
{
	memcpy(y, x, (size_t)n * sizeof(float));
}

// x (n f16) -> y (n)
static void dequant_f16(const void *x, float *y, int64_t n)
{
	const uint16_t *h = x;
	for (int64_t i = 0; i < n; i++)
		y[i] = rvk_f16_to_f32(h[i]);
}

// x (n bf16) -> y (n)
static void dequant_bf16(const void *x, float *y, int64_t n)
{
	const uint16_t *h = x;
	for (int64_t i = 0; i < n; i++)
		y[i] = bf16_to_f32(h[i]);
}

// x (n / 32 Q8_0 blocks) -> y (n)
static void dequant_q8_0(const void *x, float *y, int64_t n)
{
	const rv_block_q8_0 *b = x;
	for (int64_t ib = 0; ib < n / RV_QK8_0; ib++, y += RV_QK8_0) {
		const float d = rvk_f16_to_f32(b[ib].d);
		for (int j = 0; j < RV_QK8_0; j++)
			y[j] = (float)b[ib].qs[j] * d;
	}
}

// x (n / 32 Q4_0 blocks) -> y (n)
static void dequant_q4_0(const void *x, float *y, int64_t n)
{
	const rv_block_q4_0 *b = x;
	for (int64_t ib = 0; ib < n / RV_QK4_0; ib++, y += RV_QK4_0) {
		const float d = rvk_f16_to_f32(b[ib].d);
		for (int j = 0; j < RV_QK4_0 / 2; j++) {
			const int lo = (b[ib].qs[j] & 0x0f) - 8;
			const int hi = (b[ib].qs[j] >> 4) - 8;
			y[j] = (float)lo * d;
			y[j + RV_QK4_0 / 2] = (float)hi * d;
		}
	}
}

// x (n / 256 Q4_K blocks) -> y (n)
static void dequant_q4_K(const void *x, float *y, int64_t n)
{
	const rv_block_q4_K *b = x;
	for (int64_t ib = 0; ib < n / RV_QK_K; ib++) {
		const float d = rvk_f16_to_f32(b[ib].d);
		const float dmin = rvk_f16_to_f32(b[ib].dmin);
		uint8_t sc[8], mn[8];
		k4_scales_mins(b[ib].scales, sc, mn);
		const uint8_t *q = b[ib].qs;
		for (int g = 0; g < 4; g++, q += 32) {
			const float d_lo = d * sc[2 * g], m_lo = dmin * mn[2 * g];
			const float d_hi = d * sc[2 * g + 1], m_hi = dmin * mn[2 * g + 1];
			for (int l = 0; l < 32; l++)
				*y++ = d_lo * (float)(q[l] & 0x0f) - m_lo;
			for (int l = 0; l < 32; l++)
				*y++ = d_hi * (float)(q[l] >> 4) - m_hi;
		}
	}
}

/* The 256 five-bit quants (0..31) of a Q5_K block in weight order: the low
 * 4 bits come as in Q4_K, the fifth is bit s of qh[l] for weight l of
 * sub-block s. */
static void q5_K_unpack(const rv_block_q5_K *restrict b, uint8_t *restrict q)
{
	for (int g = 0; g < 4; g++) {
		const uint8_t *qs = b->qs + 32 * g;
		/* masks rather than shifts: byte-wise tests vectorize well */
		const uint8_t m_lo = (uint8_t)(1u << (2 * g)), m_hi = (uint8_t)(2u << (2 * g));
		for (int l = 0; l < 32; l++) {
			q[64 * g + l] = (uint8_t)((qs[l] & 0x0f) | ((b->qh[l] & m_lo) ? 16 : 0));
			q[64 * g + 32 + l] = (uint8_t)((qs[l] >> 4) | ((b->qh[l] & m_hi) ? 16 : 0));
		}
	}
}

// x (n / 256 Q5_K blocks) -> y (n)
static void dequant_q5_K(const void *x, float *y, int64_t n)
{
	const rv_block_q5_K *b = x;
	for (int64_t ib = 0; ib < n / RV_QK_K; ib++) {
		const float d = rvk_f16_to_f32(b[ib].d);
		const float dmin = rvk_f16_to_f32(b[ib].dmin);
		uint8_t sc[8], mn[8], q[RV_QK_K];
		k4_scales_mins(b[ib].scales, sc, mn);
		q5_K_unpack(&b[ib], q);
		for (int s = 0; s < 8; s++) {
			const float ds = d * sc[s], ms = dmin * mn[s];
			for (int l = 0; l < 32; l++)
				*y++ = ds * (float)q[32 * s + l] - ms;
		}
	}
}

/* The 256 signed quants (-32..31) of a Q6_K block in weight order. The
 * block is two halves of 128 weights; in half h, for l = 0..31, byte
 * ql[64h + l] holds the low 4 bits of weights l (low nibble) and l + 64
 * (high nibble), byte ql[64h + 32 + l] those of weights l + 32 and l + 96,
 * and qh[32h + l] the top 2 bits of weights l, l + 32, l + 64, l + 96 (bit
 * pairs 0-1, 2-3, 4-5, 6-7). Stored values are offset by 32. */
static void q6_K_unpack(const rv_block_q6_K *restrict b, int8_t *restrict q)
{
	for (int h = 0; h < 2; h++) {
		const uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
		int8_t *o = q + 128 * h;
		for (int l = 0; l < 32; l++) {
			o[l] = (int8_t)(((ql[l] & 0x0f) | ((qh[l] & 3) << 4)) - 32);
			o[l + 32] =
			    (int8_t)(((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32);
			o[l + 64] = (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
			o[l + 96] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
		}
	}
}

// x (n / 256 Q6_K blocks) -> y (n)
static void dequant_q6_K(const void *x, float *y, int64_t n)
{
	const rv_block_q6_K *b = x;
	for (int64_t ib = 0; ib < n / RV_QK_K; ib++, y += RV_QK_K) {
		const float d = rvk_f16_to_f32(b[ib].d);
		int8_t q[RV_QK_K];
		q6_K_unpack(&b[ib], q);
		for (int i = 0; i < RV_QK_K; i++)
			y[i] = d * (float)b[ib].scales[i / 16] * (float)q[i];
	}
}

// x (n / 256 Q8_K blocks) -> y (n): activations only; for tests and debugging
static void dequant_q8_K(const void *x, float *y, int64_t n)
{
	const rv_block_q8_K *b = x;
	for (int64_t ib = 0; ib < n / RV_QK_K; ib++, y += RV_QK_K)
		for (int j = 0; j < RV_QK_K; j++)
			y[j] = b[ib].d * (float)b[ib].qs[j];
}

/* ---- quantization of activations: x (n floats) -> y (n / block blocks) --- */

/* Q8_0: d = amax / 127 stored as fp16; q = x * (127 / amax) rounded to
 * nearest, ties to even. This is what llama.cpp's x86 SIMD path computes
 * (its plain-C reference divides and rounds ties away instead); matching it
 * keeps greedy tokens identical to the llama.cpp references, where one
 * flipped rounding moves a log-prob by 0.01. */
// x (n) -> y (n / 32 Q8_0 blocks)
static void quant_q8_0(const float *x, void *vy, int64_t n)
{
	rv_block_q8_0 *y = vy;
	for (int64_t ib = 0; ib < n / RV_QK8_0; ib++, x += RV_QK8_0) {
		float amax = 0.0f;
		for (int j = 0; j < RV_QK8_0; j++)
			amax = fmaxf(amax, fabsf(x[j]));
		const float d = amax / 127.0f;
		const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
		y[ib].d = rvk_f32_to_f16(d);
		for (int j = 0; j < RV_QK8_0; j++) {
			/* NaN and inf (from non-finite activations, or an id that
			 * overflowed for a denormal block) become 0: converting
			 * them would be undefined, and every ISA must agree */
			const float v = x[j] * id;
			y[ib].qs[j] = isfinite(v) ? (int8_t)nearbyintf(v) : 0;
		}
	}
}

/* Q8_K: max is the element of largest magnitude (the first one on ties) and
 * the scale maps it to -127, i.e. iscale = -127 / max and d = 1 / iscale
 * (negative when max is positive: this sign convention is ggml's and keeps
 * our activations identical to llama.cpp's). q = nearest, ties to even,
 * clamped to 127 (the opposite end can only reach -127 by construction). */
// x (n) -> y (n / 256 Q8_K blocks)
static void quant_q8_K(const float *x, void *vy, int64_t n)
{
	rv_block_q8_K *y = vy;
	for (int64_t ib = 0; ib < n / RV_QK_K; ib++, x += RV_QK_K) {
		float max = 0.0f, amax = 0.0f;
		for (int j = 0; j < RV_QK_K; j++) {
			if (fabsf(x[j]) > amax) {
				amax = fabsf(x[j]);
				max = x[j];
			}
		}
		if (amax == 0.0f) {
			memset(&y[ib], 0, sizeof(y[ib]));
			continue;
		}
		const float iscale = -127.0f / max;
		for (int j = 0; j < RV_QK_K; j++) {
			const float p = iscale * x[j];
			const int v = isfinite(p) ? round_even(p) : 0; /* as in Q8_0 */
			y[ib].qs[j] = (int8_t)(v < 127 ? v : 127);
		}
		for (int k = 0; k < RV_QK_K / 16; k++) {
			int sum = 0;
			for (int j = 0; j < 16; j++)
				sum += y[ib].qs[16 * k + j];
			y[ib].bsums[k] = (int16_t)sum;
		}
		y[ib].d = 1.0f / iscale;
	}
}

/* ---- dot products: weight row w (n) . activation row a (n) -> s ---------- */

/* Float weights against f32 activations: each product of two floats is exact
 * in double and the sums are kept in double, so the result is within one
 * float rounding of the exact dot. The sums run in DOT_LANES independent
 * lanes (lane j takes elements j, j + DOT_LANES, ...) added pairwise at the
 * end: this breaks the dependency chain of one running sum, which otherwise
 * bounds the speed, and fixes the order of additions so the result is the
 * same on every machine. SIMD versions accumulate in float lanes and are
 * compared with a tolerance. */
#define DOT_LANES 8
_Static_assert(DOT_LANES == 8, "lanes_sum adds exactly 8 lanes");

static inline float lanes_sum(const double acc[DOT_LANES])
{
	return (float)(((acc[0] + acc[1]) + (acc[2] + acc[3])) +
	               ((acc[4] + acc[5]) + (acc[6] + acc[7])));
}

// w (n f32) . a (n f32) -> float
static float dot_f32(const float *w, const float *a, int64_t n)
{
	double acc[DOT_LANES] = {0};
	int64_t i = 0;
	for (; i + DOT_LANES <= n; i += DOT_LANES)
		for (int j = 0; j < DOT_LANES; j++)
			acc[j] += (double)w[i + j] * a[i + j];
	for (int j = 0; i < n; i++, j++)
		acc[j] += (double)w[i] * a[i];
	return lanes_sum(acc);
}

// w (n f32) . a (n f32) -> s
static void vec_dot_f32(int64_t n, float *s, const void *vw, const void *va)
{
	*s = dot_f32(vw, va, n);
}

// w (n f16) . a (n f32) -> s
static void vec_dot_f16(int64_t n, float *s, const void *vw, const void *va)
{
	const uint16_t *w = vw;
	const float *a = va;
	double acc[DOT_LANES] = {0};
	int64_t i = 0;
	for (; i + DOT_LANES <= n; i += DOT_LANES)
		for (int j = 0; j < DOT_LANES; j++)
			acc[j] += (double)rvk_f16_to_f32(w[i + j]) * a[i + j];
	for (int j = 0; i < n; i++, j++)
		acc[j] += (double)rvk_f16_to_f32(w[i]) * a[i];
	*s = lanes_sum(acc);
}

// w (n bf16) . a (n f32) -> s
static void vec_dot_bf16(int64_t n, float *s, const void *vw, const void *va)
{
	const uint16_t *w = vw;
	const float *a = va;
	double acc[DOT_LANES] = {0};
	int64_t i = 0;
	for (; i + DOT_LANES <= n; i += DOT_LANES)
		for (int j = 0; j < DOT_LANES; j++)
			acc[j] += (double)bf16_to_f32(w[i + j]) * a[i + j];
	for (int j = 0; i < n; i++, j++)
		acc[j] += (double)bf16_to_f32(w[i]) * a[i];
	*s = lanes_sum(acc);
}

/* Quantized weights against quantized activations: the dot of each block is
 * an exact integer; it is scaled by the two block scales and accumulated in
 * float, block after block. */

// w (n / 32 Q8_0 blocks) . a (n / 32 Q8_0 blocks) -> s
static void vec_dot_q8_0(int64_t n, float *s, const void *vw, const void *va)
{
	const rv_block_q8_0 *w = vw, *a = va;
	float sum = 0.0f;
	for (int64_t ib = 0; ib < n / RV_QK8_0; ib++) {
		int32_t isum = 0;
		for (int j = 0; j < RV_QK8_0; j++)
			isum += w[ib].qs[j] * a[ib].qs[j];
		sum += (float)isum * (rvk_f16_to_f32(w[ib].d) * rvk_f16_to_f32(a[ib].d));
	}
	*s = sum;
}

// w (n / 32 Q4_0 blocks) . a (n / 32 Q8_0 blocks) -> s
static void vec_dot_q4_0(int64_t n, float *s, const void *vw, const void *va)
{
	const rv_block_q4_0 *w = vw;
	const rv_block_q8_0 *a = va;
	float sum = 0.0f;
	for (int64_t ib = 0; ib < n / RV_QK4_0; ib++) {
		int32_t isum = 0;
		for (int j = 0; j < RV_QK4_0 / 2; j++) {
			isum += ((w[ib].qs[j] & 0x0f) - 8) * a[ib].qs[j];
			isum += ((w[ib].qs[j] >> 4) - 8) * a[ib].qs[j + RV_QK4_0 / 2];
		}
		sum += (float)isum * (rvk_f16_to_f32(w[ib].d) * rvk_f16_to_f32(a[ib].d));
	}
	*s = sum;
}

/* K-quants: sum_i (d sc_s q_i - dmin m_s) a_d qa_i
 *         = d a_d sum_s sc_s (sum_{i in s} q_i qa_i) - dmin a_d sum_s m_s (sum_{i in s} qa_i).
 * The first sum is an integer per block; in the second, the activation sums
 * per 16 are precomputed in bsums, so the mins cost 8 multiplies a block.
 * Bounds: |sc q qa| sums stay below 2^31 (63 * 31 * 127 * 256 < 2^27). */

// w (n / 256 Q4_K blocks) . a (n / 256 Q8_K blocks) -> s
static void vec_dot_q4_K(int64_t n, float *s, const void *vw, const void *va)
{
	const rv_block_q4_K *w = vw;
	const rv_block_q8_K *a = va;
	float sum = 0.0f;
	for (int64_t ib = 0; ib < n / RV_QK_K; ib++) {
		uint8_t sc[8], mn[8];
		k4_scales_mins(w[ib].scales, sc, mn);
		const uint8_t *q = w[ib].qs;
		const int8_t *qa = a[ib].qs;
		int32_t isum = 0;
		for (int g = 0; g < 4; g++, q += 32, qa += 64) {
			int32_t lo = 0, hi = 0;
			for (int l = 0; l < 32; l++) {
				lo += (q[l] & 0x0f) * qa[l];
				hi += (q[l] >> 4) * qa[l + 32];
			}
			isum += sc[2 * g] * lo + sc[2 * g + 1] * hi;
		}
		int32_t msum = 0;
		for (int s8 = 0; s8 < 8; s8++)
			msum += mn[s8] * (a[ib].bsums[2 * s8] + a[ib].bsums[2 * s8 + 1]);
		const float d = rvk_f16_to_f32(w[ib].d) * a[ib].d;
		const float dmin = rvk_f16_to_f32(w[ib].dmin) * a[ib].d;
		sum += d * (float)isum - dmin * (float)msum;
	}
	*s = sum;
}

// w (n / 256 Q5_K blocks) . a (n / 256 Q8_K blocks) -> s
static void vec_dot_q5_K(int64_t n, float *s, const void *vw, const void *va)
{
	const rv_block_q5_K *w = vw;
	const rv_block_q8_K *a = va;
	float sum = 0.0f;
	for (int64_t ib = 0; ib < n / RV_QK_K; ib++) {
		uint8_t sc[8], mn[8], q[RV_QK_K];
		k4_scales_mins(w[ib].scales, sc, mn);
		q5_K_unpack(&w[ib], q);
		int32_t isum = 0;
		for (int sb = 0; sb < 8; sb++) {
			const uint8_t *qw = q + 32 * sb;
			const int8_t *qa = a[ib].qs + 32 * sb;
			int32_t sub = 0;
			for (int l = 0; l < 32; l++)
				sub += qw[l] * qa[l];
			isum += sc[sb] * sub;
		}
		int32_t msum = 0;
		for (int s8 = 0; s8 < 8; s8++)
			msum += mn[s8] * (a[ib].bsums[2 * s8] + a[ib].bsums[2 * s8 + 1]);
		const float d = rvk_f16_to_f32(w[ib].d) * a[ib].d;
		const float dmin = rvk_f16_to_f32(w[ib].dmin) * a[ib].d;
		sum += d * (float)isum - dmin * (float)msum;
	}
	*s = sum;
}

/* Q6_K has no mins: sum_s scale_s * (sum_{i in s} q_i qa_i) per block, each
 * sub-block 16 wide; |128 * 32 * 127 * 256| < 2^28 fits an int32. */
// w (n / 256 Q6_K blocks) . a (n / 256 Q8_K blocks) -> s
static void vec_dot_q6_K(int64_t n, float *s, const void *vw, const void *va)
{
	const rv_block_q6_K *w = vw;
	const rv_block_q8_K *a = va;
	float sum = 0.0f;
	for (int64_t ib = 0; ib < n / RV_QK_K; ib++) {
		int8_t q[RV_QK_K];
		q6_K_unpack(&w[ib], q);
		int32_t isum = 0;
		for (int sb = 0; sb < RV_QK_K / 16; sb++) {
			const int8_t *qw = q + 16 * sb;
			const int8_t *qa = a[ib].qs + 16 * sb;
			int32_t sub = 0;
			for (int l = 0; l < 16; l++)
				sub += qw[l] * qa[l];
			isum += w[ib].scales[sb] * sub;
		}
		sum += rvk_f16_to_f32(w[ib].d) * a[ib].d * (float)isum;
	}
	*s = sum;
}

/* ---- f32 helpers of the forward passes ---------------------------------- */

/* 1 / rms(x) for rmsnorm and rmsnorm_1p. The sum of squares is kept in
 * double (as ggml does) so that long rows lose nothing; scale = 1 /
 * sqrt(mean + eps) is then a float. */
static float rms_scale(const float *x, int64_t n, float eps)
{
	double ss = 0.0;
	for (int64_t i = 0; i < n; i++)
		ss += (double)x[i] * x[i];
	const float mean = n > 0 ? (float)(ss / (double)n) : 0.0f;
	return 1.0f / sqrtf(mean + eps);
}

/* o (n) = x (n) / rms(x) * w (n), the scale applied before the weight:
 * o = (x * scale) * w. */
static void rmsnorm(float *o, const float *x, const float *w, int64_t n, float eps)
{
	const float scale = rms_scale(x, n, eps);
	for (int64_t i = 0; i < n; i++)
		o[i] = (x[i] * scale) * w[i];
}

/* x (n) = softmax(x) in place. Subtracting the max keeps expf in range; -inf
 * entries (masked positions) become exactly 0. The sum is kept in double. At
 * least one entry must be finite. */
static void softmax(float *x, int64_t n)
{
	if (n <= 0)
		return;
	float max = x[0];
	for (int64_t i = 1; i < n; i++)
		max = x[i] > max ? x[i] : max;
	double sum = 0.0;
	for (int64_t i = 0; i < n; i++) {
		x[i] = expf(x[i] - max);
		sum += x[i];
	}
	const float inv = (float)(1.0 / sum);
	for (int64_t i = 0; i < n; i++) {
		x[i] *= inv;
		x[i] = x[i] < FLT_MIN ? 0.0f : x[i]; /* NaN stays */
	}
}

/* g (n) = silu(g) * u (n), silu(v) = v / (1 + e^-v). For v very negative,
 * e^-v overflows to inf and the quotient is -0, the right limit. */
static void swiglu(float *g, const float *u, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

// y (n) += a * x (n)
static void axpy(float *y, float a, const float *x, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		y[i] += a * x[i];
}

// attention scores and values: dot_f32 and axpy over rows
RVK_ATTN_FROM_DOT_AXPY(dot_f32, axpy)

/* ---- norms, activations, bias and RoPE of the model recipes ------------- */

/* o (n) = (x - mean) / sqrt(var + eps) * w + b, var biased (as PyTorch).
 * Mean and variance in double: cheap next to the matmuls, and it keeps the
 * vision encoders on their float64 references. o may be x: every x is read
 * before the first o is written. */
static void layernorm(float *o, const float *x, const float *w, const float *b, int64_t n,
                      float eps)
{
	double mean = 0, var = 0;
	for (int64_t i = 0; i < n; i++)
		mean += x[i];
	mean /= (double)n;
	for (int64_t i = 0; i < n; i++)
		var += ((double)x[i] - mean) * ((double)x[i] - mean);
	const double inv = 1.0 / sqrt(var / (double)n + (double)eps);
	for (int64_t i = 0; i < n; i++)
		o[i] = (float)(((double)x[i] - mean) * inv) * w[i] + b[i];
}

/* o (n) = (x * scale) * (1 + w), scale as in rmsnorm: Gemma stores its norm
 * weights minus one. */
static void rmsnorm_1p(float *o, const float *x, const float *w, int64_t n, float eps)
{
	const float scale = rms_scale(x, n, eps);
	for (int64_t i = 0; i < n; i++)
		o[i] = (x[i] * scale) * (1.0f + w[i]);
}

/* The activations, element by element (any split over threads gives the
 * same bits). GELU in double, as the float64 references are; the sigmoid
 * ones in float, where e^-v overflowing to inf gives the right limit -0. */
// x (n) = x/2 (1 + erf(x / sqrt 2))
static void gelu_erf(float *x, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		x[i] = (float)(0.5 * x[i] * (1.0 + erf(x[i] * 0.70710678118654752440)));
}

// x (n) = x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
static void gelu_tanh(float *x, int64_t n)
{
	for (int64_t i = 0; i < n; i++) {
		const double v = x[i];
		x[i] = (float)(0.5 * v *
		               (1.0 + tanh(0.79788456080286535588 * (v + 0.044715 * v * v * v))));
	}
}

// x (n) = x * sigmoid(1.702 x)
static void gelu_quick(float *x, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		x[i] = x[i] / (1.0f + expf(-1.702f * x[i]));
}

// x (n) = x * sigmoid(x)
static void silu(float *x, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		x[i] = x[i] / (1.0f + expf(-x[i]));
}

// y (rows, n) += b (n)
static void add_bias(float *y, const float *b, int64_t rows, int64_t n)
{
	for (int64_t t = 0; t < rows; t++)
		for (int64_t o = 0; o < n; o++)
			y[t * n + o] += b[o];
}

/* Each pair rotated by rvk_rope_pair (kernels.h). */
// x (n_heads, head_dim): pairs (x[2i], x[2i + 1]) of the first n_rot of each head
static void rope(float *x, int64_t n_heads, int64_t head_dim, int64_t n_rot, const float *cs)
{
	for (int64_t h = 0; h < n_heads; h++) {
		float *v = x + h * head_dim;
		for (int64_t i = 0; i < n_rot / 2; i++)
			rvk_rope_pair(&v[2 * i], &v[2 * i + 1], cs[2 * i], cs[2 * i + 1]);
	}
}

// x (n_heads, head_dim): pairs (x[i], x[i + n_rot / 2]) of the first n_rot of each head
static void rope_neox(float *x, int64_t n_heads, int64_t head_dim, int64_t n_rot, const float *cs)
{
	const int64_t half = n_rot / 2;
	for (int64_t h = 0; h < n_heads; h++) {
		float *v = x + h * head_dim;
		for (int64_t i = 0; i < half; i++)
			rvk_rope_pair(&v[i], &v[i + half], cs[2 * i], cs[2 * i + 1]);
	}
}

/* ---- the table ---------------------------------------------------------- */

const rvk_table rvk_scalar_table = {
    .name = "scalar",
#define RVK_scalar(entry, function) .entry = function,
#include "simd/kernel_entries.h"
};
