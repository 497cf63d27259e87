/* tensor.h: what the runtime knows of each weight type (name, block size,
 * bytes per block, the activation type of its dots), row sizes, and the
 * fp16/bf16 conversions. The type ids and block layouts themselves are in src/blocks.h
 * (shared with simd/, where the arithmetic kernels live). */
#ifndef RLAIFV_TENSOR_H
#define RLAIFV_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "src/blocks.h"

typedef struct rvi_type_traits {
	const char *name;
	int64_t block_size;         /* elements per block */
	size_t type_size;           /* bytes per block */
	bool supported;             /* usable as a weight type */
	enum rvi_type vec_dot_type; /* what activations are converted to for dots */
} rvi_type_traits;

/* Traits of t; for an unknown id, name is NULL and supported false. */
const rvi_type_traits *rvi_type_traits_of(int t);
const char *rvi_type_name(int t); /* "Q4_K", or "unknown" */

/* Bytes of a row of n elements (n must be a multiple of the block size). */
size_t rvi_row_size(enum rvi_type t, int64_t n);

/* fp16/bf16 <-> f32, exact IEEE conversions (round to nearest even). */
float rvi_f16_to_f32(uint16_t h);
uint16_t rvi_f32_to_f16(float f);
float rvi_bf16_to_f32(uint16_t h);

#endif
