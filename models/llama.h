/* llama.h: the LLaMA-architecture text decoder (LLaMA 1/2, Vicuna, the LLM
 * half of LLaVA-1.5): hyperparameters and weights from GGUF, and the forward
 * pass over a batch of tokens or embeddings. */
#ifndef RLAIFV_LLAMA_H
#define RLAIFV_LLAMA_H

#include <stdbool.h>
#include <stdint.h>

#include "models/arch.h"
#include "src/gguf.h"
#include "src/kvcache.h"
#include "src/matmul.h"
#include "src/rope.h"
#include "src/util.h"

typedef struct rvi_llama_hparams {
	int64_t n_ctx_train;
	int64_t n_embd;
	int64_t n_layer;
	int64_t n_ff;
	int64_t n_head;
	int64_t n_head_kv;
	int64_t head_dim;
	int64_t n_rot; /* leading dims of each head that RoPE rotates */
	int64_t n_vocab;
	float rms_eps;
	float rope_base;
	/* Pairs RoPE turns: adjacent (x[2i], x[2i+1]), as llama.cpp's converter
	 * permutes LLaMA's Q/K rows for; or half-split (x[i], x[i + n_rot/2]),
	 * HF's rotate_half, which Qwen2 files keep unpermuted. */
	bool rope_half;
	/* M-RoPE (Qwen2-VL): pairs per t, h, w position component; all 0: 1-D */
	int rope_sections[3];
} rvi_llama_hparams;

typedef struct rvi_llama_layer {
	float *attn_norm;       /* (n_embd) */
	rvi_weight wq;          /* (n_head*head_dim, n_embd) */
	float *bq, *bk, *bv;    /* q, k, v biases (Qwen2), or NULL */
	float *q_norm, *k_norm; /* (head_dim) per-head RMSNorm of q, k (Qwen3), or NULL */
	rvi_weight wk;          /* (n_head_kv*head_dim, n_embd) */
	rvi_weight wv;          /* (n_head_kv*head_dim, n_embd) */
	rvi_weight wo;          /* (n_embd, n_head*head_dim) */
	float *ffn_norm;        /* (n_embd) */
	rvi_weight w_gate;      /* (n_ff, n_embd) */
	rvi_weight w_up;        /* (n_ff, n_embd) */
	rvi_weight w_down;      /* (n_embd, n_ff) */
} rvi_llama_layer;

typedef struct rvi_llama {
	rvi_llama_hparams hp;
	rvi_weight tok_embd; /* (n_vocab, n_embd) */
	float *output_norm;  /* (n_embd) */
	rvi_weight output;   /* (n_vocab, n_embd); token_embd when the file ties them */
	rvi_llama_layer *layers;
	uint64_t weight_bytes; /* bytes of weights read per decoded token */
} rvi_llama;

/* Reads hyperparameters and binds weights (pointing into g's mapping, which
 * must outlive the model). Errors name the key or tensor at fault. */
int rvi_llama_load(rvi_llama *m, const rvi_gguf *g, rvi_err *err);

/* The decoders that share LLaMA's recipe and differ in names and details:
 * arch is general.architecture and the prefix of its keys; qkv_bias: the
 * q, k, v projections have biases (required); rope_half: see
 * rvi_llama_hparams; head_dim_key: the head width is the file's
 * attention.key_length (required, equal to value_length), which need not
 * be n_embd / n_head (Gemma 3, Qwen3); qk_norm: each q and k head is
 * RMSNormed by attn_q_norm / attn_k_norm (head_dim, required) before RoPE
 * (Qwen3). */
typedef struct rvi_llama_variant {
	const char *arch;
	bool qkv_bias;
	bool rope_half;
	bool head_dim_key;
	bool qk_norm;
} rvi_llama_variant;

int rvi_llama_load_variant(rvi_llama *m, const rvi_gguf *g, const rvi_llama_variant *v,
                           rvi_err *err);
void rvi_llama_free(rvi_llama *m);

/* Per-context working memory of the forward pass. */
typedef struct rvi_llama_state {
	rvi_kvcache kv;
	rvi_rope rope;
	int64_t n_batch; /* most tokens one forward call takes */
	int n_threads;
	/* (n_batch, width) activations, and the attention's scratch: regions
	 * of one aligned arena */
	float *x, *xb, *q, *k, *v, *attn_out, *hb, *hb2, *att_scratch;
	float *rope_buf; /* (n_rot) M-RoPE angles of one item */
	rvi_arena arena;
	int32_t *item_seq;  /* (n_batch) sequence of each item of a chunk, -1: prefix */
	int64_t *item_row;  /* its cache row, as its sequence sees the cache */
	int64_t *item_nvis; /* cache rows it attends to */
	rvi_pos *item_pos;  /* its position */
	rvi_buf scratch;
} rvi_llama_state;

int rvi_llama_state_init(rvi_llama_state *st, const rvi_llama *m, int64_t n_ctx, int64_t n_batch,
                         int n_threads, rvi_err *err);
/* The same, with a sliding window of `window` positions on the layers
 * where sliding[il]: their KV cache keeps only the rows those windows reach
 * (see rvi_kvcache_init_rings). sliding NULL: none. */
int rvi_llama_state_init_windowed(rvi_llama_state *st, const rvi_llama *m, int64_t n_ctx,
                                  int64_t n_batch, int n_threads, const bool *sliding,
                                  int64_t window, rvi_err *err);

/* For a family's forward pass: gives items [done, done + n) of b their
 * sequence, cache row, position and the rows they see (item_seq, item_row,
 * item_pos, item_nvis), checking that they fit, and prepares st->rope for
 * their positions. The cache lengths advance only after the chunk ran. */
int rvi_llama_place_items(rvi_llama_state *st, const rvi_batch *b, int64_t done, int64_t n,
                          rvi_err *err);
void rvi_llama_state_free(rvi_llama_state *st);

/* Runs a batch (split into chunks of n_batch items; a BIDIRECTIONAL batch
 * must fit one chunk); logits as for rvi_llama_forward, one row per item
 * when all_logits. Each item's result is bit-identical whatever else shares
 * the batch. */
int rvi_llama_decode(const rvi_llama *m, rvi_llama_state *st, const rvi_batch *b, float *logits,
                     bool all_logits, rvi_err *err);

/* The end of a chunk whose items' outputs are in st->x: advances the
 * cache over items [done, done + n) of b, then the logits of the last
 * item (every item when all_logits) when logits is not NULL:
 * rmsnorm(x) * output_norm @ output^T (st->xb is overwritten). */
int rvi_llama_finish_chunk(const rvi_llama *m, rvi_llama_state *st, const rvi_batch *b,
                           int64_t done, int64_t n, float *logits, bool all_logits, rvi_err *err);

/* One chunk of at most n_batch items, items [done, done + n) of b, with
 * logits for them (or the last of them) when logits is not NULL. */
typedef int (*rvi_chunk_fn)(const void *model, void *state, const rvi_batch *b, int64_t done,
                            int64_t n, float *logits, bool all_logits, rvi_err *err);

/* A family's decode: b split into chunks of n_batch items run by chunk (a
 * BIDIRECTIONAL batch must fit one), logits as rvi_llama_decode's. */
int rvi_decode_chunks(const void *model, void *state, int64_t n_batch, int64_t n_vocab,
                      const rvi_batch *b, float *logits, bool all_logits, rvi_chunk_fn chunk,
                      rvi_err *err);

/* Runs n_tok inputs at positions kv.n_past .. kv.n_past+n_tok-1 and appends
 * them to the cache. Inputs are token ids, or when tokens is NULL, rows of
 * embd (n_tok, n_embd) (image embeddings). n_tok may exceed n_batch (it is
 * split). logits receives (n_vocab) floats for the last input, or
 * (n_tok, n_vocab) when all_logits; NULL for none. */
int rvi_llama_forward(const rvi_llama *m, rvi_llama_state *st, const int32_t *tokens,
                      const float *embd, int64_t n_tok, float *logits, bool all_logits,
                      rvi_err *err);

/* The family's table (models/arch.h): "llama". */
extern const rvi_text_arch rvi_llama_arch;

/* The table entries after load, for the families that share the recipe
 * (models/qwen2.c): their model is an rvi_llama. */
void rvi_llama_table_free(void *model);
rvi_text_info rvi_llama_table_info(const void *model);
int rvi_llama_table_state_new(const void *model, int64_t n_ctx, int64_t n_batch, int n_threads,
                              void **state, rvi_err *err);
void rvi_llama_table_state_free(void *state);
rvi_kvcache *rvi_llama_table_cache(void *state);
int rvi_llama_table_decode(const void *model, void *state, const rvi_batch *b, float *logits,
                           bool all_logits, rvi_err *err);

/* The table of a family named arch_name whose load makes an rvi_llama. */
#define RVI_LLAMA_TABLE(arch_name, load_fn)                                                        \
	{                                                                                          \
		.name = arch_name, .load = load_fn, .free = rvi_llama_table_free,                  \
		.info = rvi_llama_table_info, .state_new = rvi_llama_table_state_new,              \
		.state_free = rvi_llama_table_state_free, .cache = rvi_llama_table_cache,          \
		.decode = rvi_llama_table_decode,                                                  \
	}

#endif
