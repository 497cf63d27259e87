/* minicpmv.h (src/image/): MiniCPM-V's image slicing and preprocessing
 * (HF MiniCPMVImageProcessor, versions 2.6 and later): an image becomes an
 * overview of about S x S pixels keeping its aspect ratio and, when its
 * area is over S^2, cols x rows slices of a refined copy, every side a
 * multiple of the patch size. Errors as image.h's. */
#ifndef RLAIFV_IMAGE_MINICPMV_H
#define RLAIFV_IMAGE_MINICPMV_H

#include "src/image/image.h"

/* The sizes HF's slice_image picks for an image of w x h: the overview
 * (ow x oh); cols x rows slices of sw x sh each (cols = rows = 0: the
 * overview alone), cut from the image resized to cols*sw x rows*sh. */
typedef struct rvi_minicpmv_geom {
	int ow, oh;
	int cols, rows;
	int sw, sh;
} rvi_minicpmv_geom;

/* S: the slice size (scale_resolution), p: the patch size, max_slices:
 * max_slice_nums (1: never sliced). RV_ERR_IMAGE when a side would be
 * over RVI_IMAGE_MAX_SIDE; RV_ERR_INVALID_ARG for bad parameters. */
int rvi_minicpmv_geometry(int w, int h, int S, int p, int max_slices, rvi_minicpmv_geom *g,
                          rvi_err *err);

/* The overview then the slices row-major, each resized from img with
 * Pillow's BICUBIC and normalised planar (3, h, w) as HF does
 * ((float)u8 / 255 in float32, then (x - mean) / std), one after another
 * into out: 3 * (ow*oh + cols*rows*sw*sh) floats. */
int rvi_image_preprocess_minicpmv(const rvi_image *img, const rvi_minicpmv_geom *g,
                                  const float mean[3], const float std[3], float *out,
                                  rvi_err *err);

#endif
