/* gemma3.h: the Gemma 3 text decoder, general.architecture "gemma3" (the
 * LLM of Gemma 3 4B/12B/27B with images, and the text-only 1B). */
#ifndef RLAIFV_GEMMA3_H
#define RLAIFV_GEMMA3_H

#include <stdbool.h>
#include <stdint.h>

#include "models/arch.h"
#include "models/llama.h"

typedef struct rvi_gemma3_layer {
	float *post_attn_norm; /* (n_embd) on the attention's output */
	float *post_ffw_norm;  /* (n_embd) on the FFN's output */
} rvi_gemma3_layer;

typedef struct rvi_gemma3 {
	/* LLaMA's part of the recipe: hyperparameters (head_dim from
	 * key_length, rope_base the global layers'), attn_norm, q/k/v/o,
	 * ffn_norm (HF pre_feedforward_layernorm), gate/up/down, output_norm,
	 * the output tied to token_embd. Every norm weight holds HF's 1 + w. */
	rvi_llama base;
	rvi_gemma3_layer *layers;
	bool *sliding;       /* (n_layer) the layer attends within a window */
	int64_t window;      /* attention.sliding_window */
	float rope_base_swa; /* sliding layers' RoPE base */
	float rope_factor;   /* linear RoPE scaling of the global layers (1: none) */
	float attn_scale;    /* query_pre_attn_scalar^-0.5 */
	float embd_scale;    /* sqrt(n_embd), on text-token embeddings only */
} rvi_gemma3;

int rvi_gemma3_load(rvi_gemma3 *m, const rvi_gguf *g, rvi_err *err);
void rvi_gemma3_free(rvi_gemma3 *m);

/* The family's table (models/arch.h): "gemma3". */
extern const rvi_text_arch rvi_gemma3_arch;

#endif
