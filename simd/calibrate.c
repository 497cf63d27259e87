/* calibrate.c: the kernel sets timed against each other (see the measured
 * tables in kernels.h).
 *
 * Each weight type runs, on each usable set, the loops src/matmul.c runs
 * for it (activations quantized, then prepared when the set has the
 * prepared path, then the dots by row or by tile), on one thread, over
 * random weights: one token on weights that fit the core's cache and on a
 * buffer larger than the last-level cache (decode), RVK_BATCH_ROWS tokens
 * (candidates) and RVK_PREFILL_ROWS tokens (a prompt) in cache. A phase's
 * figure is the best of its passes within the time budget: the other
 * processes of a shared machine can only make a pass slower. */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include "simd/kernels.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CAL_N_IN 4096 /* elements per weight row: a multiple of every block */
/* Weights that stay in a core's L2 (Zen 4/5: 1 MiB, Intel: 1-2 MiB) */
#define CAL_CACHE_BYTES ((size_t)192 << 10)
/* Streamed weights: twice the last-level cache the system reports, at
 * least 64 MiB (more than a desktop's or a Zen CCD's 32 MiB), at most 512. */
#define CAL_STREAM_MIN   ((size_t)64 << 20)
#define CAL_STREAM_MAX   ((size_t)512 << 20)
#define CAL_QUICK_STREAM ((size_t)1 << 20)
#define CAL_MAX_PASSES   64

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* Bytes of one row of n elements (n a multiple of 256) of a weight or
 * activation type. */
static size_t row_bytes(enum rvi_type t, int64_t n)
{
	switch (t) {
	case RVI_TYPE_F32:
		return (size_t)n * 4;
	case RVI_TYPE_F16:
	case RVI_TYPE_BF16:
		return (size_t)n * 2;
	case RVI_TYPE_Q8_0:
		return (size_t)n / RV_QK8_0 * sizeof(rv_block_q8_0);
	case RVI_TYPE_Q4_0:
		return (size_t)n / RV_QK4_0 * sizeof(rv_block_q4_0);
	case RVI_TYPE_Q4_K:
		return (size_t)n / RV_QK_K * sizeof(rv_block_q4_K);
	case RVI_TYPE_Q5_K:
		return (size_t)n / RV_QK_K * sizeof(rv_block_q5_K);
	case RVI_TYPE_Q6_K:
		return (size_t)n / RV_QK_K * sizeof(rv_block_q6_K);
	case RVI_TYPE_Q8_K:
		return (size_t)n / RV_QK_K * sizeof(rv_block_q8_K);
	default:
		return 0;
	}
}

/* The activation type of a weight type's dots (tensor.c's traits say the
 * same; simd/ does not see them). */
static enum rvi_type act_type(enum rvi_type t)
{
	switch (t) {
	case RVI_TYPE_Q8_0:
	case RVI_TYPE_Q4_0:
		return RVI_TYPE_Q8_0;
	case RVI_TYPE_Q4_K:
	case RVI_TYPE_Q5_K:
	case RVI_TYPE_Q6_K:
		return RVI_TYPE_Q8_K;
	default:
		return RVI_TYPE_F32;
	}
}

/* Buffers of one calibration: weights, activations (float, quantized,
 * prepared) and outputs, sized for the largest phase. */
typedef struct cal_bufs {
	char *w;
	size_t w_bytes;
	float *x;   /* RVK_PREFILL_ROWS rows of CAL_N_IN */
	char *act;  /* their quantized rows */
	char *prep; /* their prepared rows */
	float *y;
	size_t y_floats;
} cal_bufs;

#define ACT_ROW ((size_t)CAL_N_IN * 4 + 64)

/* One product of n_tok tokens with n_rows rows of w, as matmul.c runs it on
 * one thread (PREP_ROWS x PREP_TOKENS tiles on the prepared path). */
static void run_pass(const rvk_table *k, enum rvi_type t, const cal_bufs *b, int64_t n_rows,
                     int64_t n_tok)
{
	const int64_t n = CAL_N_IN;
	const enum rvi_type at = act_type(t);
	const size_t w_row = row_bytes(t, n);
	const size_t a_row = at == RVI_TYPE_F32 ? (size_t)n * 4 : row_bytes(at, n);
	const char *act = (const char *)b->x;
	if (at != RVI_TYPE_F32) {
		for (int64_t j = 0; j < n_tok; j++)
			k->quant[at](b->x + j * n, b->act + (size_t)j * a_row, n);
		act = b->act;
	}
	if (k->vec_dot_prep[t]) {
		const size_t p_row = (k->prep_size[t](n) + 63) / 64 * 64;
		for (int64_t j = 0; j < n_tok; j++)
			k->prep[t](n, act + (size_t)j * a_row, b->prep + (size_t)j * p_row);
		for (int64_t r0 = 0; r0 < n_rows; r0 += 64) {
			const int64_t nr = n_rows - r0 < 64 ? n_rows - r0 : 64;
			for (int64_t t0 = 0; t0 < n_tok; t0 += 32) {
				const int64_t nt = n_tok - t0 < 32 ? n_tok - t0 : 32;
				k->vec_dot_prep[t](n, b->y + t0 * n_rows + r0, n_rows,
				                   b->w + (size_t)r0 * w_row, w_row, nr,
				                   b->prep + (size_t)t0 * p_row, p_row, nt);
			}
		}
		return;
	}
	for (int64_t r = 0; r < n_rows; r++) {
		const char *wr = b->w + (size_t)r * w_row;
		if (k->vec_dot_rows[t] && n_tok > 1) {
			k->vec_dot_rows[t](n, &b->y[r], n_rows, wr, act, a_row, n_tok);
			continue;
		}
		for (int64_t j = 0; j < n_tok; j++)
			k->vec_dot[t](n, &b->y[j * n_rows + r], wr, act + (size_t)j * a_row);
	}
}

/* GB/s of weights read by the best pass of a phase: passes until
 * budget_ms (at least two), after one to warm the cache up when the
 * weights fit in it (streamed ones come from memory every pass). */
static double time_phase(const rvk_table *k, enum rvi_type t, const cal_bufs *b, bool stream,
                         int64_t n_rows, int64_t n_tok, double budget_ms)
{
	if (!stream)
		run_pass(k, t, b, n_rows, n_tok);
	double best = 0;
	const double start = now_ms();
	for (int pass = 0; pass < CAL_MAX_PASSES; pass++) {
		const double t0 = now_ms();
		run_pass(k, t, b, n_rows, n_tok);
		const double ms = now_ms() - t0;
		if (pass == 0 || ms < best)
			best = ms;
		if (pass >= 1 && now_ms() - start >= budget_ms)
			break;
	}
	const double bytes = (double)row_bytes(t, CAL_N_IN) * (double)n_rows;
	return best > 0 ? bytes / (best * 1e6) : 0;
}

/* Random weights valid in every type: every 16-bit half is a normal fp16
 * of magnitude in [0.125, 0.25) (so any fp16 scale, and any f32 or bf16
 * that two halves make, is a normal number), quants random. */
static void fill_weights(char *w, size_t bytes)
{
	uint64_t s = 0x9e3779b97f4a7c15u;
	for (size_t i = 0; i + 1 < bytes; i += 2) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		const uint16_t h = (uint16_t)(0x3000u | (s & 0x03ffu) | ((s >> 20 & 1u) << 15));
		memcpy(w + i, &h, 2);
	}
}

/* The largest prepared row of any set and type (64-byte multiple). */
static size_t max_prep_row(const rvk_choice *c)
{
	size_t m = 64;
	for (int si = 0; si < c->n_sets; si++) {
		const rvk_table *k = rvk_table_for(c->sets[si], NULL, 0);
		for (int ti = 0; k && ti < RVK_N_CHOICE_TYPES; ti++) {
			const enum rvi_type t = rvk_choice_types[ti];
			const size_t p =
			    k->prep_size[t] ? (k->prep_size[t](CAL_N_IN) + 63) / 64 * 64 : 0;
			m = p > m ? p : m;
		}
	}
	return m;
}

static size_t stream_bytes(void)
{
	long llc = -1;
#ifdef _SC_LEVEL3_CACHE_SIZE
	llc = sysconf(_SC_LEVEL3_CACHE_SIZE);
#endif
	const size_t twice = llc > 0 ? (size_t)llc * 2 : 0;
	return twice < CAL_STREAM_MIN   ? CAL_STREAM_MIN
	       : twice > CAL_STREAM_MAX ? CAL_STREAM_MAX
	                                : twice;
}

bool rvk_calibrate(rvk_choice *c, double budget_ms)
{
	rvk_choice_default(c);
	if (c->n_sets <= 1)
		return true; /* nothing to choose from */
	cal_bufs b = {0};
	b.w_bytes = budget_ms > 0 ? stream_bytes() : CAL_QUICK_STREAM;
	/* rows: at most the stream buffer's rows of the narrowest type */
	const size_t narrow = row_bytes(RVI_TYPE_Q4_0, CAL_N_IN);
	const size_t y_stream = b.w_bytes / narrow + 1;
	const size_t y_cache = (size_t)RVK_PREFILL_ROWS * (CAL_CACHE_BYTES / narrow + 1);
	b.y_floats = y_stream > y_cache ? y_stream : y_cache;
	bool ok = posix_memalign((void **)&b.w, 64, b.w_bytes) == 0;
	ok = ok && posix_memalign((void **)&b.x, 64, (size_t)RVK_PREFILL_ROWS * CAL_N_IN * 4) == 0;
	ok = ok && posix_memalign((void **)&b.act, 64, RVK_PREFILL_ROWS * ACT_ROW) == 0;
	ok = ok && posix_memalign((void **)&b.prep, 64, RVK_PREFILL_ROWS * max_prep_row(c)) == 0;
	ok = ok && (b.y = malloc(b.y_floats * sizeof(float))) != NULL;
	if (ok) {
		fill_weights(b.w, b.w_bytes);
		uint64_t s = 12345;
		for (size_t i = 0; i < (size_t)RVK_PREFILL_ROWS * CAL_N_IN; i++) {
			s = s * 6364136223846793005u + 1442695040888963407u;
			b.x[i] = (float)(s >> 40) * 0x1p-24f - 0.5f;
		}
		/* scalar only when it is the one set (handled above): it never wins */
		const int n_sets = c->n_sets - (strcmp(c->sets[c->n_sets - 1], "scalar") == 0);
		for (int ti = 0; ti < RVK_N_CHOICE_TYPES; ti++) {
			const enum rvi_type t = rvk_choice_types[ti];
			const size_t w_row = row_bytes(t, CAL_N_IN);
			const int64_t cache_rows = (int64_t)(CAL_CACHE_BYTES / w_row);
			const int64_t stream_rows = (int64_t)(b.w_bytes / w_row);
			/* interleaved: each phase on every set in turn, so a burst
			 * of load elsewhere hits them alike */
			for (int ph = 0; ph < RVK_N_PHASES; ph++)
				for (int si = 0; si < n_sets; si++) {
					const rvk_table *k = rvk_table_for(c->sets[si], NULL, 0);
					const bool stream = ph == RVK_PHASE_DECODE_STREAM;
					const int64_t n_tok = ph == RVK_PHASE_BATCH ? RVK_BATCH_ROWS
					                      : ph == RVK_PHASE_PREFILL
					                          ? RVK_PREFILL_ROWS
					                          : 1;
					c->gbps[ti][si][ph] =
					    k ? time_phase(k, t, &b, stream,
					                   stream ? stream_rows : cache_rows, n_tok,
					                   budget_ms)
					      : 0;
				}
		}
		rvk_choose(c);
	}
	free(b.w);
	free(b.x);
	free(b.act);
	free(b.prep);
	free(b.y);
	return ok;
}

void rvk_choose(rvk_choice *c)
{
	/* relative weights of the phases in the exact score: decode streams
	 * its weights, so that phase counts twice */
	static const double exact_weight[RVK_N_PHASES] = {1, 2, 1, 0};
	for (int ti = 0; ti < RVK_N_CHOICE_TYPES; ti++) {
		const double *ref = c->gbps[ti][0];
		double best_exact = 0, best_wide = 1;
		c->exact[ti] = c->wide[ti] = c->n_sets > 0 ? c->sets[0] : "scalar";
		for (int ph = 0; ph < RVK_N_PHASES; ph++)
			best_exact += exact_weight[ph];
		const double keep_exact = best_exact * (1 - RVK_CHOICE_MARGIN);
		const double keep_wide = 1 - RVK_CHOICE_MARGIN;
		for (int si = 1; si < c->n_sets; si++) {
			const double *g = c->gbps[ti][si];
			/* time relative to the first set's, summed over the phases */
			double score = 0;
			bool measured = true;
			for (int ph = 0; ph < RVK_N_PHASES; ph++) {
				if (exact_weight[ph] == 0)
					continue;
				measured = measured && g[ph] > 0 && ref[ph] > 0;
				score += measured ? exact_weight[ph] * ref[ph] / g[ph] : 0;
			}
			if (measured && score < keep_exact && score < best_exact) {
				best_exact = score;
				c->exact[ti] = c->sets[si];
			}
			const double wide = g[RVK_PHASE_PREFILL] > 0 && ref[RVK_PHASE_PREFILL] > 0
			                        ? ref[RVK_PHASE_PREFILL] / g[RVK_PHASE_PREFILL]
			                        : 2;
			if (wide < keep_wide && wide < best_wide) {
				best_wide = wide;
				c->wide[ti] = c->sets[si];
			}
		}
	}
}
