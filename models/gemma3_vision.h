/* gemma3_vision.h: Gemma 3's vision side (clip.projector_type "gemma3"):
 * the SigLIP encoder and Gemma3MultiModalProjector as llama.cpp's
 * converter writes them into an mmproj GGUF, and HF's pan-and-scan. */
#ifndef RLAIFV_GEMMA3_VISION_H
#define RLAIFV_GEMMA3_VISION_H

#include "models/arch.h"
#include "models/vit.h"

/* HF's pan-and-scan defaults (Gemma3ProcessorKwargs' images_kwargs). */
#define RVI_GEMMA3_PAS_MIN_CROP_SIZE 256
#define RVI_GEMMA3_PAS_MAX_CROPS     4
#define RVI_GEMMA3_PAS_MIN_RATIO     1.2

/* Where the crops of a w x h image lie: n_w x n_h crops of cw x ch pixels
 * from (0, 0), the last of a row or column cut short by the image's edge
 * (Python slicing); n_w = n_h = 0 when pan-and-scan leaves it whole. */
typedef struct rvi_gemma3_crops {
	int n_w, n_h;
	int cw, ch;
} rvi_gemma3_crops;

/* HF's Gemma3ImageProcessor.pan_and_scan arithmetic for an image of w x h
 * (the settings' on flag is not looked at). */
void rvi_gemma3_pan_and_scan(int w, int h, const rvi_pan_and_scan *s, rvi_gemma3_crops *out);

typedef struct rvi_gemma3v {
	rvi_vit_hparams hp; /* n_mm_hidden = W, n_mm_out: the text width */
	int64_t pool;       /* k: average pool k x k over the patch grid */
	const char *path;   /* the mmproj file's name, for messages */
	rvi_siglip vit;
	float *soft_emb_norm; /* (W): holds 1 + w_hf */
	float *proj_t;        /* (n_mm_out, W): mm.input_projection transposed, f32 */
	rvi_weight proj;      /* over proj_t */
	rvi_pan_and_scan pas; /* pan-and-scan, off unless set */
} rvi_gemma3v;

int rvi_gemma3v_load(rvi_gemma3v *m, const rvi_gguf *g, rvi_err *err);
void rvi_gemma3v_free(rvi_gemma3v *m);

/* Rows one image (or crop) gives: (S / p / k)^2. */
int64_t rvi_gemma3v_rows_per_image(const rvi_gemma3v *m);

/* n planar (3, S, S) images into (n * rows_per_image, n_mm_out) rows;
 * vision, when not NULL, gets each image's SigLIP output (n_patches, W)
 * one after another (for tests). */
int rvi_gemma3v_encode(const rvi_gemma3v *m, const float *images, int64_t n, int n_threads,
                       float *out, float *vision, rvi_err *err);

extern const rvi_vision_arch rvi_gemma3v_arch;

#endif
