/* idefics3.h: SmolVLM / SmolVLM2 / Idefics3 vision (clip.projector_type
 * "idefics3"): the SigLIP encoder and the pixel-shuffle connector, as
 * llama.cpp's converter writes them into an mmproj GGUF. */
#ifndef RLAIFV_IDEFICS3_H
#define RLAIFV_IDEFICS3_H

#include "models/arch.h"
#include "models/vit.h"

typedef struct rvi_idefics3 {
	rvi_vit_hparams hp;           /* n_mm_hidden = W s^2 (the connector's input) */
	int64_t scale;                /* s: clip.vision.projector.scale_factor */
	int64_t longest_edge;         /* in use: the file's, or the family's setting */
	int64_t file_longest_edge;    /* clip.vision.preproc_image_size */
	const char *path;             /* the mmproj file's name, for messages */
	rvi_weight patch_embd;        /* (W, 3*p*p) */
	float *patch_bias;            /* (W) */
	float *pos_embd;              /* (n_patches, W): one row per patch, no class token */
	rvi_vit_layer *layers;        /* (n_layer) */
	float *post_ln_w, *post_ln_b; /* (W) */
	rvi_weight fc;                /* (n_mm_out, W s^2): mm.model.fc, no bias */
} rvi_idefics3;

/* Errors name the file and the key or tensor at fault; on failure m is
 * left zeroed. */
int rvi_idefics3_load(rvi_idefics3 *m, const rvi_gguf *g, rvi_err *err);
void rvi_idefics3_free(rvi_idefics3 *m);

/* Rows one tile gives: (S / p / s)^2. */
int64_t rvi_idefics3_rows_per_tile(const rvi_idefics3 *m);

/* n_tiles planar (3, S, S) tiles into (n_tiles * rows_per_tile, n_mm_out)
 * rows, tile after tile. */
int rvi_idefics3_encode(const rvi_idefics3 *m, const float *tiles, int64_t n_tiles, int n_threads,
                        float *out, rvi_err *err);

extern const rvi_vision_arch rvi_idefics3_arch;

#endif
