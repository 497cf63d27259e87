/* blocks.h: the GGUF weight type ids and the block layouts of the quantized
 * types, as the format defines them. This is all simd/ knows of the runtime
 * (kernels read and write these blocks); sizes, names and dequantization
 * entry points are src/tensor.h's. The block structs name their fields as
 * the format does (d scale, qs quants...) so they can be checked against the
 * GGUF/ggml facts. */
#ifndef RLAIFV_BLOCKS_H
#define RLAIFV_BLOCKS_H

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

#endif
