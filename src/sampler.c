/* sampler.c: next-token choice from logits (see sampler.h).
 *
 * Candidates are token ids in a scratch array allocated once per sampler.
 * top-k is a bounded heap selection (O(n log k)); top-p without top-k
 * heapifies all candidates and pops only as many as the nucleus needs, so
 * no call sorts the whole vocabulary. Ranking is by logit, ties to the lower
 * id, which makes every filter deterministic. Probabilities are computed in
 * double relative to the largest logit, so nothing overflows. The RNG is
 * xoshiro256** seeded through splitmix64: the same seed gives the same
 * draws on every platform. */
#include "src/sampler.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

struct rvi_sampler {
	rvi_sampler_params p;
	int64_t n_vocab;
	uint64_t rng[4];
	int32_t *idx; /* candidate ids */
	double *w;    /* per-candidate weights, same positions as idx */
};

rvi_sampler_params rvi_sampler_default_params(void)
{
	rvi_sampler_params p = {0.8f, 40, 0.95f, 0.05f, 0};
	return p;
}

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t xoshiro_next(uint64_t s[4])
{
	uint64_t r = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return r;
}

/* Uniform in [0, 1) with 53 random bits. */
static double uniform01(uint64_t s[4])
{
	return (double)(xoshiro_next(s) >> 11) * 0x1.0p-53;
}

int rvi_sampler_new(rvi_sampler **out, const rvi_sampler_params *p, int64_t n_vocab, rvi_err *err)
{
	if (!out || !p)
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "rvi_sampler_new: NULL argument");
	*out = NULL;
	if (n_vocab < 1 || n_vocab > INT32_MAX)
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "sampler: vocabulary size %lld",
		                  (long long)n_vocab);
	if (isnan(p->temp) || isnan(p->top_p) || isnan(p->min_p))
		return rvi_errorf(err, RV_ERR_INVALID_ARG,
		                  "sampler: temperature, top-p and min-p must be numbers");
	rvi_sampler *s = calloc(1, sizeof(*s));
	if (!s)
		return rvi_errorf(err, RV_ERR_NOMEM, "out of memory creating the sampler");
	s->p = *p;
	s->n_vocab = n_vocab;
	s->idx = rvi_alloc((size_t)n_vocab, sizeof(*s->idx));
	s->w = rvi_alloc((size_t)n_vocab, sizeof(*s->w));
	if (!s->idx || !s->w) {
		rvi_sampler_free(s);
		return rvi_errorf(err, RV_ERR_NOMEM, "out of memory creating the sampler");
	}
	uint64_t x = p->seed;
	for (int i = 0; i < 4; i++)
		s->rng[i] = splitmix64(&x);
	*out = s;
	return RV_OK;
}

void rvi_sampler_free(rvi_sampler *s)
{
	if (!s)
		return;
	free(s->idx);
	free(s->w);
	free(s);
}

/* Argmax over non-NaN logits, ties to the lowest id (0 if all are NaN). */
static int32_t argmax(const float *l, int64_t n)
{
	int32_t best = -1;
	for (int64_t i = 0; i < n; i++) {
		if (isnan(l[i]))
			continue;
		if (best < 0 || l[i] > l[best])
			best = (int32_t)i;
	}
	return best < 0 ? 0 : best;
}

/* Whether token a ranks before token b. */
static bool ranks_before(const float *l, int32_t a, int32_t b)
{
	return l[a] > l[b] || (l[a] == l[b] && a < b);
}

/* Restores the heap property below i in h[0..n). With best_root the root
 * is the best-ranked token, otherwise the worst. */
static void sift_down(int32_t *h, size_t n, size_t i, const float *l, bool best_root)
{
	int32_t x = h[i];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n &&
		    (best_root ? ranks_before(l, h[c + 1], h[c]) : ranks_before(l, h[c], h[c + 1])))
			c++;
		if (best_root ? !ranks_before(l, h[c], x) : !ranks_before(l, x, h[c]))
			break;
		h[i] = h[c];
		i = c;
	}
	h[i] = x;
}

static void heapify(int32_t *h, size_t n, const float *l, bool best_root)
{
	for (size_t i = n / 2; i-- > 0;)
		sift_down(h, n, i, l, best_root);
}

/* Keeps the k best of idx[0..m) in idx[0..k), sorted best first. */
static void select_top_k(int32_t *idx, size_t m, size_t k, const float *l)
{
	heapify(idx, k, l, false); /* root = worst of the kept */
	for (size_t j = k; j < m; j++) {
		if (ranks_before(l, idx[j], idx[0])) {
			idx[0] = idx[j];
			sift_down(idx, k, 0, l, false);
		}
	}
	/* Heap sort: moving the worst to the back leaves the best at the front. */
	for (size_t n = k; n > 1; n--) {
		int32_t t = idx[0];
		idx[0] = idx[n - 1];
		idx[n - 1] = t;
		sift_down(idx, n - 1, 0, l, false);
	}
}

/* log p relative to the best candidate (whose logit is lmax). */
static double rel(float l, float lmax)
{
	return isinf(lmax) ? 0.0 : (double)l - (double)lmax;
}

int32_t rvi_sample(rvi_sampler *s, const float *logits, double *logprob)
{
	const rvi_sampler_params *p = &s->p;
	int64_t n = s->n_vocab;
	int32_t id;

	if (!(p->temp > 0)) {
		id = argmax(logits, n);
		goto done;
	}

	/* Candidates: tokens with a finite chance; if some logit is +inf only
	 * those can be drawn. NaN and -inf never are. */
	float lmax = -INFINITY;
	for (int64_t i = 0; i < n; i++)
		if (logits[i] > lmax)
			lmax = logits[i];
	if (lmax == -INFINITY) {
		id = argmax(logits, n);
		goto done;
	}
	size_t m = 0;
	for (int64_t i = 0; i < n; i++) {
		float v = logits[i];
		if (isinf(lmax) ? v == lmax : (v > -INFINITY && !isnan(v)))
			s->idx[m++] = (int32_t)i;
	}
	int32_t *idx = s->idx;
	double *w = s->w;
	bool sorted = false;

	if (p->top_k > 0 && (size_t)p->top_k < m) {
		select_top_k(idx, m, (size_t)p->top_k, logits);
		m = (size_t)p->top_k;
		sorted = true;
	}

	if (p->top_p < 1.0f) {
		double z = 0;
		for (size_t i = 0; i < m; i++)
			z += exp(rel(logits[idx[i]], lmax));
		double cum = 0, target = (double)p->top_p;
		size_t keep = 0;
		if (sorted) {
			while (keep < m) {
				cum += exp(rel(logits[idx[keep]], lmax)) / z;
				keep++;
				if (cum >= target)
					break;
			}
		} else {
			/* Pop best-first; popped ids collect at the back, best last. */
			heapify(idx, m, logits, true);
			size_t h = m;
			while (h > 0) {
				int32_t best = idx[0];
				idx[0] = idx[h - 1];
				idx[h - 1] = best;
				h--;
				sift_down(idx, h, 0, logits, true);
				cum += exp(rel(logits[best], lmax)) / z;
				keep++;
				if (cum >= target)
					break;
			}
			for (size_t i = 0; i < keep; i++)
				idx[i] = idx[m - 1 - i];
		}
		m = keep;
	}

	if (p->min_p > 0.0f) {
		/* p_i >= min_p * p_max, i.e. exp(l_i - l_max) >= min_p; the best
		 * token always stays (min_p > 1 would otherwise empty the set). */
		size_t keep = 0;
		for (size_t i = 0; i < m; i++) {
			float v = logits[idx[i]];
			if (v == lmax || exp(rel(v, lmax)) >= (double)p->min_p)
				idx[keep++] = idx[i];
		}
		m = keep;
	}

	double sum = 0;
	for (size_t i = 0; i < m; i++) {
		w[i] = exp(rel(logits[idx[i]], lmax) / (double)p->temp);
		sum += w[i];
	}
	double u = uniform01(s->rng) * sum, cum = 0;
	id = idx[m - 1]; /* if rounding leaves u beyond the last partial sum */
	for (size_t i = 0; i < m; i++) {
		cum += w[i];
		if (u < cum) {
			id = idx[i];
			break;
		}
	}

done:
	if (logprob)
		*logprob = rvi_logprob(logits, n, id);
	return id;
}

double rvi_logprob(const float *logits, int64_t n, int32_t id)
{
	if (!logits || n <= 0 || id < 0 || id >= n)
		return NAN;
	float mx = -INFINITY;
	for (int64_t i = 0; i < n; i++) {
		if (isnan(logits[i]))
			return NAN;
		if (logits[i] > mx)
			mx = logits[i];
	}
	if (mx == -INFINITY)
		return NAN; /* no token has any probability */
	if (isinf(mx)) {
		/* The +inf logits share all the mass equally. */
		int64_t k = 0;
		for (int64_t i = 0; i < n; i++)
			k += logits[i] == mx;
		return logits[id] == mx ? -log((double)k) : -INFINITY;
	}
	double sum = 0;
	for (int64_t i = 0; i < n; i++)
		sum += exp((double)logits[i] - (double)mx);
	return ((double)logits[id] - (double)mx) - log(sum);
}
