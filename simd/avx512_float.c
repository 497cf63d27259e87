/* avx512_float.c: AVX-512 kernels whose work is on floats: dequantization
 * (the same floats as scalar.c), the f32 helpers of the forward passes
 * (rmsnorm, softmax, swiglu, axpy) and attention (scores and values), and
 * the norms, activations, bias and RoPE of the model recipes. */
#include "simd/avx512_common.h"

/* ---- dequantization: the same floats as scalar.c ------------------------- */

// x (n f32) -> y (n)
void rvk_avx512_dequant_f32(const void *x, float *y, int64_t n)
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
void rvk_avx512_dequant_f16(const void *x, float *y, int64_t n)
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
void rvk_avx512_dequant_bf16(const void *x, float *y, int64_t n)
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
void rvk_avx512_dequant_q8_0(const void *x, float *y, int64_t n)
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
void rvk_avx512_dequant_q4_0(const void *x, float *y, int64_t n)
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
void rvk_avx512_dequant_q4_K(const void *x, float *y, int64_t n)
{
	dequant_k45(0, x, y, n);
}

// x (n / 256 Q5_K blocks) -> y (n)
void rvk_avx512_dequant_q5_K(const void *x, float *y, int64_t n)
{
	dequant_k45(1, x, y, n);
}

// x (n / 256 Q6_K blocks) -> y (n): y = (d * scale) * (q - 32), per 16
void rvk_avx512_dequant_q6_K(const void *x, float *y, int64_t n)
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
void rvk_avx512_dequant_q8_K(const void *x, float *y, int64_t n)
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
/* The weight of rmsnorm (w) or rmsnorm_1p (1 + w). */
static ALWAYS_INLINE __m512 weight(const int plus1, __m512 one, __m512 w)
{
	return plus1 ? _mm512_add_ps(one, w) : w;
}

static ALWAYS_INLINE void rmsnorm_body(const int plus1, float *o, const float *x, const float *w,
                                       int64_t n, float eps)
{
	const __m512 one = _mm512_set1_ps(1.0f);
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
		                                      weight(plus1, one, _mm512_loadu_ps(w + i))));
	if (i < n) {
		const __mmask16 m = mask16(n - i);
		_mm512_mask_storeu_ps(
		    o + i, m,
		    _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), scale),
		                  weight(plus1, one, _mm512_maskz_loadu_ps(m, w + i))));
	}
}

void rvk_avx512_rmsnorm(float *o, const float *x, const float *w, int64_t n, float eps)
{
	rmsnorm_body(0, o, x, w, n, eps);
}

// o (n) = (x * scale) * (1 + w), as scalar.c
void rvk_avx512_rmsnorm_1p(float *o, const float *x, const float *w, int64_t n, float eps)
{
	rmsnorm_body(1, o, x, w, n, eps);
}

/* x (n) = softmax(x) in place: max, e^(x - max) with the sum in double
 * (8 + 8 lanes), then times 1 / sum. -inf entries become exactly 0. Runs
 * with subnormals flushed (rvk_ftz_begin): what would be one is 0. */
void rvk_avx512_softmax(float *x, int64_t n)
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
void rvk_avx512_swiglu(float *g, const float *u, int64_t n)
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
void rvk_avx512_axpy(float *y, float a, const float *x, int64_t n)
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
RVK_ATTN_FROM_DOT_AXPY(rvk_avx512_dot_f32, rvk_avx512_axpy)

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

void rvk_avx512_attn_scores(float *att, int64_t att_stride, const float *q, int64_t q_stride,
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

void rvk_avx512_attn_values(float *out, int64_t out_stride, const float *att, int64_t att_stride,
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

/* ---- norms, activations, bias and RoPE of the model recipes ------------- */

/* o (n) = (x - mean) / sqrt(var + eps) * w + b: mean and variance summed in
 * double lanes (another order than scalar.c's, within its tolerance), each
 * output as scalar.c computes it: in double to the float, then * w + b. o
 * may be x: the output pass comes after both sums. */
void rvk_avx512_layernorm(float *o, const float *x, const float *w, const float *b, int64_t n,
                          float eps)
{
	__m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
	for (int64_t i = 0; i < n; i += 16) {
		const __m512 v = _mm512_maskz_loadu_ps(n - i >= 16 ? 0xffff : mask16(n - i), x + i);
		s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
		s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(hi256(v)));
	}
	const __m512d mean =
	    _mm512_set1_pd(_mm512_reduce_add_pd(_mm512_add_pd(s0, s1)) / (double)n);
	s0 = _mm512_setzero_pd();
	s1 = _mm512_setzero_pd();
	for (int64_t i = 0; i < n; i += 16) {
		const __mmask16 m = n - i >= 16 ? 0xffff : mask16(n - i);
		const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
		const __m512d d0 = _mm512_maskz_sub_pd(
		    (__mmask8)m, _mm512_cvtps_pd(_mm512_castps512_ps256(v)), mean);
		const __m512d d1 =
		    _mm512_maskz_sub_pd((__mmask8)(m >> 8), _mm512_cvtps_pd(hi256(v)), mean);
		s0 = _mm512_fmadd_pd(d0, d0, s0);
		s1 = _mm512_fmadd_pd(d1, d1, s1);
	}
	const double var = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
	const __m512d inv = _mm512_set1_pd(1.0 / sqrt(var / (double)n + (double)eps));
	for (int64_t i = 0; i < n; i += 16) {
		const __mmask16 m = n - i >= 16 ? 0xffff : mask16(n - i);
		const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
		const __m256 lo = _mm512_cvtpd_ps(_mm512_mul_pd(
		    _mm512_sub_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(v)), mean), inv));
		const __m256 hi = _mm512_cvtpd_ps(
		    _mm512_mul_pd(_mm512_sub_pd(_mm512_cvtps_pd(hi256(v)), mean), inv));
		const __m512 t = _mm512_castpd_ps(_mm512_insertf64x4(
		    _mm512_castps_pd(_mm512_castps256_ps512(lo)), _mm256_castps_pd(hi), 1));
		_mm512_mask_storeu_ps(
		    o + i, m,
		    _mm512_add_ps(_mm512_mul_ps(t, _mm512_maskz_loadu_ps(m, w + i)),
		                  _mm512_maskz_loadu_ps(m, b + i)));
	}
}

enum { ACT_SILU, ACT_QUICK, ACT_TANH, ACT_ERF };

/* One activation on 16 floats. The sigmoid ones as x / (1 + e^(-k)), k = x,
 * 1.702 x, or for GELU-tanh 2 sqrt(2/pi) (x + 0.044715 x^3), since (1 +
 * tanh(u)) / 2 = sigmoid(2u). GELU-erf as x Phi(x), Phi(x) = erfc(-x /
 * sqrt 2) / 2, with erfc(z) for z >= 0 from the Chebyshev fit t e^(-z^2 +
 * P(t)), t = 1 / (1 + z/2) (Numerical Recipes' erfcc, relative error under
 * 1.2e-7), and erfc(-z) = 2 - erfc(z): relative accuracy in both tails. */
static ALWAYS_INLINE __m512 act16(const int kind, __m512 x)
{
	const __m512 one = _mm512_set1_ps(1.0f);
	if (kind == ACT_ERF) {
		const __m512 z = _mm512_mul_ps(_mm512_abs_ps(x), _mm512_set1_ps(0.70710678f));
		const __m512 t = _mm512_div_ps(one, _mm512_fmadd_ps(_mm512_set1_ps(0.5f), z, one));
		static const float c[10] = {0.17087277f, -0.82215223f, 1.48851587f, -1.13520398f,
		                            0.27886807f, -0.18628806f, 0.09678418f, 0.37409196f,
		                            1.00002368f, -1.26551223f};
		__m512 p = _mm512_set1_ps(c[0]);
		for (int k = 1; k < 10; k++)
			p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(c[k]));
		const __m512 half_erfc = _mm512_mul_ps(
		    _mm512_set1_ps(0.5f), _mm512_mul_ps(t, exp512(_mm512_fnmadd_ps(z, z, p))));
		/* Phi(x) = erfc(z)/2 for x < 0, 1 - erfc(z)/2 for x >= 0 */
		const __mmask16 pos = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ);
		const __m512 phi = _mm512_mask_sub_ps(half_erfc, pos, one, half_erfc);
		return _mm512_mul_ps(x, phi);
	}
	__m512 k = x;
	if (kind == ACT_QUICK)
		k = _mm512_mul_ps(_mm512_set1_ps(1.702f), x);
	if (kind == ACT_TANH) {
		const __m512 x3 = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
		k = _mm512_mul_ps(_mm512_set1_ps(1.5957691216f),
		                  _mm512_fmadd_ps(_mm512_set1_ps(0.044715f), x3, x));
	}
	return _mm512_div_ps(x, _mm512_add_ps(one, exp512(_mm512_sub_ps(_mm512_setzero_ps(), k))));
}

static ALWAYS_INLINE void act_row(const int kind, float *x, int64_t n)
{
	for (int64_t i = 0; i < n; i += 16) {
		const __mmask16 m = n - i >= 16 ? 0xffff : mask16(n - i);
		_mm512_mask_storeu_ps(x + i, m, act16(kind, _mm512_maskz_loadu_ps(m, x + i)));
	}
}

// x (n) = act(x) in place, each within the tolerance of scalar.c's
void rvk_avx512_gelu_erf(float *x, int64_t n)
{
	act_row(ACT_ERF, x, n);
}

void rvk_avx512_gelu_tanh(float *x, int64_t n)
{
	act_row(ACT_TANH, x, n);
}

void rvk_avx512_gelu_quick(float *x, int64_t n)
{
	act_row(ACT_QUICK, x, n);
}

void rvk_avx512_silu(float *x, int64_t n)
{
	act_row(ACT_SILU, x, n);
}

// y (rows, n) += b (n): the scalar bits
void rvk_avx512_add_bias(float *y, const float *b, int64_t rows, int64_t n)
{
	for (int64_t t = 0; t < rows; t++, y += n)
		for (int64_t i = 0; i < n; i += 16) {
			const __mmask16 m = n - i >= 16 ? 0xffff : mask16(n - i);
			_mm512_mask_storeu_ps(y + i, m,
			                      _mm512_add_ps(_mm512_maskz_loadu_ps(m, y + i),
			                                    _mm512_maskz_loadu_ps(m, b + i)));
		}
}

/* RoPE with scalar.c's operations (a c - b s, a s + b c, no FMA): the
 * same bits. Adjacent pairs: x and cs line up element for element, so 8
 * pairs are [a b ...] * [c c ...] plus [b a ...] * [s s ...] with the sign
 * of the even products flipped. */
void rvk_avx512_rope(float *x, int64_t n_heads, int64_t head_dim, int64_t n_rot, const float *cs)
{
	const __m512i even_sign = _mm512_set1_epi64(0x80000000);
	for (int64_t h = 0; h < n_heads; h++) {
		float *v = x + h * head_dim;
		for (int64_t i = 0; i < n_rot; i += 16) {
			const __mmask16 m = n_rot - i >= 16 ? 0xffff : mask16(n_rot - i);
			const __m512 ab = _mm512_maskz_loadu_ps(m, v + i);
			const __m512 r = _mm512_maskz_loadu_ps(m, cs + i);
			const __m512 c = _mm512_moveldup_ps(r), s = _mm512_movehdup_ps(r);
			const __m512 ba = _mm512_permute_ps(ab, 0xb1);
			_mm512_mask_storeu_ps(
			    v + i, m,
			    _mm512_add_ps(
			        _mm512_mul_ps(ab, c),
			        _mm512_castsi512_ps(_mm512_xor_si512(
			            _mm512_castps_si512(_mm512_mul_ps(ba, s)), even_sign))));
		}
	}
}

/* Half-split pairs: 16 pairs a vector, cos and sin taken apart from 32
 * floats of cs. */
void rvk_avx512_rope_neox(float *x, int64_t n_heads, int64_t head_dim, int64_t n_rot,
                          const float *cs)
{
	const int64_t half = n_rot / 2;
	const __m512i even =
	    _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
	const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
	for (int64_t h = 0; h < n_heads; h++) {
		float *v = x + h * head_dim;
		for (int64_t i = 0; i < half; i += 16) {
			const int64_t left = half - i;
			const __mmask16 m = left >= 16 ? 0xffff : mask16(left);
			const __mmask16 m0 = left >= 8 ? 0xffff : mask16(2 * left);
			const __mmask16 m1 = left >= 16 ? 0xffff
			                     : left > 8 ? mask16(2 * left - 16)
			                                : 0;
			const __m512 r0 = _mm512_maskz_loadu_ps(m0, cs + 2 * i);
			const __m512 r1 = _mm512_maskz_loadu_ps(m1, cs + 2 * i + 16);
			const __m512 c = _mm512_permutex2var_ps(r0, even, r1);
			const __m512 s = _mm512_permutex2var_ps(r0, odd, r1);
			const __m512 a = _mm512_maskz_loadu_ps(m, v + i);
			const __m512 b = _mm512_maskz_loadu_ps(m, v + i + half);
			_mm512_mask_storeu_ps(
			    v + i, m, _mm512_sub_ps(_mm512_mul_ps(a, c), _mm512_mul_ps(b, s)));
			_mm512_mask_storeu_ps(
			    v + i + half, m,
			    _mm512_add_ps(_mm512_mul_ps(a, s), _mm512_mul_ps(b, c)));
		}
	}
}
