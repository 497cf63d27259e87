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

#ifdef _OPENMP
#include <omp.h>
#endif

#include "models/loader.h"
#include "models/vit.h"
#include "simd/kernels.h"
#include "src/attention.h"
#include "src/image/image.h"

/* ---- loading ----------------------------------------------------------- */

#define MAX_EMBD (1 << 16) /* far above any published projector */

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
	int rc = rvi_vit_load_hparams(hp, g, "mlp", err);
	if (rc != RV_OK)
		return rc;
	if ((rc = rvi_load_check_blocks(g, "v.blk.", hp->n_layer, "clip.vision.block_count", err)))
		return rc;
	c->path = g->path;
	const int64_t W = hp->n_embd;

	if ((rc = rvi_vit_bind_patch_kernel(g, hp, &c->patch_embd, err)) ||
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

	if ((rc = rvi_vit_load_layers(g, hp, &c->layers, err)))
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
	rvi_vit_layers_free(c->layers, c->hp.n_layer);
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
	const int64_t S = hp->image_size, p = hp->patch_size;
	const int64_t n_p = hp->n_patches, n = n_p + 1; /* patches, sequence length */
	const int64_t W = hp->n_embd, kpp = 3 * p * p;
	const int64_t P1 = hp->n_mm_hidden;
	const int nt = n_threads < 1 ? 1 : n_threads;
	const rvi_vit_act act = hp->use_gelu ? RVI_VIT_GELU_ERF : RVI_VIT_QUICK_GELU;

	/* One arena for every activation of the pass. */
	uint64_t size[10] = {(uint64_t)(n_p * kpp), (uint64_t)(n * W), (uint64_t)(n_p * P1)};
	rvi_vit_work_sizes(hp, n, nt, size + 3);
	float *patches;    /* (n_p, 3*p*p) */
	float *x;          /* (n, W): the residual stream */
	float *hm;         /* (n_p, P1): projector hidden */
	rvi_buf scr = {0}; /* matmul scratch */
	rvi_vit_work w = {.mm = &scr};
	float **const region[] = {&patches, &x,   &hm,   &w.xb, &w.q,
	                          &w.k,     &w.v, &w.ao, &w.hb, &w.scores};
	rvi_arena act_mem = {0};
	if (rvi_arena_alloc(&act_mem, size, region, 10) != RV_OK)
		return rvi_errorf(
		    err, RV_ERR_NOMEM,
		    "out of memory for the image encoder's activations (%lld patches)",
		    (long long)n);
	int rc = RV_OK;
	const char *what = "patch embedding";
	/* patches (n_p, 3*p*p): row-major over the patch grid from top-left */
	rvi_vit_patches(pixels_chw, S, p, patches);

	/* x (n, W) = [class_embd; patches @ kernel^T (+ bias)] + pos_embd:
	 * the class token FIRST, then patch i at sequence position i + 1, and
	 * position row j added to sequence element j */
	memcpy(x, c->class_embd, (size_t)W * sizeof(float));
	if ((rc = rvi_vit_linear(&c->patch_embd, c->patch_bias, patches, n_p, x + W, nt, &scr)))
		goto done;
	rvi_vit_add(x, c->pos_embd, n * W, nt);

	/* x (n, W) = pre_ln(x) */
	rvi_vit_layer_norm(x, x, c->pre_ln_w, c->pre_ln_b, n, W, hp->eps, nt);

	/* every stored block, pre-norm */
	what = "encoder block";
	for (int64_t il = 0; il < hp->n_layer; il++)
		if ((rc = rvi_vit_block(hp, &c->layers[il], act, x, n, &w, nt)))
			goto done;
	/* no post-LN: LLaVA takes the block output as it is */

	/* drop the class token: the patch rows x[1..n) (n_p, W) feed the
	 * projector; hm (n_p, P1) = gelu_erf(x @ mm0^T + b0);
	 * out (n_p, n_mm_out) = hm @ mm2^T + b2 */
	what = "projector";
	if ((rc = rvi_vit_linear(&c->mm0, c->mm0_b, x + W, n_p, hm, nt, &scr)))
		goto done;
	rvi_vit_activate(hm, n_p * P1, RVI_VIT_GELU_ERF, nt);
	if ((rc = rvi_vit_linear(&c->mm2, c->mm2_b, hm, n_p, out, nt, &scr)))
		goto done;

done:
	if (rc != RV_OK)
		rc = rvi_vit_encode_error(err, rc, c->path, what);
	rvi_buf_free(&scr);
	rvi_arena_free(&act_mem);
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
	(void)lim; /* a fixed size, whatever the limits */
	const rvi_clip *c = model;
	(void)w, (void)h, (void)err;
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
