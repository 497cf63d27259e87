/* tokenizers.c: rlaifv-bench --tokenizers: how fast each vocabulary turns
 * text into ids and back, in MB of text per second, on a generated mixed
 * text (English prose, code, numbers, whitespace runs, accented Latin,
 * Cyrillic, CJK, emoji) that is the same on every run. Reaches past the
 * public API to time the tokenizer alone. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "programs/rlaifv-bench/bench.h"
#include "src/gguf.h"
#include "src/tokenizer/tokenizer.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* size bytes of mixed text (NUL-terminated), from a fixed seed. */
static char *make_text(size_t size)
{
	static const char *const pieces[] = {
	    "The ",      "quick ",      "brown ",
	    "fox ",      "jumps ",      "over ",
	    "the ",      "lazy ",       "dog. ",
	    "It's ",     "we'll ",      "see, ",
	    "\n",        "\n\n",        "    ",
	    "\t",        "int x = 42;", "for (i = 0; i < n; i++) ",
	    "{ ",        "} ",          "2026-12-07 ",
	    "3.14159 ",  "1,000,000 ",  "café ",
	    "naïve ",    "Müller ",     "привет ",
	    "мир ",      "日本語",      "の",
	    "テキスト ", "中文 ",       "한국어 ",
	    "😀 ",        "👍🏽 ",   "e\xcc\x81 ",
	    "<html> ",   "</div> ",     "\"quoted\" ",
	    "(paren) ",  "x_y_z ",      "CamelCase ",
	};
	char *t = malloc(size + 1);
	if (!t)
		return NULL;
	uint64_t s = 0x9E3779B97F4A7C15ull;
	size_t o = 0;
	for (;;) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		const char *p = pieces[s % (sizeof(pieces) / sizeof(pieces[0]))];
		size_t l = strlen(p);
		if (o + l > size)
			break;
		memcpy(t + o, p, l);
		o += l;
	}
	t[o] = 0;
	return t;
}

int rvb_bench_tokenizers(const rvb_opts *o)
{
	const size_t size = o->quick ? (64u << 10) : (1u << 20);
	char *text = make_text(size);
	char *list = strdup(o->tokenizers);
	if (!text || !list) {
		fprintf(stderr, "rlaifv-bench: out of memory\n");
		free(text);
		free(list);
		return BENCH_EXIT_RUNTIME;
	}
	const size_t len = strlen(text);
	const int reps = o->reps > 0 ? o->reps : 3;
	int code = BENCH_EXIT_OK;
	printf("tokenizer speed on %.2f MB of mixed text, best of %d\n", (double)len / 1e6, reps);
	printf("%-28s %-18s %8s %9s %12s %12s\n", "vocabulary", "kind", "n_vocab", "load ms",
	       "encode MB/s", "decode MB/s");
	char *save = NULL;
	for (char *path = strtok_r(list, ",", &save); path; path = strtok_r(NULL, ",", &save)) {
		rvi_err err = {0};
		rvi_gguf *g = NULL;
		rvi_tokenizer *t = NULL;
		double t0 = now_s();
		int rc = rvi_gguf_open(&g, path, &err);
		if (rc == RV_OK)
			rc = rvi_tokenizer_load(&t, g, 0, &err);
		const double load_ms = (now_s() - t0) * 1e3;
		if (rc != RV_OK) {
			fprintf(stderr, "rlaifv-bench: %s\n", err.msg);
			rvi_gguf_close(g);
			code = BENCH_EXIT_MODEL;
			continue;
		}
		double enc = 1e30, dec = 1e30;
		size_t out_len = 0;
		for (int r = 0; r < reps && rc == RV_OK; r++) {
			int32_t *ids = NULL;
			int64_t n = 0;
			t0 = now_s();
			rc = rvi_tokenize(t, text, len, false, false, &ids, &n, &err);
			double e = now_s() - t0;
			if (rc != RV_OK)
				break;
			enc = e < enc ? e : enc;
			const size_t cap = rvi_tokenizer_max_piece(t);
			char *out = malloc((size_t)n * cap + 4);
			if (!out) {
				free(ids);
				rc = RV_ERR_NOMEM;
				break;
			}
			rvi_detok d;
			rvi_detok_init(&d, t);
			size_t w = 0;
			t0 = now_s();
			for (int64_t i = 0; i < n; i++)
				w += (size_t)rvi_detok_push(&d, ids[i], out + w, cap);
			w += (size_t)rvi_detok_flush(&d, out + w, cap);
			double dd = now_s() - t0;
			dec = dd < dec ? dd : dec;
			out_len = w;
			free(out);
			free(ids);
		}
		const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
		if (rc != RV_OK) {
			fprintf(stderr, "rlaifv-bench: %s: %s\n", name, err.msg);
			code = BENCH_EXIT_RUNTIME;
		} else {
			printf("%-28.28s %-18.18s %8lld %9.1f %12.1f %12.1f\n", name,
			       rvi_tokenizer_kind(t), (long long)rvi_tokenizer_n_vocab(t), load_ms,
			       (double)len / 1e6 / enc, (double)out_len / 1e6 / dec);
		}
		rvi_tokenizer_free(t);
		rvi_gguf_close(g);
	}
	free(list);
	free(text);
	return fflush(stdout) == 0 ? code : BENCH_EXIT_RUNTIME;
}
