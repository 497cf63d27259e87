/* preprocess_gemma3.c: the image preprocessing of Gemma 3 (HF
 * Gemma3ImageProcessor, the PIL path): the image, then its pan-and-scan
 * crops when there are any, each stretched to S x S with Pillow's BILINEAR
 * (no aspect kept, no padding), rescaled and normalised into planar float
 * (see image.h). */
#include "src/image/image.h"

#include <string.h>

/* One S x S plane triple of out from the w x h region of img at (x0, y0). */
static int one(const rvi_image *img, int x0, int y0, int w, int h, int S, const float mean[3],
               const float std[3], float *out, rvi_err *err)
{
	rvi_image crop = {0}, rs = {0};
	const rvi_image *src = img;
	int rc = RV_OK;
	if (x0 != 0 || y0 != 0 || w != img->w || h != img->h) {
		if ((rc = rvi_image_new(w, h, &crop, err)) != RV_OK)
			return rc;
		for (int y = 0; y < h; y++)
			memcpy(crop.rgb + (size_t)y * w * 3,
			       img->rgb + ((size_t)(y0 + y) * img->w + x0) * 3, (size_t)w * 3);
		src = &crop;
	}
	rc = rvi_image_resize_pil(src, S, S, RVI_RESAMPLE_BILINEAR, &rs, err);
	if (rc == RV_OK)
		rvi_image_normalize_chw(&rs, mean, std, out);
	rvi_image_free(&rs);
	rvi_image_free(&crop);
	return rc;
}

int rvi_image_preprocess_gemma3(const rvi_image *img, int n_w, int n_h, int cw, int ch, int S,
                                const float mean[3], const float std[3], float *out, rvi_err *err)
{
	if (!rvi_image_valid(img) || S < 1 || S > RVI_IMAGE_MAX_SIDE || n_w < 0 || n_h < 0 ||
	    (n_w > 0) != (n_h > 0) || (n_w > 0 && (cw < 1 || ch < 1)))
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "preprocess: invalid image or crops");
	const size_t plane = (size_t)3 * S * S;
	int rc = one(img, 0, 0, img->w, img->h, S, mean, std, out, err);
	/* the crops row-major, the last of a row or column cut short by the
	 * image's edge, as Python's slicing does */
	for (int r = 0; rc == RV_OK && r < n_h; r++)
		for (int c = 0; rc == RV_OK && c < n_w; c++) {
			const int x0 = c * cw, y0 = r * ch;
			const int w = img->w - x0 < cw ? img->w - x0 : cw;
			const int h = img->h - y0 < ch ? img->h - y0 : ch;
			if (w < 1 || h < 1)
				return rvi_errorf(
				    err, RV_ERR_INVALID_ARG,
				    "preprocess: crop %d,%d lies outside a %dx%d image", r, c,
				    img->w, img->h);
			rc = one(img, x0, y0, w, h, S, mean, std,
			         out + plane * (size_t)(1 + r * n_w + c), err);
		}
	return rc;
}
