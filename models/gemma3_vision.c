/* gemma3_vision.c: Gemma 3's vision side (HF SiglipVisionModel +
 * Gemma3MultiModalProjector): per image a SigLIP encoder (patch conv with
 * bias, learned positions, no class token, no pre-LN, pre-norm blocks with
 * LayerNorm and GELU-tanh, post-LN; every stored block runs), then the
 * projector: a k x k average pool over the patch grid, an RMSNorm whose
 * stored weight is HF's 1 + w, and mm.input_projection used as x @ W.
 * Preprocessing (a Pillow BILINEAR stretch, optionally pan-and-scan crops)
 * is preprocess_gemma3.c; the image's place in the prompt, with the
 * processor's "\n\n" around it, is the layout below. */
#include "models/gemma3_vision.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/loader.h"

#define MAX_EMBD (1 << 16)
/* More crops than any image needs (HF's default is 4); bounds the rows. */
#define MAX_CROPS 64

/* ---- pan-and-scan ------------------------------------------------------- */

void rvi_gemma3_pan_and_scan(int w, int h, const rvi_pan_and_scan *s, rvi_gemma3_crops *out)
{
	*out = (rvi_gemma3_crops){0};
	if (w < 1 || h < 1 || s->min_crop_size < 1 || s->max_crops < 1)
		return;
	/* HF's arithmetic: Python floats (double), floor(x + 0.5), ceil */
	const bool landscape = w >= h;
	const int lng = landscape ? w : h, shrt = landscape ? h : w;
	if ((double)lng / (double)shrt < s->min_ratio)
		return;
	int n = (int)floor((double)lng / (double)shrt + 0.5);
	const int by_size = (int)floor((double)lng / (double)s->min_crop_size);
	n = by_size < n ? by_size : n;
	n = n < 2 ? 2 : n;
	n = s->max_crops < n ? s->max_crops : n;
	const int nw = landscape ? n : 1, nh = landscape ? 1 : n;
	const int cw = (int)ceil((double)w / nw), ch = (int)ceil((double)h / nh);
	if ((cw < ch ? cw : ch) < s->min_crop_size)
		return;
	*out = (rvi_gemma3_crops){nw, nh, cw, ch};
}

/* ---- loading ----------------------------------------------------------- */

int rvi_gemma3v_load(rvi_gemma3v *m, const rvi_gguf *g, rvi_err *err)
{
	memset(m, 0, sizeof(*m));
	rvi_vit_hparams *hp = &m->hp;
	int rc = rvi_vit_load_hparams(hp, g, "gemma3", err);
	if (rc != RV_OK)
		return rc;
	const int64_t side = hp->image_size / hp->patch_size, W = hp->n_embd;
	/* the pool's kernel: (S / p) / sqrt(mm_tokens_per_image); converters
	 * store it only when it is not 4 (256 tokens from 896 / 14) */
	m->pool = 4;
	if ((rc = rvi_load_dim(g, "clip.vision.projector.scale_factor", false, 1, 8192, &m->pool,
	                       err)))
		return rc;
	if (side % m->pool != 0)
		return rvi_errorf(err, RV_ERR_MODEL,
		                  "%s: the %lld x %lld average pool (clip.vision.projector."
		                  "scale_factor, 4 when absent) does not divide the %lld x %lld "
		                  "patch grid",
		                  g->path, (long long)m->pool, (long long)m->pool, (long long)side,
		                  (long long)side);
	if ((rc = rvi_load_check_blocks(g, "v.blk.", hp->n_layer, "clip.vision.block_count", err)))
		return rc;
	m->path = g->path;
	m->pas = (rvi_pan_and_scan){false, RVI_GEMMA3_PAS_MIN_CROP_SIZE, RVI_GEMMA3_PAS_MAX_CROPS,
	                            RVI_GEMMA3_PAS_MIN_RATIO};
	hp->n_mm_hidden = W;

	/* [n_text, W] in GGUF order: numpy's (W, n_text), used as x @ W */
	const char *pname = "mm.input_projection.weight";
	const rvi_gguf_tensor *pt;
	if ((rc = rvi_load_tensor(g, pname, &pt, err)))
		return rc;
	if (pt->n_dims != 2 || pt->ne[1] != W || pt->ne[0] < 1 || pt->ne[0] > MAX_EMBD) {
		char want[64];
		snprintf(want, sizeof(want), "[n_embd of the text model, %lld]", (long long)W);
		return rvi_load_shape_error(g, pname, pt, want, err);
	}
	hp->n_mm_out = pt->ne[0];

	float *proj = NULL; /* (W, n_out) as stored */
	if ((rc = rvi_load_floats(g, "mm.soft_emb_norm.weight", W, 0, &m->soft_emb_norm, err)) ||
	    (rc = rvi_load_floats(g, pname, hp->n_mm_out, W, &proj, err)) ||
	    (rc = rvi_siglip_load(&m->vit, g, hp, err)))
		goto fail;
	/* transposed once into nn.Linear's (n_out, W), so the projection is
	 * an ordinary matmul; F16 widens to f32 exactly */
	m->proj_t = rvi_alloc((size_t)(hp->n_mm_out * W), sizeof(float));
	if (!m->proj_t) {
		rc = rvi_errorf(err, RV_ERR_NOMEM, "out of memory");
		goto fail;
	}
	for (int64_t i = 0; i < W; i++)
		for (int64_t o = 0; o < hp->n_mm_out; o++)
			m->proj_t[o * W + i] = proj[i * hp->n_mm_out + o];
	free(proj);
	m->proj = (rvi_weight){RVI_TYPE_F32, W, hp->n_mm_out, m->proj_t};
	return RV_OK;
fail:
	free(proj);
	rvi_gemma3v_free(m);
	return rc;
}

void rvi_gemma3v_free(rvi_gemma3v *m)
{
	rvi_siglip_free(&m->vit);
	free(m->soft_emb_norm);
	free(m->proj_t);
	memset(m, 0, sizeof(*m));
}

int64_t rvi_gemma3v_rows_per_image(const rvi_gemma3v *m)
{
	return m->hp.n_patches / (m->pool * m->pool);
}

/* ---- forward ----------------------------------------------------------- */

int rvi_gemma3v_encode(const rvi_gemma3v *m, const float *images, int64_t n_img, int n_threads,
                       float *out, float *vision, rvi_err *err)
{
	if (!m || !m->vit.layers || !images || !out || n_img < 1)
		return rvi_errorf(err, RV_ERR_INVALID_ARG,
		                  "gemma3 encode: no model, pixels or output buffer");
	const rvi_vit_hparams *hp = &m->hp;
	const int64_t S = hp->image_size, G = S / hp->patch_size, k = m->pool;
	const int64_t n = hp->n_patches, W = hp->n_embd;
	const int64_t g = G / k, n_out = g * g; /* pooled grid side, rows per image */
	const int nt = n_threads < 1 ? 1 : n_threads;
	rvi_siglip_run r;
	int rc = rvi_siglip_run_init(&r, hp, (uint64_t)(n_out * W), nt, err);
	if (rc != RV_OK)
		return rc;
	const char *what = "encoder";
	float *const x = r.x, *const pooled = r.extra; /* (n, W), (n_out, W) */
	for (int64_t t = 0; t < n_img && rc == RV_OK; t++) {
		if ((rc = rvi_siglip_forward(&m->vit, hp, images + t * 3 * S * S, &r, nt)))
			break;
		if (vision)
			memcpy(vision + t * n * W, x, (size_t)(n * W) * sizeof(float));

		/* pooled (n_out, W): row R g + C is the mean of the k x k patches
		 * (k R + dy, k C + dx), HF's AvgPool2d over (W, G, G); in double */
		for (int64_t R = 0; R < g; R++)
			for (int64_t C = 0; C < g; C++)
				for (int64_t c = 0; c < W; c++) {
					double s = 0;
					for (int64_t dy = 0; dy < k; dy++)
						for (int64_t dx = 0; dx < k; dx++)
							s += x[((k * R + dy) * G + k * C + dx) * W +
							       c];
					pooled[(R * g + C) * W + c] = (float)(s / (double)(k * k));
				}
		/* RMSNorm with the stored 1 + w, eps as the encoder's LayerNorms */
		rvi_vit_rms_norm(pooled, pooled, m->soft_emb_norm, n_out, W, hp->eps, nt);

		/* out rows of this image (n_out, n_mm_out) = pooled @ W */
		what = "projector";
		rc = rvi_vit_linear(&m->proj, NULL, pooled, n_out, out + t * n_out * hp->n_mm_out,
		                    nt, &r.scr);
		what = "encoder";
	}
	if (rc != RV_OK)
		rc = rvi_vit_encode_error(err, rc, m->path, what);
	rvi_siglip_run_free(&r);
	return rc;
}

/* ---- the family's table ------------------------------------------------- */

RVI_ARCH_LOAD_FREE(rvi_gemma3v, rvi_gemma3v_load, rvi_gemma3v_free)

static int64_t arch_n_embd_out(const void *model)
{
	return ((const rvi_gemma3v *)model)->hp.n_mm_out;
}

/* The image and its crops, each a g x g pooled grid, stacked. */
static int crops_of(const rvi_gemma3v *m, int w, int h, rvi_gemma3_crops *c, rvi_embd_shape *out,
                    rvi_err *err)
{
	*c = (rvi_gemma3_crops){0};
	if (m->pas.on)
		rvi_gemma3_pan_and_scan(w, h, &m->pas, c);
	if (c->n_w * c->n_h > MAX_CROPS)
		return rvi_errorf(err, RV_ERR_INVALID_ARG,
		                  "pan-and-scan: %d crops for a %dx%d image (at most %d)",
		                  c->n_w * c->n_h, w, h, MAX_CROPS);
	const int64_t g = m->hp.image_size / m->hp.patch_size / m->pool;
	const int64_t n_img = 1 + (int64_t)c->n_w * c->n_h;
	*out = (rvi_embd_shape){n_img * g * g, n_img * g, g, c->n_h, c->n_w};
	return RV_OK;
}

static int arch_embd_shape(const void *model, int w, int h, const rvi_image_limits *lim,
                           rvi_embd_shape *out, rvi_err *err)
{
	(void)lim; /* a fixed size, whatever the limits */
	rvi_gemma3_crops c;
	return crops_of(model, w, h, &c, out, err);
}

static int arch_preprocess(const void *model, const rvi_image *img, const rvi_image_limits *lim,
                           rvi_pixels *out, rvi_err *err)
{
	(void)lim;
	const rvi_gemma3v *m = model;
	const int S = (int)m->hp.image_size;
	rvi_gemma3_crops c;
	*out = (rvi_pixels){0};
	int rc = crops_of(m, img->w, img->h, &c, &out->shape, err);
	if (rc != RV_OK)
		return rc;
	const int64_t n_img = 1 + (int64_t)c.n_w * c.n_h;
	out->n_floats = n_img * 3 * S * S; /* <= (MAX_CROPS + 1) * 3 * 8192^2: bounded */
	out->data = rvi_alloc((size_t)out->n_floats, sizeof(float));
	if (!out->data)
		return rvi_errorf(err, RV_ERR_NOMEM, "out of memory for %lld images of %dx%d",
		                  (long long)n_img, S, S);
	out->w = out->h = S;
	rc = rvi_image_preprocess_gemma3(img, c.n_w, c.n_h, c.cw, c.ch, S, m->hp.image_mean,
	                                 m->hp.image_std, out->data, err);
	if (rc != RV_OK)
		rvi_pixels_free(out);
	return rc;
}

static int arch_encode(const void *model, const rvi_pixels *px, int n_threads, float *out,
                       rvi_err *err)
{
	const rvi_gemma3v *m = model;
	int64_t n;
	int rc = rvi_pixels_whole_images(px, m->hp.image_size, rvi_gemma3v_rows_per_image(m),
	                                 "gemma3", &n, err);
	return rc != RV_OK ? rc : rvi_gemma3v_encode(m, px->data, n, n_threads, out, NULL, err);
}

/* Gemma3Processor's text: each <start_of_image> of the chat text becomes
 * "\n\n<start_of_image>" + the image's rows + "<end_of_image>\n\n"; with
 * pan-and-scan crops it is first replaced by "Here is the original image
 * <start_of_image> and here are some crops to help you see better " and
 * one <start_of_image> per crop joined by " ". The text pieces join the
 * chat text around them before tokenizing, as the processor's string is
 * tokenized whole ("user\n" + "\n\n" is "us", "er", "\n\n", "\n"). */
static int arch_layout(const void *model, const rvi_embd_shape *sh, rvi_image_layout *out,
                       rvi_err *err)
{
	static const char boi[] = "<start_of_image>", eoi[] = "<end_of_image>";
	const rvi_gemma3v *m = model;
	const int64_t per = rvi_gemma3v_rows_per_image(m);
	const int64_t g = m->hp.image_size / m->hp.patch_size / m->pool;
	const int64_t n_crops = (int64_t)sh->tiles_h * sh->tiles_w;
	*out = (rvi_image_layout){0};
	if (sh->tiles_h < 0 || sh->tiles_w < 0 || n_crops > MAX_CROPS ||
	    (n_crops + 1) * per != sh->rows)
		return rvi_errorf(err, RV_ERR_INTERNAL, "gemma3 layout: %dx%d crops for %lld rows",
		                  sh->tiles_h, sh->tiles_w, (long long)sh->rows);
	/* at most 128 bytes of text around each image and crop */
	int rc = rvi_image_layout_new(out, (int)(2 * (n_crops + 1) + 1),
	                              (size_t)(n_crops + 2) * 128, err);
	if (rc != RV_OK)
		return rc;
	rvi_image_layout_text(out, "%s\n\n%s", n_crops ? "Here is the original image " : "", boi);
	rvi_image_layout_rows(out, 0, per, g, g);
	for (int64_t c = 0; c < n_crops; c++) {
		rvi_image_layout_text(out, "%s\n\n%s\n\n%s", eoi,
		                      c ? " " : " and here are some crops to help you see better ",
		                      boi);
		rvi_image_layout_rows(out, (c + 1) * per, per, g, g);
	}
	rvi_image_layout_text(out, "%s\n\n", eoi);
	out->text_joins = true;
	return RV_OK;
}

static int arch_set_pan_and_scan(void *model, const rvi_pan_and_scan *s, rvi_err *err)
{
	rvi_gemma3v *m = model;
	if (s->min_crop_size < 1 || s->min_crop_size > RVI_IMAGE_MAX_SIDE || s->max_crops < 1 ||
	    s->max_crops > MAX_CROPS || !(s->min_ratio >= 1.0 && s->min_ratio <= 1e4))
		return rvi_errorf(err, RV_ERR_INVALID_ARG,
		                  "pan-and-scan: min crop size %d (1..%d), max crops %d (1..%d) or "
		                  "min ratio %g (1..10000) out of range",
		                  s->min_crop_size, RVI_IMAGE_MAX_SIDE, s->max_crops, MAX_CROPS,
		                  s->min_ratio);
	m->pas = *s;
	return RV_OK;
}

const rvi_vision_arch rvi_gemma3v_arch = {
    .name = "gemma3",
    .load = arch_load,
    .free = arch_free,
    .n_embd_out = arch_n_embd_out,
    .embd_shape = arch_embd_shape,
    .preprocess = arch_preprocess,
    .encode = arch_encode,
    .layout = arch_layout,
    .chat_template = "gemma3",
    .set_pan_and_scan = arch_set_pan_and_scan,
};
