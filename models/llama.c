/* llama.c: the LLaMA text decoder. Loading binds GGUF tensors (checked
 * shape by shape) and reads the llama.* hyperparameters; the forward pass is
 * pre-norm attention with RoPE and grouped-query heads, then a SwiGLU FFN,
 * over an f32 KV cache. Tokenization and sampling live elsewhere (src/). */
#include "models/llama.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/loader.h"
#include "simd/kernels.h"
#include "src/attention.h"

/* ---- loading ----------------------------------------------------------- */

/* Sanity bounds: far above any published LLaMA, far below what would make
 * size arithmetic or allocations absurd. */
#define MAX_EMBD   (1 << 16)
#define MAX_FF     (1 << 18)
#define MAX_LAYERS 1024
#define MAX_HEADS  1024
#define MAX_CTX    (1 << 24)
#define MAX_VOCAB  (1 << 22)

/* The key "<arch>.<name>" into buf. */
static const char *key(char *buf, size_t size, const char *arch, const char *name)
{
	snprintf(buf, size, "%s.%s", arch, name);
	return buf;
}

static int load_hparams(rvi_llama_hparams *hp, const rvi_gguf *g, const rvi_llama_variant *v,
                        rvi_err *err)
{
	rvi_str arch = {0};
	int rc = rvi_gguf_get_str(g, "general.architecture", true, &arch, err);
	if (rc != RV_OK)
		return rc;
	if (!rvi_str_eq(arch, v->arch))
		return rvi_errorf(err, RV_ERR_UNSUPPORTED,
		                  "%s: architecture \"%.*s\" is not supported (expected %s)",
		                  g->path, (int)(arch.len > 64 ? 64 : arch.len), arch.ptr, v->arch);

	char k1[96], k2[96];
#define KEY(name)  key(k1, sizeof(k1), v->arch, name)
#define KEY2(name) key(k2, sizeof(k2), v->arch, name)
	memset(hp, 0, sizeof(*hp));
	hp->rms_eps = 1e-5f;
	hp->rope_base = 10000.0f;
	hp->rope_half = v->rope_half;
	if ((rc =
	         rvi_load_dim(g, KEY("context_length"), true, 1, MAX_CTX, &hp->n_ctx_train, err)) ||
	    (rc = rvi_load_dim(g, KEY("embedding_length"), true, 1, MAX_EMBD, &hp->n_embd, err)) ||
	    (rc = rvi_load_dim(g, KEY("block_count"), true, 1, MAX_LAYERS, &hp->n_layer, err)) ||
	    (rc = rvi_load_dim(g, KEY("feed_forward_length"), true, 1, MAX_FF, &hp->n_ff, err)) ||
	    (rc = rvi_load_dim(g, KEY("attention.head_count"), true, 1, MAX_HEADS, &hp->n_head,
	                       err)))
		return rc;
	hp->n_head_kv = hp->n_head;
	if ((rc = rvi_load_dim(g, KEY("attention.head_count_kv"), false, 1, MAX_HEADS,
	                       &hp->n_head_kv, err)))
		return rc;
	if (hp->n_embd % hp->n_head != 0 && !v->head_dim_key)
		return rvi_errorf(err, RV_ERR_MODEL, "%s: %s %lld is not a multiple of %s %lld",
		                  g->path, KEY("embedding_length"), (long long)hp->n_embd,
		                  KEY2("attention.head_count"), (long long)hp->n_head);
	if (hp->n_head % hp->n_head_kv != 0)
		return rvi_errorf(err, RV_ERR_MODEL, "%s: %s %lld is not a multiple of %s %lld",
		                  g->path, KEY("attention.head_count"), (long long)hp->n_head,
		                  KEY2("attention.head_count_kv"), (long long)hp->n_head_kv);
	hp->head_dim = hp->n_embd / hp->n_head;
	/* Files may state the head width (SmolLM2's do); one that differs
	 * from n_embd / n_head is a layout this decoder does not run, unless
	 * the variant takes its head width from there (Gemma 3). */
	const char *head_keys[] = {KEY("attention.key_length"), KEY2("attention.value_length")};
	if (v->head_dim_key &&
	    (rc = rvi_load_dim(g, head_keys[0], true, 1, MAX_EMBD, &hp->head_dim, err)))
		return rc;
	for (int i = 0; i < 2; i++) {
		int64_t kl = hp->head_dim;
		if ((rc = rvi_load_dim(g, head_keys[i], false, 1, MAX_EMBD, &kl, err)))
			return rc;
		if (kl != hp->head_dim && v->head_dim_key)
			return rvi_errorf(err, RV_ERR_MODEL, "%s: %s %lld differs from %s %lld",
			                  g->path, head_keys[i], (long long)kl, head_keys[0],
			                  (long long)hp->head_dim);
		if (kl != hp->head_dim)
			return rvi_errorf(err, RV_ERR_UNSUPPORTED,
			                  "%s: %s %lld differs from llama.embedding_length / "
			                  "llama.attention.head_count = %lld (not supported)",
			                  g->path, head_keys[i], (long long)kl,
			                  (long long)hp->head_dim);
	}
	hp->n_rot = hp->head_dim;
	if ((rc = rvi_load_dim(g, KEY("rope.dimension_count"), false, 2, hp->head_dim, &hp->n_rot,
	                       err)))
		return rc;
	if (hp->n_rot % 2 != 0)
		return rvi_errorf(err, RV_ERR_MODEL, "%s: %s %lld is odd", g->path,
		                  KEY("rope.dimension_count"), (long long)hp->n_rot);
	if ((rc = rvi_gguf_get_f32(g, KEY("attention.layer_norm_rms_epsilon"), false, &hp->rms_eps,
	                           err)) ||
	    (rc = rvi_gguf_get_f32(g, KEY2("rope.freq_base"), false, &hp->rope_base, err)))
		return rc;
	if (!(hp->rms_eps > 0 && hp->rms_eps < 1))
		return rvi_errorf(err, RV_ERR_MODEL, "%s: %s %g is out of range", g->path,
		                  KEY("attention.layer_norm_rms_epsilon"), (double)hp->rms_eps);
	if (!(hp->rope_base > 1 && isfinite(hp->rope_base)))
		return rvi_errorf(err, RV_ERR_MODEL, "%s: %s %g is out of range", g->path,
		                  KEY("rope.freq_base"), (double)hp->rope_base);
#undef KEY
#undef KEY2
	return RV_OK;
}

static uint64_t weight_bytes(const rvi_weight *w)
{
	return (uint64_t)rvi_row_size(w->type, w->n_in) * (uint64_t)w->n_out;
}

int rvi_llama_load(rvi_llama *m, const rvi_gguf *g, rvi_err *err)
{
	static const rvi_llama_variant llama = {"llama", false, false, false, false};
	return rvi_llama_load_variant(m, g, &llama, err);
}

int rvi_llama_load_variant(rvi_llama *m, const rvi_gguf *g, const rvi_llama_variant *v,
                           rvi_err *err)
{
	memset(m, 0, sizeof(*m));
	rvi_llama_hparams *hp = &m->hp;
	int rc = load_hparams(hp, g, v, err);
	if (rc != RV_OK)
		return rc;
	char count_key[96];
	if ((rc = rvi_load_check_blocks(g, "blk.", hp->n_layer,
	                                key(count_key, sizeof(count_key), v->arch, "block_count"),
	                                err)))
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
		if (v->qkv_bias &&
		    ((rc = rvi_load_floats(g, TNAME("attn_q.bias"), q_dim, 0, &L->bq, err)) ||
		     (rc = rvi_load_floats(g, TNAME("attn_k.bias"), kv_dim, 0, &L->bk, err)) ||
		     (rc = rvi_load_floats(g, TNAME("attn_v.bias"), kv_dim, 0, &L->bv, err))))
			goto fail;
		if (v->qk_norm && ((rc = rvi_load_floats(g, TNAME("attn_q_norm.weight"), hd, 0,
		                                         &L->q_norm, err)) ||
		                   (rc = rvi_load_floats(g, TNAME("attn_k_norm.weight"), hd, 0,
		                                         &L->k_norm, err))))
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
			free(m->layers[il].bq);
			free(m->layers[il].bk);
			free(m->layers[il].bv);
			free(m->layers[il].q_norm);
			free(m->layers[il].k_norm);
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
	rvi_rope_free(&st->rope);
	rvi_arena_free(&st->arena);
	free(st->item_seq);
	free(st->item_row);
	free(st->item_nvis);
	free(st->item_pos);
	rvi_buf_free(&st->scratch);
	memset(st, 0, sizeof(*st));
}

int rvi_llama_state_init(rvi_llama_state *st, const rvi_llama *m, int64_t n_ctx, int64_t n_batch,
                         int n_threads, rvi_err *err)
{
	return rvi_llama_state_init_windowed(st, m, n_ctx, n_batch, n_threads, NULL, 0, err);
}

int rvi_llama_state_init_windowed(rvi_llama_state *st, const rvi_llama *m, int64_t n_ctx,
                                  int64_t n_batch, int n_threads, const bool *sliding,
                                  int64_t window, rvi_err *err)
{
	const rvi_llama_hparams *hp = &m->hp;
	memset(st, 0, sizeof(*st));
	if (n_ctx < 1 || n_batch < 1 || n_threads < 1 || (sliding && window < 1))
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "invalid context size %lld",
		                  (long long)n_ctx);
	if (n_batch > n_ctx)
		n_batch = n_ctx;
	/* A sliding layer's queries of one chunk read at most the window
	 * before the chunk's first row and the chunk itself (an image span
	 * that sees itself whole is one chunk): that many rows are kept. */
	int64_t *ring = sliding ? rvi_alloc((size_t)hp->n_layer, sizeof(int64_t)) : NULL;
	if (sliding && !ring)
		return rvi_errorf(err, RV_ERR_NOMEM, "out of memory");
	for (int64_t il = 0; ring && il < hp->n_layer; il++)
		ring[il] =
		    sliding[il] && window - 1 < n_ctx - n_batch ? window - 1 + n_batch : n_ctx;
	int rc = rvi_kvcache_init_rings(&st->kv, (int)hp->n_layer, n_ctx,
	                                hp->n_head_kv * hp->head_dim, ring, err);
	free(ring);
	if (rc == RV_OK)
		rc = rvi_rope_init(&st->rope, hp->n_rot, hp->rope_base, hp->rope_sections, n_ctx,
		                   err);
	if (rc != RV_OK) {
		rvi_llama_state_free(st);
		return rc;
	}
	st->n_batch = n_batch;
	st->n_threads = n_threads;
	const rvi_attn_heads heads = {hp->n_head, hp->n_head_kv, hp->head_dim, 0};
	const uint64_t nb = (uint64_t)n_batch, d = (uint64_t)hp->n_embd;
	const uint64_t q_dim = (uint64_t)(hp->n_head * hp->head_dim),
	               kv_dim = (uint64_t)st->kv.kv_dim;
	const uint64_t size[] = {nb * d,
	                         nb * (d > q_dim ? d : q_dim),
	                         nb * q_dim,
	                         nb * kv_dim,
	                         nb * kv_dim,
	                         nb * q_dim,
	                         nb * (uint64_t)hp->n_ff,
	                         nb * (uint64_t)hp->n_ff,
	                         rvi_attn_cached_scratch(&heads, n_ctx, n_threads),
	                         (uint64_t)hp->n_rot};
	float **const region[] = {&st->x,           &st->xb,       &st->q,  &st->k,
	                          &st->v,           &st->attn_out, &st->hb, &st->hb2,
	                          &st->att_scratch, &st->rope_buf};
	rc = rvi_arena_alloc(&st->arena, size, region, (int)(sizeof(size) / sizeof(size[0])));
	st->item_seq = rvi_alloc((size_t)n_batch, sizeof(int32_t));
	st->item_row = rvi_alloc((size_t)n_batch, sizeof(int64_t));
	st->item_nvis = rvi_alloc((size_t)n_batch, sizeof(int64_t));
	st->item_pos = rvi_alloc((size_t)n_batch, sizeof(rvi_pos));
	if (rc != RV_OK || !st->item_seq || !st->item_row || !st->item_nvis || !st->item_pos) {
		rvi_llama_state_free(st);
		return rvi_errorf(err, RV_ERR_NOMEM, "out of memory for a %lld-token batch",
		                  (long long)n_batch);
	}
	return RV_OK;
}

/* ---- forward ----------------------------------------------------------- */

/* Each item's sequence, cache row, position and visible rows (llama.h). */
int rvi_llama_place_items(rvi_llama_state *st, const rvi_batch *b, int64_t done, int64_t n,
                          rvi_err *err)
{
	const int32_t *seq = b->seq ? b->seq + done : NULL;
	if (!seq) {
		int cur = -1; /* the prefix of the current slot */
		const rvi_kvcache *kv = rvi_kv_slot(&st->kv, &cur);
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
			st->item_row[t] = kv->n_past + t;
			/* an image span sees itself whole */
			st->item_nvis[t] =
			    b->attn == RVI_ATTN_BIDIRECTIONAL ? kv->n_past + n : kv->n_past + t + 1;
		}
	} else {
		if (b->attn == RVI_ATTN_BIDIRECTIONAL)
			return rvi_errorf(err, RV_ERR_INTERNAL,
			                  "candidates' items attend causally");
		for (int64_t t = 0; t < n; t++) {
			int s = seq[t];
			const rvi_kvcache *kv = s >= 0 && s / RVI_KV_SEQS < st->kv.n_slots
			                            ? rvi_kv_slot(&st->kv, &s)
			                            : NULL;
			if (!kv || s >= kv->n_seq)
				return rvi_errorf(err, RV_ERR_INTERNAL,
				                  "sequence %d does not exist", seq[t]);
			int64_t before = 0; /* items of the sequence earlier in this chunk */
			for (int64_t u = 0; u < t; u++)
				before += seq[u] == seq[t];
			if (kv->seq_len[s] + before >= kv->seq_cap)
				return rvi_errorf(err, RV_ERR_CONTEXT,
				                  "candidate %d is full (%lld positions)", s,
				                  (long long)kv->seq_cap);
			st->item_seq[t] = seq[t];
			st->item_row[t] = kv->n_past + kv->seq_len[s] + before;
			st->item_nvis[t] = st->item_row[t] + 1;
		}
	}
	for (int64_t t = 0; t < n; t++) {
		const int32_t row = (int32_t)st->item_row[t];
		st->item_pos[t] = b->pos ? b->pos[done + t] : (rvi_pos){row, row, row};
	}
	return rvi_rope_prepare(&st->rope, st->item_pos, n, err);
}

/* One chunk of at most n_batch items, items [done, done + n) of b. */
static int forward_chunk(const rvi_llama *m, rvi_llama_state *st, const rvi_batch *b, int64_t done,
                         int64_t n, float *logits, bool all_logits, rvi_err *err)
{
	const rvi_llama_hparams *hp = &m->hp;
	const rvk_table *K = rvk_active();
	const int64_t d = hp->n_embd, hd = hp->head_dim;
	const int64_t q_dim = hp->n_head * hd, kv_dim = st->kv.kv_dim, ff = hp->n_ff;
	const int nt = st->n_threads;
	const rvi_attn_heads heads = {hp->n_head, hp->n_head_kv, hd, 1.0f / sqrtf((float)hd)};
	void (*const rotate)(float *, int64_t, int64_t, int64_t, const float *) =
	    hp->rope_half ? K->rope_neox : K->rope;
	rvi_buf *scr = &st->scratch;
	/* Candidates' rows must not depend on how many share the step: their
	 * products never take the BLAS path (the prompt's may). */
	const bool exact = b->seq != NULL;
	int rc = rvi_llama_place_items(st, b, done, n, err);
	if (rc != RV_OK)
		return rc;
	const rvi_attn_items items = {n, st->item_seq, st->item_nvis, NULL};

	/* x (n, d) = token embeddings or the caller's rows */
	for (int64_t t = 0; t < n; t++) {
		if (b->tokens) {
			const int32_t id = b->tokens[done + t];
			if (id < 0 || id >= hp->n_vocab)
				return rvi_errorf(err, RV_ERR_INVALID_ARG,
				                  "token id %d is outside the vocabulary (%lld)",
				                  id, (long long)hp->n_vocab);
			rvi_weight_row(&m->tok_embd, id, st->x + t * d);
		} else {
			memcpy(st->x + t * d, b->embd + (done + t) * d, (size_t)d * sizeof(float));
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

		/* + biases (Qwen2); rotate q and k by position, then write k, v
		 * to the cache */
		if (L->bq) /* Qwen2's q, k, v have biases */
			K->add_bias(st->q, L->bq, n, q_dim);
		if (L->bk)
			K->add_bias(st->k, L->bk, n, kv_dim);
		if (L->bv)
			K->add_bias(st->v, L->bv, n, kv_dim);
		/* Qwen3: each head of q and k = rmsnorm(head) * q_norm / k_norm,
		 * before RoPE */
		for (int64_t r = 0; L->q_norm && r < n * hp->n_head; r++)
			K->rmsnorm(st->q + r * hd, st->q + r * hd, L->q_norm, hd, hp->rms_eps);
		for (int64_t r = 0; L->k_norm && r < n * hp->n_head_kv; r++)
			K->rmsnorm(st->k + r * hd, st->k + r * hd, L->k_norm, hd, hp->rms_eps);
		for (int64_t t = 0; t < n; t++) {
			const float *cs = rvi_rope_row(&st->rope, &st->item_pos[t], st->rope_buf);
			/* adjacent pairs for LLaMA files (llama.cpp's converter
			 * permuted their Q and K rows so that this equals HF's
			 * half-split rotation); Qwen2 rows are not permuted: pair i
			 * is (x[i], x[i + n_rot/2]) */
			rotate(st->q + t * q_dim, hp->n_head, hd, hp->n_rot, cs);
			rotate(st->k + t * kv_dim, hp->n_head_kv, hd, hp->n_rot, cs);
			memcpy(rvi_kv_key(&st->kv, il, st->item_seq[t], st->item_row[t]),
			       st->k + t * kv_dim, (size_t)kv_dim * sizeof(float));
			memcpy(rvi_kv_value(&st->kv, il, st->item_seq[t], st->item_row[t]),
			       st->v + t * kv_dim, (size_t)kv_dim * sizeof(float));
		}

		/* attn_out (n, q_dim) = softmax(q k^T / sqrt(hd)) v over the rows
		 * each item sees */
		rvi_attn_cached(&heads, &st->kv, il, st->q, st->attn_out, &items, st->att_scratch,
		                nt);

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

	return rvi_llama_finish_chunk(m, st, b, done, n, logits, all_logits, err);
}

int rvi_llama_finish_chunk(const rvi_llama *m, rvi_llama_state *st, const rvi_batch *b,
                           int64_t done, int64_t n, float *logits, bool all_logits, rvi_err *err)
{
	const rvk_table *K = rvk_active();
	const int64_t d = m->hp.n_embd;
	/* the items are in the cache now */
	for (int64_t t = 0; t < (b->seq ? n : 1); t++) {
		int s = b->seq ? b->seq[done + t] : -1;
		rvi_kvcache *kv = rvi_kv_slot_mut(&st->kv, &s);
		if (s < 0)
			kv->n_past += n;
		else
			kv->seq_len[s]++;
	}

	if (!logits)
		return RV_OK;
	/* logits (rows, n_vocab) = rmsnorm(x) * output_norm @ W_out^T, for the
	 * last row only unless the caller wants every row */
	const int64_t first = all_logits ? 0 : n - 1;
	const int64_t rows = n - first;
	for (int64_t t = first; t < n; t++)
		K->rmsnorm(st->xb + (t - first) * d, st->x + t * d, m->output_norm, d,
		           m->hp.rms_eps);
	int rc = rvi_matmul_ex(&m->output, st->xb, rows, logits, st->n_threads, &st->scratch,
	                       b->seq != NULL);
	if (rc != RV_OK)
		return rvi_errorf(err, rc, "out of memory computing logits");
	return RV_OK;
}

int rvi_decode_chunks(const void *model, void *state, int64_t n_batch, int64_t n_vocab,
                      const rvi_batch *b, float *logits, bool all_logits, rvi_chunk_fn chunk,
                      rvi_err *err)
{
	if (b->attn == RVI_ATTN_BIDIRECTIONAL && b->n > n_batch)
		return rvi_errorf(
		    err, RV_ERR_INVALID_ARG,
		    "an image span of %lld rows that sees itself whole needs a batch of "
		    "at least that many (the context's batch is %lld)",
		    (long long)b->n, (long long)n_batch);
	for (int64_t done = 0; done < b->n;) {
		int64_t n = b->n - done < n_batch ? b->n - done : n_batch;
		bool last = done + n == b->n;
		float *lg = NULL;
		if (logits && all_logits)
			lg = logits + done * n_vocab;
		else if (logits && last)
			lg = logits;
		int rc = chunk(model, state, b, done, n, lg, all_logits, err);
		if (rc != RV_OK)
			return rc;
		done += n;
	}
	return RV_OK;
}

static int llama_chunk(const void *model, void *state, const rvi_batch *b, int64_t done, int64_t n,
                       float *logits, bool all_logits, rvi_err *err)
{
	return forward_chunk(model, state, b, done, n, logits, all_logits, err);
}

int rvi_llama_decode(const rvi_llama *m, rvi_llama_state *st, const rvi_batch *b, float *logits,
                     bool all_logits, rvi_err *err)
{
	return rvi_decode_chunks(m, st, st->n_batch, m->hp.n_vocab, b, logits, all_logits,
	                         llama_chunk, err);
}

int rvi_llama_forward(const rvi_llama *m, rvi_llama_state *st, const int32_t *tokens,
                      const float *embd, int64_t n_tok, float *logits, bool all_logits,
                      rvi_err *err)
{
	rvi_batch b = {n_tok, tokens, tokens ? NULL : embd, NULL, NULL, RVI_ATTN_CAUSAL};
	return rvi_llama_decode(m, st, &b, logits, all_logits, err);
}

/* ---- the family's table ------------------------------------------------- */

RVI_ARCH_LOAD_TYPED(rvi_llama, rvi_llama_load)

void rvi_llama_table_free(void *model)
{
	if (model)
		rvi_llama_free(model);
	free(model);
}

rvi_text_info rvi_llama_table_info(const void *model)
{
	const rvi_llama *m = model;
	const int *sec = m->hp.rope_sections;
	const int pos_dims = sec[0] || sec[1] || sec[2] ? 3 : 1;
	return (rvi_text_info){m->hp.n_vocab,   m->hp.n_embd, m->hp.n_ctx_train,
	                       m->weight_bytes, pos_dims,     RVI_ATTN_CAUSAL};
}

int rvi_llama_table_state_new(const void *model, int64_t n_ctx, int64_t n_batch, int n_threads,
                              void **state, rvi_err *err)
{
	rvi_llama_state *st = calloc(1, sizeof(*st));
	if (!st)
		return rvi_errorf(err, RV_ERR_NOMEM, "out of memory");
	int rc = rvi_llama_state_init(st, model, n_ctx, n_batch, n_threads, err);
	if (rc != RV_OK) {
		free(st);
		return rc;
	}
	*state = st;
	return RV_OK;
}

void rvi_llama_table_state_free(void *state)
{
	if (state)
		rvi_llama_state_free(state);
	free(state);
}

rvi_kvcache *rvi_llama_table_cache(void *state)
{
	return &((rvi_llama_state *)state)->kv;
}

int rvi_llama_table_decode(const void *model, void *state, const rvi_batch *b, float *logits,
                           bool all_logits, rvi_err *err)
{
	return rvi_llama_decode(model, state, b, logits, all_logits, err);
}

const rvi_text_arch rvi_llama_arch = RVI_LLAMA_TABLE("llama", arch_load);
