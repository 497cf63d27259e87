/* clip.c: the CLIP ViT vision encoder and the LLaVA-1.5 `mlp` projector.
 * Loading reads the clip.* hyperparameters and binds the v.* and mm.*
 * tensors (checked shape by shape); rvi_clip_encode() is the whole forward
 * pass, top to bottom, with the shape of every step.
 *
 * The semantics are those of the training code (HF CLIPVisionModel as
 * LLaVA-1.5 uses it), which differ from llama.cpp's in three places that
 * each change the embeddings a lot: the class token comes FIRST in the
 * sequence, EVERY stored block is run (the converter already dropped the
 * last one, so this is HF hidden_states[-2]), and the projector's GELU is the
 * erf one. Preprocessing (pad, resize, normalise) lives in src/image/. */
#include "models/clip.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/loader.h"
#include "models/vit.h"
#include "simd/kernels.h"
#include "src/attention.h"
#include "src/image/image.h"

/* ---- loading ----------------------------------------------------------- */

/* Sanity bounds: far above any published CLIP/LLaVA, far below what would
 * make size arithmetic or allocations absurd. Every tensor's size is also
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
static int bind_patch_kernel(const rvi_gguf *g, const rvi_clip_hparams *hp, rvi_weight *w,
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

static int load_hparams(rvi_clip_hparams *hp, const rvi_gguf *g, rvi_err *err)
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
	if (!rvi_str_eq(s, "mlp"))
		return rvi_errorf(err, RV_ERR_UNSUPPORTED,
		                  "%s: clip.projector_type \"%.*s\" is not supported (only mlp, "
		                  "the LLaVA-1.5 projector)",
		                  g->path, (int)(s.len > 64 ? 64 : s.len), s.ptr);
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
	 * 0), not the LLM width, which comes from the mm.2 tensor instead. */
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
	if (hp->image_size % hp->patch_size != 0)
		return rvi_errorf(err, RV_ERR_MODEL,
		                  "%s: clip.vision.image_size %lld is not a multiple of "
		                  "clip.vision.patch_size %lld",
		                  g->path, (long long)hp->image_size, (long long)hp->patch_size);
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
	hp->use_gelu = false; /* OpenAI CLIP's quick-GELU unless the file says otherwise */
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

static int load_layer(const rvi_gguf *g, const rvi_clip_hparams *hp, int64_t il, rvi_clip_layer *L,
                      rvi_err *err)
{
	const int64_t W = hp->n_embd, F = hp->n_ff;
	char name[96];
	int rc;
#define TNAME(suffix) (snprintf(name, sizeof(name), "v.blk.%lld." suffix, (long long)il), name)
	if ((rc = rvi_load_floats(g, TNAME("ln1.weight"), W, 0, &L->ln1_w, err)) ||
	    (rc = rvi_load_floats(g, TNAME("ln1.bias"), W, 0, &L->ln1_b, err)) ||
	    (rc = rvi_load_weight(g, TNAME("attn_q.weight"), W, W, &L->wq, err)) ||
	    (rc = rvi_load_floats(g, TNAME("attn_q.bias"), W, 0, &L->bq, err)) ||
	    (rc = rvi_load_weight(g, TNAME("attn_k.weight"), W, W, &L->wk, err)) ||
	    (rc = rvi_load_floats(g, TNAME("attn_k.bias"), W, 0, &L->bk, err)) ||
	    (rc = rvi_load_weight(g, TNAME("attn_v.weight"), W, W, &L->wv, err)) ||
	    (rc = rvi_load_floats(g, TNAME("attn_v.bias"), W, 0, &L->bv, err)) ||
	    (rc = rvi_load_weight(g, TNAME("attn_out.weight"), W, W, &L->wo, err)) ||
	    (rc = rvi_load_floats(g, TNAME("attn_out.bias"), W, 0, &L->bo, err)) ||
	    (rc = rvi_load_floats(g, TNAME("ln2.weight"), W, 0, &L->ln2_w, err)) ||
	    (rc = rvi_load_floats(g, TNAME("ln2.bias"), W, 0, &L->ln2_b, err)))
		return rc;

	/* CLIP's fc1 (W -> F) is normally ffn_up and fc2 (F -> W) ffn_down,
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

/* The projector's widths come from its tensors: mm.0 is [W, hidden],
 * mm.2 [hidden, out], and out is the LLM width the caller checks. */
static int projector_width(const rvi_gguf *g, const char *name, int64_t *out, rvi_err *err)
{
	const rvi_gguf_tensor *t;
	int rc = rvi_load_tensor(g, name, &t, err);
	if (rc != RV_OK)
		return rc;
	if (t->n_dims != 2 || t->ne[1] > MAX_EMBD)
		return rvi_errorf(err, RV_ERR_MODEL,
		                  "%s: tensor %s has shape [%lld, %lld, %lld, %lld], expected a "
		                  "matrix with at most %d outputs",
		                  g->path, name, (long long)t->ne[0], (long long)t->ne[1],
		                  (long long)t->ne[2], (long long)t->ne[3], MAX_EMBD);
	*out = t->ne[1];
	return RV_OK;
}

int rvi_clip_load(rvi_clip *c, const rvi_gguf *g, rvi_err *err)
{
	memset(c, 0, sizeof(*c));
	rvi_clip_hparams *hp = &c->hp;
	int rc = load_hparams(hp, g, err);
	if (rc != RV_OK)
		return rc;
	if ((rc = rvi_load_check_blocks(g, "v.blk.", hp->n_layer, "clip.vision.block_count", err)))
		return rc;
	c->path = g->path;
	const int64_t W = hp->n_embd;

	if ((rc = bind_patch_kernel(g, hp, &c->patch_embd, err)) ||
	    (rc = rvi_load_floats(g, "v.class_embd", W, 0, &c->class_embd, err)) ||
	    (rc = rvi_load_floats(g, "v.position_embd.weight", W, hp->n_patches + 1, &c->pos_embd,
	                          err)) ||
	    (rc = rvi_load_floats(g, "v.pre_ln.weight", W, 0, &c->pre_ln_w, err)) ||
	    (rc = rvi_load_floats(g, "v.pre_ln.bias", W, 0, &c->pre_ln_b, err)))
		goto fail;
	if (rvi_gguf_find_tensor(g, "v.patch_embd.bias") &&
	    (rc = rvi_load_floats(g, "v.patch_embd.bias", W, 0, &c->patch_bias, err)))
		goto fail;
	/* v.post_ln.* may be present: LLaVA takes features before it. */

	c->layers = rvi_zalloc((size_t)hp->n_layer, sizeof(*c->layers));
	if (!c->layers) {
		rc = rvi_errorf(err, RV_ERR_NOMEM, "out of memory");
		goto fail;
	}
	for (int64_t il = 0; il < hp->n_layer; il++)
		if ((rc = load_layer(g, hp, il, &c->layers[il], err)))
			goto fail;

	if ((rc = projector_width(g, "mm.0.weight", &hp->n_mm_hidden, err)) ||
	    (rc = projector_width(g, "mm.2.weight", &hp->n_mm_out, err)) ||
	    (rc = rvi_load_weight(g, "mm.0.weight", W, hp->n_mm_hidden, &c->mm0, err)) ||
	    (rc = rvi_load_floats(g, "mm.0.bias", hp->n_mm_hidden, 0, &c->mm0_b, err)) ||
	    (rc = rvi_load_weight(g, "mm.2.weight", hp->n_mm_hidden, hp->n_mm_out, &c->mm2, err)) ||
	    (rc = rvi_load_floats(g, "mm.2.bias", hp->n_mm_out, 0, &c->mm2_b, err)))
		goto fail;
	return RV_OK;
fail:
	rvi_clip_free(c);
	return rc;
}

void rvi_clip_free(rvi_clip *c)
{
	if (c->layers) {
		for (int64_t il = 0; il < c->hp.n_layer; il++) {
			rvi_clip_layer *L = &c->layers[il];
			float *v[] = {L->ln1_w, L->ln1_b, L->bq,    L->bk,    L->bv,
			              L->bo,    L->ln2_w, L->ln2_b, L->fc1_b, L->fc2_b};
			for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
				free(v[i]);
		}
	}
	free(c->layers);
	float *v[] = {c->patch_bias, c->class_embd, c->pos_embd, c->pre_ln_w,
	              c->pre_ln_b,   c->mm0_b,      c->mm2_b};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		free(v[i]);
	memset(c, 0, sizeof(*c));
}

int rvi_clip_image_size(const rvi_clip *c)
{
	return (int)c->hp.image_size; /* <= MAX_IMAGE */
}

const float *rvi_clip_image_mean(const rvi_clip *c)
{
	return c->hp.image_mean;
}

const float *rvi_clip_image_std(const rvi_clip *c)
{
	return c->hp.image_std;
}

int64_t rvi_clip_n_output_tokens(const rvi_clip *c)
{
	return c->hp.n_patches;
}

int64_t rvi_clip_n_output_embd(const rvi_clip *c)
{
	return c->hp.n_mm_out;
}

int rvi_clip_check_text_width(const rvi_clip *c, int64_t n_embd_text, rvi_err *err)
{
	if (c->hp.n_mm_out != n_embd_text)
		return rvi_errorf(
		    err, RV_ERR_MODEL,
		    "%s: the image projector outputs rows of %lld values but the text "
		    "model's embedding width is %lld (mmproj made for another model?)",
		    c->path ? c->path : "mmproj", (long long)c->hp.n_mm_out,
		    (long long)n_embd_text);
	return RV_OK;
}

/* ---- forward ----------------------------------------------------------- */

int rvi_clip_encode(const rvi_clip *c, const float *pixels_chw, int n_threads, float *out,
                    rvi_err *err)
{
	if (!c || !c->layers || !pixels_chw || !out)
		return rvi_errorf(err, RV_ERR_INVALID_ARG,
		                  "clip encode: no model, pixels or output buffer");
	const rvi_clip_hparams *hp = &c->hp;
	const int64_t S = hp->image_size, p = hp->patch_size, side = S / p;
	const int64_t n_p = hp->n_patches, n = n_p + 1; /* patches, sequence length */
	const int64_t W = hp->n_embd, F = hp->n_ff, kpp = 3 * p * p;
	const int64_t P1 = hp->n_mm_hidden;
	const int nt = n_threads < 1 ? 1 : n_threads;
	const rvi_attn_heads heads = {hp->n_head, hp->n_head, hp->head_dim,
	                              (float)(1.0 / sqrt((double)hp->head_dim))};

	/* One arena for every activation of the pass. */
	const uint64_t nw = (uint64_t)(n * W);
	const uint64_t size[] = {(uint64_t)(n_p * kpp),
	                         nw,
	                         nw,
	                         nw,
	                         nw,
	                         nw,
	                         nw,
	                         (uint64_t)(n * F),
	                         (uint64_t)(n_p * P1),
	                         rvi_attn_full_scratch(n, nt)};
	float *patches; /* (n_p, 3*p*p) */
	float *x;       /* (n, W): the residual stream */
	float *xb;      /* (n, W): normed input, then sublayer output */
	float *q, *k, *v;
	float *ao;     /* (n, W): attention output, heads side by side */
	float *hb;     /* (n, F): MLP hidden */
	float *hm;     /* (n_p, P1): projector hidden */
	float *scores; /* the attention's */
	float **const region[] = {&patches, &x, &xb, &q, &k, &v, &ao, &hb, &hm, &scores};
	rvi_arena act = {0};
	rvi_buf scr = {0}; /* matmul scratch */
	if (rvi_arena_alloc(&act, size, region, (int)(sizeof(size) / sizeof(size[0]))) != RV_OK)
		return rvi_errorf(
		    err, RV_ERR_NOMEM,
		    "out of memory for the image encoder's activations (%lld patches)",
		    (long long)n);
	int rc = RV_OK;
	const char *what = "patch embedding";
	/* patches (n_p, 3*p*p): patch (py, px), row-major over the side x side
	 * grid starting top-left, flattened in the kernel's (c, ky, kx) order */
	for (int64_t py = 0; py < side; py++)
		for (int64_t px = 0; px < side; px++) {
			float *dst = patches + (py * side + px) * kpp;
			for (int64_t ch = 0; ch < 3; ch++)
				for (int64_t ky = 0; ky < p; ky++)
					memcpy(dst + (ch * p + ky) * p,
					       pixels_chw + (ch * S + py * p + ky) * S + px * p,
					       (size_t)p * sizeof(float));
		}

	/* x (n, W) = [class_embd; patches @ kernel^T (+ bias)] + pos_embd:
	 * the class token FIRST, then patch i at sequence position i + 1, and
	 * position row j added to sequence element j */
	memcpy(x, c->class_embd, (size_t)W * sizeof(float));
	if ((rc = rvi_vit_linear(&c->patch_embd, c->patch_bias, patches, n_p, x + W, nt, &scr)))
		goto done;
	for (int64_t i = 0; i < n * W; i++)
		x[i] += c->pos_embd[i];

	/* x (n, W) = pre_ln(x) */
	rvi_vit_layer_norm(x, x, c->pre_ln_w, c->pre_ln_b, n, W, hp->eps, nt);

	/* every stored block, pre-norm */
	what = "encoder block";
	for (int64_t il = 0; il < hp->n_layer; il++) {
		const rvi_clip_layer *L = &c->layers[il];

		/* xb (n, W) = ln1(x); q, k, v (n, W) = xb @ W^T + b */
		rvi_vit_layer_norm(xb, x, L->ln1_w, L->ln1_b, n, W, hp->eps, nt);
		if ((rc = rvi_vit_linear(&L->wq, L->bq, xb, n, q, nt, &scr)) ||
		    (rc = rvi_vit_linear(&L->wk, L->bk, xb, n, k, nt, &scr)) ||
		    (rc = rvi_vit_linear(&L->wv, L->bv, xb, n, v, nt, &scr)))
			goto done;

		/* ao (n, W) = per head softmax(q k^T / sqrt(hd)) v, non-causal */
		rvi_attn_full(&heads, q, k, v, ao, n, NULL, 0, scores, nt);

		/* x += ao @ Wo^T + bo */
		if ((rc = rvi_vit_linear(&L->wo, L->bo, ao, n, xb, nt, &scr)))
			goto done;
		for (int64_t i = 0; i < n * W; i++)
			x[i] += xb[i];

		/* xb = ln2(x); hb (n, F) = act(xb @ fc1^T + b1); x += hb @ fc2^T + b2 */
		rvi_vit_layer_norm(xb, x, L->ln2_w, L->ln2_b, n, W, hp->eps, nt);
		if ((rc = rvi_vit_linear(&L->fc1, L->fc1_b, xb, n, hb, nt, &scr)))
			goto done;
		rvi_vit_activate(hb, n * F, hp->use_gelu, nt);
		if ((rc = rvi_vit_linear(&L->fc2, L->fc2_b, hb, n, xb, nt, &scr)))
			goto done;
		for (int64_t i = 0; i < n * W; i++)
			x[i] += xb[i];
	}
	/* no post-LN: LLaVA takes the block output as it is */

	/* drop the class token: the patch rows x[1..n) (n_p, W) feed the
	 * projector; hm (n_p, P1) = gelu_erf(x @ mm0^T + b0);
	 * out (n_p, n_mm_out) = hm @ mm2^T + b2 */
	what = "projector";
	if ((rc = rvi_vit_linear(&c->mm0, c->mm0_b, x + W, n_p, hm, nt, &scr)))
		goto done;
	rvi_vit_activate(hm, n_p * P1, true, nt);
	if ((rc = rvi_vit_linear(&c->mm2, c->mm2_b, hm, n_p, out, nt, &scr)))
		goto done;

done:
	if (rc != RV_OK)
		rc = rvi_errorf(err, rc, "%s: image encoder failed in the %s (%s)",
		                c->path ? c->path : "mmproj", what,
		                rc == RV_ERR_NOMEM ? "out of memory" : "unusable weight");
	rvi_buf_free(&scr);
	rvi_arena_free(&act);
	return rc;
}

/* ---- the family's table ------------------------------------------------- */

RVI_ARCH_LOAD_FREE(rvi_clip, rvi_clip_load, rvi_clip_free)

static int64_t arch_n_embd_out(const void *model)
{
	return rvi_clip_n_output_embd(model);
}

/* Every image becomes the same square grid of patches: LLaVA-1.5 pads and
 * resizes whatever it is given to S x S. */
static int arch_embd_shape(const void *model, int w, int h, const rvi_image_limits *lim,
                           rvi_embd_shape *out, rvi_err *err)
{
	const rvi_clip *c = model;
	(void)w, (void)h, (void)lim, (void)err;
	const int64_t side = c->hp.image_size / c->hp.patch_size;
	*out = (rvi_embd_shape){c->hp.n_patches, side, side, 0, 0};
	return RV_OK;
}

static int arch_preprocess(const void *model, const rvi_image *img, const rvi_image_limits *lim,
                           rvi_pixels *out, rvi_err *err)
{
	const rvi_clip *c = model;
	const int S = rvi_clip_image_size(c);
	*out = (rvi_pixels){0};
	out->n_floats = (int64_t)3 * S * S;
	out->data = rvi_alloc((size_t)out->n_floats, sizeof(float));
	if (!out->data)
		return rvi_errorf(err, RV_ERR_NOMEM, "out of memory");
	out->w = out->h = S;
	int rc = arch_embd_shape(model, img->w, img->h, lim, &out->shape, err);
	if (rc == RV_OK)
		rc = rvi_image_preprocess_llava(img, S, rvi_clip_image_mean(c),
		                                rvi_clip_image_std(c), out->data, err);
	if (rc != RV_OK)
		rvi_pixels_free(out);
	return rc;
}

static int arch_encode(const void *model, const rvi_pixels *px, int n_threads, float *out,
                       rvi_err *err)
{
	return rvi_clip_encode(model, px->data, n_threads, out, err);
}

const rvi_vision_arch rvi_llava_mlp_arch = {
    .name = "mlp",
    .load = arch_load,
    .free = arch_free,
    .n_embd_out = arch_n_embd_out,
    .embd_shape = arch_embd_shape,
    .preprocess = arch_preprocess,
    .encode = arch_encode,
};
