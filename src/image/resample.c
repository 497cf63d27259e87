/* resample.c: Pillow-exact geometry on 8-bit RGB images: padding to a
 * square and the bicubic, LANCZOS and bilinear resizes (see image.h). Knows nothing of files or
 * of any model family's preprocessing. */
#include "src/image/image.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void rvi_image_pad_color(const float mean[3], uint8_t color[3])
{
	for (int c = 0; c < 3; c++) {
		double v = (double)mean[c] * 255.0; /* Python: int(x * 255) truncates */
		color[c] = v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)v;
	}
}

/* An image as the resampler sees it: the real pixels placed at (ox, oy) in
 * a vw x vh canvas of colour pad. Lets preprocessing resize the padded
 * square without building it. */
typedef struct view {
	const uint8_t *rgb;
	int w, h;
	int vw, vh, ox, oy;
	uint8_t pad[3];
} view;

static view plain_view(const rvi_image *img)
{
	view v = {img->rgb, img->w, img->h, img->w, img->h, 0, 0, {0, 0, 0}};
	return v;
}

static bool view_padded(const view *v)
{
	return v->w != v->vw || v->h != v->vh;
}

static bool view_row_is_pad(const view *v, int y)
{
	return y < v->oy || y >= v->oy + v->h;
}

/* Rows of a view's canvas. The padding is written once, when the rows are
 * made, so a canvas row costs a copy of its real pixels only: a long thin
 * image padded to a huge square must not cost its square. */
typedef struct canvas_rows {
	const view *v;
	uint8_t *pad_row;   /* vw pixels of padding */
	uint8_t *mixed_row; /* padding with the real pixels of one row at ox */
} canvas_rows;

static void canvas_rows_free(canvas_rows *cr)
{
	free(cr->pad_row);
	free(cr->mixed_row);
	cr->pad_row = cr->mixed_row = NULL;
}

static int canvas_rows_init(const view *v, canvas_rows *cr, rvi_err *err)
{
	cr->v = v;
	cr->pad_row = cr->mixed_row = NULL;
	if (!view_padded(v))
		return RV_OK;
	cr->pad_row = rvi_alloc((size_t)v->vw, 3);
	cr->mixed_row = rvi_alloc((size_t)v->vw, 3);
	if (!cr->pad_row || !cr->mixed_row) {
		canvas_rows_free(cr);
		return rvi_errorf(err, RV_ERR_NOMEM, "out of memory for a %d-pixel image row",
		                  v->vw);
	}
	for (int x = 0; x < v->vw; x++) {
		memcpy(cr->pad_row + (size_t)x * 3, v->pad, 3);
		memcpy(cr->mixed_row + (size_t)x * 3, v->pad, 3);
	}
	return RV_OK;
}

/* Row y of the canvas, valid until the next call. */
static const uint8_t *canvas_row(canvas_rows *cr, int y)
{
	const view *v = cr->v;
	if (view_row_is_pad(v, y))
		return cr->pad_row;
	const uint8_t *real = v->rgb + (size_t)(y - v->oy) * v->w * 3;
	if (v->w == v->vw)
		return real;
	memcpy(cr->mixed_row + (size_t)v->ox * 3, real, (size_t)v->w * 3);
	return cr->mixed_row;
}

int rvi_image_pad_to_square(const rvi_image *in, const uint8_t color[3], rvi_image *out,
                            rvi_err *err)
{
	if (!rvi_image_valid(in) || !color)
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "pad_to_square: invalid image");
	int side = in->w > in->h ? in->w : in->h;
	view v = {in->rgb,
	          in->w,
	          in->h,
	          side,
	          side,
	          (side - in->w) / 2,
	          (side - in->h) / 2,
	          {color[0], color[1], color[2]}};
	canvas_rows cr;
	int rc = canvas_rows_init(&v, &cr, err);
	if (rc == RV_OK)
		rc = rvi_image_new(side, side, out, err);
	if (rc == RV_OK)
		for (int y = 0; y < side; y++)
			memcpy(out->rgb + (size_t)y * side * 3, canvas_row(&cr, y),
			       (size_t)side * 3);
	canvas_rows_free(&cr);
	return rc;
}

/* ---- Pillow's resample ---------------------------------------------------
 * The facts that make the result bit-exact with Pillow (libImaging's
 * Resample.c), whatever the filter: weights are computed in double and normalised per output
 * pixel, then turned into integers with 22 fractional bits (round half away
 * from zero); sums start at 2^21 and are shifted right by 22 with an
 * arithmetic shift, then clamped. Integer sums do not depend on the order of
 * the terms, so the loops below may visit pixels in any order. */

#define PIL_PRECISION_BITS 22

static double bicubic(double x)
{
	const double a = -0.5;
	if (x < 0.0)
		x = -x;
	if (x < 1.0)
		return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
	if (x < 2.0)
		return (((x - 5) * x + 8) * x - 4) * a;
	return 0.0;
}

static double bilinear(double x)
{
	/* Pillow's triangle: support 1, widened by the scale when shrinking
	 * (coeffs_make), which makes BILINEAR antialiased */
	if (x < 0.0)
		x = -x;
	return x < 1.0 ? 1.0 - x : 0.0;
}

static double sinc(double x)
{
	if (x == 0.0)
		return 1.0;
	x *= 3.14159265358979323846; /* M_PI, which strict C11 lacks */
	return sin(x) / x;
}

static double lanczos(double x)
{
	/* Pillow's bounds: [-3, 3), as its filter table says */
	if (-3.0 <= x && x < 3.0)
		return sinc(x) * sinc(x / 3.0);
	return 0.0;
}

/* A filter's kernel and its support (in input pixels at scale 1). */
typedef struct filter {
	double (*kernel)(double x);
	double support;
} filter;

static const filter filters[] = {
    [RVI_RESAMPLE_BICUBIC] = {bicubic, 2.0},
    [RVI_RESAMPLE_LANCZOS] = {lanczos, 3.0},
    [RVI_RESAMPLE_BILINEAR] = {bilinear, 1.0},
};

typedef struct coeffs {
	int ksize;
	int *bounds; /* per output pixel: first input pixel, number of taps */
	int32_t *k;  /* per output pixel: ksize fixed-point weights */
} coeffs;

static void coeffs_free(coeffs *c)
{
	free(c->bounds);
	free(c->k);
	c->bounds = NULL;
	c->k = NULL;
}

static int coeffs_make(const filter *f, int in_size, int out_size, coeffs *c, rvi_err *err)
{
	double scale = (double)in_size / out_size;
	double filterscale = scale < 1.0 ? 1.0 : scale;
	double support = f->support * filterscale;
	int ksize = (int)ceil(support) * 2 + 1;
	uint64_t nk;
	c->ksize = ksize;
	c->bounds = NULL;
	c->k = NULL;
	double *w = NULL;
	if (!rvi_mul_ok((uint64_t)out_size, (uint64_t)ksize, &nk) || nk > SIZE_MAX / 4)
		goto nomem;
	c->bounds = rvi_alloc((size_t)out_size * 2, sizeof(int));
	c->k = rvi_alloc((size_t)nk, sizeof(int32_t));
	w = rvi_alloc((size_t)ksize, sizeof(double));
	if (!c->bounds || !c->k || !w)
		goto nomem;
	for (int xx = 0; xx < out_size; xx++) {
		double center = (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
		int xmin = (int)(center - support + 0.5); /* truncation, as (int) in C */
		int xmax = (int)(center + support + 0.5);
		if (xmin < 0)
			xmin = 0;
		if (xmax > in_size)
			xmax = in_size;
		xmax -= xmin;
		for (int x = 0; x < xmax; x++) {
			w[x] = f->kernel((x + xmin - center + 0.5) * ss);
			ww += w[x];
		}
		int32_t *k = c->k + (size_t)xx * ksize;
		for (int x = 0; x < ksize; x++) {
			double v = x < xmax ? (ww != 0.0 ? w[x] / ww : w[x]) : 0.0;
			v *= 1 << PIL_PRECISION_BITS;
			k[x] = (int32_t)(v < 0 ? v - 0.5 : v + 0.5);
		}
		c->bounds[xx * 2] = xmin;
		c->bounds[xx * 2 + 1] = xmax;
	}
	free(w);
	return RV_OK;
nomem:
	free(w);
	coeffs_free(c);
	return rvi_errorf(err, RV_ERR_NOMEM, "out of memory for resize coefficients");
}

static uint8_t clip8(int64_t ss)
{
	int64_t v = ss >> PIL_PRECISION_BITS; /* arithmetic: floor */
	return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

/* Output pixel xx of the horizontal pass over canvas row y, in integer
 * sums (exact, so the terms may be grouped): the taps on padding add
 * pad * (their weights' sum), the taps on the real pixels are summed one by
 * one. The work is proportional to the real pixels a tap sees, so a thin
 * image padded to a huge square costs no more than its pixels. ksum is the
 * sum of all of xx's weights. */
static void resize_pixel_h(const view *v, int y, const coeffs *ch, int xx, int64_t ksum, uint8_t *o)
{
	int xmin = ch->bounds[xx * 2], xend = xmin + ch->bounds[xx * 2 + 1];
	const int32_t *k = ch->k + (size_t)xx * ch->ksize; /* k[i]: canvas column xmin + i */
	int64_t s0 = 1 << (PIL_PRECISION_BITS - 1), s1 = s0, s2 = s0, kreal = 0;
	if (!view_row_is_pad(v, y)) {
		int r0 = xmin > v->ox ? xmin : v->ox;
		int r1 = xend < v->ox + v->w ? xend : v->ox + v->w;
		if (r0 < r1) {
			const uint8_t *p = v->rgb + ((size_t)(y - v->oy) * v->w + (r0 - v->ox)) * 3;
			const int32_t *kr = k + (r0 - xmin);
			for (int i = 0; i < r1 - r0; i++) {
				kreal += kr[i];
				s0 += (int64_t)p[i * 3] * kr[i];
				s1 += (int64_t)p[i * 3 + 1] * kr[i];
				s2 += (int64_t)p[i * 3 + 2] * kr[i];
			}
		}
	}
	int64_t kpad = ksum - kreal;
	o[0] = clip8(s0 + v->pad[0] * kpad);
	o[1] = clip8(s1 + v->pad[1] * kpad);
	o[2] = clip8(s2 + v->pad[2] * kpad);
}

/* The horizontal pass over canvas rows [y_first, y_last) into dst. */
static int resize_rows_h(const view *v, const coeffs *ch, int y_first, int y_last, rvi_image *dst,
                         rvi_err *err)
{
	int out_w = dst->w;
	int64_t *ksum = rvi_alloc((size_t)out_w, sizeof(int64_t));
	if (!ksum)
		return rvi_errorf(err, RV_ERR_NOMEM, "out of memory resizing to %dx%d", out_w,
		                  dst->h);
	for (int xx = 0; xx < out_w; xx++) {
		ksum[xx] = 0;
		for (int x = 0; x < ch->bounds[xx * 2 + 1]; x++)
			ksum[xx] += ch->k[(size_t)xx * ch->ksize + x];
	}
	size_t rowlen = (size_t)out_w * 3;
	for (int y = y_first; y < y_last; y++) {
		uint8_t *o = dst->rgb + (size_t)(y - y_first) * rowlen;
		/* All padding rows are alike: the first one is copied. */
		if (view_row_is_pad(v, y) && y > y_first && view_row_is_pad(v, y - 1)) {
			memcpy(o, o - rowlen, rowlen);
			continue;
		}
		for (int xx = 0; xx < out_w; xx++)
			resize_pixel_h(v, y, ch, xx, ksum[xx], o + xx * 3);
	}
	free(ksum);
	return RV_OK;
}

/* The canvas of v resized to out_w x out_h with f into out (allocated
 * here). */
static int resize_view(const view *v, const filter *f, int out_w, int out_h, rvi_image *out,
                       rvi_err *err)
{
	bool need_h = v->vw != out_w, need_v = v->vh != out_h;
	coeffs ch = {0}, cv = {0};
	canvas_rows cr = {0};
	int64_t *acc = NULL;
	rvi_image tmp = {0};
	int rc = rvi_image_new(out_w, out_h, out, err);
	if (rc != RV_OK)
		return rc;
	if ((rc = canvas_rows_init(v, &cr, err)) != RV_OK)
		goto fail;
	if (!need_h && !need_v) {
		for (int y = 0; y < out_h; y++)
			memcpy(out->rgb + (size_t)y * out_w * 3, canvas_row(&cr, y),
			       (size_t)out_w * 3);
		goto done;
	}
	if (need_v && (rc = coeffs_make(f, v->vh, out_h, &cv, err)) != RV_OK)
		goto fail;

	/* Horizontal pass, into an 8-bit image over only the rows the vertical
	 * pass reads (all of them when there is no vertical pass). */
	int y_first = 0, y_last = v->vh;
	if (need_v) {
		y_first = cv.bounds[0];
		y_last = cv.bounds[(out_h - 1) * 2] + cv.bounds[(out_h - 1) * 2 + 1];
	}
	if (need_h) {
		if ((rc = coeffs_make(f, v->vw, out_w, &ch, err)) != RV_OK)
			goto fail;
		rvi_image *dst = need_v ? &tmp : out;
		if (need_v && (rc = rvi_image_new(out_w, y_last - y_first, &tmp, err)) != RV_OK)
			goto fail;
		if ((rc = resize_rows_h(v, &ch, y_first, y_last, dst, err)) != RV_OK)
			goto fail;
		if (!need_v)
			goto done;
	}

	/* Vertical pass: each output row accumulates its input rows in turn. */
	size_t rowlen = (size_t)out_w * 3;
	acc = rvi_alloc(rowlen, sizeof(int64_t));
	if (!acc)
		goto nomem;
	for (int yy = 0; yy < out_h; yy++) {
		int ymin = cv.bounds[yy * 2], ymax = cv.bounds[yy * 2 + 1];
		const int32_t *k = cv.k + (size_t)yy * cv.ksize;
		for (size_t i = 0; i < rowlen; i++)
			acc[i] = 1 << (PIL_PRECISION_BITS - 1);
		for (int y = 0; y < ymax; y++) {
			const uint8_t *row = need_h
			                         ? tmp.rgb + (size_t)(ymin + y - y_first) * rowlen
			                         : canvas_row(&cr, ymin + y);
			int64_t ky = k[y];
			for (size_t i = 0; i < rowlen; i++)
				acc[i] += row[i] * ky;
		}
		uint8_t *o = out->rgb + (size_t)yy * rowlen;
		for (size_t i = 0; i < rowlen; i++)
			o[i] = clip8(acc[i]);
	}
done:
	rc = RV_OK;
	goto cleanup;
nomem:
	rc = rvi_errorf(err, RV_ERR_NOMEM, "out of memory resizing to %dx%d", out_w, out_h);
fail:
	rvi_image_free(out);
cleanup:
	coeffs_free(&ch);
	coeffs_free(&cv);
	canvas_rows_free(&cr);
	rvi_image_free(&tmp);
	free(acc);
	return rc;
}

int rvi_image_resize_pil(const rvi_image *in, int out_w, int out_h, rvi_resample filt,
                         rvi_image *out, rvi_err *err)
{
	if (out)
		memset(out, 0, sizeof(*out));
	if (!rvi_image_valid(in) || !out)
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "resize: invalid image");
	if (out_w < 1 || out_h < 1 || out_w > RVI_IMAGE_MAX_SIDE || out_h > RVI_IMAGE_MAX_SIDE)
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "resize: invalid target size %dx%d",
		                  out_w, out_h);
	if ((unsigned)filt >= sizeof(filters) / sizeof(filters[0]))
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "resize: unknown filter %d", (int)filt);
	view v = plain_view(in);
	return resize_view(&v, &filters[filt], out_w, out_h, out, err);
}

int rvi_image_resize_bicubic_pil(const rvi_image *in, int out_w, int out_h, rvi_image *out,
                                 rvi_err *err)
{
	return rvi_image_resize_pil(in, out_w, out_h, RVI_RESAMPLE_BICUBIC, out, err);
}

int rvi_image_resize_padded_pil(const rvi_image *img, const rvi_image_canvas *canvas, int out_w,
                                int out_h, rvi_image *out, rvi_err *err)
{
	if (out)
		memset(out, 0, sizeof(*out));
	if (!rvi_image_valid(img) || !canvas || !out)
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "resize: invalid image");
	if (canvas->w < img->w || canvas->h < img->h || canvas->ox < 0 || canvas->oy < 0 ||
	    canvas->ox > canvas->w - img->w || canvas->oy > canvas->h - img->h)
		return rvi_errorf(err, RV_ERR_INVALID_ARG,
		                  "resize: a %dx%d image does not fit a %dx%d canvas at (%d, %d)",
		                  img->w, img->h, canvas->w, canvas->h, canvas->ox, canvas->oy);
	if (out_w < 1 || out_h < 1 || out_w > RVI_IMAGE_MAX_SIDE || out_h > RVI_IMAGE_MAX_SIDE)
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "resize: invalid target size %dx%d",
		                  out_w, out_h);
	view v = {
	    img->rgb,  img->w,     img->h,     canvas->w,
	    canvas->h, canvas->ox, canvas->oy, {canvas->pad[0], canvas->pad[1], canvas->pad[2]}};
	return resize_view(&v, &filters[RVI_RESAMPLE_BICUBIC], out_w, out_h, out, err);
}

void rvi_image_normalize_chw(const rvi_image *img, const float mean[3], const float std[3],
                             float *out_chw)
{
	const size_t plane = (size_t)img->w * (size_t)img->h;
	for (int c = 0; c < 3; c++) {
		float *o = out_chw + c * plane;
		for (size_t i = 0; i < plane; i++) {
			/* Like HF's rescale: the product in double, stored as
			 * float32; then normalise in float32. */
			float x = (float)((double)img->rgb[i * 3 + c] * (1.0 / 255.0));
			o[i] = (x - mean[c]) / std[c];
		}
	}
}
