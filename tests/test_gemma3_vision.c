/* test_gemma3_vision.c: Gemma 3's vision side (clip.projector_type
 * "gemma3") against the float64 references of the Hugging Face pipeline
 * (tests/data/gemma3/, see its README): per fixture image the Pillow
 * BILINEAR stretch bit for bit (sha256 of the 8-bit image), the pixels bit
 * for bit (sha256 of the float32 tensor), the SigLIP output and the image
 * embeddings within 1e-4, under every kernel set and two thread counts;
 * the layout with the processor's "\n\n" around the image; pan-and-scan's
 * crop arithmetic against HF's formula on a table of sizes, and its crops'
 * pixels and layout. */
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/arch.h"
#include "models/gemma3_vision.h"
#include "rlaifv.h"
#include "simd/kernels.h"
#include "src/attention.h"
#include "src/image/image.h"
#include "tests/testutil.h"

#define TOL 1e-4

#define MMPROJ "gemma3/tiny-gemma3-mmproj-f32.gguf"

typedef struct image_case {
	const char *file; /* under tests/data */
	const char *ref;  /* stem of the reference files */
} image_case;

static const image_case images[] = {
    {"gemma3/shapes_64x48.png", "ref-hf-gemma3-f32.shapes_64x48.describe"},
    {"gemma3/wide_96x40.png", "ref-hf-gemma3-f32.wide_96x40.describe"},
    /* we decode JPEGs with stb_image: its reference starts from stb's pixels */
    {"gemma3/shapes_100x80.jpg", "ref-hf-gemma3-f32.shapes_100x80.describe.stb-decoded"},
};

static double max_diff(const float *a, const float *ref, size_t n)
{
	double worst = 0;
	for (size_t i = 0; i < n; i++) {
		const double d = fabs((double)a[i] - (double)ref[i]);
		if (!(d <= worst))
			worst = d;
	}
	return worst;
}

/* ---- pixels, SigLIP output, embeddings ---------------------------------- */

static void test_vision(const rvi_gemma3v *m, const image_case *ic)
{
	char name[256];
	snprintf(name, sizeof(name), "gemma3/%s.json", ic->ref);
	tu_json *ref = tu_json_load(tu_data(name));
	CHECK(ref != NULL, "%s", name);
	if (!ref)
		return;
	const rvi_vision_arch *a = &rvi_gemma3v_arch;
	rvi_err err = {0};
	rvi_image img = {0}, rs = {0};
	rvi_pixels px = {0};
	float *out = NULL, *out2 = NULL, *vis = NULL, *want_vis = NULL;
	char hex[65];
	int rc = rvi_image_load_file(tu_data(ic->file), NULL, true, &img, &err);
	CHECK(rc == RV_OK, "%s: %s", ic->file, err.msg);
	if (rc != RV_OK)
		goto done;

	/* the Pillow BILINEAR stretch: the 8-bit image's sha256 */
	const int S = (int)m->hp.image_size;
	rc = rvi_image_resize_pil(&img, S, S, RVI_RESAMPLE_BILINEAR, &rs, &err);
	CHECK(rc == RV_OK, "%s: resize: %s", ic->file, err.msg);
	if (rc == RV_OK) {
		tu_sha256_hex(rs.rgb, (size_t)S * S * 3, hex);
		const tu_json *want = tu_json_get(ref, "preprocess.resized_u8_sha256");
		CHECK(want && !strcmp(hex, want->str),
		      "%s: the resized image differs from Pillow's (sha256 %s)", ic->file, hex);
	}

	/* the pixels bit for bit: the float32 tensor's sha256 */
	rc = a->preprocess(m, &img, NULL, &px, &err);
	CHECK(rc == RV_OK, "%s: preprocess: %s", ic->file, err.msg);
	if (rc != RV_OK)
		goto done;
	CHECK(px.shape.rows == 16 && px.shape.tiles_h == 0 && px.n_floats == 3 * S * S,
	      "%s: %lld rows, %lld floats", ic->file, (long long)px.shape.rows,
	      (long long)px.n_floats);
	tu_sha256_hex(px.data, (size_t)px.n_floats * sizeof(float), hex);
	const tu_json *want_sha = tu_json_get(ref, "preprocess.pixels.sha256_f32");
	CHECK(want_sha && !strcmp(hex, want_sha->str), "%s: pixels differ from HF's (sha256 %s)",
	      ic->file, hex);

	/* SigLIP output and embeddings, on two thread counts (must not matter) */
	const tu_json *vals = tu_json_get(ref, "image_embedding.values");
	const int64_t n_out = a->n_embd_out(m), n_vis = m->hp.n_patches * m->hp.n_embd;
	const size_t n = (size_t)(px.shape.rows * n_out);
	snprintf(name, sizeof(name), "gemma3/ref-npy/%s-vision.npy", ic->ref);
	want_vis = tu_npy_load_2d(name, (size_t)m->hp.n_patches, (size_t)m->hp.n_embd);
	out = malloc(n * sizeof(float));
	out2 = malloc(n * sizeof(float));
	vis = malloc((size_t)n_vis * sizeof(float));
	CHECK(vals && want_vis && out && out2 && vis, "%s: no reference values", ic->file);
	if (!vals || !want_vis || !out || !out2 || !vis)
		goto done;
	rc = rvi_gemma3v_encode(m, px.data, 1, 1, out, vis, &err);
	CHECK(rc == RV_OK, "%s: encode: %s", ic->file, err.msg);
	rc = rc == RV_OK ? a->encode(m, &px, 3, out2, &err) : rc;
	CHECK(rc == RV_OK && !memcmp(out, out2, n * sizeof(float)),
	      "%s: the embeddings depend on the thread count", ic->file);
	const double dv = max_diff(vis, want_vis, (size_t)n_vis);
	CHECK(dv <= TOL, "%s: SigLIP output differs by %g", ic->file, dv);
	size_t flat = 0;
	double worst = 0;
	for (size_t r = 0; r < vals->n; r++) {
		const tu_json *row = tu_json_at(vals, r);
		for (size_t c = 0; row && c < row->n; c++, flat++) {
			const double d =
			    flat < n ? fabs(out[flat] - tu_json_at(row, c)->num) : INFINITY;
			worst = d > worst ? d : worst;
		}
	}
	CHECK(flat == n, "%s: %zu reference values for %zu of ours", ic->file, flat, n);
	CHECK(worst <= TOL, "%s: embeddings differ by %g", ic->file, worst);
	printf("%s: resize and pixels identical, SigLIP max |diff| %.3g, embeddings %.3g\n",
	       ic->file, dv, worst);
done:
	free(out);
	free(out2);
	free(vis);
	free(want_vis);
	rvi_pixels_free(&px);
	rvi_image_free(&rs);
	rvi_image_free(&img);
	tu_json_free(ref);
}

/* The JPEG as stb decodes it is the fixture's stb-decoded pixels (which
 * its reference starts from). */
static void test_jpeg_pixels(void)
{
	rvi_err err = {0};
	rvi_image a = {0}, b = {0};
	int rc = rvi_image_load_file(tu_data("gemma3/shapes_100x80.jpg"), NULL, true, &a, &err);
	if (rc == RV_OK)
		rc = rvi_image_load_file(tu_data("gemma3/shapes_100x80.stb-decoded.ppm"), NULL,
		                         true, &b, &err);
	CHECK(rc == RV_OK, "%s", err.msg);
	CHECK(rc == RV_OK && a.w == b.w && a.h == b.h &&
	          !memcmp(a.rgb, b.rgb, (size_t)a.w * a.h * 3),
	      "the JPEG decodes to other pixels than the fixture's");
	rvi_image_free(&a);
	rvi_image_free(&b);
}

/* ---- pan-and-scan -------------------------------------------------------- */

/* The crops HF computes: each row worked out by hand from
 * transformers/models/gemma3/image_processing_gemma3.py (blob 06053b84),
 * Gemma3ImageProcessor.pan_and_scan: "num_crops_w = int(math.floor(width /
 * height + 0.5))", then "min(int(math.floor(width /
 * pan_and_scan_min_crop_size)), num_crops_w)", clamped to [2, max crops],
 * "crop_size_w = int(math.ceil(width / num_crops_w))", and no crops when
 * the ratio is below the threshold or "min(crop_size_w, crop_size_h) <
 * pan_and_scan_min_crop_size" (portrait images alike with h and w
 * swapped). Defaults 256, 4, 1.2 (Gemma3ProcessorKwargs). */
static void test_pan_and_scan_table(void)
{
	static const struct {
		int w, h, min_crop, max_crops;
		double ratio;
		int n_w, n_h, cw, ch;
	} t[] = {
	    {896, 896, 256, 4, 1.2, 0, 0, 0, 0},        /* square: ratio 1 < 1.2 */
	    {1199, 1000, 256, 4, 1.2, 0, 0, 0, 0},      /* 1.199 < 1.2 */
	    {1200, 1000, 256, 4, 1.2, 2, 1, 600, 1000}, /* 1.2 is not below 1.2; at least 2 */
	    {1000, 800, 256, 4, 1.2, 2, 1, 500, 800},
	    {600, 200, 256, 4, 1.2, 0, 0, 0, 0}, /* crops 300 x 200: 200 < 256 */
	    {900, 300, 256, 4, 1.2, 3, 1, 300, 300},
	    {2000, 300, 256, 4, 1.2, 4, 1, 500, 300}, /* 7 by ratio and size, max 4 */
	    {1001, 500, 256, 4, 1.2, 2, 1, 501, 500}, /* ceil: the last crop is 500 wide */
	    {3000, 1000, 256, 4, 1.2, 3, 1, 1000, 1000},
	    {4000, 3000, 256, 4, 1.2, 2, 1, 2000, 3000},
	    {1024, 512, 256, 4, 1.2, 2, 1, 512, 512},
	    {300, 1000, 256, 4, 1.2, 1, 3, 300, 334}, /* portrait */
	    {257, 1000, 256, 4, 1.2, 1, 3, 257, 334}, /* floor(1000 / 256) = 3 < 4 */
	    {255, 1000, 256, 4, 1.2, 0, 0, 0, 0},     /* crop width 255 < 256 */
	    {512, 1024, 256, 4, 2.5, 0, 0, 0, 0},     /* ratio 2 < 2.5 */
	    {1000, 120, 100, 8, 1.5, 8, 1, 125, 120},
	    {1000, 120, 100, 3, 1.5, 3, 1, 334, 120},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const rvi_pan_and_scan s = {true, t[i].min_crop, t[i].max_crops, t[i].ratio};
		rvi_gemma3_crops c;
		rvi_gemma3_pan_and_scan(t[i].w, t[i].h, &s, &c);
		CHECK(c.n_w == t[i].n_w && c.n_h == t[i].n_h && c.cw == t[i].cw && c.ch == t[i].ch,
		      "%dx%d (%d, %d, %g): %dx%d crops of %dx%d, HF: %dx%d of %dx%d", t[i].w,
		      t[i].h, t[i].min_crop, t[i].max_crops, t[i].ratio, c.n_w, c.n_h, c.cw, c.ch,
		      t[i].n_w, t[i].n_h, t[i].cw, t[i].ch);
	}
}

/* A w x h image of a deterministic pattern. */
static rvi_image pattern(int w, int h)
{
	rvi_image img = {0};
	rvi_err err = {0};
	CHECK(rvi_image_new(w, h, &img, &err) == RV_OK, "%s", err.msg);
	uint64_t st = 7;
	for (size_t i = 0; img.rgb && i < (size_t)w * h * 3; i++)
		img.rgb[i] = (uint8_t)(tu_rand_u64(&st) >> 56);
	return img;
}

/* The layout's text pieces, "|"-joined, rows as "[row0+n]". */
static void layout_string(const rvi_image_layout *l, char *buf, size_t cap)
{
	size_t used = 0;
	buf[0] = 0;
	for (int i = 0; i < l->n && used < cap; i++) {
		const rvi_layout_piece *pc = &l->pieces[i];
		int w = pc->text ? snprintf(buf + used, cap - used, "%s%s", i ? "|" : "", pc->text)
		                 : snprintf(buf + used, cap - used, "%s[%lld+%lld]", i ? "|" : "",
		                            (long long)pc->row0, (long long)pc->n_rows);
		used += w > 0 ? (size_t)w : 0;
	}
}

/* With pan-and-scan on: a wide image gives the original and its crops,
 * each the crop's region preprocessed alone, in HF's order; its layout is
 * Gemma3Processor's text; settings out of range are refused; off again,
 * the image alone. */
static void test_pan_and_scan_model(void *model)
{
	const rvi_vision_arch *a = &rvi_gemma3v_arch;
	rvi_gemma3v *m = model;
	rvi_err err = {0};
	const int S = (int)m->hp.image_size;
	const size_t plane = (size_t)3 * S * S;
	rvi_embd_shape sh;
	rvi_image_layout l = {0};
	char got[1024];

	/* off (the default): one image, the processor's "\n\n" around it */
	CHECK(!m->pas.on, "pan-and-scan is on by default");
	CHECK(a->embd_shape(m, 900, 300, NULL, &sh, &err) == RV_OK && sh.rows == 16 &&
	          sh.tiles_h == 0 && sh.tiles_w == 0,
	      "900x300 without pan-and-scan: %lld rows", (long long)sh.rows);
	CHECK(a->layout(m, &sh, &l, &err) == RV_OK, "%s", err.msg);
	layout_string(&l, got, sizeof(got));
	CHECK(l.text_joins && !strcmp(got, "\n\n<start_of_image>|[0+16]|<end_of_image>\n\n"),
	      "layout: %s", got);
	rvi_image_layout_free(&l);

	rvi_pan_and_scan s = {true, 256, 4, 1.2};
	CHECK(a->set_pan_and_scan(m, &s, &err) == RV_OK, "%s", err.msg);
	CHECK(a->embd_shape(m, 900, 300, NULL, &sh, &err) == RV_OK && sh.rows == 4 * 16 &&
	          sh.tiles_h == 1 && sh.tiles_w == 3,
	      "900x300: %lld rows, %dx%d crops", (long long)sh.rows, sh.tiles_h, sh.tiles_w);
	CHECK(a->layout(m, &sh, &l, &err) == RV_OK, "%s", err.msg);
	layout_string(&l, got, sizeof(got));
	/* processing_gemma3.py: "Here is the original image {boi} and here are
	 * some crops to help you see better " + " ".join([boi] * num_crops),
	 * then every boi -> "\n\n{boi}{image tokens}{eoi}\n\n" */
	CHECK(!strcmp(got, "Here is the original image \n\n<start_of_image>|[0+16]|<end_of_image>"
	                   "\n\n and here are some crops to help you see better \n\n"
	                   "<start_of_image>|[16+16]|<end_of_image>\n\n \n\n<start_of_image>|"
	                   "[32+16]|<end_of_image>\n\n \n\n<start_of_image>|[48+16]|"
	                   "<end_of_image>\n\n"),
	      "layout: %s", got);
	rvi_image_layout_free(&l);

	/* the pixels: the whole image, then each 300 x 300 crop on its own */
	rvi_image img = pattern(900, 300), crop = {0};
	rvi_pixels px = {0};
	float *want = malloc(plane * sizeof(float));
	int rc = a->preprocess(m, &img, NULL, &px, &err);
	CHECK(rc == RV_OK && px.n_floats == (int64_t)(4 * plane) && px.shape.rows == 64,
	      "preprocess with crops: %s", err.msg);
	for (int c = 0; rc == RV_OK && want && c < 4; c++) {
		const int x0 = c == 0 ? 0 : (c - 1) * 300, cw = c == 0 ? 900 : 300;
		rc = rvi_image_new(cw, 300, &crop, &err);
		for (int y = 0; rc == RV_OK && y < 300; y++)
			memcpy(crop.rgb + (size_t)y * cw * 3, img.rgb + ((size_t)y * 900 + x0) * 3,
			       (size_t)cw * 3);
		if (rc == RV_OK)
			rc = rvi_image_preprocess_gemma3(&crop, 0, 0, 0, 0, S, m->hp.image_mean,
			                                 m->hp.image_std, want, &err);
		CHECK(rc == RV_OK && !memcmp(px.data + c * plane, want, plane * sizeof(float)),
		      "image %d of the pan-and-scan pixels is not its region's", c);
		rvi_image_free(&crop);
	}
	/* and they encode, one after another; pixels that are not whole
	 * images of their rows are refused */
	float *out = malloc((size_t)(px.shape.rows * m->hp.n_mm_out) * sizeof(float));
	CHECK(out && rc == RV_OK && a->encode(m, &px, 2, out, &err) == RV_OK, "%s", err.msg);
	px.shape.rows -= 16;
	CHECK(a->encode(m, &px, 2, out, &err) == RV_ERR_INVALID_ARG && strstr(err.msg, "whole"),
	      "3 images' pixels for 4 images' rows: %s", err.msg);
	px.shape.rows += 16;
	px.n_floats -= 1;
	CHECK(a->encode(m, &px, 2, out, &err) == RV_ERR_INVALID_ARG, "pixels short of an image");
	free(out);
	free(want);
	rvi_pixels_free(&px);
	rvi_image_free(&img);

	/* a short last crop: 1001 x 500 gives 501 + 500 */
	CHECK(a->embd_shape(m, 1001, 500, NULL, &sh, &err) == RV_OK && sh.rows == 3 * 16,
	      "1001x500: %lld rows", (long long)sh.rows);

	const rvi_pan_and_scan bad[] = {{true, 0, 4, 1.2},
	                                {true, 256, 0, 1.2},
	                                {true, 256, 4, 0.5},
	                                {true, 256, 4, NAN},
	                                {true, 256, 100000, 1.2}};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err.msg[0] = 0;
		CHECK(a->set_pan_and_scan(m, &bad[i], &err) == RV_ERR_INVALID_ARG &&
		          strstr(err.msg, "pan-and-scan"),
		      "bad setting %zu accepted (%s)", i, err.msg);
	}
	s.on = false;
	CHECK(a->set_pan_and_scan(m, &s, &err) == RV_OK, "%s", err.msg);
	CHECK(a->embd_shape(m, 900, 300, NULL, &sh, &err) == RV_OK && sh.rows == 16,
	      "off again: %lld rows", (long long)sh.rows);
}

/* ---- the public setter, the prompt and the cache -------------------------- */

/* Files in dir (the cache's entries and its side file). */
static int count_files(const char *dir)
{
	DIR *d = opendir(dir);
	int n = 0;
	for (struct dirent *e; d && (e = readdir(d));)
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

/* rv_model_set_pan_and_scan through the public API: the prompt grows by
 * the crops' rows and the processor's text, the cache keeps settings apart,
 * and the refusals. The host text model is Qwen2.5-VL's tiny one (the same
 * width; the Gemma 3 text family is tested with its own model elsewhere),
 * with a template named, so only the vision side is under test. */
static void test_api(void)
{
	char err[512], dir[] = "/tmp/rlaifv-g3v-XXXXXX", img[4096];
	rv_model_params mp = rv_model_default_params();
	mp.n_threads = 2;
	rv_model *m = NULL;
	CHECK(rv_model_load(tu_data("qwen25vl/tiny-qwen25vl-text-f32.gguf"), &mp, &m, err,
	                    sizeof(err)) == RV_OK,
	      "%s", err);
	CHECK(!m ||
	          rv_model_set_pan_and_scan(m, 1, 0, 0, 0, err, sizeof(err)) == RV_ERR_INVALID_ARG,
	      "pan-and-scan without a projector accepted");
	CHECK(m && rv_model_load_mmproj(m, tu_data(MMPROJ), err, sizeof(err)) == RV_OK, "%s", err);
	if (!m || !mkdtemp(dir)) {
		rv_model_free(m);
		return;
	}
	/* a 900 x 300 PPM: three crops of 300 x 300 with HF's defaults */
	snprintf(img, sizeof(img), "%s/wide.ppm", dir);
	FILE *f = fopen(img, "wb");
	rvi_image pix = pattern(900, 300);
	if (f) {
		fprintf(f, "P6\n900 300\n255\n");
		fwrite(pix.rgb, 1, (size_t)900 * 300 * 3, f);
		fclose(f);
	}
	rvi_image_free(&pix);
	char cache[4096];
	snprintf(cache, sizeof(cache), "%s/cache", dir);
	rv_context_params cp = rv_context_default_params();
	cp.cache_dir = cache;
	rv_context *ctx = NULL;
	CHECK(rv_context_new(m, &cp, &ctx, err, sizeof(err)) == RV_OK, "%s", err);
	const char *imgs[1] = {img};
	rv_prompt p = {
	    .text = "describe", .images = imgs, .n_images = 1, .chat_template = "qwen2-vl"};
	rv_gen_params gp = rv_gen_default_params();
	gp.temp = 0;
	gp.n_candidates = 1;
	gp.n_predict = 1;
	rv_result r;
	int n_off = -1, n_on = -1, files[4] = {0};
	/* off, on with HF's defaults, on with another ratio (the same crops),
	 * that again: the last must hit the cache, the others add entries */
	static const double ratios[] = {0, 1.2, 1.3, 1.3};
	for (int i = 0; ctx && i < 4; i++) {
		CHECK(rv_model_set_pan_and_scan(m, i > 0, 0, 0, ratios[i], err, sizeof(err)) ==
		          RV_OK,
		      "%s", err);
		CHECK(rv_generate_prompt(ctx, &p, &gp, &r) == RV_OK, "run %d: %s", i,
		      rv_context_error(ctx));
		if (i == 0)
			n_off = r.n_prompt_tokens;
		if (i == 1)
			n_on = r.n_prompt_tokens;
		rv_result_free(&r);
		files[i] = count_files(cache);
	}
	/* + 3 crops of 16 rows, their markers and the processor's sentences */
	CHECK(n_on > n_off + 3 * 18, "pan-and-scan: %d prompt tokens, %d without", n_on, n_off);
	CHECK(files[1] == files[0] + 1 && files[2] == files[1] + 1 && files[3] == files[2],
	      "cache entries per setting: %d %d %d %d", files[0], files[1], files[2], files[3]);
	CHECK(rv_model_set_pan_and_scan(m, 1, 0, 1000, 0, err, sizeof(err)) == RV_ERR_INVALID_ARG &&
	          strstr(err, "max crops"),
	      "1000 crops: '%s'", err);
	rv_context_free(ctx);
	rv_model_free(m);

	/* a projector without pan-and-scan refuses it */
	m = NULL;
	CHECK(rv_model_load(tu_data("tiny-llava-text-f32.gguf"), &mp, &m, err, sizeof(err)) ==
	              RV_OK &&
	          rv_model_load_mmproj(m, tu_data("tiny-llava-mmproj-f32.gguf"), err,
	                               sizeof(err)) == RV_OK,
	      "%s", err);
	CHECK(
	    m && rv_model_set_pan_and_scan(m, 1, 0, 0, 0, err, sizeof(err)) == RV_ERR_UNSUPPORTED &&
	        strstr(err, "mlp"),
	    "LLaVA: '%s'", err);
	rv_model_free(m);
	char cmd[4200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	CHECK(system(cmd) == 0, "rm %s", dir);
}

/* Gemma 3's 896-pixel images are 4096 patches: the encoder's attention
 * works on tiles of queries, never on a whole 4096 x 4096 score matrix of
 * a head (64 MiB each, 16 heads): its working memory is a few rows per
 * thread and at most a copy of the keys and values. */
static void test_attention_tiled(void)
{
	const int64_t n = 4096, hd = 72, n_head = 16;
	const rvi_attn_heads heads = {n_head, n_head, hd, 0.0f};
	for (int nt = 1; nt <= 4; nt++) {
		const size_t got = rvi_attn_full_scratch(&heads, n, nt);
		CHECK(got <= (size_t)n * (size_t)(nt * 256 + 3 * n_head * (hd + 16)),
		      "%d threads: %zu floats of attention scratch for %lld rows", nt, got,
		      (long long)n);
		CHECK(got < (size_t)n * (size_t)n, "%d threads: a whole score matrix's worth", nt);
	}
}

int main(void)
{
	rvi_gguf *g = NULL;
	rvi_err err = {0};
	void *model = NULL;
	int rc = rvi_gguf_open(&g, tu_data(MMPROJ), &err);
	if (rc == RV_OK)
		rc = rvi_gemma3v_arch.load(g, &model, &err);
	CHECK(rc == RV_OK, "%s", err.msg);
	/* under every kernel set this build and CPU can run */
	const char *isas[8];
	const int n_isas = rvk_usable_isas(isas, 8);
	const rvk_table *first = rvk_active();
	for (int k = 0; rc == RV_OK && k < n_isas && k < 8; k++) {
		CHECK(rvk_select(isas[k], NULL, 0), "select %s", isas[k]);
		printf("-- %s kernels\n", isas[k]);
		for (size_t i = 0; i < sizeof(images) / sizeof(images[0]); i++)
			test_vision(model, &images[i]);
	}
	CHECK(rvk_select(first->name, NULL, 0), "restore %s", first->name);
	if (model)
		test_pan_and_scan_model(model);
	if (model)
		rvi_gemma3v_arch.free(model);
	rvi_gguf_close(g);
	test_jpeg_pixels();
	test_pan_and_scan_table();
	test_attention_tiled();
	test_api();
	return tu_finish("test_gemma3_vision");
}
