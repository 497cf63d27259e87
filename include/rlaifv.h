/* rlaifv.h: the public API of librlaifv (the only header installed).
 *
 * Basic usage:
 *
 *     rv_model *model;
 *     char err[512];
 *     rv_model_params mp = rv_model_default_params();
 *     if (rv_model_load("model.gguf", &mp, &model, err, sizeof err) != RV_OK) {
 *             fprintf(stderr, "%s\n", err);
 *             return 1;
 *     }
 *     rv_context *ctx;
 *     rv_context_params cp = rv_context_default_params();
 *     if (rv_context_new(model, &cp, &ctx, err, sizeof err) != RV_OK) { ... }
 *
 *     rv_gen_params gp = rv_gen_default_params();
 *     gp.n_predict = 64;
 *     rv_result res;
 *     if (rv_generate(ctx, "Once upon a time", &gp, &res) != RV_OK)
 *             fprintf(stderr, "%s\n", rv_context_error(ctx));
 *     else
 *             printf("%s\n", res.text);
 *     rv_result_free(&res);
 *     rv_context_free(ctx);
 *     rv_model_free(model);
 *
 * Every function that can fail returns an rv_status; the message that goes
 * with it names the file, key, tensor or parameter at fault. The library
 * never exits the process and prints nothing. */
#ifndef RLAIFV_H
#define RLAIFV_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes: 0 is success, every error is negative. */
typedef enum rv_status {
	RV_OK = 0,
	RV_ERR_INVALID_ARG = -1, /* a parameter or option is out of range */
	RV_ERR_IO = -2,          /* a file is missing or unreadable */
	RV_ERR_MODEL = -3,       /* a model file is malformed or inconsistent */
	RV_ERR_UNSUPPORTED = -4, /* a well-formed file uses something not supported */
	RV_ERR_NOMEM = -5,       /* an allocation failed */
	RV_ERR_IMAGE = -6,       /* an image is corrupt, too large or of an unknown format */
	RV_ERR_CONTEXT = -7,     /* the prompt does not fit in the context */
	RV_ERR_INTERRUPTED = -8, /* the caller asked generation to stop */
	RV_ERR_INTERNAL = -9,
} rv_status;

/* A short English name of a status ("model file error"). */
const char *rv_status_str(rv_status s);

/* Library version ("0.1.0"), kernel set in use ("avx2"), BLAS in use. */
const char *rv_version(void);
const char *rv_kernel_set(void);
const char *rv_blas_info(void);

/* Threads used when a parameter says 0: $RLAIFV_THREADS, else the number of
 * physical cores. */
int rv_default_threads(void);

/* ---- model ------------------------------------------------------------- */

typedef struct rv_model rv_model;

typedef struct rv_model_params {
	int n_threads; /* 0: rv_default_threads() */
} rv_model_params;

rv_model_params rv_model_default_params(void);

/* Maps and validates a GGUF text model. On failure *out is NULL and err
 * (err_size bytes, may be NULL) holds the message. */
rv_status rv_model_load(const char *path, const rv_model_params *params, rv_model **out, char *err,
                        size_t err_size);
void rv_model_free(rv_model *model);

int rv_model_n_vocab(const rv_model *model);
int rv_model_n_ctx_train(const rv_model *model);
double rv_model_load_ms(const rv_model *model);

/* ---- context ----------------------------------------------------------- */

typedef struct rv_context rv_context;

typedef struct rv_context_params {
	int n_ctx;     /* 0: the model's training context, at most 4096 */
	int n_batch;   /* most prompt tokens per forward pass; 0: 512 */
	int n_threads; /* 0: the model's */
} rv_context_params;

rv_context_params rv_context_default_params(void);

rv_status rv_context_new(rv_model *model, const rv_context_params *params, rv_context **out,
                         char *err, size_t err_size);
void rv_context_free(rv_context *ctx);

/* The message of the last failed call on ctx ("" if none). */
const char *rv_context_error(const rv_context *ctx);
int rv_context_n_ctx(const rv_context *ctx);

/* Encodes text; *tokens is malloc'ed (free() it). add_bos < 0: as the model
 * says. */
rv_status rv_tokenize(rv_context *ctx, const char *text, int add_bos, int32_t **tokens,
                      int *n_tokens);

/* ---- generation -------------------------------------------------------- */

/* Called with each piece of generated text as it becomes valid UTF-8;
 * returning non-zero stops generation (RV_ERR_INTERRUPTED). */
typedef int (*rv_text_fn)(const char *piece, size_t len, void *user);

typedef struct rv_gen_params {
	int n_predict; /* most tokens to generate; < 0: until the context is full */
	float temp;    /* 0: greedy */
	int top_k;     /* <= 0: off */
	float top_p;   /* >= 1: off */
	float min_p;   /* <= 0: off */
	uint64_t seed;
	int ignore_eos; /* keep generating past end-of-sequence */
	int add_bos;    /* < 0: as the model says; 0 no; 1 yes */
	rv_text_fn on_text;
	void *user;
	/* Polled once per token; when it returns non-zero generation stops
	 * with RV_ERR_INTERRUPTED and the result holds what was made so far. */
	int (*should_stop)(void *user);
} rv_gen_params;

rv_gen_params rv_gen_default_params(void);

typedef enum rv_finish {
	RV_FINISH_EOS = 0,    /* the model ended the answer */
	RV_FINISH_LENGTH = 1, /* n_predict or the context ran out */
	RV_FINISH_STOPPED = 2 /* interrupted by the caller */
} rv_finish;

typedef struct rv_timings {
	double load_ms;
	double prefill_ms;
	int prefill_tokens;
	double decode_ms;
	int decode_tokens;
} rv_timings;

typedef struct rv_result {
	char *text;       /* generated text, NUL-terminated valid UTF-8 */
	int32_t *tokens;  /* generated ids */
	double *logprobs; /* each generated token's log-probability under the raw distribution */
	int n_tokens;
	int n_prompt_tokens;
	rv_finish finish_reason;
	rv_timings timings;
} rv_result;

/* Raw completion of prompt (no chat template). On RV_ERR_INTERRUPTED the
 * result is filled with what was generated; on other errors it is empty.
 * The context's KV cache is reset first. */
rv_status rv_generate(rv_context *ctx, const char *prompt, const rv_gen_params *params,
                      rv_result *result);
void rv_result_free(rv_result *result);

#ifdef __cplusplus
}
#endif
#endif
