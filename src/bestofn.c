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
struct rvi_live_cand {
	rvi_sampler *smp;
	rvi_detok detok;
	size_t text_len, text_cap;
	bool done;
	int32_t next; /* the token drawn for it, and its log-probability */
	double next_lp;
};
typedef struct rvi_live_cand live_cand;

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

int rvi_job_start(rv_context *ctx, rvi_job *j, const rv_gen_params *p, const float *prefix_logits,
                  int64_t max_new, int slot, rv_result *res)
{
	const rv_model *m = ctx->model;
	const int n = p->n_candidates > 1 ? p->n_candidates : 1;
	const int64_t n_vocab = m->info.n_vocab;
	memset(j, 0, sizeof(*j));
	j->p = *p;
	j->max_new = max_new;
	j->pos0 = ctx->pos_next;
	j->slot = slot;
	j->n = n;
	j->res = res;
	if (max_new < 1)
		return rvi_errorf(&ctx->err, RV_ERR_CONTEXT,
		                  "no room left in the context to generate");
	res->candidates = rvi_zalloc((size_t)n, sizeof(rv_candidate));
	j->lc = rvi_zalloc((size_t)n, sizeof(live_cand));
	if (!res->candidates || !j->lc)
		return rvi_errorf(&ctx->err, RV_ERR_NOMEM, "out of memory");
	res->n_candidates = n;
	int rc = RV_OK;
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
			rc = rvi_sampler_new(&j->lc[i].smp, &sp, n_vocab, &ctx->err);
		rvi_detok_init(&j->lc[i].detok, m->tok);
	}
	/* Every candidate continues the prompt in a suffix of its own; the
	 * last token of a candidate is never fed back, hence max_new - 1. */
	ctx->kv->cur = slot;
	if (rc == RV_OK)
		rc = rvi_kvcache_fork(ctx->kv, n, max_new > 1 ? max_new - 1 : 1, &ctx->err);
	/* the first token of every candidate comes from the prompt's logits */
	for (int i = 0; i < n && rc == RV_OK; i++)
		j->lc[i].next = rvi_sample(j->lc[i].smp, prefix_logits, &j->lc[i].next_lp);
	j->t0 = rvi_now_ms();
	return rc;
}

void rvi_step_free(rvi_step *st)
{
	free(st->logits);
	free(st->tok);
	free(st->seq);
	free(st->pos);
	free(st->who);
	free(st->piece);
	memset(st, 0, sizeof(*st));
}

/* Room in st for rows items of a step. */
static int step_reserve(rv_context *ctx, rvi_step *st, int rows)
{
	if (!st->piece) {
		st->piece_cap = rvi_tokenizer_max_piece(ctx->model->tok) + 64;
		if (!(st->piece = malloc(st->piece_cap)))
			return rvi_errorf(&ctx->err, RV_ERR_NOMEM, "out of memory");
	}
	if (rows <= st->cap)
		return RV_OK;
	const size_t n = (size_t)rows;
	float *lg = realloc(st->logits, n * (size_t)ctx->model->info.n_vocab * sizeof(float));
	st->logits = lg ? lg : st->logits;
	int32_t *tok = realloc(st->tok, n * sizeof(int32_t));
	st->tok = tok ? tok : st->tok;
	int32_t *seq = realloc(st->seq, n * sizeof(int32_t));
	st->seq = seq ? seq : st->seq;
	rvi_pos *pos = realloc(st->pos, n * sizeof(rvi_pos));
	st->pos = pos ? pos : st->pos;
	live_cand **who = realloc(st->who, n * sizeof(live_cand *));
	st->who = who ? who : st->who;
	if (!lg || !tok || !seq || !pos || !who)
		return rvi_errorf(&ctx->err, RV_ERR_NOMEM, "out of memory");
	st->cap = rows;
	return RV_OK;
}

int rvi_jobs_step(rv_context *ctx, rvi_job *const *jobs, int n_jobs, rvi_step *st, bool *stop)
{
	const int64_t n_vocab = ctx->model->info.n_vocab;
	int rows = 0;
	for (int k = 0; k < n_jobs; k++)
		rows += jobs[k]->n - jobs[k]->n_done;
	int rc = step_reserve(ctx, st, rows > 0 ? rows : 1);
	/* take every live candidate's drawn token; those going on feed it */
	int nb = 0;
	for (int k = 0; k < n_jobs && rc == RV_OK; k++) {
		rvi_job *j = jobs[k];
		for (int i = 0; i < j->n && rc == RV_OK; i++) {
			live_cand *lc = &j->lc[i];
			rv_candidate *c = &j->res->candidates[i];
			if (lc->done)
				continue;
			rc = take_token(ctx, &j->p, j->max_new, c, lc, st->piece, st->piece_cap,
			                stop);
			j->n_generated++;
			if (lc->done) {
				j->n_done++;
				continue;
			}
			const int32_t q = (int32_t)(j->pos0 + c->n_tokens - 1);
			st->tok[nb] = c->tokens[c->n_tokens - 1];
			st->seq[nb] = j->slot * RVI_KV_SEQS + i;
			st->pos[nb] = (rvi_pos){q, q, q};
			st->who[nb] = lc;
			nb++;
		}
	}
	if (rc != RV_OK || *stop)
		return rc;
	/* one batched step: every weight matrix is read once for all of them */
	if (nb > 0) {
		const rvi_batch b = {nb, st->tok, NULL, st->seq, st->pos, RVI_ATTN_CAUSAL};
		rc = rvi_context_decode(ctx, &b, st->logits, true);
	}
	/* draw the next token of each, on the context's threads: each has its
	 * own sampler and logits, so the draws do not depend on the threads */
	if (rc == RV_OK) {
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1)                                                      \
    num_threads(ctx->n_threads) if (ctx->n_threads > 1 && nb > 1)
#endif
		for (int r = 0; r < nb; r++)
			st->who[r]->next =
			    rvi_sample(st->who[r]->smp, st->logits + (int64_t)r * n_vocab,
			               &st->who[r]->next_lp);
	}
	for (int k = 0; k < n_jobs; k++) {
		const rvi_job *j = jobs[k];
		if (j->p.on_progress)
			j->p.on_progress(j->n_done, j->n, j->n_generated, rvi_now_ms() - j->t0,
			                 j->p.user);
	}
	return rc;
}

int rvi_job_end(rv_context *ctx, rvi_job *j, rvi_step *st, bool stopped, int rc)
{
	rv_result *res = j->res;
	/* what a candidate held back of an incomplete UTF-8 sequence */
	if (rc == RV_OK && !st->piece)
		rc = step_reserve(ctx, st, 1);
	for (int i = 0; j->lc && i < j->n && rc == RV_OK; i++) {
		int64_t len = rvi_detok_flush(&j->lc[i].detok, st->piece, st->piece_cap);
		if (len > 0) {
			rc = text_append(&res->candidates[i], &j->lc[i], st->piece, (size_t)len);
			if (rc == RV_OK && j->p.on_text)
				j->p.on_text(st->piece, (size_t)len, j->p.user);
		}
	}
	if (rc == RV_OK && stopped) {
		for (int i = 0; i < j->n; i++)
			if (!j->lc[i].done)
				res->candidates[i].finish_reason = RV_FINISH_STOPPED;
		rc = rvi_errorf(&ctx->err, RV_ERR_INTERRUPTED, "generation interrupted");
	}
	if (j->t0 > 0) {
		res->timings.decode_ms = rvi_now_ms() - j->t0;
		res->timings.decode_tokens = j->n_generated;
	}
	for (int i = 0; j->lc && i < j->n; i++)
		rvi_sampler_free(j->lc[i].smp);
	free(j->lc);
	j->lc = NULL;
	return rc;
}

int rvi_bestofn_decode(rv_context *ctx, const rv_gen_params *p, const float *prefix_logits,
                       int64_t max_new, rv_result *res)
{
	rvi_job j;
	rvi_job *jobs[1] = {&j};
	rvi_step st = {0};
	int rc = rvi_job_start(ctx, &j, p, prefix_logits, max_new, ctx->kv->cur, res);
	bool stop = false;
	while (rc == RV_OK && j.n_done < j.n && !stop) {
		if (p->should_stop && p->should_stop(p->user))
			stop = true;
		else
			rc = rvi_jobs_step(ctx, jobs, 1, &st, &stop);
	}
	rc = rvi_job_end(ctx, &j, &st, stop, rc);
	rvi_step_free(&st);
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
