/* neon_dotprod.c: the kernel table for Armv8.2 CPUs with the dot-product
 * extension (SDOT), compiled with -march=armv8.2-a+dotprod. dispatch.c
 * picks it only when the kernel reports HWCAP_ASIMDDP.
 *
 * SDOT only speeds up int8 dots, so this table is the baseline NEON one
 * (rvk_neon_fill, baseline code that is safe to call from here) with the
 * quantized dots replaced: the same neon_qdot.h routines, built on SDOT
 * instead of widening multiplies. Their results are the same bits as the
 * baseline and scalar ones (see neon_qdot.h): the integer dot of a block is
 * exact however it is summed. */
#if !defined(__aarch64__)
#error "neon_dotprod.c is for AArch64 builds only"
#endif
#if !defined(__ARM_FEATURE_DOTPROD)
#error "neon_dotprod.c needs -march=armv8.2-a+dotprod (see Makefile.am)"
#endif

#include <arm_neon.h>

#include "simd/kernels.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* ---- int8 dot primitives for neon_qdot.h -------------------------------- */

/* SDOT adds each group of 4 adjacent products to one int32 lane: exact for
 * any int8 values, so the "small" forms need no bound here. */
static inline int32x4_t nq_dot16(int32x4_t acc, int8x16_t w, int8x16_t a)
{
	return vdotq_s32(acc, w, a);
}

static inline int32x4_t nq_dot16_small(int32x4_t acc, int8x16_t w, int8x16_t a)
{
	return vdotq_s32(acc, w, a);
}

static inline int32x4_t nq_dot32_small(int32x4_t acc, int8x16_t w0, int8x16_t a0, int8x16_t w1,
                                       int8x16_t a1)
{
	return vdotq_s32(vdotq_s32(acc, w0, a0), w1, a1);
}

#include "simd/neon_qdot.h"

/* ---- the table ---------------------------------------------------------- */

void rvk_neon_dotprod_fill(rvk_table *t)
{
	rvk_neon_fill(t); /* then the int8 dots replaced */
	t->name = "neon-dotprod";
#define RVK_neon_dotprod(entry, function) t->entry = function;
#include "simd/kernel_entries.h"
}
