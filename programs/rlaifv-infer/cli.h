/* cli.h: what the parts of rlaifv-infer share: its options, exit codes,
 * argument parsing (cli_args.c) and output formats (cli_output.c). */
#ifndef RLAIFV_CLI_H
#define RLAIFV_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "rlaifv.h"

enum cli_exit {
	EXIT_OK = 0,
	EXIT_RUNTIME = 1,
	EXIT_USAGE = 2,
	EXIT_MODEL = 3,
	EXIT_IMAGE = 4,
	/* --hf (cli_hub.c) */
	EXIT_HUB_NOT_FOUND = 5, /* repository, revision or file not on the Hub */
	EXIT_HUB_AUTH = 6,      /* 401/403: gated or private, set HF_TOKEN */
	EXIT_HUB_NO_FILE = 7,   /* no GGUF for the quant, no mmproj for an image */
	EXIT_HUB_NETWORK = 8,   /* no connection or 5xx, and nothing in the cache */
	EXIT_HUB_REFUSED = 9,   /* sha256 mismatch or a malformed/unsafe answer */
	EXIT_HUB_IO = 10,       /* the cache cannot be written (disk full, ...) */
	EXIT_BATCH_FAILED = 11, /* --batch: some task gave an error record */
	EXIT_INTERRUPTED = 130,
};

/* The most "-p -" reads from standard input. */
#define CLI_MAX_STDIN_PROMPT (16 << 20)

typedef struct cli_opts {
	const char *model;
	const char *mmproj;
	const char *ref_model;
	const char *ref_mmproj;
	/* No -m: the built-in model (cli_default.c) fills these in; each
	 * flag says which file is a default, for --verbose. */
	int default_model, default_mmproj, default_ref;
	int no_ref_model; /* --ref-model none: no default reference either */
	const char *prompt;
	const char *images[64];
	int n_images;
	const char *chat_template;
	const char *system;
	int no_exif;
	int no_cache;
	int image_max_side;
	int image_max_mib;
	int image_min_pixels, image_max_pixels;
	int image_longest_edge; /* 0: the mmproj's */
	int max_slices;         /* 0: the family's */

	int pan_and_scan;                     /* Gemma 3: HF's do_pan_and_scan */
	int pas_min_crop_size, pas_max_crops; /* 0: HF's defaults */
	double pas_min_ratio;                 /* 0: HF's default */

	int n_predict;
	int n_ctx;
	int n_threads;
	float temp;
	int temp_given; /* --temp was on the command line */
	int top_k;
	float top_p;
	float min_p;
	uint64_t seed;
	int n_candidates;
	int candidates_given;
	rv_score_mode score;
	float beta;
	int ignore_eos;
	int show_candidates;
	int verbose;
	int json;
	int check_tensors;       /* scan the weights for NaN/Inf after loading */
	const char *hf;          /* --hf OWNER/REPO[:QUANT] */
	const char *hf_file;     /* --hf-file: the text GGUF by name */
	const char *hf_mmproj;   /* --hf-mmproj: the projector by name */
	const char *hf_revision; /* --hf-revision: branch, tag or commit */
	const char *hf_list;     /* --hf-list OWNER/REPO */
	int hf_cache;            /* --hf-cache */
	int no_parse_special;    /* raw prompt: special-token text stays plain */
	int parse_special_user;  /* chat template: the user's text may hold control tokens */
	int tokenize;            /* print the prompt's ids as JSON and exit */
	int detokenize;          /* print the text of the ids (JSON array) in the prompt */

	/* --batch (cli_batch.c) */
	const char *batch;    /* TASKS.jsonl */
	const char *output;   /* --output OUT.jsonl, NULL: stdout */
	int resume;           /* --resume: skip the ids already in OUT */
	int shard_i, shard_n; /* --shard I/N: tasks whose index mod N == I */
	const char *pairs;    /* --pairs PAIRS.jsonl: preference pairs (cli_pairs.c) */
	int parallel;         /* --parallel K: tasks decoded together (0 or 1: one) */
} cli_opts;

/* --batch: the tasks file's results, one JSON line each (cli_batch.c). */
int cli_run_batch(const cli_opts *o);
/* --pairs: the line of r's best and worst finished candidates (distinct
 * texts) for the task id (JSON text); 1 if written, 0 if r has no pair. */
int cli_write_pair(FILE *f, const cli_opts *o, const char *id, const char *const *images,
                   int n_images, const char *question, const rv_result *r);

/* cli.c: loads one model (and its projector when mmproj is not NULL) and
 * makes its context; an exit code, the message printed. */
int cli_open_model(const cli_opts *o, const char *path, const char *mmproj, int borrowed,
                   rv_model **m, rv_context **ctx);
/* The generation parameters the options give (no callbacks, no reference). */
rv_gen_params cli_gen_params(const cli_opts *o);
/* SIGINT sets a flag (cli.c): cli_should_stop, the rv_gen_params
 * callback, returns it from then on. */
void cli_catch_sigint(void);
int cli_should_stop(void *user);
/* A JSON string literal of s (cli_output.c). */
void cli_json_string(FILE *f, const char *s);

/* cli_default.c: the built-in shapes model (#20), used without -m and
 * $RLAIFV_MODEL, with its projector and, for best-of-N, its SFT model as
 * the RLAIF-V reference. The paths live here, o points into it. */
typedef struct cli_defaults {
	char dir[4096];
	char model[4200], mmproj[4200], ref_model[4200];
} cli_defaults;
/* Points o's unset files at the defaults when o->default_model; -1 to go
 * on, else the exit code after printing which files are missing. */
int cli_use_defaults(cli_opts *o, cli_defaults *d);
/* Where the default models are looked for: $RLAIFV_MODEL_DIR, else the
 * source tree's tests/data for the program in the build tree, else the
 * installed models folder. Fills dir (of size n) and returns it; why, if
 * not NULL, says which of the three it is. */
const char *cli_default_dir(char *dir, size_t n, const char **why);
/* --verbose: the files about to be loaded, the defaults marked. */
void cli_print_files(FILE *f, const cli_opts *o, int with_mmproj);

/* --tokenize / --detokenize: needs only the vocabulary. */
int cli_run_tokens(const cli_opts *o);

/* Fills o from argv and the environment. Returns -1 to go on, else the
 * exit code to leave with (after --help, --version or a usage error, whose
 * message it has printed). */
int cli_parse_args(int argc, char **argv, cli_opts *o);

/* --hf-list and --hf-cache print and end (returns the exit code); --hf
 * fetches into the Hugging Face cache and points o->model (and o->mmproj
 * for an image prompt) there; -1 to go on. paths is where they live. */
struct hub_paths;
int cli_hub(cli_opts *o, struct hub_paths *paths);

void cli_print_json(FILE *f, const rv_result *r);
void cli_print_candidates(FILE *f, const rv_result *r);
void cli_print_verbose(FILE *f, const rv_result *r, int n_threads);

#endif
