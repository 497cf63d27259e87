/* preprocess_qwen2vl.c: Qwen2-VL / Qwen2.5-VL image preprocessing, as HF's
 * Qwen2VLImageProcessor does it (see image.h): smart_resize to multiples of
 * patch * merge pixels within the pixel limits, a Pillow bicubic stretch
 * (no padding, no crop), rescale and normalise, then the patches in the
 * order the vision tower reads them. */
#include <math.h>
#include <string.h>

#include "src/image/image.h"

/* Python's round() sends ties to even; rint() does too in the default
 * rounding mode, which C programs start in and we never change. */
static double py_round(double x)
{
	return rint(x);
}

int rvi_qwen2vl_smart_resize(int w, int h, int factor, int64_t min_pixels, int64_t max_pixels,
                             int *out_w, int *out_h, rvi_err *err)
{
	if (w < 1 || h < 1 || factor < 1)
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "smart_resize: %dx%d image", w, h);
	if (min_pixels < 1 || max_pixels < min_pixels || max_pixels > ((int64_t)1 << 40))
		return rvi_errorf(err, RV_ERR_INVALID_ARG,
		                  "image pixel limits: min %lld, max %lld: need 1 <= min <= max <= "
		                  "2^40",
		                  (long long)min_pixels, (long long)max_pixels);
	/* HF refuses these as well: a side below one merged patch, or a ratio
	 * the grid cannot follow. */
	if (w < factor || h < factor)
		return rvi_errorf(
		    err, RV_ERR_IMAGE,
		    "a %dx%d image is too small: both sides must be at least %d pixels", w, h,
		    factor);
	const int big = w > h ? w : h, small = w > h ? h : w;
	if (big > 200 * (int64_t)small)
		return rvi_errorf(err, RV_ERR_IMAGE,
		                  "a %dx%d image is too long and thin: the aspect ratio must be "
		                  "below 200",
		                  w, h);
	const double f = factor;
	double hb = py_round(h / f) * f, wb = py_round(w / f) * f;
	if (hb * wb > (double)max_pixels) {
		const double beta = sqrt((double)h * (double)w / (double)max_pixels);
		hb = fmax(f, floor(h / beta / f) * f);
		wb = fmax(f, floor(w / beta / f) * f);
	} else if (hb * wb < (double)min_pixels) {
		const double beta = sqrt((double)min_pixels / ((double)h * (double)w));
		hb = ceil(h * beta / f) * f;
		wb = ceil(w * beta / f) * f;
	}
	if (hb > 65536 || wb > 65536)
		return rvi_errorf(err, RV_ERR_IMAGE,
		                  "a %dx%d image resized to %.0fx%.0f is too large (limit 65536 a "
		                  "side): lower the minimum pixels",
		                  w, h, wb, hb);
	*out_w = (int)wb;
	*out_h = (int)hb;
	return RV_OK;
}

int rvi_image_preprocess_qwen2vl(const rvi_image *img, int out_w, int out_h, const float mean[3],
                                 const float std[3], float *out_chw, rvi_err *err)
{
	if (!rvi_image_valid(img) || !mean || !std || !out_chw || out_w < 1 || out_h < 1)
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "preprocess: invalid image or buffer");
	/* HF resizes only when the size changes. */
	if (img->w == out_w && img->h == out_h) {
		rvi_image_normalize_chw(img, mean, std, out_chw);
		return RV_OK;
	}
	rvi_image r;
	int rc = rvi_image_resize_bicubic_pil(img, out_w, out_h, &r, err);
	if (rc != RV_OK)
		return rc;
	rvi_image_normalize_chw(&r, mean, std, out_chw);
	rvi_image_free(&r);
	return RV_OK;
}

void rvi_qwen2vl_patches(const float *chw, int w, int h, int patch, int merge, int temporal,
                         float *out)
{
	const int64_t gh = h / patch, gw = w / patch, p = patch;
	const int64_t row = 3 * (int64_t)temporal * p * p;
	const size_t plane = (size_t)w * (size_t)h;
	float *dst = out;
	/* merge blocks row-major, the merge x merge patches of each row-major:
	 * the patch rows of one merged token sit together */
	for (int64_t bh = 0; bh < gh / merge; bh++)
		for (int64_t bw = 0; bw < gw / merge; bw++)
			for (int64_t mh = 0; mh < merge; mh++)
				for (int64_t mw = 0; mw < merge; mw++) {
					const int64_t py = bh * merge + mh, px = bw * merge + mw;
					/* (c, t, ky, kx): a still image repeated in time */
					for (int64_t c = 0; c < 3; c++)
						for (int64_t t = 0; t < temporal; t++)
							for (int64_t ky = 0; ky < p; ky++)
								memcpy(dst +
								           ((c * temporal + t) * p +
								            ky) *
								               p,
								       chw + c * plane +
								           (size_t)(py * p + ky) *
								               (size_t)w +
								           (size_t)(px * p),
								       (size_t)p * sizeof(float));
					dst += row;
				}
}
