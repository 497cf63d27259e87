/* cli.c: rlaifv-infer, a thin command line over the public API: loads the
 * model(s), generates, streams or prints the chosen answer on stdout, puts
 * every diagnostic on stderr, and maps failures to documented exit codes. */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "programs/rlaifv-infer/cli.h"

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

static int should_stop(void *user)
{
	(void)user;
	return interrupted;
}

static int stream_text(const char *piece, size_t len, void *user)
{
	(void)user;
	fwrite(piece, 1, len, stdout);
	fflush(stdout);
	return 0;
}

/* Progress of best-of-N on a terminal: candidates done and speed. */
static void show_progress(int done, int n, int tokens, double ms, void *user)
{
	(void)user;
	fprintf(stderr, "\r%d/%d candidates done, %d tokens, %.1f tokens/s ", done, n, tokens,
	        ms > 0 ? tokens * 1000.0 / ms : 0.0);
	if (done == n)
		fputc('\n', stderr);
}

/* Reads all of stdin for "-p -". */
static char *read_stdin(void)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	while (buf) {
		size_t got = fread(buf + n, 1, cap - n - 1, stdin);
		n += got;
		if (got == 0)
			break;
		if (n + 1 == cap) {
			char *b = realloc(buf, cap * 2);
			if (!b)
				free(buf);
			buf = b;
			cap *= 2;
		}
	}
	if (buf)
		buf[n] = 0;
	return buf;
}

typedef struct session {
	rv_model *model, *ref_model;
	rv_context *ctx, *ref_ctx;
} session;

static void session_free(session *s)
{
	rv_context_free(s->ref_ctx);
	rv_context_free(s->ctx);
	rv_model_free(s->ref_model);
	rv_model_free(s->model);
}

static int open_model(const cli_opts *o, const char *path, const char *mmproj, rv_model **m,
                      rv_context **ctx)
{
	char err[1024];
	rv_model_params mp = rv_model_default_params();
	mp.n_threads = o->n_threads;
	if (rv_model_load(path, &mp, m, err, sizeof(err)) != RV_OK ||
	    (mmproj && rv_model_load_mmproj(*m, mmproj, err, sizeof(err)) != RV_OK) ||
	    (mmproj && o->image_longest_edge &&
	     rv_model_set_image_longest_edge(*m, o->image_longest_edge, err, sizeof(err)) !=
	         RV_OK) ||
	    (o->check_tensors && rv_model_check_tensors(*m, err, sizeof(err)) != RV_OK)) {
		fprintf(stderr, "rlaifv-infer: %s\n", err);
		return EXIT_MODEL;
	}
	rv_context_params cp = rv_context_default_params();
	cp.n_ctx = o->n_ctx;
	cp.n_threads = o->n_threads;
	cp.no_exif = o->no_exif;
	cp.no_cache = o->no_cache;
	cp.image_max_side = o->image_max_side;
	if (rv_context_new(*m, &cp, ctx, err, sizeof(err)) != RV_OK) {
		fprintf(stderr, "rlaifv-infer: %s\n", err);
		return EXIT_RUNTIME;
	}
	return EXIT_OK;
}

static int status_exit(rv_status s)
{
	switch (s) {
	case RV_OK:
		return EXIT_OK;
	case RV_ERR_INTERRUPTED:
		return EXIT_INTERRUPTED;
	case RV_ERR_IMAGE:
		return EXIT_IMAGE;
	case RV_ERR_INVALID_ARG:
		return EXIT_USAGE;
	default:
		return EXIT_RUNTIME;
	}
}

static int run(const cli_opts *o, session *s)
{
	char err[1024];
	const char *isa = getenv("RLAIFV_ISA");
	if (isa && *isa && rv_select_kernels(isa, err, sizeof(err)) != RV_OK) {
		fprintf(stderr, "rlaifv-infer: %s\n", err);
		return EXIT_USAGE;
	}
	/* a text prompt needs no projector: load one only for images */
	const char *mmproj = o->n_images > 0 ? o->mmproj : NULL;
	int code = open_model(o, o->model, mmproj, &s->model, &s->ctx);
	if (code == EXIT_OK && o->ref_model)
		code = open_model(o, o->ref_model, o->n_images > 0 ? o->ref_mmproj : NULL,
		                  &s->ref_model, &s->ref_ctx);
	if (code != EXIT_OK)
		return code;

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigint;
	sigaction(SIGINT, &sa, NULL);

	rv_gen_params gp = rv_gen_default_params();
	gp.n_predict = o->n_predict;
	gp.temp = o->temp;
	gp.top_k = o->top_k;
	gp.top_p = o->top_p;
	gp.min_p = o->min_p;
	gp.seed = o->seed;
	gp.ignore_eos = o->ignore_eos;
	gp.n_candidates = o->n_candidates;
	gp.score = o->score;
	gp.beta = o->beta;
	gp.reference = s->ref_ctx;
	gp.should_stop = should_stop;
	if (!o->json && o->n_candidates == 1)
		gp.on_text = stream_text;
	if (o->n_candidates > 1 && isatty(STDERR_FILENO))
		gp.on_progress = show_progress;

	rv_prompt prompt = {o->prompt, o->images, o->n_images, o->chat_template, o->system};
	rv_result res;
	rv_status st = rv_generate_prompt(s->ctx, &prompt, &gp, &res);
	if (st == RV_OK || st == RV_ERR_INTERRUPTED) {
		if (o->json)
			cli_print_json(stdout, &res);
		else if (o->n_candidates > 1 && res.text)
			fputs(res.text, stdout); /* best-of-N: the chosen answer, at the end */
		if (!o->json && st == RV_OK && isatty(STDOUT_FILENO))
			fputc('\n', stdout); /* piped output stays exactly the text */
		fflush(stdout);
		if (o->show_candidates)
			cli_print_candidates(stderr, &res);
		if (o->verbose)
			cli_print_verbose(stderr, &res,
			                  o->n_threads ? o->n_threads : rv_default_threads());
	}
	if (st != RV_OK)
		fprintf(stderr, "%srlaifv-infer: %s\n", st == RV_ERR_INTERRUPTED ? "\n" : "",
		        rv_context_error(s->ctx));
	rv_result_free(&res);
	return status_exit(st);
}

int main(int argc, char **argv)
{
	cli_opts o;
	int code = cli_parse_args(argc, argv, &o);
	if (code >= 0)
		return code;

	char *stdin_prompt = NULL;
	if (!strcmp(o.prompt, "-")) {
		stdin_prompt = read_stdin();
		if (!stdin_prompt) {
			fprintf(stderr, "rlaifv-infer: cannot read the prompt from stdin\n");
			return EXIT_RUNTIME;
		}
		o.prompt = stdin_prompt;
	}
	session s = {0};
	code = run(&o, &s);
	session_free(&s);
	free(stdin_prompt);
	return code;
}
