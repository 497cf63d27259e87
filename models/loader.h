/* loader.h: what every model loader does with a GGUF file: read a
 * dimension within sane bounds, bind a weight matrix after checking its
 * shape, copy a small table (norm, bias, embedding) to owned f32, and
 * refuse block tensors past the block count. Errors name the file and the
 * key or tensor at fault. */
#ifndef RLAIFV_LOADER_H
#define RLAIFV_LOADER_H

#include <stdbool.h>
#include <stdint.h>

#include "src/gguf.h"
#include "src/matmul.h"
#include "src/util.h"

/* *out = key's integer value, which must lie in [lo, hi]; an absent key
 * leaves *out unchanged unless required. */
int rvi_load_dim(const rvi_gguf *g, const char *key, bool required, int64_t lo, int64_t hi,
                 int64_t *out, rvi_err *err);

/* The tensor called name, which must exist. */
int rvi_load_tensor(const rvi_gguf *g, const char *name, const rvi_gguf_tensor **out, rvi_err *err);

/* RV_ERR_MODEL: "FILE: tensor NAME has shape [...], expected EXPECTED". */
int rvi_load_shape_error(const rvi_gguf *g, const char *name, const rvi_gguf_tensor *t,
                         const char *expected, rvi_err *err);

/* Binds a 2-D weight of shape [n_in, n_out] (GGUF ne order) in place. */
int rvi_load_weight(const rvi_gguf *g, const char *name, int64_t n_in, int64_t n_out, rvi_weight *w,
                    rvi_err *err);

/* Small tables are dequantized to owned f32 (free()) whatever their type:
 * n_rows == 0 means a 1-D tensor [n], otherwise a 2-D [n, n_rows]. */
int rvi_load_floats(const rvi_gguf *g, const char *name, int64_t n, int64_t n_rows, float **out,
                    rvi_err *err);

/* A tensor "<prefix>N.*" with N >= n_blocks means the file and its
 * metadata disagree: refused rather than silently ignored. count_key names
 * the key in the message. */
int rvi_load_check_blocks(const rvi_gguf *g, const char *prefix, int64_t n_blocks,
                          const char *count_key, rvi_err *err);

/* A float array key of exactly 3 values (one per RGB channel, e.g.
 * clip.vision.image_mean), finite and bounded, into out. */
int rvi_load_rgb(const rvi_gguf *g, const char *key, float out[3], rvi_err *err);

#endif
