/* vision.h: from an image file to the rows the language model reads in
 * place of <image>: the file is read once, looked up in the embedding
 * cache, else decoded, preprocessed and run through the vision family's
 * encoder and projector (models/arch.h), and stored. Owns no state between calls. */
#ifndef RLAIFV_VISION_H
#define RLAIFV_VISION_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "models/arch.h"
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

/* What identifies an mmproj for the cache: SHA-256 of the whole file, so
 * that every byte that can change an embedding changes the key. Hashing a
 * 600 MB projector takes seconds, so it is done once per model, on the
 * first image looked up in a cache, and remembered across runs in a small
 * side file in the cache directory ("mmproj-DEV-INODE.id") that holds the
 * file's size, mtime and ctime with the hash: a side file whose identity
 * does not match the mapped file is ignored and rewritten. */
typedef struct rvi_mmproj_id {
	pthread_mutex_t lock;
	bool known;
	uint8_t id[RVI_SHA256_BYTES];
} rvi_mmproj_id;

/* Fills id for the mmproj g, using and updating state (one per loaded
 * mmproj; callers on several threads are serialised) and the side file in
 * cache_dir. A side file that cannot be read or written only costs time:
 * warning then gets a message (else ""). */
void rvi_vision_mmproj_id(const rvi_gguf *g, rvi_mmproj_id *state, const char *cache_dir,
                          uint8_t id[RVI_SHA256_BYTES], rvi_err *warning);

/* Two mmproj files known to be the same file, unchanged (same device,
 * inode, size, mtime and ctime): their embeddings are interchangeable. */
bool rvi_vision_same_mmproj(const rvi_gguf *a, const rvi_gguf *b);

/* An image file read for a prompt: its bytes (read once, so the bytes
 * hashed for the cache are the bytes decoded), its upright size, and the
 * rows it encodes to. */
typedef struct rvi_vision_input {
	const char *path;
	uint8_t *bytes;
	size_t n;
	int w, h;
	rvi_embd_shape shape;
} rvi_vision_input;

/* Reads the file at path and checks it against the limits without decoding
 * it (RV_ERR_IO, RV_ERR_IMAGE), so that its rows can be counted before any
 * work. */
int rvi_vision_open(const rvi_vision_arch *arch, const void *model, const char *path,
                    const rvi_vision_opts *o, rvi_vision_input *in, rvi_err *err);
void rvi_vision_input_free(rvi_vision_input *in);

/* out (in->shape.rows x n_embd_out floats) = the projector output for the
 * image. *cache_hit says whether the encoder was skipped; *cache_warning
 * gets a message (else "") when the cache could not be read or written,
 * which never fails the call. */
int rvi_vision_embed(const rvi_vision_arch *arch, const void *model,
                     const uint8_t mmproj_id[RVI_SHA256_BYTES], const rvi_vision_input *in,
                     const rvi_vision_opts *o, float *out, bool *cache_hit, rvi_err *cache_warning,
                     rvi_err *err);

#endif
