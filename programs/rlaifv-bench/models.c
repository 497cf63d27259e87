/* models.c: the random-weight models rlaifv-bench measures, with the
 * shapes of real ones, generated on first use and cached on disk: a 1.1B
 * LLaMA (TinyLlama's shapes: width 2048, 22 layers, FFN 5632, 32 heads, 4 KV
 * heads, a 32000-token SentencePiece vocabulary, context 2048) in each
 * weight type, and a CLIP ViT-L/14-336 projector as LLaVA-1.5's mmproj
 * files hold it (24 blocks of which the legacy converter stores 23, width
 * 1024, 16 heads, FFN 4096, 576 patches, MLP projector 1024 -> 2048 -> 2048
 * to feed the 2048-wide decoder). Random weights compute exactly as fast as
 * trained ones; their scales keep activations finite (see gguf_writer.c). */
#include "programs/rlaifv-bench/bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "programs/rlaifv-bench/gguf_writer.h"

/* Bumped whenever what is generated changes, so stale cached files are
 * not measured: it is part of every file name. */
#define GENERATOR_VERSION 1

/* Free space left on the disk after writing a model. */
#define DISK_MARGIN (256ull << 20)

static const struct {
	const char *name;
	rvb_variant v;
} variant_names[] = {
    {"F32", RVB_F32},       {"F16", RVB_F16},   {"Q8_0", RVB_Q8_0}, {"Q4_0", RVB_Q4_0},
    {"Q4_K_M", RVB_Q4_K_M}, {"Q5_K", RVB_Q5_K}, {"Q6_K", RVB_Q6_K},
};

int rvb_variant_parse(const char *s)
{
	for (size_t i = 0; i < sizeof(variant_names) / sizeof(variant_names[0]); i++)
		if (strcasecmp(s, variant_names[i].name) == 0)
			return (int)variant_names[i].v;
	return -1;
}

const char *rvb_variant_name(rvb_variant v)
{
	for (size_t i = 0; i < sizeof(variant_names) / sizeof(variant_names[0]); i++)
		if (variant_names[i].v == v)
			return variant_names[i].name;
	return "?";
}

/* mkdir -p of a path we were given or built. */
static int make_dirs(const char *path, rvi_err *err)
{
	char buf[4096];
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "cache directory path too long");
	for (char *p = buf + 1;; p++) {
		if (*p == '/' || *p == 0) {
			const char c = *p;
			*p = 0;
			if (mkdir(buf, 0755) != 0 && errno != EEXIST)
				return rvi_errorf(err, RV_ERR_IO, "cannot create %s: %s", buf,
				                  strerror(errno));
			*p = c;
			if (c == 0)
				break;
		}
	}
	return RV_OK;
}

int rvb_cache_dir(const rvb_opts *o, char *out, size_t size, rvi_err *err)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	int n;
	if (o->cache_dir)
		n = snprintf(out, size, "%s", o->cache_dir);
	else if (xdg && *xdg)
		n = snprintf(out, size, "%s/rlaifv/bench", xdg);
	else if (home && *home)
		n = snprintf(out, size, "%s/.cache/rlaifv/bench", home);
	else
		return rvi_errorf(err, RV_ERR_INVALID_ARG,
		                  "no cache directory: set XDG_CACHE_HOME or HOME, or give "
		                  "--cache-dir");
	if (n < 0 || (size_t)n >= size)
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "cache directory path too long");
	return make_dirs(out, err);
}

/* ---- the text model ------------------------------------------------------ */

enum {
	LM_EMBD = 2048,
	LM_LAYERS = 22,
	LM_FF = 5632,
	LM_HEADS = 32,
	LM_HEADS_KV = 4,
	LM_VOCAB = 32000,
	LM_CTX = 2048,
};

/* llama.cpp's Q4_K_M gives these layers' attn_v and ffn_down Q6_K: the
 * first and last eighth and every third one between. */
static bool more_bits(int il, int n_layer)
{
	return il < n_layer / 8 || il >= 7 * n_layer / 8 || (il - n_layer / 8) % 3 == 2;
}

/* The weight type of a matrix: one type throughout for every variant
 * (as llama-quantize --pure writes), except Q4_K_M, which is the mix
 * llama-quantize writes: Q4_K, with Q6_K for the output matrix and for
 * attn_v and ffn_down of the layers more_bits() picks. */
static enum rvi_type matrix_type(rvb_variant v, const char *kind, int il)
{
	static const enum rvi_type pure[RVB_N_VARIANTS] = {
	    [RVB_F32] = RVI_TYPE_F32,   [RVB_F16] = RVI_TYPE_F16,     [RVB_Q8_0] = RVI_TYPE_Q8_0,
	    [RVB_Q4_0] = RVI_TYPE_Q4_0, [RVB_Q4_K_M] = RVI_TYPE_Q4_K, [RVB_Q5_K] = RVI_TYPE_Q5_K,
	    [RVB_Q6_K] = RVI_TYPE_Q6_K};
	if (v != RVB_Q4_K_M)
		return pure[v];
	if (!strcmp(kind, "output"))
		return RVI_TYPE_Q6_K;
	if ((!strcmp(kind, "attn_v") || !strcmp(kind, "ffn_down")) && il >= 0 &&
	    more_bits(il, LM_LAYERS))
		return RVI_TYPE_Q6_K;
	return RVI_TYPE_Q4_K;
}

/* "<s>"-style specials, the 256 byte tokens, then synthetic pieces: the
 * letter strings a, b, ..., z, aa, ab, ... with and without the
 * SentencePiece space mark, so any text tokenizes (bytes as a fallback). */
static int vocab(char ***texts_out, float **scores_out, int32_t **types_out)
{
	char **texts = calloc(LM_VOCAB, sizeof(*texts));
	float *scores = calloc(LM_VOCAB, sizeof(*scores));
	int32_t *types = calloc(LM_VOCAB, sizeof(*types));
	char *arena = malloc((size_t)LM_VOCAB * 16);
	if (!texts || !scores || !types || !arena) {
		free(texts);
		free(scores);
		free(types);
		free(arena);
		return RV_ERR_NOMEM;
	}
	for (int i = 0; i < LM_VOCAB; i++) {
		char *s = arena + (size_t)i * 16;
		texts[i] = s;
		scores[i] = -(float)i;
		types[i] = 1; /* normal */
		if (i == 0) {
			strcpy(s, "<unk>");
			types[i] = 2;
		} else if (i <= 2) {
			strcpy(s, i == 1 ? "<s>" : "</s>");
			types[i] = 3; /* control */
		} else if (i < 3 + 256) {
			snprintf(s, 16, "<0x%02X>", i - 3);
			types[i] = 6; /* byte */
			scores[i] = 0;
		} else {
			const int k = i - 259;
			char letters[8];
			int n = 0;
			/* bijective base 26: every k gets a distinct string */
			for (long m = k / 2; m >= 0 && n < 7; m = m / 26 - 1)
				letters[n++] = (char)('a' + m % 26);
			int o = 0;
			if (k % 2 == 0) { /* U+2581, the SentencePiece space */
				memcpy(s, "\xe2\x96\x81", 3);
				o = 3;
			}
			for (int j = n - 1; j >= 0; j--)
				s[o++] = letters[j];
			s[o] = 0;
		}
	}
	*texts_out = texts;
	*scores_out = scores;
	*types_out = types;
	return RV_OK;
}

static void add_matrix(rvb_gguf_writer *w, const char *name, int64_t n_in, int64_t n_out,
                       enum rvi_type t)
{
	const int64_t ne[2] = {n_in, n_out};
	rvb_gguf_tensor_add(w, name, 2, ne, t, RVB_FILL_RANDOM);
}

static void add_vector(rvb_gguf_writer *w, const char *name, int64_t n, rvb_fill fill)
{
	const int64_t ne[1] = {n};
	rvb_gguf_tensor_add(w, name, 1, ne, RVI_TYPE_F32, fill);
}

static int build_text_model(rvb_gguf_writer *w, rvb_variant v)
{
	char **texts;
	float *scores;
	int32_t *types;
	if (vocab(&texts, &scores, &types) != RV_OK)
		return RV_ERR_NOMEM;
	char name[128];
	snprintf(name, sizeof(name), "rlaifv-bench random LLaMA 1.1B %s", rvb_variant_name(v));
	rvb_gguf_str(w, "general.architecture", "llama");
	rvb_gguf_str(w, "general.name", name);
	rvb_gguf_u32(w, "llama.context_length", LM_CTX);
	rvb_gguf_u32(w, "llama.embedding_length", LM_EMBD);
	rvb_gguf_u32(w, "llama.block_count", LM_LAYERS);
	rvb_gguf_u32(w, "llama.feed_forward_length", LM_FF);
	rvb_gguf_u32(w, "llama.attention.head_count", LM_HEADS);
	rvb_gguf_u32(w, "llama.attention.head_count_kv", LM_HEADS_KV);
	rvb_gguf_u32(w, "llama.rope.dimension_count", LM_EMBD / LM_HEADS);
	rvb_gguf_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
	rvb_gguf_f32(w, "llama.rope.freq_base", 10000.0f);
	rvb_gguf_str(w, "tokenizer.ggml.model", "llama");
	rvb_gguf_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)texts, LM_VOCAB);
	rvb_gguf_arr_f32(w, "tokenizer.ggml.scores", scores, LM_VOCAB);
	rvb_gguf_arr_i32(w, "tokenizer.ggml.token_type", types, LM_VOCAB);
	rvb_gguf_u32(w, "tokenizer.ggml.bos_token_id", 1);
	rvb_gguf_u32(w, "tokenizer.ggml.eos_token_id", 2);
	rvb_gguf_u32(w, "tokenizer.ggml.unknown_token_id", 0);
	rvb_gguf_bool(w, "tokenizer.ggml.add_bos_token", true);
	free(texts[0]); /* the arena */
	free(texts);
	free(scores);
	free(types);

	const int64_t d = LM_EMBD, hd = LM_EMBD / LM_HEADS, kv = LM_HEADS_KV * hd;
	add_matrix(w, "token_embd.weight", d, LM_VOCAB, matrix_type(v, "token_embd", -1));
	for (int il = 0; il < LM_LAYERS; il++) {
		char t[64];
#define TN(s) (snprintf(t, sizeof(t), "blk.%d." s, il), t)
		add_vector(w, TN("attn_norm.weight"), d, RVB_FILL_ONES);
		add_matrix(w, TN("attn_q.weight"), d, d, matrix_type(v, "attn_q", il));
		add_matrix(w, TN("attn_k.weight"), d, kv, matrix_type(v, "attn_k", il));
		add_matrix(w, TN("attn_v.weight"), d, kv, matrix_type(v, "attn_v", il));
		add_matrix(w, TN("attn_output.weight"), d, d, matrix_type(v, "attn_output", il));
		add_vector(w, TN("ffn_norm.weight"), d, RVB_FILL_ONES);
		add_matrix(w, TN("ffn_gate.weight"), d, LM_FF, matrix_type(v, "ffn_gate", il));
		add_matrix(w, TN("ffn_up.weight"), d, LM_FF, matrix_type(v, "ffn_up", il));
		add_matrix(w, TN("ffn_down.weight"), LM_FF, d, matrix_type(v, "ffn_down", il));
#undef TN
	}
	add_vector(w, "output_norm.weight", d, RVB_FILL_ONES);
	add_matrix(w, "output.weight", d, LM_VOCAB, matrix_type(v, "output", -1));
	return w->oom ? RV_ERR_NOMEM : RV_OK;
}

/* ---- the vision projector ------------------------------------------------- */

enum {
	VIT_IMAGE = 336,
	VIT_PATCH = 14,
	VIT_EMBD = 1024,
	VIT_FF = 4096,
	VIT_HEADS = 16,
	VIT_BLOCKS = 23, /* of 24: LLaVA-1.5 takes the second-to-last block's output */
	MM_HIDDEN = 2048,
	MM_OUT = LM_EMBD,
};

static int build_vision_model(rvb_gguf_writer *w, enum rvi_type t)
{
	/* OpenAI CLIP's normalisation, as converters store it */
	static const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
	static const float std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
	char name[128];
	snprintf(name, sizeof(name), "rlaifv-bench random CLIP ViT-L/14-336 %s", rvi_type_name(t));
	rvb_gguf_str(w, "general.architecture", "clip");
	rvb_gguf_str(w, "general.name", name);
	rvb_gguf_bool(w, "clip.has_text_encoder", false);
	rvb_gguf_bool(w, "clip.has_vision_encoder", true);
	rvb_gguf_bool(w, "clip.has_llava_projector", true);
	rvb_gguf_str(w, "clip.projector_type", "mlp");
	rvb_gguf_u32(w, "clip.vision.image_size", VIT_IMAGE);
	rvb_gguf_u32(w, "clip.vision.patch_size", VIT_PATCH);
	rvb_gguf_u32(w, "clip.vision.embedding_length", VIT_EMBD);
	rvb_gguf_u32(w, "clip.vision.feed_forward_length", VIT_FF);
	rvb_gguf_u32(w, "clip.vision.projection_dim", 768);
	rvb_gguf_u32(w, "clip.vision.attention.head_count", VIT_HEADS);
	rvb_gguf_f32(w, "clip.vision.attention.layer_norm_epsilon", 1e-5f);
	rvb_gguf_u32(w, "clip.vision.block_count", VIT_BLOCKS);
	rvb_gguf_arr_f32(w, "clip.vision.image_mean", mean, 3);
	rvb_gguf_arr_f32(w, "clip.vision.image_std", std, 3);
	rvb_gguf_bool(w, "clip.use_gelu", false);

	const int64_t W = VIT_EMBD, side = VIT_IMAGE / VIT_PATCH;
	const int64_t patch_ne[4] = {VIT_PATCH, VIT_PATCH, 3, W};
	rvb_gguf_tensor_add(w, "v.patch_embd.weight", 4, patch_ne, t, RVB_FILL_RANDOM);
	const int64_t cls_ne[1] = {W};
	rvb_gguf_tensor_add(w, "v.class_embd", 1, cls_ne, RVI_TYPE_F32, RVB_FILL_RANDOM);
	const int64_t pos_ne[2] = {W, side * side + 1};
	rvb_gguf_tensor_add(w, "v.position_embd.weight", 2, pos_ne, t, RVB_FILL_RANDOM);
	add_vector(w, "v.pre_ln.weight", W, RVB_FILL_ONES);
	add_vector(w, "v.pre_ln.bias", W, RVB_FILL_ZEROS);
	for (int il = 0; il < VIT_BLOCKS; il++) {
		char n[64];
#define TN(s) (snprintf(n, sizeof(n), "v.blk.%d." s, il), n)
		add_vector(w, TN("ln1.weight"), W, RVB_FILL_ONES);
		add_vector(w, TN("ln1.bias"), W, RVB_FILL_ZEROS);
		static const char *const proj[] = {"attn_q", "attn_k", "attn_v", "attn_out"};
		for (int i = 0; i < 4; i++) {
			char wn[64], bn[64];
			snprintf(wn, sizeof(wn), "v.blk.%d.%s.weight", il, proj[i]);
			snprintf(bn, sizeof(bn), "v.blk.%d.%s.bias", il, proj[i]);
			add_matrix(w, wn, W, W, t);
			add_vector(w, bn, W, RVB_FILL_ZEROS);
		}
		add_vector(w, TN("ln2.weight"), W, RVB_FILL_ONES);
		add_vector(w, TN("ln2.bias"), W, RVB_FILL_ZEROS);
		add_matrix(w, TN("ffn_up.weight"), W, VIT_FF, t);
		add_vector(w, TN("ffn_up.bias"), VIT_FF, RVB_FILL_ZEROS);
		add_matrix(w, TN("ffn_down.weight"), VIT_FF, W, t);
		add_vector(w, TN("ffn_down.bias"), W, RVB_FILL_ZEROS);
#undef TN
	}
	add_matrix(w, "mm.0.weight", W, MM_HIDDEN, t);
	add_vector(w, "mm.0.bias", MM_HIDDEN, RVB_FILL_ZEROS);
	add_matrix(w, "mm.2.weight", MM_HIDDEN, MM_OUT, t);
	add_vector(w, "mm.2.bias", MM_OUT, RVB_FILL_ZEROS);
	return w->oom ? RV_ERR_NOMEM : RV_OK;
}

/* ---- generation and the cache ------------------------------------------------ */

/* Writes w to path unless a file of exactly the size it would have is
 * there already: the name carries the generator version, so a file of the
 * right name and size is one this version wrote (a killed run leaves only
 * its temporary file, never a short file under the final name). */
int rvb_materialize(const rvb_gguf_writer *w, const char *dir, const char *path, uint64_t seed,
                    bool *generated, rvi_err *err)
{
	const uint64_t size = rvb_gguf_file_size(w);
	struct stat st;
	*generated = false;
	if (stat(path, &st) == 0 && (uint64_t)st.st_size == size)
		return RV_OK;

	struct statvfs fs;
	if (statvfs(dir, &fs) == 0) {
		const uint64_t avail = (uint64_t)fs.f_bavail * (uint64_t)fs.f_frsize;
		if (avail < size + DISK_MARGIN)
			return rvi_errorf(err, RV_ERR_IO,
			                  "not enough disk space in %s for %s: it needs %.2f GB "
			                  "(plus %.2f GB kept free) and %.2f GB are free; free "
			                  "some space, give another --cache-dir, or ask for "
			                  "fewer --types",
			                  dir, path, (double)size / 1e9, (double)DISK_MARGIN / 1e9,
			                  (double)avail / 1e9);
	}
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	rvb_log("generating %s (%.2f GB)...", path, (double)size / 1e9);
	const double t0 = rvi_now_ms();
	int rc = rvb_gguf_write(w, tmp, seed, err);
	if (rc != RV_OK)
		return rc;
	if (rename(tmp, path) != 0) {
		unlink(tmp);
		return rvi_errorf(err, RV_ERR_IO, "cannot rename %s to %s: %s", tmp, path,
		                  strerror(errno));
	}
	rvb_log("  written in %.1f s", (rvi_now_ms() - t0) / 1e3);
	*generated = true;
	return RV_OK;
}

int rvb_text_model(const char *dir, rvb_variant v, char *path, size_t size, bool *generated,
                   rvi_err *err)
{
	if ((size_t)snprintf(path, size, "%s/llama-1.1b-random-v%d-%s.gguf", dir, GENERATOR_VERSION,
	                     rvb_variant_name(v)) >= size)
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "cache directory path too long");
	rvb_gguf_writer w;
	rvb_gguf_init(&w);
	int rc = build_text_model(&w, v);
	if (rc != RV_OK)
		rc = rvi_errorf(err, rc, "out of memory describing the %s model",
		                rvb_variant_name(v));
	else
		rc = rvb_materialize(&w, dir, path, 0x11a3a0000ull + (uint64_t)v, generated, err);
	rvb_gguf_free(&w);
	return rc;
}

int rvb_vision_model(const char *dir, enum rvi_type t, char *path, size_t size, bool *generated,
                     rvi_err *err)
{
	if ((size_t)snprintf(path, size, "%s/clip-vit-l-14-336-random-v%d-%s.gguf", dir,
	                     GENERATOR_VERSION, rvi_type_name((int)t)) >= size)
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "cache directory path too long");
	rvb_gguf_writer w;
	rvb_gguf_init(&w);
	int rc = build_vision_model(&w, t);
	if (rc != RV_OK)
		rc = rvi_errorf(err, rc, "out of memory describing the vision model");
	else
		rc = rvb_materialize(&w, dir, path, 0xc11f0000ull + (uint64_t)t, generated, err);
	rvb_gguf_free(&w);
	return rc;
}
