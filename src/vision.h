/* vision.h: from an image file to the rows the language model reads in
 * place of <image>: the file is read once, looked up in the embedding
 * cache, else decoded, preprocessed and run through the CLIP tower and
 * projector, and stored. Owns no state between calls. */
#ifndef RLAIFV_VISION_H
#define RLAIFV_VISION_H

#include <stdbool.h>
#include <stdint.h>

#include "models/clip.h"
#include "src/gguf.h"
#include "src/image/image.h"
#include "src/sha256.h"
#include "src/util.h"

typedef struct rvi_vision_opts {
	bool apply_exif;
	rvi_image_limits limits;
	const char *cache_dir; /* NULL: no cache */
	int n_threads;
} rvi_vision_opts;

/* What identifies an mmproj for the cache: SHA-256 of its GGUF header
 * (metadata and tensor table), its size, and samples of every tensor's
 * bytes (the start, middle and end of each), so two projectors that differ
 * only in their weights (a fine-tune) do not share entries, while a 600 MB
 * file costs a few milliseconds, not a full read. */
void rvi_vision_mmproj_id(const rvi_gguf *g, uint8_t id[RVI_SHA256_BYTES]);

/* out (rvi_clip_n_output_tokens x rvi_clip_n_output_embd floats) = the
 * projector output for the image at path. *cache_hit says whether the
 * encoder was skipped; *cache_warning gets a message (else "") when the
 * cache could not be read or written, which never fails the call. */
int rvi_vision_embed(const rvi_clip *clip, const uint8_t mmproj_id[RVI_SHA256_BYTES],
                     const char *path, const rvi_vision_opts *o, float *out, bool *cache_hit,
                     rvi_err *cache_warning, rvi_err *err);

#endif
