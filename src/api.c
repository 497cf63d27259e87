/* api.c: the public rv_* functions. Ties the GGUF file, the model, the
 * tokenizer and the sampler together into load / generate calls; owns no
 * arithmetic itself. */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include "rlaifv.h"

#include <errno.h>
#include <math.h>
#include <sys/stat.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>

#include "src/api_internal.h"
#include "src/bestofn.h"
#include "src/embcache.h"
#include "src/prompt.h"
#include "src/vision.h"
#include "simd/kernels.h"
#include "src/sampler.h"

const char *rv_status_str(rv_status s)
{
	switch (s) {
	case RV_OK:
		return "ok";
	case RV_ERR_INVALID_ARG:
		return "invalid argument";
	case RV_ERR_IO:
		return "I/O error";
	case RV_ERR_MODEL:
		return "model file error";
	case RV_ERR_UNSUPPORTED:
		return "unsupported";
	case RV_ERR_NOMEM:
		return "out of memory";
	case RV_ERR_IMAGE:
		return "image error";
	case RV_ERR_CONTEXT:
		return "context full";
	case RV_ERR_INTERRUPTED:
		return "interrupted";
	case RV_ERR_INTERNAL:
		return "internal error";
	}
	return "unknown status";
}

const char *rv_version(void)
{
	return PACKAGE_VERSION;
}

const char *rv_kernel_set(void)
{
	return rvk_active()->name;
}

const char *rv_blas_info(void)
{
#ifdef HAVE_OPENBLAS_GET_CONFIG
	return openblas_get_config();
#else
	return "CBLAS";
#endif
}

rv_status rv_select_kernels(const char *isa, char *err_buf, size_t err_size)
{
	rvi_err err = {0};
	int rc = rvk_select(isa, &err);
	if (rc != RV_OK && err_buf && err_size)
		snprintf(err_buf, err_size, "%s", err.msg);
	return (rv_status)rc;
}

/* Physical cores: distinct (package, core) pairs among the CPUs this process
 * may run on; hyperthread siblings share a core's execution units, and a
 * memory-bound decoder gains nothing from them. */
static int physical_cores(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return (int)sysconf(_SC_NPROCESSORS_ONLN);
	int n_allowed = CPU_COUNT(&set);
	long seen[CPU_SETSIZE];
	int n_seen = 0;
	for (int cpu = 0; cpu < CPU_SETSIZE && n_seen < CPU_SETSIZE; cpu++) {
		if (!CPU_ISSET(cpu, &set))
			continue;
		char path[128];
		long pkg = 0, core = -1;
		snprintf(path, sizeof(path),
		         "/sys/devices/system/cpu/cpu%d/topology/physical_package_id", cpu);
		FILE *f = fopen(path, "r");
		if (f) {
			if (fscanf(f, "%ld", &pkg) != 1)
				pkg = 0;
			fclose(f);
		}
		snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d/topology/core_id", cpu);
		f = fopen(path, "r");
		if (!f || fscanf(f, "%ld", &core) != 1)
			core = -1;
		if (f)
			fclose(f);
		if (core < 0)
			return n_allowed; /* no topology: count logical CPUs */
		long key = pkg * 1000000 + core;
		int dup = 0;
		for (int i = 0; i < n_seen && !dup; i++)
			dup = seen[i] == key;
		if (!dup)
			seen[n_seen++] = key;
	}
	return n_seen > 0 ? n_seen : n_allowed;
}

int rv_default_threads(void)
{
	const char *env = getenv("RLAIFV_THREADS");
	if (env && *env) {
		char *end;
		long n = strtol(env, &end, 10);
		if (*end == 0 && n >= 1 && n <= 1024)
			return (int)n;
	}
	int n = physical_cores();
	return n < 1 ? 1 : n;
}

static void copy_err(char *dst, size_t size, const char *msg)
{
	if (dst && size)
		snprintf(dst, size, "%s", msg);
}

/* ---- model ------------------------------------------------------------- */

rv_model_params rv_model_default_params(void)
{
	rv_model_params p = {0};
	return p;
}

rv_status rv_model_load(const char *path, const rv_model_params *params, rv_model **out,
                        char *err_buf, size_t err_size)
{
	rvi_err err = {0};
	*out = NULL;
	if (!path) {
		copy_err(err_buf, err_size, "no model path given");
		return RV_ERR_INVALID_ARG;
	}
	/* A kernel set the user forced but cannot have is an error here, where
	 * it can be reported, not a silent fallback. Only checked: the choice
	 * itself is rvk_active()'s (or an explicit rv_select_kernels). */
	const char *isa = getenv("RLAIFV_ISA");
	if (isa && *isa && rvk_table_for(isa, &err) == NULL) {
		copy_err(err_buf, err_size, err.msg);
		return RV_ERR_INVALID_ARG;
	}
	double t0 = rvi_now_ms();
	rv_model *m = calloc(1, sizeof(*m));
	if (!m) {
		copy_err(err_buf, err_size, "out of memory");
		return RV_ERR_NOMEM;
	}
	m->n_threads = params && params->n_threads > 0 ? params->n_threads : rv_default_threads();
	int rc = rvi_gguf_open(&m->gguf, path, &err);
	if (rc == RV_OK)
		rc = rvi_text_arch_find(m->gguf, &m->text, &err);
	if (rc == RV_OK)
		rc = m->text->load(m->gguf, &m->text_model, &err);
	if (rc == RV_OK) {
		m->info = m->text->info(m->text_model);
		rc = rvi_tokenizer_load(&m->tok, m->gguf, m->info.n_vocab, &err);
	}
	if (rc != RV_OK) {
		copy_err(err_buf, err_size, err.msg);
		rv_model_free(m);
		return (rv_status)rc;
	}
	m->load_ms = rvi_now_ms() - t0;
	*out = m;
	return RV_OK;
}

int rvi_model_load_mmproj(rv_model *m, const char *path, const rvi_vision_registry *reg,
                          rvi_err *err)
{
	if (m->mm_gguf)
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "the model already has a projector");
	int rc = path ? rvi_gguf_open(&m->mm_gguf, path, err)
	              : rvi_errorf(err, RV_ERR_INVALID_ARG, "no mmproj path given");
	if (rc == RV_OK)
		rc = rvi_vision_arch_find(m->mm_gguf, reg, &m->vision, err);
	if (rc == RV_OK)
		rc = m->vision->load(m->mm_gguf, &m->vision_model, err);
	if (rc == RV_OK && m->vision->n_embd_out(m->vision_model) != m->info.n_embd)
		rc = rvi_errorf(err, RV_ERR_MODEL,
		                "%s: the image projector outputs rows of %lld values but the text "
		                "model's embedding width is %lld (mmproj made for another model?)",
		                path, (long long)m->vision->n_embd_out(m->vision_model),
		                (long long)m->info.n_embd);
	if (rc != RV_OK) {
		if (m->vision_model)
			m->vision->free(m->vision_model);
		if (m->mm_gguf)
			rvi_gguf_close(m->mm_gguf);
		m->mm_gguf = NULL;
		m->vision = NULL;
		m->vision_model = NULL;
		return rc;
	}
	rvi_vision_mmproj_id(m->mm_gguf, m->mm_id);
	return RV_OK;
}

rv_status rv_model_set_image_longest_edge(rv_model *m, int longest_edge, char *err_buf,
                                          size_t err_size)
{
	rvi_err err = {0};
	int rc = RV_OK;
	if (!m || !m->vision)
		rc = rvi_errorf(&err, RV_ERR_INVALID_ARG,
		                "image longest edge: the model has no projector loaded");
	else if (!m->vision->set_longest_edge)
		rc = rvi_errorf(&err, RV_ERR_UNSUPPORTED,
		                "%s: clip.projector_type \"%s\" does not resize to a longest edge",
		                m->mm_gguf->path, m->vision->name);
	else
		rc = m->vision->set_longest_edge(m->vision_model, longest_edge, &err);
	if (rc != RV_OK) {
		copy_err(err_buf, err_size, err.msg);
		return (rv_status)rc;
	}
	/* the setting is part of what the embeddings depend on: the cache
	 * key and the sharing of rows with a reference model follow mm_id */
	rvi_vision_mmproj_id(m->mm_gguf, m->mm_id);
	if (longest_edge > 0) {
		char tag[48];
		const int n = snprintf(tag, sizeof(tag), "longest_edge=%d", longest_edge);
		rvi_sha256_ctx c;
		rvi_sha256_init(&c);
		rvi_sha256_update(&c, m->mm_id, sizeof(m->mm_id));
		rvi_sha256_update(&c, tag, (size_t)n);
		rvi_sha256_final(&c, m->mm_id);
	}
	return RV_OK;
}

rv_status rv_model_load_mmproj(rv_model *m, const char *path, char *err_buf, size_t err_size)
{
	rvi_err err = {0};
	int rc = rvi_model_load_mmproj(m, path, rvi_vision_builtin(), &err);
	if (rc != RV_OK)
		copy_err(err_buf, err_size, err.msg);
	return (rv_status)rc;
}

int rv_model_has_vision(const rv_model *m)
{
	return m->mm_gguf != NULL;
}

void rv_model_free(rv_model *m)
{
	if (!m)
		return;
	if (m->vision_model)
		m->vision->free(m->vision_model);
	if (m->mm_gguf)
		rvi_gguf_close(m->mm_gguf);
	if (m->tok)
		rvi_tokenizer_free(m->tok);
	if (m->text_model)
		m->text->free(m->text_model);
	if (m->gguf)
		rvi_gguf_close(m->gguf);
	free(m);
}

int rv_model_n_vocab(const rv_model *m)
{
	return (int)m->info.n_vocab;
}

int rv_model_n_ctx_train(const rv_model *m)
{
	return (int)m->info.n_ctx_train;
}

double rv_model_load_ms(const rv_model *m)
{
	return m->load_ms;
}

/* ---- context ----------------------------------------------------------- */

rv_context_params rv_context_default_params(void)
{
	rv_context_params p = {0};
	return p;
}

rv_status rv_context_new(rv_model *model, const rv_context_params *params, rv_context **out,
                         char *err_buf, size_t err_size)
{
	*out = NULL;
	rv_context_params p = params ? *params : rv_context_default_params();
	int64_t n_ctx = p.n_ctx > 0 ? p.n_ctx : model->info.n_ctx_train;
	if (p.n_ctx <= 0 && n_ctx > 4096)
		n_ctx = 4096;
	if (p.n_ctx < 0) {
		copy_err(err_buf, err_size, "context size must not be negative");
		return RV_ERR_INVALID_ARG;
	}
	rv_context *ctx = calloc(1, sizeof(*ctx));
	if (!ctx) {
		copy_err(err_buf, err_size, "out of memory");
		return RV_ERR_NOMEM;
	}
	ctx->model = model;
	ctx->n_threads = p.n_threads > 0 ? p.n_threads : model->n_threads;
	ctx->apply_exif = !p.no_exif;
	ctx->image_limits = rvi_image_default_limits();
	if (p.image_max_side < 0 || p.image_max_side > RVI_IMAGE_MAX_SIDE) {
		snprintf(err_buf, err_size, "image side limit %d is outside 1..%d",
		         p.image_max_side, RVI_IMAGE_MAX_SIDE);
		free(ctx);
		return RV_ERR_INVALID_ARG;
	}
	if (p.image_max_side > 0)
		ctx->image_limits.max_side = p.image_max_side;
	if (!p.no_cache) {
		/* No usable cache directory only costs speed: run without one. */
		char dir[RVI_EMBCACHE_PATH_MAX];
		rvi_err ignored;
		if (p.cache_dir && mkdir(p.cache_dir, 0700) != 0 && errno != EEXIST)
			ctx->cache_dir = NULL;
		else if (p.cache_dir)
			ctx->cache_dir = strdup(p.cache_dir);
		else if (rvi_embcache_dir(dir, sizeof(dir), &ignored) == RV_OK)
			ctx->cache_dir = strdup(dir);
	}
	int64_t n_batch = p.n_batch > 0 ? p.n_batch : 512;
	int rc = model->text->state_new(model->text_model, n_ctx, n_batch, ctx->n_threads,
	                                &ctx->state, &ctx->err);
	if (rc == RV_OK) {
		ctx->kv = model->text->cache(ctx->state);
		ctx->logits = rvi_alloc((size_t)model->info.n_vocab, sizeof(float));
		if (!ctx->logits)
			rc = rvi_errorf(&ctx->err, RV_ERR_NOMEM, "out of memory");
	}
	if (rc != RV_OK) {
		copy_err(err_buf, err_size, ctx->err.msg);
		rv_context_free(ctx);
		return (rv_status)rc;
	}
	*out = ctx;
	return RV_OK;
}

void rv_context_free(rv_context *ctx)
{
	if (!ctx)
		return;
	if (ctx->state)
		ctx->model->text->state_free(ctx->state);
	free(ctx->cache_dir);
	free(ctx->logits);
	free(ctx);
}

const char *rv_context_error(const rv_context *ctx)
{
	return ctx->err.msg;
}

int rv_context_n_ctx(const rv_context *ctx)
{
	return (int)ctx->kv->n_ctx;
}

static rv_status fail(rv_context *ctx, int rc)
{
	return (rv_status)rc; /* the message is already in ctx->err */
}

rv_status rv_tokenize(rv_context *ctx, const char *text, int add_bos, int32_t **tokens,
                      int *n_tokens)
{
	int64_t n = 0;
	bool bos = add_bos < 0 ? rvi_tokenizer_add_bos(ctx->model->tok) : add_bos != 0;
	int rc =
	    rvi_tokenize(ctx->model->tok, text, strlen(text), bos, false, tokens, &n, &ctx->err);
	if (rc != RV_OK)
		return fail(ctx, rc);
	if (n > INT32_MAX) {
		free(*tokens);
		*tokens = NULL;
		return fail(ctx, rvi_errorf(&ctx->err, RV_ERR_CONTEXT, "prompt too long"));
	}
	*n_tokens = (int)n;
	return RV_OK;
}

/* ---- generation -------------------------------------------------------- */

rv_gen_params rv_gen_default_params(void)
{
	rv_gen_params p = {0};
	p.n_predict = -1;
	p.temp = 0.8f;
	p.top_k = 40;
	p.top_p = 0.95f;
	p.min_p = 0.05f;
	p.add_bos = -1;
	p.n_candidates = 1;
	p.score = RV_SCORE_MEAN;
	p.beta = 0.1f;
	return p;
}

void rv_result_free(rv_result *r)
{
	if (!r)
		return;
	for (int i = 0; r->candidates && i < r->n_candidates; i++) {
		free(r->candidates[i].text);
		free(r->candidates[i].tokens);
		free(r->candidates[i].logprobs);
		free(r->candidates[i].ref_logprobs);
	}
	free(r->candidates);
	free(r->text);
	free(r->tokens);
	free(r->logprobs);
	memset(r, 0, sizeof(*r));
}

static int check_gen_params(rv_context *ctx, const rv_gen_params *p)
{
	if (p->n_candidates < 0 || p->n_candidates > RV_MAX_CANDIDATES)
		return rvi_errorf(&ctx->err, RV_ERR_INVALID_ARG,
		                  "the number of candidates must be between 1 and %d",
		                  RV_MAX_CANDIDATES);
	if (p->n_candidates > 1 && p->temp <= 0)
		return rvi_errorf(&ctx->err, RV_ERR_INVALID_ARG,
		                  "%d candidates with temperature 0 would all be the same answer",
		                  p->n_candidates);
	if (!(p->beta > 0) || !isfinite(p->beta))
		return rvi_errorf(&ctx->err, RV_ERR_INVALID_ARG, "beta must be positive");
	if (p->score != RV_SCORE_MEAN && p->score != RV_SCORE_SUM)
		return rvi_errorf(&ctx->err, RV_ERR_INVALID_ARG, "unknown score mode %d",
		                  (int)p->score);
	if (p->reference && p->reference->model->info.n_vocab != ctx->model->info.n_vocab)
		return rvi_errorf(&ctx->err, RV_ERR_INVALID_ARG,
		                  "the reference model's vocabulary (%lld tokens) differs from the "
		                  "model's (%lld)",
		                  (long long)p->reference->model->info.n_vocab,
		                  (long long)ctx->model->info.n_vocab);
	return RV_OK;
}

rv_status rv_generate_prompt(rv_context *ctx, const rv_prompt *prompt, const rv_gen_params *params,
                             rv_result *res)
{
	rv_gen_params p = params ? *params : rv_gen_default_params();
	memset(res, 0, sizeof(*res));
	ctx->err.msg[0] = 0;
	res->timings.load_ms = ctx->model->load_ms;
	int rc = check_gen_params(ctx, &p);
	if (rc != RV_OK)
		return (rv_status)rc;
	if (p.n_candidates > 1)
		p.on_text = NULL; /* only the chosen answer is news, at the end */
	rv_context *ref = p.reference;

	/* Everything is counted against the context before any compute. */
	rvi_prompt pr = {0}, ref_pr = {0};
	rc = rvi_prompt_prepare(ctx, prompt, p.add_bos, &pr);
	if (rc == RV_OK && ref && (rc = rvi_prompt_prepare(ref, prompt, p.add_bos, &ref_pr)))
		rvi_errorf(&ctx->err, rc, "reference model: %s", ref->err.msg);
	if (rc == RV_OK)
		rc = rvi_prompt_encode_images(ctx, &pr, NULL, NULL, &res->timings.image_encode_ms);
	if (rc == RV_OK) {
		const double t0 = rvi_now_ms();
		rc = rvi_prompt_prefill(ctx, &pr);
		res->timings.prefill_ms = rvi_now_ms() - t0;
		res->timings.prefill_tokens = (int)pr.n_positions;
		res->n_prompt_tokens = (int)pr.n_positions;
	}
	if (rc != RV_OK)
		goto fail;

	int64_t max_new = rv_context_n_ctx(ctx) - pr.n_positions;
	if (p.n_predict >= 0 && p.n_predict < max_new)
		max_new = p.n_predict;
	if (max_new == 0) { /* -n 0: nothing asked for */
		rvi_prompt_free(&pr);
		rvi_prompt_free(&ref_pr);
		res->finish_reason = RV_FINISH_LENGTH;
		res->text = calloc(1, 1);
		return res->text ? RV_OK : RV_ERR_NOMEM;
	}
	rc = rvi_bestofn_decode(ctx, &p, ctx->logits, max_new, res);
	if (rc != RV_OK && rc != RV_ERR_INTERRUPTED)
		goto fail;
	const int decode_rc = rc;

	const double ts = rvi_now_ms();
	if (ref && decode_rc == RV_OK) {
		double ms = 0;
		rc = rvi_prompt_encode_images(ref, &ref_pr, &pr, ctx->model, &ms);
		res->timings.image_encode_ms += ms;
		if (rc == RV_OK)
			rc = rvi_prompt_prefill(ref, &ref_pr);
		if (rc == RV_OK)
			rc = rvi_bestofn_score_reference(ref, ref->logits, res);
		if (rc != RV_OK) {
			rvi_errorf(&ctx->err, rc, "reference model: %s", ref->err.msg);
			goto fail;
		}
	}
	rc = rvi_bestofn_rank(res, p.score, p.beta);
	res->timings.scoring_ms = rvi_now_ms() - ts;
	if (rc != RV_OK) {
		rvi_errorf(&ctx->err, rc, "out of memory");
		goto fail;
	}
	rvi_prompt_free(&ref_pr);
	rvi_prompt_free(&pr);
	return (rv_status)decode_rc;
fail:
	rvi_prompt_free(&ref_pr);
	rvi_prompt_free(&pr);
	rv_result_free(res);
	return (rv_status)rc;
}

rv_status rv_generate(rv_context *ctx, const char *prompt, const rv_gen_params *params,
                      rv_result *res)
{
	rv_prompt p = {prompt, NULL, 0, "none", NULL};
	return rv_generate_prompt(ctx, &p, params, res);
}
