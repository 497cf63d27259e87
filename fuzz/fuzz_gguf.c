/* fuzz_gguf.c: libFuzzer target for everything a model file reaches.
 *
 * The input is a whole GGUF file. Whatever parses goes on to each loader
 * that could be handed it (the text family general.architecture names, the
 * vocabulary, the vision family of clip.projector_type), and a file
 * that loads as a text model runs one token through a 4-position context, so
 * the forward pass meets hostile shapes and values too. Every loader must
 * fail with a message or succeed; the sanitizers catch the rest.
 *
 * The bytes are copied into a 64-byte aligned buffer of exactly their size:
 * real files are mmapped (page aligned), so this is the alignment the
 * loaders may rely on, while reads past the end still hit ASan's redzone. */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "models/arch.h"
#include "models/idefics3.h"
#include "models/minicpmv.h"
#include "src/gguf.h"
#include "src/tokenizer/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The shapes and prompt layout a loaded family m of a gives images of
 * these sizes. */
static void shapes(const rvi_vision_arch *a, void *m, const int (*sizes)[2], size_t n)
{
	rvi_err err;
	for (size_t i = 0; i < n; i++) {
		rvi_embd_shape sh;
		rvi_image_layout l;
		if (a->embd_shape(m, sizes[i][0], sizes[i][1], NULL, &sh, &err) == RV_OK &&
		    a->layout(m, &sh, &l, &err) == RV_OK)
			rvi_image_layout_free(&l);
	}
}

/* A small grey w x h image through preprocessing and the encoder. */
static void encode_small(const rvi_vision_arch *a, void *m, int w, int h)
{
	rvi_err err;
	rvi_image img = {0};
	if (rvi_image_new(w, h, &img, &err) != RV_OK)
		return;
	memset(img.rgb, 77, (size_t)w * h * 3);
	rvi_pixels px = {0};
	if (a->preprocess(m, &img, NULL, &px, &err) == RV_OK) {
		float *out = malloc((size_t)(px.shape.rows * a->n_embd_out(m)) * sizeof(float));
		if (out)
			(void)a->encode(m, &px, 1, out, &err);
		free(out);
	}
	rvi_pixels_free(&px);
	rvi_image_free(&img);
}

/* An idefics3 (SmolVLM) mmproj that loads: the shapes and prompt layout of
 * a few image sizes, and one small image through preprocessing and the
 * encoder when its tiles are few. */
static void run_idefics3(const rvi_gguf *g)
{
	const rvi_vision_arch *a = &rvi_idefics3_arch;
	rvi_err err = {0};
	void *m = NULL;
	if (a->load(g, &m, &err) != RV_OK)
		return;
	static const int sizes[][2] = {{1, 1}, {40, 84}, {200, 80}, {4096, 3}, {3, 4096}};
	shapes(a, m, sizes, sizeof(sizes) / sizeof(sizes[0]));
	/* the forward pass only for encoders the fuzzer can run often */
	const rvi_idefics3 *x = m;
	const rvi_vit_hparams *hp = &x->hp;
	if (hp->image_size <= 64 && hp->n_patches <= 256 && hp->n_embd <= 256 && hp->n_ff <= 1024 &&
	    hp->n_layer <= 4 && hp->n_mm_out <= 4096 && x->longest_edge <= 4 * hp->image_size)
		encode_small(a, m, 5, 3);
	a->free(m);
}

/* A resampler (MiniCPM-V) mmproj that loads: the slicing and prompt
 * layout of a few image sizes and slice counts, and a small image through
 * preprocessing, SigLIP and the resampler when the model is small. */
static void run_minicpmv(const rvi_gguf *g)
{
	const rvi_vision_arch *a = &rvi_minicpmv_arch;
	rvi_err err = {0};
	void *m = NULL;
	if (a->load(g, &m, &err) != RV_OK)
		return;
	/* the template follows clip.minicpmv_version (3, 4 or 6) */
	if (!a->chat_template_of(m))
		abort();
	static const int sizes[][2] = {{1, 1}, {200, 150}, {1344, 448}, {65535, 3}, {3, 65535}};
	for (int slices = 1; slices <= 9; slices += 8) {
		(void)a->set_max_slices(m, slices, &err);
		shapes(a, m, sizes, sizeof(sizes) / sizeof(sizes[0]));
	}
	const rvi_minicpmv *x = m;
	const rvi_vit_hparams *hp = &x->hp;
	if (hp->image_size <= 32 && hp->n_embd <= 256 && hp->n_ff <= 1024 && hp->n_layer <= 4 &&
	    hp->n_mm_out <= 1024 && x->n_query <= 64)
		encode_small(a, m, 9, 5);
	a->free(m);
}

/* A forward pass reads every weight once: keep it to files the fuzzer can
 * run thousands of times a minute. Weights are bounded by the file size
 * (tensors may not overlap), so this mostly bounds the arithmetic. */
#define MAX_FORWARD_WEIGHT_BYTES ((uint64_t)8 << 20)

static void run_text_model(const rvi_gguf *g)
{
	rvi_err err;
	const rvi_text_arch *a = NULL;
	void *m = NULL;
	if (rvi_text_arch_find(g, &a, &err) != RV_OK || a->load(g, &m, &err) != RV_OK) {
		/* The vocabulary loader must also survive files the model
		 * loader refuses. */
		rvi_tokenizer *t = NULL;
		if (rvi_tokenizer_load(&t, g, 0, &err) == RV_OK) {
			/* a vocabulary-only file (BPE merges and all) must also
			 * encode without harm once it loaded */
			static const char text[] =
			    "Hi <|im_end|> there's 123 \xe2\x96\x81 e\xcc\x81\xff";
			int32_t *ids = NULL;
			int64_t n = 0;
			if (rvi_tokenize(t, text, sizeof(text) - 1, false, true, &ids, &n, &err) ==
			    RV_OK)
				for (int64_t i = 0; i < n; i++)
					if (ids[i] < 0 || ids[i] >= rvi_tokenizer_n_vocab(t))
						abort();
			free(ids);
			rvi_tokenizer_free(t);
		}
		return;
	}
	const rvi_text_info info = a->info(m);
	rvi_tokenizer *t = NULL;
	int32_t tok = 0;
	if (rvi_tokenizer_load(&t, g, info.n_vocab, &err) == RV_OK) {
		int32_t *ids = NULL;
		int64_t n = 0;
		static const char text[] = "Hi <s> there\xe2\x96\x81\xff";
		if (rvi_tokenize(t, text, sizeof(text) - 1, rvi_tokenizer_add_bos(t), true, &ids,
		                 &n, &err) == RV_OK &&
		    n > 0)
			tok = ids[n - 1];
		free(ids);
		rvi_tokenizer_free(t);
	}
	void *st = NULL;
	if (info.weight_bytes <= MAX_FORWARD_WEIGHT_BYTES &&
	    a->state_new(m, 4, 2, 1, &st, &err) == RV_OK) {
		float *logits = malloc((size_t)info.n_vocab * sizeof(float));
		int32_t toks[2] = {tok, (int32_t)(info.n_vocab - 1)};
		/* (t, h, w) positions as an image's rows get them */
		const rvi_pos pos[2] = {{0, 0, 0}, {1, 1, 2}};
		const rvi_batch b = {2, toks, NULL, NULL, pos, RVI_ATTN_CAUSAL};
		if (logits)
			(void)a->decode(m, st, &b, logits, false, &err);
		free(logits);
		a->state_free(st);
	}
	a->free(m);
}

/* Every vision family's loader the file's projector type names, and the
 * rows it would make of a small image. */
static void run_vision_model(const rvi_gguf *g)
{
	rvi_err err;
	const rvi_vision_arch *a = NULL;
	void *m = NULL;
	if (rvi_vision_arch_find(g, rvi_vision_builtin(), &a, &err) != RV_OK ||
	    a->load(g, &m, &err) != RV_OK)
		return;
	rvi_embd_shape sh;
	(void)a->embd_shape(m, 64, 48, NULL, &sh, &err);
	a->free(m);
}

/* The vision family the file names, loaded again with pan-and-scan on
 * where it has it (small crops, so the sizes below get some): shapes and
 * layouts of a few image sizes, and a small image through preprocessing
 * and the encoder when the encoder is small (every family's model starts
 * with its rvi_vit_hparams). */
static void run_pan_and_scan(const rvi_gguf *g)
{
	static const int sizes[][2] = {{1, 1}, {40, 84}, {200, 80}, {4096, 3}, {3, 4096}};
	static const rvi_pan_and_scan pas = {true, 2, 4, 1.2};
	rvi_err err = {0};
	const rvi_vision_arch *a = NULL;
	void *m = NULL;
	if (rvi_vision_arch_find(g, rvi_vision_builtin(), &a, &err) != RV_OK ||
	    !a->set_pan_and_scan || a->load(g, &m, &err) != RV_OK)
		return;
	if (a->set_pan_and_scan(m, &pas, &err) == RV_OK)
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			rvi_embd_shape sh;
			rvi_image_layout l;
			if (a->embd_shape(m, sizes[i][0], sizes[i][1], NULL, &sh, &err) == RV_OK &&
			    a->layout(m, &sh, &l, &err) == RV_OK)
				rvi_image_layout_free(&l);
		}
	const rvi_vit_hparams *hp = m;
	rvi_image img = {0};
	rvi_pixels px = {0};
	if (hp->image_size <= 64 && hp->n_embd <= 256 && hp->n_ff <= 1024 && hp->n_layer <= 4 &&
	    hp->n_mm_out <= 4096 && rvi_image_new(9, 3, &img, &err) == RV_OK) {
		memset(img.rgb, 77, (size_t)9 * 3 * 3);
		float *out = NULL;
		if (a->preprocess(m, &img, NULL, &px, &err) == RV_OK &&
		    (out = malloc((size_t)(px.shape.rows * a->n_embd_out(m)) * sizeof(float))))
			(void)a->encode(m, &px, 1, out, &err);
		free(out);
	}
	rvi_pixels_free(&px);
	rvi_image_free(&img);
	a->free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	void *buf = NULL;
	if (size > 0 && posix_memalign(&buf, 64, size) != 0)
		return 0;
	if (size > 0)
		memcpy(buf, data, size);
	rvi_gguf *g = NULL;
	rvi_err err;
	if (rvi_gguf_open_memory(&g, buf, size, "fuzz.gguf", &err) == RV_OK) {
		/* The typed getters on whatever keys the file has. */
		for (uint64_t i = 0; i < g->n_kv && i < 64; i++) {
			char key[RVI_GGUF_MAX_KEY + 1];
			size_t n = (size_t)g->kv[i].key.len;
			memcpy(key, g->kv[i].key.ptr, n);
			key[n] = 0;
			uint32_t u;
			int64_t i64;
			float f;
			bool b;
			rvi_str s;
			const rvi_gguf_kv *arr;
			(void)rvi_gguf_get_u32(g, key, true, &u, &err);
			(void)rvi_gguf_get_i64(g, key, true, &i64, &err);
			(void)rvi_gguf_get_f32(g, key, true, &f, &err);
			(void)rvi_gguf_get_bool(g, key, true, &b, &err);
			(void)rvi_gguf_get_str(g, key, true, &s, &err);
			if (rvi_gguf_get_arr(g, key, true, RVI_GGUF_INT64, &arr, &err) == RV_OK &&
			    arr->arr_n > 0) {
				(void)rvi_gguf_arr_i64(arr, arr->arr_n - 1);
				(void)rvi_gguf_arr_f64(arr, 0);
			}
		}
		run_text_model(g);
		run_pan_and_scan(g);
		run_vision_model(g);
		run_idefics3(g);
		run_minicpmv(g);
		rvi_gguf_close(g);
	}
	free(buf);
	return 0;
}
