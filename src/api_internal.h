/* api_internal.h: what rv_model and rv_context hold. Shared by api.c and
 * the tests that reach past the public API; not installed. */
#ifndef RLAIFV_API_INTERNAL_H
#define RLAIFV_API_INTERNAL_H

#include "models/clip.h"
#include "src/gguf.h"
#include "src/image/image.h"
#include "src/sha256.h"
#include "models/llama.h"
#include "src/tokenizer/tokenizer.h"
#include "src/util.h"

struct rv_model {
	rvi_gguf *gguf; /* the mapping every weight points into */
	rvi_llama llama;
	rvi_tokenizer *tok;
	int n_threads;
	double load_ms;
	bool vocab_only; /* only tok is loaded (rv_model_params.vocab_only) */

	rvi_gguf *mm_gguf; /* the mmproj, when the model sees images */
	rvi_clip clip;
	uint8_t mm_id[RVI_SHA256_BYTES]; /* identifies the mmproj in the cache */
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
};

#endif
