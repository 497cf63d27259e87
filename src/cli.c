/* cli.c: rlaifv-infer, a thin command line over the public API. Parses
 * flags, streams the answer to stdout (or prints one JSON object), puts
 * every diagnostic on stderr, and maps failures to documented exit codes. */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "rlaifv.h"

enum exit_code {
	EXIT_OK = 0,
	EXIT_RUNTIME = 1,
	EXIT_USAGE = 2,
	EXIT_MODEL = 3,
	EXIT_IMAGE = 4,
	EXIT_INTERRUPTED = 130,
};

typedef struct cli_opts {
	const char *model;
	const char *prompt;
	int n_predict;
	int n_ctx;
	int n_threads;
	float temp;
	int top_k;
	float top_p;
	float min_p;
	uint64_t seed;
	int ignore_eos;
	int verbose;
	int json;
} cli_opts;

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

static void usage(FILE *f)
{
	fputs("Usage: rlaifv-infer [options] -m MODEL.gguf -p PROMPT\n"
	      "       rlaifv-infer [options] -m MODEL.gguf PROMPT\n"
	      "Generate text with a LLaMA-architecture GGUF model on the CPU.\n"
	      "\n"
	      "  -m, --model FILE     model GGUF file (default: $RLAIFV_MODEL)\n"
	      "  -p, --prompt TEXT    prompt; '-' reads it from standard input\n"
	      "  -n, --n-predict N    most tokens to generate (default -1: until end or full "
	      "context)\n"
	      "  -c, --ctx-size N     context size in tokens (default: the model's, at most 4096)\n"
	      "  -t, --threads N      threads (default: $RLAIFV_THREADS or the physical cores)\n"
	      "      --temp T         sampling temperature, 0 = greedy (default 0.8)\n"
	      "      --top-k N        keep the N most likely tokens, 0 = off (default 40)\n"
	      "      --top-p P        keep the smallest set with probability >= P, 1 = off "
	      "(default 0.95)\n"
	      "      --min-p P        drop tokens below P x the top probability, 0 = off (default "
	      "0.05)\n"
	      "      --seed N         random seed (default 0)\n"
	      "      --ignore-eos     keep generating past the end-of-sequence token\n"
	      "      --json           print one JSON object with text, tokens, log-probs and "
	      "timings\n"
	      "      --verbose        print load time, speeds and peak memory on stderr\n"
	      "  -h, --help           show this help\n"
	      "      --version        show version, kernel set and BLAS\n"
	      "\n"
	      "Exit status: 0 ok, 1 runtime error, 2 usage error, 3 model load failed,\n"
	      "4 image load failed, 130 interrupted.\n",
	      f);
}

static int parse_int(const char *flag, const char *s, long lo, long hi, int *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "rlaifv-infer: %s: '%s' is not an integer in [%ld, %ld]\n", flag, s,
		        lo, hi);
		return -1;
	}
	*out = (int)v;
	return 0;
}

static int parse_float(const char *flag, const char *s, float lo, float hi, float *out)
{
	char *end;
	errno = 0;
	float v = strtof(s, &end);
	if (errno || end == s || *end || !(v >= lo && v <= hi)) {
		fprintf(stderr, "rlaifv-infer: %s: '%s' is not a number in [%g, %g]\n", flag, s,
		        (double)lo, (double)hi);
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_u64(const char *flag, const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-') {
		fprintf(stderr, "rlaifv-infer: %s: '%s' is not a non-negative integer\n", flag, s);
		return -1;
	}
	*out = v;
	return 0;
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

enum long_only {
	OPT_TEMP = 256,
	OPT_TOP_K,
	OPT_TOP_P,
	OPT_MIN_P,
	OPT_SEED,
	OPT_IGNORE_EOS,
	OPT_JSON,
	OPT_VERBOSE,
	OPT_VERSION,
};

static const struct option long_options[] = {
    {"model", required_argument, 0, 'm'},           {"prompt", required_argument, 0, 'p'},
    {"n-predict", required_argument, 0, 'n'},       {"ctx-size", required_argument, 0, 'c'},
    {"threads", required_argument, 0, 't'},         {"temp", required_argument, 0, OPT_TEMP},
    {"top-k", required_argument, 0, OPT_TOP_K},     {"top-p", required_argument, 0, OPT_TOP_P},
    {"min-p", required_argument, 0, OPT_MIN_P},     {"seed", required_argument, 0, OPT_SEED},
    {"ignore-eos", no_argument, 0, OPT_IGNORE_EOS}, {"json", no_argument, 0, OPT_JSON},
    {"verbose", no_argument, 0, OPT_VERBOSE},       {"help", no_argument, 0, 'h'},
    {"version", no_argument, 0, OPT_VERSION},       {0, 0, 0, 0},
};

/* Returns -1 to go on, else the exit code to leave with. */
static int parse_args(int argc, char **argv, cli_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->n_predict = -1;
	o->temp = 0.8f;
	o->top_k = 40;
	o->top_p = 0.95f;
	o->min_p = 0.05f;
	o->model = getenv("RLAIFV_MODEL");
	int c, bad = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":m:p:n:c:t:h", long_options, NULL)) != -1) {
		switch (c) {
		case 'm':
			o->model = optarg;
			break;
		case 'p':
			o->prompt = optarg;
			break;
		case 'n':
			bad |= parse_int("-n", optarg, -1, 1 << 24, &o->n_predict);
			break;
		case 'c':
			bad |= parse_int("-c", optarg, 0, 1 << 24, &o->n_ctx);
			break;
		case 't':
			bad |= parse_int("-t", optarg, 1, 1024, &o->n_threads);
			break;
		case OPT_TEMP:
			bad |= parse_float("--temp", optarg, 0, 100, &o->temp);
			break;
		case OPT_TOP_K:
			bad |= parse_int("--top-k", optarg, 0, 1 << 24, &o->top_k);
			break;
		case OPT_TOP_P:
			bad |= parse_float("--top-p", optarg, 0, 1, &o->top_p);
			break;
		case OPT_MIN_P:
			bad |= parse_float("--min-p", optarg, 0, 1, &o->min_p);
			break;
		case OPT_SEED:
			bad |= parse_u64("--seed", optarg, &o->seed);
			break;
		case OPT_IGNORE_EOS:
			o->ignore_eos = 1;
			break;
		case OPT_JSON:
			o->json = 1;
			break;
		case OPT_VERBOSE:
			o->verbose = 1;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case OPT_VERSION:
			printf("rlaifv-infer %s\nkernels: %s\nBLAS: %s\n", rv_version(),
			       rv_kernel_set(), rv_blas_info());
			return EXIT_OK;
		case ':':
			fprintf(stderr, "rlaifv-infer: option %s needs a value\n",
			        argv[optind - 1]);
			return EXIT_USAGE;
		default:
			fprintf(stderr, "rlaifv-infer: unknown option '%s' (see --help)\n",
			        argv[optind - 1]);
			return EXIT_USAGE;
		}
		if (bad)
			return EXIT_USAGE;
	}
	int n_pos = argc - optind;
	if (n_pos == 1 && !o->prompt) {
		o->prompt = argv[optind];
	} else if (n_pos > 0) {
		fprintf(stderr, "rlaifv-infer: unexpected argument '%s' (see --help)\n",
		        argv[optind + (o->prompt ? 0 : 1)]);
		return EXIT_USAGE;
	}
	if (!o->model || !*o->model) {
		fprintf(stderr, "rlaifv-infer: no model: give -m MODEL.gguf or set RLAIFV_MODEL\n");
		return EXIT_USAGE;
	}
	if (!o->prompt) {
		fprintf(stderr, "rlaifv-infer: no prompt: give -p TEXT (see --help)\n");
		return EXIT_USAGE;
	}
	return -1;
}

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		default:
			if (*p < 0x20)
				fprintf(f, "\\u%04x", *p);
			else
				fputc(*p, f);
		}
	}
	fputc('"', f);
}

static void print_json(FILE *f, const rv_result *r)
{
	fputs("{\"text\":", f);
	json_string(f, r->text ? r->text : "");
	fputs(",\"tokens\":[", f);
	for (int i = 0; i < r->n_tokens; i++)
		fprintf(f, "%s%d", i ? "," : "", r->tokens[i]);
	fputs("],\"logprobs\":[", f);
	for (int i = 0; i < r->n_tokens; i++)
		fprintf(f, "%s%.9g", i ? "," : "", r->logprobs[i]);
	static const char *const reasons[] = {"eos", "length", "stopped"};
	fprintf(f, "],\"prompt_tokens\":%d,\"finish_reason\":\"%s\"", r->n_prompt_tokens,
	        reasons[r->finish_reason]);
	fprintf(f,
	        ",\"timings\":{\"load_ms\":%.3f,\"prefill_ms\":%.3f,\"prefill_tokens\":%d,"
	        "\"decode_ms\":%.3f,\"decode_tokens\":%d}}\n",
	        r->timings.load_ms, r->timings.prefill_ms, r->timings.prefill_tokens,
	        r->timings.decode_ms, r->timings.decode_tokens);
}

static double per_second(int n, double ms)
{
	return ms > 0 ? n * 1000.0 / ms : 0.0;
}

static void print_verbose(const rv_result *r, int n_threads)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	fprintf(stderr,
	        "rlaifv-infer: kernels %s, %d threads\n"
	        "rlaifv-infer: load %.1f ms\n"
	        "rlaifv-infer: prefill %d tokens in %.1f ms (%.1f tokens/s)\n"
	        "rlaifv-infer: decode %d tokens in %.1f ms (%.1f tokens/s)\n"
	        "rlaifv-infer: peak memory %.1f MiB\n",
	        rv_kernel_set(), n_threads, r->timings.load_ms, r->timings.prefill_tokens,
	        r->timings.prefill_ms, per_second(r->timings.prefill_tokens, r->timings.prefill_ms),
	        r->timings.decode_tokens, r->timings.decode_ms,
	        per_second(r->timings.decode_tokens, r->timings.decode_ms),
	        (double)ru.ru_maxrss / 1024.0);
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
	default:
		return EXIT_RUNTIME;
	}
}

int main(int argc, char **argv)
{
	cli_opts o;
	int code = parse_args(argc, argv, &o);
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

	char err[1024];
	rv_model_params mp = rv_model_default_params();
	mp.n_threads = o.n_threads;
	rv_model *model = NULL;
	rv_status st = rv_model_load(o.model, &mp, &model, err, sizeof(err));
	if (st != RV_OK) {
		fprintf(stderr, "rlaifv-infer: %s\n", err);
		free(stdin_prompt);
		return EXIT_MODEL;
	}
	rv_context_params cp = rv_context_default_params();
	cp.n_ctx = o.n_ctx;
	cp.n_threads = o.n_threads;
	rv_context *ctx = NULL;
	st = rv_context_new(model, &cp, &ctx, err, sizeof(err));
	if (st != RV_OK) {
		fprintf(stderr, "rlaifv-infer: %s\n", err);
		rv_model_free(model);
		free(stdin_prompt);
		return EXIT_RUNTIME;
	}

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigint;
	sigaction(SIGINT, &sa, NULL);

	rv_gen_params gp = rv_gen_default_params();
	gp.n_predict = o.n_predict;
	gp.temp = o.temp;
	gp.top_k = o.top_k;
	gp.top_p = o.top_p;
	gp.min_p = o.min_p;
	gp.seed = o.seed;
	gp.ignore_eos = o.ignore_eos;
	gp.should_stop = should_stop;
	if (!o.json)
		gp.on_text = stream_text;

	rv_result res;
	st = rv_generate(ctx, o.prompt, &gp, &res);
	code = status_exit(st);
	if (st == RV_OK || st == RV_ERR_INTERRUPTED) {
		if (o.json)
			print_json(stdout, &res);
		else if (st == RV_OK && isatty(STDOUT_FILENO))
			fputc('\n', stdout); /* piped output stays exactly the text */
		fflush(stdout);
		if (o.verbose)
			print_verbose(&res, o.n_threads ? o.n_threads : rv_default_threads());
	}
	if (st != RV_OK)
		fprintf(stderr, "%srlaifv-infer: %s\n", st == RV_ERR_INTERRUPTED ? "\n" : "",
		        rv_context_error(ctx));
	rv_result_free(&res);
	rv_context_free(ctx);
	rv_model_free(model);
	free(stdin_prompt);
	return code;
}
