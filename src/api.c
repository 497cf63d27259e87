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
#include "src/kchoice.h"
#include "src/log.h"
#include "src/matmul.h"
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
	case RV_ERR_BUSY:
		return "context busy";
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

/* A user who forced a kernel set should see that it is in force. */
static void note_forced_kernels(void)
{
	const char *isa = rvk_env_isa();
	if (isa && strcmp(isa, "auto") != 0)
		rvi_log(RV_LOG_INFO, "kernel set %s forced by $RLAIFV_ISA", rvk_active()->name);
}

rv_status rv_select_kernels(const char *isa, char *err_buf, size_t err_size)
{
	/* "auto" is the measured choice (calibrated or from the cache) */
	const char *name = isa ? isa : rvk_env_isa();
	if (name == NULL || name[0] == '\0' || strcmp(name, "auto") == 0)
		rvi_kernels_auto();
	if (!rvk_select(isa, err_buf, err_size))
		return RV_ERR_INVALID_ARG;
	if (!isa)
		note_forced_kernels();
	return RV_OK;
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

/* A thread count where it enters the library: 0 is the default, and more
 * than RV_MAX_THREADS would only exhaust the OpenMP runtime's stacks. */
static int check_threads(int n, const char *what, rvi_err *err)
{
	if (n < 0 || n > RV_MAX_THREADS)
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "%s.n_threads is %d, outside 0..%d",
		                  what, n, RV_MAX_THREADS);
	return RV_OK;
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
	if (out)
		*out = NULL;
	int rc = !out ? rvi_errorf(&err, RV_ERR_INVALID_ARG, "rv_model_load: out is NULL")
	         : !path
	             ? rvi_errorf(&err, RV_ERR_INVALID_ARG, "rv_model_load: no model path given")
	         : params ? check_threads(params->n_threads, "rv_model_params", &err)
	                  : RV_OK;
	/* A kernel set the user forced but cannot have is an error here, where
	 * it can be reported, not a silent fallback. Only checked: the choice
	 * itself is rvk_active()'s (or an explicit rv_select_kernels). */
	if (rc == RV_OK && !rvk_check_env(err.msg, sizeof(err.msg)))
		rc = RV_ERR_INVALID_ARG;
	if (rc != RV_OK) {
		copy_err(err_buf, err_size, err.msg);
		return (rv_status)rc;
	}
	note_forced_kernels();
	const char *isa = rvk_env_isa();
	if (isa == NULL || strcmp(isa, "auto") == 0)
		rvi_kernels_auto(); /* a no-op after the first time */
	if (rvi_blas_fallback())
		rvi_log(RV_LOG_WARN, "OpenBLAS does not recognise this CPU and runs its generic "
		                     "kernels, which makes image encoding several times slower; "
		                     "set OPENBLAS_CORETYPE=Haswell (AVX2) or SkylakeX (AVX-512)");
	double t0 = rvi_now_ms();
	rv_model *m = calloc(1, sizeof(*m));
	if (!m) {
		copy_err(err_buf, err_size, "out of memory");
		return RV_ERR_NOMEM;
	}
	m->n_threads = params && params->n_threads > 0 ? params->n_threads : rv_default_threads();
	m->vocab_only = params && params->vocab_only;
	rc = rvi_gguf_open(&m->gguf, path, &err);
	if (rc == RV_OK && !m->vocab_only) {
		rc = rvi_text_arch_find(m->gguf, &m->text, &err);
		if (rc == RV_OK)
			rc = m->text->load(m->gguf, &m->text_model, &err);
		if (rc == RV_OK)
			m->info = m->text->info(m->text_model);
	}
	/* n_vocab 0 (vocab_only): no embedding rows to check the vocabulary
	 * against */
	if (rc == RV_OK)
		rc = rvi_tokenizer_load(&m->tok, m->gguf, m->info.n_vocab, &err);
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
	if (!m)
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "rv_model_load_mmproj: model is NULL");
	if (m->vocab_only)
		return rvi_errorf(err, RV_ERR_INVALID_ARG,
		                  "the model was loaded vocab_only: it takes no projector");
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
	if (rc == RV_OK && !(m->mm_id = calloc(1, sizeof(*m->mm_id))))
		rc = rvi_errorf(err, RV_ERR_NOMEM, "out of memory");
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
	pthread_mutex_init(&m->mm_id->lock, NULL);
	return RV_OK;
}

/* A preprocessing setting of the vision family (set: its table's entry,
 * NULL when it has none; what: the setting, does: what families without
 * it do not do). The value is kept in *kept, part of what the rows depend
 * on: in the cache key and in whether a reference model may share them
 * (rvi_prompt_encode_images). */
static rv_status set_image_setting(rv_model *m, int value, int *kept,
                                   int (*set)(void *, int, rvi_err *), const char *what,
                                   const char *does, char *err_buf, size_t err_size)
{
	rvi_err err = {0};
	int rc = RV_OK;
	if (!m->vision)
		rc = rvi_errorf(&err, RV_ERR_INVALID_ARG, "%s: the model has no projector loaded",
		                what);
	else if (!set)
		rc = rvi_errorf(&err, RV_ERR_UNSUPPORTED,
		                "%s: clip.projector_type \"%s\" does not %s", m->mm_gguf->path,
		                m->vision->name, does);
	else
		rc = set(m->vision_model, value, &err);
	if (rc != RV_OK) {
		copy_err(err_buf, err_size, err.msg);
		return (rv_status)rc;
	}
	*kept = value;
	return RV_OK;
}

rv_status rv_model_set_pan_and_scan(rv_model *m, int enable, int min_crop_size, int max_crops,
                                    double min_ratio, char *err_buf, size_t err_size)
{
	rvi_err err = {0};
	int rc = RV_OK;
	/* HF's defaults (Gemma3ProcessorKwargs) for what is 0 */
	const rvi_pan_and_scan s = {enable != 0, min_crop_size ? min_crop_size : 256,
	                            max_crops ? max_crops : 4, min_ratio != 0 ? min_ratio : 1.2};
	if (!m || !m->vision)
		rc = rvi_errorf(&err, RV_ERR_INVALID_ARG,
		                "pan-and-scan: the model has no projector loaded");
	else if (!m->vision->set_pan_and_scan)
		rc = rvi_errorf(&err, RV_ERR_UNSUPPORTED,
		                "%s: clip.projector_type \"%s\" has no pan-and-scan",
		                m->mm_gguf->path, m->vision->name);
	else
		rc = m->vision->set_pan_and_scan(m->vision_model, &s, &err);
	if (rc != RV_OK) {
		copy_err(err_buf, err_size, err.msg);
		return (rv_status)rc;
	}
	/* part of what the rows depend on, as the longest edge above */
	m->pan_and_scan = s;
	return RV_OK;
}

rv_status rv_model_set_image_longest_edge(rv_model *m, int longest_edge, char *err_buf,
                                          size_t err_size)
{
	if (!m) {
		copy_err(err_buf, err_size, "image longest edge: no model");
		return RV_ERR_INVALID_ARG;
	}
	return set_image_setting(
	    m, longest_edge, &m->image_longest_edge, m->vision ? m->vision->set_longest_edge : NULL,
	    "image longest edge", "resize to a longest edge", err_buf, err_size);
}

rv_status rv_model_set_image_max_slices(rv_model *m, int max_slices, char *err_buf, size_t err_size)
{
	if (!m) {
		copy_err(err_buf, err_size, "image max slices: no model");
		return RV_ERR_INVALID_ARG;
	}
	return set_image_setting(m, max_slices, &m->image_max_slices,
	                         m->vision ? m->vision->set_max_slices : NULL, "image max slices",
	                         "cut images into slices", err_buf, err_size);
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
	return m && m->mm_gguf != NULL;
}

void rv_model_free(rv_model *m)
{
	if (!m)
		return;
	if (m->vision_model)
		m->vision->free(m->vision_model);
	if (m->mm_gguf)
		rvi_gguf_close(m->mm_gguf);
	if (m->mm_id) {
		pthread_mutex_destroy(&m->mm_id->lock);
		free(m->mm_id);
	}
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
	/* = the embedding rows (checked at load) */
	return m ? (int)rvi_tokenizer_n_vocab(m->tok) : 0;
}

int rv_model_n_ctx_train(const rv_model *m)
{
	return m ? (int)m->info.n_ctx_train : 0;
}

double rv_model_load_ms(const rv_model *m)
{
	return m ? m->load_ms : 0;
}

/* ---- context ----------------------------------------------------------- */

rv_context_params rv_context_default_params(void)
{
	rv_context_params p = {0};
	return p;
}

/* Each field of p where it enters the library. */
_Static_assert(RV_MAX_IMAGE_SIDE == RVI_IMAGE_MAX_SIDE, "one image side limit");
static int check_range(int v, int hi, const char *field, rvi_err *err)
{
	if (v < 0 || v > hi)
		return rvi_errorf(err, RV_ERR_INVALID_ARG,
		                  "rv_context_params.%s is %d, outside 0..%d", field, v, hi);
	return RV_OK;
}

static int check_context_params(const rv_model *model, const rv_context_params *p, rv_context **out,
                                rvi_err *err)
{
	if (!out || !model)
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "rv_context_new: %s is NULL",
		                  !out ? "out" : "model");
	int rc = check_range(p->n_ctx, RV_MAX_CTX, "n_ctx", err);
	if (rc == RV_OK)
		rc = check_range(p->n_batch, RV_MAX_BATCH, "n_batch", err);
	if (rc == RV_OK)
		rc = check_range(p->image_max_side, RV_MAX_IMAGE_SIDE, "image_max_side", err);
	if (rc == RV_OK)
		rc = check_range(p->image_max_mib, RV_MAX_IMAGE_MIB, "image_max_mib", err);
	if (rc == RV_OK)
		rc = check_threads(p->n_threads, "rv_context_params", err);
	return rc;
}

rv_status rv_context_new(rv_model *model, const rv_context_params *params, rv_context **out,
                         char *err_buf, size_t err_size)
{
	if (out)
		*out = NULL;
	rv_context_params p = params ? *params : rv_context_default_params();
	rvi_err err = {0};
	int rc = check_context_params(model, &p, out, &err);
	if (rc != RV_OK) {
		copy_err(err_buf, err_size, err.msg);
		return (rv_status)rc;
	}
	if (model->vocab_only) {
		copy_err(err_buf, err_size, "the model was loaded vocab_only: it makes no context");
		return RV_ERR_INVALID_ARG;
	}
	int64_t n_ctx = p.n_ctx > 0 ? p.n_ctx : model->info.n_ctx_train;
	if (p.n_ctx <= 0 && n_ctx > 4096)
		n_ctx = 4096;
	rv_context *ctx = calloc(1, sizeof(*ctx));
	if (!ctx) {
		copy_err(err_buf, err_size, "out of memory");
		return RV_ERR_NOMEM;
	}
	ctx->model = model;
	ctx->n_threads = p.n_threads > 0 ? p.n_threads : model->n_threads;
	ctx->apply_exif = !p.no_exif;
	ctx->image_limits = rvi_image_default_limits();
	if (p.image_max_side > 0)
		ctx->image_limits.max_side = p.image_max_side;
	if (p.image_max_mib > 0)
		ctx->image_limits.max_decode_bytes = (uint64_t)p.image_max_mib << 20;
	if (p.image_min_pixels < 0 || p.image_max_pixels < 0 ||
	    (p.image_min_pixels > 0 && p.image_max_pixels > 0 &&
	     p.image_min_pixels > p.image_max_pixels)) {
		snprintf(err_buf, err_size,
		         "image pixel limits: min %d, max %d: need 0 <= min <= max (0: the "
		         "model's own)",
		         p.image_min_pixels, p.image_max_pixels);
		free(ctx);
		return RV_ERR_INVALID_ARG;
	}
	ctx->image_limits.resize_min_pixels = p.image_min_pixels;
	ctx->image_limits.resize_max_pixels = p.image_max_pixels;
	if (!p.no_cache) {
		/* No usable cache directory only costs speed: run without one,
		 * and say so. */
		char dir[RVI_EMBCACHE_PATH_MAX];
		rvi_err warn = {0};
		if (p.cache_dir && mkdir(p.cache_dir, 0700) != 0 && errno != EEXIST)
			rvi_errorf(&warn, RV_ERR_IO, "cannot create the directory %s: %s",
			           p.cache_dir, strerror(errno));
		else if (p.cache_dir)
			ctx->cache_dir = strdup(p.cache_dir);
		else if (rvi_embcache_dir(dir, sizeof(dir), &warn) == RV_OK)
			ctx->cache_dir = strdup(dir);
		if (!ctx->cache_dir && !warn.msg[0])
			rvi_errorf(&warn, RV_ERR_NOMEM, "out of memory");
		if (warn.msg[0]) {
			rvi_log(RV_LOG_WARN, "image-embedding cache: %s; running without it",
			        warn.msg);
			ctx->cache_warned = true;
		}
	}
	int64_t n_batch = p.n_batch > 0 ? p.n_batch : 512;
	rc = model->text->state_new(model->text_model, n_ctx, n_batch, ctx->n_threads, &ctx->state,
	                            &ctx->err);
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
	return ctx ? ctx->err.msg : "no context (NULL)";
}

int rv_context_n_ctx(const rv_context *ctx)
{
	return ctx ? (int)ctx->kv->n_ctx : 0;
}

static rv_status fail(rv_context *ctx, int rc)
{
	return (rv_status)rc; /* the message is already in ctx->err */
}

/* A context serves one call at a time (rlaifv.h). A second thread that
 * comes in while a call runs gets RV_ERR_BUSY and touches nothing of the
 * context, not even its message, which belongs to the running call. */
static bool acquire(rv_context *ctx)
{
	return !atomic_exchange_explicit(&ctx->busy, true, memory_order_acquire);
}

static void release(rv_context *ctx)
{
	atomic_store_explicit(&ctx->busy, false, memory_order_release);
}

static rv_status tokenize(rv_context *ctx, const char *text, int add_bos, int32_t **tokens,
                          int *n_tokens)
{
	if (!text || !tokens || !n_tokens)
		return fail(ctx,
		            rvi_errorf(&ctx->err, RV_ERR_INVALID_ARG, "rv_tokenize: %s is NULL",
		                       !text     ? "text"
		                       : !tokens ? "tokens"
		                                 : "n_tokens"));
	*tokens = NULL;
	*n_tokens = 0;
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

rv_status rv_tokenize(rv_context *ctx, const char *text, int add_bos, int32_t **tokens,
                      int *n_tokens)
{
	if (!ctx)
		return RV_ERR_INVALID_ARG;
	if (!acquire(ctx))
		return RV_ERR_BUSY;
	ctx->err.msg[0] = 0;
	rv_status rc = tokenize(ctx, text, add_bos, tokens, n_tokens);
	release(ctx);
	return rc;
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
	if (p->n_candidates < 1 || p->n_candidates > RV_MAX_CANDIDATES)
		return rvi_errorf(&ctx->err, RV_ERR_INVALID_ARG,
		                  "rv_gen_params.n_candidates is %d, outside 1..%d",
		                  p->n_candidates, RV_MAX_CANDIDATES);
	if (!(p->temp >= 0 && p->temp <= RV_MAX_TEMP))
		return rvi_errorf(&ctx->err, RV_ERR_INVALID_ARG,
		                  "rv_gen_params.temp is %g, outside 0..%g", (double)p->temp,
		                  (double)RV_MAX_TEMP);
	if (!(p->top_p >= 0 && p->top_p <= 1) || !(p->min_p >= 0 && p->min_p <= 1))
		return rvi_errorf(
		    &ctx->err, RV_ERR_INVALID_ARG, "rv_gen_params.%s is %g, outside 0..1",
		    !(p->top_p >= 0 && p->top_p <= 1) ? "top_p" : "min_p",
		    !(p->top_p >= 0 && p->top_p <= 1) ? (double)p->top_p : (double)p->min_p);
	if (p->n_candidates > 1 && p->temp <= 0)
		return rvi_errorf(&ctx->err, RV_ERR_INVALID_ARG,
		                  "%d candidates with temperature 0 would all be the same answer",
		                  p->n_candidates);
	if (!(p->beta > 0) || !isfinite(p->beta))
		return rvi_errorf(&ctx->err, RV_ERR_INVALID_ARG,
		                  "rv_gen_params.beta is %g: it must be positive and finite",
		                  (double)p->beta);
	if (p->reference == ctx)
		return rvi_errorf(&ctx->err, RV_ERR_INVALID_ARG,
		                  "rv_gen_params.reference is the generating context itself: give "
		                  "the reference model its own context");
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

static rv_status generate(rv_context *ctx, const rv_prompt *prompt, const rv_gen_params *params,
                          rv_result *res);

rv_status rv_generate_prompt(rv_context *ctx, const rv_prompt *prompt, const rv_gen_params *params,
                             rv_result *res)
{
	if (res)
		memset(res, 0, sizeof(*res));
	if (!ctx)
		return RV_ERR_INVALID_ARG;
	if (!acquire(ctx))
		return RV_ERR_BUSY;
	rv_context *ref = params ? params->reference : NULL;
	rv_status rc;
	if (ref && ref != ctx && !acquire(ref)) {
		rc = (rv_status)rvi_errorf(&ctx->err, RV_ERR_BUSY,
		                           "the reference context is in use by another call");
	} else {
		ctx->err.msg[0] = 0;
		rc = !prompt ? (rv_status)rvi_errorf(&ctx->err, RV_ERR_INVALID_ARG,
		                                     "rv_generate_prompt: prompt is NULL")
		     : !res  ? (rv_status)rvi_errorf(&ctx->err, RV_ERR_INVALID_ARG,
		                                     "rv_generate_prompt: result is NULL")
		             : generate(ctx, prompt, params, res);
		if (ref && ref != ctx)
			release(ref);
	}
	release(ctx);
	return rc;
}

/* A prompt being answered: the parameters it runs with, its prompt made
 * ready for the model (and the reference), the most tokens a candidate
 * may take. */
typedef struct gen_task {
	rv_gen_params p;
	rvi_prompt pr, ref_pr;
	int64_t max_new;
	rv_result *res;
} gen_task;

/* Everything before decoding: the parameters checked, the prompt counted
 * against the context before any compute, its images encoded, and
 * prefilled into the current slot of ctx's cache (ctx->logits: its last
 * position's logits). t->max_new 0: nothing to decode. */
static int task_begin(rv_context *ctx, const rv_prompt *prompt, const rv_gen_params *params,
                      rv_result *res, gen_task *t)
{
	memset(t, 0, sizeof(*t));
	t->res = res;
	t->p = params ? *params : rv_gen_default_params();
	res->timings.load_ms = ctx->model->load_ms;
	int rc = check_gen_params(ctx, &t->p);
	if (rc != RV_OK)
		return rc;
	if (t->p.n_candidates > 1)
		t->p.on_text = NULL; /* only the chosen answer is news, at the end */
	rv_context *ref = t->p.reference;
	rc = rvi_prompt_prepare(ctx, prompt, t->p.add_bos, &t->pr);
	if (rc == RV_OK && ref && (rc = rvi_prompt_prepare(ref, prompt, t->p.add_bos, &t->ref_pr)))
		rvi_errorf(&ctx->err, rc, "reference model: %s", ref->err.msg);
	if (rc == RV_OK)
		rc = rvi_prompt_encode_images(ctx, &t->pr, NULL, NULL,
		                              &res->timings.image_encode_ms);
	if (rc == RV_OK) {
		const double t0 = rvi_now_ms();
		rc = rvi_prompt_prefill(ctx, &t->pr);
		res->timings.prefill_ms = rvi_now_ms() - t0;
		res->timings.prefill_tokens = (int)t->pr.n_positions;
		res->n_prompt_tokens = (int)t->pr.n_positions;
	}
	if (rc != RV_OK)
		return rc;
	t->max_new = rv_context_n_ctx(ctx) - t->pr.n_positions;
	if (t->p.n_predict >= 0 && t->p.n_predict < t->max_new)
		t->max_new = t->p.n_predict;
	return RV_OK;
}

/* Everything after decoding, whose status is rc: the reference's scores,
 * the ranking; frees the prompts, and the result on failure. */
static rv_status task_end(rv_context *ctx, gen_task *t, int rc)
{
	rv_result *res = t->res;
	rv_context *ref = t->p.reference;
	if (rc == RV_OK && t->max_new == 0) { /* -n 0: nothing asked for */
		rvi_prompt_free(&t->pr);
		rvi_prompt_free(&t->ref_pr);
		res->finish_reason = RV_FINISH_LENGTH;
		res->text = calloc(1, 1);
		return res->text ? RV_OK : RV_ERR_NOMEM;
	}
	if (rc != RV_OK && rc != RV_ERR_INTERRUPTED)
		goto fail;
	const int decode_rc = rc;

	const double ts = rvi_now_ms();
	if (ref && decode_rc == RV_OK) {
		double ms = 0;
		rc = rvi_prompt_encode_images(ref, &t->ref_pr, &t->pr, ctx->model, &ms);
		res->timings.image_encode_ms += ms;
		if (rc == RV_OK)
			rc = rvi_prompt_prefill(ref, &t->ref_pr);
		if (rc == RV_OK)
			rc = rvi_bestofn_score_reference(ref, ref->logits, res);
		if (rc != RV_OK) {
			rvi_errorf(&ctx->err, rc, "reference model: %s", ref->err.msg);
			goto fail;
		}
	}
	rc = rvi_bestofn_rank(res, t->p.score, t->p.beta);
	res->timings.scoring_ms = rvi_now_ms() - ts;
	if (rc != RV_OK) {
		rvi_errorf(&ctx->err, rc, "out of memory");
		goto fail;
	}
	rvi_prompt_free(&t->ref_pr);
	rvi_prompt_free(&t->pr);
	return (rv_status)decode_rc;
fail:
	rvi_prompt_free(&t->ref_pr);
	rvi_prompt_free(&t->pr);
	rv_result_free(res);
	return (rv_status)rc;
}

static rv_status generate(rv_context *ctx, const rv_prompt *prompt, const rv_gen_params *params,
                          rv_result *res)
{
	gen_task t;
	ctx->kv->cur = 0;
	int rc = task_begin(ctx, prompt, params, res, &t);
	if (rc == RV_OK && t.max_new > 0)
		rc = rvi_bestofn_decode(ctx, &t.p, ctx->logits, t.max_new, res);
	return task_end(ctx, &t, rc);
}

/* ---- batches ----------------------------------------------------------- */

/* A slot of rv_generate_batch: the task it answers (index < 0: free). */
typedef struct batch_slot {
	int index;
	gen_task task;
	rvi_job job;
	rv_result res;
} batch_slot;

/* Ends slot g's task with the decoding status rc and hands its result
 * over. */
static void batch_finish(rv_context *ctx, batch_slot *sl, rvi_step *st, bool stopped, int rc,
                         rv_task_fn on_task, void *user)
{
	rc = rvi_job_end(ctx, &sl->job, st, stopped, rc);
	rc = task_end(ctx, &sl->task, rc);
	on_task(sl->index, (rv_status)rc, rc == RV_OK ? "" : ctx->err.msg, &sl->res, user);
	rv_result_free(&sl->res); /* unless on_task took it over */
	sl->index = -1;
}

static rv_status generate_batch(rv_context *ctx, int n_tasks, const rv_prompt *prompts,
                                const rv_gen_params *params, int n_parallel, rv_task_fn on_task,
                                void *user)
{
	int rc = rvi_kvcache_slots(ctx->kv, n_parallel, &ctx->err);
	batch_slot *sl = rvi_zalloc((size_t)n_parallel, sizeof(*sl));
	rvi_job **live = rvi_zalloc((size_t)n_parallel, sizeof(*live));
	if (rc == RV_OK && (!sl || !live))
		rc = rvi_errorf(&ctx->err, RV_ERR_NOMEM, "out of memory");
	for (int g = 0; sl && g < n_parallel; g++)
		sl[g].index = -1;
	rvi_step st = {0};
	bool stop = false;
	for (int next = 0; rc == RV_OK;) {
		/* a free slot takes the next task: its prompt is prefilled into
		 * the slot's prefix while the others' candidates wait */
		for (int g = 0; g < n_parallel && next < n_tasks && !stop; g++) {
			if (sl[g].index >= 0)
				continue;
			batch_slot *s = &sl[g];
			memset(s, 0, sizeof(*s));
			s->index = next++;
			ctx->kv->cur = g;
			int trc = task_begin(ctx, &prompts[s->index], &params[s->index], &s->res,
			                     &s->task);
			s->task.p.on_text = NULL; /* no stream of text from a batch */
			if (trc == RV_OK && s->task.max_new > 0)
				trc = rvi_job_start(ctx, &s->job, &s->task.p, ctx->logits,
				                    s->task.max_new, g, &s->res);
			else
				s->job.t0 = 0; /* nothing decoded: no decode timings */
			if (trc != RV_OK || s->task.max_new == 0) {
				batch_finish(ctx, s, &st, false, trc, on_task, user);
				g--; /* the slot is free again */
			}
		}
		int n_live = 0;
		for (int g = 0; g < n_parallel; g++)
			if (sl[g].index >= 0)
				live[n_live++] = &sl[g].job;
		if (n_live == 0)
			break;
		for (int g = 0; g < n_parallel && !stop; g++) {
			const rv_gen_params *p = &sl[g].task.p;
			stop = sl[g].index >= 0 && p->should_stop && p->should_stop(p->user);
		}
		if (!stop)
			rc = rvi_jobs_step(ctx, live, n_live, &st, &stop);
		for (int g = 0; g < n_parallel; g++)
			if (sl[g].index >= 0 &&
			    (stop || rc != RV_OK || sl[g].job.n_done == sl[g].job.n))
				batch_finish(ctx, &sl[g], &st, stop, rc, on_task, user);
		if (stop && rc == RV_OK)
			rc = rvi_errorf(&ctx->err, RV_ERR_INTERRUPTED, "generation interrupted");
	}
	rvi_step_free(&st);
	free(live);
	free(sl);
	/* the slots' memory goes; the context is as rv_context_new left it */
	rvi_kvcache_slots(ctx->kv, 1, &ctx->err);
	return (rv_status)rc;
}

rv_status rv_generate_batch(rv_context *ctx, int n_tasks, const rv_prompt *prompts,
                            const rv_gen_params *params, int n_parallel, rv_task_fn on_task,
                            void *user)
{
	if (!ctx)
		return RV_ERR_INVALID_ARG;
	if (!acquire(ctx))
		return RV_ERR_BUSY;
	ctx->err.msg[0] = 0;
	rv_context *ref = n_tasks > 0 && params ? params[0].reference : NULL;
	int rc = RV_OK;
	if (n_tasks < 0 || (n_tasks > 0 && (!prompts || !params)) || !on_task)
		rc = rvi_errorf(&ctx->err, RV_ERR_INVALID_ARG, "rv_generate_batch: %s",
		                n_tasks < 0 ? "n_tasks is negative"
		                : !on_task  ? "on_task is NULL"
		                            : "prompts or params is NULL");
	else if (n_parallel < 1 || n_parallel > RV_MAX_PARALLEL)
		rc = rvi_errorf(&ctx->err, RV_ERR_INVALID_ARG,
		                "rv_generate_batch: n_parallel is %d, outside 1..%d", n_parallel,
		                RV_MAX_PARALLEL);
	for (int i = 1; rc == RV_OK && i < n_tasks; i++)
		if (params[i].reference != ref)
			rc = rvi_errorf(&ctx->err, RV_ERR_INVALID_ARG,
			                "rv_generate_batch: task %d has another reference context "
			                "than task 0",
			                i);
	const bool other_ref = rc == RV_OK && ref && ref != ctx;
	const bool took_ref = other_ref && acquire(ref);
	if (other_ref && !took_ref)
		rc = rvi_errorf(&ctx->err, RV_ERR_BUSY,
		                "the reference context is in use by another call");
	else if (rc == RV_OK)
		rc = generate_batch(ctx, n_tasks, prompts, params, n_parallel, on_task, user);
	if (took_ref)
		release(ref);
	release(ctx);
	return (rv_status)rc;
}

rv_status rv_generate(rv_context *ctx, const char *prompt, const rv_gen_params *params,
                      rv_result *res)
{
	if (!prompt) {
		if (res)
			memset(res, 0, sizeof(*res));
		if (ctx && acquire(ctx)) {
			rvi_errorf(&ctx->err, RV_ERR_INVALID_ARG, "rv_generate: prompt is NULL");
			release(ctx);
		}
		return RV_ERR_INVALID_ARG;
	}
	rv_prompt p = {prompt, NULL, 0, "none", NULL, 0, 0};
	return rv_generate_prompt(ctx, &p, params, res);
}
