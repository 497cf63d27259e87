/* test_arch.c: the architecture tables (models/arch.h) from the outside.
 *
 * A vision family that exists only in this file ("test-mean-pool": each
 * P x P cell of the image, at its own size, becomes one row W @ mean RGB)
 * is registered with a registry of the test's own and runs end to end
 * through the public API, with no edit to the runtime: rows counted per
 * image from its size, encoded through the table, cached, best-of-N. Then
 * the batch rules every family relies on: explicit positions (equal to the
 * cache rows they are bit-identical to none; shifted they change the
 * result), an image span that sees itself whole, and M-RoPE's angles. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "models/arch.h"
#include "models/llama.h"
#include "rlaifv.h"
#include "src/api_internal.h"
#include "src/attention.h"
#include "src/prompt.h"
#include "src/rope.h"
#include "tests/testutil.h"

/* ---- the test-only family ----------------------------------------------- */

#define CELL 16 /* P: pixels per side of a cell */

typedef struct mean_pool {
	int64_t n_out; /* D: the text model's width */
	float *w;      /* (D, 3), row-major: out[d] = sum_c w[d*3 + c] mean[c] */
} mean_pool;

static int mp_encodes; /* how many times the encoder ran (cache hits skip it) */

static int mp_load(const rvi_gguf *g, void **model, rvi_err *err)
{
	const rvi_gguf_tensor *t = rvi_gguf_find_tensor(g, "mm.weight");
	if (!t || t->type != RVI_TYPE_F32 || t->n_dims != 2 || t->ne[0] != 3)
		return rvi_errorf(err, RV_ERR_MODEL, "%s: mm.weight must be F32 (D, 3)", g->path);
	mean_pool *m = calloc(1, sizeof(*m));
	if (!m)
		return rvi_errorf(err, RV_ERR_NOMEM, "out of memory");
	m->n_out = t->ne[1];
	m->w = (float *)t->data;
	*model = m;
	return RV_OK;
}

static void mp_free(void *model)
{
	free(model);
}

static int64_t mp_n_embd_out(const void *model)
{
	return ((const mean_pool *)model)->n_out;
}

static int mp_embd_shape(const void *model, int w, int h, const rvi_image_limits *lim,
                         rvi_embd_shape *out, rvi_err *err)
{
	(void)model, (void)err;
	const int64_t gw = (w + CELL - 1) / CELL, gh = (h + CELL - 1) / CELL;
	*out = (rvi_embd_shape){gw * gh, gh, gw, 0, 0};
	return RV_OK;
}

static int mp_preprocess(const void *model, const rvi_image *img, const rvi_image_limits *lim,
                         rvi_pixels *out, rvi_err *err)
{
	static const float mean[3] = {0.5f, 0.5f, 0.5f}, std[3] = {0.5f, 0.5f, 0.5f};
	*out = (rvi_pixels){0};
	out->n_floats = (int64_t)3 * img->w * img->h;
	out->data = rvi_alloc((size_t)out->n_floats, sizeof(float));
	if (!out->data)
		return rvi_errorf(err, RV_ERR_NOMEM, "out of memory");
	out->w = img->w;
	out->h = img->h;
	rvi_image_normalize_chw(img, mean, std, out->data);
	return mp_embd_shape(model, img->w, img->h, lim, &out->shape, err);
}

/* The rows of an image in (w, h, planar pixels): shared by the family and
 * the test's own expectation. */
static void mean_pool_rows(const mean_pool *m, const float *px, int w, int h, float *out)
{
	const int gw = (w + CELL - 1) / CELL, gh = (h + CELL - 1) / CELL;
	for (int gy = 0; gy < gh; gy++)
		for (int gx = 0; gx < gw; gx++) {
			double sum[3] = {0, 0, 0};
			int n = 0;
			for (int y = gy * CELL; y < h && y < (gy + 1) * CELL; y++)
				for (int x = gx * CELL; x < w && x < (gx + 1) * CELL; x++, n++)
					for (int c = 0; c < 3; c++)
						sum[c] += px[((size_t)c * h + y) * w + x];
			float *row = out + ((size_t)gy * gw + gx) * m->n_out;
			for (int64_t d = 0; d < m->n_out; d++)
				row[d] = (float)((m->w[d * 3] * sum[0] + m->w[d * 3 + 1] * sum[1] +
				                  m->w[d * 3 + 2] * sum[2]) /
				                 n);
		}
}

static int mp_encode(const void *model, const rvi_pixels *px, int n_threads, float *out,
                     rvi_err *err)
{
	(void)n_threads, (void)err;
	mp_encodes++;
	mean_pool_rows(model, px->data, px->w, px->h, out);
	return RV_OK;
}

/* The rows framed by markers, the second half after the first: "(" rows
 * ")" where the rows split in two runs around "|". */
static int mp_layout(const void *model, const rvi_embd_shape *shape, rvi_image_layout *out,
                     rvi_err *err)
{
	(void)model;
	*out = (rvi_image_layout){0};
	out->pieces = calloc(5, sizeof(rvi_layout_piece));
	out->text = malloc(8);
	if (!out->pieces || !out->text) {
		rvi_image_layout_free(out);
		return rvi_errorf(err, RV_ERR_NOMEM, "out of memory");
	}
	memcpy(out->text, "(\0|\0)", 6);
	const int64_t half = shape->rows / 2;
	out->pieces[0] = (rvi_layout_piece){out->text, 0, 0, 0, 0};
	out->pieces[1] = (rvi_layout_piece){NULL, 0, half, 1, half};
	out->pieces[2] = (rvi_layout_piece){out->text + 2, 0, 0, 0, 0};
	out->pieces[3] = (rvi_layout_piece){NULL, half, shape->rows - half, 1, shape->rows - half};
	out->pieces[4] = (rvi_layout_piece){out->text + 4, 0, 0, 0, 0};
	out->n = 5;
	return RV_OK;
}

static const rvi_vision_arch mean_pool_arch = {
    .name = "test-mean-pool",
    .load = mp_load,
    .free = mp_free,
    .n_embd_out = mp_n_embd_out,
    .embd_shape = mp_embd_shape,
    .preprocess = mp_preprocess,
    .encode = mp_encode,
};

static const rvi_vision_arch framed_arch = {
    .name = "test-mean-pool",
    .load = mp_load,
    .free = mp_free,
    .n_embd_out = mp_n_embd_out,
    .embd_shape = mp_embd_shape,
    .preprocess = mp_preprocess,
    .encode = mp_encode,
    .layout = mp_layout,
};

/* ---- a mmproj file for it ------------------------------------------------ */

static void put_str(tu_buf *b, const char *s)
{
	tu_put_le(b, strlen(s), 8);
	tu_put(b, s, strlen(s));
}

/* GGUF v3: general.architecture = clip, clip.projector_type = type, one
 * F32 tensor mm.weight (D, 3). */
static char *write_mmproj(const char *dir, const char *type, int64_t d)
{
	tu_buf b = {0};
	tu_put(&b, "GGUF", 4);
	tu_put_le(&b, 3, 4);
	tu_put_le(&b, 1, 8); /* tensors */
	tu_put_le(&b, 2, 8); /* keys */
	put_str(&b, "general.architecture");
	tu_put_le(&b, 8, 4); /* string */
	put_str(&b, "clip");
	put_str(&b, "clip.projector_type");
	tu_put_le(&b, 8, 4);
	put_str(&b, type);
	put_str(&b, "mm.weight");
	tu_put_le(&b, 2, 4);
	tu_put_le(&b, 3, 8);
	tu_put_le(&b, (uint64_t)d, 8);
	tu_put_le(&b, 0, 4); /* F32 */
	tu_put_le(&b, 0, 8); /* offset */
	while (b.n % 32)
		tu_put(&b, "", 1);
	uint64_t rng = 7;
	for (int64_t i = 0; i < 3 * d; i++) {
		float v = tu_rand_uniform(&rng, -1.0f, 1.0f);
		tu_put(&b, &v, 4);
	}
	char *path = malloc(strlen(dir) + 64);
	sprintf(path, "%s/%s.gguf", dir, type);
	FILE *f = fopen(path, "wb");
	CHECK(f && fwrite(b.p, 1, b.n, f) == b.n, "cannot write %s", path);
	if (f)
		fclose(f);
	tu_buf_free(&b);
	return path;
}

/* ---- the family end to end -------------------------------------------- */

static int prompt_rows(rv_context *ctx, const char *image)
{
	const char *imgs[1] = {image};
	rv_prompt p = {"describe", imgs, 1, "llava", NULL};
	rv_gen_params gp = rv_gen_default_params();
	gp.n_predict = 1;
	gp.temp = 0;
	rv_result r;
	rv_status rc = rv_generate_prompt(ctx, &p, &gp, &r);
	CHECK(rc == RV_OK, "%s: %s", image, rv_context_error(ctx));
	const int n = rc == RV_OK ? r.n_prompt_tokens : -1;
	rv_result_free(&r);
	return n;
}

static void test_registered_family(const char *dir)
{
	char err[512];
	rv_model *m = NULL;
	rv_status rc =
	    rv_model_load(tu_data("tiny-llava-text-f32.gguf"), NULL, &m, err, sizeof(err));
	CHECK(rc == RV_OK, "load: %s", err);
	if (rc != RV_OK)
		return;
	char *path = write_mmproj(dir, "test-mean-pool", m->info.n_embd);

	/* the built-in registry does not know the family, and says which key */
	rc = rv_model_load_mmproj(m, path, err, sizeof(err));
	CHECK(rc == RV_ERR_UNSUPPORTED && strstr(err, "clip.projector_type") &&
	          strstr(err, "test-mean-pool") && strstr(err, "mlp"),
	      "builtin registry: %d %s", rc, err);
	CHECK(!rv_model_has_vision(m), "a refused projector stays attached");

	/* registered by the test, it loads, and a wrong width is refused */
	const rvi_vision_arch *const archs[] = {&mean_pool_arch};
	const rvi_vision_registry reg = {archs, 1};
	char *narrow = write_mmproj(dir, "test-mean-pool-narrow", m->info.n_embd + 1);
	rvi_err e = {0};
	/* the narrow file names the same family under another type name: the
	 * width check is the runtime's, whichever family */
	const rvi_vision_arch narrow_arch = {
	    "test-mean-pool-narrow", mp_load,       mp_free,   mp_n_embd_out,
	    mp_embd_shape,           mp_preprocess, mp_encode, NULL};
	const rvi_vision_arch *const narrow_archs[] = {&narrow_arch};
	const rvi_vision_registry narrow_reg = {narrow_archs, 1};
	CHECK(rvi_model_load_mmproj(m, narrow, &narrow_reg, &e) == RV_ERR_MODEL &&
	          strstr(e.msg, "embedding width"),
	      "width: %s", e.msg);
	CHECK(rvi_model_load_mmproj(m, path, &reg, &e) == RV_OK, "test registry: %s", e.msg);

	rv_context *ctx = NULL;
	rv_context_params cp = rv_context_default_params();
	cp.cache_dir = dir;
	rc = rv_context_new(m, &cp, &ctx, err, sizeof(err));
	CHECK(rc == RV_OK, "context: %s", err);
	if (rc == RV_OK) {
		/* rows follow each image's own size: 64x48 is 4x3 cells, 100x80
		 * is 7x5 */
		const int a = prompt_rows(ctx, tu_data("shapes_64x48.png"));
		const int b = prompt_rows(ctx, tu_data("shapes_100x80.jpg"));
		CHECK(b - a == 7 * 5 - 4 * 3, "prompt positions %d and %d", a, b);
		CHECK(mp_encodes == 2, "encoder ran %d times", mp_encodes);
		/* the second time round, the cache answers */
		CHECK(prompt_rows(ctx, tu_data("shapes_64x48.png")) == a, "same prompt");
		CHECK(mp_encodes == 2, "cache missed: encoder ran %d times", mp_encodes);

		/* the rows the prompt holds are the family's, computed here
		 * independently from the decoded image */
		const char *imgs[1] = {tu_data("shapes_100x80.jpg")};
		rv_prompt p = {"describe", imgs, 1, "llava", NULL};
		rvi_prompt pr;
		double ms;
		rc = rvi_prompt_prepare(ctx, &p, -1, &pr);
		if (rc == RV_OK)
			rc = rvi_prompt_encode_images(ctx, &pr, NULL, NULL, &ms);
		CHECK(rc == RV_OK, "prepare: %s", rv_context_error(ctx));
		rvi_image img = {0};
		rvi_err ie = {0};
		if (rc == RV_OK && rvi_image_load_file(imgs[0], NULL, true, &img, &ie) == RV_OK) {
			rvi_pixels px;
			CHECK(mp_preprocess(m->vision_model, &img, NULL, &px, &ie) == RV_OK, "%s",
			      ie.msg);
			const int64_t rows = pr.images[0].shape.rows, d = m->info.n_embd;
			float *want = malloc(sizeof(float) * (size_t)(rows * d));
			mean_pool_rows(m->vision_model, px.data, px.w, px.h, want);
			CHECK(rows == 35 &&
			          !memcmp(want, pr.embd[0], sizeof(float) * (size_t)(rows * d)),
			      "rows %lld differ from the family's", (long long)rows);
			free(want);
			rvi_pixels_free(&px);
		}
		rvi_image_free(&img);
		rvi_prompt_free(&pr);

		/* best-of-N over the image prefix */
		rv_gen_params gp = rv_gen_default_params();
		gp.n_predict = 6;
		gp.n_candidates = 3;
		gp.seed = 5;
		rv_result r;
		rc = rv_generate_prompt(ctx, &p, &gp, &r);
		CHECK(rc == RV_OK && r.n_candidates == 3, "best-of-3: %s", rv_context_error(ctx));
		rv_result_free(&r);
		rv_context_free(ctx);
	}
	rv_model_free(m);
	unlink(path);
	unlink(narrow);
	free(path);
	free(narrow);
}

/* A family's layout frames its rows with its markers, in its order. */
static void test_layout(const char *dir)
{
	char err[512];
	rv_model *m = NULL;
	if (rv_model_load(tu_data("tiny-llava-text-f32.gguf"), NULL, &m, err, sizeof(err)) !=
	    RV_OK) {
		CHECK(0, "load: %s", err);
		return;
	}
	char *path = write_mmproj(dir, "test-mean-pool", m->info.n_embd);
	const rvi_vision_arch *const archs[] = {&framed_arch};
	const rvi_vision_registry reg = {archs, 1};
	rvi_err e = {0};
	rv_context *ctx = NULL;
	rv_context_params cp = rv_context_default_params();
	cp.no_cache = 1;
	if (rvi_model_load_mmproj(m, path, &reg, &e) != RV_OK ||
	    rv_context_new(m, &cp, &ctx, err, sizeof(err)) != RV_OK) {
		CHECK(0, "framed family: %s %s", e.msg, err);
		rv_model_free(m);
		free(path);
		return;
	}
	const char *imgs[1] = {tu_data("shapes_64x48.png")};
	rv_prompt p = {"describe", imgs, 1, "llava", NULL};
	rvi_prompt pr;
	int rc = rvi_prompt_prepare(ctx, &p, -1, &pr);
	CHECK(rc == RV_OK, "prepare: %s", rv_context_error(ctx));
	if (rc == RV_OK) {
		/* find the first run of rows; the markers stand around the runs */
		int i = 0;
		while (i < pr.n_parts && pr.parts[i].tokens)
			i++;
		int32_t *want = NULL;
		int64_t n_want = 0;
		CHECK(rvi_tokenize(m->tok, "(", 1, false, true, &want, &n_want, &e) == RV_OK, "%s",
		      e.msg);
		CHECK(i >= 1 && i + 3 < pr.n_parts && pr.parts[i - 1].n == n_want &&
		          !memcmp(pr.parts[i - 1].tokens, want, sizeof(int32_t) * (size_t)n_want),
		      "the opening marker is not before the rows");
		CHECK(i + 3 < pr.n_parts && pr.parts[i].row0 == 0 && pr.parts[i].n == 6 &&
		          pr.parts[i + 1].tokens && pr.parts[i + 2].row0 == 6 &&
		          pr.parts[i + 2].n == 6 && pr.parts[i + 3].tokens,
		      "rows and markers out of order");
		free(want);
		/* and the prompt runs */
		double ms;
		rc = rvi_prompt_encode_images(ctx, &pr, NULL, NULL, &ms);
		if (rc == RV_OK)
			rc = rvi_prompt_prefill(ctx, &pr);
		CHECK(rc == RV_OK && ctx->kv->n_past == pr.n_positions, "prefill: %s",
		      rv_context_error(ctx));
		rvi_prompt_free(&pr);
	}
	rv_context_free(ctx);
	rv_model_free(m);
	unlink(path);
	free(path);
}

/* ---- batch rules --------------------------------------------------------- */

/* Logits (n_vocab floats per item) of prompt through a fresh cache, with
 * positions pos (or NULL) and rule attn. */
static void run(rv_context *ctx, const int32_t *tok, int n, const rvi_pos *pos, rvi_attn_rule attn,
                float *logits)
{
	rvi_kvcache_clear(ctx->kv);
	const rvi_batch b = {n, tok, NULL, NULL, pos, attn};
	CHECK(rvi_context_decode(ctx, &b, logits, true) == RV_OK, "decode: %s",
	      rv_context_error(ctx));
}

static void test_batch_rules(void)
{
	char err[512];
	rv_model *m = NULL;
	rv_context *ctx = NULL;
	if (rv_model_load(tu_data("stories260K.gguf"), NULL, &m, err, sizeof(err)) != RV_OK ||
	    rv_context_new(m, NULL, &ctx, err, sizeof(err)) != RV_OK) {
		CHECK(0, "load: %s", err);
		rv_model_free(m);
		return;
	}
	enum { N = 6 };
	const int32_t tok[N] = {1, 403, 407, 261, 378, 302};
	const int64_t nv = m->info.n_vocab;
	float *none = malloc(sizeof(float) * (size_t)(N * nv));
	float *same = malloc(sizeof(float) * (size_t)(N * nv));
	float *shifted = malloc(sizeof(float) * (size_t)(N * nv));
	float *bidi = malloc(sizeof(float) * (size_t)(N * nv));
	rvi_pos pos[N], swapped[N];
	for (int i = 0; i < N; i++) {
		pos[i] = (rvi_pos){i, i, i};
		/* items 1 and 2 trade places */
		const int j = i == 1 ? 2 : i == 2 ? 1 : i;
		swapped[i] = (rvi_pos){j, j, j};
	}
	run(ctx, tok, N, NULL, RVI_ATTN_CAUSAL, none);
	run(ctx, tok, N, pos, RVI_ATTN_CAUSAL, same);
	run(ctx, tok, N, swapped, RVI_ATTN_CAUSAL, shifted);
	run(ctx, tok, N, NULL, RVI_ATTN_BIDIRECTIONAL, bidi);
	const size_t row = sizeof(float) * (size_t)nv;
	CHECK(!memcmp(none, same, row * N), "explicit positions equal to the rows changed logits");
	CHECK(memcmp(none + nv, shifted + nv, row) != 0, "positions are ignored");
	CHECK(!memcmp(none, shifted, row), "item 0 changed with the positions of others");
	/* a span that sees itself whole: item 0 now depends on the last
	 * token, which causally it cannot */
	int32_t tok2[N];
	memcpy(tok2, tok, sizeof(tok));
	tok2[N - 1] = 300;
	run(ctx, tok2, N, NULL, RVI_ATTN_CAUSAL, same);
	CHECK(!memcmp(none, same, row), "causal item 0 saw a later token");
	run(ctx, tok2, N, NULL, RVI_ATTN_BIDIRECTIONAL, shifted);
	CHECK(memcmp(bidi, shifted, row) != 0, "bidirectional item 0 did not see the last token");
	CHECK(memcmp(none, bidi, row) != 0, "bidirectional item 0 unchanged");
	/* positions outside the context are refused, not read past */
	rvi_pos bad[1] = {{0, 0, (int32_t)ctx->kv->n_ctx}};
	rvi_kvcache_clear(ctx->kv);
	const rvi_batch b = {1, tok, NULL, NULL, bad, RVI_ATTN_CAUSAL};
	CHECK(rvi_context_decode(ctx, &b, none, false) == RV_ERR_INVALID_ARG &&
	          strstr(rv_context_error(ctx), "position"),
	      "position past the context: %s", rv_context_error(ctx));
	free(none);
	free(same);
	free(shifted);
	free(bidi);
	rv_context_free(ctx);
	rv_model_free(m);
}

/* M-RoPE: pair i turns with t, h or w by its section; with t = h = w it is
 * the 1-D rope. */
static void test_mrope(void)
{
	rvi_rope r1, r3;
	rvi_err err = {0};
	const int sections[3] = {2, 3, 3}; /* 8 pairs of 16 dims */
	CHECK(rvi_rope_init(&r1, 16, 10000.0, NULL, 64, &err) == RV_OK, "%s", err.msg);
	CHECK(rvi_rope_init(&r3, 16, 10000.0, sections, 64, &err) == RV_OK, "%s", err.msg);
	rvi_pos p = {7, 7, 7};
	CHECK(rvi_rope_prepare(&r1, &p, 1, &err) == RV_OK, "%s", err.msg);
	float buf[16];
	const float *a = rvi_rope_row(&r1, &p, NULL);
	const float *b = rvi_rope_row(&r3, &p, buf);
	CHECK(!memcmp(a, b, sizeof(buf)), "t = h = w differs from 1-D");
	rvi_pos q = {3, 11, 20};
	b = rvi_rope_row(&r3, &q, buf);
	for (int i = 0; i < 8; i++) {
		const int c = i < 2 ? 3 : i < 5 ? 11 : 20;
		const double theta = c * pow(10000.0, -2.0 * i / 16.0);
		CHECK(b[2 * i] == (float)cos(theta) && b[2 * i + 1] == (float)sin(theta),
		      "pair %d turns by the wrong component", i);
	}
	rvi_rope_free(&r1);
	rvi_rope_free(&r3);
}

/* Window attention: each window alone is full attention over its rows. */
static void test_attention_windows(void)
{
	enum { N = 13, H = 2, HD = 5, W = H * HD };
	const rvi_attn_heads heads = {H, H, HD, 0.4f};
	const int64_t bounds[] = {0, 4, 5, 13};
	float q[N * W], k[N * W], v[N * W], out[N * W], want[N * W];
	uint64_t rng = 11;
	for (int i = 0; i < N * W; i++) {
		q[i] = tu_rand_uniform(&rng, -1, 1);
		k[i] = tu_rand_uniform(&rng, -1, 1);
		v[i] = tu_rand_uniform(&rng, -1, 1);
	}
	float *scratch = rvi_alloc(rvi_attn_full_scratch(&heads, N, 2), sizeof(float));
	rvi_attn_full(&heads, q, k, v, out, N, bounds, 3, scratch, 2);
	for (int w = 0; w < 3; w++) {
		const int64_t lo = bounds[w], n = bounds[w + 1] - lo;
		rvi_attn_full(&heads, q + lo * W, k + lo * W, v + lo * W, want + lo * W, n, NULL, 0,
		              scratch, 1);
	}
	CHECK(!memcmp(out, want, sizeof(out)), "windows differ from separate full attention");
	/* and a window really bounds what a row sees */
	rvi_attn_full(&heads, q, k, v, want, N, NULL, 0, scratch, 1);
	CHECK(memcmp(out, want, sizeof(out)) != 0, "windows were ignored");
	free(scratch);
}

int main(void)
{
	char dir[] = "/tmp/rlaifv-test-arch.XXXXXX";
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 99;
	}
	test_registered_family(dir);
	test_layout(dir);
	test_batch_rules();
	test_mrope();
	test_attention_windows();
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return tu_finish("test_arch");
}
