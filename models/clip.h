/* clip.h: the CLIP ViT vision encoder and the LLaVA-1.5 `mlp` projector, as
 * stored in an mmproj GGUF (general.architecture = "clip"): hyperparameters
 * and weights, and the forward pass from a normalised image to one
 * embedding row per LLM position.
 *
 * Semantics are those of the training code (Hugging Face CLIP + LLaVA-1.5):
 * class token first, every stored encoder block (the converter already
 * dropped the last one, so this is HF hidden_states[-2]), no post-LN, class
 * row dropped, projector mm.2(gelu_erf(mm.0(x))).
 *
 * Typical use:
 *     rvi_clip c;
 *     rvi_clip_load(&c, g, err);                       // g: the mmproj file
 *     rvi_clip_check_text_width(&c, llm_n_embd, err);  // before any work
 *     S = rvi_clip_image_size(&c);                     // preprocess to S x S with
 *     rvi_image_preprocess_llava(img, S, rvi_clip_image_mean(&c),
 *                                rvi_clip_image_std(&c), pixels, err);
 *     out = malloc(rvi_clip_n_output_tokens(&c) * rvi_clip_n_output_embd(&c) * 4);
 *     rvi_clip_encode(&c, pixels, n_threads, out, err);
 *     rvi_clip_free(&c);
 */
#ifndef RLAIFV_CLIP_H
#define RLAIFV_CLIP_H

#include <stdbool.h>
#include <stdint.h>

#include "models/arch.h"
#include "models/vit.h"
#include "src/gguf.h"
#include "src/matmul.h"
#include "src/util.h"

/* The ViT's hyperparameters (models/vit.h); n_mm_hidden is the width of
 * mm.0's output, n_mm_out that of mm.2 (the LLM width). use_gelu: the ViT
 * MLP's activation is erf GELU, else OpenAI CLIP's quick-GELU. */
typedef rvi_vit_hparams rvi_clip_hparams;
typedef rvi_vit_layer rvi_clip_layer;

typedef struct rvi_clip {
	rvi_clip_hparams hp;
	const char *path;           /* the mmproj file's name, for messages (g->path) */
	rvi_weight patch_embd;      /* (W, 3*p*p): the conv kernel, rows in (c, ky, kx) order */
	float *patch_bias;          /* (W), or NULL: CLIP's conv has none */
	float *class_embd;          /* (W) */
	float *pos_embd;            /* (n_patches + 1, W) */
	float *pre_ln_w, *pre_ln_b; /* (W) */
	rvi_clip_layer *layers;     /* (n_layer) */
	rvi_weight mm0;             /* (n_mm_hidden, W) */
	float *mm0_b;               /* (n_mm_hidden) */
	rvi_weight mm2;             /* (n_mm_out, n_mm_hidden) */
	float *mm2_b;               /* (n_mm_out) */
} rvi_clip;

/* Reads the clip.* hyperparameters and binds the weights of the mmproj file
 * g. Large weights point into g's mapping, which must outlive c; vectors
 * (norms, biases, class and position embeddings) are copied to owned f32.
 * Weights may be F32, F16, BF16 or any quantized type rvi_matmul takes.
 * Fails with RV_ERR_UNSUPPORTED for another architecture or projector type
 * (named), and RV_ERR_MODEL, naming the file and the key or tensor, for
 * missing, out-of-range or inconsistent metadata and missing or misshapen
 * tensors. On failure c is left zeroed (rvi_clip_free is harmless). */
int rvi_clip_load(rvi_clip *c, const rvi_gguf *g, rvi_err *err);
void rvi_clip_free(rvi_clip *c);

/* What a caller needs before encoding. */
int rvi_clip_image_size(const rvi_clip *c);          /* S */
const float *rvi_clip_image_mean(const rvi_clip *c); /* 3 floats, RGB */
const float *rvi_clip_image_std(const rvi_clip *c);  /* 3 floats, RGB */
int64_t rvi_clip_n_output_tokens(const rvi_clip *c); /* rows of the output = n_patches */
int64_t rvi_clip_n_output_embd(const rvi_clip *c);   /* width of each row = n_mm_out */

/* RV_OK when the projector output width equals n_embd_text (the text
 * model's embedding width); else RV_ERR_MODEL with both widths and the
 * mmproj file in the message. */
int rvi_clip_check_text_width(const rvi_clip *c, int64_t n_embd_text, rvi_err *err);

/* Encodes one image. pixels_chw: (3, S, S) floats, planar RGB, already
 * normalised ((u8/255 - mean) / std, as rvi_image_preprocess_llava
 * writes). out: (n_output_tokens, n_output_embd) f32 rows, one LLM position
 * each, patches in row-major order (top-left first). The result does not
 * depend on n_threads. Working memory is allocated per call (about
 * (n_patches + 1) * (6 W + F) floats), so one rvi_clip may serve several
 * threads at once. Returns RV_OK, RV_ERR_INVALID_ARG (NULL pointers, an
 * unloaded model) or RV_ERR_NOMEM. */
int rvi_clip_encode(const rvi_clip *c, const float *pixels_chw, int n_threads, float *out,
                    rvi_err *err);

/* The family's table (models/arch.h): clip.projector_type "mlp", LLaVA-1.5's
 * preprocessing. */
extern const rvi_vision_arch rvi_llava_mlp_arch;

#endif
