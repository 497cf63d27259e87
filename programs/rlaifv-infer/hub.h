/* hub.h: rlaifv-infer's Hugging Face Hub client (hub.c): lists a model
 * repository, picks the text GGUF by quantization and its mmproj, and
 * downloads them into the standard huggingface_hub cache
 * (models--OWNER--REPO/{blobs,snapshots,refs}), resumable and checked
 * against the sha256 the Hub reports. Files already in the cache are used
 * without a request when offline or when the network fails. It belongs to
 * the program, not the library: the runtime never opens a network
 * connection and does not depend on libcurl. */
#ifndef RLAIFV_HUB_H
#define RLAIFV_HUB_H

#include <limits.h>
#include <stdint.h>
#include <stdio.h>

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

enum hub_status {
	HUB_OK = 0,
	HUB_ERR_USAGE,     /* a bad repository, revision or quant name */
	HUB_ERR_NOT_FOUND, /* repository, revision or file not on the Hub (404) */
	HUB_ERR_AUTH,      /* 401/403: gated or private without a token */
	HUB_ERR_NO_FILE,   /* no GGUF matching QUANT, no mmproj, incomplete split set */
	HUB_ERR_NETWORK,   /* no connection, 5xx after retries, and nothing cached */
	HUB_ERR_REFUSED,   /* an answer or a cache entry that is not what it must be:
	                    * sha256 mismatch, unsafe path, oversized or malformed data */
	HUB_ERR_IO,        /* the local disk: cannot create, write, or no space */
	HUB_ERR_NO_CURL,   /* built with --without-curl */
};

/* Where and how to reach the Hub, read from the environment the way
 * huggingface_hub reads it (hub_env_init), or filled in by a test. */
typedef struct hub_env {
	char cache[PATH_MAX]; /* the hub cache: HF_HUB_CACHE, HF_HOME/hub, ... */
	char endpoint[1024];  /* HF_ENDPOINT without a trailing '/' */
	char token[512];      /* HF_TOKEN or the token file; "" = anonymous */
	int offline;          /* HF_HUB_OFFLINE: the cache only, no request */
	FILE *log;            /* progress and notes; NULL = quiet */
	int log_tty;          /* log is a terminal: a live progress bar */
	int max_tries;        /* attempts on a 5xx or a cut connection */
	int retry_delay_ms;   /* first backoff, doubled after each try */
	long stall_seconds;   /* a transfer with no byte for this long fails */
} hub_env;

/* Fills e from the environment (HF_HUB_CACHE, HUGGINGFACE_HUB_CACHE,
 * HF_HOME, XDG_CACHE_HOME, HOME, HF_ENDPOINT, HF_TOKEN,
 * HUGGING_FACE_HUB_TOKEN, HF_TOKEN_PATH, HF_HUB_OFFLINE,
 * TRANSFORMERS_OFFLINE); log = NULL. */
int hub_env_init(hub_env *e, char *err, size_t err_len);

typedef struct hub_request {
	const char *repo;     /* OWNER/REPO */
	const char *quant;    /* e.g. "Q4_K_M"; NULL: Q4_K_M, else Q8_0, else the first */
	const char *file;     /* an exact file to take instead of choosing by quant */
	const char *mmproj;   /* an exact projector file; NULL: chosen by name */
	const char *revision; /* branch, tag or commit; NULL = "main" */
	int want_mmproj;      /* 1: fetch the projector too (an image prompt) */
} hub_request;

typedef struct hub_paths {
	char model[PATH_MAX];  /* snapshots/<commit>/<file>: the (first part of the) text GGUF */
	char mmproj[PATH_MAX]; /* "" when not wanted */
	int n_parts;           /* files of the text model (split GGUFs: > 1) */
} hub_paths;

/* Splits "OWNER/REPO[:QUANT]" into repo and quant (quant "" when absent). */
int hub_parse_spec(const char *spec, char *repo, size_t repo_len, char *quant, size_t quant_len,
                   char *err, size_t err_len);

/* Makes the request's files present in the cache; out gets their paths. */
int hub_fetch(const hub_env *e, const hub_request *r, hub_paths *out, char *err, size_t err_len);

/* Prints the repository's GGUF quants with sizes, and its projectors. */
int hub_list(const hub_env *e, const char *repo, const char *revision, FILE *out, char *err,
             size_t err_len);

/* Prints the GGUF files of every model repository in the cache. */
int hub_cache_list(const hub_env *e, FILE *out, char *err, size_t err_len);

/* ---- the choosing rules, on a plain list of paths (exposed for tests) ---- */

/* The quant tag of a GGUF file name, upper case ("Q4_K_M" for
 * "dir/Model-Q4_K_M-00001-of-00002.gguf"); "" when it has none. */
void hub_quant_tag(const char *path, char *tag, size_t tag_len);

/* Index of the text model to take from paths[0..n): by quant, or
 * Q4_K_M, Q8_0, then the first; the first part of a split set. -1: none. */
int hub_choose_model(const char *const *paths, int n, const char *quant);

/* Index of the projector for the model at paths[model]: a GGUF named
 * "mmproj" in the model's folder or above, F16 preferred. -1: none. */
int hub_choose_mmproj(const char *const *paths, int n, int model);

#endif
