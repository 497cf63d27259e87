/* minicpmv.c: MiniCPM-V 2.6's and 4.5's vision side (HF
 * modeling_navit_siglip.py + resampler.py, clip.projector_type
 * "resampler"). Each image of a prompt
 * (the overview, then its slices row-major; see
 * src/image/preprocess_minicpmv.c) goes on its own through
 *
 * - SigLIP: patch conv with bias, learned positions looked up in a 70 x 70
 *   table by bucketed patch coordinates (any patch grid maps onto it),
 *   pre-norm blocks with GELU-tanh, post-LN; every stored block runs;
 * - the resampler: 64 learned queries attend once (multi-head, 128
 *   channels a head) to the patches projected to the text width, whose
 *   keys carry a 2-D sin/cos position of the patch grid; LN, then proj.
 *
 * An image is 64 rows, framed in the prompt as the processor writes it
 * (arch_layout).
 *
 * MiniCPM-V 4.5 (clip.minicpmv_version 6, a Qwen3 text model) has the
 * same maths for an image: its "3-D" resampler adds a temporal sin/cos
 * position to the keys of video frames only (temporal id -1, a zero
 * vector, for every image and slice) and attends over the frames of one
 * temporal group at once (one image each here). What differs is the width
 * (4096: 32 resampler heads) and the chat template (chat_template_of). */
#include "models/minicpmv.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "models/loader.h"
#include "src/image/minicpmv.h"

#define MAX_EMBD       (1 << 16)
#define MAX_QUERIES    4096
#define RHEAD_CHANNELS 128 /* HF's num_heads = embed_dim // 128 */
#define DEFAULT_SLICES 9   /* HF's max_slice_nums */
#define MAX_SLICES     64
#define POS_ROWS       (RVI_MINICPMV_POS_SIDE * RVI_MINICPMV_POS_SIDE)

/* ---- loading ----------------------------------------------------------- */

/* A 2-D position table [width, 70*70]: the format fixes its rows. */
static int check_pos_table(const rvi_gguf *g, const char *name, int64_t width, bool required,
                           rvi_err *err)
{
	const rvi_gguf_tensor *t = rvi_gguf_find_tensor(g, name);
	if (!t && !required)
		return RV_OK;
	if (!t)
		return rvi_errorf(err, RV_ERR_MODEL, "%s: missing tensor %s", g->path, name);
	if (t->n_dims != 2 || t->ne[0] != width || t->ne[1] != POS_ROWS)
		return rvi_errorf(err, RV_ERR_MODEL,
		                  "%s: tensor %s has shape [%lld, %lld], expected [%lld, %d]: a "
		                  "%d x %d position table",
		                  g->path, name, (long long)t->ne[0],
		                  (long long)(t->n_dims > 1 ? t->ne[1] : 1), (long long)width,
		                  POS_ROWS, RVI_MINICPMV_POS_SIDE, RVI_MINICPMV_POS_SIDE);
	return RV_OK;
}

/* The version, the query count and the resampler's width and heads. */
static int load_resampler_shape(rvi_minicpmv *m, const rvi_gguf *g, rvi_err *err)
{
	int64_t v = 0;
	int rc = rvi_load_dim(g, "clip.minicpmv_version", true, 0, 1 << 20, &v, err);
	if (rc != RV_OK)
		return rc;
	/* 3: MiniCPM-V 2.6; 4: MiniCPM-o 2.6, the same vision side; 6:
	 * MiniCPM-V 4.5 (5, MiniCPM-V 4.0, has a text model we lack) */
	if (v != 3 && v != 4 && v != 6)
		return rvi_errorf(err, RV_ERR_UNSUPPORTED,
		                  "%s: clip.minicpmv_version %lld is not supported (3: MiniCPM-V "
		                  "2.6, 4: MiniCPM-o 2.6, 6: MiniCPM-V 4.5)",
		                  g->path, (long long)v);
	m->version = v;
	const rvi_gguf_tensor *q;
	if ((rc = rvi_load_tensor(g, "resampler.query", &q, err)))
		return rc;
	if (q->n_dims != 2 || q->ne[0] < 1 || q->ne[0] > MAX_EMBD || q->ne[1] < 1 ||
	    q->ne[1] > MAX_QUERIES)
		return rvi_load_shape_error(g, "resampler.query", q,
		                            "[n_embd of the text model, "
		                            "queries]",
		                            err);
	const int64_t D = q->ne[0];
	m->n_query = q->ne[1];
	int64_t qn = m->n_query;
	if ((rc = rvi_load_dim(g, "clip.minicpmv_query_num", false, 1, MAX_QUERIES, &qn, err)))
		return rc;
	if (qn != m->n_query)
		return rvi_errorf(err, RV_ERR_MODEL,
		                  "%s: clip.minicpmv_query_num is %lld but resampler.query holds "
		                  "%lld queries",
		                  g->path, (long long)qn, (long long)m->n_query);
	m->n_rhead = D / RHEAD_CHANNELS;
	if (m->n_rhead < 1 || D % m->n_rhead != 0)
		return rvi_errorf(err, RV_ERR_MODEL,
		                  "%s: the resampler's width %lld does not split into %lld heads "
		                  "(width / %d, as HF's Resampler counts them)",
		                  g->path, (long long)D, (long long)m->n_rhead, RHEAD_CHANNELS);
	m->hp.n_mm_out = D;
	m->hp.n_mm_hidden = m->hp.n_embd;
	return RV_OK;
}

static int load_resampler(rvi_minicpmv *m, const rvi_gguf *g, rvi_err *err)
{
	const int64_t D = m->hp.n_mm_out, W = m->hp.n_embd;
	int rc;
	if ((rc = rvi_load_floats(g, "resampler.query", D, m->n_query, &m->query, err)) ||
	    (rc = rvi_load_weight(g, "resampler.kv.weight", W, D, &m->kv, err)) ||
	    (rc = rvi_load_weight(g, "resampler.attn.q.weight", D, D, &m->wq, err)) ||
	    (rc = rvi_load_floats(g, "resampler.attn.q.bias", D, 0, &m->bq, err)) ||
	    (rc = rvi_load_weight(g, "resampler.attn.k.weight", D, D, &m->wk, err)) ||
	    (rc = rvi_load_floats(g, "resampler.attn.k.bias", D, 0, &m->bk, err)) ||
	    (rc = rvi_load_weight(g, "resampler.attn.v.weight", D, D, &m->wv, err)) ||
	    (rc = rvi_load_floats(g, "resampler.attn.v.bias", D, 0, &m->bv, err)) ||
	    (rc = rvi_load_weight(g, "resampler.attn.out.weight", D, D, &m->wo, err)) ||
	    (rc = rvi_load_floats(g, "resampler.attn.out.bias", D, 0, &m->bo, err)) ||
	    (rc = rvi_load_floats(g, "resampler.ln_q.weight", D, 0, &m->ln_q_w, err)) ||
	    (rc = rvi_load_floats(g, "resampler.ln_q.bias", D, 0, &m->ln_q_b, err)) ||
	    (rc = rvi_load_floats(g, "resampler.ln_kv.weight", D, 0, &m->ln_kv_w, err)) ||
	    (rc = rvi_load_floats(g, "resampler.ln_kv.bias", D, 0, &m->ln_kv_b, err)) ||
	    (rc = rvi_load_floats(g, "resampler.ln_post.weight", D, 0, &m->ln_post_w, err)) ||
	    (rc = rvi_load_floats(g, "resampler.ln_post.bias", D, 0, &m->ln_post_b, err)) ||
	    /* stored transposed: HF's x @ proj is a Linear with the stored rows */
	    (rc = rvi_load_weight(g, "resampler.proj.weight", D, D, &m->proj, err)))
		return rc;
	/* the converter's own sin/cos table: unused (computed per patch grid
	 * below, as HF does), but it must be what the format says */
	return check_pos_table(g, "resampler.pos_embed_k", D, false, err);
}

int rvi_minicpmv_load(rvi_minicpmv *m, const rvi_gguf *g, rvi_err *err)
{
	memset(m, 0, sizeof(*m));
	rvi_vit_hparams *hp = &m->hp;
	int rc = rvi_vit_load_hparams(hp, g, "resampler", err);
	if (rc != RV_OK)
		return rc;
	const int64_t W = hp->n_embd;
	if ((rc = load_resampler_shape(m, g, err)) ||
	    (rc =
	         rvi_load_check_blocks(g, "v.blk.", hp->n_layer, "clip.vision.block_count", err)) ||
	    (rc = check_pos_table(g, "v.position_embd.weight", W, true, err)))
		return rc;
	m->path = g->path;
	m->max_slices = DEFAULT_SLICES;
	if ((rc = rvi_vit_bind_patch_kernel(g, hp, &m->patch_embd, err)) ||
	    (rc = rvi_load_floats(g, "v.patch_embd.bias", W, 0, &m->patch_bias, err)) ||
	    (rc = rvi_load_floats(g, "v.position_embd.weight", W, POS_ROWS, &m->pos_embd, err)) ||
	    (rc = rvi_load_floats(g, "v.post_ln.weight", W, 0, &m->post_ln_w, err)) ||
	    (rc = rvi_load_floats(g, "v.post_ln.bias", W, 0, &m->post_ln_b, err)) ||
	    (rc = load_resampler(m, g, err)))
		goto fail;
	if ((rc = rvi_vit_load_layers(g, hp, &m->layers, err)))
		goto fail;
	return RV_OK;
fail:
	rvi_minicpmv_free(m);
	return rc;
}

void rvi_minicpmv_free(rvi_minicpmv *m)
{
	rvi_vit_layers_free(m->layers, m->hp.n_layer);
	float *v[] = {m->patch_bias, m->pos_embd, m->post_ln_w, m->post_ln_b, m->query,
	              m->bq,         m->bk,       m->bv,        m->bo,        m->ln_q_w,
	              m->ln_q_b,     m->ln_kv_w,  m->ln_kv_b,   m->ln_post_w, m->ln_post_b};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		free(v[i]);
	memset(m, 0, sizeof(*m));
}

/* ---- SigLIP ------------------------------------------------------------ */

/* HF: boundaries = arange(1/70, 1, 1/70) and coords = arange(0, 1 - 1e-6,
 * 1/n) in float32, with 1/n a float32 (tgt_sizes are int32); the bucket is
 * the count of boundaries <= coord. torch's arange computes in double and
 * rounds each value to float, except that its vectorised loop (8 floats,
 * AVX2) starts every run of 8 from the float value of its first element:
 * the reference's ids (and the README's list of grids where they differ
 * from floor(70 i / n): 25, 49, 50, 55, 58) follow that loop. */
int rvi_minicpmv_bucket(int64_t i, int64_t n)
{
	const double step = (double)(1.0f / (float)n);
	const int64_t len = (int64_t)ceil((1.0 - 1e-6) / step);
	const int64_t i0 = i / 8 * 8;
	const float c = i0 + 8 <= len
	                    ? (float)((double)(float)(step * (double)i0) + step * (double)(i - i0))
	                    : (float)(step * (double)i);
	int b = 0;
	for (int k = 1; k < RVI_MINICPMV_POS_SIDE; k++)
		b += (float)(1.0 / RVI_MINICPMV_POS_SIDE +
		             (k - 1) * (1.0 / RVI_MINICPMV_POS_SIDE)) <= c;
	return b;
}

int rvi_minicpmv_siglip(const rvi_minicpmv *m, const float *chw, int w, int h, int n_threads,
                        float *feats, rvi_err *err)
{
	const rvi_vit_hparams *hp = &m->hp;
	const int64_t p = hp->patch_size, W = hp->n_embd, kpp = 3 * p * p;
	if (w < p || h < p || w % p || h % p)
		return rvi_errorf(err, RV_ERR_INVALID_ARG,
		                  "minicpmv encode: a %dx%d image is not whole %lld-pixel patches",
		                  w, h, (long long)p);
	const int64_t nh = h / p, nw = w / p, n = nh * nw;
	const int nt = n_threads < 1 ? 1 : n_threads;
	/* feats is the residual stream */
	uint64_t size[8] = {(uint64_t)(n * kpp)};
	rvi_vit_work_sizes(hp, n, nt, size + 1);
	float *patches;
	rvi_buf scr = {0};
	rvi_vit_work wk = {.mm = &scr};
	float **const region[] = {&patches, &wk.xb, &wk.q,  &wk.k,
	                          &wk.v,    &wk.ao, &wk.hb, &wk.scores};
	rvi_arena mem = {0};
	int *bw = malloc((size_t)nw * sizeof(int));
	if (!bw || rvi_arena_alloc(&mem, size, region, 8) != RV_OK) {
		free(bw);
		return rvi_errorf(
		    err, RV_ERR_NOMEM,
		    "out of memory for the image encoder's activations (%lld patches)",
		    (long long)n);
	}
	/* patches row-major over the nh x nw grid, each in the kernel's
	 * (channel, y, x) order */
	rvi_qwen2vl_patches(chw, w, h, (int)p, 1, 1, patches);
	const char *what = "patch embedding";
	int rc = rvi_vit_linear(&m->patch_embd, m->patch_bias, patches, n, feats, nt, &scr);
	if (rc == RV_OK) {
		/* learned positions at the patch's bucketed (row, column) */
		for (int64_t j = 0; j < nw; j++)
			bw[j] = rvi_minicpmv_bucket(j, nw);
		for (int64_t i = 0; i < nh; i++) {
			const int64_t bi = rvi_minicpmv_bucket(i, nh);
			for (int64_t j = 0; j < nw; j++) {
				const float *pe =
				    m->pos_embd + (bi * RVI_MINICPMV_POS_SIDE + bw[j]) * W;
				float *xr = feats + (i * nw + j) * W;
				for (int64_t c = 0; c < W; c++)
					xr[c] += pe[c];
			}
		}
		what = "encoder block";
		for (int64_t il = 0; il < hp->n_layer && rc == RV_OK; il++)
			rc =
			    rvi_vit_block(hp, &m->layers[il], RVI_VIT_GELU_TANH, feats, n, &wk, nt);
	}
	if (rc == RV_OK)
		rvi_vit_layer_norm(feats, feats, m->post_ln_w, m->post_ln_b, n, W, hp->eps, nt);
	else
		rc = rvi_vit_encode_error(err, rc, m->path, what);
	free(bw);
	rvi_buf_free(&scr);
	rvi_arena_free(&mem);
	return rc;
}

/* ---- resampler --------------------------------------------------------- */

/* pos (nh*nw, D): resampler.py's get_2d_sincos_pos_embed(D, (nh, nw)) in
 * float32 as numpy computes it: with w_i = 1 / 10000^(i / (D/4)), i < D/4,
 * a patch at column x, row y gets [sin(x w), cos(x w), sin(y w), cos(y w)]. */
static void sincos_2d(int64_t D, int64_t nh, int64_t nw, float *pos)
{
	const int64_t q = D / 4;
	for (int64_t y = 0; y < nh; y++)
		for (int64_t x = 0; x < nw; x++) {
			float *r = pos + (y * nw + x) * D;
			for (int64_t i = 0; i < q; i++) {
				const float om = 1.0f / powf(10000.0f, (float)i / (float)q);
				const float ax = (float)x * om, ay = (float)y * om;
				r[i] = sinf(ax);
				r[q + i] = cosf(ax);
				r[2 * q + i] = sinf(ay);
				r[3 * q + i] = cosf(ay);
			}
		}
}

/* ao (nq, D) = per head softmax(scale Q K^T) V over nk keys, each head on
 * one thread with the BLAS serial: the result does not depend on n_threads. */
static void cross_attention(const float *Q, const float *K, const float *V, float *ao, float *sc,
                            int64_t nq, int64_t nk, int64_t D, int64_t n_head, int nt)
{
	const int64_t hd = D / n_head;
	const float scale = (float)(1.0 / sqrt((double)hd));
	rvi_blas_serial();
	(void)nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && n_head > 1)
#endif
	for (int64_t h = 0; h < n_head; h++) {
		float *s = sc + h * nq * nk;
		rvi_sgemm(true, nq, nk, hd, scale, Q + h * hd, D, K + h * hd, D, s, nk);
		for (int64_t i = 0; i < nq; i++) {
			float *r = s + i * nk, mx = -INFINITY;
			for (int64_t j = 0; j < nk; j++)
				mx = r[j] > mx ? r[j] : mx;
			double z = 0;
			for (int64_t j = 0; j < nk; j++)
				z += r[j] = expf(r[j] - mx);
			const float inv = (float)(1.0 / z);
			for (int64_t j = 0; j < nk; j++)
				r[j] *= inv;
		}
		rvi_sgemm(false, nq, hd, nk, 1.0f, s, nk, V + h * hd, D, ao + h * hd, D);
	}
}

int rvi_minicpmv_resample(const rvi_minicpmv *m, const float *feats, int64_t nh, int64_t nw,
                          int n_threads, float *out, rvi_err *err)
{
	const int64_t D = m->hp.n_mm_out, Qn = m->n_query, n = nh * nw;
	const int nt = n_threads < 1 ? 1 : n_threads;
	const float eps = m->hp.eps;
	float *x, *kin, *K, *V, *q0, *Q, *ao, *sc;
	uint64_t size[8] = {(uint64_t)(n * D),  (uint64_t)(n * D),
	                    (uint64_t)(n * D),  (uint64_t)(n * D),
	                    (uint64_t)(Qn * D), (uint64_t)(Qn * D),
	                    (uint64_t)(Qn * D), (uint64_t)(m->n_rhead * Qn * n)};
	float **const region[] = {&x, &kin, &K, &V, &q0, &Q, &ao, &sc};
	rvi_arena mem = {0};
	if (rvi_arena_alloc(&mem, size, region, 8) != RV_OK)
		return rvi_errorf(err, RV_ERR_NOMEM,
		                  "out of memory for the resampler's activations (%lld patches)",
		                  (long long)n);
	rvi_buf scr = {0};
	/* x (n, D) = LN_kv(feats @ kv^T); keys see x + pos, values x */
	int rc = rvi_vit_linear(&m->kv, NULL, feats, n, x, nt, &scr);
	if (rc == RV_OK) {
		rvi_vit_layer_norm(x, x, m->ln_kv_w, m->ln_kv_b, n, D, eps, nt);
		sincos_2d(D, nh, nw, kin);
		for (int64_t i = 0; i < n * D; i++)
			kin[i] += x[i];
		/* the queries: LN_q(query), the same for every image */
		rvi_vit_layer_norm(q0, m->query, m->ln_q_w, m->ln_q_b, Qn, D, eps, nt);
		rc = rvi_vit_linear(&m->wq, m->bq, q0, Qn, Q, nt, &scr);
	}
	if (rc == RV_OK && (rc = rvi_vit_linear(&m->wk, m->bk, kin, n, K, nt, &scr)) == RV_OK)
		rc = rvi_vit_linear(&m->wv, m->bv, x, n, V, nt, &scr);
	if (rc == RV_OK) {
		cross_attention(Q, K, V, ao, sc, Qn, n, D, m->n_rhead, nt);
		/* out_proj, LN_post, then @ proj */
		rc = rvi_vit_linear(&m->wo, m->bo, ao, Qn, q0, nt, &scr);
	}
	if (rc == RV_OK) {
		rvi_vit_layer_norm(q0, q0, m->ln_post_w, m->ln_post_b, Qn, D, eps, nt);
		rc = rvi_vit_linear(&m->proj, NULL, q0, Qn, out, nt, &scr);
	}
	if (rc != RV_OK)
		rc = rvi_vit_encode_error(err, rc, m->path, "resampler");
	rvi_buf_free(&scr);
	rvi_arena_free(&mem);
	return rc;
}

/* ---- the family's table ------------------------------------------------- */

RVI_ARCH_LOAD_FREE(rvi_minicpmv, rvi_minicpmv_load, rvi_minicpmv_free)

static int64_t arch_n_embd_out(const void *model)
{
	return ((const rvi_minicpmv *)model)->hp.n_mm_out;
}

static int geometry(const rvi_minicpmv *m, int w, int h, rvi_minicpmv_geom *geo, rvi_err *err)
{
	return rvi_minicpmv_geometry(w, h, (int)m->hp.image_size, (int)m->hp.patch_size,
	                             m->max_slices, geo, err);
}

/* The overview and the slices, Q rows each (grid: one image a row). */
static void shape_of(const rvi_minicpmv *m, const rvi_minicpmv_geom *geo, rvi_embd_shape *out)
{
	const int64_t n_img = 1 + (int64_t)geo->cols * geo->rows;
	*out = (rvi_embd_shape){n_img * m->n_query, n_img, m->n_query, geo->rows, geo->cols};
}

static int arch_embd_shape(const void *model, int w, int h, const rvi_image_limits *lim,
                           rvi_embd_shape *out, rvi_err *err)
{
	(void)lim; /* sizes of its own, whatever the limits */
	rvi_minicpmv_geom geo;
	int rc = geometry(model, w, h, &geo, err);
	if (rc == RV_OK)
		shape_of(model, &geo, out);
	return rc;
}

static int arch_preprocess(const void *model, const rvi_image *img, const rvi_image_limits *lim,
                           rvi_pixels *out, rvi_err *err)
{
	(void)lim;
	const rvi_minicpmv *m = model;
	rvi_minicpmv_geom geo;
	*out = (rvi_pixels){0};
	int rc = geometry(m, img->w, img->h, &geo, err);
	if (rc != RV_OK)
		return rc;
	/* sides <= 65536 and at most 64 slices: no overflow */
	out->n_floats =
	    3 * ((int64_t)geo.ow * geo.oh + (int64_t)geo.cols * geo.rows * geo.sw * geo.sh);
	out->data = rvi_alloc((size_t)out->n_floats, sizeof(float));
	if (!out->data)
		return rvi_errorf(err, RV_ERR_NOMEM, "out of memory for %lld pixels",
		                  (long long)out->n_floats);
	out->w = geo.ow;
	out->h = geo.oh;
	out->w2 = geo.sw;
	out->h2 = geo.sh;
	shape_of(m, &geo, &out->shape);
	rc = rvi_image_preprocess_minicpmv(img, &geo, m->hp.image_mean, m->hp.image_std, out->data,
	                                   err);
	if (rc != RV_OK)
		rvi_pixels_free(out);
	return rc;
}

static int arch_encode(const void *model, const rvi_pixels *px, int n_threads, float *out,
                       rvi_err *err)
{
	const rvi_minicpmv *m = model;
	const int64_t p = m->hp.patch_size, W = m->hp.n_embd, Q = m->n_query, D = m->hp.n_mm_out;
	const int64_t n_slices = (int64_t)px->shape.tiles_h * px->shape.tiles_w;
	const int64_t a = (int64_t)px->w * px->h, b = (int64_t)px->w2 * px->h2;
	if (n_slices < 0 || n_slices > MAX_SLICES || px->w < 1 || px->h < 1 ||
	    3 * (a + n_slices * b) != px->n_floats || (1 + n_slices) * Q != px->shape.rows)
		return rvi_errorf(
		    err, RV_ERR_INVALID_ARG,
		    "minicpmv encode: %lld pixels are not an overview and %lld slices",
		    (long long)px->n_floats, (long long)n_slices);
	const int64_t most = (a > b ? a : b) / (p * p);
	float *feats = rvi_alloc((size_t)(most * W), sizeof(float));
	if (!feats)
		return rvi_errorf(err, RV_ERR_NOMEM, "out of memory for %lld patches",
		                  (long long)most);
	int rc = RV_OK;
	const float *chw = px->data;
	for (int64_t k = 0; k <= n_slices && rc == RV_OK; k++) {
		const int w = k ? px->w2 : px->w, h = k ? px->h2 : px->h;
		rc = rvi_minicpmv_siglip(m, chw, w, h, n_threads, feats, err);
		if (rc == RV_OK)
			rc = rvi_minicpmv_resample(m, feats, h / p, w / p, n_threads,
			                           out + k * Q * D, err);
		chw += (int64_t)3 * w * h;
	}
	free(feats);
	return rc;
}

/* 2.6 was trained on ChatML with Qwen2's default system sentence; 4.5's
 * chat() applies Qwen3's template with thinking off. */
static const char *arch_chat_template_of(const void *model)
{
	return ((const rvi_minicpmv *)model)->version == 6 ? "qwen3" : "chatml";
}

static int arch_set_max_slices(void *model, int max_slices, rvi_err *err)
{
	rvi_minicpmv *m = model;
	if (max_slices < 0 || max_slices > MAX_SLICES)
		return rvi_errorf(err, RV_ERR_INVALID_ARG,
		                  "image max slices %d is out of range (1..%d, 0: the default %d)",
		                  max_slices, MAX_SLICES, DEFAULT_SLICES);
	m->max_slices = max_slices ? max_slices : DEFAULT_SLICES;
	return RV_OK;
}

/* The processor's placeholder (get_slice_image_placeholder with
 * use_image_id): "<image_id>k</image_id><image>" overview "</image>", then
 * per slice "<slice>" rows "</slice>", the slice rows joined by "\n".
 * Tokenized with special tokens parsed. */
static int arch_layout(const void *model, const rvi_embd_shape *sh, rvi_image_layout *out,
                       rvi_err *err)
{
	const rvi_minicpmv *m = model;
	const int rows = sh->tiles_h, cols = sh->tiles_w;
	const int64_t Q = m->n_query, n_slices = (int64_t)rows * cols;
	*out = (rvi_image_layout){0};
	if (rows < 0 || cols < 0 || n_slices > MAX_SLICES || (1 + n_slices) * Q != sh->rows)
		return rvi_errorf(err, RV_ERR_INTERNAL,
		                  "minicpmv layout: %dx%d slices for %lld rows", rows, cols,
		                  (long long)sh->rows);
	int rc =
	    rvi_image_layout_new(out, (int)(2 * n_slices + 3), (size_t)(n_slices + 2) * 48, err);
	if (rc != RV_OK)
		return rc;
	rvi_image_layout_text(out, "<image_id>%%d</image_id><image>");
	out->first_indexed = true;
	rvi_image_layout_rows(out, 0, Q, 1, Q);
	for (int r = 0; r < rows; r++)
		for (int c = 0; c < cols; c++) {
			rvi_image_layout_text(out, "%s%s<slice>",
			                      r == 0 && c == 0 ? "</image>" : "</slice>",
			                      r > 0 && c == 0 ? "\n" : "");
			rvi_image_layout_rows(out, (1 + (int64_t)r * cols + c) * Q, Q, 1, Q);
		}
	rvi_image_layout_text(out, "%s", n_slices ? "</slice>" : "</image>");
	return RV_OK;
}

const rvi_vision_arch rvi_minicpmv_arch = {
    .name = "resampler",
    .load = arch_load,
    .free = arch_free,
    .n_embd_out = arch_n_embd_out,
    .embd_shape = arch_embd_shape,
    .preprocess = arch_preprocess,
    .encode = arch_encode,
    .layout = arch_layout,
    .chat_template = "chatml",
    .chat_template_of = arch_chat_template_of,
    .set_max_slices = arch_set_max_slices,
};
