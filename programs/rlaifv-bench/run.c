/* run.c: the measurements of rlaifv-bench: this machine's limits (a
 * STREAM-style read of an array larger than the caches, OpenBLAS sgemm),
 * the vision encoder, a text model's load, prefill, decode and best-of-N,
 * and the kernel table's decode mat-vec per weight type and ISA. Every
 * figure is a list of repetitions summarised by stats.c; what the
 * figures are compared with is decided in report.c. */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include "programs/rlaifv-bench/bench.h"

#include <cblas.h>
#include <malloc.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "src/api_internal.h"
#include "programs/rlaifv-bench/gguf_writer.h"
#include "models/clip.h"
#include "simd/kernels.h"
#include "models/llama.h"
#include "src/matmul.h"

void rvb_log(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("rlaifv-bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* ---- memory ------------------------------------------------------------------ */

/* Resident bytes now (file-backed pages of a mapped model included). */
static double rss_now(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long size = 0, resident = 0;
	if (!f)
		return 0;
	if (fscanf(f, "%ld %ld", &size, &resident) != 2)
		resident = 0;
	fclose(f);
	return (double)resident * (double)sysconf(_SC_PAGESIZE);
}

/* Starts a new peak-RSS window, so that each model's peak is its own and
 * not the largest of the run: Linux resets VmHWM when "5" is written to
 * clear_refs. Returns false when it cannot (the peak then covers the whole
 * process so far). */
static bool reset_peak_rss(void)
{
	FILE *f = fopen("/proc/self/clear_refs", "w");
	if (!f)
		return false;
	const bool ok = fputs("5", f) >= 0;
	return fclose(f) == 0 && ok;
}

static double peak_rss(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	double kib = -1;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %lf", &kib) == 1)
			break;
	if (f)
		fclose(f);
	return kib >= 0 ? kib * 1024.0 : (double)rvi_peak_rss();
}

static double file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (double)st.st_size : 0;
}

/* ---- limits -------------------------------------------------------------------- */

/* The sum of a[lo..hi) (hi - lo a multiple of 64 floats), with VEC-byte
 * vectors and eight independent accumulators: the loop is bound by the
 * loads alone. Wider loads read measurably faster on some machines (fewer
 * instructions in flight per cache line), and the limit must be the best
 * any kernel could reach, so the widest vectors the CPU has are used:
 * defined once per width, with the x86 ones compiled for their ISA by a
 * function attribute and called only after a CPU check. */
#define DEFINE_READ_SUM(fname, VEC, attr)                                                          \
	attr static float fname(const float *a, size_t lo, size_t hi)                              \
	{                                                                                          \
		typedef float vf __attribute__((vector_size(VEC)));                                \
		enum { L = VEC / 4 };                                                              \
		vf s[8] = {{0}};                                                                   \
		for (size_t i = lo; i + 8 * L <= hi; i += 8 * L)                                   \
			for (int j = 0; j < 8; j++) {                                              \
				vf x;                                                              \
				memcpy(&x, a + i + (size_t)j * L, VEC);                            \
				s[j] += x;                                                         \
			}                                                                          \
		float t = 0;                                                                       \
		for (int j = 0; j < 8; j++)                                                        \
			for (int k = 0; k < L; k++)                                                \
				t += s[j][k];                                                      \
		return t;                                                                          \
	}

DEFINE_READ_SUM(read_sum_base, 16, )
#if defined(__x86_64__) && defined(__GNUC__)
DEFINE_READ_SUM(read_sum_avx2, 32, __attribute__((target("avx2"))))
DEFINE_READ_SUM(read_sum_avx512, 64, __attribute__((target("avx512f"))))
#endif

typedef float (*read_sum_fn)(const float *a, size_t lo, size_t hi);

static read_sum_fn widest_read_sum(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f"))
		return read_sum_avx512;
	if (__builtin_cpu_supports("avx2"))
		return read_sum_avx2;
#endif
	return read_sum_base;
}

/* Reads n floats (a multiple of 64) once, split statically over nt threads
 * in contiguous parts, the way the decoder splits a weight matrix; returns
 * milliseconds. */
static double read_pass(const float *a, size_t n, int nt, float *sink)
{
	const read_sum_fn sum = widest_read_sum();
	const double t0 = rvi_now_ms();
	float total = 0;
	(void)nt;
#ifdef _OPENMP
#pragma omp parallel num_threads(nt) reduction(+ : total)
#endif
	{
#ifdef _OPENMP
		const size_t id = (size_t)omp_get_thread_num(), nth = (size_t)omp_get_num_threads();
#else
		const size_t id = 0, nth = 1;
#endif
		const size_t blocks = n / 64;
		total += sum(a, blocks * id / nth * 64, blocks * (id + 1) / nth * 64);
	}
	const double ms = rvi_now_ms() - t0;
	*sink += total;
	return ms;
}

static void blas_threads(int n)
{
#ifdef HAVE_OPENBLAS_SET_NUM_THREADS
	openblas_set_num_threads(n);
#else
	(void)n;
#endif
}

/* True when OpenBLAS runs its generic x86-64 ("Prescott", SSE3) kernels on
 * a CPU that has AVX2 or AVX-512: a DYNAMIC_ARCH build older than the CPU
 * does not recognise it and falls back to them, several times slower (set
 * OPENBLAS_CORETYPE to a core it knows, e.g. Haswell or SkylakeX). Both the
 * limit and the runtime's BLAS paths are then the slow ones. */
static bool blas_generic_fallback(void)
{
	return rvi_blas_fallback();
}

int rvb_sample_limits(const rvb_opts *o, rvb_limits *lim, rvi_err *err)
{
	if (lim->n_samples >= RVB_MAX_LIMIT_SAMPLES)
		return RV_OK;
	const size_t n = ((size_t)o->stream_mib << 20) / sizeof(float) / 64 * 64;
	const int sn = o->sgemm_n;
	const size_t mat = (size_t)sn * (size_t)sn * sizeof(float);
	float *a = NULL, *A = NULL, *B = NULL, *C = NULL;
	/* Allocated per sample, not kept: a resident 1 GiB array would count in
	 * the models' peak RSS. */
	if (posix_memalign((void **)&a, 64, n * sizeof(float)) != 0 ||
	    posix_memalign((void **)&A, 64, mat) != 0 ||
	    posix_memalign((void **)&B, 64, mat) != 0 ||
	    posix_memalign((void **)&C, 64, mat) != 0) {
		free(a);
		free(A);
		free(B);
		free(C);
		return rvi_errorf(err, RV_ERR_NOMEM, "out of memory for the %d MiB bandwidth array",
		                  o->stream_mib);
	}
	/* Written by the threads that will read it, so every page is really
	 * resident (an untouched page reads as the shared zero page, from
	 * cache). */
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(o->n_threads)
#endif
	for (size_t i = 0; i < n; i++)
		a[i] = (float)(i & 1023) * 1e-3f;
	uint64_t rng = 42;
	for (size_t i = 0; i < (size_t)sn * (size_t)sn; i++) {
		A[i] = (float)(rvb_rand(&rng) >> 40) * 0x1p-24f - 0.5f;
		B[i] = (float)(rvb_rand(&rng) >> 40) * 0x1p-24f - 0.5f;
	}
	float sink = 0;
	blas_threads(o->n_threads);
	read_pass(a, n, o->n_threads, &sink); /* warm-up */
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, sn, sn, sn, 1.0f, A, sn, B, sn, 0.0f,
	            C, sn);
	/* The best of three passes (two products), as STREAM reports: the
	 * limit is what the machine can do, not what a disturbed pass got. */
	double best = INFINITY;
	for (int p = 0; p < 3; p++) {
		const double ms = read_pass(a, n, o->n_threads, &sink);
		best = ms < best ? ms : best;
	}
	lim->bw[lim->n_samples] = (double)n * sizeof(float) / (best * 1e6);
	best = INFINITY;
	for (int p = 0; p < 2; p++) {
		const double t0 = rvi_now_ms();
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, sn, sn, sn, 1.0f, A, sn, B,
		            sn, 0.0f, C, sn);
		const double ms = rvi_now_ms() - t0;
		best = ms < best ? ms : best;
	}
	lim->gf[lim->n_samples] = rvb_gflops(2.0 * (double)sn * (double)sn * (double)sn, best);
	lim->n_samples++;
	lim->read_gbps = rvb_stats_of(lim->bw, lim->n_samples);
	lim->sgemm_gflops = rvb_stats_of(lim->gf, lim->n_samples);
	lim->stream_bytes = (double)n * sizeof(float);
	lim->sgemm_n = sn;
	lim->blas_fallback = blas_generic_fallback();
	if (sink == 12345.678f) /* keeps the reads from being optimised away */
		rvb_log("(checksum %g)", (double)sink);
	free(a);
	free(A);
	free(B);
	free(C);
	return RV_OK;
}

int rvb_measure_limits(const rvb_opts *o, rvb_limits *lim, rvi_err *err)
{
	memset(lim, 0, sizeof(*lim));
	for (int r = 0; r < o->reps; r++) {
		int rc = rvb_sample_limits(o, lim, err);
		if (rc != RV_OK)
			return rc;
	}
	return RV_OK;
}

/* ---- vision --------------------------------------------------------------------- */

int rvb_measure_vision(const rvb_opts *o, const char *path, rvb_vision_result *r, rvi_err *err)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->path, sizeof(r->path), "%s", path);
	r->file_bytes = file_size(path);
	const double t0 = rvi_now_ms();
	rvi_gguf *g = NULL;
	rvi_clip c;
	memset(&c, 0, sizeof(c));
	int rc = rvi_gguf_open(&g, path, err);
	if (rc == RV_OK)
		rc = rvi_clip_load(&c, g, err);
	if (rc != RV_OK) {
		if (g)
			rvi_gguf_close(g);
		return rc;
	}
	r->load_ms = rvi_now_ms() - t0;
	const rvi_clip_hparams *hp = &c.hp;
	r->type = rvi_type_name((int)c.layers[0].wq.type);
	r->image_size = hp->image_size;
	r->n_patches = hp->n_patches;
	r->n_layer = hp->n_layer;
	r->n_embd = hp->n_embd;
	const rvb_clip_shape shape = {hp->image_size, hp->patch_size,  hp->n_embd,  hp->n_ff,
	                              hp->n_layer,    hp->n_mm_hidden, hp->n_mm_out};
	r->flops = rvb_clip_flops(&shape);

	const size_t S = (size_t)hp->image_size;
	const size_t n_out = (size_t)(rvi_clip_n_output_tokens(&c) * rvi_clip_n_output_embd(&c));
	float *pixels = rvi_alloc(3 * S * S, sizeof(float));
	float *out = rvi_alloc(n_out, sizeof(float));
	double *ms = calloc((size_t)o->reps, sizeof(double));
	if (!pixels || !out || !ms) {
		rc = rvi_errorf(err, RV_ERR_NOMEM, "out of memory for the image");
		goto done;
	}
	/* A normalised image: values as (u8/255 - mean)/std give, -1.8..2.1 */
	uint64_t rng = 7;
	for (size_t i = 0; i < 3 * S * S; i++)
		pixels[i] = (float)(rvb_rand(&rng) >> 40) * 0x1p-24f * 3.9f - 1.8f;
	/* the first pass faults the mapped weights in: not measured */
	if ((rc = rvi_clip_encode(&c, pixels, o->n_threads, out, err)))
		goto done;
	for (int rep = 0; rep < o->reps; rep++) {
		const double t = rvi_now_ms();
		if ((rc = rvi_clip_encode(&c, pixels, o->n_threads, out, err)))
			goto done;
		ms[rep] = rvi_now_ms() - t;
	}
	r->finite = true;
	for (size_t i = 0; i < n_out; i++)
		r->finite = r->finite && isfinite(out[i]);
	r->encode_ms = rvb_stats_of(ms, o->reps);
	r->gflops = rvb_gflops(r->flops, r->encode_ms.median);
	r->ran = true;
done:
	free(pixels);
	free(out);
	free(ms);
	rvi_clip_free(&c);
	rvi_gguf_close(g);
	return rc;
}

/* ---- a text model -------------------------------------------------------------- */

/* Words the best-of-N prompt is made of; only its length matters. */
static const char *const prompt_words[] = {
    "the",   "small", "robot", "walked", "along", "a",     "quiet", "river", "and",   "counted",
    "every", "stone", "it",    "found",  "while", "birds", "sang",  "above", "green", "trees",
};

/* A prompt of about n tokens for ctx's tokenizer (malloc'ed). */
static char *make_prompt(rv_context *ctx, int n, int *n_tokens)
{
	size_t cap = 64, len = 0;
	char *s = calloc(1, cap);
	*n_tokens = 0;
	for (size_t w = 0; s; w++) {
		int32_t *toks = NULL;
		int nt = 0;
		if (rv_tokenize(ctx, s, -1, &toks, &nt) != RV_OK) {
			free(s);
			return NULL;
		}
		free(toks);
		*n_tokens = nt;
		if (nt >= n)
			break;
		const char *word =
		    prompt_words[w % (sizeof(prompt_words) / sizeof(prompt_words[0]))];
		if (len + strlen(word) + 2 > cap) {
			char *grown = realloc(s, cap * 2);
			if (!grown)
				free(s);
			s = grown;
			cap *= 2;
			if (!s)
				break;
		}
		len += (size_t)sprintf(s + len, "%s%s", len ? " " : "", word);
	}
	return s;
}

static int clamp(int v, int lo, int hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* n tokens appended to ctx's prompt cache at the positions their rows
 * give, the last one's logits into logits. */
static int forward(rv_context *ctx, const int32_t *tokens, int64_t n, float *logits, rvi_err *err)
{
	const rvi_batch b = {n, tokens, NULL, NULL, NULL, RVI_ATTN_CAUSAL};
	int rc = rvi_context_decode(ctx, &b, logits, false);
	if (rc != RV_OK)
		rvi_errorf(err, rc, "%s", ctx->err.msg);
	return rc;
}

/* Fills the prefix cache's first n positions of every layer with random
 * keys and values, so that decoding at depth n can be timed without a
 * prompt of n tokens first: the time per token does not depend on the
 * values, and the pages are then really resident (a never-written page
 * reads as the zero page, from cache, and would flatter the timing). */
static void fill_kv(rvi_kvcache *kv, int64_t n)
{
	uint64_t rng = 99;
	for (int il = 0; il < kv->n_layer; il++) {
		float *k = kv->k + (int64_t)il * kv->n_ctx * kv->kv_dim;
		float *v = kv->v + (int64_t)il * kv->n_ctx * kv->kv_dim;
		for (int64_t i = 0; i < n * kv->kv_dim; i++) {
			const uint64_t r = rvb_rand(&rng);
			k[i] = (float)(r & 0xffff) * 0x1p-15f - 1.0f;
			v[i] = (float)(r >> 48) * 0x1p-15f - 1.0f;
		}
	}
}

int rvb_measure_model(const rvb_opts *o, const char *path, const char *name, rvb_model_result *r,
                      rvi_err *err)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", name);
	snprintf(r->path, sizeof(r->path), "%s", path);
	r->file_bytes = file_size(path);
	char ebuf[RVI_ERR_MSG_MAX];
	/* What earlier measurements freed goes back to the system first, so the
	 * window starts from the process's own baseline (OpenBLAS's buffers,
	 * the code), not from heap pages glibc kept for reuse. */
	malloc_trim(0);
	reset_peak_rss();
	const double rss0 = rss_now();
	r->rss_before_load = rss0;
	rv_model *m = NULL;
	rv_context *ctx = NULL;
	rv_model_params mp = rv_model_default_params();
	mp.n_threads = o->n_threads;
	int rc = rv_model_load(path, &mp, &m, ebuf, sizeof(ebuf));
	if (rc != RV_OK)
		return rvi_errorf(err, RV_ERR_MODEL, "%s", ebuf);
	r->load_ms = rv_model_load_ms(m);
	r->load_rss_growth = rss_now() - rss0;
	r->mapped = rvb_load_mapped(r->load_rss_growth, r->file_bytes);
	if (m->text != &rvi_llama_arch) {
		rc = rvi_errorf(err, RV_ERR_UNSUPPORTED, "%s: the benchmark times llama models",
		                path);
		goto done;
	}
	r->weight_bytes = (double)m->info.weight_bytes;
	const rvi_llama_hparams *hp = &((const rvi_llama *)m->text_model)->hp;
	const rvb_llama_shape shape = {hp->n_embd,    hp->n_layer,  hp->n_ff,   hp->n_head,
	                               hp->n_head_kv, hp->head_dim, hp->n_vocab};
	r->shape = shape;

	/* The context is the model's (at most 4096): every point must fit. */
	const int n_ctx = (int)(hp->n_ctx_train < 4096 ? hp->n_ctx_train : 4096);
	rv_context_params cp = rv_context_default_params();
	cp.n_ctx = n_ctx;
	cp.n_batch = 512;
	cp.n_threads = o->n_threads;
	cp.no_cache = 1;
	if ((rc = rv_context_new(m, &cp, &ctx, ebuf, sizeof(ebuf))) != RV_OK) {
		rvi_errorf(err, rc, "%s", ebuf);
		goto done;
	}
	r->n_ctx = n_ctx;
	r->kv_bytes = rvb_llama_kv_cache_bytes(&shape, n_ctx);
	const int T = clamp(o->decode_tokens, 1, n_ctx / 2); /* a tiny model's context is short */
	int max_prefill = 0, max_depth = 0;
	r->n_prefill = o->n_prefill;
	for (int i = 0; i < o->n_prefill; i++) {
		r->prefill[i].size = clamp(o->prefill[i], 1, n_ctx - 1);
		max_prefill = r->prefill[i].size > max_prefill ? r->prefill[i].size : max_prefill;
	}
	r->n_decode = o->n_depth;
	for (int i = 0; i < o->n_depth; i++) {
		r->decode[i].size = clamp(o->depth[i], 0, n_ctx - T - 1);
		max_depth = r->decode[i].size > max_depth ? r->decode[i].size : max_depth;
	}
	const int max_tok = max_prefill > T ? max_prefill : T;
	int32_t *tokens = rvi_alloc((size_t)max_tok, sizeof(int32_t));
	float *logits = rvi_alloc((size_t)hp->n_vocab, sizeof(float));
	const size_t n_samples = (size_t)o->reps * RVB_MAX_POINTS;
	double *pre_ms = calloc(n_samples, sizeof(double));
	double *dec_ms = calloc(n_samples, sizeof(double));
	double *bon_ms = calloc(n_samples, sizeof(double));
	double *bon_tps = calloc(n_samples, sizeof(double));
	char *prompt = make_prompt(ctx, clamp(o->prompt_tokens, 1, n_ctx / 2), &r->prompt_tokens);
	if (!tokens || !logits || !pre_ms || !dec_ms || !bon_ms || !bon_tps || !prompt) {
		rc = rvi_errorf(err, RV_ERR_NOMEM, "out of memory");
		goto free_bufs;
	}
	r->n_bon = o->n_bon;
	for (int i = 0; i < o->n_bon; i++)
		r->bon[i].size = o->bon[i];
	const int n_predict = clamp(o->n_predict, 1, n_ctx - r->prompt_tokens - 2);
	/* random ids past the specials and byte tokens when there are some */
	uint64_t rng = 1234;
	const uint64_t lo = hp->n_vocab > 512 ? 259 : 0;
	for (int i = 0; i < max_tok; i++)
		tokens[i] = (int32_t)(lo + rvb_rand(&rng) % ((uint64_t)hp->n_vocab - lo));

	/* warm-up: faults every weight page in (a mapped model is read on
	 * first use, which is load time, not compute time) */
	rvb_log("%s: warm-up", name);
	rvi_kvcache_clear(ctx->kv);
	if ((rc = forward(ctx, tokens, max_tok < 16 ? max_tok : 16, logits, err)) ||
	    (rc = forward(ctx, tokens, 1, logits, err)))
		goto free_bufs;
	fill_kv(ctx->kv, max_depth);

	r->finite = true;
	for (int rep = 0; rep < o->reps; rep++) {
		rvb_log("%s: repetition %d of %d", name, rep + 1, o->reps);
		/* Repetitions interleave the measurements, so a burst of other
		 * work on the machine spoils one sample of each, not all of one. */
		for (int i = 0; i < r->n_prefill; i++) {
			const int n = r->prefill[i].size;
			rvi_kvcache_clear(ctx->kv);
			const double t0 = rvi_now_ms();
			if ((rc = forward(ctx, tokens, n, logits, err)))
				goto free_bufs;
			pre_ms[i * o->reps + rep] = rvi_now_ms() - t0;
			for (int64_t j = 0; j < hp->n_vocab; j++)
				r->finite = r->finite && isfinite(logits[j]);
		}
		for (int i = 0; i < r->n_decode; i++) {
			rvi_kvcache_clear(ctx->kv);
			ctx->kv->n_past = r->decode[i].size;
			const double t0 = rvi_now_ms();
			for (int t = 0; t < T; t++)
				if ((rc = forward(ctx, &tokens[t], 1, logits, err)))
					goto free_bufs;
			dec_ms[i * o->reps + rep] = rvi_now_ms() - t0;
		}
		for (int i = 0; i < r->n_bon; i++) {
			rv_gen_params gp = rv_gen_default_params();
			gp.n_predict = n_predict;
			gp.ignore_eos = 1; /* every candidate the same length */
			gp.temp = 0.8f;
			gp.n_candidates = r->bon[i].size;
			gp.seed = (uint64_t)rep;
			rv_result res;
			const double t0 = rvi_now_ms();
			if ((rc = rv_generate(ctx, prompt, &gp, &res)) != RV_OK) {
				rvi_errorf(err, rc, "best-of-%d: %s", gp.n_candidates,
				           rv_context_error(ctx));
				goto free_bufs;
			}
			bon_ms[i * o->reps + rep] = rvi_now_ms() - t0;
			bon_tps[i * o->reps + rep] =
			    rvb_per_second(res.timings.decode_tokens, res.timings.decode_ms);
			r->bon[i].tokens = res.timings.decode_tokens;
			rv_result_free(&res);
		}
	}

	for (int i = 0; i < r->n_prefill; i++) {
		rvb_point *p = &r->prefill[i];
		double tps[RVB_MAX_REPS];
		for (int rep = 0; rep < o->reps; rep++)
			tps[rep] = rvb_per_second(p->size, pre_ms[i * o->reps + rep]);
		p->ms = rvb_stats_of(&pre_ms[i * o->reps], o->reps);
		p->tok_s = rvb_stats_of(tps, o->reps);
		p->flops = rvb_llama_flops(&shape, 0, p->size, 1);
		p->gflops = rvb_gflops(p->flops, p->ms.median);
	}
	for (int i = 0; i < r->n_decode; i++) {
		rvb_point *p = &r->decode[i];
		double tps[RVB_MAX_REPS];
		for (int rep = 0; rep < o->reps; rep++)
			tps[rep] = rvb_per_second(T, dec_ms[i * o->reps + rep]);
		p->ms = rvb_stats_of(&dec_ms[i * o->reps], o->reps);
		p->tok_s = rvb_stats_of(tps, o->reps);
		p->tokens = T;
		/* the weights and, on average over the T tokens, the KV cache */
		p->bytes_tok =
		    r->weight_bytes + rvb_llama_kv_read_bytes(&shape, (int64_t)p->size + T / 2);
		p->gbps = p->tok_s.median * p->bytes_tok / 1e9;
	}
	for (int i = 0; i < r->n_bon; i++) {
		rvb_point *p = &r->bon[i];
		p->ms = rvb_stats_of(&bon_ms[i * o->reps], o->reps);
		p->tok_s = rvb_stats_of(&bon_tps[i * o->reps], o->reps);
	}
	int base = 0; /* speed-ups are over the smallest N (1 by default) */
	for (int i = 1; i < r->n_bon; i++)
		base = r->bon[i].size < r->bon[base].size ? i : base;
	for (int i = 0; i < r->n_bon; i++)
		r->bon[i].ratio = rvb_ratio(r->bon[i].tok_s.median, r->bon[base].tok_s.median);
	r->peak_rss = peak_rss();
	r->rss_budget = rvb_rss_budget(r->file_bytes, r->kv_bytes, RVB_TARGET_RSS_SLACK);
free_bufs:
	free(tokens);
	free(logits);
	free(pre_ms);
	free(dec_ms);
	free(bon_ms);
	free(bon_tps);
	free(prompt);
done:
	rv_context_free(ctx);
	rv_model_free(m);
	return rc;
}

/* ---- kernels ----------------------------------------------------------------------- */

static const enum rvi_type kernel_types[] = {RVI_TYPE_F32,  RVI_TYPE_F16,  RVI_TYPE_BF16,
                                             RVI_TYPE_Q8_0, RVI_TYPE_Q4_0, RVI_TYPE_Q4_K,
                                             RVI_TYPE_Q5_K, RVI_TYPE_Q6_K};
#define N_KERNEL_TYPES (sizeof(kernel_types) / sizeof(kernel_types[0]))

int rvb_measure_kernels(const rvb_opts *o, rvb_report *rep, rvi_err *err)
{
	rep->n_usable_isas = rvk_usable_isas(rep->usable_isas, 8);
	if (rep->n_usable_isas > 8)
		rep->n_usable_isas = 8;
	const int n_isa = rep->n_usable_isas;
	const int64_t n_in = o->quick ? 2048 : 8192;
	const size_t target = (size_t)o->stream_mib << 20;
	const size_t max_rows = target / rvi_row_size(RVI_TYPE_Q4_0, n_in) + 1;
	rep->kern = calloc(N_KERNEL_TYPES * (size_t)n_isa, sizeof(*rep->kern));
	char *w = NULL;
	float *x = rvi_alloc((size_t)n_in, sizeof(float));
	float *y = rvi_alloc(max_rows, sizeof(float));
	double *gbps = calloc((size_t)o->reps, sizeof(double));
	rvi_buf scratch = {0};
	int rc = RV_OK;
	if (!rep->kern || !x || !y || !gbps || posix_memalign((void **)&w, 64, target) != 0) {
		rc = rvi_errorf(err, RV_ERR_NOMEM, "out of memory for a %d MiB matrix",
		                o->stream_mib);
		goto done;
	}
	const char *saved = rvk_active()->name;
	uint64_t rng = 5;
	for (int64_t i = 0; i < n_in; i++)
		x[i] = (float)(rvb_rand(&rng) >> 40) * 0x1p-24f - 0.5f;
	for (size_t ti = 0; ti < N_KERNEL_TYPES; ti++) {
		const enum rvi_type t = kernel_types[ti];
		const size_t row = rvi_row_size(t, n_in);
		const int64_t n_out = (int64_t)(target / row);
		rvb_fill_random(t, w, (uint64_t)n_out * (uint64_t)n_in, &rng);
		const rvi_weight W = {t, n_in, n_out, w};
		for (int ii = 0; ii < n_isa; ii++) {
			rvb_kernel_result *k = &rep->kern[rep->n_kern];
			k->isa = rep->usable_isas[ii];
			k->type = rvi_type_name((int)t);
			k->bytes = (double)row * (double)n_out;
			k->n_in = n_in;
			k->n_out = n_out;
			rvb_log("kernels: %s %s (%.0f MiB)", k->isa, k->type, k->bytes / 1048576.0);
			if (!rvk_select(k->isa, err->msg, sizeof(err->msg))) {
				rc = err->status = RV_ERR_INVALID_ARG;
				goto restore;
			}
			/* the first call quantizes nothing new but sizes the scratch */
			if ((rc = rvi_matmul(&W, x, 1, y, o->n_threads, &scratch))) {
				rc = rvi_errorf(err, rc, "%s %s mat-vec failed", k->isa, k->type);
				goto restore;
			}
			for (int r = 0; r < o->reps; r++) {
				const double t0 = rvi_now_ms();
				rvi_matmul(&W, x, 1, y, o->n_threads, &scratch);
				gbps[r] = k->bytes / ((rvi_now_ms() - t0) * 1e6);
			}
			k->gbps = rvb_stats_of(gbps, o->reps);
			rep->n_kern++;
		}
	}
restore:
	rvk_select(saved, NULL, 0);
done:
	rvi_buf_free(&scratch);
	free(w);
	free(x);
	free(y);
	free(gbps);
	return rc;
}

void rvb_apply_limits(rvb_report *r)
{
	const double bw = r->limits.read_gbps.median, sgemm = r->limits.sgemm_gflops.median;
	r->vision.ratio_sgemm = rvb_ratio(r->vision.gflops, sgemm);
	for (int i = 0; i < r->n_kern; i++)
		r->kern[i].ratio = rvb_ratio(r->kern[i].gbps.median, bw);
	for (int i = 0; i < r->n_models; i++) {
		rvb_model_result *m = &r->models[i];
		for (int j = 0; j < m->n_prefill; j++)
			m->prefill[j].ratio = rvb_ratio(m->prefill[j].gflops, sgemm);
		for (int j = 0; j < m->n_decode; j++)
			m->decode[j].ratio = rvb_decode_bw_ratio(m->decode[j].tok_s.median,
			                                         m->decode[j].bytes_tok, bw * 1e9);
	}
}
