/* test_gemma3_vision.c: Gemma 3's vision side (clip.projector_type
 * "gemma3") against the float64 references of the Hugging Face pipeline
 * (tests/data/gemma3/, see its README): per fixture image the Pillow
 * BILINEAR stretch bit for bit (sha256 of the 8-bit image), the pixels bit
 * for bit (sha256 of the float32 tensor), the SigLIP output and the image
 * embeddings within 1e-4, under every kernel set and two thread counts;
 * the layout with the processor's "\n\n" around the image; pan-and-scan's
 * crop arithmetic against HF's formula on a table of sizes, and its crops'
 * pixels and layout. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/arch.h"
#include "models/gemma3_vision.h"
#include "rlaifv.h"
#include "simd/kernels.h"
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
		rvi_gemma3v_arch.free(model);
	rvi_gguf_close(g);
	test_jpeg_pixels();
	return tu_finish("test_gemma3_vision");
}
