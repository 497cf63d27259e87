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

/* Chooses the kernel set: "auto" (or NULL: the best this CPU has),
 * "scalar", "avx2", "avx512", "neon", "neon-dotprod". Without a call the
 * library applies $RLAIFV_ISA when a model is loaded. A set this build or
 * CPU lacks is RV_ERR_INVALID_ARG with a message in err. */
rv_status rv_select_kernels(const char *isa, char *err, size_t err_size);

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

/* Adds a vision tower and projector (an mmproj GGUF as llama.cpp's LLaVA
 * converters write it) to a text model. A projector whose output width
 * differs from the model's embedding width is RV_ERR_MODEL, before any
 * work is done. */
rv_status rv_model_load_mmproj(rv_model *model, const char *path, char *err, size_t err_size);
int rv_model_has_vision(const rv_model *model);

/* For projectors that cut images into tiles (SmolVLM, clip.projector_type
 * "idefics3"): the length images' longest edge is resized to before
 * tiling, Hugging Face's size.longest_edge (smaller: fewer tiles, faster;
 * 0: the mmproj file's value again). RV_ERR_UNSUPPORTED for projectors
 * without it, RV_ERR_INVALID_ARG outside 0..4096, both naming the cause.
 * Cached image embeddings are kept apart per value. */
rv_status rv_model_set_image_longest_edge(rv_model *model, int longest_edge, char *err,
                                          size_t err_size);

int rv_model_n_vocab(const rv_model *model);
int rv_model_n_ctx_train(const rv_model *model);
double rv_model_load_ms(const rv_model *model);

/* Scans every tensor of the model, and of its projector when one is
 * loaded, for NaN and infinity (loading only maps weights, so a poisoned
 * one would otherwise show up as NaN logits far from the cause). F32, F16
 * and BF16 values are tested directly, quantized blocks through their
 * scales; the work is spread over the model's threads. RV_OK when every
 * value is finite, else RV_ERR_MODEL with the file, tensor and element or
 * block in err. */
rv_status rv_model_check_tensors(rv_model *model, char *err, size_t err_size);

/* ---- context ----------------------------------------------------------- */

typedef struct rv_context rv_context;

typedef struct rv_context_params {
	int n_ctx;     /* 0: the model's training context, at most 4096 */
	int n_batch;   /* most prompt tokens per forward pass; 0: 512 */
	int n_threads; /* 0: the model's */
	int no_exif;   /* 1: ignore the EXIF orientation of JPEG photos */
	int image_max_side; /* refuse images with a longer side; 0: 16384 */
	/* Image-embedding cache: NULL means $XDG_CACHE_HOME/rlaifv (or
	 * ~/.cache/rlaifv); no_cache turns it off. */
	const char *cache_dir;
	int no_cache;
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

/* Called with each piece of generated text as it becomes valid UTF-8 (only
 * when one candidate is generated); returning non-zero stops generation
 * (RV_ERR_INTERRUPTED). */
typedef int (*rv_text_fn)(const char *piece, size_t len, void *user);

/* Called after each batched decoding step of best-of-N: candidates
 * finished so far, how many there are, tokens generated in all, and the
 * milliseconds since decoding began. */
typedef void (*rv_progress_fn)(int done, int n_candidates, int tokens, double ms, void *user);

#define RV_MAX_CANDIDATES 64

/* How candidates are ranked (see rv_candidate.score). */
typedef enum rv_score_mode {
	RV_SCORE_MEAN = 0, /* length-normalized log-probability (RLAIF-V) */
	RV_SCORE_SUM = 1,  /* summed log-probability (vLLM's best_of) */
} rv_score_mode;

typedef struct rv_gen_params {
	int n_predict;  /* most tokens to generate per candidate; < 0: until the context is full */
	float temp;     /* 0: greedy (then only one candidate makes sense) */
	int top_k;      /* <= 0: off */
	float top_p;    /* >= 1: off */
	float min_p;    /* <= 0: off */
	uint64_t seed;  /* candidate i samples with a seed derived from (seed, i) */
	int ignore_eos; /* keep generating past end-of-sequence */
	int add_bos;    /* < 0: as the model says; 0 no; 1 yes */

	int n_candidates; /* best-of-N: answers sampled from one shared prompt
	                     (1..RV_MAX_CANDIDATES) */
	rv_score_mode score;
	/* RLAIF-V's full reward: a context of a reference model (same
	 * vocabulary) that scores each candidate by teacher forcing, and the
	 * beta that scales the log-ratio. NULL: the model's own log-probs. */
	rv_context *reference;
	float beta;

	rv_text_fn on_text;
	rv_progress_fn on_progress;
	void *user;
	/* Polled once per step; when it returns non-zero generation stops
	 * with RV_ERR_INTERRUPTED and the result holds what was made so far. */
	int (*should_stop)(void *user);
} rv_gen_params;

rv_gen_params rv_gen_default_params(void);

/* Seed candidate i of a run seeded with seed samples with: a run of one
 * candidate seeded with rv_candidate_seed(s, i) reproduces candidate i. */
uint64_t rv_candidate_seed(uint64_t seed, int i);

typedef enum rv_finish {
	RV_FINISH_EOS = 0,    /* the model ended the answer */
	RV_FINISH_LENGTH = 1, /* n_predict or the context ran out (truncated) */
	RV_FINISH_STOPPED = 2 /* interrupted by the caller */
} rv_finish;

typedef struct rv_candidate {
	char *text;       /* NUL-terminated valid UTF-8 (without the end-of-sequence token) */
	int32_t *tokens;  /* generated ids, the end-of-sequence token included */
	double *logprobs; /* log p(token | prompt, earlier tokens) under the raw distribution */
	int n_tokens;
	rv_finish finish_reason;
	/* RV_SCORE_MEAN: (1/T) sum_t logprobs[t], T = n_tokens;
	 * with a reference: (beta/T) sum_t (logprobs[t] - ref_logprobs[t]).
	 * RV_SCORE_SUM: the same without 1/T. */
	double score;
	double *ref_logprobs; /* the reference model's, or NULL */
	double ref_score;     /* (1/T) sum_t ref_logprobs[t] (sum in RV_SCORE_SUM) */
	int rank;             /* 0 is the best: finished ones first, then by score, then index */
} rv_candidate;

typedef struct rv_timings {
	double load_ms;
	double image_encode_ms;
	double prefill_ms;
	int prefill_tokens;
	double decode_ms; /* all candidates */
	int decode_tokens;
	double scoring_ms; /* reference-model scoring and ranking */
} rv_timings;

typedef struct rv_result {
	/* the chosen candidate (copies) */
	char *text;
	int32_t *tokens;
	double *logprobs;
	int n_tokens;
	rv_finish finish_reason;

	int n_prompt_tokens;
	int chosen; /* index into candidates */
	int n_candidates;
	rv_candidate *candidates;
	rv_timings timings;
} rv_result;

/* A prompt with images. Each image's embedding rows take the place of an
 * <image> in the chat template, in order, at ordinary positions. */
typedef struct rv_prompt {
	const char *text;          /* the question (or, with no template, the whole prompt) */
	const char *const *images; /* image files (JPEG, PNG, BMP, PNM) */
	int n_images;
	/* "llava" (LLaVA-1.5's "{system} USER: <image>\n{question} ASSISTANT:"),
	 * "vicuna", "chatml", "llama-2", "gguf" (the model file's own when it
	 * is one of those), "none" (raw text). NULL: "llava" when there are
	 * images, else "none". */
	const char *chat_template;
	const char *system; /* NULL: the template's own system sentence */
} rv_prompt;

/* rv_generate for a prompt with images and a chat template. An image that
 * cannot be read or decoded is RV_ERR_IMAGE; a prompt (image rows
 * included) longer than the context is RV_ERR_CONTEXT before any compute;
 * images without rv_model_load_mmproj are RV_ERR_INVALID_ARG. */
rv_status rv_generate_prompt(rv_context *ctx, const rv_prompt *prompt, const rv_gen_params *params,
			     rv_result *result);

/* Raw completion of prompt (no chat template), best of
 * params->n_candidates. On RV_ERR_INTERRUPTED the result is filled with
 * what was generated; on other errors it is empty. The context's KV cache
 * is reset first. */
rv_status rv_generate(rv_context *ctx, const char *prompt, const rv_gen_params *params,
                      rv_result *result);
void rv_result_free(rv_result *result);

#ifdef __cplusplus
}
#endif
#endif
