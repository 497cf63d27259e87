/* fuzz_image.c: libFuzzer target for image files: format detection, our
 * own header and limit checks, stb_image's decoders behind them, the EXIF
 * walk and orientation, and the LLaVA preprocessing of whatever decodes.
 *
 * The first input byte holds the options (EXIF on/off, the preprocessing
 * size, a tighter side limit); the rest is the file. The pixel and side
 * limits are lowered so that one input costs milliseconds, not the seconds
 * a legitimately huge image would: the checks under test are the same. */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <stdlib.h>

#include "src/image/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const uint8_t opt = data[0];
	const bool exif = opt & 1;
	/* 1..32 pixels: small enough to be quick, odd and even sizes both. */
	const int image_size = 1 + (opt >> 1 & 31);
	rvi_image_limits lim = rvi_image_default_limits();
	lim.max_pixels = (uint64_t)1 << 20;
	/* The default side limit, so that long thin images (16384 x 1) reach
	 * the preprocessing, whose cost must follow the real pixels, not the
	 * padded square; sometimes a tighter one, to test refusals. */
	if (opt & 0x40)
		lim.max_side = 256;

	(void)rvi_image_exif_orientation(data + 1, size - 1);

	rvi_image img;
	rvi_err err;
	if (rvi_image_load_memory(data + 1, size - 1, "fuzz", &lim, exif, &img, &err) != RV_OK)
		return 0;
	static const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
	static const float std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
	float *px = malloc((size_t)3 * image_size * image_size * sizeof(float));
	if (px) {
		(void)rvi_image_preprocess_llava(&img, image_size, mean, std, px, &err);
		free(px);
	}
	rvi_image_free(&img);
	return 0;
}
