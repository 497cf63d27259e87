/* minicpmv.h: MiniCPM-V 2.6 and 4.5 vision (clip.projector_type
 * "resampler", clip.minicpmv_version 3, 4 (MiniCPM-o 2.6) or 6): a SigLIP
 * encoder with bucketed position ids and a perceiver resampler, as
 * llama.cpp's converters write them. */
#ifndef RLAIFV_MINICPMV_H
#define RLAIFV_MINICPMV_H

#include "models/arch.h"
#include "models/vit.h"

/* The fixed side of the learned position table (HF: num_patches_per_side
 * = 980 / 14) and of the converter's resampler table. */
#define RVI_MINICPMV_POS_SIDE 70

typedef struct rvi_minicpmv {
	rvi_vit_hparams hp;    /* image_size: the slice size (HF scale_resolution) */
	int64_t version;       /* clip.minicpmv_version */
	int64_t n_query;       /* Q: learned queries, rows per image */
	int64_t n_rhead;       /* resampler heads: D / 128 (HF's embed_dim // 128) */
	int max_slices;        /* in use: max_slice_nums */
	const char *path;      /* the mmproj file's name, for messages */
	rvi_weight patch_embd; /* (W, 3*p*p) */
	float *patch_bias;     /* (W) */
	float *pos_embd;       /* (70*70, W): the bucketed learned positions */
	rvi_vit_layer *layers; /* (n_layer) */
	float *post_ln_w, *post_ln_b;
	/* resampler, D = hp.n_mm_out */
	float *query;              /* (Q, D) */
	rvi_weight kv;             /* (D, W), no bias */
	rvi_weight wq, wk, wv, wo; /* (D, D) */
	float *bq, *bk, *bv, *bo;  /* (D) */
	float *ln_q_w, *ln_q_b, *ln_kv_w, *ln_kv_b, *ln_post_w, *ln_post_b;
	rvi_weight proj; /* y = x @ proj: stored as proj^T, a Linear */
} rvi_minicpmv;

int rvi_minicpmv_load(rvi_minicpmv *m, const rvi_gguf *g, rvi_err *err);
void rvi_minicpmv_free(rvi_minicpmv *m);

/* The position-table bucket of patch row (or column) i of n, as HF's
 * NaViT SigLIP computes it in float32 (bucketize of arange(0, 1 - 1e-6,
 * 1/n) into arange(1/70, 1, 1/70)); about floor(70 i / n), but not for
 * every n. */
int rvi_minicpmv_bucket(int64_t i, int64_t n);

/* One image of h x w pixels (planar, sides multiples of the patch size)
 * through SigLIP: feats (h/p * w/p, W) after post_ln. */
int rvi_minicpmv_siglip(const rvi_minicpmv *m, const float *chw, int w, int h, int n_threads,
                        float *feats, rvi_err *err);

/* The resampler over feats of an nh x nw patch grid: out (Q, D). */
int rvi_minicpmv_resample(const rvi_minicpmv *m, const float *feats, int64_t nh, int64_t nw,
                          int n_threads, float *out, rvi_err *err);

extern const rvi_vision_arch rvi_minicpmv_arch;

#endif
