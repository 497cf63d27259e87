/* api_internal.h: what rv_model and rv_context hold. Shared by the parts of
 * the public API (api.c, prompt.c, bestofn.c) and the tests that reach past
 * it; not installed. A model is a text family and optionally a vision
 * family (models/arch.h), each an opaque object behind its table: nothing
 * here knows which families they are. */
#ifndef RLAIFV_API_INTERNAL_H
#define RLAIFV_API_INTERNAL_H

#include <stdatomic.h>

#include "models/arch.h"
#include "src/gguf.h"
#include "src/image/image.h"
#include "src/sha256.h"
#include "src/tokenizer/tokenizer.h"
#include "src/util.h"
#include "src/vision.h"

struct rv_model {
	rvi_gguf *gguf; /* the mapping every weight points into */
	const rvi_text_arch *text;
	void *text_model;
	rvi_text_info info;
	rvi_tokenizer *tok;
	int n_threads;
	double load_ms;
	bool vocab_only; /* only tok is loaded (rv_model_params.vocab_only) */

	rvi_gguf *mm_gguf; /* the mmproj, when the model sees images */
	const rvi_vision_arch *vision;
	void *vision_model;
	rvi_mmproj_id *mm_id;   /* identifies the mmproj in the cache, once known */
	int image_longest_edge; /* 0: the mmproj's (rv_model_set_image_longest_edge) */
	int image_max_slices;   /* 0: the family's (rv_model_set_image_max_slices) */

	rvi_pan_and_scan pan_and_scan; /* .on false: off (rv_model_set_pan_and_scan) */
};

struct rv_context {
	rv_model *model;
	void *state;      /* the text family's working memory */
	rvi_kvcache *kv;  /* its cache */
	int64_t pos_next; /* position of the next prefix item */
	float *logits;    /* (n_vocab) of the last position */
	int n_threads;
	bool apply_exif;
	rvi_image_limits image_limits;
	char *cache_dir; /* NULL: no cache */
	rvi_err err;
	atomic_bool busy;  /* a call is running on this context (see rv_context_acquire) */
	bool cache_warned; /* the cache's trouble was logged once already */
};

/* rv_model_load_mmproj choosing the vision family from reg (the built-in
 * registry, or a test's own). */
int rvi_model_load_mmproj(rv_model *m, const char *path, const rvi_vision_registry *reg,
                          rvi_err *err);

/* Runs a batch through ctx's model (see rvi_text_arch.decode). */
static inline int rvi_context_decode(rv_context *ctx, const rvi_batch *b, float *logits,
                                     bool all_logits)
{
	return ctx->model->text->decode(ctx->model->text_model, ctx->state, b, logits, all_logits,
	                                &ctx->err);
}

#endif
