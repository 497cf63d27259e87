/* avx512.c: the kernel table for CPUs with AVX-512 F/BW/VL and VNNI (Intel
 * Ice Lake, Sapphire Rapids and later; AMD Zen 4 and later). Compiled with
 * -mavx512f -mavx512bw -mavx512vl -mavx512vnni (plus AVX2/FMA/F16C), so
 * nothing here may run before dispatch.c has checked the CPU. This file
 * holds the overview below and builds the table (rvk_avx512_fill, from
 * kernel_entries.h); the kernels are split by job:
 *   avx512_dot.c    weight rows dotted with activation rows: vec_dot,
 *                   vec_dot_rows, and vec_dot_prep (Q8_0 pairs, the
 *                   stripes of Q4_0/Q4_K/Q6_K, Q5_K, F16 tiles)
 *   avx512_prep.c   activation rows made ready for those: quantization to
 *                   Q8_0/Q8_K and the prepared layouts (prep, prep_size)
 *   avx512_float.c  kernels on floats: dequantization, the f32 helpers of
 *                   the forward passes, attention
 *   avx512_attn.c   the fused attention of the image encoders
 *   avx512_gemm.c   the wide float products (encoders, prompts)
 *   avx512_common.h what two or more of them share: small inline helpers,
 *                   block sizes, the prepared layouts, the declarations
 * Their entry points are external (rvk_avx512_*), but only rvk_avx512_fill
 * is called from outside them.
 *
 * Semantics are those of scalar.c, entry by entry. What is exact there is
 * exact here: quantization (same bytes), dequantization (same floats), the
 * integer part of every quantized dot product. Float sums run in vector
 * lanes, in another order than the scalar reference, within the tolerances
 * test_kernels allows.
 *
 * Integer dot products use VNNI's vpdpbusd, which multiplies UNSIGNED bytes
 * by signed bytes and adds each group of 4 products to an int32 lane:
 *  - K-quant weights are unsigned already (nibbles, 5-bit or 6-bit values
 *    before their offset), so they are the unsigned operand and the Q8_K
 *    activations the signed one. The Q6_K offset of -32 is folded in with the
 *    activation sums bsums, which the Q8_K format carries.
 *  - Q8_0 and Q4_0 weights are signed. There the activation byte a is made
 *    unsigned as a + 128 (a xor 0x80) and the weights stay signed:
 *    sum (a + 128) w = sum a w + 128 sum w. The correction -128 sum w depends
 *    on the weights only, so it is computed once per weight block and shared
 *    by every activation row. This is exact for all byte values (a sign
 *    transfer would not be when a = -128).
 *  - The K-quant sub-block scales are applied with vpdpwssd (int16 pairs):
 *    one vpdpbusd lane sums 4 products of at most 63 * 128, so it fits an
 *    int16; two such vectors are packed (vpackssdw, exact) and one vpdpwssd
 *    multiplies each int16 by its sub-block's scale and adds the pairs into
 *    int32 lanes, without a slow 32-bit multiply.
 *  - Q8_0 (every path) and Q4_0's vec_dot keep the float order of
 *    llama.cpp's x86 kernels (one 8-lane accumulator, one FMA per block):
 *    the end-to-end Q8_0 references are sensitive to it (see that
 *    section). Q4_0's prepared path (decode, prefill) does not: it sums
 *    16 blocks a vector (see its section), and no reference needs that
 *    order.
 *
 * vec_dot_rows runs one weight row against several activation rows: a
 * "rows" routine takes R = 1..4 rows (K-quants also 8), loads and unpacks
 * each weight block once, then runs every row through the same per-row
 * steps. vec_dot is the R = 1 case of the same routine, and vec_dot_rows
 * takes groups of 8 (K-quants) and 4, then one group of the remainder, so
 * each row's accumulators see exactly the operations they see in vec_dot:
 * bit-identical results, whatever the batch. (Rows never interact; R only
 * changes how many are interleaved.)
 *
 * Q8_0, Q4_0, Q4_K, Q5_K and Q6_K also have vec_dot_prep, which matmul.c
 * uses in their place: activations prepared once per call in a layout made
 * for these kernels (see those sections), so no activation row repeats work
 * for each weight row it meets. Q4_0, Q4_K and Q6_K's go in "stripes", one
 * (sub-)block's dot per 32-bit lane.
 *
 * No float multiply in the dot products feeds an add that a compiler could
 * fuse differently in two instantiations (sums go through explicit FMAs),
 * and the build is ISO C (GCC does not contract there; clang is told
 * below).
 */
#include "simd/avx512_common.h"

/* ---- the table ---------------------------------------------------------- */

void rvk_avx512_fill(rvk_table *t)
{
	t->name = "avx512";
#define RVK_avx512(entry, function) t->entry = rvk_avx512_##function;
#include "simd/kernel_entries.h"
}
