/* fuzz_image.c: libFuzzer target for image files: format detection, our
 * own header and limit checks, stb_image's decoders behind them, the EXIF
 * walk and orientation, and the LLaVA preprocessing of whatever decodes.
 *
 * The first input byte holds the options (EXIF on/off, the preprocessing
 * size, a tighter side limit, and bit 7: also build a valid image); the
 * rest is the file. The pixel and side limits are lowered so that one
 * input costs milliseconds, not the seconds a legitimately huge image
 * would: the checks under test are the same.
 *
 * Refusing a valid image is a finding too. An arbitrary input cannot be
 * known to be valid without a second decoder, so the target also builds
 * images that are valid by construction from the input's bytes (size,
 * format and variant, pixels): BMP 24-bit bottom-up and top-down, PGM and
 * PPM, PNG grey, RGB and RGBA at 8 bits and RGB at 16 bits, all of which
 * Pillow opens. Each must be accepted with its size and decode to exactly
 * the pixels written (grey replicated, alpha dropped, 16-bit samples cut
 * to their high byte, as Pillow's convert('RGB')). */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "src/image/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A growing byte buffer; on allocation failure it stays NULL. */
typedef struct buf {
	uint8_t *p;
	size_t n, cap;
} buf;

static void put(buf *b, const void *d, size_t n)
{
	if (n == 0 || (!b->p && b->cap))
		return;
	if (b->n + n > b->cap) {
		size_t cap = (b->n + n) * 2;
		uint8_t *p = realloc(b->p, cap);
		if (!p) {
			free(b->p);
			*b = (buf){NULL, 0, 1};
			return;
		}
		b->p = p, b->cap = cap;
	}
	memcpy(b->p + b->n, d, n);
	b->n += n;
}

static void put_le(buf *b, uint32_t v, int bytes)
{
	for (int i = 0; i < bytes; i++) {
		uint8_t c = (uint8_t)(v >> (8 * i));
		put(b, &c, 1);
	}
}

static void put_be32(buf *b, uint32_t v)
{
	uint8_t c[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	put(b, c, 4);
}

static void png_chunk(buf *b, const char *type, const uint8_t *d, size_t n)
{
	put_be32(b, (uint32_t)n);
	put(b, type, 4);
	put(b, d, n);
	uLong crc = crc32(crc32(0, (const Bytef *)type, 4), d, (uInt)n);
	put_be32(b, (uint32_t)crc);
}

enum { V_BMP_UP, V_BMP_DOWN, V_PGM, V_PPM, V_PNG_GREY, V_PNG_RGB, V_PNG_RGBA, V_PNG_RGB16, N_V };

/* Writes image variant v of w x h with samples from src (channels per
 * pixel: 1 grey, 3 RGB, 4 RGBA; two bytes each for 16-bit) into out and
 * the RGB Pillow would give into rgb. */
static void build(int v, int w, int h, const uint8_t *src, buf *out, uint8_t *rgb)
{
	const int ch = v == V_PGM || v == V_PNG_GREY ? 1 : v == V_PNG_RGBA ? 4 : 3;
	const int sb = v == V_PNG_RGB16 ? 2 : 1;
	for (int i = 0; i < w * h; i++)
		for (int c = 0; c < 3; c++)
			rgb[i * 3 + c] = src[(i * ch + (ch == 1 ? 0 : c)) * sb];
	if (v == V_BMP_UP || v == V_BMP_DOWN) {
		const uint32_t stride = (uint32_t)(w * 3 + 3) / 4 * 4;
		put(out, "BM", 2);
		put_le(out, 54 + stride * (uint32_t)h, 4);
		put_le(out, 0, 4);
		put_le(out, 54, 4);
		put_le(out, 40, 4);
		put_le(out, (uint32_t)w, 4);
		put_le(out, v == V_BMP_DOWN ? (uint32_t)-h : (uint32_t)h, 4);
		put_le(out, 1, 2);
		put_le(out, 24, 2);
		for (int i = 0; i < 6; i++)
			put_le(out, 0, 4);
		for (int r = 0; r < h; r++) {
			const int y = v == V_BMP_DOWN ? r : h - 1 - r;
			for (int x = 0; x < w; x++) {
				const uint8_t *p = rgb + (y * w + x) * 3;
				uint8_t bgr[3] = {p[2], p[1], p[0]};
				put(out, bgr, 3);
			}
			put_le(out, 0, (int)stride - w * 3);
		}
		return;
	}
	if (v == V_PGM || v == V_PPM) {
		char hdr[64];
		int n =
		    snprintf(hdr, sizeof hdr, "P%c\n%d %d\n255\n", v == V_PGM ? '5' : '6', w, h);
		put(out, hdr, (size_t)n);
		put(out, src, (size_t)(w * h * ch));
		return;
	}
	static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
	put(out, sig, 8);
	uint8_t ihdr[13] = {0};
	for (int i = 0; i < 4; i++) {
		ihdr[i] = (uint8_t)(w >> (24 - 8 * i));
		ihdr[4 + i] = (uint8_t)(h >> (24 - 8 * i));
	}
	ihdr[8] = (uint8_t)(8 * sb);
	ihdr[9] = ch == 1 ? 0 : ch == 3 ? 2 : 6;
	png_chunk(out, "IHDR", ihdr, 13);
	const size_t row = (size_t)w * ch * sb, raw_n = (row + 1) * (size_t)h;
	uint8_t *raw = malloc(raw_n);
	uLongf z_n = compressBound((uLong)raw_n);
	uint8_t *z = malloc(z_n);
	if (raw && z) {
		for (int y = 0; y < h; y++) {
			raw[y * (row + 1)] = 0; /* filter None */
			memcpy(raw + y * (row + 1) + 1, src + y * row, row);
		}
		if (compress(z, &z_n, raw, (uLong)raw_n) == Z_OK)
			png_chunk(out, "IDAT", z, z_n);
	}
	free(raw);
	free(z);
	png_chunk(out, "IEND", NULL, 0);
}

/* data[1]: variant, data[2], data[3]: size, the rest: samples (repeated). */
static void check_valid(const uint8_t *data, size_t size)
{
	if (size < 4)
		return;
	const int v = data[1] % N_V, w = 1 + data[2] % 48, h = 1 + data[3] % 48;
	const size_t n_samples = (size_t)w * h * 4 * 2;
	uint8_t *src = malloc(n_samples), *rgb = malloc((size_t)w * h * 3);
	buf file = {0};
	if (src && rgb) {
		for (size_t i = 0; i < n_samples; i++)
			src[i] = size > 4 ? data[4 + i % (size - 4)] : (uint8_t)i;
		build(v, w, h, src, &file, rgb);
	}
	if (file.p) {
		rvi_image img;
		rvi_err err;
		int rc = rvi_image_load_memory(file.p, file.n, "valid", NULL, true, &img, &err);
		if (rc != RV_OK) {
			fprintf(stderr, "a valid image (variant %d, %dx%d) was refused: %s\n", v, w,
			        h, err.msg);
			abort();
		}
		if (img.w != w || img.h != h ||
		    memcmp(img.rgb, rgb, (size_t)w * h * 3) != 0) {
			fprintf(
			    stderr,
			    "a valid image (variant %d, %dx%d) decoded to %dx%d or wrong pixels\n",
			    v, w, h, img.w, img.h);
			abort();
		}
		rvi_image_free(&img);
	}
	free(file.p);
	free(src);
	free(rgb);
}

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
	if (opt & 0x80)
		check_valid(data, size);

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
