/* preprocess_llava.c: LLaVA-1.5's image preprocessing (see image.h):
 * expand2square onto the processor-mean colour, Pillow bicubic to the
 * encoder's size, rescale and normalise. The padded square is never built:
 * the resampler reads the image through a canvas. */
#include "src/image/image.h"

#include <string.h>

int rvi_image_preprocess_llava(const rvi_image *img, int image_size, const float mean[3],
                               const float std[3], float *out_chw, rvi_err *err)
{
	if (!rvi_image_valid(img) || !mean || !std || !out_chw)
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "preprocess: invalid image or buffer");
	if (image_size < 1 || image_size > 4096)
		return rvi_errorf(err, RV_ERR_INVALID_ARG,
		                  "preprocess: image_size %d is out of range (1..4096)",
		                  image_size);
	for (int c = 0; c < 3; c++)
		if (!(std[c] > 0.0f) || !(mean[c] >= 0.0f && mean[c] <= 1.0f))
			return rvi_errorf(err, RV_ERR_INVALID_ARG,
			                  "preprocess: image mean %g / std %g of channel %d are "
			                  "out of range",
			                  (double)mean[c], (double)std[c], c);
	/* expand2square pastes the image at ((side-w)/2, (side-h)/2). */
	const int side = img->w > img->h ? img->w : img->h;
	rvi_image_canvas canvas = {side, side, (side - img->w) / 2, (side - img->h) / 2, {0, 0, 0}};
	rvi_image_pad_color(mean, canvas.pad);
	rvi_image r;
	int rc = rvi_image_resize_padded_pil(img, &canvas, image_size, image_size, &r, err);
	if (rc != RV_OK)
		return rc;
	rvi_image_normalize_chw(&r, mean, std, out_chw);
	rvi_image_free(&r);
	return RV_OK;
}
