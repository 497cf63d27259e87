/* bestofn.c: decoding N candidates in batched steps from one shared prompt,
 * scoring them (own log-probs, or RLAIF-V's log-ratio against a reference
 * model by teacher forcing), and ranking them (see bestofn.h). */
#include "src/bestofn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "src/sampler.h"
#include "src/tokenizer/tokenizer.h"

uint64_t rv_candidate_seed(uint64_t seed, int i)
{
	/* candidate 0 keeps the seed, so -N 1 --seed S samples with S; the
	 * others get splitmix64 of (seed, i): unrelated streams */
	if (i == 0)
		return seed;
	uint64_t z = seed + 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* A candidate being decoded. */
typedef struct live_cand {
	rvi_sampler *smp;
	rvi_detok detok;
	size_t text_len, text_cap;
	bool done;
	const float *logits; /* where its next-token logits are */
	int32_t next;        /* the token drawn from them, and its log-probability */
	double next_lp;
} live_cand;

static int text_append(rv_candidate *c, live_cand *lc, const char *s, size_t len)
{
	if (lc->text_len + len + 1 > lc->text_cap) {
		size_t cap = lc->text_cap ? lc->text_cap : 256;
		while (cap < lc->text_len + len + 1)
			cap *= 2;
		char *t = realloc(c->text, cap);
		if (!t)
			return RV_ERR_NOMEM;
		c->text = t;
		lc->text_cap = cap;
	}
	memcpy(c->text + lc->text_len, s, len);
	lc->text_len += len;
	c->text[lc->text_len] = 0;
	return RV_OK;
}

/* Draws the next token of every live candidate, on n_threads: each has
 * its own sampler and logits, so the draws do not depend on the threads. */
static void draw_tokens(live_cand *lc, int n, int n_threads)
{
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(n_threads) if (n_threads > 1 && n > 1)
#endif
	for (int i = 0; i < n; i++)
		if (!lc[i].done)
			lc[i].next = rvi_sample(lc[i].smp, lc[i].logits, &lc[i].next_lp);
}

/* Takes candidate c's drawn token: records it, its raw log-probability and
 * its text, and decides whether c is finished. */
static int take_token(rv_context *ctx, const rv_gen_params *p, int64_t max_new, rv_candidate *c,
                      live_cand *lc, char *piece, size_t piece_cap, bool *stop)
{
	const rvi_tokenizer *tok = ctx->model->tok;
	const int32_t id = lc->next;
	c->tokens[c->n_tokens] = id;
	c->logprobs[c->n_tokens] = lc->next_lp;
	c->n_tokens++;
	int64_t len = rvi_detok_push(&lc->detok, id, piece, piece_cap);
	if (len < 0)
		return rvi_errorf(&ctx->err, RV_ERR_INTERNAL, "sampled token id %d is out of range",
		                  id);
	if (len > 0) {
		if (text_append(c, lc, piece, (size_t)len) != RV_OK)
			return rvi_errorf(&ctx->err, RV_ERR_NOMEM, "out of memory");
		if (p->on_text && p->on_text(piece, (size_t)len, p->user))
			*stop = true;
	}
	if (!p->ignore_eos && rvi_tokenizer_is_eog(tok, id)) {
		c->finish_reason = RV_FINISH_EOS;
		lc->done = true;
	} else if (c->n_tokens >= max_new) {
		c->finish_reason = RV_FINISH_LENGTH;
		lc->done = true;
	}
	return RV_OK;
}

int rvi_bestofn_decode(rv_context *ctx, const rv_gen_params *p, const float *prefix_logits,
                       int64_t max_new, rv_result *res)
{
	const rv_model *m = ctx->model;
	const int n = p->n_candidates > 1 ? p->n_candidates : 1;
	const int64_t n_vocab = m->info.n_vocab;
	int rc = RV_OK;

	res->candidates = rvi_zalloc((size_t)n, sizeof(rv_candidate));
	live_cand *lc = rvi_zalloc((size_t)n, sizeof(live_cand));
	float *logits = rvi_alloc((size_t)n * (size_t)n_vocab, sizeof(float));
	int32_t *batch_tok = rvi_alloc((size_t)n, sizeof(int32_t));
	int32_t *batch_seq = rvi_alloc((size_t)n, sizeof(int32_t));
	rvi_pos *batch_pos = rvi_alloc((size_t)n, sizeof(rvi_pos));
	size_t piece_cap = rvi_tokenizer_max_piece(m->tok) + 64;
	char *piece = malloc(piece_cap);
	if (!res->candidates || !lc || !logits || !batch_tok || !batch_seq || !batch_pos ||
	    !piece || max_new < 1) {
		rc = rvi_errorf(&ctx->err, max_new < 1 ? RV_ERR_CONTEXT : RV_ERR_NOMEM,
		                max_new < 1 ? "no room left in the context to generate"
		                            : "out of memory");
		goto out;
	}
	res->n_candidates = n;
	for (int i = 0; i < n && rc == RV_OK; i++) {
		rv_candidate *c = &res->candidates[i];
		c->tokens = rvi_alloc((size_t)max_new, sizeof(int32_t));
		c->logprobs = rvi_alloc((size_t)max_new, sizeof(double));
		c->text = calloc(1, 1);
		c->finish_reason = RV_FINISH_LENGTH;
		rvi_sampler_params sp = {p->temp, p->top_k, p->top_p, p->min_p,
		                         rv_candidate_seed(p->seed, i)};
		if (!c->tokens || !c->logprobs || !c->text)
			rc = rvi_errorf(&ctx->err, RV_ERR_NOMEM, "out of memory");
		else
			rc = rvi_sampler_new(&lc[i].smp, &sp, n_vocab, &ctx->err);
		rvi_detok_init(&lc[i].detok, m->tok);
		lc[i].logits = prefix_logits;
	}
	/* Every candidate continues the prompt in a suffix of its own; the
	 * last token of a candidate is never fed back, hence max_new - 1. */
	if (rc == RV_OK)
		rc = rvi_kvcache_fork(ctx->kv, n, max_new > 1 ? max_new - 1 : 1, &ctx->err);

	const double t0 = rvi_now_ms();
	int n_done = 0, n_generated = 0;
	bool stop = false;
	while (rc == RV_OK && n_done < n) {
		if (p->should_stop && p->should_stop(p->user)) {
			stop = true;
			break;
		}
		/* sample one token for every live candidate */
		draw_tokens(lc, n, ctx->n_threads);
		int nb = 0;
		for (int i = 0; i < n && rc == RV_OK; i++) {
			if (lc[i].done)
				continue;
			rc = take_token(ctx, p, max_new, &res->candidates[i], &lc[i], piece,
			                piece_cap, &stop);
			n_generated++;
			if (lc[i].done) {
				n_done++;
				continue;
			}
			const int n_tok = res->candidates[i].n_tokens;
			const int32_t q = (int32_t)(ctx->pos_next + n_tok - 1);
			batch_tok[nb] = res->candidates[i].tokens[n_tok - 1];
			batch_seq[nb] = i;
			batch_pos[nb] = (rvi_pos){q, q, q};
			nb++;
		}
		if (rc != RV_OK || stop)
			break;
		/* one batched step: every weight matrix is read once for all of them */
		if (nb > 0) {
			const rvi_batch b = {nb,        batch_tok, NULL,
			                     batch_seq, batch_pos, RVI_ATTN_CAUSAL};
			rc = rvi_context_decode(ctx, &b, logits, true);
			for (int r = 0; r < nb; r++)
				lc[batch_seq[r]].logits = logits + (int64_t)r * n_vocab;
		}
		if (p->on_progress)
			p->on_progress(n_done, n, n_generated, rvi_now_ms() - t0, p->user);
	}
	/* what a candidate held back of an incomplete UTF-8 sequence */
	for (int i = 0; i < n && rc == RV_OK; i++) {
		int64_t len = rvi_detok_flush(&lc[i].detok, piece, piece_cap);
		if (len > 0) {
			rc = text_append(&res->candidates[i], &lc[i], piece, (size_t)len);
			if (rc == RV_OK && p->on_text)
				p->on_text(piece, (size_t)len, p->user);
		}
	}
	if (rc == RV_OK && stop) {
		for (int i = 0; i < n; i++)
			if (!lc[i].done)
				res->candidates[i].finish_reason = RV_FINISH_STOPPED;
		rc = rvi_errorf(&ctx->err, RV_ERR_INTERRUPTED, "generation interrupted");
	}
	res->timings.decode_ms = rvi_now_ms() - t0;
	res->timings.decode_tokens = n_generated;
out:
	for (int i = 0; lc && i < n; i++)
		rvi_sampler_free(lc[i].smp);
	free(lc);
	free(logits);
	free(batch_tok);
	free(batch_seq);
	free(batch_pos);
	free(piece);
	return rc;
}

/* Items per teacher-forcing pass: bounds the logits buffer (64 x n_vocab). */
enum { SCORE_CHUNK = 64 };

int rvi_bestofn_score_reference(rv_context *ref, const float *prefix_logits, rv_result *res)
{
	const rv_model *m = ref->model;
	const int64_t n_vocab = m->info.n_vocab;
	int64_t max_len = 1;
	for (int i = 0; i < res->n_candidates; i++) {
		rv_candidate *c = &res->candidates[i];
		for (int t = 0; t < c->n_tokens; t++)
			if (c->tokens[t] < 0 || c->tokens[t] >= n_vocab)
				return rvi_errorf(&ref->err, RV_ERR_INVALID_ARG,
				                  "candidate %d: token %d is outside the reference "
				                  "model's vocabulary (%lld)",
				                  i, c->tokens[t], (long long)n_vocab);
		c->ref_logprobs =
		    rvi_alloc(c->n_tokens > 0 ? (size_t)c->n_tokens : 1, sizeof(double));
		if (!c->ref_logprobs)
			return rvi_errorf(&ref->err, RV_ERR_NOMEM, "out of memory");
		if (c->n_tokens > 0)
			c->ref_logprobs[0] = rvi_logprob(prefix_logits, n_vocab, c->tokens[0]);
		if (c->n_tokens > max_len)
			max_len = c->n_tokens;
	}
	/* Items: every token but each candidate's last, round robin position
	 * by position, so a chunk holds several candidates and each
	 * candidate's items stay in order across chunks. */
	int64_t n_items = 0;
	for (int i = 0; i < res->n_candidates; i++)
		n_items += res->candidates[i].n_tokens > 1 ? res->candidates[i].n_tokens - 1 : 0;
	int rc =
	    rvi_kvcache_fork(ref->kv, res->n_candidates, max_len > 1 ? max_len - 1 : 1, &ref->err);
	float *logits = rvi_alloc((size_t)SCORE_CHUNK * (size_t)n_vocab, sizeof(float));
	int32_t *tok = rvi_alloc(n_items > 0 ? (size_t)n_items : 1, sizeof(int32_t));
	int32_t *seq = rvi_alloc(n_items > 0 ? (size_t)n_items : 1, sizeof(int32_t));
	rvi_pos *pos = rvi_alloc(n_items > 0 ? (size_t)n_items : 1, sizeof(rvi_pos));
	if (rc == RV_OK && (!logits || !tok || !seq || !pos))
		rc = rvi_errorf(&ref->err, RV_ERR_NOMEM, "out of memory");
	int64_t k = 0;
	for (int64_t t = 0; rc == RV_OK && t + 1 < max_len; t++) {
		for (int i = 0; i < res->n_candidates; i++) {
			if (t + 1 < res->candidates[i].n_tokens) {
				const int32_t q = (int32_t)(ref->pos_next + t);
				tok[k] = res->candidates[i].tokens[t];
				seq[k] = i;
				pos[k] = (rvi_pos){q, q, q};
				k++;
			}
		}
	}
	/* the item of candidate i's token t predicts its token t + 1 */
	int64_t *next = rvi_zalloc((size_t)res->n_candidates, sizeof(int64_t));
	if (rc == RV_OK && !next)
		rc = rvi_errorf(&ref->err, RV_ERR_NOMEM, "out of memory");
	for (int64_t done = 0; rc == RV_OK && done < n_items; done += SCORE_CHUNK) {
		const int64_t nb = n_items - done < SCORE_CHUNK ? n_items - done : SCORE_CHUNK;
		const rvi_batch b = {nb, tok + done, NULL, seq + done, pos + done, RVI_ATTN_CAUSAL};
		rc = rvi_context_decode(ref, &b, logits, true);
		for (int64_t r = 0; rc == RV_OK && r < nb; r++) {
			rv_candidate *c = &res->candidates[seq[done + r]];
			const int64_t at = ++next[seq[done + r]];
			c->ref_logprobs[at] =
			    rvi_logprob(logits + r * n_vocab, n_vocab, c->tokens[at]);
		}
	}
	free(next);
	free(logits);
	free(tok);
	free(seq);
	free(pos);
	return rc;
}

static double reward(const rv_candidate *c, rv_score_mode mode, double beta, bool use_ref)
{
	double sum = 0;
	for (int t = 0; t < c->n_tokens; t++)
		sum += use_ref ? c->logprobs[t] - c->ref_logprobs[t] : c->logprobs[t];
	if (use_ref)
		sum *= beta;
	if (mode == RV_SCORE_MEAN)
		sum = c->n_tokens > 0 ? sum / c->n_tokens : -INFINITY;
	return sum;
}

/* true when a ranks before b */
static bool ranks_before(const rv_result *res, int a, int b)
{
	const rv_candidate *ca = &res->candidates[a], *cb = &res->candidates[b];
	const bool fa = ca->finish_reason == RV_FINISH_EOS, fb = cb->finish_reason == RV_FINISH_EOS;
	if (fa != fb)
		return fa;
	if (ca->score != cb->score)
		return ca->score > cb->score;
	return a < b;
}

int rvi_bestofn_rank(rv_result *res, rv_score_mode mode, double beta)
{
	const int n = res->n_candidates;
	for (int i = 0; i < n; i++) {
		rv_candidate *c = &res->candidates[i];
		const bool use_ref = c->ref_logprobs != NULL;
		c->score = reward(c, mode, beta, use_ref);
		if (use_ref) {
			double s = 0;
			for (int t = 0; t < c->n_tokens; t++)
				s += c->ref_logprobs[t];
			c->ref_score =
			    mode == RV_SCORE_MEAN && c->n_tokens > 0 ? s / c->n_tokens : s;
		}
	}
	/* rank = how many others rank before it (n is small) */
	res->chosen = 0;
	for (int i = 0; i < n; i++) {
		int r = 0;
		for (int j = 0; j < n; j++)
			r += j != i && ranks_before(res, j, i);
		res->candidates[i].rank = r;
		if (r == 0)
			res->chosen = i;
	}
	const rv_candidate *best = &res->candidates[res->chosen];
	const size_t nt = best->n_tokens > 0 ? (size_t)best->n_tokens : 1;
	free(res->text); /* ranking again replaces the copies */
	free(res->tokens);
	free(res->logprobs);
	res->text = strdup(best->text ? best->text : "");
	res->tokens = rvi_alloc(nt, sizeof(int32_t));
	res->logprobs = rvi_alloc(nt, sizeof(double));
	if (!res->text || !res->tokens || !res->logprobs)
		return RV_ERR_NOMEM;
	memcpy(res->tokens, best->tokens, (size_t)best->n_tokens * sizeof(int32_t));
	memcpy(res->logprobs, best->logprobs, (size_t)best->n_tokens * sizeof(double));
	res->n_tokens = best->n_tokens;
	res->finish_reason = best->finish_reason;
	return RV_OK;
}
