/* api_internal.h: what rv_model and rv_context hold. Shared by api.c and
 * the tests that reach past the public API; not installed. */
#ifndef RLAIFV_API_INTERNAL_H
#define RLAIFV_API_INTERNAL_H

#include <stdatomic.h>

#include "models/clip.h"
#include "src/gguf.h"
#include "src/image/image.h"
#include "src/sha256.h"
#include "models/llama.h"
#include "src/tokenizer/tokenizer.h"
#include "src/util.h"
#include "src/vision.h"

struct rv_model {
	rvi_gguf *gguf; /* the mapping every weight points into */
	rvi_llama llama;
	rvi_tokenizer *tok;
	int n_threads;
	double load_ms;

	rvi_gguf *mm_gguf; /* the mmproj, when the model sees images */
	rvi_clip clip;
	rvi_mmproj_id *mm_id; /* identifies the mmproj in the cache, once known */
};

struct rv_context {
	rv_model *model;
	rvi_llama_state st;
	float *logits; /* (n_vocab) of the last position */
	int n_threads;
	bool apply_exif;
	rvi_image_limits image_limits;
	char *cache_dir; /* NULL: no cache */
	rvi_err err;
	atomic_bool busy;  /* a call is running on this context (see rv_context_acquire) */
	bool cache_warned; /* the cache's trouble was logged once already */
};

#endif
