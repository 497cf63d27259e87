/* llama.c: the LLaMA text decoder. Loading binds GGUF tensors (checked
 * shape by shape) and reads the llama.* hyperparameters; the forward pass is
 * pre-norm attention with RoPE and grouped-query heads, then a SwiGLU FFN,
 * over an f32 KV cache. Tokenization and sampling live elsewhere (src/). */
#include "models/llama.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "simd/kernels.h"
#include "models/loader.h"

/* ---- loading ----------------------------------------------------------- */

/* Sanity bounds: far above any published LLaMA, far below what would make
 * size arithmetic or allocations absurd. */
#define MAX_EMBD   (1 << 16)
#define MAX_FF     (1 << 18)
#define MAX_LAYERS 1024
#define MAX_HEADS  1024
#define MAX_CTX    (1 << 24)
#define MAX_VOCAB  (1 << 22)

static int load_hparams(rvi_llama_hparams *hp, const rvi_gguf *g, rvi_err *err)
{
	rvi_str arch = {0};
	int rc = rvi_gguf_get_str(g, "general.architecture", true, &arch, err);
	if (rc != RV_OK)
		return rc;
	if (!rvi_str_eq(arch, "llama"))
		return rvi_errorf(err, RV_ERR_UNSUPPORTED,
		                  "%s: architecture \"%.*s\" is not supported (expected llama)",
		                  g->path, (int)(arch.len > 64 ? 64 : arch.len), arch.ptr);

	memset(hp, 0, sizeof(*hp));
	hp->rms_eps = 1e-5f;
	hp->rope_base = 10000.0f;
	if ((rc = rvi_load_dim(g, "llama.context_length", true, 1, MAX_CTX, &hp->n_ctx_train,
	                       err)) ||
	    (rc = rvi_load_dim(g, "llama.embedding_length", true, 1, MAX_EMBD, &hp->n_embd, err)) ||
	    (rc = rvi_load_dim(g, "llama.block_count", true, 1, MAX_LAYERS, &hp->n_layer, err)) ||
	    (rc = rvi_load_dim(g, "llama.feed_forward_length", true, 1, MAX_FF, &hp->n_ff, err)) ||
	    (rc = rvi_load_dim(g, "llama.attention.head_count", true, 1, MAX_HEADS, &hp->n_head,
	                       err)))
		return rc;
	hp->n_head_kv = hp->n_head;
	if ((rc = rvi_load_dim(g, "llama.attention.head_count_kv", false, 1, MAX_HEADS,
	                       &hp->n_head_kv, err)))
		return rc;
	if (hp->n_embd % hp->n_head != 0)
		return rvi_errorf(err, RV_ERR_MODEL,
		                  "%s: llama.embedding_length %lld is not a multiple of "
		                  "llama.attention.head_count %lld",
		                  g->path, (long long)hp->n_embd, (long long)hp->n_head);
	if (hp->n_head % hp->n_head_kv != 0)
		return rvi_errorf(err, RV_ERR_MODEL,
		                  "%s: llama.attention.head_count %lld is not a multiple of "
		                  "llama.attention.head_count_kv %lld",
		                  g->path, (long long)hp->n_head, (long long)hp->n_head_kv);
	hp->head_dim = hp->n_embd / hp->n_head;
	hp->n_rot = hp->head_dim;
	if ((rc = rvi_load_dim(g, "llama.rope.dimension_count", false, 2, hp->head_dim, &hp->n_rot,
	                       err)))
		return rc;
	if (hp->n_rot % 2 != 0)
		return rvi_errorf(err, RV_ERR_MODEL, "%s: llama.rope.dimension_count %lld is odd",
		                  g->path, (long long)hp->n_rot);
	if ((rc = rvi_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", false, &hp->rms_eps,
	                           err)) ||
	    (rc = rvi_gguf_get_f32(g, "llama.rope.freq_base", false, &hp->rope_base, err)))
		return rc;
	if (!(hp->rms_eps > 0 && hp->rms_eps < 1))
		return rvi_errorf(err, RV_ERR_MODEL,
		                  "%s: llama.attention.layer_norm_rms_epsilon %g is out of range",
		                  g->path, (double)hp->rms_eps);
	if (!(hp->rope_base > 1 && isfinite(hp->rope_base)))
		return rvi_errorf(err, RV_ERR_MODEL, "%s: llama.rope.freq_base %g is out of range",
		                  g->path, (double)hp->rope_base);
	return RV_OK;
}

static uint64_t weight_bytes(const rvi_weight *w)
{
	return (uint64_t)rvi_row_size(w->type, w->n_in) * (uint64_t)w->n_out;
}

int rvi_llama_load(rvi_llama *m, const rvi_gguf *g, rvi_err *err)
{
	memset(m, 0, sizeof(*m));
	rvi_llama_hparams *hp = &m->hp;
	int rc = load_hparams(hp, g, err);
	if (rc != RV_OK)
		return rc;
	if ((rc = rvi_load_check_blocks(g, "blk.", hp->n_layer, "llama.block_count", err)))
		return rc;

	const rvi_gguf_tensor *emb;
	if ((rc = rvi_load_tensor(g, "token_embd.weight", &emb, err)))
		return rc;
	if (emb->ne[1] < 1 || emb->ne[1] > MAX_VOCAB)
		return rvi_errorf(err, RV_ERR_MODEL, "%s: token_embd.weight has %lld rows", g->path,
		                  (long long)emb->ne[1]);
	hp->n_vocab = emb->ne[1];

	const int64_t d = hp->n_embd, hd = hp->head_dim;
	const int64_t q_dim = hp->n_head * hd, kv_dim = hp->n_head_kv * hd;
	if ((rc = rvi_load_weight(g, "token_embd.weight", d, hp->n_vocab, &m->tok_embd, err)) ||
	    (rc = rvi_load_floats(g, "output_norm.weight", d, 0, &m->output_norm, err)))
		goto fail;
	if (rvi_gguf_find_tensor(g, "output.weight")) {
		if ((rc = rvi_load_weight(g, "output.weight", d, hp->n_vocab, &m->output, err)))
			goto fail;
	} else {
		m->output = m->tok_embd; /* tied embeddings */
	}

	m->layers = rvi_zalloc((size_t)hp->n_layer, sizeof(*m->layers));
	if (!m->layers) {
		rc = rvi_errorf(err, RV_ERR_NOMEM, "out of memory");
		goto fail;
	}
	m->weight_bytes = weight_bytes(&m->output);
	for (int64_t il = 0; il < hp->n_layer; il++) {
		rvi_llama_layer *L = &m->layers[il];
		char name[64];
#define TNAME(suffix) (snprintf(name, sizeof(name), "blk.%lld." suffix, (long long)il), name)
		if ((rc =
		         rvi_load_floats(g, TNAME("attn_norm.weight"), d, 0, &L->attn_norm, err)) ||
		    (rc = rvi_load_weight(g, TNAME("attn_q.weight"), d, q_dim, &L->wq, err)) ||
		    (rc = rvi_load_weight(g, TNAME("attn_k.weight"), d, kv_dim, &L->wk, err)) ||
		    (rc = rvi_load_weight(g, TNAME("attn_v.weight"), d, kv_dim, &L->wv, err)) ||
		    (rc = rvi_load_weight(g, TNAME("attn_output.weight"), q_dim, d, &L->wo, err)) ||
		    (rc = rvi_load_floats(g, TNAME("ffn_norm.weight"), d, 0, &L->ffn_norm, err)) ||
		    (rc = rvi_load_weight(g, TNAME("ffn_gate.weight"), d, hp->n_ff, &L->w_gate,
		                          err)) ||
		    (rc = rvi_load_weight(g, TNAME("ffn_up.weight"), d, hp->n_ff, &L->w_up, err)) ||
		    (rc = rvi_load_weight(g, TNAME("ffn_down.weight"), hp->n_ff, d, &L->w_down,
		                          err)))
			goto fail;
#undef TNAME
		const rvi_weight *ws[] = {&L->wq,     &L->wk,   &L->wv,    &L->wo,
		                          &L->w_gate, &L->w_up, &L->w_down};
		for (size_t i = 0; i < sizeof(ws) / sizeof(ws[0]); i++)
			m->weight_bytes += weight_bytes(ws[i]);
	}
	return RV_OK;
fail:
	rvi_llama_free(m);
	return rc;
}

void rvi_llama_free(rvi_llama *m)
{
	if (m->layers) {
		for (int64_t il = 0; il < m->hp.n_layer; il++) {
			free(m->layers[il].attn_norm);
			free(m->layers[il].ffn_norm);
		}
	}
	free(m->layers);
	free(m->output_norm);
	memset(m, 0, sizeof(*m));
}

/* ---- state ------------------------------------------------------------- */

void rvi_llama_state_free(rvi_llama_state *st)
{
	rvi_kvcache_free(&st->kv);
	float *bufs[] = {st->x,  st->xb,  st->q,   st->k,      st->v,      st->attn_out,
	                 st->hb, st->hb2, st->att, st->att_qo, st->rope_cs};
	for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
		free(bufs[i]);
	free(st->item_seq);
	free(st->item_pos);
	rvi_buf_free(&st->scratch);
	memset(st, 0, sizeof(*st));
}

int rvi_llama_state_init(rvi_llama_state *st, const rvi_llama *m, int64_t n_ctx, int64_t n_batch,
                         int n_threads, rvi_err *err)
{
	const rvi_llama_hparams *hp = &m->hp;
	memset(st, 0, sizeof(*st));
	if (n_ctx < 1 || n_batch < 1 || n_threads < 1)
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "invalid context size %lld",
		                  (long long)n_ctx);
	if (n_batch > n_ctx)
		n_batch = n_ctx;
	int rc =
	    rvi_kvcache_init(&st->kv, (int)hp->n_layer, n_ctx, hp->n_head_kv * hp->head_dim, err);
	if (rc != RV_OK)
		return rc;
	st->n_batch = n_batch;
	st->n_threads = n_threads;
	const int64_t q_dim = hp->n_head * hp->head_dim, kv_dim = st->kv.kv_dim;
	st->x = rvi_alloc((size_t)(n_batch * hp->n_embd), sizeof(float));
	st->xb =
	    rvi_alloc((size_t)(n_batch * (hp->n_embd > q_dim ? hp->n_embd : q_dim)), sizeof(float));
	st->q = rvi_alloc((size_t)(n_batch * q_dim), sizeof(float));
	st->k = rvi_alloc((size_t)(n_batch * kv_dim), sizeof(float));
	st->v = rvi_alloc((size_t)(n_batch * kv_dim), sizeof(float));
	st->attn_out = rvi_alloc((size_t)(n_batch * q_dim), sizeof(float));
	st->hb = rvi_alloc((size_t)(n_batch * hp->n_ff), sizeof(float));
	st->hb2 = rvi_alloc((size_t)(n_batch * hp->n_ff), sizeof(float));
	/* per thread: a score row per query head of a KV head, of ATT_ITEMS
	 * items; and their queries and outputs (attention_candidates) */
	const size_t group = (size_t)(hp->n_head / hp->n_head_kv);
	st->att = rvi_alloc((size_t)n_threads * ATT_ITEMS * group * (size_t)n_ctx, sizeof(float));
	st->att_qo = rvi_alloc((size_t)n_threads * 2 * ATT_ITEMS * group * (size_t)hp->head_dim,
	                       sizeof(float));
	st->rope_cs = rvi_alloc((size_t)(n_ctx * hp->n_rot), sizeof(float));
	st->item_seq = rvi_alloc((size_t)n_batch, sizeof(int32_t));
	st->item_pos = rvi_alloc((size_t)n_batch, sizeof(int64_t));
	if (!st->item_seq || !st->item_pos || !st->x || !st->xb || !st->q || !st->k || !st->v ||
	    !st->attn_out || !st->hb || !st->hb2 || !st->att || !st->att_qo || !st->rope_cs) {
		rvi_llama_state_free(st);
		return rvi_errorf(err, RV_ERR_NOMEM, "out of memory for a %lld-token batch",
		                  (long long)n_batch);
	}
	/* The RoPE table is filled as positions are reached (rope_fill): a
	 * context of 2^24 positions would otherwise cost gigabytes of touched
	 * memory and seconds of cos/sin before the first token. */
	st->rope_filled = 0;
	return RV_OK;
}

/* Makes rope_cs valid for positions [0, upto). theta(pos, i) = pos *
 * base^(-2i/n_rot), in double so long contexts keep their precision; one
 * table serves every layer and head. */
static void rope_fill(rvi_llama_state *st, const rvi_llama_hparams *hp, int64_t upto)
{
	const int64_t half = hp->n_rot / 2;
	for (int64_t pos = st->rope_filled; pos < upto; pos++) {
		for (int64_t i = 0; i < half; i++) {
			double theta = (double)pos * pow((double)hp->rope_base,
			                                 -2.0 * (double)i / (double)hp->n_rot);
			st->rope_cs[(pos * half + i) * 2] = (float)cos(theta);
			st->rope_cs[(pos * half + i) * 2 + 1] = (float)sin(theta);
		}
	}
	if (upto > st->rope_filled)
		st->rope_filled = upto;
}

/* ---- forward ----------------------------------------------------------- */

static int thread_id(void)
{
#ifdef _OPENMP
	return omp_get_thread_num();
#else
	return 0;
#endif
}

/* Causal multi-head attention of n prompt items (appended to the prefix)
 * against the cache, which already holds them: out (n, n_head*hd). Item i
 * at position pos[i] attends to positions 0..pos[i]. GQA: query head h
 * reads KV head h / (n_head / n_head_kv), and the query heads of one KV
 * head go through the kernels together, so its rows are read once for all
 * of them. Each (item, KV head) is one independent task, and a head's
 * results do not depend on the heads it shares a call with, so they depend
 * neither on the thread count nor on which other items share the call.
 * Candidates' items take attention_candidates. */
static void attention(const rvi_llama *m, rvi_llama_state *st, int il, int64_t n)
{
	const rvi_llama_hparams *hp = &m->hp;
	const rvk_table *K = rvk_active();
	const rvi_kvcache *kv = &st->kv;
	const int64_t hd = hp->head_dim, q_dim = hp->n_head * hd, kv_dim = kv->kv_dim;
	const int64_t group = hp->n_head / hp->n_head_kv;
	const float scale = 1.0f / sqrtf((float)hd);
	const int64_t tasks = n * hp->n_head_kv;

#pragma omp parallel for schedule(dynamic, 1) num_threads(st->n_threads)
	for (int64_t task = 0; task < tasks; task++) {
		const int64_t t = task / hp->n_head_kv, g = task % hp->n_head_kv;
		const int64_t n_pos = st->item_pos[t] + 1;
		const int64_t kvo = g * hd, ctx = kv->n_ctx;
		/* the group's query heads, their score rows, their outputs */
		const float *q = st->q + t * q_dim + g * group * hd;
		float *att = st->att + (int64_t)thread_id() * group * ctx;
		float *out = st->attn_out + t * q_dim + g * group * hd;
		K->attn_scores(att, ctx, q, hd, group, rvi_kv_key(kv, il, -1, 0) + kvo, kv_dim,
		               n_pos, hd, scale);
		for (int64_t h = 0; h < group; h++)
			K->softmax(att + h * ctx, n_pos);
		memset(out, 0, (size_t)(group * hd) * sizeof(float));
		K->attn_values(out, hd, att, ctx, group, rvi_kv_value(kv, il, -1, 0) + kvo, kv_dim,
		               n_pos, hd);
	}
}

/* Attention of candidates (every item of the chunk continues a suffix
 * sequence, so all of them see the whole prefix): the query heads of up to
 * ATT_ITEMS items for one KV head go through the prefix rows in one call,
 * each row read once for all of them, then each item's through its own
 * suffix rows. The kernels' results for a query depend neither on the
 * other queries of a call nor on the thread count, so an item gets what it
 * gets decoded alone (and what attention() would give it). */
static void attention_candidates(const rvi_llama *m, rvi_llama_state *st, int il, int64_t n)
{
	const rvi_llama_hparams *hp = &m->hp;
	const rvk_table *K = rvk_active();
	const rvi_kvcache *kv = &st->kv;
	const int64_t hd = hp->head_dim, q_dim = hp->n_head * hd, kv_dim = kv->kv_dim;
	const int64_t group = hp->n_head / hp->n_head_kv, ctx = kv->n_ctx, n_pre = kv->n_past;
	const float scale = 1.0f / sqrtf((float)hd);
	const int64_t tasks = (n + ATT_ITEMS - 1) / ATT_ITEMS * hp->n_head_kv;

#pragma omp parallel for schedule(dynamic, 1) num_threads(st->n_threads)
	for (int64_t task = 0; task < tasks; task++) {
		const int64_t t0 = task / hp->n_head_kv * ATT_ITEMS, g = task % hp->n_head_kv;
		const int64_t ni = n - t0 < ATT_ITEMS ? n - t0 : ATT_ITEMS, gw = group * hd;
		const int64_t kvo = g * hd;
		float *att = st->att + (int64_t)thread_id() * ATT_ITEMS * group * ctx;
		float *qs = st->att_qo + (int64_t)thread_id() * 2 * ATT_ITEMS * gw;
		float *outs = qs + ATT_ITEMS * gw;
		for (int64_t i = 0; i < ni; i++)
			memcpy(qs + i * gw, st->q + (t0 + i) * q_dim + g * gw,
			       (size_t)gw * sizeof(float));
		K->attn_scores(att, ctx, qs, hd, ni * group, rvi_kv_key(kv, il, -1, 0) + kvo,
		               kv_dim, n_pre, hd, scale);
		for (int64_t i = 0; i < ni; i++) {
			const int seq = st->item_seq[t0 + i];
			const int64_t n_pos = st->item_pos[t0 + i] + 1;
			K->attn_scores(att + i * group * ctx + n_pre, ctx, qs + i * gw, hd, group,
			               rvi_kv_key(kv, il, seq, n_pre) + kvo, kv_dim, n_pos - n_pre,
			               hd, scale);
			for (int64_t h = 0; h < group; h++)
				K->softmax(att + (i * group + h) * ctx, n_pos);
		}
		memset(outs, 0, (size_t)(ni * gw) * sizeof(float));
		K->attn_values(outs, hd, att, ctx, ni * group, rvi_kv_value(kv, il, -1, 0) + kvo,
		               kv_dim, n_pre, hd);
		for (int64_t i = 0; i < ni; i++) {
			const int seq = st->item_seq[t0 + i];
			const int64_t n_pos = st->item_pos[t0 + i] + 1;
			K->attn_values(outs + i * gw, hd, att + i * group * ctx + n_pre, ctx, group,
			               rvi_kv_value(kv, il, seq, n_pre) + kvo, kv_dim,
			               n_pos - n_pre, hd);
			memcpy(st->attn_out + (t0 + i) * q_dim + g * gw, outs + i * gw,
			       (size_t)gw * sizeof(float));
		}
	}
}

/* Gives each item of a chunk its sequence and position, checking that it
 * fits; the cache lengths themselves advance only after the chunk ran. */
static int place_items(rvi_llama_state *st, const int32_t *seq, int64_t n, rvi_err *err)
{
	rvi_kvcache *kv = &st->kv;
	if (!seq) {
		for (int s = 0; s < kv->n_seq; s++)
			if (kv->seq_len[s] > 0)
				return rvi_errorf(
				    err, RV_ERR_INTERNAL,
				    "the prefix cannot grow once candidates continue it");
		if (n > kv->n_ctx - kv->n_past)
			return rvi_errorf(err, RV_ERR_CONTEXT,
			                  "%lld more positions do not fit in the context (%lld of "
			                  "%lld used)",
			                  (long long)n, (long long)kv->n_past,
			                  (long long)kv->n_ctx);
		for (int64_t t = 0; t < n; t++) {
			st->item_seq[t] = -1;
			st->item_pos[t] = kv->n_past + t;
		}
		return RV_OK;
	}
	for (int64_t t = 0; t < n; t++) {
		const int s = seq[t];
		if (s < 0 || s >= kv->n_seq)
			return rvi_errorf(err, RV_ERR_INTERNAL, "sequence %d does not exist", s);
		int64_t before = 0; /* items of s earlier in this chunk */
		for (int64_t u = 0; u < t; u++)
			before += seq[u] == s;
		if (kv->seq_len[s] + before >= kv->seq_cap)
			return rvi_errorf(err, RV_ERR_CONTEXT,
			                  "candidate %d is full (%lld positions)", s,
			                  (long long)kv->seq_cap);
		st->item_seq[t] = s;
		st->item_pos[t] = kv->n_past + kv->seq_len[s] + before;
	}
	return RV_OK;
}

/* One chunk of at most n_batch items. */
static int forward_chunk(const rvi_llama *m, rvi_llama_state *st, const int32_t *tokens,
                         const float *embd, const int32_t *seq, int64_t n, float *logits,
                         bool all_logits, rvi_err *err)
{
	const rvi_llama_hparams *hp = &m->hp;
	const rvk_table *K = rvk_active();
	const int64_t d = hp->n_embd, hd = hp->head_dim;
	const int64_t q_dim = hp->n_head * hd, kv_dim = st->kv.kv_dim, ff = hp->n_ff;
	const int nt = st->n_threads;
	rvi_buf *scr = &st->scratch;
	/* Candidates' rows must not depend on how many share the step: their
	 * products never take the BLAS path (the prompt's may). */
	const bool exact = seq != NULL;
	int rc = place_items(st, seq, n, err);
	if (rc != RV_OK)
		return rc;
	int64_t max_pos = -1; /* placed items lie below n_ctx */
	for (int64_t t = 0; t < n; t++)
		if (st->item_pos[t] > max_pos)
			max_pos = st->item_pos[t];
	rope_fill(st, hp, max_pos + 1);

	/* x (n, d) = token embeddings or the caller's rows */
	for (int64_t t = 0; t < n; t++) {
		if (tokens) {
			if (tokens[t] < 0 || tokens[t] >= hp->n_vocab)
				return rvi_errorf(err, RV_ERR_INVALID_ARG,
				                  "token id %d is outside the vocabulary (%lld)",
				                  tokens[t], (long long)hp->n_vocab);
			rvi_weight_row(&m->tok_embd, tokens[t], st->x + t * d);
		} else {
			memcpy(st->x + t * d, embd + t * d, (size_t)d * sizeof(float));
		}
	}

	for (int il = 0; il < hp->n_layer; il++) {
		const rvi_llama_layer *L = &m->layers[il];

		/* xb (n, d) = rmsnorm(x) * attn_norm */
		for (int64_t t = 0; t < n; t++)
			K->rmsnorm(st->xb + t * d, st->x + t * d, L->attn_norm, d, hp->rms_eps);

		/* q (n, q_dim), k, v (n, kv_dim) = xb @ W^T */
		const rvi_weight *qkv[3] = {&L->wq, &L->wk, &L->wv};
		float *qkv_out[3] = {st->q, st->k, st->v};
		if ((rc = rvi_matmul_shared(qkv, qkv_out, 3, st->xb, n, nt, scr, exact)))
			return rvi_errorf(err, rc, "out of memory in layer %d", il);

		/* rotate q and k by position, then write k, v to the cache */
		for (int64_t t = 0; t < n; t++) {
			const float *cs = st->rope_cs + st->item_pos[t] * hp->n_rot;
			/* adjacent pairs: llama.cpp's converter permuted the Q and K
			 * rows so that this equals HF's half-split rotation */
			K->rope(st->q + t * q_dim, hp->n_head, hd, hp->n_rot, cs);
			K->rope(st->k + t * kv_dim, hp->n_head_kv, hd, hp->n_rot, cs);
			memcpy(rvi_kv_key(&st->kv, il, st->item_seq[t], st->item_pos[t]),
			       st->k + t * kv_dim, (size_t)kv_dim * sizeof(float));
			memcpy(rvi_kv_value(&st->kv, il, st->item_seq[t], st->item_pos[t]),
			       st->v + t * kv_dim, (size_t)kv_dim * sizeof(float));
		}

		/* attn_out (n, q_dim) = softmax(q k^T / sqrt(hd)) v, causal */
		if (seq)
			attention_candidates(m, st, il, n);
		else
			attention(m, st, il, n);

		/* x += attn_out @ Wo^T */
		if ((rc = rvi_matmul_ex(&L->wo, st->attn_out, n, st->xb, nt, scr, exact)))
			return rvi_errorf(err, rc, "out of memory in layer %d", il);
		for (int64_t i = 0; i < n * d; i++)
			st->x[i] += st->xb[i];

		/* xb = rmsnorm(x) * ffn_norm; x += W_down (silu(W_gate xb) * W_up xb) */
		for (int64_t t = 0; t < n; t++)
			K->rmsnorm(st->xb + t * d, st->x + t * d, L->ffn_norm, d, hp->rms_eps);
		const rvi_weight *gate_up[2] = {&L->w_gate, &L->w_up};
		float *gate_up_out[2] = {st->hb, st->hb2};
		if ((rc = rvi_matmul_shared(gate_up, gate_up_out, 2, st->xb, n, nt, scr, exact)))
			return rvi_errorf(err, rc, "out of memory in layer %d", il);
		K->swiglu(st->hb, st->hb2, n * ff);
		if ((rc = rvi_matmul_ex(&L->w_down, st->hb, n, st->xb, nt, scr, exact)))
			return rvi_errorf(err, rc, "out of memory in layer %d", il);
		for (int64_t i = 0; i < n * d; i++)
			st->x[i] += st->xb[i];
	}

	/* the items are in the cache now */
	if (!seq)
		st->kv.n_past += n;
	else
		for (int64_t t = 0; t < n; t++)
			st->kv.seq_len[seq[t]]++;

	if (!logits)
		return RV_OK;
	/* logits (rows, n_vocab) = rmsnorm(x) * output_norm @ W_out^T, for the
	 * last row only unless the caller wants every row */
	const int64_t first = all_logits ? 0 : n - 1;
	const int64_t rows = n - first;
	for (int64_t t = first; t < n; t++)
		K->rmsnorm(st->xb + (t - first) * d, st->x + t * d, m->output_norm, d, hp->rms_eps);
	if ((rc = rvi_matmul_ex(&m->output, st->xb, rows, logits, nt, scr, exact)))
		return rvi_errorf(err, rc, "out of memory computing logits");
	return RV_OK;
}

int rvi_llama_decode(const rvi_llama *m, rvi_llama_state *st, const rvi_batch *b, float *logits,
                     bool all_logits, rvi_err *err)
{
	for (int64_t done = 0; done < b->n;) {
		int64_t n = b->n - done < st->n_batch ? b->n - done : st->n_batch;
		bool last = done + n == b->n;
		float *lg = NULL;
		if (logits && all_logits)
			lg = logits + done * m->hp.n_vocab;
		else if (logits && last)
			lg = logits;
		int rc = forward_chunk(m, st, b->tokens ? b->tokens + done : NULL,
		                       b->embd ? b->embd + done * m->hp.n_embd : NULL,
		                       b->seq ? b->seq + done : NULL, n, lg, all_logits, err);
		if (rc != RV_OK)
			return rc;
		done += n;
	}
	return RV_OK;
}

int rvi_llama_forward(const rvi_llama *m, rvi_llama_state *st, const int32_t *tokens,
                      const float *embd, int64_t n_tok, float *logits, bool all_logits,
                      rvi_err *err)
{
	rvi_batch b = {n_tok, tokens, tokens ? NULL : embd, NULL};
	return rvi_llama_decode(m, st, &b, logits, all_logits, err);
}
