/* prompt.h: a prompt made ready for a model: its chat template applied,
 * text segments tokenized, images encoded, and everything counted against
 * the context before any compute; then prefilled into a context's cache.
 * The same rv_prompt is made ready once for the model and once for a
 * reference model, which can share the image embeddings. */
#ifndef RLAIFV_PROMPT_H
#define RLAIFV_PROMPT_H

#include <stdbool.h>
#include <stdint.h>

#include "src/api_internal.h"
#include "src/vision.h"
#include "rlaifv.h"

typedef struct rvi_prompt_part {
	int32_t *tokens; /* text: ids, or NULL for rows of an image */
	int64_t n;       /* positions it takes */
	int image;       /* rows: the image, its first row here, their grid */
	int64_t row0, grid_h, grid_w;
} rvi_prompt_part;

typedef struct rvi_prompt {
	rvi_prompt_part *parts;
	int n_parts, cap_parts;
	int64_t n_positions; /* text tokens plus image rows */
	int n_images;
	rvi_vision_input *images; /* (n_images) the files read and counted */
	float **embd;             /* (n_images) rows of each image, or NULL before encoding */
	bool owns_embd;           /* false when they are borrowed from another prompt */
} rvi_prompt;

/* Applies the template, tokenizes and reads the images' headers for ctx's
 * model; fails with RV_ERR_CONTEXT when the positions do not fit in ctx
 * (room for at least one generated token is needed), RV_ERR_IMAGE for an
 * image that cannot be read or breaks a limit, RV_ERR_INVALID_ARG for
 * images without a projector or an unknown template. */
int rvi_prompt_prepare(rv_context *ctx, const rv_prompt *p, int add_bos, rvi_prompt *out);

/* Logs a cache problem (a warning with a message; "" is none) once per
 * context: a cache never fails a call, but one that silently stops working
 * costs every later run its speed. */
void rvi_prompt_cache_warning(rv_context *ctx, const rvi_err *warning);

/* Encodes the images with ctx's model's projector (through the cache);
 * *ms gets the time spent. share: a prompt of another model whose images
 * were encoded by the same projector, whose rows are borrowed instead. */
int rvi_prompt_encode_images(rv_context *ctx, rvi_prompt *pr, const rvi_prompt *share,
                             const rv_model *share_model, double *ms);

/* Empties ctx's cache and runs the prompt through it at its positions;
 * ctx->logits gets the last position's logits and ctx->pos_next the
 * position after the prompt. */
int rvi_prompt_prefill(rv_context *ctx, const rvi_prompt *pr);

/* The position of each of pr's n_positions items, in order, as
 * rvi_prompt_prefill gives them; returns the position after the prompt. */
int64_t rvi_prompt_positions(const rv_context *ctx, const rvi_prompt *pr, rvi_pos *pos);

void rvi_prompt_free(rvi_prompt *pr);

#endif
