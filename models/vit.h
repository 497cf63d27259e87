/* vit.h: what the ViT-style vision encoders share (CLIP in clip.c, SigLIP
 * in idefics3.c): the clip.vision.* hyperparameters of an mmproj, the
 * pre-norm block's weights (v.blk.N.*) and its forward pass, the patch
 * kernel, and the small steps (LayerNorm, activations, linear with bias).
 * The families' files are recipes built from these. */
#ifndef RLAIFV_VIT_H
#define RLAIFV_VIT_H

#include <stdbool.h>
#include <stdint.h>

#include "src/gguf.h"
#include "src/matmul.h"
#include "src/util.h"

typedef struct rvi_vit_hparams {
	int64_t image_size;  /* S: the encoder sees S x S pixels */
	int64_t patch_size;  /* p: S is a multiple of p */
	int64_t n_patches;   /* (S / p)^2 */
	int64_t n_embd;      /* W: ViT width */
	int64_t n_ff;        /* F: ViT MLP width */
	int64_t n_head;      /* W is a multiple of it */
	int64_t head_dim;    /* W / n_head */
	int64_t n_layer;     /* encoder blocks run (all stored) */
	int64_t n_mm_hidden; /* projector's hidden (or input) width, set by the family */
	int64_t n_mm_out;    /* projector output width = the LLM width, set by the family */
	/* clip.vision.projection_dim as stored (0 when absent). Informational
	 * only: converters write CLIP's own contrastive projection width there
	 * (768 for ViT-L), not the LLM width; n_mm_out is what counts. */
	int64_t projection_dim_key;
	float eps;           /* LayerNorm epsilon */
	bool use_gelu;       /* clip.use_gelu (false when absent) */
	float image_mean[3]; /* per RGB channel, for preprocessing */
	float image_std[3];  /* per RGB channel, all > 0 */
} rvi_vit_hparams;

/* Reads the hyperparameters every ViT mmproj has (general.architecture
 * clip, clip.has_vision_encoder, clip.vision.*), checking that
 * clip.projector_type is projector (absent counts as "mlp") and that no
 * clip.vision.feature_layer asks for other than the last stored block.
 * Errors name the file and the key. */
int rvi_vit_load_hparams(rvi_vit_hparams *hp, const rvi_gguf *g, const char *projector,
                         rvi_err *err);

/* One pre-norm block: x += out(MHA(ln1(x))); x += fc2(act(fc1(ln2(x)))). */
typedef struct rvi_vit_layer {
	float *ln1_w, *ln1_b;      /* (W) */
	rvi_weight wq, wk, wv, wo; /* (W, W) each */
	float *bq, *bk, *bv, *bo;  /* (W) */
	float *ln2_w, *ln2_b;      /* (W) */
	rvi_weight fc1;            /* (F, W): mlp.fc1, GGUF ffn_up (ffn_down in swapped files) */
	float *fc1_b;              /* (F) */
	rvi_weight fc2;            /* (W, F): mlp.fc2 */
	float *fc2_b;              /* (W) */
} rvi_vit_layer;

/* Binds a block's attention projections v.blk.il.attn_{q,k,v,out}: the
 * (W, W) weights into *w[0..3] and the (W) biases into *b[0..3]. */
int rvi_vit_load_attn(const rvi_gguf *g, int64_t il, int64_t W, rvi_weight *const w[4],
                      float **const b[4], rvi_err *err);

/* Binds v.blk.il.* (shapes checked against hp). */
int rvi_vit_load_layer(const rvi_gguf *g, const rvi_vit_hparams *hp, int64_t il, rvi_vit_layer *L,
                       rvi_err *err);
void rvi_vit_layer_free(rvi_vit_layer *L);

/* Every block v.blk.0 .. hp->n_layer - 1 into *layers (allocated); on
 * failure *layers is NULL and nothing stays allocated. */
int rvi_vit_load_layers(const rvi_gguf *g, const rvi_vit_hparams *hp, rvi_vit_layer **layers,
                        rvi_err *err);
/* The n blocks and their array; NULL is fine. */
void rvi_vit_layers_free(rvi_vit_layer *layers, int64_t n);

/* v.patch_embd.weight [p, p, 3, W] as a (W, 3*p*p) matrix whose rows are
 * in (channel, ky, kx) order. */
int rvi_vit_bind_patch_kernel(const rvi_gguf *g, const rvi_vit_hparams *hp, rvi_weight *w,
                              rvi_err *err);

/* patches (side*side, 3*p*p) of a planar (3, S, S) image, row-major over
 * the patch grid, each flattened in the patch kernel's order. */
void rvi_vit_patches(const float *chw, int64_t S, int64_t p, float *patches);

typedef enum rvi_vit_act {
	RVI_VIT_QUICK_GELU, /* x sigmoid(1.702 x): OpenAI CLIP */
	RVI_VIT_GELU_ERF,   /* 0.5 x (1 + erf(x / sqrt 2)) */
	RVI_VIT_GELU_TANH,  /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))): SigLIP */
} rvi_vit_act;

/* y (n, d) = LayerNorm(x) * w + b; y may be x. */
void rvi_vit_layer_norm(float *y, const float *x, const float *w, const float *b, int64_t n,
                        int64_t d, float eps, int nt);
/* y (n, d) = RMSNorm(x) * w (Qwen2.5-VL's vision blocks); y may be x. */
void rvi_vit_rms_norm(float *y, const float *x, const float *w, int64_t n, int64_t d, float eps,
                      int nt);
/* x (n) = act(x), element-wise. */
void rvi_vit_activate(float *x, int64_t n, rvi_vit_act act, int nt);
/* x (n) += y (n), over nt threads: a residual connection. */
void rvi_vit_add(float *x, const float *y, int64_t n, int nt);
/* y (n, n_out) = x (n, n_in) @ W^T + b (b may be NULL): torch nn.Linear. */
int rvi_vit_linear(const rvi_weight *W, const float *b, const float *x, int64_t n, float *y, int nt,
                   rvi_buf *scratch);

/* Working memory of rvi_vit_block for n rows: floats of each region. */
typedef struct rvi_vit_work {
	float *xb; /* (n, W): normed input, then sublayer output */
	float *q, *k, *v;
	float *ao;     /* (n, W): attention output, heads side by side */
	float *hb;     /* (n, F): MLP hidden */
	float *scores; /* rvi_attn_full_scratch(n, nt) */
	rvi_buf *mm;   /* matmul scratch */
} rvi_vit_work;

/* Sizes of the regions above (7 entries, in that order), for an arena. */
void rvi_vit_work_sizes(const rvi_vit_hparams *hp, int64_t n, int nt, uint64_t size[7]);

/* x (n, W) through block L, non-causal attention over all n rows. */
int rvi_vit_block(const rvi_vit_hparams *hp, const rvi_vit_layer *L, rvi_vit_act act, float *x,
                  int64_t n, const rvi_vit_work *w, int nt);

/* rc again, with err saying which step of path's encoder failed and why. */
int rvi_vit_encode_error(rvi_err *err, int rc, const char *path, const char *what);

/* ---- SigLIP (gemma3_vision.c; idefics3.c's encoder is the same) -------- */

/* SigLIP as converters write it: a patch conv with bias, learned
 * positions (one per patch, no class token), no pre-LN, the pre-norm
 * blocks with GELU-tanh, a post-LN. Every stored block runs. */
typedef struct rvi_siglip {
	rvi_weight patch_embd;        /* (W, 3*p*p) */
	float *patch_bias;            /* (W) */
	float *pos_embd;              /* (n_patches, W) */
	rvi_vit_layer *layers;        /* (n_layer) */
	float *post_ln_w, *post_ln_b; /* (W) */
	int64_t n_layer;
} rvi_siglip;

/* Binds v.patch_embd.*, v.position_embd.weight, v.blk.N.*, v.post_ln.*
 * (shapes checked against hp); on failure s is left empty. */
int rvi_siglip_load(rvi_siglip *s, const rvi_gguf *g, const rvi_vit_hparams *hp, rvi_err *err);
void rvi_siglip_free(rvi_siglip *s);

/* Working memory of one image's pass, and `extra` floats after it for the
 * family's projector (extra_out). */
typedef struct rvi_siglip_run {
	float *patches; /* (n_patches, 3*p*p) */
	float *x;       /* (n_patches, W): the pass's result */
	float *extra;
	rvi_vit_work w;
	rvi_buf scr; /* matmul scratch, also for the projector */
	rvi_arena mem;
} rvi_siglip_run;

/* RV_ERR_NOMEM naming the activations when memory runs out. */
int rvi_siglip_run_init(rvi_siglip_run *r, const rvi_vit_hparams *hp, uint64_t extra, int nt,
                        rvi_err *err);
void rvi_siglip_run_free(rvi_siglip_run *r);

/* r->x (n_patches, W) = SigLIP of one planar (3, S, S) image; the patches
 * row-major over the patch grid. rc of a failed matmul. */
int rvi_siglip_forward(const rvi_siglip *s, const rvi_vit_hparams *hp, const float *chw,
                       rvi_siglip_run *r, int nt);

#endif
