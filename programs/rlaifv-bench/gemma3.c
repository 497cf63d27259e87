/* gemma3.c: rlaifv-bench --gemma3: the text half of Gemma 3 4B on this
 * machine, with a random model of its shapes (width 2560, 34 layers of
 * which 29 attend within a 1024-token window, 8 query and 4 KV heads of
 * 256, FFN 10240, a 262144-token vocabulary tied to the output, context
 * 131072) in Q4_0, generated once and cached like the other models:
 * prefill, decode at several cache depths, best-of-N, and the KV cache's
 * bytes at 1k, 8k and 32k positions next to a cache that keeps every
 * row and to llama.cpp's (computed from its sizing rule, not measured).
 * Prints its own table. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/arch.h"
#include "programs/rlaifv-bench/bench.h"
#include "programs/rlaifv-bench/gguf_writer.h"
#include "rlaifv.h"
#include "src/api_internal.h"
#include "src/kvcache.h"

enum {
	G_EMBD = 2560,
	G_LAYERS = 34,
	G_FF = 10240,
	G_HEADS = 8,
	G_HEADS_KV = 4,
	G_HEAD_DIM = 256,
	G_VOCAB = 262144,
	G_CTX = 131072,
	G_WINDOW = 1024,
	G_PATTERN = 6, /* every 6th layer global */
	G_SPECIALS = 6 + 256,
	G_VERSION = 1, /* bumped when what is generated changes */
};

/* <pad> <eos> <bos> <unk> <start_of_turn> <end_of_turn>, the 256 byte
 * tokens, then the synthetic pieces of the other generated models. */
static int gemma_vocab(char ***texts_out, float **scores_out, int32_t **types_out)
{
	static const char *const specials[6] = {"<pad>", "<eos>",           "<bos>",
	                                        "<unk>", "<start_of_turn>", "<end_of_turn>"};
	char **texts = calloc(G_VOCAB, sizeof(*texts));
	float *scores = calloc(G_VOCAB, sizeof(*scores));
	int32_t *types = calloc(G_VOCAB, sizeof(*types));
	char *arena = malloc((size_t)G_VOCAB * 16);
	if (!texts || !scores || !types || !arena) {
		free(texts);
		free(scores);
		free(types);
		free(arena);
		return RV_ERR_NOMEM;
	}
	for (int i = 0; i < G_VOCAB; i++) {
		char *s = arena + (size_t)i * 16;
		texts[i] = s;
		scores[i] = -(float)i;
		types[i] = 1;
		if (i < 6) {
			snprintf(s, 16, "%s", specials[i]);
			types[i] = i == 3 ? 2 : 3; /* unknown, control */
			continue;
		}
		if (i < G_SPECIALS) {
			snprintf(s, 16, "<0x%02X>", i - 6);
			types[i] = 6;
			scores[i] = 0;
			continue;
		}
		rvb_piece_text(i - G_SPECIALS, s);
	}
	*texts_out = texts;
	*scores_out = scores;
	*types_out = types;
	return RV_OK;
}

static void matrix(rvb_gguf_writer *w, const char *name, int64_t n_in, int64_t n_out)
{
	const int64_t ne[2] = {n_in, n_out};
	rvb_gguf_tensor_add(w, name, 2, ne, RVI_TYPE_Q4_0, RVB_FILL_RANDOM);
}

/* a norm: ones, which is HF's 1 + w with w = 0 */
static void norm(rvb_gguf_writer *w, const char *name, int64_t n)
{
	const int64_t ne[1] = {n};
	rvb_gguf_tensor_add(w, name, 1, ne, RVI_TYPE_F32, RVB_FILL_ONES);
}

static int build(rvb_gguf_writer *w)
{
	char **texts;
	float *scores;
	int32_t *types;
	if (gemma_vocab(&texts, &scores, &types) != RV_OK)
		return RV_ERR_NOMEM;
	rvb_gguf_str(w, "general.architecture", "gemma3");
	rvb_gguf_str(w, "general.name", "rlaifv-bench random Gemma 3 4B text Q4_0");
	rvb_gguf_u32(w, "gemma3.context_length", G_CTX);
	rvb_gguf_u32(w, "gemma3.embedding_length", G_EMBD);
	rvb_gguf_u32(w, "gemma3.block_count", G_LAYERS);
	rvb_gguf_u32(w, "gemma3.feed_forward_length", G_FF);
	rvb_gguf_u32(w, "gemma3.attention.head_count", G_HEADS);
	rvb_gguf_u32(w, "gemma3.attention.head_count_kv", G_HEADS_KV);
	rvb_gguf_u32(w, "gemma3.attention.key_length", G_HEAD_DIM);
	rvb_gguf_u32(w, "gemma3.attention.value_length", G_HEAD_DIM);
	rvb_gguf_u32(w, "gemma3.attention.sliding_window", G_WINDOW);
	rvb_gguf_f32(w, "gemma3.attention.layer_norm_rms_epsilon", 1e-6f);
	rvb_gguf_f32(w, "gemma3.rope.freq_base", 1e6f);
	rvb_gguf_f32(w, "gemma3.rope.freq_base_swa", 1e4f);
	rvb_gguf_str(w, "gemma3.rope.scaling.type", "linear");
	rvb_gguf_f32(w, "gemma3.rope.scaling.factor", 8.0f);
	rvb_gguf_str(w, "tokenizer.ggml.model", "llama");
	rvb_gguf_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)texts, G_VOCAB);
	rvb_gguf_arr_f32(w, "tokenizer.ggml.scores", scores, G_VOCAB);
	rvb_gguf_arr_i32(w, "tokenizer.ggml.token_type", types, G_VOCAB);
	rvb_gguf_u32(w, "tokenizer.ggml.bos_token_id", 2);
	rvb_gguf_u32(w, "tokenizer.ggml.eos_token_id", 1);
	rvb_gguf_u32(w, "tokenizer.ggml.unknown_token_id", 3);
	rvb_gguf_bool(w, "tokenizer.ggml.add_bos_token", true);
	rvb_gguf_bool(w, "tokenizer.ggml.add_space_prefix", false);
	free(texts[0]); /* the arena */
	free(texts);
	free(scores);
	free(types);

	const int64_t d = G_EMBD, q = G_HEADS * G_HEAD_DIM, kv = G_HEADS_KV * G_HEAD_DIM;
	matrix(w, "token_embd.weight", d, G_VOCAB); /* also the output */
	for (int il = 0; il < G_LAYERS; il++) {
		char t[64];
#define TN(s) (snprintf(t, sizeof(t), "blk.%d." s, il), t)
		norm(w, TN("attn_norm.weight"), d);
		matrix(w, TN("attn_q.weight"), d, q);
		matrix(w, TN("attn_k.weight"), d, kv);
		matrix(w, TN("attn_v.weight"), d, kv);
		norm(w, TN("attn_q_norm.weight"), G_HEAD_DIM);
		norm(w, TN("attn_k_norm.weight"), G_HEAD_DIM);
		matrix(w, TN("attn_output.weight"), q, d);
		norm(w, TN("post_attention_norm.weight"), d);
		norm(w, TN("ffn_norm.weight"), d);
		matrix(w, TN("ffn_gate.weight"), d, G_FF);
		matrix(w, TN("ffn_up.weight"), d, G_FF);
		matrix(w, TN("ffn_down.weight"), G_FF, d);
		norm(w, TN("post_ffw_norm.weight"), d);
#undef TN
	}
	norm(w, "output_norm.weight", d);
	return w->oom ? RV_ERR_NOMEM : RV_OK;
}

static int model_file(const rvb_opts *o, char *path, size_t size, rvi_err *err)
{
	char dir[4096];
	int rc = rvb_cache_dir(o, dir, sizeof(dir), err);
	if (rc != RV_OK)
		return rc;
	if ((size_t)snprintf(path, size, "%s/gemma3-4b-text-random-v%d-Q4_0.gguf", dir,
	                     G_VERSION) >= size)
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "cache directory path too long");
	rvb_gguf_writer w;
	rvb_gguf_init(&w);
	bool generated;
	rc = build(&w);
	if (rc != RV_OK)
		rc = rvi_errorf(err, rc, "out of memory describing the Gemma 3 model");
	else
		rc = rvb_materialize(&w, dir, path, 0x6e3a0000ull, &generated, err);
	rvb_gguf_free(&w);
	return rc;
}

/* ---- KV bytes ----------------------------------------------------------- */

static double mib(double bytes)
{
	return bytes / 1048576.0;
}

/* llama.cpp's cache for one sequence, F16 keys and values (its default):
 * the global layers keep the context, the sliding ones
 * min(context, pad(window + n_ubatch, 256)) cells (llama-kv-cache-iswa). */
static double llamacpp_bytes(int64_t n_ctx)
{
	const int64_t n_global = G_LAYERS / G_PATTERN, n_swa = G_LAYERS - n_global;
	const int64_t ctx = (n_ctx + 255) / 256 * 256;
	int64_t swa = (G_WINDOW + 512 + 255) / 256 * 256;
	swa = swa < ctx ? swa : ctx;
	return 2.0 * 2.0 * G_HEADS_KV * G_HEAD_DIM * (double)(n_global * ctx + n_swa * swa);
}

static void kv_table(rv_model *m, const rvb_opts *o)
{
	static const int sizes[] = {1024, 8192, 32768};
	const int n_cand = 8;
	const int n_new = o->n_predict > 0 ? o->n_predict : 32;
	printf("KV cache (MiB; f32 rows; batch 512; best-of-%d adds %d positions each)\n", n_cand,
	       n_new);
	printf("%8s %12s %14s %16s %22s\n", "context", "rlaifv", "+ best-of-8", "every row kept",
	       "llama.cpp (f16, est.)");
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char ebuf[512];
		rv_context_params cp = rv_context_default_params();
		cp.n_ctx = sizes[i];
		cp.n_batch = 512;
		cp.no_cache = 1;
		rv_context *ctx = NULL;
		if (rv_context_new(m, &cp, &ctx, ebuf, sizeof(ebuf)) != RV_OK) {
			printf("%8d  %s\n", sizes[i], ebuf);
			continue;
		}
		const double prefix = (double)rvi_kvcache_bytes(ctx->kv);
		rvi_err err = {0};
		/* the candidates continue a prompt that fills the rest */
		ctx->kv->n_past = sizes[i] - n_new;
		double with = NAN;
		if (rvi_kvcache_fork(ctx->kv, n_cand, n_new, &err) == RV_OK)
			with = (double)rvi_kvcache_bytes(ctx->kv);
		const double all =
		    2.0 * sizeof(float) * (double)ctx->kv->kv_dim * G_LAYERS * sizes[i];
		printf("%8d %12.1f %14.1f %16.1f %22.1f\n", sizes[i], mib(prefix), mib(with),
		       mib(all), mib(llamacpp_bytes(sizes[i])));
		rv_context_free(ctx);
	}
}

/* ---- speed -------------------------------------------------------------- */

/* Random keys and values in every row the cache allocated, so that decoding
 * at a depth reads resident pages without a prompt that long first. */
static void fill_rows(rvi_kvcache *kv)
{
	uint64_t rng = 99;
	const int64_t n = kv->off[kv->n_layer] * kv->kv_dim;
	for (int64_t i = 0; i < n; i++) {
		const uint64_t r = rvb_rand(&rng);
		kv->k[i] = (float)(r & 0xffff) * 0x1p-15f - 1.0f;
		kv->v[i] = (float)(r >> 48) * 0x1p-15f - 1.0f;
	}
}

static int decode_tokens(rv_context *ctx, const int32_t *tok, int64_t n, float *logits)
{
	const rvi_batch b = {n, tok, NULL, NULL, NULL, RVI_ATTN_CAUSAL};
	return rvi_context_decode(ctx, &b, logits, false);
}

/* The median of o->reps timings of fn. */
static double median(double *ms, int n)
{
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && ms[j] < ms[j - 1]; j--) {
			const double t = ms[j];
			ms[j] = ms[j - 1];
			ms[j - 1] = t;
		}
	return n % 2 ? ms[n / 2] : (ms[n / 2 - 1] + ms[n / 2]) / 2;
}

static int speed(rv_model *m, const rvb_opts *o)
{
	int max_depth = 0, max_prefill = 0;
	const int T = o->decode_tokens;
	for (int i = 0; i < o->n_depth; i++)
		max_depth = o->depth[i] > max_depth ? o->depth[i] : max_depth;
	for (int i = 0; i < o->n_prefill; i++)
		max_prefill = o->prefill[i] > max_prefill ? o->prefill[i] : max_prefill;
	int n_ctx = max_depth + T + 1;
	n_ctx = n_ctx > max_prefill + 1 ? n_ctx : max_prefill + 1;
	n_ctx = n_ctx > o->prompt_tokens * 2 + o->n_predict + 64
	            ? n_ctx
	            : o->prompt_tokens * 2 + o->n_predict + 64;
	char ebuf[512];
	rv_context_params cp = rv_context_default_params();
	cp.n_ctx = n_ctx;
	cp.n_batch = 512;
	cp.n_threads = o->n_threads;
	cp.no_cache = 1;
	rv_context *ctx = NULL;
	if (rv_context_new(m, &cp, &ctx, ebuf, sizeof(ebuf)) != RV_OK) {
		fprintf(stderr, "rlaifv-bench: %s\n", ebuf);
		return BENCH_EXIT_RUNTIME;
	}
	const int max_tok = max_prefill > T ? max_prefill : T;
	int32_t *tok = malloc(sizeof(int32_t) * (size_t)max_tok);
	float *logits = malloc(sizeof(float) * G_VOCAB);
	double ms[RVB_MAX_REPS];
	int rc = tok && logits ? RV_OK : RV_ERR_NOMEM;
	uint64_t rng = 1234;
	for (int i = 0; tok && i < max_tok; i++)
		tok[i] = (int32_t)(G_SPECIALS + rvb_rand(&rng) % (G_VOCAB - G_SPECIALS));
	printf("speed (%d threads, kernels %s; noisy if the machine is shared)\n", o->n_threads,
	       rv_kernel_set());
	/* warm-up: every weight page in */
	rvi_kvcache_clear(ctx->kv);
	if (rc == RV_OK)
		rc = decode_tokens(ctx, tok, 1, logits);
	for (int i = 0; rc == RV_OK && i < o->n_prefill; i++) {
		const int n = o->prefill[i];
		for (int r = 0; rc == RV_OK && r < o->reps; r++) {
			rvi_kvcache_clear(ctx->kv);
			const double t0 = rvi_now_ms();
			rc = decode_tokens(ctx, tok, n, logits);
			ms[r] = rvi_now_ms() - t0;
		}
		const double med = median(ms, o->reps);
		printf("  prefill %6d tokens: %9.1f ms  %8.1f tokens/s\n", n, med, n * 1e3 / med);
	}
	for (int i = 0; rc == RV_OK && i < o->n_depth; i++) {
		for (int r = 0; rc == RV_OK && r < o->reps; r++) {
			rvi_kvcache_clear(ctx->kv);
			fill_rows(ctx->kv);
			ctx->kv->n_past = o->depth[i];
			const double t0 = rvi_now_ms();
			for (int t = 0; rc == RV_OK && t < T; t++)
				rc = decode_tokens(ctx, &tok[t], 1, logits);
			ms[r] = rvi_now_ms() - t0;
		}
		const double med = median(ms, o->reps);
		printf("  decode at depth %6d: %9.1f ms/token  %6.2f tokens/s\n", o->depth[i],
		       med / T, T * 1e3 / med);
	}
	/* best-of-N after a prompt of about prompt_tokens tokens */
	char *prompt = malloc((size_t)o->prompt_tokens * 4 + 1);
	if (rc == RV_OK && !prompt)
		rc = RV_ERR_NOMEM;
	for (int i = 0; prompt && i < o->prompt_tokens; i++)
		memcpy(prompt + 4 * i, (const char[4]){'a', (char)('a' + i % 26), 'q', ' '}, 4);
	if (prompt)
		prompt[4 * o->prompt_tokens] = 0;
	for (int i = 0; rc == RV_OK && i < o->n_bon; i++) {
		double tps[RVB_MAX_REPS];
		int prompt_tokens = 0;
		for (int r = 0; rc == RV_OK && r < o->reps; r++) {
			rv_gen_params gp = rv_gen_default_params();
			gp.n_predict = o->n_predict;
			gp.ignore_eos = 1;
			gp.temp = 0.8f;
			gp.n_candidates = o->bon[i];
			gp.seed = (uint64_t)r;
			rv_result res;
			const double t0 = rvi_now_ms();
			if ((rc = rv_generate(ctx, prompt, &gp, &res)) != RV_OK) {
				fprintf(stderr, "rlaifv-bench: best-of-%d: %s\n", o->bon[i],
				        rv_context_error(ctx));
				break;
			}
			ms[r] = rvi_now_ms() - t0;
			tps[r] = res.timings.decode_tokens * 1e3 / res.timings.decode_ms;
			prompt_tokens = res.n_prompt_tokens;
			rv_result_free(&res);
		}
		if (rc != RV_OK)
			break;
		const double med = median(ms, o->reps), tp = median(tps, o->reps);
		printf("  best-of-%-2d (%d-token prompt, %d tokens each): %9.1f ms  %6.2f "
		       "tokens/s decoded\n",
		       o->bon[i], prompt_tokens, o->n_predict, med, tp);
	}
	free(prompt);
	free(tok);
	free(logits);
	rv_context_free(ctx);
	if (rc != RV_OK)
		fprintf(stderr, "rlaifv-bench: gemma3: status %d\n", rc);
	return rc == RV_OK ? BENCH_EXIT_OK : BENCH_EXIT_RUNTIME;
}

int rvb_bench_gemma3(const rvb_opts *o)
{
	char path[4200], ebuf[512];
	rvi_err err = {0};
	if (model_file(o, path, sizeof(path), &err) != RV_OK) {
		fprintf(stderr, "rlaifv-bench: %s\n", err.msg);
		return BENCH_EXIT_MODEL;
	}
	if (o->generate_only)
		return BENCH_EXIT_OK;
	if (rv_select_kernels(NULL, ebuf, sizeof(ebuf)) != RV_OK) { /* $RLAIFV_ISA */
		fprintf(stderr, "rlaifv-bench: %s\n", ebuf);
		return BENCH_EXIT_USAGE;
	}
	rv_model_params mp = rv_model_default_params();
	mp.n_threads = o->n_threads;
	rv_model *m = NULL;
	if (rv_model_load(path, &mp, &m, ebuf, sizeof(ebuf)) != RV_OK) {
		fprintf(stderr, "rlaifv-bench: %s\n", ebuf);
		return BENCH_EXIT_MODEL;
	}
	printf("Gemma 3 4B text, random Q4_0 weights: %s\n", path);
	printf("(width %d, %d layers, %d of them sliding with window %d, %d/%d heads of %d, "
	       "vocabulary %d)\n",
	       G_EMBD, G_LAYERS, G_LAYERS - G_LAYERS / G_PATTERN, G_WINDOW, G_HEADS, G_HEADS_KV,
	       G_HEAD_DIM, G_VOCAB);
	kv_table(m, o);
	const int code = speed(m, o);
	rv_model_free(m);
	return code;
}
