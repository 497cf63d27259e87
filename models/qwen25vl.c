/* qwen25vl.c: the Qwen2.5-VL vision tower and patch merger (see
 * qwen25vl.h). Loading reads the clip.vision.* keys and binds the v.* and
 * mm.* tensors; rvi_qwen25vl_encode is the forward pass top to bottom. The
 * semantics are HF's, which differ from llama.cpp's in the merger's GELU
 * (erf, not tanh) and, before this file, in preprocessing. Values the
 * converter does not store (window 112 px, merge 2, two frames, RoPE theta
 * 10000, HF's pixel limits) are those every Qwen2.5-VL uses. */
#include "models/qwen25vl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/loader.h"
#include "models/vit.h"
#include "simd/kernels.h"
#include "src/attention.h"
#include "src/image/image.h"

#define MAX_EMBD   (1 << 16)
#define MAX_FF     (1 << 18)
#define MAX_LAYERS 1024
#define MAX_HEADS  1024

/* ---- loading ----------------------------------------------------------- */

static int load_hparams(rvi_qwen25vl_hparams *hp, const rvi_gguf *g, bool qwen2vl, rvi_err *err)
{
	rvi_str s = {0};
	int rc = rvi_gguf_get_str(g, "general.architecture", true, &s, err);
	if (rc != RV_OK)
		return rc;
	if (!rvi_str_eq(s, "clip"))
		return rvi_errorf(err, RV_ERR_UNSUPPORTED,
		                  "%s: architecture \"%.*s\" is not supported for an image encoder "
		                  "(expected clip)",
		                  g->path, (int)(s.len > 64 ? 64 : s.len), s.ptr);
	memset(hp, 0, sizeof(*hp));
	hp->qwen2vl = qwen2vl;
	hp->n_wa_pattern = 1; /* Qwen2-VL: every block attends fully */
	hp->merge = 2;
	hp->temporal = 2;
	hp->window = 112;
	hp->rope_theta = 10000.0;
	hp->min_pixels = 3136;
	hp->max_pixels = 12845056;
	if ((rc = rvi_load_dim(g, "clip.vision.patch_size", true, 1, 256, &hp->patch, err)) ||
	    (rc = rvi_load_dim(g, "clip.vision.embedding_length", true, 1, MAX_EMBD, &hp->n_embd,
	                       err)) ||
	    (rc = rvi_load_dim(g, "clip.vision.feed_forward_length", true, 1, MAX_FF, &hp->n_ff,
	                       err)) ||
	    (rc = rvi_load_dim(g, "clip.vision.attention.head_count", true, 1, MAX_HEADS,
	                       &hp->n_head, err)) ||
	    (rc = rvi_load_dim(g, "clip.vision.block_count", true, 1, MAX_LAYERS, &hp->n_layer,
	                       err)) ||
	    (!qwen2vl && (rc = rvi_load_dim(g, "clip.vision.n_wa_pattern", true, 1, MAX_LAYERS,
	                                    &hp->n_wa_pattern, err))))
		return rc;
	if (hp->n_embd % hp->n_head != 0 || (hp->n_embd / hp->n_head) % 4 != 0)
		return rvi_errorf(
		    err, RV_ERR_MODEL,
		    "%s: clip.vision.embedding_length %lld over "
		    "clip.vision.attention.head_count %lld must give heads a multiple "
		    "of 4 wide (2-D rotary positions)",
		    g->path, (long long)hp->n_embd, (long long)hp->n_head);
	hp->head_dim = hp->n_embd / hp->n_head;
	if (hp->window % (hp->patch * hp->merge) != 0)
		return rvi_errorf(
		    err, RV_ERR_MODEL,
		    "%s: clip.vision.patch_size %lld: the %lld-pixel windows are not a "
		    "whole number of %lldx%lld merged patches",
		    g->path, (long long)hp->patch, (long long)hp->window, (long long)hp->merge,
		    (long long)hp->merge);
	if ((rc = rvi_gguf_get_f32(g, "clip.vision.attention.layer_norm_epsilon", true, &hp->eps,
	                           err)))
		return rc;
	if (!(hp->eps > 0 && hp->eps < 1))
		return rvi_errorf(err, RV_ERR_MODEL,
		                  "%s: clip.vision.attention.layer_norm_epsilon %g is out of range "
		                  "(0, 1)",
		                  g->path, (double)hp->eps);
	if ((rc = rvi_load_rgb(g, "clip.vision.image_mean", hp->image_mean, err)) ||
	    (rc = rvi_load_rgb(g, "clip.vision.image_std", hp->image_std, err)))
		return rc;
	for (int i = 0; i < 3; i++)
		if (!(hp->image_std[i] > 0))
			return rvi_errorf(err, RV_ERR_MODEL,
			                  "%s: clip.vision.image_std[%d] = %g must be positive",
			                  g->path, i, (double)hp->image_std[i]);
	return RV_OK;
}

/* The Conv3d kernel (W, 3, temporal, p, p), which the converter splits in
 * time into v.patch_embd.weight (frame 0) and .weight.1 (frame 1), each
 * [p, p, 3, W]; put back together as one (W, 3 * temporal * p * p) f32
 * matrix whose rows follow the patch rows' (c, t, y, x) order. */
static int load_patch_kernel(rvi_qwen25vl *m, const rvi_gguf *g, rvi_err *err)
{
	const rvi_qwen25vl_hparams *hp = &m->hp;
	const int64_t p = hp->patch, W = hp->n_embd, pp = p * p, row = 3 * hp->temporal * pp;
	static const char *const names[2] = {"v.patch_embd.weight", "v.patch_embd.weight.1"};
	const rvi_gguf_tensor *tt[2];
	/* both checked before anything is allocated: their data, which the
	 * file holds, bounds the copy */
	for (int t = 0; t < hp->temporal; t++) {
		int rc = rvi_load_tensor(g, names[t], &tt[t], err);
		if (rc != RV_OK)
			return rc;
		if (tt[t]->n_dims != 4 || tt[t]->ne[0] != p || tt[t]->ne[1] != p ||
		    tt[t]->ne[2] != 3 || tt[t]->ne[3] != W) {
			char want[80];
			snprintf(want, sizeof(want), "[%lld, %lld, 3, %lld]", (long long)p,
			         (long long)p, (long long)W);
			return rvi_load_shape_error(g, names[t], tt[t], want, err);
		}
	}
	m->patch_data = rvi_alloc((size_t)(W * row), sizeof(float));
	float *tmp = rvi_alloc((size_t)(3 * pp), sizeof(float));
	if (!m->patch_data || !tmp) {
		free(tmp);
		return rvi_errorf(err, RV_ERR_NOMEM, "out of memory");
	}
	for (int t = 0; t < hp->temporal; t++) {
		const rvi_weight w = {tt[t]->type, 3 * pp, W, tt[t]->data};
		for (int64_t o = 0; o < W; o++) {
			rvi_weight_row(&w, o, tmp);
			for (int64_t c = 0; c < 3; c++)
				memcpy(m->patch_data + o * row + (c * hp->temporal + t) * pp,
				       tmp + c * pp, (size_t)pp * sizeof(float));
		}
	}
	free(tmp);
	m->patch_embd = (rvi_weight){RVI_TYPE_F32, row, W, m->patch_data};
	return RV_OK;
}

/* Qwen2-VL's blocks are SigLIP's / CLIP's (LayerNorms with bias, fc1 and
 * fc2 with biases, which some converters name the other way round): bound
 * by vit.c and taken over. */
static int load_qwen2vl_layer(const rvi_gguf *g, const rvi_qwen25vl_hparams *hp, int64_t il,
                              rvi_qwen25vl_layer *L, rvi_err *err)
{
	rvi_vit_hparams vh = {0};
	vh.n_embd = hp->n_embd;
	vh.n_ff = hp->n_ff;
	rvi_vit_layer V = {0};
	const int rc = rvi_vit_load_layer(g, &vh, il, &V, err);
	*L = (rvi_qwen25vl_layer){.ln1 = V.ln1_w,
	                          .ln2 = V.ln2_w,
	                          .ln1_b = V.ln1_b,
	                          .ln2_b = V.ln2_b,
	                          .wq = V.wq,
	                          .wk = V.wk,
	                          .wv = V.wv,
	                          .wo = V.wo,
	                          .bq = V.bq,
	                          .bk = V.bk,
	                          .bv = V.bv,
	                          .bo = V.bo,
	                          .up = V.fc1,
	                          .up_b = V.fc1_b,
	                          .down = V.fc2,
	                          .down_b = V.fc2_b};
	return rc;
}

static int load_layer(const rvi_gguf *g, const rvi_qwen25vl_hparams *hp, int64_t il,
                      rvi_qwen25vl_layer *L, rvi_err *err)
{
	if (hp->qwen2vl)
		return load_qwen2vl_layer(g, hp, il, L, err);
	const int64_t W = hp->n_embd, F = hp->n_ff;
	char name[96];
	int rc;
	rvi_weight *const aw[4] = {&L->wq, &L->wk, &L->wv, &L->wo};
	float **const ab[4] = {&L->bq, &L->bk, &L->bv, &L->bo};
#define TNAME(suffix) (snprintf(name, sizeof(name), "v.blk.%lld." suffix, (long long)il), name)
	if ((rc = rvi_load_floats(g, TNAME("ln1.weight"), W, 0, &L->ln1, err)) ||
	    (rc = rvi_load_floats(g, TNAME("ln2.weight"), W, 0, &L->ln2, err)) ||
	    (rc = rvi_vit_load_attn(g, il, W, aw, ab, err)) ||
	    (rc = rvi_load_weight(g, TNAME("ffn_gate.weight"), W, F, &L->gate, err)) ||
	    (rc = rvi_load_floats(g, TNAME("ffn_gate.bias"), F, 0, &L->gate_b, err)) ||
	    (rc = rvi_load_weight(g, TNAME("ffn_up.weight"), W, F, &L->up, err)) ||
	    (rc = rvi_load_floats(g, TNAME("ffn_up.bias"), F, 0, &L->up_b, err)) ||
	    (rc = rvi_load_weight(g, TNAME("ffn_down.weight"), F, W, &L->down, err)) ||
	    (rc = rvi_load_floats(g, TNAME("ffn_down.bias"), W, 0, &L->down_b, err)))
		return rc;
#undef TNAME
	return RV_OK;
}

static int load_model(rvi_qwen25vl *m, const rvi_gguf *g, bool qwen2vl, rvi_err *err)
{
	memset(m, 0, sizeof(*m));
	rvi_qwen25vl_hparams *hp = &m->hp;
	int rc = load_hparams(hp, g, qwen2vl, err);
	if (rc != RV_OK)
		return rc;
	if ((rc = rvi_load_check_blocks(g, "v.blk.", hp->n_layer, "clip.vision.block_count", err)))
		return rc;
	m->path = g->path;
	const int64_t W = hp->n_embd, mm_in = W * hp->merge * hp->merge;
	if ((rc = load_patch_kernel(m, g, err)))
		goto fail;
	m->layers = rvi_zalloc((size_t)hp->n_layer, sizeof(*m->layers));
	if (!m->layers) {
		rc = rvi_errorf(err, RV_ERR_NOMEM, "out of memory");
		goto fail;
	}
	for (int64_t il = 0; il < hp->n_layer; il++)
		if ((rc = load_layer(g, hp, il, &m->layers[il], err)))
			goto fail;
	/* the merger: mm.0 [W * merge^2, hidden], mm.2 [hidden, text width] */
	const rvi_gguf_tensor *t0, *t2;
	if ((rc = rvi_load_floats(g, "v.post_ln.weight", W, 0, &m->post_ln, err)) ||
	    (qwen2vl && (rc = rvi_load_floats(g, "v.post_ln.bias", W, 0, &m->post_ln_b, err))) ||
	    (rc = rvi_load_tensor(g, "mm.0.weight", &t0, err)) ||
	    (rc = rvi_load_tensor(g, "mm.2.weight", &t2, err)))
		goto fail;
	hp->n_mm_hidden = t0->n_dims == 2 ? t0->ne[1] : 0;
	hp->n_out = t2->n_dims == 2 ? t2->ne[1] : 0;
	if (hp->n_mm_hidden < 1 || hp->n_mm_hidden > MAX_FF || hp->n_out < 1 ||
	    hp->n_out > MAX_EMBD) {
		rc = rvi_errorf(err, RV_ERR_MODEL,
		                "%s: mm.0.weight / mm.2.weight are not matrices "
		                "of sane widths",
		                g->path);
		goto fail;
	}
	if ((rc = rvi_load_weight(g, "mm.0.weight", mm_in, hp->n_mm_hidden, &m->mm0, err)) ||
	    (rc = rvi_load_floats(g, "mm.0.bias", hp->n_mm_hidden, 0, &m->mm0_b, err)) ||
	    (rc = rvi_load_weight(g, "mm.2.weight", hp->n_mm_hidden, hp->n_out, &m->mm2, err)) ||
	    (rc = rvi_load_floats(g, "mm.2.bias", hp->n_out, 0, &m->mm2_b, err)))
		goto fail;
	return RV_OK;
fail:
	rvi_qwen25vl_free(m);
	return rc;
}

int rvi_qwen25vl_load(rvi_qwen25vl *m, const rvi_gguf *g, rvi_err *err)
{
	return load_model(m, g, false, err);
}

int rvi_qwen2vl_load(rvi_qwen25vl *m, const rvi_gguf *g, rvi_err *err)
{
	return load_model(m, g, true, err);
}

void rvi_qwen25vl_free(rvi_qwen25vl *m)
{
	for (int64_t il = 0; m->layers && il < m->hp.n_layer; il++) {
		rvi_qwen25vl_layer *L = &m->layers[il];
		float *v[] = {L->ln1, L->ln2, L->ln1_b,  L->ln2_b, L->bq,    L->bk,
		              L->bv,  L->bo,  L->gate_b, L->up_b,  L->down_b};
		for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
			free(v[i]);
	}
	free(m->layers);
	free(m->patch_data);
	free(m->post_ln);
	free(m->post_ln_b);
	free(m->mm0_b);
	free(m->mm2_b);
	memset(m, 0, sizeof(*m));
}

/* ---- forward ----------------------------------------------------------- */

/* Window order (HF get_window_index): the merged grid (mh x mw) tiled
 * from the top-left into ws x ws windows (the last row and column may be
 * partial), windows row-major, tokens row-major inside each. widx[k] is the
 * merged token at window-order place k; bounds (n_win + 1) the windows'
 * first patch rows (merge^2 rows a token). Returns n_win. */
static int64_t window_order(int64_t mh, int64_t mw, int64_t ws, int64_t rows_per_token,
                            int64_t *widx, int64_t *bounds)
{
	int64_t k = 0, n_win = 0;
	bounds[0] = 0;
	for (int64_t wy = 0; wy < mh; wy += ws)
		for (int64_t wx = 0; wx < mw; wx += ws) {
			for (int64_t r = wy; r < mh && r < wy + ws; r++)
				for (int64_t c = wx; c < mw && c < wx + ws; c++)
					widx[k++] = r * mw + c;
			bounds[++n_win] = k * rows_per_token;
		}
	return n_win;
}

/* x (n_heads, hd) of one row rotated by angles (hd / 2 cos, sin pairs):
 * HF's rotate_half, pair i is (x[i], x[i + hd/2]). */
static void rope_half(float *x, int64_t n_heads, int64_t hd, const float *cs)
{
	for (int64_t h = 0; h < n_heads; h++) {
		float *v = x + h * hd;
		for (int64_t i = 0; i < hd / 2; i++) {
			const float c = cs[2 * i], s = cs[2 * i + 1];
			const float a = v[i], b = v[i + hd / 2];
			v[i] = a * c - b * s;
			v[i + hd / 2] = a * s + b * c;
		}
	}
}

/* y (n, W) = RMSNorm(x) * w, or for Qwen2-VL LayerNorm(x) * w + b */
static void norm(const rvi_qwen25vl_hparams *hp, float *y, const float *x, const float *w,
                 const float *b, int64_t n, float eps, int nt)
{
	if (hp->qwen2vl)
		rvi_vit_layer_norm(y, x, w, b, n, hp->n_embd, eps, nt);
	else
		rvi_vit_rms_norm(y, x, w, n, hp->n_embd, eps, nt);
}

int rvi_qwen25vl_encode(const rvi_qwen25vl *m, const float *patches, int64_t grid_h, int64_t grid_w,
                        int n_threads, float *out, float *vit, rvi_err *err)
{
	const rvi_qwen25vl_hparams *hp = &m->hp;
	const int64_t mg = hp->merge, rpt = mg * mg;
	if (!m->layers || grid_h < mg || grid_w < mg || grid_h % mg || grid_w % mg ||
	    grid_h > 65536 || grid_w > 65536)
		return rvi_errorf(err, RV_ERR_INVALID_ARG,
		                  "%s: a %lldx%lld patch grid is not whole %lldx%lld merged tokens",
		                  m->path ? m->path : "mmproj", (long long)grid_h,
		                  (long long)grid_w, (long long)mg, (long long)mg);
	const int64_t n = grid_h * grid_w, nm = n / rpt, mh = grid_h / mg, mw = grid_w / mg;
	const int64_t W = hp->n_embd, F = hp->n_ff, hd = hp->head_dim, P1 = hp->n_mm_hidden;
	/* windows of ws x ws merged tokens; with full attention everywhere one
	 * window of the whole grid (the identity order) */
	const int64_t ws =
	    hp->n_wa_pattern > 1 ? hp->window / (hp->patch * mg) : (mh > mw ? mh : mw);
	const int nt = n_threads < 1 ? 1 : n_threads;
	const rvk_table *K = rvk_active();
	const rvi_attn_heads heads = {hp->n_head, hp->n_head, hd, (float)(1.0 / sqrt((double)hd))};

	const uint64_t nw = (uint64_t)(n * W);
	const uint64_t size[] = {nw,
	                         nw,
	                         nw,
	                         nw,
	                         nw,
	                         nw,
	                         (uint64_t)(n * F),
	                         (uint64_t)(n * F),
	                         (uint64_t)(n * hd),
	                         (uint64_t)(nm * P1),
	                         (uint64_t)(nm * hp->n_out),
	                         rvi_attn_full_scratch(&heads, n, nt)};
	float *x, *xb, *q, *k, *v, *ao; /* (n, W) */
	float *hb, *hb2;                /* (n, F) */
	float *cs;                      /* (n, hd / 2, 2) cos, sin */
	float *hm;                      /* (nm, P1) */
	float *om;                      /* (nm, n_out), window order */
	float *scores;
	float **const region[] = {&x, &xb, &q, &k, &v, &ao, &hb, &hb2, &cs, &hm, &om, &scores};
	rvi_arena act = {0};
	rvi_buf scr = {0};
	int64_t *widx = rvi_alloc((size_t)nm, sizeof(int64_t));
	int64_t *bounds = rvi_alloc((size_t)nm + 1, sizeof(int64_t));
	if (!widx || !bounds ||
	    rvi_arena_alloc(&act, size, region, (int)(sizeof(size) / sizeof(size[0]))) != RV_OK) {
		free(widx);
		free(bounds);
		return rvi_errorf(
		    err, RV_ERR_NOMEM,
		    "out of memory for the image encoder's activations (%lld patches)",
		    (long long)n);
	}
	int rc = RV_OK;
	const char *what = "patch embedding";
	const int64_t n_win = window_order(mh, mw, ws, rpt, widx, bounds);

	/* xb (n, W) = patches (n, 3*T*p*p) @ conv3d^T, in merge order */
	if ((rc = rvi_vit_linear(&m->patch_embd, NULL, patches, n, xb, nt, &scr)))
		goto done;
	/* x (n, W): the merged tokens (rpt rows each) in window order; cs the
	 * 2-D rotary angles of each row's patch: the first hd/4 pairs turn by
	 * its patch row, the next hd/4 by its column, inv[j] = theta^(-4j/hd) */
	for (int64_t kk = 0; kk < nm; kk++) {
		const int64_t tok = widx[kk], bh = tok / mw, bw = tok % mw;
		memcpy(x + kk * rpt * W, xb + tok * rpt * W, (size_t)(rpt * W) * sizeof(float));
		for (int64_t j = 0; j < rpt; j++) {
			const double py = (double)(bh * mg + j / mg),
			             px = (double)(bw * mg + j % mg);
			float *c = cs + (kk * rpt + j) * hd;
			for (int64_t i = 0; i < hd / 2; i++) {
				const int64_t f = i < hd / 4 ? i : i - hd / 4;
				const double inv =
				    pow(hp->rope_theta, -4.0 * (double)f / (double)hd);
				const double th = (i < hd / 4 ? py : px) * inv;
				c[2 * i] = (float)cos(th);
				c[2 * i + 1] = (float)sin(th);
			}
		}
	}

	what = "encoder block";
	for (int64_t il = 0; il < hp->n_layer; il++) {
		const rvi_qwen25vl_layer *L = &m->layers[il];
		const bool full = (il + 1) % hp->n_wa_pattern == 0;

		/* xb = rmsnorm(x) * ln1 (Qwen2-VL: LayerNorm); q, k, v (n, W) =
		 * xb @ W^T + b, rotated */
		norm(hp, xb, x, L->ln1, L->ln1_b, n, hp->eps, nt);
		if ((rc = rvi_vit_linear(&L->wq, L->bq, xb, n, q, nt, &scr)) ||
		    (rc = rvi_vit_linear(&L->wk, L->bk, xb, n, k, nt, &scr)) ||
		    (rc = rvi_vit_linear(&L->wv, L->bv, xb, n, v, nt, &scr)))
			goto done;
		for (int64_t t = 0; t < n; t++) {
			rope_half(q + t * W, hp->n_head, hd, cs + t * hd);
			rope_half(k + t * W, hp->n_head, hd, cs + t * hd);
		}

		/* ao (n, W) = softmax(q k^T / sqrt(hd)) v: over all rows on the
		 * full-attention layers, else within each window (block-diagonal,
		 * computed window by window) */
		rvi_attn_full(&heads, q, k, v, ao, n, full ? NULL : bounds, full ? 0 : n_win,
		              scores, nt);

		/* x += ao @ Wo^T + bo */
		if ((rc = rvi_vit_linear(&L->wo, L->bo, ao, n, xb, nt, &scr)))
			goto done;
		rvi_vit_add(x, xb, n * W, nt);

		/* xb = rmsnorm(x) * ln2; x += down(silu(gate(xb)) * up(xb));
		 * Qwen2-VL: LayerNorm, x += fc2(quick_gelu(fc1(xb))) */
		norm(hp, xb, x, L->ln2, L->ln2_b, n, hp->eps, nt);
		if (hp->qwen2vl) {
			if ((rc = rvi_vit_linear(&L->up, L->up_b, xb, n, hb, nt, &scr)))
				goto done;
			rvi_vit_activate(hb, n * F, RVI_VIT_QUICK_GELU, nt);
		} else {
			if ((rc = rvi_vit_linear(&L->gate, L->gate_b, xb, n, hb, nt, &scr)) ||
			    (rc = rvi_vit_linear(&L->up, L->up_b, xb, n, hb2, nt, &scr)))
				goto done;
			K->swiglu(hb, hb2, n * F);
		}
		if ((rc = rvi_vit_linear(&L->down, L->down_b, hb, n, xb, nt, &scr)))
			goto done;
		rvi_vit_add(x, xb, n * W, nt);
	}
	if (vit)
		memcpy(vit, x, (size_t)(n * W) * sizeof(float));

	/* merger: xb = rmsnorm(x) * ln_q (HF fixes its eps at 1e-6), read as
	 * (nm, merge^2 * W): a merged token's rows side by side;
	 * om (nm, n_out) = mm2(gelu_erf(mm0(xb))) */
	what = "merger";
	norm(hp, xb, x, m->post_ln, m->post_ln_b, n, 1e-6f, nt);
	if ((rc = rvi_vit_linear(&m->mm0, m->mm0_b, xb, nm, hm, nt, &scr)))
		goto done;
	rvi_vit_activate(hm, nm * P1, RVI_VIT_GELU_ERF, nt);
	if ((rc = rvi_vit_linear(&m->mm2, m->mm2_b, hm, nm, om, nt, &scr)))
		goto done;
	/* out: back from window order to row-major merged tokens */
	for (int64_t kk = 0; kk < nm; kk++)
		memcpy(out + widx[kk] * hp->n_out, om + kk * hp->n_out,
		       (size_t)hp->n_out * sizeof(float));

done:
	if (rc != RV_OK)
		rc = rvi_errorf(err, rc, "%s: image encoder failed in the %s (%s)",
		                m->path ? m->path : "mmproj", what,
		                rc == RV_ERR_NOMEM ? "out of memory" : "unusable weight");
	free(widx);
	free(bounds);
	rvi_buf_free(&scr);
	rvi_arena_free(&act);
	return rc;
}

/* ---- the family's table ------------------------------------------------- */

RVI_ARCH_LOAD_FREE(rvi_qwen25vl, rvi_qwen25vl_load, rvi_qwen25vl_free)

static int load_qwen2vl_into(void *obj, const rvi_gguf *g, rvi_err *err)
{
	return rvi_qwen2vl_load(obj, g, err);
}
RVI_ARCH_LOAD(arch_load_qwen2vl, rvi_qwen25vl, load_qwen2vl_into)

static int64_t arch_n_embd_out(const void *model)
{
	return ((const rvi_qwen25vl *)model)->hp.n_out;
}

/* The size smart_resize gives, and its merged-token grid. */
static int resized(const rvi_qwen25vl *m, int w, int h, const rvi_image_limits *lim, int *rw,
                   int *rh, rvi_embd_shape *out, rvi_err *err)
{
	const rvi_qwen25vl_hparams *hp = &m->hp;
	const int factor = (int)(hp->patch * hp->merge);
	const int64_t lo = lim && lim->resize_min_pixels ? lim->resize_min_pixels : hp->min_pixels;
	const int64_t hi = lim && lim->resize_max_pixels ? lim->resize_max_pixels : hp->max_pixels;
	int rc = rvi_qwen2vl_smart_resize(w, h, factor, lo, hi, rw, rh, err);
	if (rc != RV_OK)
		return rc;
	const int64_t gh = *rh / factor, gw = *rw / factor;
	*out = (rvi_embd_shape){gh * gw, gh, gw, 0, 0};
	return RV_OK;
}

static int arch_embd_shape(const void *model, int w, int h, const rvi_image_limits *lim,
                           rvi_embd_shape *out, rvi_err *err)
{
	int rw, rh;
	return resized(model, w, h, lim, &rw, &rh, out, err);
}

static int arch_preprocess(const void *model, const rvi_image *img, const rvi_image_limits *lim,
                           rvi_pixels *out, rvi_err *err)
{
	const rvi_qwen25vl *m = model;
	const rvi_qwen25vl_hparams *hp = &m->hp;
	*out = (rvi_pixels){0};
	int rw, rh;
	int rc = resized(m, img->w, img->h, lim, &rw, &rh, &out->shape, err);
	if (rc != RV_OK)
		return rc;
	const int64_t plane = (int64_t)rw * rh, row = 3 * hp->temporal * hp->patch * hp->patch;
	const int64_t n = plane / (hp->patch * hp->patch);
	float *chw = rvi_alloc((size_t)(3 * plane), sizeof(float));
	out->data = rvi_alloc((size_t)(n * row), sizeof(float));
	if (!chw || !out->data) {
		free(chw);
		rvi_pixels_free(out);
		return rvi_errorf(err, RV_ERR_NOMEM, "out of memory for a %dx%d image", rw, rh);
	}
	out->n_floats = n * row;
	out->w = rw;
	out->h = rh;
	rc = rvi_image_preprocess_qwen2vl(img, rw, rh, hp->image_mean, hp->image_std, chw, err);
	if (rc == RV_OK)
		rvi_qwen2vl_patches(chw, rw, rh, (int)hp->patch, (int)hp->merge, (int)hp->temporal,
		                    out->data);
	free(chw);
	if (rc != RV_OK)
		rvi_pixels_free(out);
	return rc;
}

static int arch_encode(const void *model, const rvi_pixels *px, int n_threads, float *out,
                       rvi_err *err)
{
	const rvi_qwen25vl *m = model;
	return rvi_qwen25vl_encode(m, px->data, px->h / m->hp.patch, px->w / m->hp.patch, n_threads,
	                           out, NULL, err);
}

/* <|vision_start|> the image's merged tokens <|vision_end|>, as the
 * Qwen2.5-VL processor expands each image. */
static int arch_layout(const void *model, const rvi_embd_shape *shape, rvi_image_layout *out,
                       rvi_err *err)
{
	(void)model;
	static const char start[] = "<|vision_start|>", end[] = "<|vision_end|>";
	*out = (rvi_image_layout){0};
	out->pieces = calloc(3, sizeof(*out->pieces));
	out->text = malloc(sizeof(start) + sizeof(end));
	if (!out->pieces || !out->text) {
		rvi_image_layout_free(out);
		return rvi_errorf(err, RV_ERR_NOMEM, "out of memory");
	}
	memcpy(out->text, start, sizeof(start));
	memcpy(out->text + sizeof(start), end, sizeof(end));
	out->pieces[0] = (rvi_layout_piece){out->text, 0, 0, 0, 0};
	out->pieces[1] = (rvi_layout_piece){NULL, 0, shape->rows, shape->grid_h, shape->grid_w};
	out->pieces[2] = (rvi_layout_piece){out->text + sizeof(start), 0, 0, 0, 0};
	out->n = 3;
	return RV_OK;
}

/* The two towers share everything but the loading (hp.qwen2vl). */
#define QWEN_VISION_TABLE(projector, load_fn)                                                      \
	{                                                                                          \
		.name = projector, .load = load_fn, .free = arch_free,                             \
		.n_embd_out = arch_n_embd_out, .embd_shape = arch_embd_shape,                      \
		.preprocess = arch_preprocess, .encode = arch_encode, .layout = arch_layout,       \
		.chat_template = "qwen2-vl",                                                       \
	}

const rvi_vision_arch rvi_qwen25vl_arch = QWEN_VISION_TABLE("qwen2.5vl_merger", arch_load);
const rvi_vision_arch rvi_qwen2vl_merger_arch =
    QWEN_VISION_TABLE("qwen2vl_merger", arch_load_qwen2vl);
