/* test_sampler.c: the sampler's contract (sampler.h): greedy ties, seeded
 * determinism, which tokens each filter keeps (checked statistically with a
 * fixed seed, so the outcome is reproducible), and log-probabilities that
 * match a naive double log-softmax whatever the sampling parameters. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "src/sampler.h"
#include "tests/testutil.h"

static rvi_sampler *make(float temp, int top_k, float top_p, float min_p, uint64_t seed,
                         int64_t n_vocab)
{
	rvi_sampler_params p = {temp, top_k, top_p, min_p, seed};
	rvi_sampler *s = NULL;
	rvi_err err = {0};
	int rc = rvi_sampler_new(&s, &p, n_vocab, &err);
	CHECK(rc == RV_OK && s, "rvi_sampler_new: %d %s", rc, err.msg);
	return s;
}

/* Logits whose softmax is exactly probs (up to rounding). */
static void logits_from_probs(const double *probs, float *logits, int n)
{
	for (int i = 0; i < n; i++)
		logits[i] = probs[i] > 0 ? (float)log(probs[i]) + 3.0f : -INFINITY;
}

static double naive_logprob(const float *l, int n, int id)
{
	double z = 0;
	for (int i = 0; i < n; i++)
		z += exp((double)l[i]);
	return log(exp((double)l[id]) / z);
}

static void test_params(void)
{
	rvi_sampler_params d = rvi_sampler_default_params();
	CHECK(d.temp == 0.8f && d.top_k == 40 && d.top_p == 0.95f && d.min_p == 0.05f &&
	          d.seed == 0,
	      "defaults %g %d %g %g", d.temp, d.top_k, d.top_p, d.min_p);
	rvi_sampler *s = (rvi_sampler *)1;
	rvi_err err = {0};
	CHECK(rvi_sampler_new(&s, &d, 0, &err) == RV_ERR_INVALID_ARG && s == NULL, "n_vocab 0");
	rvi_sampler_params bad = d;
	bad.temp = NAN;
	CHECK(rvi_sampler_new(&s, &bad, 10, &err) == RV_ERR_INVALID_ARG, "NaN temperature");
	rvi_sampler_free(NULL);
}

static void test_greedy(void)
{
	float l[10] = {0, 1, 2, 5, -1, 5, 3, 5, 0, 1};
	rvi_sampler *s = make(0.0f, 40, 0.95f, 0.05f, 7, 10);
	double lp = 0;
	CHECK(rvi_sample(s, l, &lp) == 3, "greedy tie goes to the lowest id");
	CHECK(fabs(lp - naive_logprob(l, 10, 3)) < 1e-12, "greedy logprob %g", lp);
	rvi_sampler_free(s);

	s = make(-1.0f, 0, 1.0f, 0.0f, 7, 10);
	l[0] = NAN;
	l[9] = 6;
	CHECK(rvi_sample(s, l, NULL) == 9, "negative temperature is greedy, NaN skipped");
	for (int i = 0; i < 10; i++)
		l[i] = NAN;
	CHECK(rvi_sample(s, l, NULL) == 0, "all NaN -> 0");
	rvi_sampler_free(s);
}

static void random_logits(float *l, int n, uint64_t *st, float spread)
{
	for (int i = 0; i < n; i++)
		l[i] = tu_rand_uniform(st, -spread, spread);
}

static void test_determinism(void)
{
	enum { N = 1000, DRAWS = 300 };
	float *l = malloc(N * sizeof(*l));
	uint64_t st = 12345;
	random_logits(l, N, &st, 2.0f);
	rvi_sampler *a = make(1.0f, 0, 1.0f, 0.0f, 42, N);
	rvi_sampler *b = make(1.0f, 0, 1.0f, 0.0f, 42, N);
	rvi_sampler *c = make(1.0f, 0, 1.0f, 0.0f, 43, N);
	int same_ab = 1, same_ac = 0;
	for (int i = 0; i < DRAWS; i++) {
		int32_t x = rvi_sample(a, l, NULL), y = rvi_sample(b, l, NULL);
		int32_t z = rvi_sample(c, l, NULL);
		same_ab &= x == y;
		same_ac += x == z;
		CHECK(x >= 0 && x < N, "id %d in range", x);
	}
	CHECK(same_ab, "same seed gives the same sequence");
	CHECK(same_ac < DRAWS / 4, "different seeds differ (%d/%d equal)", same_ac, DRAWS);
	rvi_sampler_free(a);
	rvi_sampler_free(b);
	rvi_sampler_free(c);
	free(l);
}

static void test_top_k_one(void)
{
	enum { N = 500 };
	float l[N];
	uint64_t st = 99;
	rvi_sampler *s = make(1.5f, 1, 1.0f, 0.0f, 5, N);
	int ok = 1;
	for (int r = 0; r < 200; r++) {
		random_logits(l, N, &st, 3.0f);
		if (r % 3 == 0)
			l[(r * 7) % N] = l[(r * 13 + 1) % N] = 10.0f; /* ties */
		ok &= rvi_sample(s, l, NULL) == rvi_sample(s, l, NULL);
		int32_t g = 0;
		for (int i = 1; i < N; i++)
			if (l[i] > l[g])
				g = i;
		ok &= rvi_sample(s, l, NULL) == g;
	}
	CHECK(ok, "top_k = 1 is greedy");
	rvi_sampler_free(s);
}

/* Draws many times and returns counts per id. */
static void histogram(rvi_sampler *s, const float *l, int n, int draws, int *count)
{
	memset(count, 0, (size_t)n * sizeof(*count));
	for (int i = 0; i < draws; i++) {
		int32_t id = rvi_sample(s, l, NULL);
		if (id >= 0 && id < n)
			count[id]++;
	}
}

/* Checks that exactly the ids with expect[i] > 0 were drawn, each with the
 * expected frequency within 5 standard deviations. */
static void check_freqs(const int *count, const double *expect, int n, int draws, const char *what)
{
	for (int i = 0; i < n; i++) {
		if (expect[i] <= 0) {
			CHECK(count[i] == 0, "%s: id %d drawn %d times, should be filtered", what,
			      i, count[i]);
			continue;
		}
		double f = (double)count[i] / draws;
		double sd = sqrt(expect[i] * (1 - expect[i]) / draws);
		CHECK(fabs(f - expect[i]) < 5 * sd + 1e-9, "%s: id %d freq %.4f expected %.4f",
		      what, i, f, expect[i]);
	}
}

static void test_filters(void)
{
	enum { N = 8, DRAWS = 40000 };
	const double probs[N] = {0.05, 0.40, 0.02, 0.25, 0.15, 0.10, 0.02, 0.01};
	float l[N];
	int count[N];
	logits_from_probs(probs, l, N);

	/* top-p 0.7: 0.40 + 0.25 = 0.65 < 0.7, + 0.15 = 0.80 -> {1, 3, 4}. */
	const double e_p[N] = {0, 0.40 / 0.80, 0, 0.25 / 0.80, 0.15 / 0.80, 0, 0, 0};
	rvi_sampler *s = make(1.0f, 0, 0.7f, 0.0f, 1, N);
	histogram(s, l, N, DRAWS, count);
	check_freqs(count, e_p, N, DRAWS, "top-p");
	rvi_sampler_free(s);
	/* The same through the sorted (top-k) path. */
	s = make(1.0f, 6, 0.7f, 0.0f, 2, N);
	histogram(s, l, N, DRAWS, count);
	check_freqs(count, e_p, N, DRAWS, "top-k 6 + top-p");
	rvi_sampler_free(s);

	/* top-k 2 renormalises before top-p: {1: .615, 3: .385}; top-p 0.6 keeps {1}. */
	s = make(1.0f, 2, 0.6f, 0.0f, 3, N);
	const double e_kp[N] = {0, 1, 0, 0, 0, 0, 0, 0};
	histogram(s, l, N, 2000, count);
	check_freqs(count, e_kp, N, 2000, "top-k 2 + top-p 0.6");
	rvi_sampler_free(s);

	/* min-p 0.3: keep p >= 0.12 -> {1, 3, 4}. */
	s = make(1.0f, 0, 1.0f, 0.3f, 4, N);
	histogram(s, l, N, DRAWS, count);
	check_freqs(count, e_p, N, DRAWS, "min-p");
	rvi_sampler_free(s);

	/* top-k 3 alone. */
	s = make(1.0f, 3, 1.0f, 0.0f, 5, N);
	histogram(s, l, N, DRAWS, count);
	check_freqs(count, e_p, N, DRAWS, "top-k 3");
	rvi_sampler_free(s);

	/* No filter: the distribution itself. */
	s = make(1.0f, 0, 1.0f, 0.0f, 6, N);
	histogram(s, l, N, DRAWS, count);
	check_freqs(count, probs, N, DRAWS, "unfiltered");
	rvi_sampler_free(s);

	/* Temperature 2 on survivors {1, 3, 4}: weights sqrt(p). */
	double e_t[N] = {0};
	double z = sqrt(0.40) + sqrt(0.25) + sqrt(0.15);
	e_t[1] = sqrt(0.40) / z;
	e_t[3] = sqrt(0.25) / z;
	e_t[4] = sqrt(0.15) / z;
	s = make(2.0f, 3, 1.0f, 0.0f, 7, N);
	histogram(s, l, N, DRAWS, count);
	check_freqs(count, e_t, N, DRAWS, "top-k 3, temperature 2");
	rvi_sampler_free(s);

	/* -inf and NaN logits are never drawn. */
	float l2[N] = {-INFINITY, 0, NAN, 0, -INFINITY, 0, NAN, 0};
	const double e_inf[N] = {0, 0.25, 0, 0.25, 0, 0.25, 0, 0.25};
	s = make(1.0f, 0, 1.0f, 0.0f, 8, N);
	histogram(s, l2, N, DRAWS, count);
	check_freqs(count, e_inf, N, DRAWS, "-inf/NaN excluded");
	rvi_sampler_free(s);
}

static void test_logprob(void)
{
	enum { N = 32000 };
	float *l = malloc(N * sizeof(*l));
	uint64_t st = 2024;
	random_logits(l, N, &st, 8.0f);
	double worst = 0;
	for (int id = 0; id < N; id += 997) {
		double d = fabs(rvi_logprob(l, N, id) - naive_logprob(l, N, id));
		if (d > worst)
			worst = d;
	}
	CHECK(worst < 1e-10, "logprob vs naive: %g", worst);

	/* Stable for large logits (a naive exp would overflow). */
	float *big = malloc(N * sizeof(*big));
	for (int i = 0; i < N; i++)
		big[i] = l[i] + 5000.0f;
	double lp_big = rvi_logprob(big, N, 17), lp = rvi_logprob(l, N, 17);
	CHECK(isfinite(lp_big) && fabs(lp_big - lp) < 1e-3, "shifted logprob %g vs %g", lp_big, lp);
	CHECK(isnan(rvi_logprob(l, N, -1)) && isnan(rvi_logprob(l, N, N)), "out of range -> NaN");

	/* Reported logprob is that of the raw distribution, whatever the
	 * temperature and filters. */
	const float temps[3] = {0.3f, 1.0f, 3.0f};
	int ok = 1;
	for (int k = 0; k < 3; k++) {
		rvi_sampler *s = make(temps[k], 40, 0.95f, 0.05f, 11, N);
		for (int r = 0; r < 20; r++) {
			double got = 1;
			int32_t id = rvi_sample(s, l, &got);
			ok &= id >= 0 && id < N && fabs(got - naive_logprob(l, N, id)) < 1e-10;
		}
		rvi_sampler_free(s);
	}
	CHECK(ok, "rvi_sample logprob is the untempered log-softmax");
	free(big);
	free(l);
}

static void test_speed(void)
{
	enum { N = 32000, DRAWS = 200 };
	float *l = malloc(N * sizeof(*l));
	uint64_t st = 77;
	random_logits(l, N, &st, 10.0f);
	const rvi_sampler_params cfg[3] = {
	    {0.8f, 40, 0.95f, 0.05f, 1}, /* defaults */
	    {0.8f, 0, 0.95f, 0.0f, 1},   /* top-p over the whole vocabulary */
	    {1.0f, 0, 1.0f, 0.0f, 1},    /* plain */
	};
	for (int c = 0; c < 3; c++) {
		rvi_sampler *s = NULL;
		rvi_err err = {0};
		CHECK(rvi_sampler_new(&s, &cfg[c], N, &err) == RV_OK, "%s", err.msg);
		if (!s)
			continue;
		double t0 = (double)clock() / CLOCKS_PER_SEC;
		for (int i = 0; i < DRAWS; i++)
			rvi_sample(s, l, NULL);
		double ms = ((double)clock() / CLOCKS_PER_SEC - t0) * 1e3 / DRAWS;
		printf("sampler config %d: %.3f ms per draw over %d tokens\n", c, ms, N);
		/* Speed is the benchmark's business; this only shows the figure. */
		rvi_sampler_free(s);
	}
	free(l);
}

int main(void)
{
	test_params();
	test_greedy();
	test_determinism();
	test_top_k_one();
	test_filters();
	test_logprob();
	test_speed();
	return tu_finish("test_sampler");
}
