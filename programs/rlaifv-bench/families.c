/* families.c: rlaifv-bench --family LIST: vision-language models of real
 * shapes, end to end. For each shape a random-weight text model and mmproj
 * are generated once (cached like the others), then, in one run: the
 * machine's sgemm rate, the image encode (preprocess + tower + projector,
 * timed through the family's vision table) beside the FLOPs it does, and,
 * through the public API with the image in the prompt, prefill, one
 * answer's decode and best-of-8's aggregate decode. Shapes:
 * - smolvlm-256m: SmolVLM-256M-Instruct (SmolLM2-135M: 576 wide, 30
 *   layers, FFN 1536, 9/3 heads; SigLIP-B/16 at 512 px: 768 wide, 12
 *   blocks, FFN 3072; pixel shuffle 4 -> 64 rows a tile).
 * - smolvlm2-2.2b: SmolVLM2-2.2B-Instruct (SmolLM2-1.7B: 2048 wide, 24
 *   layers, FFN 8192, 32 heads; SigLIP so400m/14 at 384 px: 1152 wide, 27
 *   blocks, FFN 4304; shuffle 3 -> 81 rows a tile).
 * - qwen25vl-3b: Qwen2.5-VL-3B-Instruct (Qwen2.5-3B: 2048 wide, 36 layers,
 *   FFN 11008, 16/2 heads, tied output, 151936 tokens; the ViT: 1280 wide,
 *   32 blocks with full attention every 8th, FFN 3420, 14-px patches,
 *   112-px windows; merger 5120 -> 2048).
 * - minicpmv-2.6: MiniCPM-V 2.6 (Qwen2-7B: 3584 wide, 28 layers, FFN
 *   18944, 28/4 heads, q/k/v biases, untied output, 151666 tokens; the
 *   resampler projector of minicpmv.c: SigLIP-400M at 448 px, 64 queries).
 *   --minicpmv runs this one after its encoder table.
 * Vocabularies are synthetic SentencePiece ones of the real size with the
 * family's marker tokens, so prompts have the real number of positions. */
#include "programs/rlaifv-bench/bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "programs/rlaifv-bench/gguf_writer.h"
#include "rlaifv.h"
#include "src/api_internal.h"
#include "src/image/image.h"

#define GENERATOR_VERSION 2 /* 2: projection_dim, use_gelu/use_silu, a "\n\n" piece */
#define MAX_POINTS        3

typedef struct family {
	const char *name, *label;
	/* text */
	const char *arch; /* llama, qwen2 or qwen2vl */
	int n_embd, n_layer, n_ff, n_head, n_head_kv, n_vocab;
	float rope_base;
	bool tied;
	enum rvi_type text_type;
	/* vision */
	const char *projector; /* idefics3, qwen2.5vl_merger or resampler */
	int v_image, v_patch, v_embd, v_ff, v_head, v_layer;
	int scale;      /* idefics3: pixel-shuffle factor */
	int wa_pattern; /* qwen2.5vl_merger: full attention every this many blocks */
	/* images measured: w x h, and for idefics3 the longest edge that
	 * gives the tiles (k x image size: k x k tiles and the global one) */
	struct {
		int w, h, longest_edge;
	} img[MAX_POINTS];
	int n_img;
	const char *const *specials; /* the marker tokens the prompts use */
	int n_specials;
} family;

static const char *const smolvlm_specials[] = {
    "<|im_start|>",
    "<end_of_utterance>",
    "<fake_token_around_image>",
    "<image>",
    "<global-img>",
    "<row_1_col_1>",
    "<row_1_col_2>",
    "<row_2_col_1>",
    "<row_2_col_2>",
    /* one piece in the real (GPT-2) vocabulary, which llama.cpp looks up
     * as a single token to open the global image */
    "\n\n",
};
static const char *const qwen_specials[] = {
    "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
};
static const char *const minicpmv_specials[] = {
    "<|im_start|>", "<|im_end|>", "<image>",    "</image>",
    "<slice>",      "</slice>",   "<image_id>", "</image_id>",
};
#define SPECIALS(a) a, (int)(sizeof(a) / sizeof(a[0]))

static const family families[] = {
    {"smolvlm-256m",
     "SmolVLM-256M",
     "llama",
     576,
     30,
     1536,
     9,
     3,
     49280,
     100000.0f,
     false,
     RVI_TYPE_Q8_0,
     "idefics3",
     512,
     16,
     768,
     3072,
     12,
     12,
     4,
     0,
     {{512, 512, 512}, {1024, 1024, 1024}},
     2,
     SPECIALS(smolvlm_specials)},
    {"smolvlm2-2.2b",
     "SmolVLM2-2.2B",
     "llama",
     2048,
     24,
     8192,
     32,
     32,
     49280,
     130000.0f,
     false,
     RVI_TYPE_Q4_0,
     "idefics3",
     384,
     14,
     1152,
     4304,
     16,
     27,
     3,
     0,
     {{384, 384, 384}},
     1,
     SPECIALS(smolvlm_specials)},
    {"qwen25vl-3b",
     "Qwen2.5-VL-3B",
     "qwen2vl",
     2048,
     36,
     11008,
     16,
     2,
     151936,
     1000000.0f,
     true,
     RVI_TYPE_Q4_0,
     "qwen2.5vl_merger",
     0,
     14,
     1280,
     3420,
     16,
     32,
     0,
     8,
     {{224, 224, 0}, {448, 224, 0}, {448, 448, 0}},
     3,
     SPECIALS(qwen_specials)},
    /* the vision side is minicpmv.c's projector; one 448-px image (a
     * single slice, 64 rows): --minicpmv times 9 slices itself */
    {"minicpmv-2.6",
     "MiniCPM-V-2.6",
     "qwen2",
     3584,
     28,
     18944,
     28,
     4,
     151666,
     1000000.0f,
     false,
     RVI_TYPE_Q4_0,
     "resampler",
     448,
     14,
     1152,
     4304,
     16,
     27,
     0,
     0,
     {{448, 448, 0}},
     1,
     SPECIALS(minicpmv_specials)},
};

static void mat(rvb_gguf_writer *w, const char *name, int64_t n_in, int64_t n_out, enum rvi_type t)
{
	const int64_t ne[2] = {n_in, n_out};
	rvb_gguf_tensor_add(w, name, 2, ne, t, RVB_FILL_RANDOM);
}

static void vec(rvb_gguf_writer *w, const char *name, int64_t n, rvb_fill fill)
{
	const int64_t ne[1] = {n};
	rvb_gguf_tensor_add(w, name, 1, ne, RVI_TYPE_F32, fill);
}

/* ---- the files -------------------------------------------------------------- */

static int build_text(rvb_gguf_writer *w, const family *f)
{
	char k[96];
#define KEY(s) (snprintf(k, sizeof(k), "%s.%s", f->arch, s), k)
	const bool qwen = !strcmp(f->arch, "qwen2vl"), bias = strcmp(f->arch, "llama") != 0;
	rvb_gguf_str(w, "general.architecture", f->arch);
	rvb_gguf_str(w, "general.name", f->label);
	rvb_gguf_u32(w, KEY("context_length"), 8192);
	rvb_gguf_u32(w, KEY("embedding_length"), (uint32_t)f->n_embd);
	rvb_gguf_u32(w, KEY("block_count"), (uint32_t)f->n_layer);
	rvb_gguf_u32(w, KEY("feed_forward_length"), (uint32_t)f->n_ff);
	rvb_gguf_u32(w, KEY("attention.head_count"), (uint32_t)f->n_head);
	rvb_gguf_u32(w, KEY("attention.head_count_kv"), (uint32_t)f->n_head_kv);
	rvb_gguf_f32(w, KEY("attention.layer_norm_rms_epsilon"), 1e-6f);
	rvb_gguf_f32(w, KEY("rope.freq_base"), f->rope_base);
	const int hd = f->n_embd / f->n_head;
	if (qwen) { /* Qwen2.5-VL's mrope_section: t, h, w pairs of the 64 */
		const int32_t sections[4] = {16, 24, 24, 0};
		rvb_gguf_arr_i32(w, KEY("rope.dimension_sections"), sections, 4);
	}
#undef KEY
	if (rvb_gguf_spm_vocab(w, f->n_vocab, f->specials, f->n_specials) != RV_OK)
		return RV_ERR_NOMEM;
	rvb_gguf_bool(w, "tokenizer.ggml.add_bos_token", false);

	const int64_t d = f->n_embd, kv = (int64_t)f->n_head_kv * hd;
	mat(w, "token_embd.weight", d, f->n_vocab, f->text_type);
	for (int il = 0; il < f->n_layer; il++) {
		char t[64];
#define TN(s) (snprintf(t, sizeof(t), "blk.%d." s, il), t)
		vec(w, TN("attn_norm.weight"), d, RVB_FILL_ONES);
		mat(w, TN("attn_q.weight"), d, d, f->text_type);
		mat(w, TN("attn_k.weight"), d, kv, f->text_type);
		mat(w, TN("attn_v.weight"), d, kv, f->text_type);
		if (bias) {
			vec(w, TN("attn_q.bias"), d, RVB_FILL_ZEROS);
			vec(w, TN("attn_k.bias"), kv, RVB_FILL_ZEROS);
			vec(w, TN("attn_v.bias"), kv, RVB_FILL_ZEROS);
		}
		mat(w, TN("attn_output.weight"), d, d, f->text_type);
		vec(w, TN("ffn_norm.weight"), d, RVB_FILL_ONES);
		mat(w, TN("ffn_gate.weight"), d, f->n_ff, f->text_type);
		mat(w, TN("ffn_up.weight"), d, f->n_ff, f->text_type);
		mat(w, TN("ffn_down.weight"), f->n_ff, d, f->text_type);
#undef TN
	}
	vec(w, "output_norm.weight", d, RVB_FILL_ONES);
	if (!f->tied)
		mat(w, "output.weight", d, f->n_vocab, f->text_type);
	return w->oom ? RV_ERR_NOMEM : RV_OK;
}

static int build_mmproj(rvb_gguf_writer *w, const family *f)
{
	if (!strcmp(f->projector, "resampler"))
		return rvb_minicpmv_build(w);
	const bool qwen = f->wa_pattern > 0;
	/* SigLIP's normalisation (0.5) or OpenAI CLIP's (Qwen2.5-VL) */
	static const float half[3] = {0.5f, 0.5f, 0.5f};
	static const float clip_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
	static const float clip_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
	rvb_gguf_str(w, "general.architecture", "clip");
	rvb_gguf_str(w, "general.name", f->label);
	rvb_gguf_bool(w, "clip.has_vision_encoder", true);
	rvb_gguf_str(w, "clip.projector_type", f->projector);
	rvb_gguf_u32(w, "clip.vision.image_size", (uint32_t)(qwen ? 560 : f->v_image));
	rvb_gguf_u32(w, "clip.vision.patch_size", (uint32_t)f->v_patch);
	rvb_gguf_u32(w, "clip.vision.embedding_length", (uint32_t)f->v_embd);
	rvb_gguf_u32(w, "clip.vision.feed_forward_length", (uint32_t)f->v_ff);
	rvb_gguf_u32(w, "clip.vision.attention.head_count", (uint32_t)f->v_head);
	rvb_gguf_f32(w, "clip.vision.attention.layer_norm_epsilon", 1e-6f);
	rvb_gguf_u32(w, "clip.vision.block_count", (uint32_t)f->v_layer);
	/* the converter writes these two; llama.cpp refuses a file without
	 * projection_dim (the text width the projector maps into) */
	rvb_gguf_u32(w, "clip.vision.projection_dim", (uint32_t)f->n_embd);
	rvb_gguf_bool(w, qwen ? "clip.use_silu" : "clip.use_gelu", true);
	rvb_gguf_arr_f32(w, "clip.vision.image_mean", qwen ? clip_mean : half, 3);
	rvb_gguf_arr_f32(w, "clip.vision.image_std", qwen ? clip_std : half, 3);
	const int64_t W = f->v_embd, p = f->v_patch;
	const int64_t patch_ne[4] = {p, p, 3, W};
	rvb_gguf_tensor_add(w, "v.patch_embd.weight", 4, patch_ne, RVI_TYPE_F16, RVB_FILL_RANDOM);
	if (qwen) {
		rvb_gguf_u32(w, "clip.vision.n_wa_pattern", (uint32_t)f->wa_pattern);
		rvb_gguf_tensor_add(w, "v.patch_embd.weight.1", 4, patch_ne, RVI_TYPE_F16,
		                    RVB_FILL_RANDOM);
	} else {
		rvb_gguf_u32(w, "clip.vision.projector.scale_factor", (uint32_t)f->scale);
		rvb_gguf_u32(w, "clip.vision.preproc_image_size", (uint32_t)f->v_image);
		vec(w, "v.patch_embd.bias", W, RVB_FILL_ZEROS);
		const int64_t side = f->v_image / p;
		const int64_t pos_ne[2] = {W, side * side};
		rvb_gguf_tensor_add(w, "v.position_embd.weight", 2, pos_ne, RVI_TYPE_F32,
		                    RVB_FILL_RANDOM);
	}
	for (int il = 0; il < f->v_layer; il++)
		rvb_gguf_vit_block(w, il, W, f->v_ff, RVI_TYPE_F16, qwen);
	vec(w, "v.post_ln.weight", W, RVB_FILL_ONES);
	if (qwen) {
		mat(w, "mm.0.weight", 4 * W, 4 * W, RVI_TYPE_F16);
		vec(w, "mm.0.bias", 4 * W, RVB_FILL_ZEROS);
		mat(w, "mm.2.weight", 4 * W, f->n_embd, RVI_TYPE_F16);
		vec(w, "mm.2.bias", f->n_embd, RVB_FILL_ZEROS);
	} else {
		vec(w, "v.post_ln.bias", W, RVB_FILL_ZEROS);
		mat(w, "mm.model.fc.weight", W * f->scale * f->scale, f->n_embd, RVI_TYPE_F16);
	}
	return w->oom ? RV_ERR_NOMEM : RV_OK;
}

static int family_files(const char *dir, const family *f, char *text, char *mmproj, size_t size,
                        rvi_err *err)
{
	int rc = RV_OK;
	for (int which = 0; rc == RV_OK && which < 2; which++) {
		char *path = which ? mmproj : text;
		if ((size_t)snprintf(
		        path, size, "%s/%s-random-v%d-%s.gguf", dir, f->name, GENERATOR_VERSION,
		        which ? "mmproj-F16" : rvi_type_name((int)f->text_type)) >= size)
			return rvi_errorf(err, RV_ERR_INVALID_ARG, "cache directory path too long");
		rvb_gguf_writer w;
		rvb_gguf_init(&w);
		rc = which ? build_mmproj(&w, f) : build_text(&w, f);
		bool made;
		if (rc != RV_OK)
			rc = rvi_errorf(err, rc, "out of memory describing %s", f->name);
		else
			rc = rvb_materialize(&w, dir, path, 0xfa3100ull + (uint64_t)which, &made,
			                     err);
		rvb_gguf_free(&w);
	}
	return rc;
}

int rvb_write_image(const char *path, int w, int h, rvi_err *err)
{
	FILE *fp = fopen(path, "wb");
	if (!fp)
		return rvi_errorf(err, RV_ERR_IO, "cannot write %s", path);
	fprintf(fp, "P6\n%d %d\n255\n", w, h);
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++) {
			const unsigned char px[3] = {(unsigned char)(x * 255 / w),
			                             (unsigned char)(y * 255 / h),
			                             (unsigned char)((x ^ y) & 255)};
			fwrite(px, 1, 3, fp);
		}
	return fclose(fp) == 0 ? RV_OK : rvi_errorf(err, RV_ERR_IO, "cannot write %s", path);
}

/* ---- FLOPs ------------------------------------------------------------------ */

/* Multiply-adds x 2 of the encode of px: every linear map, the attention
 * products (QK^T and AV, per window where the family has windows), the
 * patch embedding and the projector. Norms and activations are left out. */
static double encode_flops(const family *f, const rvi_pixels *px)
{
	const double W = f->v_embd, F = f->v_ff, D = f->n_embd, p = f->v_patch;
	if (!strcmp(f->projector, "resampler"))
		return rvb_minicpmv_flops(px);
	if (f->wa_pattern == 0) { /* SigLIP per tile + pixel shuffle + linear */
		const double n = (double)(f->v_image / f->v_patch) * (f->v_image / f->v_patch);
		const double tiles = (double)px->shape.tiles_h * px->shape.tiles_w + 1;
		const double block = 2 * n * (4 * W * W + 2 * W * F) + 4 * n * n * W;
		return tiles * (f->v_layer * block + 2 * n * 3 * p * p * W + 2 * n * W * D);
	}
	/* Qwen2.5-VL: windows of 4 x 4 merged tokens over the merged grid */
	const int64_t mh = px->shape.grid_h, mw = px->shape.grid_w;
	const double n = 4.0 * (double)(mh * mw);
	double win = 0; /* sum over windows of (patches in it)^2 */
	for (int64_t y = 0; y < mh; y += 4)
		for (int64_t x = 0; x < mw; x += 4) {
			const double k =
			    4.0 * (double)((mh - y < 4 ? mh - y : 4) * (mw - x < 4 ? mw - x : 4));
			win += k * k;
		}
	const int n_full = f->v_layer / f->wa_pattern;
	const double blocks = f->v_layer * 2 * n * (4 * W * W + 3 * W * F) +
	                      (f->v_layer - n_full) * 4 * win * W + n_full * 4 * n * n * W;
	const double merger = 2 * (n / 4) * (4 * W * 4 * W + 4 * W * D);
	return blocks + 2 * n * 6 * p * p * W + merger;
}

/* ---- the measurements --------------------------------------------------------- */

typedef struct point {
	int w, h, tiles, rows;
	double flops;
	rvb_stats ms;
} point;

typedef struct fam_result {
	const family *f;
	point img[MAX_POINTS];
	int positions;
	rvb_stats prefill_ms, decode_tps, bon_tps;
	int decode_tokens, bon_tokens;
} fam_result;

static int time_encode(const rvb_opts *o, rv_model *m, const char *image, point *pt,
                       const family *f, rvi_err *err)
{
	rvi_image img;
	int rc = rvi_image_load_file(image, NULL, false, &img, err);
	if (rc != RV_OK)
		return rc;
	double ms[RVB_MAX_REPS];
	float *out = NULL;
	for (int rep = -1; rc == RV_OK && rep < o->reps; rep++) { /* -1: warm-up */
		rvi_pixels px;
		const double t0 = rvi_now_ms();
		rc = m->vision->preprocess(m->vision_model, &img, NULL, &px, err);
		if (rc != RV_OK)
			break;
		if (!out)
			out = rvi_alloc(
			    (size_t)(px.shape.rows * m->vision->n_embd_out(m->vision_model)),
			    sizeof(float));
		rc = out ? m->vision->encode(m->vision_model, &px, o->n_threads, out, err)
		         : rvi_errorf(err, RV_ERR_NOMEM, "out of memory");
		if (rep >= 0)
			ms[rep] = rvi_now_ms() - t0;
		/* idefics3: the tiles and the global image; Qwen2.5-VL: the
		 * 112-pixel windows (4 x 4 merged tokens); MiniCPM-V: the
		 * slices and the overview, 64 rows each */
		pt->tiles = f->wa_pattern
		                ? (int)(((px.shape.grid_h + 3) / 4) * ((px.shape.grid_w + 3) / 4))
		                : px.shape.tiles_h * px.shape.tiles_w + 1;
		if (!strcmp(f->projector, "resampler"))
			pt->tiles = (int)(px.shape.rows / 64);
		pt->rows = (int)px.shape.rows;
		pt->flops = encode_flops(f, &px);
		rvi_pixels_free(&px);
	}
	free(out);
	rvi_image_free(&img);
	if (rc == RV_OK)
		pt->ms = rvb_stats_of(ms, o->reps);
	return rc;
}

/* One image prompt through the public API: N candidates of n_predict
 * tokens (N = 1, n_predict = 0: the prefill alone). */
static int generate(rv_context *ctx, const char *image, int n, int n_predict, int seed,
                    rv_result *res, rvi_err *err)
{
	const char *imgs[1] = {image};
	rv_prompt p = {"Describe this image in detail.", imgs, 1, NULL, NULL, 0, 0};
	rv_gen_params gp = rv_gen_default_params();
	gp.n_predict = n_predict;
	gp.ignore_eos = 1;
	gp.temp = 0.8f;
	gp.n_candidates = n;
	gp.seed = (uint64_t)seed;
	const rv_status st = rv_generate_prompt(ctx, &p, &gp, res);
	return st == RV_OK ? RV_OK : rvi_errorf(err, st, "%s", rv_context_error(ctx));
}

static int measure_family(const rvb_opts *o, const char *dir, const family *f, fam_result *r,
                          rvi_err *err)
{
	char text[4096], mmproj[4096], image[4200], ebuf[RVI_ERR_MSG_MAX];
	memset(r, 0, sizeof(*r));
	r->f = f;
	int rc = family_files(dir, f, text, mmproj, sizeof(text), err);
	if (rc != RV_OK)
		return rc;
	rv_model *m = NULL;
	rv_context *ctx = NULL;
	rv_model_params mp = rv_model_default_params();
	mp.n_threads = o->n_threads;
	if (rv_model_load(text, &mp, &m, ebuf, sizeof(ebuf)) != RV_OK ||
	    rv_model_load_mmproj(m, mmproj, ebuf, sizeof(ebuf)) != RV_OK) {
		rv_model_free(m);
		return rvi_errorf(err, RV_ERR_MODEL, "%s", ebuf);
	}
	for (int i = 0; rc == RV_OK && i < f->n_img; i++) {
		point *pt = &r->img[i];
		pt->w = f->img[i].w;
		pt->h = f->img[i].h;
		snprintf(image, sizeof(image), "%s/%s-%dx%d.ppm", dir, f->name, pt->w, pt->h);
		rvb_log("%s: image encode %dx%d", f->name, pt->w, pt->h);
		if ((rc = rvb_write_image(image, pt->w, pt->h, err)) == RV_OK &&
		    f->img[i].longest_edge &&
		    rv_model_set_image_longest_edge(m, f->img[i].longest_edge, ebuf,
		                                    sizeof(ebuf)) != RV_OK)
			rc = rvi_errorf(err, RV_ERR_MODEL, "%s", ebuf);
		if (rc == RV_OK)
			rc = time_encode(o, m, image, pt, f, err);
	}
	/* the prompt: the first image (its rows then come from the embedding
	 * cache after the warm-up, so prefill and decode are timed alone) */
	rv_context_params cp = rv_context_default_params();
	cp.n_threads = o->n_threads;
	cp.cache_dir = dir;
	snprintf(image, sizeof(image), "%s/%s-%dx%d.ppm", dir, f->name, f->img[0].w, f->img[0].h);
	if (rc == RV_OK && f->img[0].longest_edge &&
	    rv_model_set_image_longest_edge(m, f->img[0].longest_edge, ebuf, sizeof(ebuf)) != RV_OK)
		rc = rvi_errorf(err, RV_ERR_MODEL, "%s", ebuf);
	if (rc == RV_OK && rv_context_new(m, &cp, &ctx, ebuf, sizeof(ebuf)) != RV_OK)
		rc = rvi_errorf(err, RV_ERR_INTERNAL, "%s", ebuf);
	rv_result res;
	if (rc == RV_OK && (rc = generate(ctx, image, 1, 0, 0, &res, err)) == RV_OK)
		rv_result_free(&res); /* warm-up: encodes the image into the cache */
	double pre[RVB_MAX_REPS], dec[RVB_MAX_REPS], bon[RVB_MAX_REPS];
	for (int rep = 0; rc == RV_OK && rep < o->reps; rep++) {
		rvb_log("%s: prefill, decode, best-of-8: repetition %d of %d", f->name, rep + 1,
		        o->reps);
		if ((rc = generate(ctx, image, 1, 0, rep, &res, err)))
			break;
		pre[rep] = res.timings.prefill_ms;
		r->positions = res.timings.prefill_tokens;
		rv_result_free(&res);
		if ((rc = generate(ctx, image, 1, o->n_predict, rep, &res, err)))
			break;
		dec[rep] = rvb_per_second(res.timings.decode_tokens, res.timings.decode_ms);
		r->decode_tokens = res.timings.decode_tokens;
		rv_result_free(&res);
		if ((rc = generate(ctx, image, 8, o->n_predict, rep, &res, err)))
			break;
		bon[rep] = rvb_per_second(res.timings.decode_tokens, res.timings.decode_ms);
		r->bon_tokens = res.timings.decode_tokens;
		rv_result_free(&res);
	}
	if (rc == RV_OK) {
		r->prefill_ms = rvb_stats_of(pre, o->reps);
		r->decode_tps = rvb_stats_of(dec, o->reps);
		r->bon_tps = rvb_stats_of(bon, o->reps);
	}
	rv_context_free(ctx);
	rv_model_free(m);
	return rc;
}

static void print_family(FILE *fp, const fam_result *r, double sgemm)
{
	const family *f = r->f;
	fprintf(fp,
	        "\n%s-shaped (random weights): text %s %dx%d FFN %d, %d/%d heads, %d tokens, %s;\n"
	        "  vision %s %dx%d FFN %d, F16\n",
	        f->label, f->arch, f->n_embd, f->n_layer, f->n_ff, f->n_head, f->n_head_kv,
	        f->n_vocab, rvi_type_name((int)f->text_type), f->projector, f->v_embd, f->v_layer,
	        f->v_ff);
	fprintf(fp, "  %-12s %6s %6s %10s %10s %10s %9s %8s\n", "image",
	        f->wa_pattern ? "windows" : "tiles", "rows", "best s", "median s", "GFLOP",
	        "GFLOP/s", "x sgemm");
	for (int i = 0; i < f->n_img; i++) {
		const point *p = &r->img[i];
		char size[32];
		snprintf(size, sizeof(size), "%dx%d", p->w, p->h);
		const double gf = rvb_gflops(p->flops, p->ms.min);
		fprintf(fp, "  %-12s %6d %6d %10.3f %10.3f %10.1f %9.1f %8.2f\n", size, p->tiles,
		        p->rows, p->ms.min / 1e3, p->ms.median / 1e3, p->flops / 1e9, gf,
		        gf / sgemm);
	}
	fprintf(fp,
	        "  prompt with the first image: %d positions; prefill %.3f s (best) %.1f "
	        "positions/s\n",
	        r->positions, r->prefill_ms.min / 1e3,
	        rvb_per_second(r->positions, r->prefill_ms.min));
	fprintf(fp, "  decode (1 answer, %d tokens): %.2f tokens/s (best), %.2f (median)\n",
	        r->decode_tokens, r->decode_tps.max, r->decode_tps.median);
	fprintf(fp,
	        "  best-of-8 (%d tokens in all): %.2f tokens/s aggregate (best), %.2f (median), "
	        "%.2fx one answer\n",
	        r->bon_tokens, r->bon_tps.max, r->bon_tps.median,
	        rvb_ratio(r->bon_tps.median, r->decode_tps.median));
}

int rvb_bench_families(const rvb_opts *o)
{
	const family *want[sizeof(families) / sizeof(families[0])];
	int n = 0;
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", o->families);
	for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		const family *f = NULL;
		for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
			if (!strcmp(tok, families[i].name) || !strcmp(tok, "all"))
				f = &families[i];
		if (!f || n == (int)(sizeof(want) / sizeof(want[0]))) {
			fprintf(stderr,
			        "rlaifv-bench: --family: '%s' is not smolvlm-256m, smolvlm2-2.2b, "
			        "qwen25vl-3b or minicpmv-2.6\n",
			        tok);
			return BENCH_EXIT_USAGE;
		}
		if (!strcmp(tok, "all")) {
			for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
				want[n++] = &families[i];
			break;
		}
		want[n++] = f;
	}
	char ebuf[512], dir[4096];
	rvi_err err = {0};
	if (rv_select_kernels(NULL, ebuf, sizeof(ebuf)) != RV_OK) {
		fprintf(stderr, "rlaifv-bench: %s\n", ebuf);
		return BENCH_EXIT_USAGE;
	}
	fam_result *res = calloc((size_t)n, sizeof(*res));
	rvb_limits lim;
	memset(&lim, 0, sizeof(lim));
	int rc = res ? rvb_cache_dir(o, dir, sizeof(dir), &err)
	             : rvi_errorf(&err, RV_ERR_NOMEM, "out of memory");
	/* every file first: writing them must not disturb a measurement */
	for (int i = 0; rc == RV_OK && i < n; i++) {
		char t[4096], m[4096];
		if ((rc = family_files(dir, want[i], t, m, sizeof(t), &err)) == RV_OK &&
		    o->generate_only)
			printf("%s\n%s\n", t, m);
	}
	if (rc == RV_OK && o->generate_only) {
		free(res);
		return fflush(stdout) == 0 ? BENCH_EXIT_OK : BENCH_EXIT_RUNTIME;
	}
	if (rc == RV_OK)
		rc = rvb_measure_limits(o, &lim, &err);
	if (rc == RV_OK) {
		char cpu[256] = "";
		FILE *ci = fopen("/proc/cpuinfo", "r");
		for (char line[512]; ci && fgets(line, sizeof(line), ci);)
			if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
				snprintf(cpu, sizeof(cpu), "%s", strchr(line, ':') + 2);
				cpu[strcspn(cpu, "\n")] = 0;
				break;
			}
		if (ci)
			fclose(ci);
		printf("rlaifv-bench --family: %s, %d threads, kernels %s, BLAS %s\n", cpu,
		       o->n_threads, rv_kernel_set(), rv_blas_info());
		printf("image encode: preprocessing + tower + projector, %d repetitions after a "
		       "warm-up; GFLOP/s and x sgemm from the best, against the median sgemm so "
		       "far\n",
		       o->reps);
	}
	/* each family's figures as soon as they are measured: a long run that
	 * fails later keeps them */
	for (int i = 0; rc == RV_OK && i < n; i++) {
		if ((rc = measure_family(o, dir, want[i], &res[i], &err)) != RV_OK)
			break;
		printf("sgemm (n = %d, %d samples so far): median %.1f GFLOP/s, best %.1f\n",
		       lim.sgemm_n, lim.n_samples, lim.sgemm_gflops.median, lim.sgemm_gflops.max);
		print_family(stdout, &res[i], lim.sgemm_gflops.median);
		fflush(stdout);
		rc = rvb_sample_limits(o, &lim, &err);
	}
	if (rc != RV_OK) {
		fprintf(stderr, "rlaifv-bench: %s\n", err.msg);
		free(res);
		return rc == RV_ERR_MODEL || rc == RV_ERR_IO ? BENCH_EXIT_MODEL
		                                             : BENCH_EXIT_RUNTIME;
	}
	free(res);
	return fflush(stdout) == 0 ? BENCH_EXIT_OK : BENCH_EXIT_RUNTIME;
}
