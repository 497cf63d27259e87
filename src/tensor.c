/* tensor.c: the table of ggml/GGUF tensor types (names, block geometry, which
 * ones we can compute with and what their activations are converted to), row
 * sizes, and exact fp16/bf16 <-> f32 conversions (see tensor.h).
 *
 * Every id ggml has ever assigned in 0..39 that is still valid in GGUF files
 * has a name so error messages can say "Q2_K" instead of "type 10". Ids that
 * ggml retired (4, 5: Q4_2/Q4_3; 31..33: Q4_0_4_4/4_8/8_8; 36..38: the
 * IQ4_NL_x_y repacks) are unknown: no file may use them, and their block
 * geometry is no longer defined. */
#include "src/tensor.h"
#include "simd/kernels.h"

#include <string.h>

/* The compile-time checks that our block structs are laid out exactly as the
 * file format stores them (no padding), since tensors are read in place. */
_Static_assert(sizeof(rv_block_q8_0) == 34, "Q8_0 block is 34 bytes");
_Static_assert(sizeof(rv_block_q4_0) == 18, "Q4_0 block is 18 bytes");
_Static_assert(sizeof(rv_block_q4_K) == 144, "Q4_K block is 144 bytes");
_Static_assert(sizeof(rv_block_q5_K) == 176, "Q5_K block is 176 bytes");
_Static_assert(sizeof(rv_block_q6_K) == 210, "Q6_K block is 210 bytes");
_Static_assert(sizeof(rv_block_q8_K) == 292, "Q8_K block is 292 bytes");

/* Shorthand for the table rows: K = 256-element super-block types. */
#define T_(nm, bs, ts)                                                                             \
	{                                                                                          \
		.name = (nm), .block_size = (bs), .type_size = (ts)                                \
	}
#define S_(nm, bs, ts, vdt)                                                                        \
	{                                                                                          \
		.name = (nm), .block_size = (bs), .type_size = (ts), .supported = true,            \
		.vec_dot_type = (vdt)                                                              \
	}

/* Block sizes and bytes per block follow the block structs of the GGUF
 * format (e.g. Q2_K: 16 scale bytes + 64 quant bytes + fp16 d and dmin = 84). */
static const rvi_type_traits type_traits[RVI_TYPE_COUNT] = {
    [0] = S_("F32", 1, 4, RVI_TYPE_F32),
    [1] = S_("F16", 1, 2, RVI_TYPE_F32),
    [2] = S_("Q4_0", 32, 18, RVI_TYPE_Q8_0),
    [3] = T_("Q4_1", 32, 20),
    [6] = T_("Q5_0", 32, 22),
    [7] = T_("Q5_1", 32, 24),
    [8] = S_("Q8_0", 32, 34, RVI_TYPE_Q8_0),
    [9] = T_("Q8_1", 32, 36),
    [10] = T_("Q2_K", 256, 84),
    [11] = T_("Q3_K", 256, 110),
    [12] = S_("Q4_K", 256, 144, RVI_TYPE_Q8_K),
    [13] = S_("Q5_K", 256, 176, RVI_TYPE_Q8_K),
    [14] = S_("Q6_K", 256, 210, RVI_TYPE_Q8_K),
    /* Q8_K is only ever produced from activations, never a weight type. */
    [15] = T_("Q8_K", 256, 292),
    [16] = T_("IQ2_XXS", 256, 66),
    [17] = T_("IQ2_XS", 256, 74),
    [18] = T_("IQ3_XXS", 256, 98),
    [19] = T_("IQ1_S", 256, 50),
    [20] = T_("IQ4_NL", 32, 18),
    [21] = T_("IQ3_S", 256, 110),
    [22] = T_("IQ2_S", 256, 82),
    [23] = T_("IQ4_XS", 256, 136),
    [24] = T_("I8", 1, 1),
    [25] = T_("I16", 1, 2),
    [26] = T_("I32", 1, 4),
    [27] = T_("I64", 1, 8),
    [28] = T_("F64", 1, 8),
    [29] = T_("IQ1_M", 256, 56),
    [30] = S_("BF16", 1, 2, RVI_TYPE_F32),
    [34] = T_("TQ1_0", 256, 54),
    [35] = T_("TQ2_0", 256, 66),
    [39] = T_("MXFP4", 32, 17),
};

#undef T_
#undef S_

/* What unknown ids resolve to: no name, no geometry, not supported. */
static const rvi_type_traits unknown_traits = {0};

const rvi_type_traits *rvi_type_traits_of(int t)
{
	if (t < 0 || t >= RVI_TYPE_COUNT || type_traits[t].name == NULL)
		return &unknown_traits;
	return &type_traits[t];
}

const char *rvi_type_name(int t)
{
	const char *name = rvi_type_traits_of(t)->name;
	return name ? name : "unknown";
}

size_t rvi_row_size(enum rvi_type t, int64_t n)
{
	const rvi_type_traits *tr = rvi_type_traits_of((int)t);
	if (tr->block_size <= 0 || n < 0)
		return 0;
	/* Divide first: n is a multiple of the block size by contract, and this
	 * order cannot overflow for any n a 64-bit size can describe. */
	return (size_t)(n / tr->block_size) * tr->type_size;
}

/* Bit casts between float and its IEEE-754 binary32 encoding. */
static inline uint32_t f32_bits(float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof(u));
	return u;
}

static inline float bits_f32(uint32_t u)
{
	float f;
	memcpy(&f, &u, sizeof(f));
	return f;
}

float rvi_f16_to_f32(uint16_t h)
{
	const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
	const uint32_t rest = h & 0x7fffu;
	if ((rest & 0x7c00u) == 0x7c00u) /* inf, nan: keep the payload */
		return bits_f32(sign | 0x7f800000u | ((rest & 0x3ffu) << 13));
	float mag;
	if (rest < 0x0400u) {
		/* Zero or subnormal: rest * 2^-24, exact (rest < 2^10). Done from
		 * an integer rather than via a float subnormal so that a process
		 * running with denormals-are-zero still gets the right value. */
		mag = (float)rest * 0x1p-24f;
	} else {
		/* Normal: move exponent and mantissa into the float's fields and
		 * re-bias the exponent from 15 to 127, in integers. */
		mag = bits_f32((rest << 13) + (112u << 23));
	}
	return bits_f32(sign | f32_bits(mag));
}

uint16_t rvi_f32_to_f16(float f)
{
	return rvk_f32_to_f16(f); /* simd/ needs it too, for the Q8_0 scales */
}

float rvi_bf16_to_f32(uint16_t h)
{
	/* bf16 is the top half of a binary32: exact by construction. */
	return bits_f32((uint32_t)h << 16);
}
