/* cli_pairs.c: rlaifv-infer --batch --pairs PAIRS.jsonl: per task, the
 * best- and the worst-ranked of its finished candidates as a preference
 * pair in the field layout of the public RLAIF-V dataset (image, question,
 * chosen, rejected), with the scores and the reward that ranked them, one
 * JSON line each, for a DPO trainer. */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <math.h>
#include <string.h>

#include "programs/rlaifv-infer/cli.h"

/* Finished: ended by the end-of-sequence token. A candidate cut by -n is
 * not an answer a trainer should learn to prefer or avoid. */
static int finished(const rv_candidate *c)
{
	return c->finish_reason == RV_FINISH_EOS && isfinite(c->score);
}

/* ,"key":"text" and ,"key":number (finite: as the --json scores print) */
static void text_member(FILE *f, const char *key, const char *text)
{
	fprintf(f, ",\"%s\":", key);
	cli_json_string(f, text);
}

static void number_member(FILE *f, const char *key, double v)
{
	fprintf(f, ",\"%s\":%.9g", key, v);
}

int cli_write_pair(FILE *f, const cli_opts *o, const char *id, const char *const *images,
                   int n_images, const char *question, const rv_result *r)
{
	const rv_candidate *best = NULL, *worst = NULL;
	for (int i = 0; i < r->n_candidates; i++) {
		const rv_candidate *c = &r->candidates[i];
		if (finished(c) && (!best || c->rank < best->rank))
			best = c;
	}
	/* the worst-ranked finished one whose text differs from the best's */
	for (int i = 0; best && i < r->n_candidates; i++) {
		const rv_candidate *c = &r->candidates[i];
		if (finished(c) && strcmp(c->text, best->text) && (!worst || c->rank > worst->rank))
			worst = c;
	}
	if (!worst)
		return 0;
	const char *model = o->model ? strrchr(o->model, '/') : NULL;
	model = model ? model + 1 : o->model ? o->model : o->hf;
	fprintf(f, "{\"id\":%s,\"image\":", id);
	if (n_images == 0) {
		fputs("null", f);
	} else if (n_images == 1) {
		cli_json_string(f, images[0]);
	} else {
		for (int i = 0; i < n_images; i++) {
			fputc(i ? ',' : '[', f);
			cli_json_string(f, images[i]);
		}
		fputc(']', f);
	}
	text_member(f, "question", question);
	text_member(f, "chosen", best->text);
	text_member(f, "rejected", worst->text);
	number_member(f, "chosen_score", best->score);
	number_member(f, "rejected_score", worst->score);
	text_member(f, "model", model);
	if (o->ref_model) {
		text_member(f, "reward",
		            o->score == RV_SCORE_SUM ? "rlaifv-logratio-sum" : "rlaifv-logratio");
		number_member(f, "beta", o->beta);
	} else {
		text_member(f, "reward", o->score == RV_SCORE_SUM ? "sum-logprob" : "mean-logprob");
	}
	fputs("}\n", f);
	return 1;
}
