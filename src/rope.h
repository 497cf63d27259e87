/* rope.h: the angles of rotary position embeddings, for every family: a
 * 1-D table filled as positions are reached (LLaMA, Gemma), and M-RoPE's
 * sections (Qwen2-VL), where the frequency pairs are split between the t,
 * h and w components of a position. Rotating a head by the angles is the
 * kernel table's (or the family's) job; the layout of the pairs, adjacent
 * or half-split, is the caller's. */
#ifndef RLAIFV_ROPE_H
#define RLAIFV_ROPE_H

#include <stdint.h>

#include "models/arch.h"
#include "src/util.h"

typedef struct rvi_rope {
	int64_t n_rot; /* dims of a head that rotate: n_rot / 2 pairs */
	double base;   /* theta(p, i) = p * pos_scale * base^(-2i / n_rot) */
	/* linear RoPE scaling (rope.scaling.type "linear"): 1 / the factor;
	 * 1 after init. Set it before the first rvi_rope_prepare. */
	double pos_scale;
	/* M-RoPE: pairs [0, s0) turn with t, [s0, s0+s1) with h, then s2 with
	 * w, the rest with t again; all 0: 1-D (t only) */
	int sections[3];
	int64_t n_ctx; /* positions the table holds */
	float *cs;     /* (n_ctx, n_rot / 2, 2) cos, sin of 1-D positions */
	int64_t filled;
} rvi_rope;

/* sections may be NULL (1-D). */
int rvi_rope_init(rvi_rope *r, int64_t n_rot, double base, const int *sections, int64_t n_ctx,
                  rvi_err *err);
void rvi_rope_free(rvi_rope *r);

/* RV_OK when every position of p (n of them) can be rotated, filling the
 * 1-D table up to the largest; RV_ERR_INVALID_ARG naming the position
 * otherwise. Call before rvi_rope_row, outside parallel regions. */
int rvi_rope_prepare(rvi_rope *r, const rvi_pos *p, int64_t n, rvi_err *err);

/* The (n_rot / 2, 2) cos/sin pairs of position p: a row of the table for a
 * 1-D rope, else computed into buf (n_rot floats). */
const float *rvi_rope_row(const rvi_rope *r, const rvi_pos *p, float *buf);

#endif
