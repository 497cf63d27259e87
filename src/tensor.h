/* tensor.h: weight types as GGUF numbers them, their block layouts, sizes,
 * dequantization, and the matmul driver that runs the kernel table over
 * threads. The block structs name their fields as the format does (d scale,
 * qs quants...) so they can be checked against the GGUF/ggml facts.
 * Arithmetic kernels themselves live in simd/. */
#ifndef RLAIFV_TENSOR_H
#define RLAIFV_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ggml/GGUF type ids (only the ones we implement are "supported"). */
enum rvi_type {
	RVI_TYPE_F32 = 0,
	RVI_TYPE_F16 = 1,
	RVI_TYPE_Q4_0 = 2,
	RVI_TYPE_Q8_0 = 8,
	RVI_TYPE_Q4_K = 12,
	RVI_TYPE_Q5_K = 13,
	RVI_TYPE_Q6_K = 14,
	RVI_TYPE_Q8_K = 15, /* activation-only type of the K-quant dot products */
	RVI_TYPE_BF16 = 30,
	RVI_TYPE_COUNT = 40 /* upper bound of ids we know the names of */
};

#define RV_QK8_0        32
#define RV_QK4_0        32
#define RV_QK_K         256
#define RV_K_SCALE_SIZE 12

/* 32 weights: w = d * qs[i]. */
typedef struct {
	uint16_t d; /* fp16 */
	int8_t qs[RV_QK8_0];
} rv_block_q8_0;

/* 32 weights: w = d * (nibble - 8); qs[j] low nibble is weight j, high nibble weight j+16. */
typedef struct {
	uint16_t d; /* fp16 */
	uint8_t qs[RV_QK4_0 / 2];
} rv_block_q4_0;

/* 256 weights in 8 sub-blocks of 32 with 6-bit scales and mins. */
typedef struct {
	uint16_t d;    /* fp16 super-block scale for the scales */
	uint16_t dmin; /* fp16 super-block scale for the mins */
	uint8_t scales[RV_K_SCALE_SIZE];
	uint8_t qs[RV_QK_K / 2];
} rv_block_q4_K;

typedef struct {
	uint16_t d;
	uint16_t dmin;
	uint8_t scales[RV_K_SCALE_SIZE];
	uint8_t qh[RV_QK_K / 8]; /* fifth bit of each weight */
	uint8_t qs[RV_QK_K / 2];
} rv_block_q5_K;

/* 256 weights in 16 sub-blocks of 16 with 8-bit scales; 6-bit quants. */
typedef struct {
	uint8_t ql[RV_QK_K / 2];
	uint8_t qh[RV_QK_K / 4];
	int8_t scales[RV_QK_K / 16];
	uint16_t d; /* fp16 */
} rv_block_q6_K;

/* Activations for K-quant dots: float scale, 256 int8, sums of each 16. */
typedef struct {
	float d;
	int8_t qs[RV_QK_K];
	int16_t bsums[RV_QK_K / 16];
} rv_block_q8_K;

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
