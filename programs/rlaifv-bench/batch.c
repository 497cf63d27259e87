/* batch.c: --batch-tasks N: the throughput of a batch of image questions
 * (what rlaifv-infer --batch --parallel K runs) on the bench models: N
 * tasks of one answer each, decoded K at a time with rv_generate_batch,
 * for each K of --parallel-list. Figures: tasks per hour and the aggregate
 * rate of generated tokens (every task's tokens over the batch's wall
 * time, prefills included), beside the machine's limits. */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include "programs/rlaifv-bench/bench.h"

#include <stdlib.h>
#include <string.h>

#include "rlaifv.h"

/* distinct images (each a different size) and questions the tasks cycle */
#define N_IMAGES    8
#define N_QUESTIONS 5

static const char *const questions[N_QUESTIONS] = {
    "Describe this image in detail.",
    "What is in the picture?",
    "Is there any text in this image? If so, what does it say, and where is it placed?",
    "Count the objects you can see.",
    "What colours dominate the scene, and what mood do they give it?",
};

typedef struct tally {
	int failed, tokens;
	double prefill_ms;
	char first_error[256];
} tally;

static void on_task(int index, rv_status st, const char *message, rv_result *res, void *user)
{
	tally *t = user;
	(void)index;
	if (st != RV_OK) {
		if (!t->failed++)
			snprintf(t->first_error, sizeof(t->first_error), "%s", message);
		return;
	}
	t->tokens += res->timings.decode_tokens;
	t->prefill_ms += res->timings.prefill_ms;
}

/* The batch of n tasks (n_predict tokens each, past end-of-sequence) run
 * with k at once; fills *t and *ms. */
static int run_batch(rv_context *ctx, const char (*images)[4096], int n, int n_predict, int k,
                     tally *t, double *ms, rvi_err *err)
{
	rv_prompt *pr = calloc((size_t)n, sizeof(*pr));
	rv_gen_params *gp = calloc((size_t)n, sizeof(*gp));
	const char **img = calloc((size_t)n, sizeof(*img));
	if (!pr || !gp || !img) {
		free(pr);
		free(gp);
		free(img);
		return rvi_errorf(err, RV_ERR_NOMEM, "out of memory");
	}
	for (int i = 0; i < n; i++) {
		img[i] = images[i % N_IMAGES];
		pr[i] = (rv_prompt){questions[i % N_QUESTIONS], &img[i], 1, NULL, NULL, 0, 0};
		gp[i] = rv_gen_default_params();
		gp[i].n_predict = n_predict;
		gp[i].ignore_eos = 1;
		gp[i].seed = (uint64_t)i;
	}
	memset(t, 0, sizeof(*t));
	const double t0 = rvi_now_ms();
	const rv_status st = rv_generate_batch(ctx, n, pr, gp, k, on_task, t);
	*ms = rvi_now_ms() - t0;
	free(pr);
	free(gp);
	free(img);
	if (st != RV_OK)
		return rvi_errorf(err, st, "%s", rv_context_error(ctx));
	if (t->failed)
		return rvi_errorf(err, RV_ERR_INTERNAL, "%d tasks failed: %s", t->failed,
		                  t->first_error);
	return RV_OK;
}

/* Loads path with the projector and runs the batch at every K. */
static int measure(const rvb_opts *o, const char *name, const char *path, const char *mmproj,
                   const char (*images)[4096], const char *emb_cache, rvi_err *err)
{
	char ebuf[RVI_ERR_MSG_MAX];
	rv_model *m = NULL;
	rv_context *ctx = NULL;
	rv_model_params mp = rv_model_default_params();
	mp.n_threads = o->n_threads;
	int rc = rv_model_load(path, &mp, &m, ebuf, sizeof(ebuf));
	if (rc == RV_OK)
		rc = rv_model_load_mmproj(m, mmproj, ebuf, sizeof(ebuf));
	rv_context_params cp = rv_context_default_params();
	cp.n_ctx = 1024; /* 576 image rows, the question and the answer */
	cp.cache_dir = emb_cache;
	if (rc == RV_OK)
		rc = rv_context_new(m, &cp, &ctx, ebuf, sizeof(ebuf));
	if (rc != RV_OK) {
		rv_model_free(m);
		return rvi_errorf(err, rc, "%s", ebuf);
	}
	/* warm-up: every weight page in, and each image's embedding into the
	 * cache, so that every K reads them from there alike */
	tally t;
	double ms;
	rvb_log("%s: warm-up (encoding the %d images)", name, N_IMAGES);
	rc = run_batch(ctx, images, N_IMAGES, 1, 1, &t, &ms, err);
	printf("%s (%s), %d tasks of %d tokens each (one answer, ignore-eos), image "
	       "embeddings from the cache:\n",
	       name, path, o->batch_tasks, o->n_predict);
	printf("  %9s %10s %12s %14s %12s\n", "parallel", "wall s", "tasks/hour", "tokens/s (all)",
	       "prefill s");
	for (int i = 0; rc == RV_OK && i < o->n_par; i++) {
		rvb_log("%s: %d tasks, %d at once", name, o->batch_tasks, o->par[i]);
		rc = run_batch(ctx, images, o->batch_tasks, o->n_predict, o->par[i], &t, &ms, err);
		if (rc == RV_OK)
			printf("  %9d %10.1f %12.0f %14.2f %12.1f\n", o->par[i], ms / 1e3,
			       o->batch_tasks * 3.6e6 / ms, t.tokens * 1e3 / ms,
			       t.prefill_ms / 1e3);
		fflush(stdout);
	}
	rv_context_free(ctx);
	rv_model_free(m);
	return rc;
}

int rvb_bench_batch(const rvb_opts *o)
{
	char ebuf[512], dir[4096], mmproj[4096], path[4096];
	char(*images)[4096] = calloc(N_IMAGES, sizeof(*images));
	char emb_cache[4200];
	rvi_err err = {0};
	if (rv_select_kernels(NULL, ebuf, sizeof(ebuf)) != RV_OK) {
		fprintf(stderr, "rlaifv-bench: %s\n", ebuf);
		free(images);
		return BENCH_EXIT_USAGE;
	}
	int rc = images ? rvb_cache_dir(o, dir, sizeof(dir), &err)
	                : rvi_errorf(&err, RV_ERR_NOMEM, "out of memory");
	/* every file first: writing them must not disturb a measurement */
	bool made;
	if (rc == RV_OK && o->mmproj)
		snprintf(mmproj, sizeof(mmproj), "%s", o->mmproj);
	else if (rc == RV_OK)
		rc = rvb_vision_model(dir, o->vision_type, mmproj, sizeof(mmproj), &made, &err);
	for (int v = 0; rc == RV_OK && !o->model && v < RVB_N_VARIANTS; v++)
		if (o->variants[v])
			rc = rvb_text_model(dir, (rvb_variant)v, path, sizeof(path), &made, &err);
	snprintf(emb_cache, sizeof(emb_cache), "%s/batch-embeddings", dir);
	for (int i = 0; rc == RV_OK && i < N_IMAGES; i++) {
		if ((size_t)snprintf(images[i], sizeof(images[i]), "%s/batch-image-%d.ppm", dir,
		                     i) >= sizeof(images[i]))
			rc = rvi_errorf(&err, RV_ERR_IO, "%s: path too long", dir);
		else
			rc = rvb_write_image(images[i], 200 + 40 * i, 320 - 24 * i, &err);
	}
	rvb_limits lim;
	memset(&lim, 0, sizeof(lim));
	if (rc == RV_OK)
		rc = rvb_measure_limits(o, &lim, &err);
	if (rc == RV_OK) {
		rvk_cpu cpu;
		rvk_cpu_info(&cpu);
		printf("rlaifv-bench --batch-tasks: %s family %d model %d, %s; %d threads, kernels "
		       "%s, BLAS %s (noisy if the machine is shared)\n",
		       cpu.vendor, cpu.family, cpu.model, cpu.name, o->n_threads, rv_kernel_set(),
		       rv_blas_info());
		printf("limits (%d samples): read %.2f GB/s (median), sgemm n = %d %.1f GFLOP/s "
		       "(median)\n",
		       lim.n_samples, lim.read_gbps.median, lim.sgemm_n, lim.sgemm_gflops.median);
		printf("projector: %s\n", mmproj);
	}
	if (rc == RV_OK && o->model)
		rc = measure(o, "model", o->model, mmproj, (const char(*)[4096])images, emb_cache,
		             &err);
	for (int v = 0; rc == RV_OK && !o->model && v < RVB_N_VARIANTS; v++) {
		if (!o->variants[v])
			continue;
		if ((rc = rvb_text_model(dir, (rvb_variant)v, path, sizeof(path), &made, &err)) ||
		    (rc = measure(o, rvb_variant_name((rvb_variant)v), path, mmproj,
		                  (const char(*)[4096])images, emb_cache, &err)))
			break;
		rc = rvb_sample_limits(o, &lim, &err);
	}
	free(images);
	if (rc != RV_OK) {
		fprintf(stderr, "rlaifv-bench: %s\n", err.msg);
		return rc == RV_ERR_MODEL || rc == RV_ERR_IO ? BENCH_EXIT_MODEL
		                                             : BENCH_EXIT_RUNTIME;
	}
	return fflush(stdout) == 0 ? BENCH_EXIT_OK : BENCH_EXIT_RUNTIME;
}
