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

static void number(FILE *f, double v)
{
	fprintf(f, "%.9g", v);
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
	fputs(",\"question\":", f);
	cli_json_string(f, question);
	fputs(",\"chosen\":", f);
	cli_json_string(f, best->text);
	fputs(",\"rejected\":", f);
	cli_json_string(f, worst->text);
	fputs(",\"chosen_score\":", f);
	number(f, best->score);
	fputs(",\"rejected_score\":", f);
	number(f, worst->score);
	fputs(",\"model\":", f);
	cli_json_string(f, model);
	fputs(",\"reward\":", f);
	if (o->ref_model) {
		cli_json_string(f, o->score == RV_SCORE_SUM ? "rlaifv-logratio-sum"
		                                            : "rlaifv-logratio");
		fputs(",\"beta\":", f);
		number(f, o->beta);
	} else {
		cli_json_string(f, o->score == RV_SCORE_SUM ? "sum-logprob" : "mean-logprob");
	}
	fputs("}\n", f);
	return 1;
}
