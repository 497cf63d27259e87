/* preprocess_minicpmv.c: MiniCPM-V's slicing (see minicpmv.h), as HF's
 * MiniCPMVImageProcessor computes it: get_sliced_grid, find_best_resize,
 * get_refine_size and split_to_patches, in Python's double arithmetic
 * (int() truncates, round() is half to even). */
#include "src/image/minicpmv.h"

#include <math.h>
#include <string.h>

#define MAX_SLICES 64

/* ensure_divide: max(round(x / p) * p, p), Python's round (half to even:
 * rint in the default rounding mode). */
static double ensure_divide(double x, int p)
{
	const double r = rint(x / p) * p;
	return r > p ? r : p;
}

/* find_best_resize: sizes over S^2 in area (or any, when upscaling) to
 * about S^2 keeping the aspect ratio, then to multiples of p. */
static void best_resize(double w, double h, int S, int p, bool upscale, double *ow, double *oh)
{
	if (w * h > (double)S * S || upscale) {
		const double r = w / h;
		h = trunc(S / sqrt(r));
		w = trunc(h * r);
	}
	*ow = ensure_divide(w, p);
	*oh = ensure_divide(h, p);
}

/* get_sliced_grid: [cols, rows] among the divisor pairs of multiple - 1,
 * multiple and multiple + 1 slices (1 and over max_slices left out),
 * closest in log aspect ratio, the first on a tie; false: not sliced. */
static bool sliced_grid(int w, int h, int S, int max_slices, int *cols, int *rows)
{
	const double log_ratio = log((double)w / h);
	const double ratio = (double)w * h / ((double)S * S);
	const double c = ceil(ratio);
	const int multiple = c < max_slices ? (int)c : max_slices;
	if (multiple <= 1)
		return false;
	double best = INFINITY;
	*cols = *rows = 1;
	for (int n = multiple - 1; n <= multiple + 1; n++) {
		if (n == 1 || n > max_slices)
			continue;
		for (int m = 1; m <= n; m++) {
			if (n % m)
				continue;
			const double e = fabs(log_ratio - log((double)m / (n / m)));
			if (e < best) {
				best = e;
				*cols = m;
				*rows = n / m;
			}
		}
	}
	return true;
}

static bool side_ok(double v)
{
	return v >= 1 && v <= RVI_IMAGE_MAX_SIDE;
}

int rvi_minicpmv_geometry(int w, int h, int S, int p, int max_slices, rvi_minicpmv_geom *g,
                          rvi_err *err)
{
	memset(g, 0, sizeof(*g));
	if (w < 1 || h < 1 || S < 1 || p < 1 || S > RVI_IMAGE_MAX_SIDE || max_slices < 1 ||
	    max_slices > MAX_SLICES)
		return rvi_errorf(err, RV_ERR_INVALID_ARG,
		                  "minicpmv slicing: image %dx%d, slice size %d, patch %d, %d "
		                  "slices at most (1..%d)",
		                  w, h, S, p, max_slices, MAX_SLICES);
	int cols = 0, rows = 0;
	const bool sliced = sliced_grid(w, h, S, max_slices, &cols, &rows);
	double ow, oh, sw = 0, sh = 0;
	/* unsliced, the image is scaled to about S^2 even when smaller */
	best_resize(w, h, S, p, !sliced, &ow, &oh);
	if (sliced) {
		/* get_refine_size: the slice of the image rounded to the grid,
		 * scaled to about S^2 (float division, as HF's) */
		const double rw = ensure_divide(w, cols), rh = ensure_divide(h, rows);
		best_resize(rw / cols, rh / rows, S, p, true, &sw, &sh);
		if (!side_ok(sw * cols) || !side_ok(sh * rows))
			return rvi_errorf(err, RV_ERR_IMAGE,
			                  "a %dx%d image's slices come to %.0fx%.0f pixels (limit "
			                  "%d a side)",
			                  w, h, sw * cols, sh * rows, RVI_IMAGE_MAX_SIDE);
	}
	if (!side_ok(ow) || !side_ok(oh))
		return rvi_errorf(err, RV_ERR_IMAGE,
		                  "a %dx%d image is resized to %.0fx%.0f (limit %d a side)", w, h,
		                  ow, oh, RVI_IMAGE_MAX_SIDE);
	*g = (rvi_minicpmv_geom){(int)ow, (int)oh, cols, rows, (int)sw, (int)sh};
	return RV_OK;
}

int rvi_image_preprocess_minicpmv(const rvi_image *img, const rvi_minicpmv_geom *g,
                                  const float mean[3], const float std[3], float *out, rvi_err *err)
{
	if (!rvi_image_valid(img) || !g || !mean || !std || !out || g->ow < 1 || g->oh < 1 ||
	    (g->cols * g->rows > 0 && (g->sw < 1 || g->sh < 1)))
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "preprocess: invalid image or sizes");
	/* every resize from the original image */
	rvi_image r = {0}, s = {0};
	int rc = rvi_image_resize_pil(img, g->ow, g->oh, RVI_RESAMPLE_BICUBIC, &r, err);
	if (rc != RV_OK)
		return rc;
	rvi_image_normalize_chw(&r, mean, std, out);
	out += (size_t)3 * g->ow * g->oh;
	rvi_image_free(&r);
	if (g->cols * g->rows == 0)
		return RV_OK;
	rc = rvi_image_resize_pil(img, g->sw * g->cols, g->sh * g->rows, RVI_RESAMPLE_BICUBIC, &r,
	                          err);
	if (rc == RV_OK)
		rc = rvi_image_new(g->sw, g->sh, &s, err);
	/* split_to_patches: crops of sw x sh, row-major */
	for (int y = 0; rc == RV_OK && y < g->rows; y++)
		for (int x = 0; x < g->cols; x++) {
			for (int row = 0; row < g->sh; row++)
				memcpy(s.rgb + (size_t)row * g->sw * 3,
				       r.rgb +
				           (((size_t)y * g->sh + row) * r.w + (size_t)x * g->sw) *
				               3,
				       (size_t)g->sw * 3);
			rvi_image_normalize_chw(&s, mean, std, out);
			out += (size_t)3 * g->sw * g->sh;
		}
	rvi_image_free(&r);
	rvi_image_free(&s);
	return rc;
}
