/* vit.c: the pieces the ViT-style vision encoders share (see vit.h):
 * hyperparameters, block weights and the pre-norm block's forward pass,
 * LayerNorm, activations, linear layers. */
#include "models/vit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "models/loader.h"
#include "simd/kernels.h"
#include "src/attention.h"

/* ---- loading ----------------------------------------------------------- */

/* Sanity bounds: far above any published ViT, far below what would make
 * size arithmetic or allocations absurd. Every tensor's size is also
 * bounded by the file that holds it. */
#define MAX_IMAGE  8192
#define MAX_EMBD   (1 << 16)
#define MAX_FF     (1 << 18)
#define MAX_LAYERS 1024
#define MAX_HEADS  1024

/* The patch-embedding convolution kernel, [p, p, 3, W] in GGUF order, i.e.
 * PyTorch's (W, 3, p, p): row o holds output channel o's 3*p*p weights in
 * (channel, ky, kx) order, so the stride-p convolution is a matmul against
 * patches flattened the same way. */
int rvi_vit_bind_patch_kernel(const rvi_gguf *g, const rvi_vit_hparams *hp, rvi_weight *w,
                              rvi_err *err)
{
	const char *name = "v.patch_embd.weight";
	const int64_t p = hp->patch_size;
	const rvi_gguf_tensor *t;
	int rc = rvi_load_tensor(g, name, &t, err);
	if (rc != RV_OK)
		return rc;
	if (t->n_dims != 4 || t->ne[0] != p || t->ne[1] != p || t->ne[2] != 3 ||
	    t->ne[3] != hp->n_embd) {
		char want[80];
		snprintf(want, sizeof(want), "[%lld, %lld, 3, %lld]", (long long)p, (long long)p,
		         (long long)hp->n_embd);
		return rvi_load_shape_error(g, name, t, want, err);
	}
	w->type = t->type;
	w->n_in = 3 * p * p;
	w->n_out = hp->n_embd;
	w->data = t->data;
	return RV_OK;
}

void rvi_vit_patches(const float *chw, int64_t S, int64_t p, float *patches)
{
	const int64_t side = S / p, kpp = 3 * p * p;
	for (int64_t py = 0; py < side; py++)
		for (int64_t px = 0; px < side; px++) {
			float *dst = patches + (py * side + px) * kpp;
			for (int64_t ch = 0; ch < 3; ch++)
				for (int64_t ky = 0; ky < p; ky++)
					memcpy(dst + (ch * p + ky) * p,
					       chw + (ch * S + py * p + ky) * S + px * p,
					       (size_t)p * sizeof(float));
		}
}

int rvi_vit_load_hparams(rvi_vit_hparams *hp, const rvi_gguf *g, const char *projector,
                         rvi_err *err)
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
	/* Converters before projector types existed wrote no key: their
	 * projector is LLaVA-1.5's two-layer MLP. */
	s = (rvi_str){"mlp", 3};
	if ((rc = rvi_gguf_get_str(g, "clip.projector_type", false, &s, err)))
		return rc;
	if (!rvi_str_eq(s, projector))
		return rvi_errorf(
		    err, RV_ERR_UNSUPPORTED,
		    "%s: clip.projector_type \"%.*s\" is not supported here (expected "
		    "%s)",
		    g->path, (int)(s.len > 64 ? 64 : s.len), s.ptr, projector);
	bool has_vision = true;
	if ((rc = rvi_gguf_get_bool(g, "clip.has_vision_encoder", false, &has_vision, err)))
		return rc;
	if (!has_vision)
		return rvi_errorf(err, RV_ERR_UNSUPPORTED,
		                  "%s: clip.has_vision_encoder is false: no image encoder in this "
		                  "file",
		                  g->path);

	/* clip.vision.projection_dim is only range-checked: converters store
	 * CLIP's contrastive projection width there (768 for ViT-L, sometimes
	 * 0), not the LLM width, which the families read from their
	 * projector's tensors. */
	memset(hp, 0, sizeof(*hp));
	if ((rc = rvi_load_dim(g, "clip.vision.image_size", true, 1, MAX_IMAGE, &hp->image_size,
	                       err)) ||
	    (rc = rvi_load_dim(g, "clip.vision.patch_size", true, 1, MAX_IMAGE, &hp->patch_size,
	                       err)) ||
	    (rc = rvi_load_dim(g, "clip.vision.embedding_length", true, 1, MAX_EMBD, &hp->n_embd,
	                       err)) ||
	    (rc = rvi_load_dim(g, "clip.vision.feed_forward_length", true, 1, MAX_FF, &hp->n_ff,
	                       err)) ||
	    (rc = rvi_load_dim(g, "clip.vision.attention.head_count", true, 1, MAX_HEADS,
	                       &hp->n_head, err)) ||
	    (rc = rvi_load_dim(g, "clip.vision.block_count", true, 1, MAX_LAYERS, &hp->n_layer,
	                       err)) ||
	    (rc = rvi_load_dim(g, "clip.vision.projection_dim", false, 0, MAX_EMBD,
	                       &hp->projection_dim_key, err)))
		return rc;
	/* A side that is not a multiple of the patch (SigLIP so400m/14 at 384
	 * pixels in SmolVLM2-2.2B: 27 patches, 378 pixels) loses the rest at
	 * the right and bottom, as HF's unpadded stride-p convolution does. */
	if (hp->patch_size > hp->image_size)
		return rvi_errorf(err, RV_ERR_MODEL,
		                  "%s: clip.vision.patch_size %lld is larger than "
		                  "clip.vision.image_size %lld",
		                  g->path, (long long)hp->patch_size, (long long)hp->image_size);
	if (hp->n_embd % hp->n_head != 0)
		return rvi_errorf(err, RV_ERR_MODEL,
		                  "%s: clip.vision.embedding_length %lld is not a multiple of "
		                  "clip.vision.attention.head_count %lld",
		                  g->path, (long long)hp->n_embd, (long long)hp->n_head);
	hp->head_dim = hp->n_embd / hp->n_head;
	const int64_t side = hp->image_size / hp->patch_size;
	hp->n_patches = side * side; /* <= MAX_IMAGE^2: no overflow */

	if ((rc = rvi_gguf_get_f32(g, "clip.vision.attention.layer_norm_epsilon", true, &hp->eps,
	                           err)))
		return rc;
	if (!(hp->eps > 0 && hp->eps < 1))
		return rvi_errorf(err, RV_ERR_MODEL,
		                  "%s: clip.vision.attention.layer_norm_epsilon %g is out of range "
		                  "(0, 1)",
		                  g->path, (double)hp->eps);
	hp->use_gelu = false;
	if ((rc = rvi_gguf_get_bool(g, "clip.use_gelu", false, &hp->use_gelu, err)) ||
	    (rc = rvi_load_rgb(g, "clip.vision.image_mean", hp->image_mean, err)) ||
	    (rc = rvi_load_rgb(g, "clip.vision.image_std", hp->image_std, err)))
		return rc;
	for (int i = 0; i < 3; i++)
		if (!(hp->image_std[i] > 0))
			return rvi_errorf(err, RV_ERR_MODEL,
			                  "%s: clip.vision.image_std[%d] = %g must be positive",
			                  g->path, i, (double)hp->image_std[i]);

	/* Newer converters may name the layer(s) whose output feeds the
	 * projector. Only "the output of the last stored block" is what we
	 * compute; intermediate or multi-layer features (LLaVA-NeXT style
	 * variants) would silently give other embeddings, so refuse them. */
	const rvi_gguf_kv *fl = NULL;
	if ((rc =
	         rvi_gguf_get_arr(g, "clip.vision.feature_layer", false, RVI_GGUF_INT64, &fl, err)))
		return rc;
	if (fl && !(fl->arr_n == 1 && rvi_gguf_arr_i64(fl, 0) == hp->n_layer))
		return rvi_errorf(
		    err, RV_ERR_UNSUPPORTED,
		    "%s: clip.vision.feature_layer (%llu values, first %lld) asks for "
		    "features other than the last of the %lld stored blocks",
		    g->path, (unsigned long long)fl->arr_n,
		    (long long)(fl->arr_n ? rvi_gguf_arr_i64(fl, 0) : -1), (long long)hp->n_layer);
	return RV_OK;
}

int rvi_vit_load_attn(const rvi_gguf *g, int64_t il, int64_t W, rvi_weight *const w[4],
                      float **const b[4], rvi_err *err)
{
	static const char *const proj[4] = {"attn_q", "attn_k", "attn_v", "attn_out"};
	char name[96];
	int rc = RV_OK;
	for (int i = 0; rc == RV_OK && i < 4; i++) {
		snprintf(name, sizeof(name), "v.blk.%lld.%s.weight", (long long)il, proj[i]);
		rc = rvi_load_weight(g, name, W, W, w[i], err);
		snprintf(name, sizeof(name), "v.blk.%lld.%s.bias", (long long)il, proj[i]);
		if (rc == RV_OK)
			rc = rvi_load_floats(g, name, W, 0, b[i], err);
	}
	return rc;
}

int rvi_vit_load_layer(const rvi_gguf *g, const rvi_vit_hparams *hp, int64_t il, rvi_vit_layer *L,
                       rvi_err *err)
{
	const int64_t W = hp->n_embd, F = hp->n_ff;
	char name[96];
	int rc;
#define TNAME(suffix) (snprintf(name, sizeof(name), "v.blk.%lld." suffix, (long long)il), name)
	rvi_weight *const aw[4] = {&L->wq, &L->wk, &L->wv, &L->wo};
	float **const ab[4] = {&L->bq, &L->bk, &L->bv, &L->bo};
	if ((rc = rvi_load_floats(g, TNAME("ln1.weight"), W, 0, &L->ln1_w, err)) ||
	    (rc = rvi_load_floats(g, TNAME("ln1.bias"), W, 0, &L->ln1_b, err)) ||
	    (rc = rvi_vit_load_attn(g, il, W, aw, ab, err)) ||
	    (rc = rvi_load_floats(g, TNAME("ln2.weight"), W, 0, &L->ln2_w, err)) ||
	    (rc = rvi_load_floats(g, TNAME("ln2.bias"), W, 0, &L->ln2_b, err)))
		return rc;

	/* fc1 (W -> F) is normally ffn_up and fc2 (F -> W) ffn_down,
	 * but some converters wrote them the other way round. The shapes tell
	 * which is which (when W != F); biases follow their weights. */
	const rvi_gguf_tensor *up = rvi_gguf_find_tensor(g, TNAME("ffn_up.weight"));
	const rvi_gguf_tensor *down = rvi_gguf_find_tensor(g, TNAME("ffn_down.weight"));
	const bool swapped = up && down && W != F && up->n_dims == 2 && down->n_dims == 2 &&
	                     up->ne[0] == F && up->ne[1] == W && down->ne[0] == W &&
	                     down->ne[1] == F;
	const char *fc1 = swapped ? "ffn_down" : "ffn_up";
	const char *fc2 = swapped ? "ffn_up" : "ffn_down";
#undef TNAME
#define TNAME2(part, suffix)                                                                       \
	(snprintf(name, sizeof(name), "v.blk.%lld.%s.%s", (long long)il, part, suffix), name)
	if ((rc = rvi_load_weight(g, TNAME2(fc1, "weight"), W, F, &L->fc1, err)) ||
	    (rc = rvi_load_floats(g, TNAME2(fc1, "bias"), F, 0, &L->fc1_b, err)) ||
	    (rc = rvi_load_weight(g, TNAME2(fc2, "weight"), F, W, &L->fc2, err)) ||
	    (rc = rvi_load_floats(g, TNAME2(fc2, "bias"), W, 0, &L->fc2_b, err)))
		return rc;
#undef TNAME2
	return RV_OK;
}

void rvi_vit_layer_free(rvi_vit_layer *L)
{
	float *v[] = {L->ln1_w, L->ln1_b, L->bq,    L->bk,    L->bv,
	              L->bo,    L->ln2_w, L->ln2_b, L->fc1_b, L->fc2_b};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		free(v[i]);
	memset(L, 0, sizeof(*L));
}

int rvi_vit_load_layers(const rvi_gguf *g, const rvi_vit_hparams *hp, rvi_vit_layer **layers,
                        rvi_err *err)
{
	rvi_vit_layer *L = rvi_zalloc((size_t)hp->n_layer, sizeof(*L));
	*layers = NULL;
	if (!L)
		return rvi_errorf(err, RV_ERR_NOMEM, "out of memory");
	for (int64_t il = 0; il < hp->n_layer; il++) {
		int rc = rvi_vit_load_layer(g, hp, il, &L[il], err);
		if (rc != RV_OK) {
			rvi_vit_layers_free(L, il + 1);
			return rc;
		}
	}
	*layers = L;
	return RV_OK;
}

void rvi_vit_layers_free(rvi_vit_layer *layers, int64_t n)
{
	for (int64_t il = 0; layers && il < n; il++)
		rvi_vit_layer_free(&layers[il]);
	free(layers);
}

/* ---- forward ----------------------------------------------------------- */

/* Element-wise loops below this many elements stay on the calling thread. */
#define MIN_PARALLEL_ELEMS (1 << 14)

/* y (n, d) = LayerNorm(x) * w + b, row by row (the kernel table's
 * layernorm: mean and biased variance in double); y may be x. */
void rvi_vit_layer_norm(float *y, const float *x, const float *w, const float *b, int64_t n,
                        int64_t d, float eps, int nt)
{
	const rvk_table *K = rvk_active();
	(void)nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && n * d >= MIN_PARALLEL_ELEMS)
#endif
	for (int64_t t = 0; t < n; t++)
		K->layernorm(y + t * d, x + t * d, w, b, d, eps);
}

/* y (n, d) = x / sqrt(mean(x^2) + eps) * w, row by row; y may be x. The
 * mean square in double, as layer_norm. */
void rvi_vit_rms_norm(float *y, const float *x, const float *w, int64_t n, int64_t d, float eps,
                      int nt)
{
	(void)nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && n * d >= MIN_PARALLEL_ELEMS)
#endif
	for (int64_t t = 0; t < n; t++) {
		const float *xr = x + t * d;
		float *yr = y + t * d;
		double ss = 0;
		for (int64_t i = 0; i < d; i++)
			ss += (double)xr[i] * (double)xr[i];
		const double inv = 1.0 / sqrt(ss / (double)d + (double)eps);
		for (int64_t i = 0; i < d; i++)
			yr[i] = (float)((double)xr[i] * inv) * w[i];
	}
}

/* x (n) = act(x) by the kernel table's gelu_erf, gelu_tanh or gelu_quick
 * (GELU in double, as close to the float64 references as is cheap). Each
 * element on its own, so any split over threads gives the same bits. */
void rvi_vit_activate(float *x, int64_t n, rvi_vit_act act, int nt)
{
	const rvk_table *K = rvk_active();
	void (*const f)(float *, int64_t) = act == RVI_VIT_GELU_ERF    ? K->gelu_erf
	                                    : act == RVI_VIT_GELU_TANH ? K->gelu_tanh
	                                                               : K->gelu_quick;
	const int64_t chunk = MIN_PARALLEL_ELEMS / 4;
	(void)nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && n >= MIN_PARALLEL_ELEMS)
#endif
	for (int64_t c = 0; c < n; c += chunk)
		f(x + c, n - c < chunk ? n - c : chunk);
}

/* x (n) += y (n), over the threads: a residual connection. */
void rvi_vit_add(float *x, const float *y, int64_t n, int nt)
{
	(void)nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && n >= MIN_PARALLEL_ELEMS)
#endif
	for (int64_t i = 0; i < n; i++)
		x[i] += y[i];
}

/* y (n, n_out) = x (n, n_in) @ W^T + b: a torch nn.Linear. */
int rvi_vit_linear(const rvi_weight *W, const float *b, const float *x, int64_t n, float *y, int nt,
                   rvi_buf *scratch)
{
	return rvi_matmul_bias(W, b, x, n, y, nt, scratch);
}

void rvi_vit_work_sizes(const rvi_vit_hparams *hp, int64_t n, int nt, uint64_t size[7])
{
	const uint64_t nw = (uint64_t)(n * hp->n_embd);
	size[0] = size[1] = size[2] = size[3] = size[4] = nw;
	size[5] = (uint64_t)(n * hp->n_ff);
	const rvi_attn_heads heads = {hp->n_head, hp->n_head, hp->head_dim, 0.0f};
	size[6] = rvi_attn_full_scratch(&heads, n, nt);
}

int rvi_vit_block(const rvi_vit_hparams *hp, const rvi_vit_layer *L, rvi_vit_act act, float *x,
                  int64_t n, const rvi_vit_work *w, int nt)
{
	const int64_t W = hp->n_embd, F = hp->n_ff;
	const rvi_attn_heads heads = {hp->n_head, hp->n_head, hp->head_dim,
	                              (float)(1.0 / sqrt((double)hp->head_dim))};
	int rc;
	/* xb (n, W) = ln1(x); q, k, v (n, W) = xb @ W^T + b */
	rvi_vit_layer_norm(w->xb, x, L->ln1_w, L->ln1_b, n, W, hp->eps, nt);
	if ((rc = rvi_vit_linear(&L->wq, L->bq, w->xb, n, w->q, nt, w->mm)) ||
	    (rc = rvi_vit_linear(&L->wk, L->bk, w->xb, n, w->k, nt, w->mm)) ||
	    (rc = rvi_vit_linear(&L->wv, L->bv, w->xb, n, w->v, nt, w->mm)))
		return rc;

	/* ao (n, W) = per head softmax(q k^T / sqrt(hd)) v, non-causal */
	rvi_attn_full(&heads, w->q, w->k, w->v, w->ao, n, NULL, 0, w->scores, nt);

	/* x += ao @ Wo^T + bo */
	if ((rc = rvi_vit_linear(&L->wo, L->bo, w->ao, n, w->xb, nt, w->mm)))
		return rc;
	rvi_vit_add(x, w->xb, n * W, nt);

	/* xb = ln2(x); hb (n, F) = act(xb @ fc1^T + b1); x += hb @ fc2^T + b2 */
	rvi_vit_layer_norm(w->xb, x, L->ln2_w, L->ln2_b, n, W, hp->eps, nt);
	if ((rc = rvi_vit_linear(&L->fc1, L->fc1_b, w->xb, n, w->hb, nt, w->mm)))
		return rc;
	rvi_vit_activate(w->hb, n * F, act, nt);
	if ((rc = rvi_vit_linear(&L->fc2, L->fc2_b, w->hb, n, w->xb, nt, w->mm)))
		return rc;
	rvi_vit_add(x, w->xb, n * W, nt);
	return RV_OK;
}

int rvi_vit_encode_error(rvi_err *err, int rc, const char *path, const char *what)
{
	return rvi_errorf(err, rc, "%s: image encoder failed in the %s (%s)",
	                  path ? path : "mmproj", what,
	                  rc == RV_ERR_NOMEM ? "out of memory" : "unusable weight");
}

/* ---- SigLIP ------------------------------------------------------------- */

int rvi_siglip_load(rvi_siglip *s, const rvi_gguf *g, const rvi_vit_hparams *hp, rvi_err *err)
{
	const int64_t W = hp->n_embd;
	memset(s, 0, sizeof(*s));
	int rc;
	if ((rc = rvi_vit_bind_patch_kernel(g, hp, &s->patch_embd, err)) ||
	    (rc = rvi_load_floats(g, "v.patch_embd.bias", W, 0, &s->patch_bias, err)) ||
	    (rc = rvi_load_floats(g, "v.position_embd.weight", W, hp->n_patches, &s->pos_embd,
	                          err)) ||
	    (rc = rvi_load_floats(g, "v.post_ln.weight", W, 0, &s->post_ln_w, err)) ||
	    (rc = rvi_load_floats(g, "v.post_ln.bias", W, 0, &s->post_ln_b, err)))
		goto fail;
	s->layers = rvi_zalloc((size_t)hp->n_layer, sizeof(*s->layers));
	if (!s->layers) {
		rc = rvi_errorf(err, RV_ERR_NOMEM, "out of memory");
		goto fail;
	}
	s->n_layer = hp->n_layer;
	for (int64_t il = 0; il < hp->n_layer; il++)
		if ((rc = rvi_vit_load_layer(g, hp, il, &s->layers[il], err)))
			goto fail;
	return RV_OK;
fail:
	rvi_siglip_free(s);
	return rc;
}

void rvi_siglip_free(rvi_siglip *s)
{
	for (int64_t il = 0; s->layers && il < s->n_layer; il++)
		rvi_vit_layer_free(&s->layers[il]);
	free(s->layers);
	free(s->patch_bias);
	free(s->pos_embd);
	free(s->post_ln_w);
	free(s->post_ln_b);
	memset(s, 0, sizeof(*s));
}

int rvi_siglip_run_init(rvi_siglip_run *r, const rvi_vit_hparams *hp, uint64_t extra, int nt,
                        rvi_err *err)
{
	const int64_t n = hp->n_patches;
	memset(r, 0, sizeof(*r));
	r->w.mm = &r->scr;
	uint64_t size[10] = {(uint64_t)(n * 3 * hp->patch_size * hp->patch_size),
	                     (uint64_t)(n * hp->n_embd), extra};
	rvi_vit_work_sizes(hp, n, nt, size + 3);
	float **const region[] = {&r->patches, &r->x,   &r->extra, &r->w.xb, &r->w.q,
	                          &r->w.k,     &r->w.v, &r->w.ao,  &r->w.hb, &r->w.scores};
	if (rvi_arena_alloc(&r->mem, size, region, 10) != RV_OK)
		return rvi_errorf(
		    err, RV_ERR_NOMEM,
		    "out of memory for the image encoder's activations (%lld patches)",
		    (long long)n);
	return RV_OK;
}

void rvi_siglip_run_free(rvi_siglip_run *r)
{
	rvi_buf_free(&r->scr);
	rvi_arena_free(&r->mem);
}

int rvi_siglip_forward(const rvi_siglip *s, const rvi_vit_hparams *hp, const float *chw,
                       rvi_siglip_run *r, int nt)
{
	const int64_t n = hp->n_patches, W = hp->n_embd;
	/* x (n, W) = patches @ kernel^T + bias + pos_embd: the stride-p conv;
	 * patch i takes position row i (HF's NaViT position buckets are the
	 * identity for a full image) */
	rvi_vit_patches(chw, hp->image_size, hp->patch_size, r->patches);
	int rc = rvi_vit_linear(&s->patch_embd, s->patch_bias, r->patches, n, r->x, nt, &r->scr);
	if (rc != RV_OK)
		return rc;
	rvi_vit_add(r->x, s->pos_embd, n * W, nt);
	/* every stored block, pre-norm, GELU-tanh; then post_ln */
	for (int64_t il = 0; il < hp->n_layer && rc == RV_OK; il++)
		rc = rvi_vit_block(hp, &s->layers[il], RVI_VIT_GELU_TANH, r->x, n, &r->w, nt);
	if (rc == RV_OK)
		rvi_vit_layer_norm(r->x, r->x, s->post_ln_w, s->post_ln_b, n, W, hp->eps, nt);
	return rc;
}
