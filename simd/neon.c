/* neon.c: the kernel table for baseline Armv8-A Advanced SIMD (every
 * AArch64 CPU), compiled with no extra flags.
 *
 * What is bit-identical to scalar.c and what is not:
 *  - quantization of activations (Q8_0, Q8_K): the same bytes. Both round
 *    to nearest, ties to even, which FCVTNS (vcvtnq_s32_f32) does in one
 *    instruction, and make non-finite products 0; scales are computed by
 *    the same float divisions.
 *  - dequantization: the same floats. Integer quants convert to float
 *    exactly, and the products and differences are those of scalar.c, in
 *    its order, never fused (contraction is off, below; GCC does not
 *    contract in ISO C mode, which the build uses).
 *  - quantized dots (neon_qdot.h): the same floats. The integer part of a
 *    block is exact in any order and the float steps are scalar.c's.
 *  - float dots (F32/F16/BF16 weights, dot_f32) accumulate in 16 float
 *    lanes with FMA instead of scalar.c's double lanes: within the tests'
 *    tolerance, and vec_dot_rows gives the bits of vec_dot per row since
 *    both run the same per-row code.
 *  - rmsnorm and softmax keep their sums in double as scalar.c does (in
 *    another order); softmax and swiglu use a vector e^x good to a few ulp.
 *
 * Every function but rvk_neon_fill is static: neon_dotprod.c reaches them
 * only through the table this fills. */
#if !defined(__aarch64__)
#error "neon.c is for AArch64 builds only (configure compiles it for aarch64 hosts)"
#endif

#include <arm_neon.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "simd/kernels.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* ---- int8 dot primitives for neon_qdot.h -------------------------------- */

/* Without SDOT: widening multiplies into int16 lanes, then pairwise
 * widening adds into the int32 accumulator. A product of two int8 is at
 * most 2^14 in magnitude, so only one fits an int16 lane safely in general. */
static inline int32x4_t nq_dot16(int32x4_t acc, int8x16_t w, int8x16_t a)
{
	acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(w), vget_low_s8(a)));
	return vpadalq_s16(acc, vmull_high_s8(w, a));
}

/* |w| <= 32: two products per int16 lane are at most 2^13. */
static inline int32x4_t nq_dot16_small(int32x4_t acc, int8x16_t w, int8x16_t a)
{
	const int16x8_t p = vmull_s8(vget_low_s8(w), vget_low_s8(a));
	return vpadalq_s16(acc, vmlal_high_s8(p, w, a));
}

/* |w| <= 32: four products per int16 lane are at most 2^14. */
static inline int32x4_t nq_dot32_small(int32x4_t acc, int8x16_t w0, int8x16_t a0, int8x16_t w1,
                                       int8x16_t a1)
{
	int16x8_t p = vmull_s8(vget_low_s8(w0), vget_low_s8(a0));
	p = vmlal_high_s8(p, w0, a0);
	p = vmlal_s8(p, vget_low_s8(w1), vget_low_s8(a1));
	p = vmlal_high_s8(p, w1, a1);
	return vpadalq_s16(acc, p);
}

#include "simd/neon_qdot.h"

/* ---- conversions -------------------------------------------------------- */

/* 16 int8 -> 4 x 4 floats (exact). */
static inline void s8_to_f32(int8x16_t q, float32x4_t f[4])
{
	const int16x8_t lo = vmovl_s8(vget_low_s8(q)), hi = vmovl_high_s8(q);
	f[0] = vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo)));
	f[1] = vcvtq_f32_s32(vmovl_high_s16(lo));
	f[2] = vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi)));
	f[3] = vcvtq_f32_s32(vmovl_high_s16(hi));
}

/* 16 uint8 -> 4 x 4 floats (exact). */
static inline void u8_to_f32(uint8x16_t q, float32x4_t f[4])
{
	const uint16x8_t lo = vmovl_u8(vget_low_u8(q)), hi = vmovl_high_u8(q);
	f[0] = vcvtq_f32_u32(vmovl_u16(vget_low_u16(lo)));
	f[1] = vcvtq_f32_u32(vmovl_high_u16(lo));
	f[2] = vcvtq_f32_u32(vmovl_u16(vget_low_u16(hi)));
	f[3] = vcvtq_f32_u32(vmovl_high_u16(hi));
}

/* 8 fp16 -> 2 x 4 floats. FCVTL is exact for every finite value and
 * infinity; it quiets signalling NaNs, which rvk_f16_to_f32 (and so the
 * scalar dequantization) keeps as they are, so NaN lanes are rebuilt the
 * scalar way: sign, all-ones exponent, the 10 payload bits on top. */
static inline void f16_to_f32_exact(uint16x8_t h, float32x4_t f[2])
{
	const uint16x8_t rest = vandq_u16(h, vdupq_n_u16(0x7fff));
	const int16x8_t nan16 = vreinterpretq_s16_u16(vcgtq_u16(rest, vdupq_n_u16(0x7c00)));
	const uint32x4_t nan_lo = vreinterpretq_u32_s32(vmovl_s16(vget_low_s16(nan16)));
	const uint32x4_t nan_hi = vreinterpretq_u32_s32(vmovl_high_s16(nan16));
	/* sign << 16 | 0x7f800000 | payload << 13 */
	const uint32x4_t exp = vdupq_n_u32(0x7f800000u);
	const uint32x4_t sign_lo =
	    vandq_u32(vshll_n_u16(vget_low_u16(h), 16), vdupq_n_u32(0x80000000u));
	const uint32x4_t sign_hi = vandq_u32(vshll_high_n_u16(h, 16), vdupq_n_u32(0x80000000u));
	const uint32x4_t pay_lo =
	    vandq_u32(vshll_n_u16(vget_low_u16(h), 13), vdupq_n_u32(0x007fe000u));
	const uint32x4_t pay_hi = vandq_u32(vshll_high_n_u16(h, 13), vdupq_n_u32(0x007fe000u));
	const uint32x4_t nb_lo = vorrq_u32(vorrq_u32(sign_lo, exp), pay_lo);
	const uint32x4_t nb_hi = vorrq_u32(vorrq_u32(sign_hi, exp), pay_hi);
	const float32x4_t c_lo = vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(h)));
	const float32x4_t c_hi = vcvt_high_f32_f16(vreinterpretq_f16_u16(h));
	f[0] = vreinterpretq_f32_u32(vbslq_u32(nan_lo, nb_lo, vreinterpretq_u32_f32(c_lo)));
	f[1] = vreinterpretq_f32_u32(vbslq_u32(nan_hi, nb_hi, vreinterpretq_u32_f32(c_hi)));
}

/* bf16 is the top half of a float. */
static inline float bf16_to_f32(uint16_t h)
{
	const uint32_t bits = (uint32_t)h << 16;
	float f;
	memcpy(&f, &bits, sizeof(f));
	return f;
}

/* f32 -> fp16 bits, round to nearest even (FCVT in the default FPCR mode,
 * which rounds as rvk_f32_to_f16 does, subnormal halves included). */
static inline uint16_t f32_to_f16(float f)
{
	return vget_lane_u16(vreinterpret_u16_f16(vcvt_f16_f32(vdupq_n_f32(f))), 0);
}

/* ---- float-weight dots: F32, F16, BF16 weights . f32 activations -------- */

enum fkind { FK_F32, FK_F16, FK_BF16 };

/* Weights i..i+15 of a row of kind k as 4 x 4 floats. */
NQ_INLINE void fk_load16(const void *w, int64_t i, const enum fkind k, float32x4_t v[4])
{
	if (k == FK_F32) {
		const float *p = (const float *)w + i;
		NQ_UNROLL
		for (int j = 0; j < 4; j++)
			v[j] = vld1q_f32(p + 4 * j);
		return;
	}
	const uint16_t *p = (const uint16_t *)w + i;
	NQ_UNROLL
	for (int j = 0; j < 2; j++) {
		const uint16x8_t h = vld1q_u16(p + 8 * j);
		if (k == FK_F16) {
			v[2 * j] = vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(h)));
			v[2 * j + 1] = vcvt_high_f32_f16(vreinterpretq_f16_u16(h));
		} else {
			v[2 * j] = vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h), 16));
			v[2 * j + 1] = vreinterpretq_f32_u32(vshll_high_n_u16(h, 16));
		}
	}
}

/* Weights i..i+3. */
NQ_INLINE float32x4_t fk_load4(const void *w, int64_t i, const enum fkind k)
{
	if (k == FK_F32)
		return vld1q_f32((const float *)w + i);
	const uint16x4_t h = vld1_u16((const uint16_t *)w + i);
	if (k == FK_F16)
		return vcvt_f32_f16(vreinterpret_f16_u16(h));
	return vreinterpretq_f32_u32(vshll_n_u16(h, 16));
}

/* Weight i. */
NQ_INLINE float fk_load1(const void *w, int64_t i, const enum fkind k)
{
	if (k == FK_F32)
		return ((const float *)w)[i];
	const uint16_t h = ((const uint16_t *)w)[i];
	return k == FK_F16 ? rvk_f16_to_f32(h) : bf16_to_f32(h);
}

/* w (n of kind k) . nr rows of a (n f32, a_stride bytes apart) ->
 * s[r * s_stride]. Per row: 16 float lanes (four accumulators, so four FMA
 * chains run at once) over the multiples of 16, the next multiples of 4
 * into the first accumulator, the last 0..3 in a scalar; then the lanes
 * are added in a fixed tree and the scalar last. The steps of a row do not
 * depend on nr. */
NQ_INLINE void fk_group(int64_t n, float *s, int64_t s_stride, const void *w, const void *a,
                        size_t a_stride, const int nr, const enum fkind k)
{
	float32x4_t acc[NQ_GROUP][4];
	float tail[NQ_GROUP];
	NQ_UNROLL
	for (int r = 0; r < nr; r++) {
		NQ_UNROLL
		for (int j = 0; j < 4; j++)
			acc[r][j] = vdupq_n_f32(0.0f);
		tail[r] = 0.0f;
	}
	int64_t i = 0;
	for (; i + 16 <= n; i += 16) {
		float32x4_t wv[4];
		fk_load16(w, i, k, wv);
		NQ_UNROLL
		for (int r = 0; r < nr; r++) {
			const float *ar = NQ_ROW(float, a, a_stride, r) + i;
			NQ_UNROLL
			for (int j = 0; j < 4; j++)
				acc[r][j] = vfmaq_f32(acc[r][j], wv[j], vld1q_f32(ar + 4 * j));
		}
	}
	for (; i + 4 <= n; i += 4) {
		const float32x4_t wv = fk_load4(w, i, k);
		NQ_UNROLL
		for (int r = 0; r < nr; r++)
			acc[r][0] =
			    vfmaq_f32(acc[r][0], wv, vld1q_f32(NQ_ROW(float, a, a_stride, r) + i));
	}
	for (; i < n; i++) {
		const float wi = fk_load1(w, i, k);
		NQ_UNROLL
		for (int r = 0; r < nr; r++)
			tail[r] = fmaf(wi, NQ_ROW(float, a, a_stride, r)[i], tail[r]);
	}
	NQ_UNROLL
	for (int r = 0; r < nr; r++) {
		const float32x4_t t =
		    vaddq_f32(vaddq_f32(acc[r][0], acc[r][1]), vaddq_f32(acc[r][2], acc[r][3]));
		s[r * s_stride] = vaddvq_f32(t) + tail[r];
	}
}

/* nrows rows in groups of NQ_GROUP, then one group of the rest. */
NQ_INLINE void fk_rows(int64_t n, float *s, int64_t s_stride, const void *w, const void *a,
                       size_t a_stride, int64_t nrows, const enum fkind k)
{
	const char *ar = a;
	for (; nrows >= NQ_GROUP; nrows -= NQ_GROUP) {
		fk_group(n, s, s_stride, w, ar, a_stride, NQ_GROUP, k);
		s += NQ_GROUP * s_stride;
		ar += NQ_GROUP * a_stride;
	}
	switch (nrows) {
	case 3:
		fk_group(n, s, s_stride, w, ar, a_stride, 3, k);
		break;
	case 2:
		fk_group(n, s, s_stride, w, ar, a_stride, 2, k);
		break;
	case 1:
		fk_group(n, s, s_stride, w, ar, a_stride, 1, k);
		break;
	default:
		break;
	}
}

// w (n f32) . a (n f32) -> s
static void vec_dot_f32(int64_t n, float *s, const void *w, const void *a)
{
	fk_group(n, s, 0, w, a, 0, 1, FK_F32);
}

// w (n f16) . a (n f32) -> s
static void vec_dot_f16(int64_t n, float *s, const void *w, const void *a)
{
	fk_group(n, s, 0, w, a, 0, 1, FK_F16);
}

// w (n bf16) . a (n f32) -> s
static void vec_dot_bf16(int64_t n, float *s, const void *w, const void *a)
{
	fk_group(n, s, 0, w, a, 0, 1, FK_BF16);
}

// w (n f32) . nrows rows of a (n f32) -> s[r * s_stride]
static void vec_dot_rows_f32(int64_t n, float *s, int64_t s_stride, const void *w, const void *a,
                             size_t a_stride, int64_t nrows)
{
	fk_rows(n, s, s_stride, w, a, a_stride, nrows, FK_F32);
}

// w (n f16) . nrows rows of a (n f32) -> s[r * s_stride]
static void vec_dot_rows_f16(int64_t n, float *s, int64_t s_stride, const void *w, const void *a,
                             size_t a_stride, int64_t nrows)
{
	fk_rows(n, s, s_stride, w, a, a_stride, nrows, FK_F16);
}

// w (n bf16) . nrows rows of a (n f32) -> s[r * s_stride]
static void vec_dot_rows_bf16(int64_t n, float *s, int64_t s_stride, const void *w, const void *a,
                              size_t a_stride, int64_t nrows)
{
	fk_rows(n, s, s_stride, w, a, a_stride, nrows, FK_BF16);
}

// a (n f32) . b (n f32) -> float
static float dot_f32(const float *a, const float *b, int64_t n)
{
	float s;
	fk_group(n, &s, 0, a, b, 0, 1, FK_F32);
	return s;
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
	int64_t i = 0;
	for (; i + 8 <= n; i += 8) {
		float32x4_t f[2];
		f16_to_f32_exact(vld1q_u16(h + i), f);
		vst1q_f32(y + i, f[0]);
		vst1q_f32(y + i + 4, f[1]);
	}
	for (; i < n; i++)
		y[i] = rvk_f16_to_f32(h[i]);
}

// x (n bf16) -> y (n)
static void dequant_bf16(const void *x, float *y, int64_t n)
{
	const uint16_t *h = x;
	int64_t i = 0;
	for (; i + 8 <= n; i += 8) {
		const uint16x8_t v = vld1q_u16(h + i);
		vst1q_f32(y + i, vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(v), 16)));
		vst1q_f32(y + i + 4, vreinterpretq_f32_u32(vshll_high_n_u16(v, 16)));
	}
	for (; i < n; i++)
		y[i] = bf16_to_f32(h[i]);
}

/* y[0..15] = (float)q * d */
static inline void store_scaled(float *y, int8x16_t q, float d)
{
	float32x4_t f[4];
	s8_to_f32(q, f);
	NQ_UNROLL
	for (int j = 0; j < 4; j++)
		vst1q_f32(y + 4 * j, vmulq_n_f32(f[j], d));
}

/* y[0..15] = d * (float)q - m, the product rounded before the difference */
static inline void store_affine(float *y, uint8x16_t q, float d, float m)
{
	float32x4_t f[4];
	u8_to_f32(q, f);
	const float32x4_t mv = vdupq_n_f32(m);
	NQ_UNROLL
	for (int j = 0; j < 4; j++)
		vst1q_f32(y + 4 * j, vsubq_f32(vmulq_n_f32(f[j], d), mv));
}

// x (n / 32 Q8_0 blocks) -> y (n)
static void dequant_q8_0(const void *x, float *y, int64_t n)
{
	const rv_block_q8_0 *b = x;
	for (int64_t ib = 0; ib < n / RV_QK8_0; ib++, y += RV_QK8_0) {
		const float d = rvk_f16_to_f32(b[ib].d);
		store_scaled(y, vld1q_s8(b[ib].qs), d);
		store_scaled(y + 16, vld1q_s8(b[ib].qs + 16), d);
	}
}

// x (n / 32 Q4_0 blocks) -> y (n)
static void dequant_q4_0(const void *x, float *y, int64_t n)
{
	const rv_block_q4_0 *b = x;
	const int8x16_t eight = vdupq_n_s8(8);
	for (int64_t ib = 0; ib < n / RV_QK4_0; ib++, y += RV_QK4_0) {
		const float d = rvk_f16_to_f32(b[ib].d);
		const uint8x16_t q = vld1q_u8(b[ib].qs);
		/* low nibbles are weights 0..15, high nibbles 16..31 */
		store_scaled(y, vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0x0f))), eight),
		             d);
		store_scaled(y + 16, vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(q, 4)), eight), d);
	}
}

// x (n / 256 Q4_K blocks) -> y (n)
static void dequant_q4_K(const void *x, float *y, int64_t n)
{
	const rv_block_q4_K *b = x;
	const uint8x16_t m4 = vdupq_n_u8(0x0f);
	for (int64_t ib = 0; ib < n / RV_QK_K; ib++) {
		const float d = rvk_f16_to_f32(b[ib].d);
		const float dmin = rvk_f16_to_f32(b[ib].dmin);
		uint8_t sc[8], mn[8];
		nq_k4_scales_mins(b[ib].scales, sc, mn);
		for (int g = 0; g < 4; g++, y += 64) {
			/* 32 bytes: sub-block 2g in the low nibbles, 2g+1 in the high */
			const float d_lo = d * sc[2 * g], m_lo = dmin * mn[2 * g];
			const float d_hi = d * sc[2 * g + 1], m_hi = dmin * mn[2 * g + 1];
			const uint8x16_t q0 = vld1q_u8(b[ib].qs + 32 * g);
			const uint8x16_t q1 = vld1q_u8(b[ib].qs + 32 * g + 16);
			store_affine(y, vandq_u8(q0, m4), d_lo, m_lo);
			store_affine(y + 16, vandq_u8(q1, m4), d_lo, m_lo);
			store_affine(y + 32, vshrq_n_u8(q0, 4), d_hi, m_hi);
			store_affine(y + 48, vshrq_n_u8(q1, 4), d_hi, m_hi);
		}
	}
}

// x (n / 256 Q5_K blocks) -> y (n)
static void dequant_q5_K(const void *x, float *y, int64_t n)
{
	const rv_block_q5_K *b = x;
	const uint8x16_t m4 = vdupq_n_u8(0x0f), bit0 = vdupq_n_u8(1), bit1 = vdupq_n_u8(2);
	for (int64_t ib = 0; ib < n / RV_QK_K; ib++) {
		const float d = rvk_f16_to_f32(b[ib].d);
		const float dmin = rvk_f16_to_f32(b[ib].dmin);
		uint8_t sc[8], mn[8];
		nq_k4_scales_mins(b[ib].scales, sc, mn);
		/* fifth bits as in nq_group_q5_K: bits 0 and 1 of h for group g */
		uint8x16_t h0 = vld1q_u8(b[ib].qh), h1 = vld1q_u8(b[ib].qh + 16);
		for (int g = 0; g < 4; g++, y += 64) {
			const float d_lo = d * sc[2 * g], m_lo = dmin * mn[2 * g];
			const float d_hi = d * sc[2 * g + 1], m_hi = dmin * mn[2 * g + 1];
			const uint8x16_t q0 = vld1q_u8(b[ib].qs + 32 * g);
			const uint8x16_t q1 = vld1q_u8(b[ib].qs + 32 * g + 16);
			store_affine(y,
			             vorrq_u8(vandq_u8(q0, m4), vshlq_n_u8(vandq_u8(h0, bit0), 4)),
			             d_lo, m_lo);
			store_affine(y + 16,
			             vorrq_u8(vandq_u8(q1, m4), vshlq_n_u8(vandq_u8(h1, bit0), 4)),
			             d_lo, m_lo);
			store_affine(y + 32,
			             vorrq_u8(vshrq_n_u8(q0, 4), vshlq_n_u8(vandq_u8(h0, bit1), 3)),
			             d_hi, m_hi);
			store_affine(y + 48,
			             vorrq_u8(vshrq_n_u8(q1, 4), vshlq_n_u8(vandq_u8(h1, bit1), 3)),
			             d_hi, m_hi);
			h0 = vshrq_n_u8(h0, 2);
			h1 = vshrq_n_u8(h1, 2);
		}
	}
}

// x (n / 256 Q6_K blocks) -> y (n)
static void dequant_q6_K(const void *x, float *y, int64_t n)
{
	const rv_block_q6_K *b = x;
	for (int64_t ib = 0; ib < n / RV_QK_K; ib++) {
		const float d = rvk_f16_to_f32(b[ib].d);
		for (int h = 0; h < 2; h++) {
			int8x16_t q[8];
			nq_q6_K_half(b[ib].ql + 64 * h, b[ib].qh + 32 * h, q);
			/* scalar.c: d * scale * q, left to right */
			NQ_UNROLL
			for (int k = 0; k < 8; k++, y += 16)
				store_scaled(y, q[k], d * (float)b[ib].scales[8 * h + k]);
		}
	}
}

// x (n / 256 Q8_K blocks) -> y (n): activations only; for tests and debugging
static void dequant_q8_K(const void *x, float *y, int64_t n)
{
	const rv_block_q8_K *b = x;
	for (int64_t ib = 0; ib < n / RV_QK_K; ib++)
		for (int j = 0; j < RV_QK_K; j += 16, y += 16)
			store_scaled(y, vld1q_s8(b[ib].qs + j), b[ib].d);
}

/* ---- quantization of activations: x (n floats) -> y (n / block blocks) --- */

/* 16 int32 (each in int8 range) -> 16 int8, by truncation as a C cast. */
static inline int8x16_t narrow_s32(const int32x4_t v[4])
{
	const int16x8_t lo = vcombine_s16(vmovn_s32(v[0]), vmovn_s32(v[1]));
	const int16x8_t hi = vcombine_s16(vmovn_s32(v[2]), vmovn_s32(v[3]));
	return vcombine_s8(vmovn_s16(lo), vmovn_s16(hi));
}

/* 4 quants: v rounded to nearest, ties to even, or 0 where v is NaN or
 * inf, as scalar.c defines it (FCVTNS alone would give 0 for NaN but
 * saturate inf to INT32_MAX/MIN, whose low byte is not 0). */
static inline int32x4_t round_finite(float32x4_t v)
{
	const uint32x4_t finite = vcltq_f32(vabsq_f32(v), vdupq_n_f32(INFINITY));
	return vandq_s32(vcvtnq_s32_f32(v), vreinterpretq_s32_u32(finite));
}

/* Q8_0, as scalar.c: d = amax / 127 stored as fp16, q = x * (127 / amax)
 * rounded to nearest, ties to even, non-finite products (NaN or inf
 * inputs, or an id that overflowed for a denormal block) 0. FMAXNM
 * ignores NaN as fmaxf does. */
// x (n) -> y (n / 32 Q8_0 blocks)
static void quant_q8_0(const float *x, void *vy, int64_t n)
{
	rv_block_q8_0 *y = vy;
	for (int64_t ib = 0; ib < n / RV_QK8_0; ib++, x += RV_QK8_0) {
		float32x4_t v[8];
		float32x4_t m = vdupq_n_f32(0.0f);
		NQ_UNROLL
		for (int j = 0; j < 8; j++) {
			v[j] = vld1q_f32(x + 4 * j);
			m = vmaxnmq_f32(m, vabsq_f32(v[j]));
		}
		const float amax = vmaxnmvq_f32(m);
		const float d = amax / 127.0f;
		const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
		y[ib].d = f32_to_f16(d);
		NQ_UNROLL
		for (int h = 0; h < 2; h++) {
			int32x4_t q[4];
			NQ_UNROLL
			for (int j = 0; j < 4; j++)
				q[j] = round_finite(vmulq_n_f32(v[4 * h + j], id));
			vst1q_s8(y[ib].qs + 16 * h, narrow_s32(q));
		}
	}
}

/* Q8_K, as scalar.c: max is the first element of the largest magnitude,
 * iscale = -127 / max, q = iscale * x rounded to nearest even (0 when not
 * finite, as in Q8_0), clamped to 127, d = 1 / iscale, and the sums of
 * each 16 quants. */
// x (n) -> y (n / 256 Q8_K blocks)
static void quant_q8_K(const float *x, void *vy, int64_t n)
{
	rv_block_q8_K *y = vy;
	for (int64_t ib = 0; ib < n / RV_QK_K; ib++, x += RV_QK_K) {
		float32x4_t m = vdupq_n_f32(0.0f);
		for (int j = 0; j < RV_QK_K; j += 4)
			m = vmaxnmq_f32(m, vabsq_f32(vld1q_f32(x + j)));
		const float amax = vmaxnmvq_f32(m);
		if (amax == 0.0f) {
			memset(&y[ib], 0, sizeof(y[ib]));
			continue;
		}
		/* the first element with that magnitude (scalar.c's strict '>'
		 * scan keeps the first): find its group of 4, then the lane */
		int j = 0;
		const float32x4_t av = vdupq_n_f32(amax);
		while (vmaxvq_u32(vceqq_f32(vabsq_f32(vld1q_f32(x + j)), av)) == 0)
			j += 4;
		while (fabsf(x[j]) != amax)
			j++;
		const float iscale = -127.0f / x[j];
		const int32x4_t q_max = vdupq_n_s32(127);
		for (int k = 0; k < RV_QK_K / 16; k++) {
			int32x4_t q[4];
			NQ_UNROLL
			for (int l = 0; l < 4; l++) {
				const float32x4_t v = vld1q_f32(x + 16 * k + 4 * l);
				q[l] = vminq_s32(round_finite(vmulq_n_f32(v, iscale)), q_max);
			}
			const int8x16_t q8 = narrow_s32(q);
			vst1q_s8(y[ib].qs + 16 * k, q8);
			y[ib].bsums[k] = vaddlvq_s8(q8);
		}
		y[ib].d = 1.0f / iscale;
	}
}

/* ---- f32 helpers -------------------------------------------------------- */

/* e^x in 4 lanes, within a few ulp over the whole float range: exactly 0
 * for x <= -110 (and -inf), inf past 88.73, NaN for NaN.
 * x = n ln2 + r with n = nearest(x / ln2), |r| <= ln2 / 2; ln2 is split in
 * two (the high part has 9 significant bits, so n * ln2_hi is exact for
 * the |n| <= 159 that occur) so r keeps its low bits. e^r is its Taylor
 * polynomial to degree 6 (truncation under 1.2e-7 relative at |r| = ln2/2).
 * 2^n is applied as two factors 2^(n/2), 2^(n - n/2), each a normal float,
 * so results that overflow or become subnormal are rounded once, at the
 * last product. */
static inline float32x4_t expf4(float32x4_t x)
{
	/* FMAX/FMIN pass NaN through */
	x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-110.0f)), vdupq_n_f32(89.0f));
	const float32x4_t nf = vrndnq_f32(vmulq_n_f32(x, 1.44269504088896341f));
	float32x4_t r = vfmsq_f32(x, nf, vdupq_n_f32(0.693359375f));
	r = vfmsq_f32(r, nf, vdupq_n_f32(-2.12194440054690583e-4f));
	float32x4_t p = vdupq_n_f32(1.0f / 720.0f);
	p = vfmaq_f32(vdupq_n_f32(1.0f / 120.0f), p, r);
	p = vfmaq_f32(vdupq_n_f32(1.0f / 24.0f), p, r);
	p = vfmaq_f32(vdupq_n_f32(1.0f / 6.0f), p, r);
	p = vfmaq_f32(vdupq_n_f32(0.5f), p, r);
	p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
	p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
	const int32x4_t ni = vcvtq_s32_f32(nf); /* -159..129, NaN gives 0 */
	const int32x4_t n1 = vshrq_n_s32(ni, 1);
	const int32x4_t n2 = vsubq_s32(ni, n1);
	const int32x4_t bias = vdupq_n_s32(127);
	const float32x4_t s1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n1, bias), 23));
	const float32x4_t s2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n2, bias), 23));
	return vmulq_f32(vmulq_f32(p, s1), s2);
}

/* o (n) = x (n) / rms(x) * w (n). Squares are exact in double and summed
 * in 4 double lanes; then scalar.c's float steps: o = (x * scale) * w. */
static void rmsnorm(float *o, const float *x, const float *w, int64_t n, float eps)
{
	float64x2_t acc[4] = {vdupq_n_f64(0.0), vdupq_n_f64(0.0), vdupq_n_f64(0.0),
	                      vdupq_n_f64(0.0)};
	int64_t i = 0;
	for (; i + 8 <= n; i += 8) {
		const float32x4_t a = vld1q_f32(x + i), b = vld1q_f32(x + i + 4);
		const float64x2_t a0 = vcvt_f64_f32(vget_low_f32(a)), a1 = vcvt_high_f64_f32(a);
		const float64x2_t b0 = vcvt_f64_f32(vget_low_f32(b)), b1 = vcvt_high_f64_f32(b);
		acc[0] = vfmaq_f64(acc[0], a0, a0);
		acc[1] = vfmaq_f64(acc[1], a1, a1);
		acc[2] = vfmaq_f64(acc[2], b0, b0);
		acc[3] = vfmaq_f64(acc[3], b1, b1);
	}
	double ss = vaddvq_f64(vaddq_f64(vaddq_f64(acc[0], acc[1]), vaddq_f64(acc[2], acc[3])));
	for (; i < n; i++)
		ss += (double)x[i] * x[i];
	const float mean = n > 0 ? (float)(ss / (double)n) : 0.0f;
	const float scale = 1.0f / sqrtf(mean + eps);
	for (i = 0; i + 4 <= n; i += 4)
		vst1q_f32(o + i, vmulq_f32(vmulq_n_f32(vld1q_f32(x + i), scale), vld1q_f32(w + i)));
	for (; i < n; i++)
		o[i] = (x[i] * scale) * w[i];
}

/* x (n) = softmax(x) in place: max subtracted, sum in double (as scalar.c).
 * The last 0..3 entries go through expf4 too, padded with -inf (e^-inf = 0),
 * so every entry gets the same e^x. */
static void softmax(float *x, int64_t n)
{
	if (n <= 0)
		return;
	float max = x[0];
	int64_t i = 0;
	if (n >= 4) {
		float32x4_t m = vld1q_f32(x);
		for (i = 4; i + 4 <= n; i += 4)
			m = vmaxq_f32(m, vld1q_f32(x + i));
		max = vmaxvq_f32(m);
	}
	for (; i < n; i++)
		max = x[i] > max ? x[i] : max;

	const float32x4_t mv = vdupq_n_f32(max);
	float64x2_t acc0 = vdupq_n_f64(0.0), acc1 = vdupq_n_f64(0.0);
	for (i = 0; i + 4 <= n; i += 4) {
		const float32x4_t e = expf4(vsubq_f32(vld1q_f32(x + i), mv));
		vst1q_f32(x + i, e);
		acc0 = vaddq_f64(acc0, vcvt_f64_f32(vget_low_f32(e)));
		acc1 = vaddq_f64(acc1, vcvt_high_f64_f32(e));
	}
	double sum = vaddvq_f64(vaddq_f64(acc0, acc1));
	if (i < n) {
		float t[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
		memcpy(t, x + i, (size_t)(n - i) * sizeof(float));
		vst1q_f32(t, expf4(vsubq_f32(vld1q_f32(t), mv)));
		for (int64_t j = 0; i + j < n; j++) {
			x[i + j] = t[j];
			sum += t[j];
		}
	}
	const float inv = (float)(1.0 / sum);
	const float32x4_t tiny = vdupq_n_f32(FLT_MIN), zero = vdupq_n_f32(0.0f);
	for (i = 0; i + 4 <= n; i += 4) {
		const float32x4_t y = vmulq_n_f32(vld1q_f32(x + i), inv);
		vst1q_f32(x + i, vbslq_f32(vcltq_f32(y, tiny), zero, y));
	}
	for (; i < n; i++) {
		x[i] *= inv;
		x[i] = x[i] < FLT_MIN ? 0.0f : x[i];
	}
}

/* silu(g) * u = g / (1 + e^-g) * u for 4 lanes; e^-g = inf for very
 * negative g gives -0, the right limit. */
static inline float32x4_t swiglu4(float32x4_t g, float32x4_t u)
{
	const float32x4_t den = vaddq_f32(vdupq_n_f32(1.0f), expf4(vnegq_f32(g)));
	return vmulq_f32(vdivq_f32(g, den), u);
}

// g (n) = silu(g) * u (n)
static void swiglu(float *g, const float *u, int64_t n)
{
	int64_t i = 0;
	for (; i + 4 <= n; i += 4)
		vst1q_f32(g + i, swiglu4(vld1q_f32(g + i), vld1q_f32(u + i)));
	if (i < n) {
		/* the last 0..3 through the same vector code */
		float tg[4] = {0}, tu[4] = {0};
		memcpy(tg, g + i, (size_t)(n - i) * sizeof(float));
		memcpy(tu, u + i, (size_t)(n - i) * sizeof(float));
		vst1q_f32(tg, swiglu4(vld1q_f32(tg), vld1q_f32(tu)));
		memcpy(g + i, tg, (size_t)(n - i) * sizeof(float));
	}
}

// y (n) += a * x (n), one rounding per element (FMA)
static void axpy(float *y, float a, const float *x, int64_t n)
{
	int64_t i = 0;
	for (; i + 16 <= n; i += 16)
		for (int j = 0; j < 16; j += 4)
			vst1q_f32(y + i + j,
			          vfmaq_n_f32(vld1q_f32(y + i + j), vld1q_f32(x + i + j), a));
	for (; i + 4 <= n; i += 4)
		vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), a));
	for (; i < n; i++)
		y[i] = fmaf(a, x[i], y[i]);
}

// attention scores and values: dot_f32 and axpy over rows
RVK_ATTN_FROM_DOT_AXPY(dot_f32, axpy)

/* ---- activations, bias and RoPE of the model recipes -------------------- */

enum { ACT_SILU, ACT_QUICK, ACT_TANH };

/* x / (1 + e^-k) on 4 floats: k = x (SiLU), 1.702 x (quick-GELU), or
 * 2 sqrt(2/pi) (x + 0.044715 x^3) for GELU-tanh, as (1 + tanh(u)) / 2 =
 * sigmoid(2u). Within the tolerance of scalar.c's. */
static inline float32x4_t act4(const int kind, float32x4_t x)
{
	float32x4_t k = x;
	if (kind == ACT_QUICK)
		k = vmulq_n_f32(x, 1.702f);
	if (kind == ACT_TANH)
		k = vmulq_n_f32(vfmaq_f32(x, vmulq_n_f32(vmulq_f32(x, x), 0.044715f), x),
		                1.5957691216f);
	return vdivq_f32(x, vaddq_f32(vdupq_n_f32(1.0f), expf4(vnegq_f32(k))));
}

static inline void act_row(const int kind, float *x, int64_t n)
{
	int64_t i = 0;
	for (; i + 4 <= n; i += 4)
		vst1q_f32(x + i, act4(kind, vld1q_f32(x + i)));
	if (i < n) {
		float t[4] = {0};
		memcpy(t, x + i, (size_t)(n - i) * sizeof(float));
		vst1q_f32(t, act4(kind, vld1q_f32(t)));
		memcpy(x + i, t, (size_t)(n - i) * sizeof(float));
	}
}

// x (n) = act(x) in place
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
		for (; i + 4 <= n; i += 4)
			vst1q_f32(y + i, vaddq_f32(vld1q_f32(y + i), vld1q_f32(b + i)));
		for (; i < n; i++)
			y[i] += b[i];
	}
}

/* RoPE with scalar.c's operations (a c - b s, a s + b c, no fused
 * multiply-add): the same bits. vld2 takes pairs apart (a and b for the
 * adjacent layout, cos and sin for both). */
static inline void rotate4(float32x4_t a, float32x4_t b, float32x4x2_t r, float32x4_t *oa,
                           float32x4_t *ob)
{
	*oa = vsubq_f32(vmulq_f32(a, r.val[0]), vmulq_f32(b, r.val[1]));
	*ob = vaddq_f32(vmulq_f32(a, r.val[1]), vmulq_f32(b, r.val[0]));
}

static void rope(float *x, int64_t n_heads, int64_t head_dim, int64_t n_rot, const float *cs)
{
	for (int64_t h = 0; h < n_heads; h++) {
		float *v = x + h * head_dim;
		int64_t i = 0;
		for (; i + 8 <= n_rot; i += 8) {
			float32x4x2_t ab = vld2q_f32(v + i);
			rotate4(ab.val[0], ab.val[1], vld2q_f32(cs + i), &ab.val[0], &ab.val[1]);
			vst2q_f32(v + i, ab);
		}
		for (; i < n_rot; i += 2)
			rvk_rope_pair(&v[i], &v[i + 1], cs[i], cs[i + 1]);
	}
}

static void rope_neox(float *x, int64_t n_heads, int64_t head_dim, int64_t n_rot, const float *cs)
{
	const int64_t half = n_rot / 2;
	for (int64_t h = 0; h < n_heads; h++) {
		float *v = x + h * head_dim;
		int64_t i = 0;
		for (; i + 4 <= half; i += 4) {
			float32x4_t a, b;
			rotate4(vld1q_f32(v + i), vld1q_f32(v + i + half), vld2q_f32(cs + 2 * i),
			        &a, &b);
			vst1q_f32(v + i, a);
			vst1q_f32(v + i + half, b);
		}
		for (; i < half; i++)
			rvk_rope_pair(&v[i], &v[i + half], cs[2 * i], cs[2 * i + 1]);
	}
}

/* ---- the table ---------------------------------------------------------- */

void rvk_neon_fill(rvk_table *t)
{
	t->name = "neon";
#define RVK_neon(entry, function) t->entry = function;
#include "simd/kernel_entries.h"
}
