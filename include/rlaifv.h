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
 * never exits the process and prints nothing (warnings go to rv_log_set's
 * callback). Every pointer and every numeric field of a params struct is
 * checked where it enters the library: NULL or out of range is
 * RV_ERR_INVALID_ARG naming the argument (the limits are the RV_MAX_*
 * constants below). Paths must name regular files: a FIFO, device or
 * directory is refused (RV_ERR_IO, or RV_ERR_IMAGE for an image) without
 * reading from it, so it cannot block a call.
 *
 * Threads: a model may be shared by any number of threads, each with its
 * own context (one context per thread; loading a projector into a model
 * must finish before contexts use it). A context serves one call at a
 * time: a call on a context that another thread is using (including as the
 * reference of a running rv_generate_prompt) returns RV_ERR_BUSY at once
 * and leaves that context untouched. rv_context_free and rv_model_free
 * must not race with calls on what they free, and a model must outlive
 * its contexts. rv_select_kernels and rv_log_set may be called at any
 * time. */
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
	RV_ERR_BUSY = -10, /* the context is in use by a call on another thread */
} rv_status;

/* Limits of the numeric parameters (inclusive). */
#define RV_MAX_THREADS    1024      /* n_threads of every params struct */
#define RV_MAX_CTX        (1 << 24) /* rv_context_params.n_ctx */
#define RV_MAX_BATCH      (1 << 16) /* rv_context_params.n_batch */
#define RV_MAX_IMAGE_SIDE 65536     /* rv_context_params.image_max_side */
#define RV_MAX_IMAGE_MIB  16384     /* rv_context_params.image_max_mib */
#define RV_MAX_TEMP       100.0f    /* rv_gen_params.temp */

/* A short English name of a status ("model file error"). */
const char *rv_status_str(rv_status s);

/* Library version ("0.1.0"), kernel set in use ("avx2", or a measured
 * choice "auto: F32 avx512, F16 avx2+avx512, ..."), BLAS in use. */
const char *rv_version(void);
const char *rv_kernel_set(void);
const char *rv_blas_info(void);

/* Chooses the kernel set: "auto" (per weight type, the sets measured
 * fastest on this CPU, once, kept in $XDG_CACHE_HOME/rlaifv/; the best by
 * features when $RLAIFV_CALIBRATE is 0), "scalar",
 * "avx2", "avx512", "neon", "neon-dotprod", or NULL for $RLAIFV_ISA (auto
 * when unset). Without a call the library applies $RLAIFV_ISA on first use
 * and rv_model_load refuses a value this build or CPU cannot run. A set
 * this build or CPU lacks is RV_ERR_INVALID_ARG with a message in err. A
 * set forced by $RLAIFV_ISA is noted in the log (RV_LOG_INFO). */
rv_status rv_select_kernels(const char *isa, char *err, size_t err_size);

/* Threads used when a parameter says 0: $RLAIFV_THREADS, else the number of
 * physical cores. */
int rv_default_threads(void);

/* ---- log --------------------------------------------------------------- */

/* The library never writes to stderr. What it notices and works around
 * goes to one callback, or nowhere when none is set: warnings (the
 * image-embedding cache directory is unusable or an entry could not be
 * written, once per context; OpenBLAS runs its generic kernels on a CPU it
 * does not recognise; $RLAIFV_ISA names a set the CPU cannot run) and
 * notes (the kernel set was forced by $RLAIFV_ISA). Errors are not logged:
 * they are the status and message of the call that failed. */
typedef enum rv_log_level {
	RV_LOG_WARN = 1, /* something is wrong, and the library goes on without it */
	RV_LOG_INFO = 2, /* worth knowing, nothing wrong */
} rv_log_level;

/* msg is one line without a newline, valid during the call. The callback
 * runs on whichever thread calls into the library (so possibly on several
 * at once) and must not call back into the library. */
typedef void (*rv_log_fn)(rv_log_level level, const char *msg, void *user);

/* Sets the process-wide callback (NULL: drop messages); user is passed
 * back to it. Safe to call at any time from any thread. */
void rv_log_set(rv_log_fn fn, void *user);

/* ---- model ------------------------------------------------------------- */

typedef struct rv_model rv_model;

typedef struct rv_model_params {
	int n_threads; /* 0: rv_default_threads(); at most RV_MAX_THREADS */
	/* 1: read only the vocabulary (tokenizer.ggml.* keys; the file may
	 * have no tensors, like llama.cpp's ggml-vocab-*.gguf), for
	 * rv_model_tokenize and rv_model_detokenize. Such a model makes no
	 * context and takes no projector (RV_ERR_INVALID_ARG). */
	int vocab_only;
} rv_model_params;

rv_model_params rv_model_default_params(void);

/* Maps and validates a GGUF text model. On failure *out is NULL and err
 * (err_size bytes, may be NULL) holds the message. params may be NULL (the
 * defaults). An unusable $RLAIFV_ISA is RV_ERR_INVALID_ARG. */
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

/* For projectors with Hugging Face's pan-and-scan (Gemma 3,
 * clip.projector_type "gemma3"; off by default, as in HF): with enable, an
 * image whose long side is at least min_ratio times its short side is also
 * cut along it into 2 to max_crops crops of at least min_crop_size pixels,
 * each encoded as an image of its own after the whole image, as
 * Gemma3ImageProcessor(do_pan_and_scan=True) and Gemma3Processor do.
 * min_crop_size, max_crops, min_ratio: 0 for HF's defaults (256, 4, 1.2).
 * RV_ERR_UNSUPPORTED for projectors without it, RV_ERR_INVALID_ARG for
 * values out of range. Cached image embeddings are kept apart per setting. */
rv_status rv_model_set_pan_and_scan(rv_model *model, int enable, int min_crop_size, int max_crops,
                                    double min_ratio, char *err, size_t err_size);

/* For projectors that cut images into slices (MiniCPM-V, clip.projector_type
 * "resampler"): the most slices besides the overview, Hugging Face's
 * max_slice_nums (1: the overview alone, the fastest; 0: the default 9).
 * RV_ERR_UNSUPPORTED for projectors without it, RV_ERR_INVALID_ARG outside
 * 0..64. Cached image embeddings are kept apart per value. */
rv_status rv_model_set_image_max_slices(rv_model *model, int max_slices, char *err,
                                        size_t err_size);

int rv_model_n_vocab(const rv_model *model);

/* Encodes len bytes of text with the model's vocabulary, without BOS/EOS
 * unless add_special (then as the file says: add_bos_token,
 * add_eos_token). parse_special: text of control tokens ("<|im_end|>",
 * "</s>") becomes those tokens; 0 keeps it plain text (user-defined tokens
 * are matched either way, as Hugging Face and llama.cpp do). *tokens is
 * malloc'ed (free() it; NULL when *n_tokens is 0). Needs no context; works
 * on a vocab_only model. */
rv_status rv_model_tokenize(const rv_model *model, const char *text, size_t len, int add_special,
                            int parse_special, int32_t **tokens, int *n_tokens, char *err,
                            size_t err_size);

/* The bytes n_tokens ids decode to, concatenated: control tokens give
 * nothing, byte tokens their byte; no UTF-8 repair, so
 * detokenize(tokenize(text)) == text byte for byte wherever the vocabulary
 * can represent the text. *text is malloc'ed and NUL-terminated (free()
 * it), *len its length without the NUL. An id out of range is
 * RV_ERR_INVALID_ARG naming its position. */
rv_status rv_model_detokenize(const rv_model *model, const int32_t *tokens, int n_tokens,
                              char **text, size_t *len, char *err, size_t err_size);
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
	int n_ctx;     /* 0: the model's training context, at most 4096; <= RV_MAX_CTX */
	int n_batch;   /* most prompt tokens per forward pass; 0: 512; <= RV_MAX_BATCH */
	int n_threads; /* 0: the model's; <= RV_MAX_THREADS */
	int no_exif;   /* 1: ignore the EXIF orientation of JPEG photos */
	/* Image limits, checked from the file's header before it is decoded
	 * and also when its embedding comes from the cache. Fixed: 64 MiB per
	 * file and 64 Mi pixels (e.g. 8192 x 8192). */
	int image_max_side; /* refuse images with a longer side; 0: 16384; <= RV_MAX_IMAGE_SIDE */
	/* Memory an image may need to decode, in MiB, estimated from its
	 * header as width x height x (2 x channels x bytes per sample + 3):
	 * 0: 768, which admits 8-bit images up to the pixel limit but not a
	 * 16-bit 8192 x 8192 RGBA PNG (1216 MiB). <= RV_MAX_IMAGE_MIB; one
	 * decoder buffer is still capped at 768 MiB whatever this says. */
	int image_max_mib;
	/* Dynamic-resolution families (Qwen2.5-VL) resize an image to at
	 * least image_min_pixels and at most image_max_pixels pixels (their
	 * processor's min_pixels, max_pixels); 0: the family's own (Qwen2.5-VL:
	 * 3136 and 12845056, Hugging Face's). */
	int image_min_pixels, image_max_pixels;
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

/* Encodes text (taken as plain text: no special tokens); *tokens is
 * malloc'ed (free() it). add_bos < 0: as the model says. */
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
	float temp;     /* 0: greedy (then only one candidate makes sense); 0..RV_MAX_TEMP */
	int top_k;      /* <= 0: off */
	float top_p;    /* 0..1; 1: off */
	float min_p;    /* 0..1; 0: off */
	uint64_t seed;  /* candidate i samples with a seed derived from (seed, i) */
	int ignore_eos; /* keep generating past end-of-sequence */
	int add_bos;    /* < 0: as the model says; 0 no; 1 yes */

	int n_candidates; /* best-of-N: answers sampled from one shared prompt
	                     (1..RV_MAX_CANDIDATES) */
	rv_score_mode score;
	/* RLAIF-V's full reward: a context of a reference model (same
	 * vocabulary) that scores each candidate by teacher forcing, and the
	 * beta that scales the log-ratio (positive, finite). NULL: the model's
	 * own log-probs. It is busy while the call runs (see Threads above). */
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
	 * "vicuna", "chatml", "qwen2-vl" (chatml, images straight before the
	 * question), "llama-2", "smolvlm", "gemma3", "qwen3" (MiniCPM-V 4.5's:
	 * thinking off), "gguf" (the model file's own when it is one of
	 * those), "none" (raw text). NULL: with images the projector's own
	 * (else "llava"); without, "none". */
	const char *chat_template;
	const char *system; /* NULL: the template's own system sentence */
	/* Special-token text ("<|im_end|>", "</s>"): in a raw prompt
	 * (template "none", rv_generate) it becomes the control token, as
	 * llama.cpp does, unless no_parse_special is 1. Inside a chat template
	 * only the template's own markers are control tokens: the system and
	 * user text stay plain text, so a user cannot end a turn, unless
	 * parse_special_user is 1. */
	int no_parse_special;
	int parse_special_user;
} rv_prompt;

/* rv_generate for a prompt with images and a chat template. An image that
 * cannot be read or decoded, is not a regular file, or exceeds a limit of
 * rv_context_params is RV_ERR_IMAGE; a prompt (image rows included)
 * longer than the context is RV_ERR_CONTEXT before any compute; images
 * without rv_model_load_mmproj are RV_ERR_INVALID_ARG. params may be NULL
 * (the defaults); ctx, prompt and result may not. */
rv_status rv_generate_prompt(rv_context *ctx, const rv_prompt *prompt, const rv_gen_params *params,
                             rv_result *result);

/* Raw completion of prompt (no chat template), best of
 * params->n_candidates. On RV_ERR_INTERRUPTED the result is filled with
 * what was generated; on other errors it is empty. The context's KV cache
 * is reset first. */
rv_status rv_generate(rv_context *ctx, const char *prompt, const rv_gen_params *params,
                      rv_result *result);

/* ---- batches ----------------------------------------------------------- */

#define RV_MAX_PARALLEL 64

/* Called by rv_generate_batch as each task ends, in the order they end:
 * the task's index, its status (RV_OK; an error of that task alone, such
 * as RV_ERR_IMAGE or RV_ERR_CONTEXT, with message; RV_ERR_INTERRUPTED with
 * what was generated) and its result, valid during the call: after it the
 * library rv_result_free()s *result, so to keep it copy the struct and
 * zero *result. Must not call into the library with ctx. */
typedef void (*rv_task_fn)(int index, rv_status status, const char *message, rv_result *result,
                           void *user);

/* Answers n_tasks prompts, prompts[i] with params[i] (which may differ in
 * everything but the reference context, the same for all or NULL for
 * all), decoding the candidates of up to n_parallel of them (1 ..
 * RV_MAX_PARALLEL) together in batched steps: each task's prompt is
 * prefilled into a slot of the context's cache of its own, and a slot
 * whose task ends takes the next task (in index order). Each result, its
 * tokens, log-probabilities and scores, is bit-identical to what
 * rv_generate_prompt(ctx, &prompts[i], &params[i]) gives alone. on_text is
 * not called; on_progress per task; should_stop of any running task stops
 * the batch (the running tasks end with RV_ERR_INTERRUPTED, the others are
 * not started, and the call returns RV_ERR_INTERRUPTED). The cache holds
 * n_parallel prompts of rv_context_n_ctx positions each: n_parallel x
 * n_ctx beyond RV_MAX_CTX is RV_ERR_CONTEXT, memory that cannot be had
 * RV_ERR_NOMEM, before any task runs. Returns RV_OK when every task was
 * handed to on_task (a task's own failure does not stop the others). */
rv_status rv_generate_batch(rv_context *ctx, int n_tasks, const rv_prompt *prompts,
                            const rv_gen_params *params, int n_parallel, rv_task_fn on_task,
                            void *user);
void rv_result_free(rv_result *result);

#ifdef __cplusplus
}
#endif
#endif
