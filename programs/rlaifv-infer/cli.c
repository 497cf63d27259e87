/* cli.c: rlaifv-infer, a thin command line over the public API: loads the
 * model(s), generates, streams or prints the chosen answer on stdout, puts
 * every diagnostic on stderr, and maps failures to documented exit codes. */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "programs/rlaifv-infer/cli.h"
#include "programs/rlaifv-infer/hub.h"

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

int cli_should_stop(void *user)
{
	(void)user;
	return interrupted;
}

void cli_catch_sigint(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigint;
	sigaction(SIGINT, &sa, NULL);
}

/* The first error writing the answer (errno), 0 while none: an answer
 * lost to a full disk or a closed pipe is a failure, not exit 0. */
static int stdout_errno;

/* The parent left standard input closed (it is /dev/null now). */
static int stdin_was_closed;

static void note_stdout_error(void)
{
	if (ferror(stdout) && !stdout_errno)
		stdout_errno = errno ? errno : EIO;
}

/* Stops generation at the first failed write: nobody will read the rest. */
static int stream_text(const char *piece, size_t len, void *user)
{
	(void)user;
	if (fwrite(piece, 1, len, stdout) != len || fflush(stdout) != 0)
		note_stdout_error();
	return stdout_errno != 0;
}

/* Flushes and closes stdout, so that a write the C library was still
 * holding fails here, where it can change the exit status. */
static int finish_stdout(int code)
{
	if (fflush(stdout) != 0)
		note_stdout_error();
	note_stdout_error();
	if (fclose(stdout) != 0 && !stdout_errno)
		stdout_errno = errno ? errno : EIO;
	if (stdout_errno) {
		fprintf(stderr, "rlaifv-infer: cannot write the answer to standard output: %s\n",
		        strerror(stdout_errno));
		return code == EXIT_OK || code == EXIT_INTERRUPTED ? EXIT_RUNTIME : code;
	}
	return code;
}

/* Library warnings always, notes with --verbose. */
static void on_log(rv_log_level level, const char *msg, void *user)
{
	const int verbose = *(const int *)user;
	if (level == RV_LOG_WARN)
		fprintf(stderr, "rlaifv-infer: warning: %s\n", msg);
	else if (verbose)
		fprintf(stderr, "rlaifv-infer: %s\n", msg);
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

/* Reads all of stdin for "-p -", at most CLI_MAX_STDIN_PROMPT bytes (far
 * more text than any context holds); NULL after printing why not. */
static char *read_stdin(void)
{
	if (stdin_was_closed) {
		fprintf(stderr, "rlaifv-infer: -p -: standard input is closed\n");
		return NULL;
	}
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	while (buf) {
		size_t got = fread(buf + n, 1, cap - n - 1, stdin);
		n += got;
		if (got == 0)
			break;
		if (n > CLI_MAX_STDIN_PROMPT) {
			fprintf(
			    stderr,
			    "rlaifv-infer: the prompt on standard input is longer than %d MiB\n",
			    CLI_MAX_STDIN_PROMPT >> 20);
			free(buf);
			return NULL;
		}
		if (n + 1 == cap) {
			char *b = realloc(buf, cap * 2);
			if (!b)
				free(buf);
			buf = b;
			cap *= 2;
		}
	}
	if (!buf) {
		fprintf(stderr, "rlaifv-infer: out of memory reading the prompt\n");
		return NULL;
	}
	if (ferror(stdin)) {
		fprintf(stderr, "rlaifv-infer: cannot read the prompt from standard input: %s\n",
		        strerror(errno));
		free(buf);
		return NULL;
	}
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

/* borrowed: mmproj is the model's, taken by the reference model */
int cli_open_model(const cli_opts *o, const char *path, const char *mmproj, int borrowed,
                   rv_model **m, rv_context **ctx)
{
	char err[1024];
	rv_model_params mp = rv_model_default_params();
	mp.n_threads = o->n_threads;
	const rv_status st = rv_model_load(path, &mp, m, err, sizeof(err));
	int failed = st != RV_OK;
	if (!failed && mmproj && rv_model_load_mmproj(*m, mmproj, err, sizeof(err)) != RV_OK) {
		if (borrowed) {
			fprintf(stderr,
			        "rlaifv-infer: --ref-model %s: %s; without --ref-mmproj the "
			        "reference takes --mmproj's projector\n",
			        path, err);
			return EXIT_MODEL;
		}
		failed = 1;
	}
	failed = failed ||
	         (mmproj && o->image_longest_edge &&
	          rv_model_set_image_longest_edge(*m, o->image_longest_edge, err, sizeof(err)) !=
	              RV_OK) ||
	         (mmproj && o->max_slices &&
	          rv_model_set_image_max_slices(*m, o->max_slices, err, sizeof(err)) != RV_OK) ||
	         (mmproj && o->pan_and_scan &&
	          rv_model_set_pan_and_scan(*m, 1, o->pas_min_crop_size, o->pas_max_crops,
	                                    o->pas_min_ratio, err, sizeof(err)) != RV_OK) ||
	         (o->check_tensors && rv_model_check_tensors(*m, err, sizeof(err)) != RV_OK);
	if (failed) {
		fprintf(stderr, "rlaifv-infer: %s\n", err);
		return st == RV_ERR_INVALID_ARG ? EXIT_USAGE : EXIT_MODEL;
	}
	rv_context_params cp = rv_context_default_params();
	cp.n_ctx = o->n_ctx;
	cp.n_threads = o->n_threads;
	cp.no_exif = o->no_exif;
	cp.no_cache = o->no_cache;
	cp.image_max_side = o->image_max_side;
	cp.image_max_mib = o->image_max_mib;
	cp.image_min_pixels = o->image_min_pixels;
	cp.image_max_pixels = o->image_max_pixels;
	if (rv_context_new(*m, &cp, ctx, err, sizeof(err)) != RV_OK) {
		fprintf(stderr, "rlaifv-infer: %s\n", err);
		return EXIT_RUNTIME;
	}
	return EXIT_OK;
}

rv_gen_params cli_gen_params(const cli_opts *o)
{
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
	return gp;
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
	if (rv_select_kernels(NULL, err, sizeof(err)) != RV_OK) { /* $RLAIFV_ISA */
		fprintf(stderr, "rlaifv-infer: %s\n", err);
		return EXIT_USAGE;
	}
	/* a text prompt needs no projector: load one only for images */
	const char *mmproj = o->n_images > 0 ? o->mmproj : NULL;
	if (o->verbose)
		cli_print_files(stderr, o, mmproj != NULL);
	int code = cli_open_model(o, o->model, mmproj, 0, &s->model, &s->ctx);
	/* RLAIF-V's reference sees the same image: without --ref-mmproj it
	 * takes the model's projector (the image is then encoded once), if
	 * that fits the reference's embedding width. */
	if (code == EXIT_OK && o->ref_model)
		code = cli_open_model(o, o->ref_model,
		                      o->ref_mmproj && mmproj ? o->ref_mmproj : mmproj,
		                      !o->ref_mmproj, &s->ref_model, &s->ref_ctx);
	if (code != EXIT_OK)
		return code;

	cli_catch_sigint();

	rv_gen_params gp = cli_gen_params(o);
	gp.reference = s->ref_ctx;
	gp.should_stop = cli_should_stop;
	if (!o->json && o->n_candidates == 1)
		gp.on_text = stream_text;
	if (o->n_candidates > 1 && isatty(STDERR_FILENO))
		gp.on_progress = show_progress;

	rv_prompt prompt = {o->prompt, o->images,           o->n_images,          o->chat_template,
	                    o->system, o->no_parse_special, o->parse_special_user};
	rv_result res;
	rv_status st = rv_generate_prompt(s->ctx, &prompt, &gp, &res);
	if (st == RV_ERR_INTERRUPTED && stdout_errno)
		st = RV_OK; /* stopped by the failed write, reported at the end */
	if (st == RV_OK || st == RV_ERR_INTERRUPTED) {
		if (o->json)
			cli_print_json(stdout, &res);
		else if (o->n_candidates > 1 && res.text)
			fputs(res.text, stdout); /* best-of-N: the chosen answer, at the end */
		if (!o->json && st == RV_OK && isatty(STDOUT_FILENO))
			fputc('\n', stdout); /* piped output stays exactly the text */
		if (fflush(stdout) != 0)
			note_stdout_error();
		if (o->show_candidates)
			cli_print_candidates(stderr, &res);
		if (o->verbose)
			cli_print_verbose(stderr, &res,
			                  o->n_threads ? o->n_threads : rv_default_threads());
	}
	if (st != RV_OK)
		fprintf(stderr, "%srlaifv-infer: %s%s\n", st == RV_ERR_INTERRUPTED ? "\n" : "",
		        rv_context_error(s->ctx),
		        st == RV_ERR_CONTEXT ? " (-c sets the context size)" : "");
	rv_result_free(&res);
	return status_exit(st);
}

/* A standard descriptor the parent left closed would be taken by the
 * next open() (a model file would become "stdout"): give stdin and stderr
 * /dev/null, and refuse to run without a stdout, where the answer goes. */
static int check_std_fds(void)
{
	for (int fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
			continue;
		if (fd == STDOUT_FILENO) {
			fprintf(stderr,
			        "rlaifv-infer: standard output is closed: the answer would be "
			        "lost\n");
			return EXIT_RUNTIME;
		}
		stdin_was_closed |= fd == STDIN_FILENO;
		int n = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
		if (n != fd)
			return EXIT_RUNTIME;
	}
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	int code = check_std_fds();
	if (code != EXIT_OK)
		return code;
	cli_opts o;
	code = cli_parse_args(argc, argv, &o);
	if (code >= 0)
		return finish_stdout(code);
	rv_log_set(on_log, &o.verbose);
	hub_paths hub;
	if ((code = cli_hub(&o, &hub)) >= 0)
		return finish_stdout(code);
	cli_defaults defaults;
	if ((code = cli_use_defaults(&o, &defaults)) >= 0)
		return finish_stdout(code);

	char *stdin_prompt = NULL;
	if (o.prompt && !strcmp(o.prompt, "-")) {
		stdin_prompt = read_stdin();
		if (!stdin_prompt)
			return EXIT_RUNTIME;
		o.prompt = stdin_prompt;
	}
	if (o.tokenize || o.detokenize) {
		code = cli_run_tokens(&o);
		free(stdin_prompt);
		return code;
	}
	if (o.batch) {
		code = cli_run_batch(&o);
		free(stdin_prompt);
		return finish_stdout(code);
	}
	session s = {0};
	code = run(&o, &s);
	session_free(&s);
	free(stdin_prompt);
	return finish_stdout(code);
}
