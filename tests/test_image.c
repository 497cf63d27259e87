/* test_image.c: image loading and LLaVA-1.5 preprocessing (src/image/).
 *
 * References: the fixtures' stb-decoded PPMs (what llama.cpp's stb_image
 * produced), the ref-hf float32 pixel tensors (.npy, produced with PIL and
 * the HF CLIP processor) and their JSON summaries, Pillow's own resize output
 * for small synthetic images (hard-coded below), and a separate
 * straightforward implementation of Pillow's bicubic resample in this file.
 * Bad inputs must fail with RV_ERR_IMAGE/RV_ERR_IO, a message naming the file
 * and a specific phrase, and without large allocations. */
#include "src/image/image.h"
#include "tests/testutil.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_ASAN 1
#endif
#endif

/* The OpenAI CLIP processor values the fixtures use. */
static const float clip_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
static const float clip_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};

#define EXPECT_FAIL(rc, err, want, name, phrase)                                                   \
	CHECK((rc) == (want) && strstr((err).msg, (name)) && strstr((err).msg, (phrase)),          \
	      "rc %d '%s' (want %d, '%s', '%s')", (rc), (err).msg, (want), (name), (phrase))

/* ---- small readers and writers ------------------------------------------ */

static uint32_t rd_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A (d0, d1, d2) '<f4' C-order .npy file; NULL (and a failed check) if the
 * file is anything else. */
static float *read_npy_f32(const char *path, int d0, int d1, int d2)
{
	size_t n;
	uint8_t *b = (uint8_t *)tu_read_file(path, &n);
	CHECK(b != NULL, "cannot read %s", path);
	if (!b)
		return NULL;
	float *out = NULL;
	size_t hlen = 0, hoff = 0;
	if (n >= 10 && memcmp(b, "\x93NUMPY", 6) == 0) {
		if (b[6] == 1) {
			hlen = (size_t)b[8] | (size_t)b[9] << 8;
			hoff = 10;
		} else if (n >= 12) {
			hlen = rd_le32(b + 8);
			hoff = 12;
		}
	}
	CHECK(hoff && hlen <= n - hoff, "%s: not a .npy file", path);
	if (!hoff || hlen > n - hoff)
		goto done;
	char *hdr = malloc(hlen + 1), shape[64];
	memcpy(hdr, b + hoff, hlen);
	hdr[hlen] = 0;
	snprintf(shape, sizeof(shape), "'shape': (%d, %d, %d)", d0, d1, d2);
	bool ok = strstr(hdr, "'descr': '<f4'") && strstr(hdr, "'fortran_order': False") &&
	          strstr(hdr, shape);
	CHECK(ok, "%s: unexpected header %s", path, hdr);
	free(hdr);
	size_t count = (size_t)d0 * d1 * d2, data = hoff + hlen;
	CHECK(n - data == count * 4, "%s: %zu data bytes, want %zu", path, n - data, count * 4);
	if (!ok || n - data != count * 4)
		goto done;
	out = malloc(count * sizeof(float));
	for (size_t i = 0; i < count; i++) {
		uint32_t u = rd_le32(b + data + i * 4);
		memcpy(&out[i], &u, 4);
	}
done:
	free(b);
	return out;
}

/* A binary P6 file with maxval 255 (as the fixtures' refs/ are). */
static uint8_t *read_ppm(const char *path, int *w, int *h)
{
	size_t n;
	char *b = tu_read_file(path, &n);
	CHECK(b != NULL, "cannot read %s", path);
	if (!b)
		return NULL;
	int maxv = 0, used = 0;
	uint8_t *px = NULL;
	if (sscanf(b, "P6 %d %d %d%n", w, h, &maxv, &used) == 3 && maxv == 255 && *w > 0 &&
	    *h > 0 && (size_t)used + 1 + (size_t)*w * *h * 3 == n) {
		px = malloc((size_t)*w * *h * 3);
		memcpy(px, b + used + 1, (size_t)*w * *h * 3);
	}
	CHECK(px != NULL, "%s: not a binary 8-bit PPM of the right size", path);
	free(b);
	return px;
}

static uint32_t crc32_of(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
	}
	return c ^ 0xffffffffu;
}

static void put_be32(tu_buf *b, uint32_t v)
{
	tu_put_be(b, v, 4);
}

static void put_u16(tu_buf *b, uint32_t v, bool big)
{
	(big ? tu_put_be : tu_put_le)(b, v, 2);
}

static void put_u32(tu_buf *b, uint32_t v, bool big)
{
	(big ? tu_put_be : tu_put_le)(b, v, 4);
}

static void png_chunk(tu_buf *b, const char *type, const uint8_t *data, size_t n)
{
	tu_buf c = {0};
	tu_put(&c, type, 4);
	if (n)
		tu_put(&c, data, n);
	put_be32(b, (uint32_t)n);
	tu_put(b, c.p, c.n);
	put_be32(b, crc32_of(c.p, c.n));
	free(c.p);
}

/* A PNG whose IDAT is one stored (uncompressed) deflate block of raw, the
 * filtered scanlines (filter byte 0 + samples per row). */
static uint8_t *make_png(uint32_t w, uint32_t h, int depth, int ctype, const uint8_t *raw,
                         size_t raw_n, const uint8_t *plte, size_t plte_n, size_t *out_n)
{
	tu_buf b = {0}, z = {0};
	tu_put(&b, "\x89PNG\r\n\x1a\n", 8);
	uint8_t ihdr[13];
	for (int i = 0; i < 4; i++) {
		ihdr[i] = (uint8_t)(w >> (24 - 8 * i));
		ihdr[4 + i] = (uint8_t)(h >> (24 - 8 * i));
	}
	ihdr[8] = (uint8_t)depth;
	ihdr[9] = (uint8_t)ctype;
	ihdr[10] = ihdr[11] = ihdr[12] = 0;
	png_chunk(&b, "IHDR", ihdr, 13);
	if (plte)
		png_chunk(&b, "PLTE", plte, plte_n);
	uint8_t zhdr[7] = {0x78,
	                   0x01,
	                   0x01,
	                   (uint8_t)raw_n,
	                   (uint8_t)(raw_n >> 8),
	                   (uint8_t)~raw_n,
	                   (uint8_t)(~raw_n >> 8)};
	tu_put(&z, zhdr, 7);
	if (raw_n)
		tu_put(&z, raw, raw_n);
	uint32_t a = 1, s = 0;
	for (size_t i = 0; i < raw_n; i++) {
		a = (a + raw[i]) % 65521;
		s = (s + a) % 65521;
	}
	put_be32(&z, s << 16 | a);
	png_chunk(&b, "IDAT", z.p, z.n);
	png_chunk(&b, "IEND", NULL, 0);
	free(z.p);
	*out_n = b.n;
	return b.p;
}

/* A bottom-up 24-bit BMP of rgb (top row first). */
static uint8_t *make_bmp(int w, int h, const uint8_t *rgb, size_t *out_n)
{
	size_t stride = ((size_t)w * 3 + 3) / 4 * 4, size = 54 + stride * h;
	uint8_t *b = calloc(1, size);
	b[0] = 'B', b[1] = 'M';
	uint32_t v[] = {(uint32_t)size, 0, 54, 40, (uint32_t)w, (uint32_t)h};
	for (int i = 0; i < 6; i++)
		for (int k = 0; k < 4; k++)
			b[2 + 4 * i + k] = (uint8_t)(v[i] >> (8 * k));
	b[26] = 1;  /* planes */
	b[28] = 24; /* bits per pixel; compression 0 */
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++)
			for (int c = 0; c < 3; c++)
				b[54 + (size_t)(h - 1 - y) * stride + x * 3 + c] =
				    rgb[((size_t)y * w + x) * 3 + 2 - c];
	*out_n = size;
	return b;
}

static bool same_image(const rvi_image *a, const rvi_image *b)
{
	return a->w == b->w && a->h == b->h && memcmp(a->rgb, b->rgb, (size_t)a->w * a->h * 3) == 0;
}

/* ---- fixtures: decode, preprocess, reference tensors --------------------- */

static void normalize_ref(const rvi_image *sq, const float mean[3], const float std[3], float *o)
{
	size_t plane = (size_t)sq->w * sq->h;
	for (int c = 0; c < 3; c++)
		for (size_t i = 0; i < plane; i++) {
			float x = (float)((double)sq->rgb[i * 3 + c] * (1.0 / 255.0));
			o[c * plane + i] = (x - mean[c]) / std[c];
		}
}

static void check_ref_json(const char *json, const float *px, size_t count, const rvi_image *img)
{
	tu_json *j = tu_json_load(tu_data(json));
	CHECK(j != NULL, "cannot load %s", json);
	if (!j)
		return;
	const tu_json *sha = tu_json_get(j, "preprocess.pixels.sha256_f32");
	const tu_json *sum = tu_json_get(j, "preprocess.pixels.sum");
	const tu_json *u8sum = tu_json_get(j, "preprocess.resized_u8_sum");
	const tu_json *pad = tu_json_get(j, "preprocess.pad_color");
	CHECK(sha && sha->kind == TU_JSTR && sum && sum->kind == TU_JNUM && u8sum && pad &&
	          pad->n == 3,
	      "%s: preprocess block incomplete", json);
	if (!sha || !sum || !u8sum || !pad || pad->n != 3)
		goto done;
	uint8_t *le = malloc(count * 4);
	for (size_t i = 0; i < count; i++) {
		uint32_t u;
		memcpy(&u, &px[i], 4);
		for (int k = 0; k < 4; k++)
			le[i * 4 + k] = (uint8_t)(u >> (8 * k));
	}
	char hex[65];
	tu_sha256_hex(le, count * 4, hex);
	free(le);
	CHECK(strcmp(hex, sha->str) == 0, "%s: pixels sha256 %s, want %s", json, hex, sha->str);
	double s = 0;
	for (size_t i = 0; i < count; i++)
		s += px[i];
	CHECK(fabs(s - sum->num) < 1e-6 * fmax(1.0, fabs(sum->num)), "%s: sum %.9f want %.9f", json,
	      s, sum->num);

	uint8_t color[3];
	rvi_image_pad_color(clip_mean, color);
	for (int c = 0; c < 3; c++)
		CHECK(color[c] == (int)tu_json_at(pad, c)->num, "pad colour %d: %d", c, color[c]);
	rvi_err err = {0};
	rvi_image sq, rs;
	CHECK(rvi_image_pad_to_square(img, color, &sq, &err) == RV_OK, "%s", err.msg);
	CHECK(rvi_image_resize_bicubic_pil(&sq, 56, 56, &rs, &err) == RV_OK, "%s", err.msg);
	uint64_t us = 0;
	for (size_t i = 0; i < (size_t)56 * 56 * 3; i++)
		us += rs.rgb[i];
	CHECK(us == (uint64_t)u8sum->num, "%s: resized u8 sum %llu want %.0f", json,
	      (unsigned long long)us, u8sum->num);
	rvi_image_free(&sq);
	rvi_image_free(&rs);
done:
	tu_json_free(j);
}

static void test_fixture(const char *image, const char *ppm, const char *npy, const char *json)
{
	rvi_err err = {0};
	rvi_image img;
	int rc = rvi_image_load_file(tu_data(image), NULL, true, &img, &err);
	CHECK(rc == RV_OK, "%s: %s", image, err.msg);
	if (rc != RV_OK)
		return;
	int w, h;
	uint8_t *ref = read_ppm(tu_data(ppm), &w, &h);
	CHECK(ref && img.w == w && img.h == h && memcmp(img.rgb, ref, (size_t)w * h * 3) == 0,
	      "%s: decoded pixels differ from %s", image, ppm);
	free(ref);

	const int S = 56;
	size_t count = (size_t)3 * S * S;
	float *px = malloc(count * sizeof(float));
	rc = rvi_image_preprocess_llava(&img, S, clip_mean, clip_std, px, &err);
	CHECK(rc == RV_OK, "%s: %s", image, err.msg);
	float *want = read_npy_f32(tu_data(npy), 3, S, S);
	if (want && rc == RV_OK) {
		size_t diff = 0, first = 0;
		for (size_t i = count; i-- > 0;)
			if (memcmp(&px[i], &want[i], 4) != 0)
				diff++, first = i;
		CHECK(diff == 0,
		      "%s: %zu of %zu floats differ from %s (first at %zu: %.9g vs %.9g)", image,
		      diff, count, npy, first, px[first], want[first]);
	}
	if (rc == RV_OK)
		check_ref_json(json, px, count, &img);
	free(want);
	free(px);
	rvi_image_free(&img);
}

/* ---- padding ------------------------------------------------------------ */

static void test_pad(void)
{
	uint8_t color[3];
	rvi_image_pad_color(clip_mean, color);
	CHECK(color[0] == 122 && color[1] == 116 && color[2] == 104, "pad colour %d,%d,%d",
	      color[0], color[1], color[2]);
	/* Wide (offset (long-short)//2 = 1 for 5x2), tall with an odd
	 * difference (2x5: offset 1), square (a copy). */
	int dims[][2] = {{5, 2}, {2, 5}, {3, 3}, {4, 1}};
	for (size_t t = 0; t < sizeof(dims) / sizeof(dims[0]); t++) {
		int w = dims[t][0], h = dims[t][1], side = w > h ? w : h;
		rvi_image in = {w, h, malloc((size_t)w * h * 3)}, out;
		for (int i = 0; i < w * h * 3; i++)
			in.rgb[i] = (uint8_t)(i * 7 + 1);
		rvi_err err = {0};
		CHECK(rvi_image_pad_to_square(&in, color, &out, &err) == RV_OK, "%s", err.msg);
		CHECK(out.w == side && out.h == side, "%dx%d -> %dx%d", w, h, out.w, out.h);
		int ox = (side - w) / 2, oy = (side - h) / 2, bad = 0;
		for (int y = 0; y < side; y++)
			for (int x = 0; x < side; x++)
				for (int c = 0; c < 3; c++) {
					bool inside =
					    x >= ox && x < ox + w && y >= oy && y < oy + h;
					uint8_t want =
					    inside ? in.rgb[((y - oy) * w + (x - ox)) * 3 + c]
					           : color[c];
					bad += out.rgb[(y * side + x) * 3 + c] != want;
				}
		CHECK(bad == 0, "pad %dx%d: %d wrong samples", w, h, bad);
		rvi_image_free(&in);
		rvi_image_free(&out);
	}
}

/* ---- resize --------------------------------------------------------------- */

static uint8_t synth(int x, int y, int c)
{
	return (uint8_t)(((x * 53 + y * 97 + c * 31) * (x + 2 * y + c + 1)) % 256);
}

static rvi_image synth_image(int w, int h)
{
	rvi_image img = {w, h, malloc((size_t)w * h * 3)};
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++)
			for (int c = 0; c < 3; c++)
				img.rgb[(y * w + x) * 3 + c] = synth(x, y, c);
	return img;
}

static int hexval(char c)
{
	return c <= '9' ? c - '0' : c - 'a' + 10;
}

/* Expected bytes produced once with Pillow 9.4.0 (Debian python3-pil):
 *   Image.fromarray(synth(w, h), 'RGB').resize((ow, oh), Image.BICUBIC)
 * where synth is the function above. They cover enlarging, shrinking, a
 * horizontal-only and a vertical-only resize. */
static const struct {
	int w, h, ow, oh;
	const char *hex;
} pil_cases[] = {
    {7, 5, 11, 9,
     "0035c72ea0ce6cffc1394c684c3e2c86b31e43c66817867a2d0a35808943beff"
     "5c032189297cb666d9d5775d63715f445ac36a45c4643598593353517d915eb8"
     "ce6b1501192a3f896095f4e07a5eac987009dae946ba596aaf1f47cc83799b8b"
     "a56f80681b00764e5e8c90d8ac738b68858800b3b0307e35796313a27e7b7176"
     "70496b56ca4000d26c45c299b05966c418659108803623391977062eee0a6a6c"
     "4947007b21f32138e73a75d061ccb384da859d855799086a27417710856d79a4"
     "7d576b933537f51264d5179cb635dbe69cc8d7c56c9ba704a434747936cf13c6"
     "d38b5a83fb0044c24859943d825c43a8699374879e45a47237926597815dd481"
     "52c388245b8e0715a567517055712b4e8b1f8c45558631a553548580a78671d3"
     "c40db78605434b1100"},
    {23, 17, 6, 5,
     "73757c69757193878a7684957f7f719b6b817e6682876d686e7d86868d8f956a"
     "887f6e7a7b858f795f7d786a9791588c86897a807681a58280a180789b7e7b71"
     "6e6878685e7a73897e9a8d887a83917888828084779a708a5886"},
    {13, 4, 5, 4,
     "3f88a2498948867b8ac49e846d53666a5a8761ba79658f93a1c7a8a3c6859d72"
     "744345516947488449a9647c89e14ca3967f7d8063796a75728e8e3a"},
    {3, 4, 3, 10,
     "0044ca6cffc82c1b49013ab068f5cf4a2a47071d715bc5e5a1503d1a01275590"
     "f8f2773b4f0f057488e5cc765e9d3600ad9aba5e5d9ad44506ce93a8395dbfeb"
     "2e36cb62bf8f89c1f31462c136d8e8b2baf90b73bf24e1ffc2b9"},
};

static void test_resize_pil_bytes(void)
{
	for (size_t t = 0; t < sizeof(pil_cases) / sizeof(pil_cases[0]); t++) {
		rvi_image in = synth_image(pil_cases[t].w, pil_cases[t].h), out;
		rvi_err err = {0};
		int rc =
		    rvi_image_resize_bicubic_pil(&in, pil_cases[t].ow, pil_cases[t].oh, &out, &err);
		CHECK(rc == RV_OK, "%s", err.msg);
		size_t n = (size_t)pil_cases[t].ow * pil_cases[t].oh * 3, bad = 0;
		CHECK(strlen(pil_cases[t].hex) == 2 * n, "case %zu: table length", t);
		for (size_t i = 0; rc == RV_OK && i < n; i++) {
			const char *hx = pil_cases[t].hex + 2 * i;
			bad += out.rgb[i] != hexval(hx[0]) * 16 + hexval(hx[1]);
		}
		CHECK(rc == RV_OK && bad == 0, "%dx%d -> %dx%d: %zu bytes differ from Pillow",
		      pil_cases[t].w, pil_cases[t].h, pil_cases[t].ow, pil_cases[t].oh, bad);
		rvi_image_free(&in);
		rvi_image_free(&out);
	}
}

/* A second, deliberately plain implementation of Pillow's algorithm: taps
 * recomputed for every sample, the horizontal pass over all rows. */
static double ref_cubic(double x)
{
	const double a = -0.5;
	x = fabs(x);
	if (x < 1.0)
		return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
	if (x < 2.0)
		return (((x - 5) * x + 8) * x - 4) * a;
	return 0.0;
}

static int ref_sample(const uint8_t *line, size_t step, int in_size, int out_size, int i)
{
	double scale = (double)in_size / out_size, fs = scale > 1.0 ? scale : 1.0;
	double support = 2.0 * fs, center = (i + 0.5) * scale;
	int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
	lo = lo < 0 ? 0 : lo;
	hi = hi > in_size ? in_size : hi;
	double total = 0;
	for (int j = lo; j < hi; j++)
		total += ref_cubic((j - center + 0.5) / fs);
	long long acc = 1 << 21;
	for (int j = lo; j < hi; j++) {
		double wgt = ref_cubic((j - center + 0.5) / fs);
		if (total != 0.0)
			wgt /= total;
		long long fixed =
		    (long long)(wgt < 0 ? -0.5 + wgt * 4194304.0 : 0.5 + wgt * 4194304.0);
		acc += fixed * line[(size_t)j * step];
	}
	long long v = acc >= 0 ? acc / 4194304 : -((-acc + 4194303) / 4194304);
	return v < 0 ? 0 : v > 255 ? 255 : (int)v;
}

static uint8_t *ref_resize(const rvi_image *in, int ow, int oh)
{
	int w = in->w, h = in->h;
	uint8_t *tmp = malloc((size_t)ow * h * 3), *out = malloc((size_t)ow * oh * 3);
	for (int y = 0; y < h; y++)
		for (int x = 0; x < ow; x++)
			for (int c = 0; c < 3; c++)
				tmp[((size_t)y * ow + x) * 3 + c] =
				    w == ow ? in->rgb[((size_t)y * w + x) * 3 + c]
				            : (uint8_t)ref_sample(in->rgb + (size_t)y * w * 3 + c,
				                                  3, w, ow, x);
	for (int y = 0; y < oh; y++)
		for (int x = 0; x < ow; x++)
			for (int c = 0; c < 3; c++)
				out[((size_t)y * ow + x) * 3 + c] =
				    h == oh ? tmp[((size_t)y * ow + x) * 3 + c]
				            : (uint8_t)ref_sample(tmp + (size_t)x * 3 + c,
				                                  (size_t)ow * 3, h, oh, y);
	free(tmp);
	return out;
}

static void test_resize_reference(void)
{
	uint64_t rng = 42;
	for (int t = 0; t < 80; t++) {
		int w = 1 + (int)(tu_rand_u64(&rng) % 40), h = 1 + (int)(tu_rand_u64(&rng) % 40);
		int ow = 1 + (int)(tu_rand_u64(&rng) % 50), oh = 1 + (int)(tu_rand_u64(&rng) % 50);
		if (t == 0)
			w = 300, h = 7, ow = 3, oh = 20; /* a strong shrink: wide kernel */
		rvi_image in = {w, h, malloc((size_t)w * h * 3)}, out;
		bool extremes = t % 2;
		for (int i = 0; i < w * h * 3; i++) {
			uint64_t r = tu_rand_u64(&rng);
			in.rgb[i] = extremes ? (r % 3 == 0   ? 0
			                        : r % 3 == 1 ? 255
			                                     : (uint8_t)(r >> 8))
			                     : (uint8_t)r;
		}
		rvi_err err = {0};
		int rc = rvi_image_resize_bicubic_pil(&in, ow, oh, &out, &err);
		CHECK(rc == RV_OK && out.w == ow && out.h == oh, "%s", err.msg);
		uint8_t *want = ref_resize(&in, ow, oh);
		CHECK(rc == RV_OK && memcmp(out.rgb, want, (size_t)ow * oh * 3) == 0,
		      "%dx%d -> %dx%d differs from the reference", w, h, ow, oh);
		free(want);
		rvi_image_free(&in);
		rvi_image_free(&out);
	}
}

/* The fused preprocessing must equal pad, resize and normalise in turn. */
static void test_preprocess_composition(void)
{
	int dims[][3] = {{37, 11, 20},
	                 {5, 23, 20},
	                 {20, 20, 20},
	                 {20, 20, 14},
	                 {9, 8, 56},
	                 {1, 30, 7},
	                 {30, 1, 7},
	                 {64, 48, 56},
	                 {3, 1, 1},
	                 /* thin: most output pixels see only padding */
	                 {300, 2, 20},
	                 {2, 300, 20},
	                 {257, 5, 7},
	                 {4, 199, 14},
	                 {1, 500, 56}};
	for (size_t t = 0; t < sizeof(dims) / sizeof(dims[0]); t++) {
		int w = dims[t][0], h = dims[t][1], S = dims[t][2];
		rvi_image in = synth_image(w, h), sq, rs;
		rvi_err err = {0};
		uint8_t color[3];
		rvi_image_pad_color(clip_mean, color);
		size_t count = (size_t)3 * S * S;
		float *got = malloc(count * sizeof(float)), *want = malloc(count * sizeof(float));
		int rc = rvi_image_preprocess_llava(&in, S, clip_mean, clip_std, got, &err);
		CHECK(rc == RV_OK, "%s", err.msg);
		CHECK(rvi_image_pad_to_square(&in, color, &sq, &err) == RV_OK, "%s", err.msg);
		CHECK(rvi_image_resize_bicubic_pil(&sq, S, S, &rs, &err) == RV_OK, "%s", err.msg);
		normalize_ref(&rs, clip_mean, clip_std, want);
		CHECK(rc == RV_OK && memcmp(got, want, count * sizeof(float)) == 0,
		      "%dx%d -> %d: preprocess differs from pad+resize+normalise", w, h, S);
		free(got);
		free(want);
		rvi_image_free(&in);
		rvi_image_free(&sq);
		rvi_image_free(&rs);
	}
	/* Bad arguments. */
	rvi_image in = synth_image(4, 4);
	float out[3 * 4 * 4];
	rvi_err err = {0};
	float bad_std[3] = {0.2f, 0.0f, 0.2f};
	CHECK(rvi_image_preprocess_llava(&in, 0, clip_mean, clip_std, out, &err) ==
	          RV_ERR_INVALID_ARG,
	      "image_size 0 accepted");
	CHECK(rvi_image_preprocess_llava(&in, 4, clip_mean, bad_std, out, &err) ==
	          RV_ERR_INVALID_ARG,
	      "std 0 accepted");
	rvi_image_free(&in);
}

/* ---- EXIF orientation --------------------------------------------------- */

/* jpg with an APP1 "Exif" segment inserted after SOI: a TIFF header in the
 * given byte order and an IFD0 holding tag (normally 0x0112) with value v. */
static uint8_t *jpeg_with_exif(const uint8_t *jpg, size_t n, bool big, uint32_t tag, uint32_t type,
                               uint32_t v, uint32_t ifd_off, uint32_t count, const char *extra,
                               size_t *out_n)
{
	tu_buf t = {0}, b = {0};
	tu_put(&t, big ? "MM" : "II", 2);
	put_u16(&t, 42, big);
	put_u32(&t, ifd_off, big);
	put_u16(&t, count, big);
	put_u16(&t, tag, big);
	put_u16(&t, type, big);
	put_u32(&t, 1, big);
	if (type == 3) {
		put_u16(&t, v, big);
		put_u16(&t, 0, big);
	} else {
		put_u32(&t, v, big);
	}
	put_u32(&t, 0, big);
	if (extra)
		tu_put(&t, extra, strlen(extra));
	uint32_t len = (uint32_t)(2 + 6 + t.n);
	uint8_t seg[4] = {0xff, 0xe1, (uint8_t)(len >> 8), (uint8_t)len};
	tu_put(&b, jpg, 2);
	tu_put(&b, seg, 4);
	tu_put(&b, "Exif\0\0", 6);
	tu_put(&b, t.p, t.n);
	tu_put(&b, jpg + 2, n - 2);
	free(t.p);
	*out_n = b.n;
	return b.p;
}

/* Where input pixel (x, y) of a w x h image lands for orientations 3, 6, 8,
 * written as forward maps (the library uses backward ones). */
static void forward(int o, int w, int h, int x, int y, int *ox, int *oy)
{
	switch (o) {
	case 3: /* 180 degrees */
		*ox = w - 1 - x, *oy = h - 1 - y;
		break;
	case 6: /* 90 degrees clockwise */
		*ox = h - 1 - y, *oy = x;
		break;
	default: /* 8: 90 degrees counter-clockwise */
		*ox = y, *oy = w - 1 - x;
		break;
	}
}

static void test_exif(void)
{
	size_t n;
	uint8_t *jpg = (uint8_t *)tu_read_file(tu_data("shapes_100x80.jpg"), &n);
	CHECK(jpg != NULL, "cannot read shapes_100x80.jpg");
	if (!jpg)
		return;
	rvi_err err = {0};
	rvi_image plain;
	CHECK(rvi_image_load_memory(jpg, n, "plain.jpg", NULL, true, &plain, &err) == RV_OK, "%s",
	      err.msg);
	CHECK(rvi_image_exif_orientation(jpg, n) == 1, "no EXIF should read as 1");
	for (int big = 0; big < 2; big++) {
		for (int o = 1; o <= 8; o++) {
			size_t m;
			uint8_t *e =
			    jpeg_with_exif(jpg, n, big, 0x0112, 3, (uint32_t)o, 8, 1, NULL, &m);
			CHECK(rvi_image_exif_orientation(e, m) == o, "orientation %d (%s)", o,
			      big ? "MM" : "II");
			rvi_image got, want, raw;
			int rc = rvi_image_load_memory(e, m, "exif.jpg", NULL, true, &got, &err);
			CHECK(rc == RV_OK, "%s", err.msg);
			CHECK(rvi_image_orient(&plain, o, &want, &err) == RV_OK, "%s", err.msg);
			CHECK(rc == RV_OK && same_image(&got, &want), "orientation %d not applied",
			      o);
			CHECK(rc == RV_OK && got.w == (o >= 5 ? 80 : 100), "orientation %d: %dx%d",
			      o, got.w, got.h);
			if (rc == RV_OK && (o == 3 || o == 6 || o == 8)) {
				int bad = 0;
				for (int y = 0; y < plain.h; y++)
					for (int x = 0; x < plain.w; x++) {
						int ox, oy;
						forward(o, plain.w, plain.h, x, y, &ox, &oy);
						bad +=
						    memcmp(got.rgb + ((size_t)oy * got.w + ox) * 3,
						           plain.rgb +
						               ((size_t)y * plain.w + x) * 3,
						           3) != 0;
					}
				CHECK(bad == 0, "orientation %d: %d pixels misplaced", o, bad);
			}
			rc = rvi_image_load_memory(e, m, "exif.jpg", NULL, false, &raw, &err);
			CHECK(rc == RV_OK && same_image(&raw, &plain), "apply_exif=false rotated");
			rvi_image_free(&got);
			rvi_image_free(&want);
			rvi_image_free(&raw);
			free(e);
		}
	}
	/* Malformed or odd EXIF is ignored (orientation 1), never fatal. */
	struct {
		uint32_t tag, type, v, ifd, count;
		const char *what;
	} odd[] = {
	    {0x0112, 3, 9, 8, 1, "value 9"},
	    {0x0112, 3, 0, 8, 1, "value 0"},
	    {0x0112, 7, 6, 8, 1, "type UNDEFINED"},
	    {0x0110, 3, 6, 8, 1, "another tag"},
	    {0x0112, 3, 6, 0xfff0, 1, "IFD offset past the segment"},
	    {0x0112, 3, 6, 8, 0, "no entries"},
	    {0x0100, 3, 6, 8, 5000, "entry count past the segment"},
	};
	for (size_t t = 0; t < sizeof(odd) / sizeof(odd[0]); t++) {
		size_t m;
		uint8_t *e = jpeg_with_exif(jpg, n, false, odd[t].tag, odd[t].type, odd[t].v,
		                            odd[t].ifd, odd[t].count, NULL, &m);
		rvi_image got;
		CHECK(rvi_image_exif_orientation(e, m) == 1, "%s: not ignored", odd[t].what);
		int rc = rvi_image_load_memory(e, m, "odd.jpg", NULL, true, &got, &err);
		CHECK(rc == RV_OK && same_image(&got, &plain), "%s: %s", odd[t].what, err.msg);
		rvi_image_free(&got);
		free(e);
	}
	/* LONG is accepted too. */
	size_t m;
	uint8_t *e = jpeg_with_exif(jpg, n, true, 0x0112, 4, 6, 8, 1, NULL, &m);
	CHECK(rvi_image_exif_orientation(e, m) == 6, "LONG orientation");
	free(e);
	/* An EOI inside the EXIF segment (as in an embedded thumbnail) must not
	 * hide that the image itself is cut short. */
	e = jpeg_with_exif(jpg, n - 2, false, 0x0112, 3, 6, 8, 1, "thumb\xff\xd9", &m);
	rvi_image got;
	int rc = rvi_image_load_memory(e, m, "thumb.jpg", NULL, true, &got, &err);
	EXPECT_FAIL(rc, err, RV_ERR_IMAGE, "thumb.jpg", "no end-of-image marker");
	free(e);
	rvi_image_free(&plain);
	free(jpg);
}

/* ---- formats ------------------------------------------------------------ */

static void check_pixels(const void *data, size_t n, const char *name, int w, int h,
                         const uint8_t *want)
{
	rvi_err err = {0};
	rvi_image img;
	int rc = rvi_image_load_memory(data, n, name, NULL, true, &img, &err);
	CHECK(rc == RV_OK, "%s: %s", name, err.msg);
	CHECK(rc == RV_OK && img.w == w && img.h == h &&
	          memcmp(img.rgb, want, (size_t)w * h * 3) == 0,
	      "%s: wrong pixels", name);
	rvi_image_free(&img);
}

static void test_formats(void)
{
	size_t n;
	uint8_t *p;
	{ /* grey is replicated */
		const uint8_t raw[] = {0, 0, 128, 255};
		const uint8_t want[] = {0, 0, 0, 128, 128, 128, 255, 255, 255};
		p = make_png(3, 1, 8, 0, raw, sizeof(raw), NULL, 0, &n);
		check_pixels(p, n, "grey.png", 3, 1, want);
		free(p);
	}
	{ /* grey + alpha: alpha dropped */
		const uint8_t raw[] = {0, 77, 0, 200, 255};
		const uint8_t want[] = {77, 77, 77, 200, 200, 200};
		p = make_png(2, 1, 8, 4, raw, sizeof(raw), NULL, 0, &n);
		check_pixels(p, n, "ga.png", 2, 1, want);
		free(p);
	}
	{ /* RGBA: alpha dropped, not composited (a transparent pixel keeps its colour) */
		const uint8_t raw[] = {0, 10, 20, 30, 0, 200, 100, 50, 128};
		const uint8_t want[] = {10, 20, 30, 200, 100, 50};
		p = make_png(2, 1, 8, 6, raw, sizeof(raw), NULL, 0, &n);
		check_pixels(p, n, "rgba.png", 2, 1, want);
		free(p);
	}
	{ /* 16-bit RGB keeps the high byte */
		const uint8_t raw[] = {0, 0x12, 0x34, 0xab, 0xcd, 0xff, 0x00};
		const uint8_t want[] = {0x12, 0xab, 0xff};
		p = make_png(1, 1, 16, 2, raw, sizeof(raw), NULL, 0, &n);
		check_pixels(p, n, "rgb16.png", 1, 1, want);
		free(p);
	}
	{ /* palette */
		const uint8_t raw[] = {0, 1, 0};
		const uint8_t plte[] = {1, 2, 3, 250, 251, 252};
		const uint8_t want[] = {250, 251, 252, 1, 2, 3};
		p = make_png(2, 1, 8, 3, raw, sizeof(raw), plte, sizeof(plte), &n);
		check_pixels(p, n, "palette.png", 2, 1, want);
		free(p);
	}
	{ /* BMP, bottom-up rows with padding; then cut short */
		uint8_t rgb[3 * 2 * 3];
		for (int i = 0; i < 18; i++)
			rgb[i] = (uint8_t)(i * 13 + 5);
		p = make_bmp(3, 2, rgb, &n);
		check_pixels(p, n, "small.bmp", 3, 2, rgb);
		rvi_err err = {0};
		rvi_image img;
		int rc = rvi_image_load_memory(p, n - 9, "cut.bmp", NULL, true, &img, &err);
		EXPECT_FAIL(rc, err, RV_ERR_IMAGE, "cut.bmp", "truncated BMP");
		/* A header declaring 1000x1000 in 54 bytes. */
		p[18] = 0xe8, p[19] = 0x03, p[22] = 0xe8, p[23] = 0x03;
		rc = rvi_image_load_memory(p, n, "big.bmp", NULL, true, &img, &err);
		EXPECT_FAIL(rc, err, RV_ERR_IMAGE, "big.bmp", "truncated BMP");
		/* Negative height (top-down) of INT32_MIN. */
		p[22] = 0, p[23] = 0, p[24] = 0, p[25] = 0x80;
		rc = rvi_image_load_memory(p, n, "intmin.bmp", NULL, true, &img, &err);
		EXPECT_FAIL(rc, err, RV_ERR_IMAGE, "intmin.bmp", "per side");
		free(p);
	}
	{ /* PNM: P6 with a comment, P5 grey, cut short, huge header */
		const char p6[] = "P6\n# a comment\n2 1\n255\n\x01\x02\x03\xfa\xfb\xfc";
		const uint8_t want6[] = {1, 2, 3, 250, 251, 252};
		check_pixels(p6, sizeof(p6) - 1, "small.ppm", 2, 1, want6);
		const char p5[] = "P5 2 1 255 \x07\xf0";
		const uint8_t want5[] = {7, 7, 7, 240, 240, 240};
		check_pixels(p5, sizeof(p5) - 1, "small.pgm", 2, 1, want5);
		rvi_err err = {0};
		rvi_image img;
		int rc =
		    rvi_image_load_memory(p6, sizeof(p6) - 2, "cut.ppm", NULL, true, &img, &err);
		EXPECT_FAIL(rc, err, RV_ERR_IMAGE, "cut.ppm", "truncated PNM");
		const char huge[] = "P6\n16384 16384\n255\n\x01\x02";
		rvi_image_limits lim = rvi_image_default_limits();
		lim.max_pixels = (uint64_t)1 << 28;
		lim.max_decode_bytes = UINT64_MAX; /* to reach the size check */
		rc = rvi_image_load_memory(huge, sizeof(huge) - 1, "huge.ppm", &lim, true, &img,
		                           &err);
		EXPECT_FAIL(rc, err, RV_ERR_IMAGE, "huge.ppm", "truncated PNM");
		/* Other maxvals are refused: stb 2.27 neither rescales nor
		 * byte-swaps them, and a 16-bit PGM is the input that overruns a
		 * buffer when it converts one (CVE-2021-42716). */
		const char p5_16[] = "P5 2 1 65535 \x12\x34\xfe\xdc";
		rc = rvi_image_load_memory(p5_16, sizeof(p5_16) - 1, "grey16.pgm", NULL, true, &img,
		                           &err);
		EXPECT_FAIL(rc, err, RV_ERR_IMAGE, "grey16.pgm", "unsupported PNM: maxval 65535");
		const char p6_15[] = "P6 1 1 15 \x01\x02\x03";
		rc = rvi_image_load_memory(p6_15, sizeof(p6_15) - 1, "max15.ppm", NULL, true, &img,
		                           &err);
		EXPECT_FAIL(rc, err, RV_ERR_IMAGE, "max15.ppm", "maxval 15");
		/* Numbers too long for stb 2.27's int parser never reach it. */
		const char longnum[] = "P6 99999999999999999999 1 255 \x01\x02\x03";
		rc = rvi_image_load_memory(longnum, sizeof(longnum) - 1, "long.ppm", NULL, true,
		                           &img, &err);
		EXPECT_FAIL(rc, err, RV_ERR_IMAGE, "long.ppm", "per side");
		const char nodata[] = "P6 1 1 255";
		rc = rvi_image_load_memory(nodata, sizeof(nodata) - 1, "nodata.ppm", NULL, true,
		                           &img, &err);
		EXPECT_FAIL(rc, err, RV_ERR_IMAGE, "nodata.ppm", "truncated PNM");
		const char p3[] = "P3\n1 1\n255\n1 2 3\n";
		rc = rvi_image_load_memory(p3, sizeof(p3) - 1, "ascii.ppm", NULL, true, &img, &err);
		EXPECT_FAIL(rc, err, RV_ERR_IMAGE, "ascii.ppm",
		            "unsupported image format (expected JPEG, PNG, BMP or PNM)");
	}
}

/* ---- JPEG structure ------------------------------------------------------ */

/* A 16x8 progressive JPEG (quality 95, no subsampling) written once by
 * Pillow 9.4.0 from pixel (x, y) = (15x, 30y, 255 - 15x): its DHT segments
 * sit between scans, which the segment walk must accept. */
static const char progressive_hex[] =
    "ffd8ffe000104a46494600010100000100010000ffdb0043000201010101010201010102020202"
    "020403020202020504040304060506060605060606070908060709070606080b08090a0a0a0a0a"
    "06080b0c0b0a0c090a0a0affdb004301020202020202050303050a0706070a0a0a0a0a0a0a0a0a"
    "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a"
    "0a0a0a0a0a0a0a0a0affc20011080008001003011100021101031101ffc4001400010000000000"
    "0000000000000000000006ffc4001501010100000000000000000000000000000708ffda000c03"
    "01000210031000000110e674b25ea33fffc400161000030000000000000000000000000000000"
    "407ffda00080101000105024e5e272f3fffc40017110100030000000000000000000000000006"
    "002231ffda0008010301013f0130e72d0c39cb4fffc400171101000300000000000000000000"
    "00000006002232ffda0008010201013f015cb7568b96ead3ffc40016100003000000000000000"
    "00000000000000034a1ffda0008010100063f025e0bc3ffc40015100101000000000000000000"
    "00000000000031ffda0008010100013f219292ffda000c030100020003000000106bffc400171"
    "1010003000000000000000000000000000041a1f1ffda0008010301013f10df55cbffc4001811"
    "000301010000000000000000000000000001418191ffda0008010201013f10474a31694fffc40"
    "014100100000000000000000000000000000010ffda0008010100013f103bdfffd9";

/* Offset of the first segment with marker m before the first SOS. */
static size_t find_segment(const uint8_t *b, size_t n, unsigned m)
{
	size_t pos = 2;
	while (pos + 4 <= n && b[pos] == 0xff) {
		if (b[pos + 1] == m)
			return pos;
		if (b[pos + 1] == 0xda)
			break;
		pos += 2 + ((size_t)b[pos + 2] << 8 | b[pos + 3]);
	}
	return 0;
}

static void expect_jpeg_fails(const uint8_t *b, size_t n, const char *name, const char *phrase)
{
	rvi_err err = {0};
	rvi_image img;
	int rc = rvi_image_load_memory(b, n, name, NULL, true, &img, &err);
	EXPECT_FAIL(rc, err, RV_ERR_IMAGE, name, phrase);
	rvi_image_free(&img);
}

static void test_jpeg_structure(void)
{
	size_t hn = strlen(progressive_hex) / 2;
	uint8_t *prog = malloc(hn);
	for (size_t i = 0; i < hn; i++)
		prog[i] = (uint8_t)(hexval(progressive_hex[2 * i]) * 16 +
		                    hexval(progressive_hex[2 * i + 1]));
	rvi_err err = {0};
	rvi_image img;
	int rc = rvi_image_load_memory(prog, hn, "progressive.jpg", NULL, true, &img, &err);
	CHECK(rc == RV_OK && img.w == 16 && img.h == 8, "progressive JPEG: %s", err.msg);
	int maxdiff = 0;
	for (int y = 0; rc == RV_OK && y < 8; y++)
		for (int x = 0; x < 16; x++) {
			int want[3] = {15 * x, 30 * y, 255 - 15 * x};
			for (int c = 0; c < 3; c++) {
				int d = abs(img.rgb[(y * 16 + x) * 3 + c] - want[c]);
				maxdiff = d > maxdiff ? d : maxdiff;
			}
		}
	CHECK(maxdiff <= 8, "progressive JPEG: pixels off by up to %d", maxdiff);
	rvi_image_free(&img);
	free(prog);

	size_t n;
	uint8_t *jpg = (uint8_t *)tu_read_file(tu_data("shapes_100x80.jpg"), &n);
	CHECK(jpg != NULL, "cannot read shapes_100x80.jpg");
	if (!jpg)
		return;
	uint8_t *m = malloc(n + 64);
	size_t dht = find_segment(jpg, n, 0xc4), sos = find_segment(jpg, n, 0xda);
	size_t sof = find_segment(jpg, n, 0xc0);
	CHECK(dht && sos && sof, "fixture layout");
	if (dht && sos && sof) {
		/* A table whose counts run past its segment. */
		memcpy(m, jpg, n);
		m[dht + 20] = 255;
		expect_jpeg_fails(m, n, "dht.jpg", "bad Huffman table");
		/* A complete table of 257 codes (stb 2.27 writes past its arrays),
		 * inserted after SOI. */
		uint8_t seg[4 + 17 + 257] = {0xff, 0xc4, 0x01, 0x14, 0x00};
		seg[4 + 15] = 2;
		seg[4 + 16] = 255;
		uint8_t *big = malloc(n + sizeof(seg));
		memcpy(big, jpg, 2);
		memcpy(big + 2, seg, sizeof(seg));
		memcpy(big + 2 + sizeof(seg), jpg + 2, n - 2);
		expect_jpeg_fails(big, n + sizeof(seg), "dht257.jpg",
		                  "bad Huffman table (class 0, id 0, 257 codes)");
		free(big);
		/* A scan using table 3, never defined. */
		memcpy(m, jpg, n);
		m[sos + 6] = 0x33;
		expect_jpeg_fails(m, n, "sos.jpg", "not defined");
		/* Two frame headers. */
		size_t sof_len = 2 + ((size_t)jpg[sof + 2] << 8 | jpg[sof + 3]);
		memcpy(m, jpg, sof + sof_len);
		memcpy(m + sof + sof_len, jpg + sof, sof_len);
		memcpy(m + sof + 2 * sof_len, jpg + sof + sof_len, n - sof - sof_len);
		expect_jpeg_fails(m, n + sof_len, "sof.jpg", "second frame header");
		/* Width 0: stb's own header check, reported with its reason. */
		memcpy(m, jpg, n);
		m[sof + 7] = 0, m[sof + 8] = 0;
		expect_jpeg_fails(m, n, "zero.jpg", "corrupt JPEG header (stb_image: ");
		/* A segment longer than the file. */
		memcpy(m, jpg, n);
		m[dht + 2] = 0xff;
		expect_jpeg_fails(m, dht + 40, "long.jpg", "declares 65309 bytes");
	}
	free(m);
	free(jpg);
}

/* ---- bad files ---------------------------------------------------------- */

static void expect_file_fails(const char *rel, int status, const char *phrase)
{
	rvi_err err = {0};
	rvi_image img = {1, 1, NULL};
	char path[4096];
	snprintf(path, sizeof(path), "%s", tu_data(rel));
	int rc = rvi_image_load_file(path, NULL, true, &img, &err);
	EXPECT_FAIL(rc, err, status, path, phrase);
	CHECK(img.rgb == NULL && img.w == 0 && img.h == 0, "%s: output not cleared", rel);
}

static void test_bad_files(void)
{
	expect_file_fails("bad/image-empty.png", RV_ERR_IMAGE, "empty file");
	expect_file_fails("bad/image-gif.gif", RV_ERR_IMAGE,
	                  "unsupported image format (expected JPEG, PNG, BMP or PNM)");
	expect_file_fails("bad/image-gif.gif", RV_ERR_IMAGE, "GIF");
	expect_file_fails("bad/image-tga.tga", RV_ERR_IMAGE,
	                  "unsupported image format (expected JPEG, PNG, BMP or PNM)");
	expect_file_fails("bad/image-truncated.png", RV_ERR_IMAGE, "truncated");
	expect_file_fails("bad/image-truncated.jpg", RV_ERR_IMAGE, "truncated JPEG");
	expect_file_fails("bad/image-huge-dims.png", RV_ERR_IMAGE,
	                  "100000x100000 pixels, more than the limit of 16384 per side");
	expect_file_fails("bad/image-huge-chunk.png", RV_ERR_IMAGE, "declares 1073741824 bytes");
	expect_file_fails("bad/no-such-image.png", RV_ERR_IO, "cannot open");
	expect_file_fails("bad", RV_ERR_IO, "directory");

	/* The dimension file must be well-formed apart from its size (valid
	 * IHDR CRC), and the chunk file what its name says. */
	size_t n;
	uint8_t *b = (uint8_t *)tu_read_file(tu_data("bad/image-huge-dims.png"), &n);
	CHECK(b && n >= 33 &&
	          crc32_of(b + 12, 17) == ((uint32_t)b[29] << 24 | (uint32_t)b[30] << 16 |
	                                   (uint32_t)b[31] << 8 | b[32]),
	      "image-huge-dims.png: IHDR CRC");
	free(b);
	b = (uint8_t *)tu_read_file(tu_data("bad/image-huge-chunk.png"), &n);
	CHECK(b && n == 75 && memcmp(b + 37, "IDAT", 4) == 0 && b[33] == 0x40 && b[34] == 0,
	      "image-huge-chunk.png: layout");
	free(b);

	/* In memory: TGA/other headers and the name used in messages. */
	rvi_err err = {0};
	rvi_image img;
	int rc =
	    rvi_image_load_memory("GIF89a\x01\x00\x01\x00", 10, "mem.gif", NULL, true, &img, &err);
	EXPECT_FAIL(rc, err, RV_ERR_IMAGE, "mem.gif", "unsupported image format");
	rc = rvi_image_load_memory("", 0, "none.png", NULL, true, &img, &err);
	EXPECT_FAIL(rc, err, RV_ERR_IMAGE, "none.png", "empty file");
}

/* Special files: refused from fstat, before anything could block on them.
 * A FIFO nobody writes would hang a blocking open() for ever. */
static void test_special_files(void)
{
	char dir[] = "/tmp/rlaifv-test-image-XXXXXX", fifo[64];
	CHECK(mkdtemp(dir) != NULL, "mkdtemp: %s", strerror(errno));
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	CHECK(mkfifo(fifo, 0600) == 0, "mkfifo: %s", strerror(errno));
	const char *paths[] = {fifo, "/dev/null", "/dev/zero", dir};
	const char *why[] = {"not a regular file (a FIFO)",
	                     "not a regular file (a character device)",
	                     "not a regular file (a character device)", "is a directory"};
	alarm(60); /* a hang is a failure (SIGALRM), not a stuck test run */
	for (int i = 0; i < 4; i++) {
		rvi_err err = {0};
		rvi_image img;
		int rc = rvi_image_load_file(paths[i], NULL, true, &img, &err);
		EXPECT_FAIL(rc, err, RV_ERR_IO, paths[i], why[i]);
	}
	alarm(0);
	unlink(fifo);
	rmdir(dir);
}

/* A BMP with a negative height stores its rows top-down (Pillow opens it).
 * image-topdown.bmp is 5x3, 24-bit, pixel (x, y) = (40x, 80y, 200) with y
 * counted from the top; its bottom-up twin, built here, decodes the same. */
static void test_topdown_bmp(void)
{
	size_t n;
	uint8_t *b = (uint8_t *)tu_read_file(tu_data("image-topdown.bmp"), &n);
	CHECK(b && n == 102 &&
	          (int32_t)(b[22] | b[23] << 8 | b[24] << 16 | (uint32_t)b[25] << 24) == -3,
	      "image-topdown.bmp: not a 3-row top-down BMP");
	if (!b)
		return;
	uint8_t want[5 * 3 * 3];
	for (int y = 0; y < 3; y++)
		for (int x = 0; x < 5; x++) {
			want[(y * 5 + x) * 3 + 0] = (uint8_t)(40 * x);
			want[(y * 5 + x) * 3 + 1] = (uint8_t)(80 * y);
			want[(y * 5 + x) * 3 + 2] = 200;
		}
	check_pixels((const char *)b, n, "image-topdown.bmp", 5, 3, want);
	uint8_t up[102];
	memcpy(up, b, 54);
	up[22] = 3, up[23] = up[24] = up[25] = 0;
	for (int y = 0; y < 3; y++) /* 16-byte rows: 15 bytes of pixels + 1 of padding */
		memcpy(up + 54 + 16 * (2 - y), b + 54 + 16 * y, 16);
	check_pixels((const char *)up, sizeof(up), "bottom-up twin", 5, 3, want);
	free(b);
}

/* The decode-memory budget is judged from the header: a 69-byte 16-bit
 * RGBA PNG of 8192 x 8192 would take over a gigabyte to decode. */
static void test_decode_budget(void)
{
	expect_file_fails("bad/image-16bit-8192.png", RV_ERR_IMAGE,
	                  "a 8192x8192 PNG with 4 channels of 16 bits needs about 1216 MiB to "
	                  "decode, more than the limit of 768 MiB");
	size_t n;
	uint8_t *b = (uint8_t *)tu_read_file(tu_data("bad/image-16bit-8192.png"), &n);
	rvi_err err = {0};
	int pw, ph;
	int rc = rvi_image_probe_memory(b, n, "16bit.png", NULL, false, &pw, &ph, &err);
	EXPECT_FAIL(rc, err, RV_ERR_IMAGE, "16bit.png", "1216 MiB");
	/* Raised, the budget lets it through to the (here missing) pixels. */
	rvi_image_limits lim = rvi_image_default_limits();
	lim.max_decode_bytes = (uint64_t)1216 << 20;
	rc = rvi_image_probe_memory(b, n, "16bit.png", &lim, false, &pw, &ph, &err);
	CHECK(rc == RV_OK, "a raised budget still refuses: %s", err.msg);
	free(b);
	/* Every 8-bit image within the pixel limit fits the default budget:
	 * RGBA, the widest, needs 8192 x 8192 x 11 bytes = 704 MiB. */
	b = make_png(8192, 8192, 8, 6, NULL, 0, NULL, 0, &n);
	rc = rvi_image_probe_memory(b, n, "rgba8.png", NULL, false, &pw, &ph, &err);
	CHECK(rc == RV_OK, "an 8-bit RGBA 8192x8192 header refused: %s", err.msg);
	free(b);
	b = make_png(8192, 8192, 16, 0, NULL, 0, NULL, 0, &n); /* 16-bit grey: 448 MiB */
	rc = rvi_image_probe_memory(b, n, "grey16.png", NULL, false, &pw, &ph, &err);
	CHECK(rc == RV_OK, "a 16-bit grey 8192x8192 header refused: %s", err.msg);
	free(b);
}

/* Every proper prefix of a valid PNG or JPEG is an error, never pixels. */
static void test_truncations(void)
{
	const char *files[] = {"shapes_64x48.png", "shapes_100x80.jpg"};
	for (int f = 0; f < 2; f++) {
		size_t n;
		uint8_t *b = (uint8_t *)tu_read_file(tu_data(files[f]), &n);
		CHECK(b != NULL, "cannot read %s", files[f]);
		if (!b)
			continue;
		int ok = 0, wrong = 0;
		for (size_t k = 0; k < n; k++) {
			rvi_err err = {0};
			rvi_image img;
			uint8_t *copy = malloc(k ? k : 1); /* exact size: ASan sees overreads */
			memcpy(copy, b, k);
			int rc = rvi_image_load_memory(copy, k, files[f], NULL, true, &img, &err);
			ok += rc == RV_OK;
			wrong += rc != RV_OK && (rc != RV_ERR_IMAGE || !strstr(err.msg, files[f]));
			rvi_image_free(&img);
			free(copy);
		}
		CHECK(ok == 0 && wrong == 0, "%s: %d prefixes decoded, %d bad errors", files[f], ok,
		      wrong);
		free(b);
	}
}

/* ---- limits and the allocation cap --------------------------------------- */

static void test_limits(void)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s", tu_data("shapes_64x48.png"));
	rvi_err err = {0};
	rvi_image img;
	rvi_image_limits lim = rvi_image_default_limits();
	CHECK(lim.max_side == 16384 && lim.max_file_bytes == (64u << 20), "defaults");

	lim.max_side = 50;
	int rc = rvi_image_load_file(path, &lim, true, &img, &err);
	EXPECT_FAIL(rc, err, RV_ERR_IMAGE, path,
	            "64x48 pixels, more than the limit of 50 per side");
	lim = rvi_image_default_limits();
	lim.max_pixels = 3000;
	rc = rvi_image_load_file(path, &lim, true, &img, &err);
	EXPECT_FAIL(rc, err, RV_ERR_IMAGE, path, "more than the limit of 3000 pixels");
	lim = rvi_image_default_limits();
	lim.max_file_bytes = 100;
	rc = rvi_image_load_file(path, &lim, true, &img, &err);
	EXPECT_FAIL(rc, err, RV_ERR_IMAGE, path, "more than the limit of 100");
	lim.max_file_bytes = 259; /* exactly the file's size */
	rc = rvi_image_load_file(path, &lim, true, &img, &err);
	CHECK(rc == RV_OK && img.w == 64, "a file at the size limit: %s", err.msg);
	rvi_image_free(&img);

	lim = rvi_image_default_limits();
	lim.max_side = 0;
	rc = rvi_image_load_file(path, &lim, true, &img, &err);
	CHECK(rc == RV_ERR_INVALID_ARG, "max_side 0 accepted");
	lim.max_side = RVI_IMAGE_MAX_SIDE + 1;
	rc = rvi_image_load_file(path, &lim, true, &img, &err);
	CHECK(rc == RV_ERR_INVALID_ARG, "max_side over the hard ceiling accepted");
}

/* A PNG that stb can only decode through a buffer over the cap: 8192 x
 * 16384 RGBA at 16 bits needs a 1 GiB inflate buffer, allocated before a
 * single byte is inflated. Small and otherwise well-formed. */
static uint8_t *cap_png(size_t *n)
{
	return make_png(8192, 16384, 16, 6, NULL, 0, NULL, 0, n);
}

static void test_alloc_cap(void)
{
	void *p = rvi_image_capped_malloc(RVI_IMAGE_ALLOC_CAP + 1);
	CHECK(p == NULL, "capped malloc over the cap succeeded");
	free(p);
	p = rvi_image_capped_malloc((size_t)1 << 30);
	CHECK(p == NULL, "capped malloc of 1 GiB succeeded");
	free(p);
	p = rvi_image_capped_malloc(64);
	CHECK(p != NULL, "small capped malloc failed");
	memset(p, 7, 64);
	void *q = rvi_image_capped_realloc(p, RVI_IMAGE_ALLOC_CAP + 1);
	CHECK(q == NULL && ((uint8_t *)p)[63] == 7, "capped realloc over the cap");
	free(q ? q : p);

	/* stb allocates through the cap. */
	size_t n;
	uint8_t *png = cap_png(&n);
	rvi_image_limits lim = rvi_image_default_limits();
	lim.max_pixels = (uint64_t)1 << 27;
	lim.max_decode_bytes = UINT64_MAX; /* the cap is the line behind the budget */
	rvi_err err = {0};
	rvi_image img;
	int rc = rvi_image_load_memory(png, n, "cap.png", &lim, true, &img, &err);
	EXPECT_FAIL(rc, err, RV_ERR_IMAGE, "cap.png", "allocation cap");
	/* With the default limits it never gets that far. */
	rc = rvi_image_load_memory(png, n, "cap.png", NULL, true, &img, &err);
	EXPECT_FAIL(rc, err, RV_ERR_IMAGE, "cap.png", "more than the limit of 67108864 pixels");
	free(png);
}

#ifndef HAVE_ASAN
static uint64_t vm_size(void)
{
	unsigned long long pages = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f) {
		if (fscanf(f, "%llu", &pages) != 1)
			pages = 0;
		fclose(f);
	}
	return (uint64_t)pages * (uint64_t)sysconf(_SC_PAGESIZE);
}
#endif

/* Decodes the hostile files with the address space limited to 256 MiB more
 * than the process already has. ASan reserves terabytes of shadow up front,
 * so this part runs only in builds without it. */
static void test_address_space_limit(void)
{
#ifdef HAVE_ASAN
	printf("test_image: address-space limit test skipped under ASan\n");
#else
	fflush(NULL);
	pid_t pid = fork();
	CHECK(pid >= 0, "fork failed");
	if (pid == 0) {
		uint64_t vm = vm_size();
		struct rlimit rl = {vm + (256u << 20), vm + (256u << 20)};
		if (vm == 0 || setrlimit(RLIMIT_AS, &rl) != 0)
			_exit(2);
		void *probe = malloc((size_t)512 << 20);
		if (probe) { /* the limit does not bite here: nothing to learn */
			free(probe);
			_exit(2);
		}
		rvi_err err = {0};
		rvi_image img;
		char path[4096];
		snprintf(path, sizeof(path), "%s", tu_data("bad/image-huge-chunk.png"));
		int rc = rvi_image_load_file(path, NULL, true, &img, &err);
		if (rc != RV_ERR_IMAGE || !strstr(err.msg, "declares 1073741824 bytes"))
			_exit(10);
		snprintf(path, sizeof(path), "%s", tu_data("bad/image-16bit-8192.png"));
		rc = rvi_image_load_file(path, NULL, true, &img, &err);
		if (rc != RV_ERR_IMAGE || !strstr(err.msg, "needs about 1216 MiB"))
			_exit(13);
		size_t n;
		uint8_t *png = cap_png(&n);
		rvi_image_limits lim = rvi_image_default_limits();
		lim.max_pixels = (uint64_t)1 << 27;
		lim.max_decode_bytes = UINT64_MAX;
		rc = rvi_image_load_memory(png, n, "cap.png", &lim, true, &img, &err);
		free(png);
		if (rc != RV_ERR_IMAGE || !strstr(err.msg, "allocation cap"))
			_exit(11);
		snprintf(path, sizeof(path), "%s", tu_data("shapes_100x80.jpg"));
		rc = rvi_image_load_file(path, NULL, true, &img, &err);
		if (rc != RV_OK)
			_exit(12);
		rvi_image_free(&img);
		_exit(0);
	}
	int status = 0;
	waitpid(pid, &status, 0);
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
	if (code == 2)
		printf("test_image: address-space limit not effective here; test skipped\n");
	else
		CHECK(code == 0, "child under RLIMIT_AS exited with %d", code);
#endif
}

/* ---- mutations ---------------------------------------------------------- */

/* Damaged copies of valid files must decode to something sane or fail
 * cleanly; run under ASan/valgrind this catches memory errors in the
 * decoders and in our own checks. */
static void test_mutations(void)
{
	size_t np, nj, nb;
	uint8_t *png = (uint8_t *)tu_read_file(tu_data("shapes_64x48.png"), &np);
	uint8_t *jpg = (uint8_t *)tu_read_file(tu_data("shapes_100x80.jpg"), &nj);
	uint8_t rgb[8 * 5 * 3];
	for (size_t i = 0; i < sizeof(rgb); i++)
		rgb[i] = (uint8_t)(i * 29);
	uint8_t *bmp = make_bmp(8, 5, rgb, &nb);
	CHECK(png && jpg, "cannot read the fixtures");
	if (!png || !jpg)
		goto done;
	const uint8_t *bases[] = {png, jpg, bmp};
	size_t sizes[] = {np, nj, nb};
	rvi_image_limits lim = rvi_image_default_limits();
	lim.max_side = 1024; /* keeps a mutated size field from making this slow */
	lim.max_pixels = 1 << 20;
	uint64_t rng = 7;
	int bad = 0;
	for (int it = 0; it < 600; it++) {
		int which = it % 3;
		size_t n = sizes[which];
		uint8_t *m = malloc(n);
		memcpy(m, bases[which], n);
		int flips = 1 + (int)(tu_rand_u64(&rng) % 6);
		for (int k = 0; k < flips; k++) {
			size_t at = tu_rand_u64(&rng) % n;
			m[at] = (uint8_t)(k % 2 ? tu_rand_u64(&rng) : m[at] ^ (1u << (it % 8)));
		}
		rvi_err err = {0};
		rvi_image img;
		int rc = rvi_image_load_memory(m, n, "mutant", &lim, true, &img, &err);
		if (rc == RV_OK)
			bad += img.w < 1 || img.h < 1 || img.w > 1024 || img.h > 1024;
		else
			bad += rc != RV_ERR_IMAGE || !strstr(err.msg, "mutant");
		rvi_image_free(&img);
		free(m);
	}
	CHECK(bad == 0, "%d mutated files gave a bad result", bad);
done:
	free(png);
	free(jpg);
	free(bmp);
}

int main(void)
{
	test_fixture("shapes_64x48.png", "refs/shapes_64x48.decoded.ppm",
	             "ref-hf-npy/ref-hf-llava-f32.shapes_64x48.describe-pixels.npy",
	             "ref-hf-llava-f32.shapes_64x48.describe.json");
	test_fixture("shapes_100x80.jpg", "refs/shapes_100x80.decoded.ppm",
	             "ref-hf-npy/ref-hf-llava-f32.shapes_100x80.describe.stb-decoded-pixels.npy",
	             "ref-hf-llava-f32.shapes_100x80.describe.stb-decoded.json");
	test_pad();
	test_resize_pil_bytes();
	test_resize_reference();
	test_preprocess_composition();
	test_exif();
	test_jpeg_structure();
	test_formats();
	test_bad_files();
	test_special_files();
	test_topdown_bmp();
	test_decode_budget();
	test_truncations();
	test_limits();
	test_alloc_cap();
	test_address_space_limit();
	test_mutations();
	return tu_finish("test_image");
}
