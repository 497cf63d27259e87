/* vit.h: what ViT-style vision encoders (models/clip.c, models/qwen25vl.c)
 * share beyond matmul and attention: torch's nn.Linear, LayerNorm and
 * RMSNorm with their statistics in double, and the activations, each
 * element on its own so that any thread count gives the same bits. */
#ifndef RLAIFV_VIT_H
#define RLAIFV_VIT_H

#include <stdbool.h>
#include <stdint.h>

#include "src/matmul.h"
#include "src/util.h"

/* y (n, d) = LayerNorm(x) * w + b; y may be x. */
void rvi_vit_layer_norm(float *y, const float *x, const float *w, const float *b, int64_t n,
                        int64_t d, float eps, int nt);

/* y (n, d) = RMSNorm(x) * w; y may be x. */
void rvi_vit_rms_norm(float *y, const float *x, const float *w, int64_t n, int64_t d, float eps,
                      int nt);

/* x (n) = erf GELU (erf_gelu) or OpenAI CLIP's quick-GELU, in place. */
void rvi_vit_activate(float *x, int64_t n, bool erf_gelu, int nt);

/* y (n, n_out) = x (n, n_in) @ W^T + b (b may be NULL). */
int rvi_vit_linear(const rvi_weight *W, const float *b, const float *x, int64_t n, float *y, int nt,
                   rvi_buf *scratch);

#endif
