/* cli_output.c: how rlaifv-infer reports a result besides the streamed
 * text: the --json object, the --show-candidates table and the --verbose
 * figures. */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <math.h>
#include <sys/resource.h>

#include "programs/rlaifv-infer/cli.h"

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
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

void cli_json_string(FILE *f, const char *s)
{
	json_string(f, s);
}

/* JSON has no infinities: a score of an empty answer is null. */
static void json_number(FILE *f, double v)
{
	if (isfinite(v))
		fprintf(f, "%.9g", v);
	else
		fputs("null", f);
}

static void json_ids(FILE *f, const int32_t *ids, int n)
{
	fputc('[', f);
	for (int i = 0; i < n; i++)
		fprintf(f, "%s%d", i ? "," : "", ids[i]);
	fputc(']', f);
}

static void json_numbers(FILE *f, const double *v, int n)
{
	fputc('[', f);
	for (int i = 0; i < n; i++) {
		if (i)
			fputc(',', f);
		json_number(f, v[i]);
	}
	fputc(']', f);
}

static const char *finish_name(rv_finish r)
{
	return r == RV_FINISH_EOS ? "eos" : r == RV_FINISH_LENGTH ? "length" : "stopped";
}

void cli_print_json(FILE *f, const rv_result *r)
{
	fputs("{\"text\":", f);
	json_string(f, r->text);
	fputs(",\"tokens\":", f);
	json_ids(f, r->tokens, r->n_tokens);
	fputs(",\"logprobs\":", f);
	json_numbers(f, r->logprobs, r->n_tokens);
	fprintf(f, ",\"prompt_tokens\":%d,\"finish_reason\":\"%s\",\"chosen\":%d,\"candidates\":[",
	        r->n_prompt_tokens, finish_name(r->finish_reason), r->chosen);
	for (int i = 0; i < r->n_candidates; i++) {
		const rv_candidate *c = &r->candidates[i];
		fputs(i ? ",{\"text\":" : "{\"text\":", f);
		json_string(f, c->text);
		fputs(",\"tokens\":", f);
		json_ids(f, c->tokens, c->n_tokens);
		fputs(",\"logprobs\":", f);
		json_numbers(f, c->logprobs, c->n_tokens);
		fputs(",\"score\":", f);
		json_number(f, c->score);
		if (c->ref_logprobs) {
			fputs(",\"ref_logprobs\":", f);
			json_numbers(f, c->ref_logprobs, c->n_tokens);
			fputs(",\"ref_score\":", f);
			json_number(f, c->ref_score);
		}
		fprintf(f, ",\"rank\":%d,\"finish_reason\":\"%s\"}", c->rank,
		        finish_name(c->finish_reason));
	}
	const rv_timings *t = &r->timings;
	fprintf(f,
	        "],\"timings\":{\"load_ms\":%.3f,\"image_encode_ms\":%.3f,\"prefill_ms\":%.3f,"
	        "\"prefill_tokens\":%d,\"decode_ms\":%.3f,\"decode_tokens\":%d,"
	        "\"scoring_ms\":%.3f}}\n",
	        t->load_ms, t->image_encode_ms, t->prefill_ms, t->prefill_tokens, t->decode_ms,
	        t->decode_tokens, t->scoring_ms);
}

void cli_print_candidates(FILE *f, const rv_result *r)
{
	for (int i = 0; i < r->n_candidates; i++) {
		const rv_candidate *c = &r->candidates[i];
		fprintf(f, "candidate %d: rank %d, score %.6f, %d tokens, %s%s\n", i, c->rank + 1,
		        c->score, c->n_tokens, finish_name(c->finish_reason),
		        i == r->chosen ? " (chosen)" : "");
		if (c->ref_logprobs)
			fprintf(f, "  reference log-prob %.6f\n", c->ref_score);
		/* every line indented, so the text of each candidate stands apart */
		fputs("  ", f);
		for (const char *p = c->text; *p; p++) {
			fputc(*p, f);
			if (*p == '\n')
				fputs("  ", f);
		}
		fputc('\n', f);
	}
}

static double per_second(int n, double ms)
{
	return ms > 0 ? n * 1000.0 / ms : 0.0;
}

void cli_print_verbose(FILE *f, const rv_result *r, int n_threads)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	const rv_timings *t = &r->timings;
	fprintf(f,
	        "rlaifv-infer: kernels %s, %d threads\n"
	        "rlaifv-infer: load %.1f ms\n"
	        "rlaifv-infer: image encode %.1f ms\n"
	        "rlaifv-infer: prefill %d tokens in %.1f ms (%.1f tokens/s)\n"
	        "rlaifv-infer: decode %d tokens of %d candidates in %.1f ms (%.1f tokens/s)\n"
	        "rlaifv-infer: scoring %.1f ms\n"
	        "rlaifv-infer: peak memory %.1f MiB\n",
	        rv_kernel_set(), n_threads, t->load_ms, t->image_encode_ms, t->prefill_tokens,
	        t->prefill_ms, per_second(t->prefill_tokens, t->prefill_ms), t->decode_tokens,
	        r->n_candidates, t->decode_ms, per_second(t->decode_tokens, t->decode_ms),
	        t->scoring_ms, (double)ru.ru_maxrss / 1024.0);
}
