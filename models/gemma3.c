/* gemma3.c: the Gemma 3 text decoder, general.architecture "gemma3", as
 * Hugging Face's Gemma3ForConditionalGeneration runs it (the fixture
 * README, tests/data/gemma3/, spells out every step). LLaMA's tensors
 * (models/llama.c loads them) with what Gemma adds:
 *
 * - the head width is attention.key_length, not n_embd / n_head;
 * - RMSNorm on each q and k head, and after the attention and after the
 *   FFN as well as before (every stored norm weight already holds HF's
 *   1 + w: the converter added the 1, so it is used as stored);
 * - GeGLU with GELU-tanh; the output tied to token_embd; text-token
 *   embeddings times sqrt(n_embd) (image rows come as they are);
 * - 5 of 6 layers attend within a sliding window (their KV cache keeps
 *   only what the window reaches, src/kvcache.h), with RoPE base
 *   rope.freq_base_swa; the others see everything, with rope.freq_base
 *   and linear scaling; RoPE turns half-split pairs (HF's rotate_half,
 *   which the converter leaves unpermuted);
 * - an image's rows see each other both ways (HF's token_type_ids rule):
 *   the runtime hands each image as one BIDIRECTIONAL batch.
 *
 * Tokenization, sampling and the chat template live in src/. */
#include "models/gemma3.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/loader.h"
#include "simd/kernels.h"
#include "src/attention.h"

/* ---- loading ----------------------------------------------------------- */

/* qk_norm: the per-head q and k norms are loaded by LLaMA's loader */
static const rvi_llama_variant gemma3_variant = {"gemma3", false, true, true, true};

/* HF sliding_window_pattern: layer il is global when (il + 1) % 6 == 0.
 * Files may say otherwise with attention.sliding_window_pattern, a period
 * or one bool per layer (true: sliding). */
#define DEFAULT_PATTERN 6

static int load_pattern(rvi_gemma3 *m, const rvi_gguf *g, rvi_err *err)
{
	const char *k = "gemma3.attention.sliding_window_pattern";
	const int64_t n_layer = m->base.hp.n_layer;
	const rvi_gguf_kv *kv = rvi_gguf_find(g, k);
	if (kv && kv->type == RVI_GGUF_ARRAY) {
		int rc = rvi_gguf_get_arr(g, k, true, RVI_GGUF_BOOL, &kv, err);
		if (rc != RV_OK)
			return rc;
		if (kv->arr_n != (uint64_t)n_layer)
			return rvi_errorf(err, RV_ERR_MODEL,
			                  "%s: %s has %llu values for %lld layers", g->path, k,
			                  (unsigned long long)kv->arr_n, (long long)n_layer);
		for (int64_t il = 0; il < n_layer; il++)
			m->sliding[il] = rvi_gguf_arr_i64(kv, (uint64_t)il) != 0;
		return RV_OK;
	}
	int64_t period = DEFAULT_PATTERN;
	int rc = rvi_load_dim(g, k, false, 1, INT32_MAX, &period, err);
	for (int64_t il = 0; rc == RV_OK && il < n_layer; il++)
		m->sliding[il] = (il + 1) % period != 0;
	return rc;
}

/* The keys Gemma adds to LLaMA's. */
static int load_gemma_hparams(rvi_gemma3 *m, const rvi_gguf *g, rvi_err *err)
{
	const rvi_llama_hparams *hp = &m->base.hp;
	/* A window of 0 would leave a query nothing to see; one beyond the
	 * trained context is not a Gemma file. */
	int rc = rvi_load_dim(g, "gemma3.attention.sliding_window", true, 1, hp->n_ctx_train,
	                      &m->window, err);
	if (rc != RV_OK)
		return rc;
	m->rope_base_swa = 10000.0f; /* HF rope_local_base_freq's default */
	m->rope_factor = 1.0f;
	if ((rc = rvi_gguf_get_f32(g, "gemma3.rope.freq_base_swa", false, &m->rope_base_swa, err)))
		return rc;
	if (!(m->rope_base_swa > 1 && isfinite(m->rope_base_swa)))
		return rvi_errorf(err, RV_ERR_MODEL,
		                  "%s: gemma3.rope.freq_base_swa %g is out of range", g->path,
		                  (double)m->rope_base_swa);
	rvi_str type = {"none", 4};
	if ((rc = rvi_gguf_get_str(g, "gemma3.rope.scaling.type", false, &type, err)))
		return rc;
	if (rvi_str_eq(type, "linear")) {
		if ((rc = rvi_gguf_get_f32(g, "gemma3.rope.scaling.factor", true, &m->rope_factor,
		                           err)))
			return rc;
		if (!(m->rope_factor >= 1 && m->rope_factor <= 1024))
			return rvi_errorf(err, RV_ERR_MODEL,
			                  "%s: gemma3.rope.scaling.factor %g is out of range",
			                  g->path, (double)m->rope_factor);
	} else if (!rvi_str_eq(type, "none")) {
		return rvi_errorf(err, RV_ERR_UNSUPPORTED,
		                  "%s: gemma3.rope.scaling.type \"%.*s\" is not supported (linear, "
		                  "none)",
		                  g->path, (int)(type.len > 32 ? 32 : type.len), type.ptr);
	}
	/* HF scales scores by query_pre_attn_scalar^-0.5. The converter writes
	 * no key for it: it is head_dim in the 4B and 12B (and the 1B), and
	 * n_embd / n_head in the 27B (62 layers), which llama.cpp's loader
	 * tells apart by the layer count. */
	const int64_t qpas = hp->n_layer == 62 ? hp->n_embd / hp->n_head : hp->head_dim;
	m->attn_scale = 1.0f / sqrtf((float)qpas);
	/* HF Gemma3TextScaledWordEmbedding: sqrt(hidden_size) in the weights'
	 * dtype (float32 here) */
	m->embd_scale = sqrtf((float)hp->n_embd);
	return RV_OK;
}

int rvi_gemma3_load(rvi_gemma3 *m, const rvi_gguf *g, rvi_err *err)
{
	memset(m, 0, sizeof(*m));
	int rc = rvi_llama_load_variant(&m->base, g, &gemma3_variant, err);
	if (rc != RV_OK)
		return rc;
	const rvi_llama_hparams *hp = &m->base.hp;
	if (hp->n_rot != hp->head_dim) {
		rc = rvi_errorf(err, RV_ERR_UNSUPPORTED,
		                "%s: gemma3.rope.dimension_count %lld: Gemma rotates whole heads "
		                "(%lld)",
		                g->path, (long long)hp->n_rot, (long long)hp->head_dim);
		goto fail;
	}
	m->layers = rvi_zalloc((size_t)hp->n_layer, sizeof(*m->layers));
	m->sliding = rvi_zalloc((size_t)hp->n_layer, sizeof(*m->sliding));
	if (!m->layers || !m->sliding) {
		rc = rvi_errorf(err, RV_ERR_NOMEM, "out of memory");
		goto fail;
	}
	if ((rc = load_gemma_hparams(m, g, err)) || (rc = load_pattern(m, g, err)))
		goto fail;
	const int64_t d = hp->n_embd;
	for (int64_t il = 0; il < hp->n_layer; il++) {
		rvi_gemma3_layer *L = &m->layers[il];
		char name[64];
#define TNAME(suffix) (snprintf(name, sizeof(name), "blk.%lld." suffix, (long long)il), name)
		if ((rc = rvi_load_floats(g, TNAME("post_attention_norm.weight"), d, 0,
		                          &L->post_attn_norm, err)) ||
		    (rc = rvi_load_floats(g, TNAME("post_ffw_norm.weight"), d, 0, &L->post_ffw_norm,
		                          err)))
			goto fail;
#undef TNAME
	}
	return RV_OK;
fail:
	rvi_gemma3_free(m);
	return rc;
}

void rvi_gemma3_free(rvi_gemma3 *m)
{
	for (int64_t il = 0; m->layers && il < m->base.hp.n_layer; il++) {
		free(m->layers[il].post_attn_norm);
		free(m->layers[il].post_ffw_norm);
	}
	free(m->layers);
	free(m->sliding);
	rvi_llama_free(&m->base);
	memset(m, 0, sizeof(*m));
}

/* ---- state ------------------------------------------------------------- */

typedef struct gemma3_state {
	rvi_llama_state base; /* its rope: the global layers' */
	rvi_rope rope_swa;    /* the sliding layers' */
	int64_t *item_first;  /* (n_batch) first row of each item's window */
	float *branch;        /* (n_batch, n_embd) a branch's output before its norm */
} gemma3_state;

static void state_free(void *state)
{
	gemma3_state *st = state;
	if (!st)
		return;
	rvi_llama_state_free(&st->base);
	rvi_rope_free(&st->rope_swa);
	free(st->item_first);
	free(st->branch);
	free(st);
}

static int state_new(const void *model, int64_t n_ctx, int64_t n_batch, int n_threads, void **state,
                     rvi_err *err)
{
	const rvi_gemma3 *m = model;
	const rvi_llama_hparams *hp = &m->base.hp;
	gemma3_state *st = calloc(1, sizeof(*st));
	if (!st)
		return rvi_errorf(err, RV_ERR_NOMEM, "out of memory");
	int rc = rvi_llama_state_init_windowed(&st->base, &m->base, n_ctx, n_batch, n_threads,
	                                       m->sliding, m->window, err);
	if (rc != RV_OK) {
		free(st);
		return rc;
	}
	/* the global layers' positions shrink by the linear factor */
	st->base.rope.pos_scale = 1.0 / m->rope_factor;
	if ((rc = rvi_rope_init(&st->rope_swa, hp->n_rot, m->rope_base_swa, NULL, n_ctx, err))) {
		state_free(st);
		return rc;
	}
	const int64_t nb = st->base.n_batch;
	st->item_first = rvi_alloc((size_t)nb, sizeof(int64_t));
	st->branch = rvi_alloc((size_t)nb * (size_t)hp->n_embd, sizeof(float));
	if (!st->item_first || !st->branch) {
		state_free(st);
		return rvi_errorf(err, RV_ERR_NOMEM, "out of memory for a %lld-token batch",
		                  (long long)nb);
	}
	*state = st;
	return RV_OK;
}

/* ---- forward ----------------------------------------------------------- */

/* Where each item's window starts in a sliding layer: the last `window`
 * rows up to its own; an image's rows (a BIDIRECTIONAL chunk, which the
 * runtime sends one image at a time) see their whole image besides, even
 * beyond the window (HF: "same image block" or "causal within the window",
 * in both layer types). */
static void window_starts(gemma3_state *st, const rvi_batch *b, int64_t n, int64_t window)
{
	const int64_t *row = st->base.item_row;
	for (int64_t t = 0; t < n; t++) {
		int64_t lo = row[t] - window + 1;
		if (b->attn == RVI_ATTN_BIDIRECTIONAL && row[0] < lo)
			lo = row[0];
		st->item_first[t] = lo > 0 ? lo : 0;
	}
}

/* y (n, d) = rmsnorm(y) * w, row by row */
static void norm_rows(float *y, const float *w, int64_t n, int64_t d, float eps)
{
	const rvk_table *K = rvk_active();
	for (int64_t t = 0; t < n; t++)
		K->rmsnorm(y + t * d, y + t * d, w, d, eps);
}

/* One chunk of at most n_batch items, items [done, done + n) of b. */
static int forward_chunk(const void *model, void *state, const rvi_batch *b, int64_t done,
                         int64_t n, float *logits, bool all_logits, rvi_err *err)
{
	const rvi_gemma3 *m = model;
	gemma3_state *gs = state;
	rvi_llama_state *st = &gs->base;
	const rvi_llama *lm = &m->base;
	const rvi_llama_hparams *hp = &lm->hp;
	const rvk_table *K = rvk_active();
	const int64_t d = hp->n_embd, hd = hp->head_dim, ff = hp->n_ff;
	const int64_t q_dim = hp->n_head * hd, kv_dim = st->kv.kv_dim;
	const int nt = st->n_threads;
	const float eps = hp->rms_eps;
	const rvi_attn_heads heads = {hp->n_head, hp->n_head_kv, hd, m->attn_scale};
	rvi_buf *scr = &st->scratch;
	/* Candidates' rows must not depend on how many share the step: their
	 * products never take the BLAS path (the prompt's may). */
	const bool exact = b->seq != NULL;
	int rc = rvi_llama_place_items(st, b, done, n, err);
	if (rc == RV_OK)
		rc = rvi_rope_prepare(&gs->rope_swa, st->item_pos, n, err);
	if (rc != RV_OK)
		return rc;
	window_starts(gs, b, n, m->window);
	const rvi_attn_items global = {n, st->item_seq, st->item_nvis, NULL};
	const rvi_attn_items windowed = {n, st->item_seq, st->item_nvis, gs->item_first};

	/* x (n, d) = token embeddings * sqrt(d), or the caller's rows as they
	 * are (image embeddings) */
	for (int64_t t = 0; t < n; t++) {
		float *x = st->x + t * d;
		if (!b->tokens) {
			memcpy(x, b->embd + (done + t) * d, (size_t)d * sizeof(float));
			continue;
		}
		const int32_t id = b->tokens[done + t];
		if (id < 0 || id >= hp->n_vocab)
			return rvi_errorf(err, RV_ERR_INVALID_ARG,
			                  "token id %d is outside the vocabulary (%lld)", id,
			                  (long long)hp->n_vocab);
		rvi_weight_row(&lm->tok_embd, id, x);
		for (int64_t i = 0; i < d; i++)
			x[i] *= m->embd_scale;
	}

	for (int il = 0; il < hp->n_layer; il++) {
		const rvi_llama_layer *L = &lm->layers[il];
		const rvi_gemma3_layer *G = &m->layers[il];
		const bool sliding = m->sliding[il];

		/* xb (n, d) = rmsnorm(x) * attn_norm */
		for (int64_t t = 0; t < n; t++)
			K->rmsnorm(st->xb + t * d, st->x + t * d, L->attn_norm, d, eps);

		/* q (n, n_head, hd), k, v (n, n_head_kv, hd) = xb @ W^T */
		const rvi_weight *qkv[3] = {&L->wq, &L->wk, &L->wv};
		float *qkv_out[3] = {st->q, st->k, st->v};
		if ((rc = rvi_matmul_shared(qkv, qkv_out, 3, st->xb, n, nt, scr, exact)))
			return rvi_errorf(err, rc, "out of memory in layer %d", il);

		/* each q and k head = rmsnorm(head) * q_norm / k_norm, then
		 * rotated: the sliding layers' base, or the global one with
		 * linear scaling; k and v go to the cache */
		const rvi_rope *rope = sliding ? &gs->rope_swa : &st->rope;
		norm_rows(st->q, L->q_norm, n * hp->n_head, hd, eps);
		norm_rows(st->k, L->k_norm, n * hp->n_head_kv, hd, eps);
		for (int64_t t = 0; t < n; t++) {
			const float *cs = rvi_rope_row(rope, &st->item_pos[t], st->rope_buf);
			K->rope_neox(st->q + t * q_dim, hp->n_head, hd, hd, cs);
			K->rope_neox(st->k + t * kv_dim, hp->n_head_kv, hd, hd, cs);
			memcpy(rvi_kv_key(&st->kv, il, st->item_seq[t], st->item_row[t]),
			       st->k + t * kv_dim, (size_t)kv_dim * sizeof(float));
			memcpy(rvi_kv_value(&st->kv, il, st->item_seq[t], st->item_row[t]),
			       st->v + t * kv_dim, (size_t)kv_dim * sizeof(float));
		}

		/* attn_out (n, q_dim) = softmax(scale q k^T) v over the rows each
		 * item sees: its window in a sliding layer */
		rvi_attn_cached(&heads, &st->kv, il, st->q, st->attn_out,
		                sliding ? &windowed : &global, st->att_scratch, nt);

		/* x += rmsnorm(attn_out @ Wo^T) * post_attention_norm */
		if ((rc = rvi_matmul_ex(&L->wo, st->attn_out, n, gs->branch, nt, scr, exact)))
			return rvi_errorf(err, rc, "out of memory in layer %d", il);
		norm_rows(gs->branch, G->post_attn_norm, n, d, eps);
		for (int64_t i = 0; i < n * d; i++)
			st->x[i] += gs->branch[i];

		/* xb = rmsnorm(x) * ffn_norm;
		 * x += rmsnorm(W_down (gelu_tanh(W_gate xb) * W_up xb)) * post_ffw_norm */
		for (int64_t t = 0; t < n; t++)
			K->rmsnorm(st->xb + t * d, st->x + t * d, L->ffn_norm, d, eps);
		const rvi_weight *gate_up[2] = {&L->w_gate, &L->w_up};
		float *gate_up_out[2] = {st->hb, st->hb2};
		if ((rc = rvi_matmul_shared(gate_up, gate_up_out, 2, st->xb, n, nt, scr, exact)))
			return rvi_errorf(err, rc, "out of memory in layer %d", il);
		K->gelu_tanh(st->hb, n * ff);
		for (int64_t i = 0; i < n * ff; i++)
			st->hb[i] *= st->hb2[i];
		if ((rc = rvi_matmul_ex(&L->w_down, st->hb, n, gs->branch, nt, scr, exact)))
			return rvi_errorf(err, rc, "out of memory in layer %d", il);
		norm_rows(gs->branch, G->post_ffw_norm, n, d, eps);
		for (int64_t i = 0; i < n * d; i++)
			st->x[i] += gs->branch[i];
	}

	/* logits = rmsnorm(x) * output_norm @ token_embd^T (tied); Gemma 3
	 * has no soft-capping */
	return rvi_llama_finish_chunk(lm, st, b, done, n, logits, all_logits, err);
}

/* ---- the family's table ------------------------------------------------- */

static int decode(const void *model, void *state, const rvi_batch *b, float *logits,
                  bool all_logits, rvi_err *err)
{
	const rvi_gemma3 *m = model;
	const gemma3_state *st = state;
	return rvi_decode_chunks(model, state, st->base.n_batch, m->base.hp.n_vocab, b, logits,
	                         all_logits, forward_chunk, err);
}

static rvi_text_info info(const void *model)
{
	const rvi_gemma3 *m = model;
	return (rvi_text_info){m->base.hp.n_vocab,
	                       m->base.hp.n_embd,
	                       m->base.hp.n_ctx_train,
	                       m->base.weight_bytes,
	                       1,
	                       RVI_ATTN_BIDIRECTIONAL};
}

static rvi_kvcache *cache(void *state)
{
	return &((gemma3_state *)state)->base.kv;
}

RVI_ARCH_LOAD_FREE(rvi_gemma3, rvi_gemma3_load, rvi_gemma3_free)

const rvi_text_arch rvi_gemma3_arch = {
    .name = "gemma3",
    .load = arch_load,
    .free = arch_free,
    .info = info,
    .state_new = state_new,
    .state_free = state_free,
    .cache = cache,
    .decode = decode,
};
