/* rope.c: rotary angles, 1-D and M-RoPE (see rope.h). */
#include "src/rope.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int rvi_rope_init(rvi_rope *r, int64_t n_rot, double base, const int *sections, int64_t n_ctx,
                  rvi_err *err)
{
	memset(r, 0, sizeof(*r));
	if (n_rot < 2 || n_rot % 2 || n_ctx < 1 || !(base > 1))
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "rope: %lld rotated dims, base %g",
		                  (long long)n_rot, base);
	r->n_rot = n_rot;
	r->base = base;
	r->pos_scale = 1.0;
	r->n_ctx = n_ctx;
	if (sections)
		memcpy(r->sections, sections, sizeof(r->sections));
	/* Filled as positions are reached: a context of 2^24 positions would
	 * otherwise cost gigabytes of touched memory and seconds of cos/sin
	 * before the first token. */
	r->cs = rvi_alloc((size_t)n_ctx * (size_t)n_rot, sizeof(float));
	if (!r->cs)
		return rvi_errorf(err, RV_ERR_NOMEM, "out of memory for a %lld-position RoPE table",
		                  (long long)n_ctx);
	return RV_OK;
}

void rvi_rope_free(rvi_rope *r)
{
	free(r->cs);
	memset(r, 0, sizeof(*r));
}

static bool is_1d(const rvi_rope *r)
{
	return r->sections[0] == 0 && r->sections[1] == 0 && r->sections[2] == 0;
}

/* cos/sin of pair i at p, in double so that long contexts keep their
 * precision. */
static void angle(const rvi_rope *r, double p, int64_t i, float *cs)
{
	const double theta = p * r->pos_scale * pow(r->base, -2.0 * (double)i / (double)r->n_rot);
	cs[0] = (float)cos(theta);
	cs[1] = (float)sin(theta);
}

int rvi_rope_prepare(rvi_rope *r, const rvi_pos *p, int64_t n, rvi_err *err)
{
	int64_t max_t = -1;
	for (int64_t j = 0; j < n; j++) {
		const int32_t c[3] = {p[j].t, p[j].h, p[j].w};
		for (int k = 0; k < 3; k++)
			if (c[k] < 0 || c[k] >= r->n_ctx)
				return rvi_errorf(err, RV_ERR_INVALID_ARG,
				                  "position %d is outside the context (%lld)", c[k],
				                  (long long)r->n_ctx);
		if (p[j].t > max_t)
			max_t = p[j].t;
	}
	if (!is_1d(r))
		return RV_OK;
	const int64_t half = r->n_rot / 2;
	for (int64_t pos = r->filled; pos <= max_t; pos++)
		for (int64_t i = 0; i < half; i++)
			angle(r, (double)pos, i, r->cs + (pos * half + i) * 2);
	if (max_t + 1 > r->filled)
		r->filled = max_t + 1;
	return RV_OK;
}

const float *rvi_rope_row(const rvi_rope *r, const rvi_pos *p, float *buf)
{
	const int64_t half = r->n_rot / 2;
	if (is_1d(r))
		return r->cs + (int64_t)p->t * r->n_rot;
	const int64_t b0 = r->sections[0], b1 = b0 + r->sections[1], b2 = b1 + r->sections[2];
	for (int64_t i = 0; i < half; i++) {
		const int32_t c = i < b0 ? p->t : i < b1 ? p->h : i < b2 ? p->w : p->t;
		angle(r, (double)c, i, buf + 2 * i);
	}
	return buf;
}
