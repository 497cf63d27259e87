/* avx512_prep.c: AVX-512 kernels that make activation rows ready for the
 * dot products of avx512_dot.c: quantization of f32 rows to Q8_0 and Q8_K
 * (the same bytes as scalar.c), and the prepared layouts of vec_dot_prep
 * (prep_size and prep of Q8_0, Q4_0, Q4_K, Q5_K, Q6_K and F16; the layouts
 * are described in avx512_common.h). */
#include "simd/avx512_common.h"

/* ---- Q8_K blocks prepared for Q5_K (avx512_common.h) --------------------- */

size_t rvk_avx512_prep_size_kq(int64_t n)
{
	return (size_t)(n / RV_QK_K) * KP_SZ;
}

/* Q8_K blocks -> prepared ones (see KP_SZ). */
void rvk_avx512_prep_kq(int64_t n, const void *a, void *p)
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

/* ---- Q8_0 pairs (avx512_common.h) ---------------------------------------- */

size_t rvk_avx512_prep_size_q8_0(int64_t n)
{
	return (size_t)((n / 32 + 1) / 2) * QP_BYTES;
}

void rvk_avx512_prep_q8_0(int64_t n, const void *a, void *p)
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

/* ---- Q4_0, Q6_K and Q4_K stripes (avx512_common.h) ----------------------- */

size_t rvk_avx512_prep_size_q4_0(int64_t n)
{
	return (size_t)st_count(ST_Q4_0, n) * st_pbytes(ST_Q4_0);
}

size_t rvk_avx512_prep_size_q6_K(int64_t n)
{
	return (size_t)st_count(ST_Q6_K, n) * st_pbytes(ST_Q6_K);
}

size_t rvk_avx512_prep_size_q4_K(int64_t n)
{
	return (size_t)st_count(ST_Q4_K, n) * st_pbytes(ST_Q4_K);
}

void rvk_avx512_prep_q4_0(int64_t n, const void *a, void *p)
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
void rvk_avx512_prep_q6_K(int64_t n, const void *a, void *p)
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
void rvk_avx512_prep_q4_K(int64_t n, const void *a, void *p)
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

/* ---- f32 rows prepared for F16 (avx512_common.h) ------------------------- */

size_t rvk_avx512_prep_size_f16(int64_t n)
{
	return (size_t)((n + 15) / 16) * 64;
}

void rvk_avx512_prep_f16(int64_t n, const void *a, void *p)
{
	const float *x = a;
	float *o = p;
	int64_t i = 0;
	for (; i + 16 <= n; i += 16)
		_mm512_storeu_ps(o + i, _mm512_loadu_ps(x + i));
	if (i < n)
		_mm512_storeu_ps(o + i, _mm512_maskz_loadu_ps(mask16(n - i), x + i));
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
void rvk_avx512_quant_q8_0(const float *x, void *vy, int64_t n)
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
void rvk_avx512_quant_q8_K(const float *x, void *vy, int64_t n)
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