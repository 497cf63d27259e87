/* check.c: rv_model_check_tensors, the --check-tensors scan. A model file
 * with a NaN or infinity in a weight loads fine (the values are never
 * inspected at load, which only maps them), then poisons every answer with
 * NaN logits far from the cause. This scan finds the tensor instead.
 *
 * F32, F16 and BF16 values are tested directly, by their exponent bits (no
 * conversion, so a signalling NaN is seen as it is stored). A quantized
 * block decodes to scale * small integer (+ min * small integer for the K
 * types), so its values are all finite exactly when its fp16 scales are:
 * testing the scales reads a few bytes per 32 or 256 weights. A type
 * without a known block layout is dequantized row by row instead. */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include "rlaifv.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/api_internal.h"
#include "src/matmul.h"
#include "src/gguf.h"
#include "src/tensor.h"

/* Units (values or blocks) per parallel task: big enough to keep the
 * scheduling cost invisible, small enough to spread one large tensor. */
#define CHUNK ((int64_t)1 << 16)

typedef struct unit_layout {
	size_t size;         /* bytes per unit */
	size_t scale_off[2]; /* offsets of fp16 scales in the unit */
	int n_scales;        /* 0: the unit is one value of the tensor's own type */
} unit_layout;

static bool layout_of(enum rvi_type t, unit_layout *u)
{
	memset(u, 0, sizeof(*u));
	switch (t) {
	case RVI_TYPE_F32:
		u->size = 4;
		return true;
	case RVI_TYPE_F16:
	case RVI_TYPE_BF16:
		u->size = 2;
		return true;
	case RVI_TYPE_Q8_0:
		*u = (unit_layout){sizeof(rv_block_q8_0), {offsetof(rv_block_q8_0, d)}, 1};
		return true;
	case RVI_TYPE_Q4_0:
		*u = (unit_layout){sizeof(rv_block_q4_0), {offsetof(rv_block_q4_0, d)}, 1};
		return true;
	case RVI_TYPE_Q4_K:
		*u = (unit_layout){sizeof(rv_block_q4_K),
		                   {offsetof(rv_block_q4_K, d), offsetof(rv_block_q4_K, dmin)},
		                   2};
		return true;
	case RVI_TYPE_Q5_K:
		*u = (unit_layout){sizeof(rv_block_q5_K),
		                   {offsetof(rv_block_q5_K, d), offsetof(rv_block_q5_K, dmin)},
		                   2};
		return true;
	case RVI_TYPE_Q6_K:
		*u = (unit_layout){sizeof(rv_block_q6_K), {offsetof(rv_block_q6_K, d)}, 1};
		return true;
	default:
		return false;
	}
}

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* 0 finite, 1 NaN, 2 infinity: unit i of a tensor of type t. */
static int unit_state(enum rvi_type t, const unit_layout *u, const uint8_t *p)
{
	switch (t) {
	case RVI_TYPE_F32: {
		const uint32_t v = rd32(p);
		if ((v & 0x7f800000u) != 0x7f800000u)
			return 0;
		return (v & 0x007fffffu) ? 1 : 2;
	}
	case RVI_TYPE_BF16: {
		const uint16_t v = rd16(p);
		if ((v & 0x7f80u) != 0x7f80u)
			return 0;
		return (v & 0x007fu) ? 1 : 2;
	}
	default: /* F16 values and the fp16 scales of quantized blocks */
		for (int k = 0; k < (u->n_scales ? u->n_scales : 1); k++) {
			const uint16_t v = rd16(p + (u->n_scales ? u->scale_off[k] : 0));
			if ((v & 0x7c00u) == 0x7c00u)
				return (v & 0x03ffu) ? 1 : 2;
		}
		return 0;
	}
}

/* First non-finite unit of [0, n) (n if none), over n_threads. */
static int64_t scan_units(const uint8_t *data, int64_t n, enum rvi_type t, const unit_layout *u,
                          int n_threads, int *state)
{
	int64_t first = n;
	const int64_t n_chunks = (n + CHUNK - 1) / CHUNK;
	(void)n_threads;
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(n_threads)                               \
    reduction(min                                                                                  \
              : first) if (n_threads > 1 && n_chunks > 1)
#endif
	for (int64_t c = 0; c < n_chunks; c++) {
		const int64_t end = (c + 1) * CHUNK < n ? (c + 1) * CHUNK : n;
		for (int64_t i = c * CHUNK; i < end && i < first; i++) {
			if (unit_state(t, u, data + (size_t)i * u->size)) {
				first = i;
				break;
			}
		}
	}
	if (first < n)
		*state = unit_state(t, u, data + (size_t)first * u->size);
	return first;
}

/* Fallback for types without a layout above: dequantize each row. */
static int64_t scan_rows(const rvi_gguf_tensor *t, int *state)
{
	const int64_t n_in = t->ne[0], n_rows = (int64_t)(t->nelem / (uint64_t)t->ne[0]);
	float *row = malloc((size_t)n_in * sizeof(float));
	if (!row)
		return -2;
	rvi_weight w = {t->type, n_in, n_rows, t->data};
	int64_t bad = -1;
	for (int64_t r = 0; r < n_rows && bad < 0; r++) {
		rvi_weight_row(&w, r, row);
		for (int64_t i = 0; i < n_in; i++) {
			if (row[i] != row[i] || row[i] - row[i] != 0) {
				*state = row[i] != row[i] ? 1 : 2;
				bad = r * n_in + i;
				break;
			}
		}
	}
	free(row);
	return bad;
}

static int check_file(const rvi_gguf *g, int n_threads, rvi_err *err)
{
	for (uint64_t i = 0; i < g->n_tensors; i++) {
		const rvi_gguf_tensor *t = &g->tensors[i];
		const int name_len = (int)(t->name.len > 128 ? 128 : t->name.len);
		const char *type_name = rvi_type_name((int)t->type);
		unit_layout u;
		int state = 0;
		if (layout_of(t->type, &u)) {
			const int64_t n = (int64_t)(t->nbytes / u.size);
			const int64_t bad = scan_units(t->data, n, t->type, &u, n_threads, &state);
			if (bad >= n)
				continue;
			if (u.n_scales)
				return rvi_errorf(
				    err, RV_ERR_MODEL,
				    "%s: tensor %.*s (%s) has a non-finite scale (%s) in block "
				    "%lld "
				    "(elements %lld..%lld)",
				    g->path, name_len, t->name.ptr, type_name,
				    state == 1 ? "NaN" : "Inf", (long long)bad,
				    (long long)(bad * (int64_t)(t->nelem / (uint64_t)n)),
				    (long long)((bad + 1) * (int64_t)(t->nelem / (uint64_t)n) - 1));
			return rvi_errorf(err, RV_ERR_MODEL,
			                  "%s: tensor %.*s (%s) has a non-finite value (%s) at "
			                  "element %lld",
			                  g->path, name_len, t->name.ptr, type_name,
			                  state == 1 ? "NaN" : "Inf", (long long)bad);
		}
		const int64_t bad = scan_rows(t, &state);
		if (bad == -2)
			return rvi_errorf(err, RV_ERR_NOMEM, "out of memory checking tensor %.*s",
			                  name_len, t->name.ptr);
		if (bad >= 0)
			return rvi_errorf(err, RV_ERR_MODEL,
			                  "%s: tensor %.*s (%s) has a non-finite value (%s) at "
			                  "element %lld",
			                  g->path, name_len, t->name.ptr, type_name,
			                  state == 1 ? "NaN" : "Inf", (long long)bad);
	}
	return RV_OK;
}

rv_status rv_model_check_tensors(rv_model *model, char *err_buf, size_t err_size)
{
	rvi_err err = {0};
	int rc = model ? RV_OK : rvi_errorf(&err, RV_ERR_INVALID_ARG, "no model");
	if (rc == RV_OK)
		rc = check_file(model->gguf, model->n_threads, &err);
	if (rc == RV_OK && model->mm_gguf)
		rc = check_file(model->mm_gguf, model->n_threads, &err);
	if (rc != RV_OK && err_buf && err_size)
		snprintf(err_buf, err_size, "%s", err.msg);
	return (rv_status)rc;
}
