/* idefics3.c: SmolVLM's vision side (HF SmolVLMVisionTransformer +
 * SmolVLMConnector, = Idefics3's): per tile a SigLIP encoder (patch conv
 * with bias, learned positions, no class token, no pre-LN, pre-norm
 * blocks, GELU-tanh, post-LN; every stored block runs), then a pixel
 * shuffle that folds s x s neighbouring patches into one row and a linear
 * without bias. An image is cut into tiles by preprocess_idefics3.c; its
 * place in the prompt (tile tags, the global image) is the layout below. */
#include "models/idefics3.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/loader.h"

#define MAX_EMBD (1 << 16)
/* HF clamps the longest edge at 4096 (SmolVLM's MAX_IMAGE_SIZE). */
#define MAX_LONGEST_EDGE 4096

/* ---- loading ----------------------------------------------------------- */

int rvi_idefics3_load(rvi_idefics3 *m, const rvi_gguf *g, rvi_err *err)
{
	memset(m, 0, sizeof(*m));
	rvi_vit_hparams *hp = &m->hp;
	int rc = rvi_vit_load_hparams(hp, g, "idefics3", err);
	if (rc != RV_OK)
		return rc;
	const int64_t side = hp->image_size / hp->patch_size, W = hp->n_embd;
	if ((rc = rvi_load_dim(g, "clip.vision.projector.scale_factor", true, 1, side, &m->scale,
	                       err)) ||
	    (rc = rvi_load_dim(g, "clip.vision.preproc_image_size", true, 1, MAX_LONGEST_EDGE,
	                       &m->longest_edge, err)))
		return rc;
	if (side % m->scale != 0)
		return rvi_errorf(err, RV_ERR_MODEL,
		                  "%s: clip.vision.projector.scale_factor %lld does not divide the "
		                  "%lld x %lld patch grid of a tile",
		                  g->path, (long long)m->scale, (long long)side, (long long)side);
	if (hp->image_size > MAX_LONGEST_EDGE)
		return rvi_errorf(err, RV_ERR_MODEL, "%s: clip.vision.image_size %lld is over %d",
		                  g->path, (long long)hp->image_size, MAX_LONGEST_EDGE);
	if ((rc = rvi_load_check_blocks(g, "v.blk.", hp->n_layer, "clip.vision.block_count", err)))
		return rc;
	m->path = g->path;
	m->file_longest_edge = m->longest_edge;
	hp->n_mm_hidden = W * m->scale * m->scale;

	const rvi_gguf_tensor *fc;
	if ((rc = rvi_load_tensor(g, "mm.model.fc.weight", &fc, err)))
		return rc;
	if (fc->n_dims != 2 || fc->ne[1] < 1 || fc->ne[1] > MAX_EMBD) {
		char want[64];
		snprintf(want, sizeof(want), "[%lld, n_embd of the text model]",
		         (long long)hp->n_mm_hidden);
		return rvi_load_shape_error(g, "mm.model.fc.weight", fc, want, err);
	}
	hp->n_mm_out = fc->ne[1];

	if ((rc = rvi_vit_bind_patch_kernel(g, hp, &m->patch_embd, err)) ||
	    (rc = rvi_load_floats(g, "v.patch_embd.bias", W, 0, &m->patch_bias, err)) ||
	    (rc = rvi_load_floats(g, "v.position_embd.weight", W, hp->n_patches, &m->pos_embd,
	                          err)) ||
	    (rc = rvi_load_floats(g, "v.post_ln.weight", W, 0, &m->post_ln_w, err)) ||
	    (rc = rvi_load_floats(g, "v.post_ln.bias", W, 0, &m->post_ln_b, err)) ||
	    (rc = rvi_load_weight(g, "mm.model.fc.weight", hp->n_mm_hidden, hp->n_mm_out, &m->fc,
	                          err)))
		goto fail;
	if ((rc = rvi_vit_load_layers(g, hp, &m->layers, err)))
		goto fail;
	return RV_OK;
fail:
	rvi_idefics3_free(m);
	return rc;
}

void rvi_idefics3_free(rvi_idefics3 *m)
{
	rvi_vit_layers_free(m->layers, m->hp.n_layer);
	free(m->patch_bias);
	free(m->pos_embd);
	free(m->post_ln_w);
	free(m->post_ln_b);
	memset(m, 0, sizeof(*m));
}

int64_t rvi_idefics3_rows_per_tile(const rvi_idefics3 *m)
{
	return m->hp.n_patches / (m->scale * m->scale);
}

/* ---- forward ----------------------------------------------------------- */

int rvi_idefics3_encode(const rvi_idefics3 *m, const float *tiles, int64_t n_tiles, int n_threads,
                        float *out, rvi_err *err)
{
	if (!m || !m->layers || !tiles || !out || n_tiles < 1)
		return rvi_errorf(err, RV_ERR_INVALID_ARG,
		                  "idefics3 encode: no model, pixels or output buffer");
	const rvi_vit_hparams *hp = &m->hp;
	const int64_t S = hp->image_size, p = hp->patch_size, G = S / p, s = m->scale;
	const int64_t n = hp->n_patches, W = hp->n_embd, kpp = 3 * p * p;
	const int64_t g = G / s, n_out = g * g; /* merged grid side, rows per tile */
	const int nt = n_threads < 1 ? 1 : n_threads;

	uint64_t size[10] = {(uint64_t)(n * kpp), (uint64_t)(n * W), (uint64_t)(n * W)};
	rvi_vit_work_sizes(hp, n, nt, size + 3);
	float *patches; /* (n, 3*p*p) */
	float *x;       /* (n, W): the residual stream */
	float *sh;      /* (n_out, W s^2): pixel-shuffled */
	rvi_buf scr = {0};
	rvi_vit_work w = {.mm = &scr};
	float **const region[] = {&patches, &x,   &sh,   &w.xb, &w.q,
	                          &w.k,     &w.v, &w.ao, &w.hb, &w.scores};
	rvi_arena mem = {0};
	if (rvi_arena_alloc(&mem, size, region, 10) != RV_OK)
		return rvi_errorf(
		    err, RV_ERR_NOMEM,
		    "out of memory for the image encoder's activations (%lld patches)",
		    (long long)n);
	int rc = RV_OK;
	const char *what = "patch embedding";
	for (int64_t t = 0; t < n_tiles && rc == RV_OK; t++) {
		/* patches (n, 3*p*p), row-major over the G x G grid; HF's NaViT
		 * position buckets are the identity for a full tile, so patch
		 * i takes position row i */
		rvi_vit_patches(tiles + t * 3 * S * S, S, p, patches);
		/* x (n, W) = patches @ kernel^T + bias + pos_embd */
		what = "patch embedding";
		if ((rc = rvi_vit_linear(&m->patch_embd, m->patch_bias, patches, n, x, nt, &scr)))
			break;
		rvi_vit_add(x, m->pos_embd, n * W, nt);

		/* every stored block, pre-norm, GELU-tanh; then post_ln */
		what = "encoder block";
		for (int64_t il = 0; il < hp->n_layer && rc == RV_OK; il++)
			rc = rvi_vit_block(hp, &m->layers[il], RVI_VIT_GELU_TANH, x, n, &w, nt);
		if (rc != RV_OK)
			break;
		rvi_vit_layer_norm(x, x, m->post_ln_w, m->post_ln_b, n, W, hp->eps, nt);

		/* sh (n_out, W s^2): row R*g + C holds patches (s R + dh, s C + dw)
		 * for dh, dw in [0, s), dh-major, at column (dh s + dw) W */
		for (int64_t R = 0; R < g; R++)
			for (int64_t C = 0; C < g; C++)
				for (int64_t dh = 0; dh < s; dh++)
					for (int64_t dw = 0; dw < s; dw++)
						memcpy(sh + (R * g + C) * W * s * s +
						           (dh * s + dw) * W,
						       x + ((s * R + dh) * G + s * C + dw) * W,
						       (size_t)W * sizeof(float));

		/* out rows of this tile (n_out, n_mm_out) = sh @ fc^T */
		what = "connector";
		rc = rvi_vit_linear(&m->fc, NULL, sh, n_out, out + t * n_out * hp->n_mm_out, nt,
		                    &scr);
	}
	if (rc != RV_OK)
		rc = rvi_vit_encode_error(err, rc, m->path, what);
	rvi_buf_free(&scr);
	rvi_arena_free(&mem);
	return rc;
}

/* ---- the family's table ------------------------------------------------- */

RVI_ARCH_LOAD_FREE(rvi_idefics3, rvi_idefics3_load, rvi_idefics3_free)

static int64_t arch_n_embd_out(const void *model)
{
	return ((const rvi_idefics3 *)model)->hp.n_mm_out;
}

/* rows x cols tiles and the global image, each a g x g merged grid,
 * stacked: the rows are tile after tile. */
static int shape_of(const rvi_idefics3 *m, const rvi_idefics3_geom *geo, rvi_embd_shape *out)
{
	const int64_t g = m->hp.image_size / m->hp.patch_size / m->scale;
	const int64_t n_tiles = (int64_t)geo->rows * geo->cols + 1;
	*out = (rvi_embd_shape){n_tiles * g * g, n_tiles * g, g, geo->rows, geo->cols};
	return RV_OK;
}

static int arch_embd_shape(const void *model, int w, int h, const rvi_image_limits *lim,
                           rvi_embd_shape *out, rvi_err *err)
{
	(void)lim; /* a fixed size, whatever the limits */
	const rvi_idefics3 *m = model;
	rvi_idefics3_geom geo;
	int rc =
	    rvi_idefics3_geometry(w, h, (int)m->longest_edge, (int)m->hp.image_size, &geo, err);
	if (rc != RV_OK)
		return rc;
	return shape_of(m, &geo, out);
}

static int arch_preprocess(const void *model, const rvi_image *img, const rvi_image_limits *lim,
                           rvi_pixels *out, rvi_err *err)
{
	(void)lim; /* tiles of a fixed size, whatever the limits */
	const rvi_idefics3 *m = model;
	const int S = (int)m->hp.image_size;
	rvi_idefics3_geom geo;
	*out = (rvi_pixels){0};
	int rc = rvi_idefics3_geometry(img->w, img->h, (int)m->longest_edge, S, &geo, err);
	if (rc != RV_OK)
		return rc;
	const int64_t n_tiles = (int64_t)geo.rows * geo.cols + 1;
	out->n_floats = n_tiles * 3 * S * S; /* <= (4096/S + 1)^2 * 3 S^2: bounded */
	out->data = rvi_alloc((size_t)out->n_floats, sizeof(float));
	if (!out->data)
		return rvi_errorf(err, RV_ERR_NOMEM, "out of memory for %lld image tiles",
		                  (long long)n_tiles);
	out->w = out->h = S;
	shape_of(m, &geo, &out->shape);
	rc = rvi_image_preprocess_idefics3(img, &geo, S, m->hp.image_mean, m->hp.image_std,
	                                   out->data, err);
	if (rc != RV_OK)
		rvi_pixels_free(out);
	return rc;
}

static int arch_encode(const void *model, const rvi_pixels *px, int n_threads, float *out,
                       rvi_err *err)
{
	const rvi_idefics3 *m = model;
	int64_t n;
	int rc = rvi_pixels_whole_images(px, m->hp.image_size, rvi_idefics3_rows_per_tile(m),
	                                 "idefics3", &n, err);
	return rc != RV_OK ? rc : rvi_idefics3_encode(m, px->data, n, n_threads, out, err);
}

static int arch_set_longest_edge(void *model, int longest_edge, rvi_err *err)
{
	rvi_idefics3 *m = model;
	if (longest_edge < 0 || longest_edge > MAX_LONGEST_EDGE)
		return rvi_errorf(
		    err, RV_ERR_INVALID_ARG,
		    "image longest edge %d is out of range (1..%d, 0: the file's %lld)",
		    longest_edge, MAX_LONGEST_EDGE, (long long)m->file_longest_edge);
	m->longest_edge = longest_edge ? longest_edge : m->file_longest_edge;
	return RV_OK;
}

/* HF's _prompt_split_image: per tile "<fake_token_around_image>
 * <row_R_col_C>" and its rows, "\n" after every grid row, then
 * "\n<fake_token_around_image><global-img>", the global image's rows and
 * "<fake_token_around_image>"; without tiles only the global block. The
 * "\n" ending the last grid row and the global block's "\n" are one text
 * piece, as the processor's string is tokenized ("\n\n" is one BPE token).
 * Tokenized with special tokens parsed; a vocabulary without a
 * <global-img> token gets it as plain text, as HF's does. */
static int arch_layout(const void *model, const rvi_embd_shape *sh, rvi_image_layout *out,
                       rvi_err *err)
{
	static const char fake[] = "<fake_token_around_image>";
	const rvi_idefics3 *m = model;
	const int64_t per = rvi_idefics3_rows_per_tile(m);
	const int64_t g = m->hp.image_size / m->hp.patch_size / m->scale;
	const int rows = sh->tiles_h, cols = sh->tiles_w;
	const int64_t n_tiles = (int64_t)rows * cols;
	*out = (rvi_image_layout){0};
	if (rows < 0 || cols < 0 || rows > 4096 || cols > 4096 || (n_tiles + 1) * per != sh->rows)
		return rvi_errorf(err, RV_ERR_INTERNAL,
		                  "idefics3 layout: %dx%d tiles for %lld rows", rows, cols,
		                  (long long)sh->rows);
	int rc = rvi_image_layout_new(out, (int)(2 * n_tiles + 3), (size_t)(n_tiles + 2) * 64, err);
	if (rc != RV_OK)
		return rc;
	for (int r = 0; r < rows; r++)
		for (int c = 0; c < cols; c++) {
			rvi_image_layout_text(out, "%s%s<row_%d_col_%d>",
			                      r > 0 && c == 0 ? "\n" : "", fake, r + 1, c + 1);
			rvi_image_layout_rows(out, ((int64_t)r * cols + c) * per, per, g, g);
		}
	rvi_image_layout_text(out, "%s%s<global-img>", n_tiles ? "\n\n" : "", fake);
	rvi_image_layout_rows(out, n_tiles * per, per, g, g);
	rvi_image_layout_text(out, "%s", fake);
	return RV_OK;
}

const rvi_vision_arch rvi_idefics3_arch = {
    .name = "idefics3",
    .load = arch_load,
    .free = arch_free,
    .n_embd_out = arch_n_embd_out,
    .embd_shape = arch_embd_shape,
    .preprocess = arch_preprocess,
    .encode = arch_encode,
    .layout = arch_layout,
    .chat_template = "smolvlm",
    .set_longest_edge = arch_set_longest_edge,
};
