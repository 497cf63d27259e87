/* qwen25vl.h: the Qwen2.5-VL vision tower and patch merger, as stored in
 * an mmproj GGUF (clip.projector_type "qwen2.5vl_merger"), with the
 * semantics of HF's Qwen2_5_VisionTransformerPretrainedModel: a two-frame
 * patch embedding of a still image, 2-D rotary positions, window attention
 * with full-attention layers every clip.vision.n_wa_pattern blocks,
 * RMSNorm, SwiGLU MLPs, and the merger (RMSNorm, 2x2 patches concatenated,
 * MLP with erf GELU). Preprocessing: src/image/preprocess_qwen2vl.c. */
#ifndef RLAIFV_QWEN25VL_H
#define RLAIFV_QWEN25VL_H

#include <stdbool.h>
#include <stdint.h>

#include "models/arch.h"
#include "src/matmul.h"

typedef struct rvi_qwen25vl_hparams {
	int64_t patch;    /* p: pixels a patch side */
	int64_t merge;    /* patches a merged token side (2) */
	int64_t temporal; /* frames a patch spans (2; a still image repeated) */
	int64_t window;   /* pixels a window side (112) */
	int64_t n_embd, n_ff, n_head, head_dim, n_layer;
	int64_t n_wa_pattern; /* layer i attends fully when (i + 1) % it == 0 */
	/* Qwen2-VL (clip.projector_type "qwen2vl_merger"): LayerNorm with
	 * bias in the blocks and the merger, an fc1 / quick GELU / fc2 MLP,
	 * full attention in every block (n_wa_pattern 1) */
	bool qwen2vl;
	int64_t n_mm_hidden, n_out;
	int64_t min_pixels, max_pixels; /* the processor's limits */
	float eps;
	double rope_theta;
	float image_mean[3], image_std[3];
} rvi_qwen25vl_hparams;

typedef struct rvi_qwen25vl_layer {
	float *ln1, *ln2;              /* (W) RMSNorm weights (Qwen2-VL: LayerNorm) */
	float *ln1_b, *ln2_b;          /* Qwen2-VL: the LayerNorm biases */
	rvi_weight wq, wk, wv, wo;     /* (W, W) */
	float *bq, *bk, *bv, *bo;      /* (W) */
	rvi_weight gate, up, down;     /* (F, W), (F, W), (W, F); Qwen2-VL: no gate, fc1 and fc2 */
	float *gate_b, *up_b, *down_b; /* (F), (F), (W) */
} rvi_qwen25vl_layer;

typedef struct rvi_qwen25vl {
	rvi_qwen25vl_hparams hp;
	const char *path;
	rvi_weight patch_embd; /* (W, 3 * temporal * p * p), rows (c, t, y, x) */
	float *patch_data;     /* its f32 values, owned */
	rvi_qwen25vl_layer *layers;
	float *post_ln;   /* (W): the merger's ln_q */
	float *post_ln_b; /* Qwen2-VL: its bias */
	rvi_weight mm0, mm2;
	float *mm0_b, *mm2_b;
} rvi_qwen25vl;

int rvi_qwen25vl_load(rvi_qwen25vl *m, const rvi_gguf *g, rvi_err *err);
/* The same for Qwen2-VL's tower and merger (hp.qwen2vl). */
int rvi_qwen2vl_load(rvi_qwen25vl *m, const rvi_gguf *g, rvi_err *err);
void rvi_qwen25vl_free(rvi_qwen25vl *m);

/* Encodes the patch rows of one image (rvi_qwen2vl_patches of a
 * grid_h x grid_w patch grid, both multiples of merge) into out
 * (grid_h * grid_w / merge^2, n_out), merged tokens row-major. vit, when
 * not NULL, gets the blocks' output (grid_h * grid_w, W) in window order,
 * before the merger. */
int rvi_qwen25vl_encode(const rvi_qwen25vl *m, const float *patches, int64_t grid_h, int64_t grid_w,
                        int n_threads, float *out, float *vit, rvi_err *err);

extern const rvi_vision_arch rvi_qwen25vl_arch;
extern const rvi_vision_arch rvi_qwen2vl_merger_arch;

#endif
