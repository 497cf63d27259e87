/* preprocess_idefics3.c: the image preprocessing of Idefics3 and SmolVLM
 * (HF Idefics3ImageProcessor / SmolVLMImageProcessor, the PIL path): the
 * longest edge to a given length, each side stretched up to a multiple of
 * the tile, both with Pillow's LANCZOS on 8-bit RGB; the tiles row-major,
 * then the whole image squeezed to one tile last; rescale and normalise
 * into planar float (see image.h). */
#include "src/image/image.h"

#include <math.h>
#include <string.h>

/* HF clamps the first resize's longest edge here (MAX_IMAGE_SIZE). */
#define IDEFICS3_MAX_SIDE 4096

/* w x h with the longest edge set to len, the other side following the
 * aspect ratio as HF's Python computes it (double division, int()
 * truncation), and made even when round_even; at least 1. */
static void longest_edge_to(int w, int h, int len, bool round_even, int *ow, int *oh)
{
	const double aspect = (double)w / (double)h;
	if (w >= h) {
		*ow = len;
		*oh = (int)((double)len / aspect);
		if (round_even && *oh % 2 != 0)
			(*oh)++;
	} else {
		*oh = len;
		*ow = (int)((double)len * aspect);
		if (round_even && *ow % 2 != 0)
			(*ow)++;
	}
	if (*ow < 1)
		*ow = 1;
	if (*oh < 1)
		*oh = 1;
}

static int ceil_to(int v, int m)
{
	return (v + m - 1) / m * m;
}

int rvi_idefics3_geometry(int w, int h, int longest_edge, int tile, rvi_idefics3_geom *g,
                          rvi_err *err)
{
	memset(g, 0, sizeof(*g));
	if (w < 1 || h < 1 || w > RVI_IMAGE_MAX_SIDE || h > RVI_IMAGE_MAX_SIDE)
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "preprocess: invalid image size %dx%d",
		                  w, h);
	if (tile < 1 || tile > IDEFICS3_MAX_SIDE || longest_edge < 1 ||
	    longest_edge > IDEFICS3_MAX_SIDE)
		return rvi_errorf(err, RV_ERR_INVALID_ARG,
		                  "preprocess: longest edge %d or tile %d is out of range (1..%d)",
		                  longest_edge, tile, IDEFICS3_MAX_SIDE);
	/* resize 1: the longest edge to longest_edge (upscaling too), odd
	 * other side + 1; then below HF's upper bound (no-op here, as
	 * longest_edge <= the bound, but the rounding up can exceed it) */
	longest_edge_to(w, h, longest_edge, true, &g->w1, &g->h1);
	if (g->w1 > IDEFICS3_MAX_SIDE || g->h1 > IDEFICS3_MAX_SIDE)
		longest_edge_to(g->w1, g->h1, IDEFICS3_MAX_SIDE, false, &g->w1, &g->h1);
	/* resize 2: the longer side up to a multiple of the tile, the other
	 * following the aspect ratio, then up to a multiple too (stretching) */
	const double aspect = (double)g->w1 / (double)g->h1;
	if (g->w1 >= g->h1) {
		g->w2 = ceil_to(g->w1, tile);
		g->h2 = ceil_to((int)((double)g->w2 / aspect), tile);
	} else {
		g->h2 = ceil_to(g->h1, tile);
		g->w2 = ceil_to((int)((double)g->h2 * aspect), tile);
	}
	if (g->w2 < tile)
		g->w2 = tile; /* int() gave 0: ceil(0) is 0 in HF, refused below */
	if (g->h2 < tile)
		g->h2 = tile;
	/* Split only when larger than one tile; then rows x cols tiles. */
	if (g->w2 > tile || g->h2 > tile) {
		g->rows = g->h2 / tile;
		g->cols = g->w2 / tile;
	}
	return RV_OK;
}

/* Tile (r, c) of img (tile x tile pixels at (c * tile, r * tile)),
 * normalised into out. */
static int put_tile(const rvi_image *img, int r, int c, int tile, const float mean[3],
                    const float std[3], float *out, rvi_err *err)
{
	rvi_image t;
	int rc = rvi_image_new(tile, tile, &t, err);
	if (rc != RV_OK)
		return rc;
	for (int y = 0; y < tile; y++)
		memcpy(t.rgb + (size_t)y * tile * 3,
		       img->rgb + (((size_t)(r * tile + y) * img->w) + (size_t)c * tile) * 3,
		       (size_t)tile * 3);
	rvi_image_normalize_chw(&t, mean, std, out);
	rvi_image_free(&t);
	return RV_OK;
}

int rvi_image_preprocess_idefics3(const rvi_image *img, const rvi_idefics3_geom *g, int tile,
                                  const float mean[3], const float std[3], float *out, rvi_err *err)
{
	if (!rvi_image_valid(img) || !g || !mean || !std || !out)
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "preprocess: invalid image or buffer");
	if (tile < 1 || g->w2 != (g->cols ? g->cols : 1) * tile ||
	    g->h2 != (g->rows ? g->rows : 1) * tile)
		return rvi_errorf(err, RV_ERR_INVALID_ARG,
		                  "preprocess: a %dx%d image is not a grid of %d-pixel tiles",
		                  g->w2, g->h2, tile);
	rvi_image r1 = {0}, r2 = {0}, glob = {0};
	int rc = rvi_image_resize_pil(img, g->w1, g->h1, RVI_RESAMPLE_LANCZOS, &r1, err);
	if (rc == RV_OK)
		rc = rvi_image_resize_pil(&r1, g->w2, g->h2, RVI_RESAMPLE_LANCZOS, &r2, err);
	const size_t plane = (size_t)3 * tile * tile;
	size_t k = 0;
	for (int r = 0; rc == RV_OK && r < g->rows; r++)
		for (int c = 0; rc == RV_OK && c < g->cols; c++)
			rc = put_tile(&r2, r, c, tile, mean, std, out + plane * k++, err);
	/* the global image: the resize-2 image stretched to one tile */
	if (rc == RV_OK)
		rc = rvi_image_resize_pil(&r2, tile, tile, RVI_RESAMPLE_LANCZOS, &glob, err);
	if (rc == RV_OK)
		rvi_image_normalize_chw(&glob, mean, std, out + plane * k);
	rvi_image_free(&r1);
	rvi_image_free(&r2);
	rvi_image_free(&glob);
	return rc;
}
