/* describe.c: the smallest complete program on librlaifv. It loads a model
 * (and, given one, a vision projector and an image), samples best-of-4
 * answers from one shared prompt, and prints the chosen answer and every
 * candidate's score. It includes nothing of rlaifv but <rlaifv.h>:
 *
 *     cc describe.c $(pkg-config --cflags --libs rlaifv) -o describe
 *     ./describe model.gguf "Once upon a time"
 *     ./describe model.gguf mmproj.gguf photo.jpg "Describe the image."
 */
#include <stdio.h>

#include <rlaifv.h>

int main(int argc, char **argv)
{
	if (argc != 3 && argc != 5) {
		fprintf(stderr, "usage: %s MODEL.gguf [MMPROJ.gguf IMAGE] PROMPT\n", argv[0]);
		return 2;
	}
	char err[512];
	rv_model *model;
	rv_model_params mp = rv_model_default_params();
	if (rv_model_load(argv[1], &mp, &model, err, sizeof err) != RV_OK ||
	    (argc == 5 && rv_model_load_mmproj(model, argv[2], err, sizeof err) != RV_OK)) {
		fprintf(stderr, "%s\n", err);
		rv_model_free(model);
		return 1;
	}
	rv_context *ctx;
	rv_context_params cp = rv_context_default_params();
	if (rv_context_new(model, &cp, &ctx, err, sizeof err) != RV_OK) {
		fprintf(stderr, "%s\n", err);
		rv_model_free(model);
		return 1;
	}

	/* With an image, the LLaVA chat template is applied; without one, the
	 * prompt is completed as raw text. */
	const char *image = argc == 5 ? argv[3] : NULL;
	rv_prompt prompt = {.text = argv[argc - 1], .images = &image, .n_images = image != NULL};
	rv_gen_params gp = rv_gen_default_params();
	gp.n_candidates = 4; /* sampled together, scored by the model itself */
	gp.temp = 0.8f;
	gp.n_predict = 48;
	gp.seed = 42;

	rv_result res;
	int status = 0;
	if (rv_generate_prompt(ctx, &prompt, &gp, &res) != RV_OK) {
		fprintf(stderr, "%s\n", rv_context_error(ctx));
		status = 1;
	} else {
		printf("%s\n\n", res.text);
		for (int i = 0; i < res.n_candidates; i++)
			printf("candidate %d: score %8.4f, %3d tokens%s\n", i, res.candidates[i].score,
			       res.candidates[i].n_tokens, i == res.chosen ? "  <- chosen" : "");
		rv_result_free(&res);
	}
	rv_context_free(ctx);
	rv_model_free(model);
	return status;
}
