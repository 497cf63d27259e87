/* cli_tokens.c: rlaifv-infer --tokenize / --detokenize: text to ids as a
 * JSON array on one line, and back, with only the model's vocabulary read
 * (so vocab-only GGUF files work). */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "programs/rlaifv-infer/cli.h"

/* Parses "[1, 2, 3]" (JSON integers, any white space) into *ids; returns
 * the count, or -1 after printing what is wrong. */
static int parse_ids(const char *s, int32_t **ids)
{
	const char *p = s;
	size_t n = 0, cap = 16;
	int32_t *v = malloc(cap * sizeof(*v));
	if (!v) {
		fprintf(stderr, "rlaifv-infer: out of memory\n");
		return -1;
	}
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	if (*p++ != '[')
		goto bad;
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
			p++;
		if (*p == ']' && n == 0) {
			p++;
			break;
		}
		if (!(*p == '-' || (*p >= '0' && *p <= '9')))
			goto bad;
		char *end;
		errno = 0;
		long x = strtol(p, &end, 10);
		if (errno || x < INT32_MIN || x > INT32_MAX)
			goto bad;
		if (n == cap) {
			int32_t *w =
			    n < (size_t)INT_MAX / 2 ? realloc(v, 2 * cap * sizeof(*v)) : NULL;
			if (!w)
				goto bad;
			v = w;
			cap *= 2;
		}
		v[n++] = (int32_t)x;
		p = end;
		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
			p++;
		if (*p == ',') {
			p++;
			continue;
		}
		if (*p++ != ']')
			goto bad;
		break;
	}
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	if (*p)
		goto bad;
	*ids = v;
	return (int)n;
bad:
	fprintf(stderr,
	        "rlaifv-infer: --detokenize: the prompt is not a JSON array of token ids "
	        "(near offset %zu)\n",
	        (size_t)(p - s));
	free(v);
	return -1;
}

int cli_run_tokens(const cli_opts *o)
{
	char err[1024];
	rv_model_params mp = rv_model_default_params();
	mp.vocab_only = 1;
	rv_model *m = NULL;
	if (rv_model_load(o->model, &mp, &m, err, sizeof(err)) != RV_OK) {
		fprintf(stderr, "rlaifv-infer: %s\n", err);
		return EXIT_MODEL;
	}
	int code = EXIT_OK;
	int32_t *ids = NULL;
	int n = 0;
	if (o->tokenize) {
		if (rv_model_tokenize(m, o->prompt, strlen(o->prompt), 0, !o->no_parse_special,
		                      &ids, &n, err, sizeof(err)) != RV_OK) {
			fprintf(stderr, "rlaifv-infer: %s\n", err);
			code = EXIT_RUNTIME;
		} else {
			putchar('[');
			for (int i = 0; i < n; i++)
				printf(i ? ", %d" : "%d", ids[i]);
			fputs("]\n", stdout);
		}
	} else {
		n = parse_ids(o->prompt, &ids);
		char *text = NULL;
		size_t len = 0;
		if (n < 0) {
			code = EXIT_USAGE;
		} else if (rv_model_detokenize(m, ids, n, &text, &len, err, sizeof(err)) != RV_OK) {
			fprintf(stderr, "rlaifv-infer: %s\n", err);
			code = EXIT_USAGE;
		} else {
			fwrite(text, 1, len, stdout);
			if (isatty(STDOUT_FILENO))
				fputc('\n', stdout); /* piped output stays exactly the text */
		}
		free(text);
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "rlaifv-infer: cannot write the output: %s\n", strerror(errno));
		code = EXIT_RUNTIME;
	}
	free(ids);
	rv_model_free(m);
	return code;
}
