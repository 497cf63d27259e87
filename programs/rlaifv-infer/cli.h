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
	EXIT_INTERRUPTED = 130,
};

typedef struct cli_opts {
	const char *model;
	const char *mmproj;
	const char *ref_model;
	const char *ref_mmproj;
	const char *prompt;
	const char *images[64];
	int n_images;
	const char *chat_template;
	const char *system;
	int no_exif;
	int no_cache;
	int image_max_side;
	int image_longest_edge; /* 0: the mmproj's */
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
	int check_tensors; /* scan the weights for NaN/Inf after loading */
} cli_opts;

/* Fills o from argv and the environment. Returns -1 to go on, else the
 * exit code to leave with (after --help, --version or a usage error, whose
 * message it has printed). */
int cli_parse_args(int argc, char **argv, cli_opts *o);

void cli_print_json(FILE *f, const rv_result *r);
void cli_print_candidates(FILE *f, const rv_result *r);
void cli_print_verbose(FILE *f, const rv_result *r, int n_threads);

#endif
