/* test_c_api.c: the public API as a C program sees it. This file includes
 * nothing of rlaifv but <rlaifv.h>, is linked against the shared
 * librlaifv.la (never the internal library the other tests use) and calls
 * every function the header declares, so a function missing from the
 * export list, a header that needs an internal one, or a declaration
 * that does not match its definition fails here first (the idea of
 * whisper.cpp's test-c.c). tests/exports.test checks the other direction:
 * that nothing but these functions is exported. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rlaifv.h>

#include "public_check.h"

static int n_text_calls, n_progress_calls, n_stop_polls;

static int on_text(const char *piece, size_t len, void *user)
{
	(void)piece;
	(void)user;
	n_text_calls += len > 0;
	return 0;
}

static void on_progress(int done, int n, int tokens, double ms, void *user)
{
	(void)done, (void)n, (void)tokens, (void)ms, (void)user;
	n_progress_calls++;
}

static int stop_after_two(void *user)
{
	(void)user;
	return ++n_stop_polls > 2;
}

static void test_library_info(void)
{
	CHECK(strcmp(rv_status_str(RV_OK), "") != 0, "no name for RV_OK");
	for (int s = RV_ERR_BUSY; s <= RV_ERR_INVALID_ARG; s++)
		CHECK(rv_status_str((rv_status)s) && *rv_status_str((rv_status)s), "status %d", s);
	CHECK(rv_version() && strchr(rv_version(), '.'), "version '%s'", rv_version());
	CHECK(rv_blas_info() && *rv_blas_info(), "no BLAS name");
	CHECK(rv_default_threads() >= 1, "%d default threads", rv_default_threads());

	char err[256] = "";
	CHECK(rv_select_kernels("no-such-isa", err, sizeof err) == RV_ERR_INVALID_ARG, "bad ISA");
	CHECK(err[0] != '\0', "no message for a bad ISA");
	CHECK(rv_select_kernels("scalar", err, sizeof err) == RV_OK, "%s", err);
	CHECK(strcmp(rv_kernel_set(), "scalar") == 0, "kernels '%s'", rv_kernel_set());
	CHECK(rv_select_kernels(NULL, err, sizeof err) == RV_OK, "%s", err);
	CHECK(rv_kernel_set() && *rv_kernel_set(), "no kernel set");
	rv_log_set(NULL, NULL); /* test_api_misuse.c sees what reaches a callback */
}

static void test_text(void)
{
	char err[512] = "";
	rv_model *model = (rv_model *)1;
	rv_model_params mp = rv_model_default_params();
	mp.n_threads = 2;
	CHECK(rv_model_load(data("no-such-file.gguf"), &mp, &model, err, sizeof err) == RV_ERR_IO,
	      "%s", err);
	CHECK(model == NULL && strstr(err, "no-such-file.gguf"), "err '%s'", err);

	CHECK(rv_model_load(data("stories260K.gguf"), &mp, &model, err, sizeof err) == RV_OK, "%s",
	      err);
	if (!model)
		return;
	CHECK(rv_model_n_vocab(model) == 512, "%d", rv_model_n_vocab(model));
	CHECK(rv_model_n_ctx_train(model) == 128, "%d", rv_model_n_ctx_train(model));
	CHECK(rv_model_load_ms(model) >= 0, "%f", rv_model_load_ms(model));
	CHECK(!rv_model_has_vision(model), "a text model has vision");
	CHECK(rv_model_check_tensors(model, err, sizeof err) == RV_OK, "%s", err);

	rv_context *ctx = NULL;
	rv_context_params cp = rv_context_default_params();
	cp.no_cache = 1;
	CHECK(rv_context_new(model, &cp, &ctx, err, sizeof err) == RV_OK, "%s", err);
	if (ctx) {
		CHECK(rv_context_n_ctx(ctx) == 128, "%d", rv_context_n_ctx(ctx));
		CHECK(strcmp(rv_context_error(ctx), "") == 0, "'%s'", rv_context_error(ctx));

		int32_t *tokens = NULL;
		int n = 0;
		CHECK(rv_tokenize(ctx, "Once upon a time", -1, &tokens, &n) == RV_OK, "%s",
		      rv_context_error(ctx));
		CHECK(n == 5 && tokens && tokens[0] == 1, "%d tokens", n);
		free(tokens);

		/* Greedy: the reference story, streamed through on_text. */
		rv_gen_params gp = rv_gen_default_params();
		gp.temp = 0;
		gp.n_candidates = 1;
		gp.n_predict = 16;
		gp.on_text = on_text;
		rv_result res;
		CHECK(rv_generate(ctx, "Once upon a time", &gp, &res) == RV_OK, "%s",
		      rv_context_error(ctx));
		CHECK(strncmp(res.text, ", there was a little girl named Lily", 36) == 0, "'%s'",
		      res.text);
		CHECK(res.n_tokens == 16 && res.finish_reason == RV_FINISH_LENGTH, "%d tokens",
		      res.n_tokens);
		CHECK(n_text_calls > 0, "on_text never called");
		rv_result_free(&res);

		/* Best-of-4: candidate i is what one candidate seeded with
		 * rv_candidate_seed(seed, i) makes. */
		gp = rv_gen_default_params();
		gp.n_candidates = 4;
		gp.n_predict = 12;
		gp.seed = 7;
		gp.on_progress = on_progress;
		CHECK(rv_generate(ctx, "Lily", &gp, &res) == RV_OK, "%s", rv_context_error(ctx));
		CHECK(res.n_candidates == 4 && res.chosen >= 0 && res.chosen < 4, "%d candidates",
		      res.n_candidates);
		CHECK(n_progress_calls > 0, "on_progress never called");
		int chosen = res.chosen;
		rv_result one;
		gp.n_candidates = 1;
		gp.seed = rv_candidate_seed(7, chosen);
		gp.on_progress = NULL;
		CHECK(rv_generate(ctx, "Lily", &gp, &one) == RV_OK, "%s", rv_context_error(ctx));
		CHECK(res.n_candidates == 4 && strcmp(one.text, res.candidates[chosen].text) == 0,
		      "candidate %d alone: '%s'", chosen, one.text);
		rv_result_free(&one);
		rv_result_free(&res);

		/* should_stop: interrupted, with what was made so far. */
		gp = rv_gen_default_params();
		gp.n_candidates = 1;
		gp.n_predict = 32;
		gp.should_stop = stop_after_two;
		CHECK(rv_generate(ctx, "Lily", &gp, &res) == RV_ERR_INTERRUPTED, "not interrupted");
		CHECK(res.finish_reason == RV_FINISH_STOPPED, "finish %d", (int)res.finish_reason);
		rv_result_free(&res);

		/* An image without a projector is refused, with a message. */
		const char *image = data("shapes_64x48.png");
		rv_prompt p = {.text = "describe", .images = &image, .n_images = 1};
		CHECK(rv_generate_prompt(ctx, &p, &gp, &res) == RV_ERR_INVALID_ARG,
		      "image accepted");
		CHECK(*rv_context_error(ctx), "no message");
		rv_context_free(ctx);
	}
	rv_model_free(model);
}

static void test_image(void)
{
	char err[512] = "";
	rv_model *model = NULL;
	rv_model_params mp = rv_model_default_params();
	CHECK(rv_model_load(data("tiny-llava-text-f32.gguf"), &mp, &model, err, sizeof err) ==
	          RV_OK,
	      "%s", err);
	if (!model)
		return;
	CHECK(rv_model_load_mmproj(model, data("tiny-llava-mmproj-f32.gguf"), err, sizeof err) ==
	          RV_OK,
	      "%s", err);
	CHECK(rv_model_has_vision(model), "no vision after the mmproj");
	CHECK(rv_model_check_tensors(model, err, sizeof err) == RV_OK, "%s", err);

	rv_context *ctx = NULL;
	rv_context_params cp = rv_context_default_params();
	cp.no_cache = 1;
	CHECK(rv_context_new(model, &cp, &ctx, err, sizeof err) == RV_OK, "%s", err);
	if (ctx) {
		const char *image = data("shapes_64x48.png");
		rv_prompt p = {.text = "describe", .images = &image, .n_images = 1};
		rv_gen_params gp = rv_gen_default_params();
		gp.n_candidates = 2;
		gp.n_predict = 4;
		rv_result res;
		CHECK(rv_generate_prompt(ctx, &p, &gp, &res) == RV_OK, "%s", rv_context_error(ctx));
		CHECK(res.n_prompt_tokens > 1 && res.n_candidates == 2, "%d prompt tokens",
		      res.n_prompt_tokens);
		CHECK(res.timings.image_encode_ms > 0, "no image encoded");
		rv_result_free(&res);

		const char *missing = data("no-such-image.png");
		p.images = &missing;
		CHECK(rv_generate_prompt(ctx, &p, &gp, &res) == RV_ERR_IMAGE, "missing image");
		rv_context_free(ctx);
	}
	rv_model_free(model);
}

/* A vocab-only file: tokenize and detokenize without a context; a context
 * or a projector is refused. */
static void test_vocab_only(void)
{
	char err[512];
	rv_model_params mp = rv_model_default_params();
	mp.vocab_only = 1;
	rv_model *model = NULL;
	CHECK(rv_model_load(data("tokenizers/mini-qwen2/vocab.gguf"), &mp, &model, err,
	                    sizeof err) == RV_OK,
	      "%s", err);
	if (!model)
		return;
	CHECK(rv_model_n_vocab(model) == 963, "%d", rv_model_n_vocab(model));
	const char text[] = "Hello world<|im_end|>";
	int32_t *ids = NULL;
	int n = 0;
	CHECK(rv_model_tokenize(model, text, strlen(text), 0, 1, &ids, &n, err, sizeof err) ==
	              RV_OK &&
	          n == 7 && ids[0] == 39 && ids[6] == 958,
	      "tokenize: %d ids: %s", n, err);
	char *back = NULL;
	size_t len = 0;
	CHECK(rv_model_detokenize(model, ids, n - 1, &back, &len, err, sizeof err) == RV_OK &&
	          len == 11 && !strcmp(back, "Hello world"),
	      "detokenize: '%s' %s", back ? back : "", err);
	free(back);
	free(ids);
	CHECK(rv_model_tokenize(model, text, strlen(text), 0, 0, &ids, &n, err, sizeof err) ==
	              RV_OK &&
	          n > 7 && ids[n - 1] != 958,
	      "tokenize without parsing: %d ids", n);
	free(ids);
	const int32_t bad_ids[] = {1, 963};
	back = NULL;
	CHECK(rv_model_detokenize(model, bad_ids, 2, &back, &len, err, sizeof err) ==
	              RV_ERR_INVALID_ARG &&
	          back == NULL && strstr(err, "963"),
	      "id out of range: %s", err);
	rv_context *ctx = NULL;
	rv_context_params cp = rv_context_default_params();
	CHECK(rv_context_new(model, &cp, &ctx, err, sizeof err) == RV_ERR_INVALID_ARG && !ctx &&
	          strstr(err, "vocab_only"),
	      "context of a vocab-only model: %s", err);
	CHECK(rv_model_load_mmproj(model, data("tiny-llava-mmproj-f32.gguf"), err, sizeof err) ==
	          RV_ERR_INVALID_ARG,
	      "projector on a vocab-only model: %s", err);
	rv_model_free(model);
}

int main(void)
{
	set_data_dir();
	test_library_info();
	test_text();
	test_image();
	test_vocab_only();
	printf("test_c_api: %d checks, %d failed\n", checks, fails);
	return fails != 0;
}
