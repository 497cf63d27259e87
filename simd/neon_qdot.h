/* neon_qdot.h: the quantized dot products of the two AArch64 tables, Q8_0
 * and Q4_0 weights against Q8_0 activations, Q4_K, Q5_K and Q6_K against
 * Q8_K, as vec_dot and vec_dot_rows entries.
 *
 * Included by neon.c (baseline Armv8-A) and neon_dotprod.c (Armv8.2 SDOT),
 * which differ only in how 16 int8 products are summed. Each includes
 * <arm_neon.h> and kernels.h, and defines these three before including
 * this file (acc is 4 int32 lanes; which lane gets which product is up to
 * the primitive, the lanes' total is what counts):
 *
 *   int32x4_t nq_dot16(int32x4_t acc, int8x16_t w, int8x16_t a)
 *       acc + the 16 products w[i] * a[i], any int8 values;
 *   int32x4_t nq_dot16_small(int32x4_t acc, int8x16_t w, int8x16_t a)
 *       the same when |w[i]| <= 32;
 *   int32x4_t nq_dot32_small(int32x4_t acc, int8x16_t w0, int8x16_t a0,
 *                            int8x16_t w1, int8x16_t a1)
 *       acc + the 32 products of both pairs, |w0[i]|, |w1[i]| <= 32.
 *
 * The "small" forms let the baseline primitives add four products in int16
 * lanes before widening (4 * 32 * 128 fits an int16); every weight type but
 * Q8_0 has quants that small (Q4_0 -8..7, Q4_K 0..15, Q5_K 0..31, Q6_K
 * -32..31).
 *
 * Every function here is static inline, so each including file gets its own
 * copy compiled with its own flags: baseline neon.c never calls code built
 * for dotprod.
 *
 * Results: the integer dot of each block (or sub-block) is exact whatever
 * the order of its additions, and the float steps after it are those of
 * scalar.c, in the same order (contraction is off, see the includers): so
 * every dot here is bit-identical to the scalar one (NaN block scales
 * aside, see nq_f16), and vec_dot_rows to vec_dot for each row. The weight
 * block is unpacked once and used for a group of up to NQ_GROUP activation
 * rows. */
#ifndef RLAIFV_NEON_QDOT_H
#define RLAIFV_NEON_QDOT_H

/* Activation rows per pass over a weight row: enough to amortize the
 * unpacking, few enough that the per-row accumulators stay in registers. */
#define NQ_GROUP 4

/* Group routines take the row count nr as an argument but are always
 * inlined into a switch on constant counts, so sum[nr] and the row loops
 * become registers and straight-line code. */
#define NQ_INLINE static inline __attribute__((always_inline))

/* Fully unrolls a loop of constant count: the per-row and per-lane arrays
 * (sum[], isum[], acc[][]) only become registers when every index is a
 * constant, and GCC -O2 does not unroll these loops by itself (it would
 * keep the accumulators on the stack, a load and a store per FMA). */
#define NQ_UNROLL _Pragma("GCC unroll 16")

/* fp16 -> f32 by FCVT: exact, so the value rvk_f16_to_f32 gives, for every
 * input but NaN (whose quiet bit FCVT may set), in the default FPCR modes
 * that Linux starts processes with (no flush to zero). One instruction
 * instead of a dozen integer ones, paid per block and row for the scales. */
static inline float nq_f16(uint16_t h)
{
	__fp16 f;
	memcpy(&f, &h, sizeof(f));
	return (float)f;
}

/* One activation row of a group: row r of a, rows a_stride bytes apart. */
#define NQ_ROW(type, a, a_stride, r) ((const type *)((const char *)(a) + (size_t)(r) * (a_stride)))

/* ---- Q8_0 weights . Q8_0 activations ------------------------------------ */

// w (n / 32 Q8_0 blocks) . nr rows of a (n / 32 Q8_0 blocks) -> s[r * s_stride]
NQ_INLINE void nq_group_q8_0(int64_t n, float *s, int64_t s_stride, const void *vw, const void *a,
                             size_t a_stride, const int nr)
{
	const rv_block_q8_0 *w = vw;
	float sum[NQ_GROUP] = {0};
	for (int64_t ib = 0; ib < n / RV_QK8_0; ib++) {
		const int8x16_t w0 = vld1q_s8(w[ib].qs), w1 = vld1q_s8(w[ib].qs + 16);
		const float dw = nq_f16(w[ib].d);
		NQ_UNROLL
		for (int r = 0; r < nr; r++) {
			const rv_block_q8_0 *ab = NQ_ROW(rv_block_q8_0, a, a_stride, r) + ib;
			int32x4_t acc = nq_dot16(vdupq_n_s32(0), w0, vld1q_s8(ab->qs));
			acc = nq_dot16(acc, w1, vld1q_s8(ab->qs + 16));
			const int32_t isum = vaddvq_s32(acc);
			sum[r] += (float)isum * (dw * nq_f16(ab->d));
		}
	}
	NQ_UNROLL
	for (int r = 0; r < nr; r++)
		s[r * s_stride] = sum[r];
}

/* ---- Q4_0 weights . Q8_0 activations ------------------------------------ */

// w (n / 32 Q4_0 blocks) . nr rows of a (n / 32 Q8_0 blocks) -> s[r * s_stride]
NQ_INLINE void nq_group_q4_0(int64_t n, float *s, int64_t s_stride, const void *vw, const void *a,
                             size_t a_stride, const int nr)
{
	const rv_block_q4_0 *w = vw;
	const uint8x16_t m4 = vdupq_n_u8(0x0f);
	const int8x16_t eight = vdupq_n_s8(8);
	float sum[NQ_GROUP] = {0};
	for (int64_t ib = 0; ib < n / RV_QK4_0; ib++) {
		/* byte j: weight j in the low nibble, weight j + 16 in the high one */
		const uint8x16_t q = vld1q_u8(w[ib].qs);
		const int8x16_t w0 = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, m4)), eight);
		const int8x16_t w1 = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(q, 4)), eight);
		const float dw = nq_f16(w[ib].d);
		NQ_UNROLL
		for (int r = 0; r < nr; r++) {
			const rv_block_q8_0 *ab = NQ_ROW(rv_block_q8_0, a, a_stride, r) + ib;
			const int32x4_t acc = nq_dot32_small(vdupq_n_s32(0), w0, vld1q_s8(ab->qs),
			                                     w1, vld1q_s8(ab->qs + 16));
			const int32_t isum = vaddvq_s32(acc);
			sum[r] += (float)isum * (dw * nq_f16(ab->d));
		}
	}
	NQ_UNROLL
	for (int r = 0; r < nr; r++)
		s[r * s_stride] = sum[r];
}

/* ---- K-quant helpers ---------------------------------------------------- */

/* The 8 six-bit scales and mins of a Q4_K/Q5_K block, as scalar.c unpacks
 * them (sub-blocks 0..3 in the low 6 bits of bytes 0..7; 4..7 split between
 * the nibbles of bytes 8..11 and the top 2 bits of bytes 0..7). Once per
 * block of 256 weights and shared by the rows of a group, so plain C. */
static inline void nq_k4_scales_mins(const uint8_t s[RV_K_SCALE_SIZE], uint8_t sc[8], uint8_t mn[8])
{
	NQ_UNROLL
	for (int j = 0; j < 4; j++) {
		sc[j] = s[j] & 63;
		mn[j] = s[j + 4] & 63;
	}
	for (int j = 4; j < 8; j++) {
		sc[j] = (uint8_t)((s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4));
		mn[j] = (uint8_t)((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
	}
}

/* The sub-block scales of a Q4_K/Q5_K block laid out for nq_k4_step:
 * v[g] = {sc[2g], sc[2g], sc[2g+1], sc[2g+1]} as int32. */
static inline void nq_k4_scale_vectors(const uint8_t sc[8], int32x4_t v[4])
{
	const uint16x8_t s16 = vmovl_u8(vld1_u8(sc));
	const uint16x8_t z0 = vzip1q_u16(s16, s16); /* sc0 sc0 sc1 sc1 .. sc3 sc3 */
	const uint16x8_t z1 = vzip2q_u16(s16, s16); /* sc4 sc4 .. sc7 sc7 */
	v[0] = vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(z0)));
	v[1] = vreinterpretq_s32_u32(vmovl_high_u16(z0));
	v[2] = vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(z1)));
	v[3] = vreinterpretq_s32_u32(vmovl_high_u16(z1));
}

/* One 64-weight group g of a Q4_K/Q5_K block against activations qa (64
 * int8): sub-block 2g is (lo0, lo1), 2g+1 is (hi0, hi1), 32 weights each.
 * The two sub-block dots are pair-added into {lo, lo, hi, hi} lane sums
 * and scaled by the matching scale vector into isum. */
static inline int32x4_t nq_k4_step(int32x4_t isum, int8x16_t lo0, int8x16_t lo1, int8x16_t hi0,
                                   int8x16_t hi1, const int8_t *qa, int32x4_t scale)
{
	const int32x4_t dlo =
	    nq_dot32_small(vdupq_n_s32(0), lo0, vld1q_s8(qa), lo1, vld1q_s8(qa + 16));
	const int32x4_t dhi =
	    nq_dot32_small(vdupq_n_s32(0), hi0, vld1q_s8(qa + 32), hi1, vld1q_s8(qa + 48));
	return vmlaq_s32(isum, vpaddq_s32(dlo, dhi), scale);
}

/* sum_s mn[s] * (activation sum of sub-block s), from the Q8_K bsums (sums
 * of 16): pair-adding them gives the 8 sums of 32 (|sum| <= 32 * 127, an
 * int16), times the mins widened to int32. */
static inline int32_t nq_k4_min_sum(const int16_t bsums[RV_QK_K / 16], int16x8_t mins)
{
	const int16x8_t b32 = vpaddq_s16(vld1q_s16(bsums), vld1q_s16(bsums + 8));
	int32x4_t m = vmull_s16(vget_low_s16(b32), vget_low_s16(mins));
	m = vmlal_high_s16(m, b32, mins);
	return vaddvq_s32(m);
}

/* ---- Q4_K weights . Q8_K activations ------------------------------------ */

// w (n / 256 Q4_K blocks) . nr rows of a (n / 256 Q8_K blocks) -> s[r * s_stride]
NQ_INLINE void nq_group_q4_K(int64_t n, float *s, int64_t s_stride, const void *vw, const void *a,
                             size_t a_stride, const int nr)
{
	const rv_block_q4_K *w = vw;
	const uint8x16_t m4 = vdupq_n_u8(0x0f);
	float sum[NQ_GROUP] = {0};
	for (int64_t ib = 0; ib < n / RV_QK_K; ib++) {
		uint8_t sc[8], mn[8];
		nq_k4_scales_mins(w[ib].scales, sc, mn);
		int32x4_t scv[4];
		nq_k4_scale_vectors(sc, scv);
		const int16x8_t mins = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(mn)));

		int32x4_t isum[NQ_GROUP];
		NQ_UNROLL
		for (int r = 0; r < nr; r++)
			isum[r] = vdupq_n_s32(0);
		for (int g = 0; g < 4; g++) {
			/* 32 bytes: sub-block 2g in the low nibbles, 2g+1 in the high */
			const uint8x16_t q0 = vld1q_u8(w[ib].qs + 32 * g);
			const uint8x16_t q1 = vld1q_u8(w[ib].qs + 32 * g + 16);
			const int8x16_t lo0 = vreinterpretq_s8_u8(vandq_u8(q0, m4));
			const int8x16_t lo1 = vreinterpretq_s8_u8(vandq_u8(q1, m4));
			const int8x16_t hi0 = vreinterpretq_s8_u8(vshrq_n_u8(q0, 4));
			const int8x16_t hi1 = vreinterpretq_s8_u8(vshrq_n_u8(q1, 4));
			NQ_UNROLL
			for (int r = 0; r < nr; r++) {
				const rv_block_q8_K *ab =
				    NQ_ROW(rv_block_q8_K, a, a_stride, r) + ib;
				isum[r] = nq_k4_step(isum[r], lo0, lo1, hi0, hi1, ab->qs + 64 * g,
				                     scv[g]);
			}
		}
		const float wd = nq_f16(w[ib].d), wdmin = nq_f16(w[ib].dmin);
		NQ_UNROLL
		for (int r = 0; r < nr; r++) {
			const rv_block_q8_K *ab = NQ_ROW(rv_block_q8_K, a, a_stride, r) + ib;
			const int32_t is = vaddvq_s32(isum[r]);
			const int32_t ms = nq_k4_min_sum(ab->bsums, mins);
			/* scalar.c's float steps, in its order */
			const float d = wd * ab->d;
			const float dmin = wdmin * ab->d;
			sum[r] += d * (float)is - dmin * (float)ms;
		}
	}
	NQ_UNROLL
	for (int r = 0; r < nr; r++)
		s[r * s_stride] = sum[r];
}

/* ---- Q5_K weights . Q8_K activations ------------------------------------ */

// w (n / 256 Q5_K blocks) . nr rows of a (n / 256 Q8_K blocks) -> s[r * s_stride]
NQ_INLINE void nq_group_q5_K(int64_t n, float *s, int64_t s_stride, const void *vw, const void *a,
                             size_t a_stride, const int nr)
{
	const rv_block_q5_K *w = vw;
	const uint8x16_t m4 = vdupq_n_u8(0x0f);
	const uint8x16_t bit0 = vdupq_n_u8(1), bit1 = vdupq_n_u8(2);
	float sum[NQ_GROUP] = {0};
	for (int64_t ib = 0; ib < n / RV_QK_K; ib++) {
		uint8_t sc[8], mn[8];
		nq_k4_scales_mins(w[ib].scales, sc, mn);
		int32x4_t scv[4];
		nq_k4_scale_vectors(sc, scv);
		const int16x8_t mins = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(mn)));

		/* fifth bits: for group g, bit 2g of qh[l] belongs to weight 64g + l
		 * and bit 2g + 1 to 64g + 32 + l; shifting qh right by 2 after each
		 * group brings the next pair down to bits 0 and 1 */
		uint8x16_t h0 = vld1q_u8(w[ib].qh), h1 = vld1q_u8(w[ib].qh + 16);
		int32x4_t isum[NQ_GROUP];
		NQ_UNROLL
		for (int r = 0; r < nr; r++)
			isum[r] = vdupq_n_s32(0);
		for (int g = 0; g < 4; g++) {
			const uint8x16_t q0 = vld1q_u8(w[ib].qs + 32 * g);
			const uint8x16_t q1 = vld1q_u8(w[ib].qs + 32 * g + 16);
			/* low nibble | (bit 0 of h) << 4; high nibble | (bit 1 of h) << 3 */
			const int8x16_t lo0 = vreinterpretq_s8_u8(
			    vorrq_u8(vandq_u8(q0, m4), vshlq_n_u8(vandq_u8(h0, bit0), 4)));
			const int8x16_t lo1 = vreinterpretq_s8_u8(
			    vorrq_u8(vandq_u8(q1, m4), vshlq_n_u8(vandq_u8(h1, bit0), 4)));
			const int8x16_t hi0 = vreinterpretq_s8_u8(
			    vorrq_u8(vshrq_n_u8(q0, 4), vshlq_n_u8(vandq_u8(h0, bit1), 3)));
			const int8x16_t hi1 = vreinterpretq_s8_u8(
			    vorrq_u8(vshrq_n_u8(q1, 4), vshlq_n_u8(vandq_u8(h1, bit1), 3)));
			h0 = vshrq_n_u8(h0, 2);
			h1 = vshrq_n_u8(h1, 2);
			NQ_UNROLL
			for (int r = 0; r < nr; r++) {
				const rv_block_q8_K *ab =
				    NQ_ROW(rv_block_q8_K, a, a_stride, r) + ib;
				isum[r] = nq_k4_step(isum[r], lo0, lo1, hi0, hi1, ab->qs + 64 * g,
				                     scv[g]);
			}
		}
		const float wd = nq_f16(w[ib].d), wdmin = nq_f16(w[ib].dmin);
		NQ_UNROLL
		for (int r = 0; r < nr; r++) {
			const rv_block_q8_K *ab = NQ_ROW(rv_block_q8_K, a, a_stride, r) + ib;
			const int32_t is = vaddvq_s32(isum[r]);
			const int32_t ms = nq_k4_min_sum(ab->bsums, mins);
			const float d = wd * ab->d;
			const float dmin = wdmin * ab->d;
			sum[r] += d * (float)is - dmin * (float)ms;
		}
	}
	NQ_UNROLL
	for (int r = 0; r < nr; r++)
		s[r * s_stride] = sum[r];
}

/* ---- Q6_K weights . Q8_K activations ------------------------------------ */

/* The 128 signed quants (-32..31) of half h of a Q6_K block, in weight
 * order, as 8 vectors of 16: vector k is sub-block 8h + k. For l < 32,
 * ql[l] holds the low 4 bits of weights l (low nibble) and l + 64 (high),
 * ql[32 + l] those of l + 32 and l + 96, and qh[l] the top 2 bits of l,
 * l + 32, l + 64, l + 96 in bit pairs 0-1, 2-3, 4-5, 6-7. */
static inline void nq_q6_K_half(const uint8_t *ql, const uint8_t *qh, int8x16_t q[8])
{
	const uint8x16_t m4 = vdupq_n_u8(0x0f), m2 = vdupq_n_u8(0x30);
	const int8x16_t off = vdupq_n_s8(32);
	NQ_UNROLL
	for (int j = 0; j < 2; j++) { /* weights 16j..16j+15 of each quarter */
		const uint8x16_t la = vld1q_u8(ql + 16 * j);      /* l, l + 64 */
		const uint8x16_t lb = vld1q_u8(ql + 32 + 16 * j); /* l + 32, l + 96 */
		const uint8x16_t h = vld1q_u8(qh + 16 * j);
		/* each quarter's 2 high bits moved to bits 4-5 */
		const uint8x16_t h0 = vandq_u8(vshlq_n_u8(h, 4), m2);
		const uint8x16_t h1 = vandq_u8(vshlq_n_u8(h, 2), m2);
		const uint8x16_t h2 = vandq_u8(h, m2);
		const uint8x16_t h3 = vandq_u8(vshrq_n_u8(h, 2), m2);
		q[0 + j] = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vandq_u8(la, m4), h0)), off);
		q[2 + j] = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vandq_u8(lb, m4), h1)), off);
		q[4 + j] = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(la, 4), h2)), off);
		q[6 + j] = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(lb, 4), h3)), off);
	}
}

/* isum + the 8 sub-block dots of one half (q against qa, 128 int8) times
 * their scales sc4[0] (sub-blocks 0..3 of the half) and sc4[1] (4..7):
 * each 4 dots are pair-added down to one vector of 4 sub-block sums. */
static inline int32x4_t nq_q6_K_step(int32x4_t isum, const int8x16_t q[8], const int8_t *qa,
                                     const int32x4_t sc4[2])
{
	int32x4_t d[8];
	NQ_UNROLL
	for (int k = 0; k < 8; k++)
		d[k] = nq_dot16_small(vdupq_n_s32(0), q[k], vld1q_s8(qa + 16 * k));
	const int32x4_t s03 = vpaddq_s32(vpaddq_s32(d[0], d[1]), vpaddq_s32(d[2], d[3]));
	const int32x4_t s47 = vpaddq_s32(vpaddq_s32(d[4], d[5]), vpaddq_s32(d[6], d[7]));
	isum = vmlaq_s32(isum, s03, sc4[0]);
	return vmlaq_s32(isum, s47, sc4[1]);
}

// w (n / 256 Q6_K blocks) . nr rows of a (n / 256 Q8_K blocks) -> s[r * s_stride]
NQ_INLINE void nq_group_q6_K(int64_t n, float *s, int64_t s_stride, const void *vw, const void *a,
                             size_t a_stride, const int nr)
{
	const rv_block_q6_K *w = vw;
	float sum[NQ_GROUP] = {0};
	for (int64_t ib = 0; ib < n / RV_QK_K; ib++) {
		/* the 16 int8 scales as 4 int32 vectors, sub-blocks 4i..4i+3 */
		const int8x16_t sc8 = vld1q_s8(w[ib].scales);
		const int16x8_t sc_lo = vmovl_s8(vget_low_s8(sc8)), sc_hi = vmovl_high_s8(sc8);
		const int32x4_t scv[4] = {vmovl_s16(vget_low_s16(sc_lo)), vmovl_high_s16(sc_lo),
		                          vmovl_s16(vget_low_s16(sc_hi)), vmovl_high_s16(sc_hi)};
		int32x4_t isum[NQ_GROUP];
		NQ_UNROLL
		for (int r = 0; r < nr; r++)
			isum[r] = vdupq_n_s32(0);
		for (int h = 0; h < 2; h++) {
			int8x16_t q[8];
			nq_q6_K_half(w[ib].ql + 64 * h, w[ib].qh + 32 * h, q);
			NQ_UNROLL
			for (int r = 0; r < nr; r++) {
				const rv_block_q8_K *ab =
				    NQ_ROW(rv_block_q8_K, a, a_stride, r) + ib;
				isum[r] = nq_q6_K_step(isum[r], q, ab->qs + 128 * h, scv + 2 * h);
			}
		}
		const float wd = nq_f16(w[ib].d);
		NQ_UNROLL
		for (int r = 0; r < nr; r++) {
			const rv_block_q8_K *ab = NQ_ROW(rv_block_q8_K, a, a_stride, r) + ib;
			/* scalar.c: d_w * d_a * isum, left to right */
			sum[r] += wd * ab->d * (float)vaddvq_s32(isum[r]);
		}
	}
	NQ_UNROLL
	for (int r = 0; r < nr; r++)
		s[r * s_stride] = sum[r];
}

/* ---- table entries ------------------------------------------------------ */

/* For each type: vec_dot is a group of one row; vec_dot_rows runs groups of
 * NQ_GROUP rows and one smaller group for the rest. A row's result does not
 * depend on the group it lands in (see the top of the file). */
#define NQ_ENTRIES(T)                                                                              \
	static inline void nq_vec_dot_##T(int64_t n, float *s, const void *w, const void *a)       \
	{                                                                                          \
		nq_group_##T(n, s, 0, w, a, 0, 1);                                                 \
	}                                                                                          \
	static inline void nq_vec_dot_rows_##T(int64_t n, float *s, int64_t s_stride,              \
	                                       const void *w, const void *a, size_t a_stride,      \
	                                       int64_t nrows)                                      \
	{                                                                                          \
		const char *ar = a;                                                                \
		for (; nrows >= NQ_GROUP; nrows -= NQ_GROUP) {                                     \
			nq_group_##T(n, s, s_stride, w, ar, a_stride, NQ_GROUP);                   \
			s += NQ_GROUP * s_stride;                                                  \
			ar += NQ_GROUP * a_stride;                                                 \
		}                                                                                  \
		switch (nrows) {                                                                   \
		case 3:                                                                            \
			nq_group_##T(n, s, s_stride, w, ar, a_stride, 3);                          \
			break;                                                                     \
		case 2:                                                                            \
			nq_group_##T(n, s, s_stride, w, ar, a_stride, 2);                          \
			break;                                                                     \
		case 1:                                                                            \
			nq_group_##T(n, s, s_stride, w, ar, a_stride, 1);                          \
			break;                                                                     \
		default:                                                                           \
			break;                                                                     \
		}                                                                                  \
	}

NQ_ENTRIES(q8_0)
NQ_ENTRIES(q4_0)
NQ_ENTRIES(q4_K)
NQ_ENTRIES(q5_K)
NQ_ENTRIES(q6_K)

#undef NQ_ENTRIES

#endif
