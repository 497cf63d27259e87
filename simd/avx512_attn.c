/* avx512_attn.c: the fused attention of the image encoders (attn_kv_pack,
 * attn_rows; see rvk_table).
 *
 * An encoder's attention is two products per head, scores = q k^T and
 * out = softmax(scores) v, with a short inner dimension (head_dim, 64-128)
 * on one side and the whole window of keys (up to 4096 patches) on the
 * other. A BLAS packs both operands again for every call, and the scores of
 * a block of queries do not fit a core's cache; here a head's keys and
 * values are laid out once for every block of queries, and a block of
 * RVK_ATTN_ROWS queries keeps its scores (RVK_ATTN_ROWS rows) in L2:
 *  - scores: tiles of 6 queries by 64 keys (tile_6x64, avx512_common.h):
 *    per step of the head dimension, four loads of 16 keys' values from
 *    the transposed keys and six broadcasts of the queries';
 *  - softmax of each row (the table's softmax);
 *  - values: tiles of up to 6 queries by the head dimension (up to 8
 *    vectors), per key one broadcast of each query's weight.
 * Every score and every output element is one chain of FMAs in a fixed
 * order (over the head dimension, then over the keys), whatever the tile it
 * falls in, so a query's result does not depend on nq or on threads. */
#include "simd/avx512_common.h"

#define KEYS_PER_VEC 16

void rvk_avx512_attn_kv_pack(float *kv, const float *k, int64_t k_stride, const float *v,
                             int64_t v_stride, int64_t n, int64_t hd)
{
	const int64_t hdp = RVK_ATTN_PAD(hd);
	float *vp = kv + RVK_ATTN_PAD(n) * hd;
	for (int64_t j0 = 0; j0 < n; j0 += KEYS_PER_VEC) {
		float *blk = kv + j0 * hd; /* hd rows of 16 keys */
		for (int64_t jj = 0; jj < KEYS_PER_VEC; jj++) {
			const int64_t j = j0 + jj;
			for (int64_t d = 0; d < hd; d++)
				blk[d * KEYS_PER_VEC + jj] = j < n ? k[j * k_stride + d] : 0.0f;
		}
	}
	for (int64_t j = 0; j < n; j++) {
		memcpy(vp + j * hdp, v + j * v_stride, (size_t)hd * sizeof(float));
		memset(vp + j * hdp + hd, 0, (size_t)(hdp - hd) * sizeof(float));
	}
}

/* o[i][0:16 NV) += sum over j < n_keys of p[i][j] * v[j] for NQ queries
 * (o rows 16 NV floats apart, p rows p_stride apart, v rows 16 NV floats
 * apart). */
static ALWAYS_INLINE void values_tile(const int NQ, const int NV, float *o, const float *p,
                                      int64_t p_stride, const float *v, int64_t n_keys)
{
	__m512 acc[TILE_ROWS][8];
	UNROLL
	for (int i = 0; i < NQ; i++)
		UNROLL
	for (int c = 0; c < NV; c++)
		acc[i][c] = _mm512_loadu_ps(o + i * 16 * NV + c * 16);
	for (int64_t j = 0; j < n_keys; j++) {
		__m512 vj[8];
		UNROLL
		for (int c = 0; c < NV; c++)
			vj[c] = _mm512_loadu_ps(v + j * 16 * NV + c * 16);
		UNROLL
		for (int i = 0; i < NQ; i++) {
			const __m512 pi = _mm512_set1_ps(p[i * p_stride + j]);
			UNROLL
			for (int c = 0; c < NV; c++)
				acc[i][c] = _mm512_fmadd_ps(pi, vj[c], acc[i][c]);
		}
	}
	UNROLL
	for (int i = 0; i < NQ; i++)
		UNROLL
	for (int c = 0; c < NV; c++)
		_mm512_storeu_ps(o + i * 16 * NV + c * 16, acc[i][c]);
}

/* values_tile over nq queries: tiles of QS (as many as keep QS * NV
 * accumulators, NV values and a weight in the 32 registers), then one by
 * one. */
#define VALUES_CASE(NV, QS)                                                                        \
	case NV: {                                                                                 \
		int64_t i = 0;                                                                     \
		for (; i + QS <= nq; i += QS)                                                      \
			values_tile(QS, NV, o + i * 16 * NV, p + i * p_stride, p_stride, v,        \
			            n_keys);                                                       \
		for (; i < nq; i++)                                                                \
			values_tile(1, NV, o + i * 16 * NV, p + i * p_stride, p_stride, v,         \
			            n_keys);                                                       \
		break;                                                                             \
	}

static void values_rows(int64_t nv, int64_t nq, float *o, const float *p, int64_t p_stride,
                        const float *v, int64_t n_keys)
{
	switch (nv) {
		VALUES_CASE(1, 6)
		VALUES_CASE(2, 6)
		VALUES_CASE(3, 6)
		VALUES_CASE(4, 6)
		VALUES_CASE(5, 4)
		VALUES_CASE(6, 4)
		VALUES_CASE(7, 3)
		VALUES_CASE(8, 2)
	default:
		break;
	}
}

/* Keys per step of the values: their rows stay in L1 while every tile of
 * queries goes past them. */
#define VALUE_KEYS 64

void rvk_avx512_attn_rows(float *out, int64_t out_stride, const float *q, int64_t q_stride,
                          int64_t nq, const float *kv, int64_t len, int64_t hd, float scale,
                          float *scratch)
{
	const int64_t hdp = RVK_ATTN_PAD(hd), sp = RVK_ATTN_PAD(len);
	const int64_t nv = hdp / 16;
	const float *vp = kv + sp * hd;
	float *s = scratch, *o = scratch + RVK_ATTN_ROWS * sp;
	if (nq < 1 || len < 1 || nq > RVK_ATTN_ROWS || hd > RVK_ATTN_MAX_HD)
		return;
	const __m512 sc = _mm512_set1_ps(scale);

	/* s (nq, len) = scale * q k^T: tiles of 6 queries by 64 keys */
	for (int64_t j0 = 0; j0 < len; j0 += TILE_VECS * KEYS_PER_VEC) {
		__mmask16 m[TILE_VECS];
		tile_masks(j0, len, m);
		const float *kb = kv + j0 * hd;
		int64_t i = 0;
		for (; i + TILE_ROWS <= nq; i += TILE_ROWS)
			tile_6x64(TILE_ROWS, 0, 1, s + i * sp + j0, sp, q + i * q_stride, q_stride,
			          kb, hd * KEYS_PER_VEC, 0, hd, m, sc);
		for (; i < nq; i++)
			tile_6x64(1, 0, 1, s + i * sp + j0, sp, q + i * q_stride, q_stride, kb,
			          hd * KEYS_PER_VEC, 0, hd, m, sc);
	}
	for (int64_t i = 0; i < nq; i++)
		rvk_avx512_softmax(s + i * sp, len);

	/* o (nq, hdp) = s v, then the first hd of each row out */
	memset(o, 0, (size_t)(nq * hdp) * sizeof(float));
	for (int64_t j0 = 0; j0 < len; j0 += VALUE_KEYS)
		values_rows(nv, nq, o, s + j0, sp, vp + j0 * hdp,
		            len - j0 < VALUE_KEYS ? len - j0 : VALUE_KEYS);
	for (int64_t i = 0; i < nq; i++)
		memcpy(out + i * out_stride, o + i * hdp, (size_t)hd * sizeof(float));
}
