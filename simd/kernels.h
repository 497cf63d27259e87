/* kernels.h: the kernel table. Every hot loop of the runtime is an entry
 * here; simd/scalar.c holds the reference for each entry and each ISA file
 * fills the ones it accelerates (NULL-free: an ISA table starts as a copy of
 * the scalar one), as the one list simd/kernel_entries.h says. The table is
 * chosen once, at start-up, by dispatch.c. simd/ takes nothing from the
 * runtime but src/blocks.h. */
#ifndef RLAIFV_KERNELS_H
#define RLAIFV_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* the only header simd/ takes from the runtime: type ids and block layouts */
#include "src/blocks.h"

/* s = sum_i w[i] * a[i] over n elements: w is one weight row of the entry's
 * type, a one activation row of that type's vec_dot_type. */
typedef void (*rvk_vec_dot_fn)(int64_t n, float *s, const void *w, const void *a);

/* y (n floats) = dequantized x (one row of n elements). */
typedef void (*rvk_dequant_fn)(const void *x, float *y, int64_t n);

/* y = quantized x, for activation types (Q8_0, Q8_K); n a multiple of the block. */
typedef void (*rvk_quant_fn)(const float *x, void *y, int64_t n);

/* s[r * s_stride] = w . a_r for r < nrows (any nrows >= 1), where a_r starts
 * a_stride bytes after a_(r-1): one weight row against the activation rows
 * of a batched decode step or a prompt, so the row is fetched and unpacked
 * once for several of them. Each result must be bit-identical to what
 * vec_dot gives for (w, a_r) alone: a candidate's tokens may not depend on
 * how many others share its step. */
typedef void (*rvk_vec_dot_rows_fn)(int64_t n, float *s, int64_t s_stride, const void *w,
                                    const void *a, size_t a_stride, int64_t nrows);

/* The optional fast path of a weight type: activations prepared once per
 * matmul call in a layout of the ISA's own, then dotted with many weight
 * rows. prep_size(n) is the bytes of one prepared row (a multiple of 64);
 * prep turns one vec_dot_type row of n elements into one; vec_dot_prep sets
 * y[j * y_stride + i] = w_i . p_j for n_w weight rows w_stride bytes apart
 * and n_a prepared rows p_stride bytes apart (64-byte aligned). Each result
 * depends only on (w_i, p_j), never on n_w, n_a or how the work is split, so
 * batched and single decoding stay bit-identical; it is within vec_dot's
 * tolerance of the scalar reference, but not always bit-identical to the
 * ISA's own vec_dot (the float sums may run in another order). */
typedef size_t (*rvk_prep_size_fn)(int64_t n);
typedef void (*rvk_prep_fn)(int64_t n, const void *a, void *p);
typedef void (*rvk_vec_dot_prep_fn)(int64_t n, float *y, int64_t y_stride, const void *w,
                                    size_t w_stride, int64_t n_w, const void *p, size_t p_stride,
                                    int64_t n_a);

/* The layout of attn_kv_pack and attn_rows (see rvk_table). */
#define RVK_GEMM_ROWS             64
#define RVK_ATTN_MAX_HD           128
#define RVK_ATTN_ROWS             24
#define RVK_ATTN_PAD(n)           (((n) + 15) / 16 * 16)
#define RVK_ATTN_KV_FLOATS(n, hd) ((hd)*RVK_ATTN_PAD(n) + (n)*RVK_ATTN_PAD(hd))
#define RVK_ATTN_SCRATCH(len, hd) (RVK_ATTN_ROWS * (RVK_ATTN_PAD(len) + RVK_ATTN_PAD(hd)))

typedef struct rvk_table {
	/* "scalar", "avx2", "avx512", "neon", "neon-dotprod", or for a
	 * measured table (rvk_compose) "auto: " and its choice per type */
	const char *name;
	/* Per weight type, the table whose entries the wide products of that
	 * type take: prompts of more than RVI_MATMUL_EXACT_BATCH tokens and
	 * image patches, never candidates (src/matmul.c). NULL: this table.
	 * Only a measured table sets them (see rvk_compose). */
	const struct rvk_table *wide[RVI_TYPE_COUNT];
	rvk_vec_dot_fn vec_dot[RVI_TYPE_COUNT];
	/* optional per type: NULL means "call vec_dot once per row" */
	rvk_vec_dot_rows_fn vec_dot_rows[RVI_TYPE_COUNT];
	/* optional per type, all three or none (see rvk_vec_dot_prep_fn) */
	rvk_prep_size_fn prep_size[RVI_TYPE_COUNT];
	rvk_prep_fn prep[RVI_TYPE_COUNT];
	rvk_vec_dot_prep_fn vec_dot_prep[RVI_TYPE_COUNT];
	rvk_dequant_fn dequant[RVI_TYPE_COUNT];
	rvk_quant_fn quant[RVI_TYPE_COUNT];

	/* f32 helpers of the forward passes */
	/* o (n) = x (n) / rms(x) * w (n) */
	void (*rmsnorm)(float *o, const float *x, const float *w, int64_t n, float eps);
	/* x (n) = softmax(x) in place, max-subtracted; results below FLT_MIN
	 * are 0, as subnormal weights would slow every multiply that reads
	 * them (an assist per operation on x86) for no visible difference */
	void (*softmax)(float *x, int64_t n);
	/* g (n) = silu(g) * u (n): the SwiGLU gate */
	void (*swiglu)(float *g, const float *u, int64_t n);
	/* y = y + a * x over n */
	void (*axpy)(float *y, float a, const float *x, int64_t n);
	/* dot of two f32 vectors */
	float (*dot_f32)(const float *a, const float *b, int64_t n);
	/* attention: att[j * att_stride + p] = scale * (q_j . k_p) for nq
	 * query rows q_j = q + j * q_stride and n key rows k_p = k + p *
	 * k_stride, each hd floats wide. A query's scores are the same bits
	 * whatever nq: several queries of one key row set (the query heads of
	 * a KV head, the patches of a head) go in one call so that the rows are
	 * fetched once for all of them. */
	void (*attn_scores)(float *att, int64_t att_stride, const float *q, int64_t q_stride,
	                    int64_t nq, const float *k, int64_t k_stride, int64_t n, int64_t hd,
	                    float scale);
	/* attention: out_j (hd) += sum over p < n of att[j * att_stride + p] *
	 * v_p for nq rows out_j = out + j * out_stride, v_p = v + p * v_stride;
	 * as above, each out_j the same whatever nq */
	void (*attn_values)(float *out, int64_t out_stride, const float *att, int64_t att_stride,
	                    int64_t nq, const float *v, int64_t v_stride, int64_t n, int64_t hd);

	/* Fused attention of the image encoders (NULL in a set without it:
	 * the callers then use a BLAS or attn_scores and attn_values).
	 * attn_kv_pack lays the n keys and values (hd <= RVK_ATTN_MAX_HD
	 * floats each) of one head and window out in RVK_ATTN_KV_FLOATS(n, hd)
	 * floats at kv: the keys in blocks of 16, each block transposed (hd
	 * rows of 16 keys, zero past n), then the values (n rows of
	 * RVK_ATTN_PAD(hd) floats, zero-padded). attn_rows writes, for nq <=
	 * RVK_ATTN_ROWS queries q_j = q + j * q_stride, out_j (hd) = softmax
	 * over p of (scale * (q_j . k_p)) @ v, the softmax as softmax's;
	 * scratch holds RVK_ATTN_SCRATCH(n, hd) floats. Each out_j is the same
	 * bits whatever nq and whichever thread runs it. */
	void (*attn_kv_pack)(float *kv, const float *k, int64_t k_stride, const float *v,
	                     int64_t v_stride, int64_t n, int64_t hd);
	void (*attn_rows)(float *out, int64_t out_stride, const float *q, int64_t q_stride,
	                  int64_t nq, const float *kv, int64_t n, int64_t hd, float scale,
	                  float *scratch);

	/* Wide float products (NULL in a set without them: the BLAS then).
	 * gemm_pack lays n_rows <= RVK_GEMM_ROWS rows of w (n_in floats each,
	 * contiguous) out as a panel of RVK_GEMM_ROWS * n_in floats;
	 * gemm_rows writes y[t * y_stride + r] = x_t . w_r for n_tok
	 * activation rows x_t = x + t * n_in and the panel's rows r < n_rows.
	 * Each output is the same bits whatever n_tok. */
	void (*gemm_pack)(float *panel, const float *w, int64_t n_rows, int64_t n_in);
	void (*gemm_rows)(float *y, int64_t y_stride, const float *x, int64_t n_tok,
	                  const float *panel, int64_t n_rows, int64_t n_in);

	/* Norms, activations, bias and RoPE of the model recipes. SIMD
	 * versions are within the tolerances of test_kernels of the scalar
	 * reference; rope, rope_neox and add_bias are the same bits. */
	/* o (n) = (x - mean(x)) / sqrt(var(x) + eps) * w (n) + b (n), the
	 * variance biased (PyTorch's LayerNorm: CLIP, SigLIP); o may be x */
	void (*layernorm)(float *o, const float *x, const float *w, const float *b, int64_t n,
	                  float eps);
	/* o (n) = x (n) / rms(x) * (1 + w (n)): rmsnorm with the weight stored
	 * minus one (Gemma); o may be x */
	void (*rmsnorm_1p)(float *o, const float *x, const float *w, int64_t n, float eps);
	/* x (n) = act(x) in place: gelu_erf x/2 (1 + erf(x / sqrt 2));
	 * gelu_tanh x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))); gelu_quick
	 * x * sigmoid(1.702 x) (OpenAI CLIP); silu x * sigmoid(x) */
	void (*gelu_erf)(float *x, int64_t n);
	void (*gelu_tanh)(float *x, int64_t n);
	void (*gelu_quick)(float *x, int64_t n);
	void (*silu)(float *x, int64_t n);
	/* y (rows, n) += b (n) on every row: the bias of a linear layer */
	void (*add_bias)(float *y, const float *b, int64_t rows, int64_t n);
	/* RoPE of one token: the first n_rot values of each of n_heads heads
	 * of head_dim floats at x, rotated in pairs by the angles of cs, whose
	 * (cos, sin) for pair i are cs[2i], cs[2i + 1] (i < n_rot / 2). rope
	 * pairs (x[2i], x[2i + 1]) (the "normal" layout of LLaMA GGUFs, whose
	 * converter permuted Q and K rows for it), rope_neox (x[i], x[i +
	 * n_rot / 2]) (Qwen, Gemma). The caller computes cs: for 1-D RoPE
	 * from the position, for 2-D vision RoPE and M-RoPE each pair's angle
	 * from its own position component, so all of them reduce to this. */
	void (*rope)(float *x, int64_t n_heads, int64_t head_dim, int64_t n_rot, const float *cs);
	void (*rope_neox)(float *x, int64_t n_heads, int64_t head_dim, int64_t n_rot,
	                  const float *cs);
} rvk_table;

/* attn_scores_loop and attn_values_loop: attn_scores and attn_values as
 * loops over an ISA's own dot_f32 and axpy (named DOT and AXPY in that
 * file), for the tables without kernels of their own for them and for the
 * shapes an ISA's own kernels leave out. */
#define RVK_ATTN_FROM_DOT_AXPY(DOT, AXPY)                                                          \
	static void attn_scores_loop(float *att, int64_t att_stride, const float *q,               \
	                             int64_t q_stride, int64_t nq, const float *k,                 \
	                             int64_t k_stride, int64_t n, int64_t hd, float scale)         \
	{                                                                                          \
		for (int64_t j = 0; j < nq; j++)                                                   \
			for (int64_t p = 0; p < n; p++)                                            \
				att[j * att_stride + p] =                                          \
				    DOT(q + j * q_stride, k + p * k_stride, hd) * scale;           \
	}                                                                                          \
	static void attn_values_loop(float *out, int64_t out_stride, const float *att,             \
	                             int64_t att_stride, int64_t nq, const float *v,               \
	                             int64_t v_stride, int64_t n, int64_t hd)                      \
	{                                                                                          \
		for (int64_t j = 0; j < nq; j++)                                                   \
			for (int64_t p = 0; p < n; p++)                                            \
				AXPY(out + j * out_stride, att[j * att_stride + p],                \
				     v + p * v_stride, hd);                                        \
	}

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
/* Flush-to-zero and denormals-are-zero for the length of a kernel whose
 * tiny intermediates would otherwise be subnormal: on x86 every vector that
 * makes or reads one takes a microcode assist (a softmax whose inputs span
 * more than about 87 ran 10 times slower). Where such values end as 0
 * anyway (softmax results below FLT_MIN are 0) the outputs are the same.
 * rvk_ftz_begin returns the MXCSR that rvk_ftz_end restores. */
static inline unsigned int rvk_ftz_begin(void)
{
	const unsigned int csr = _mm_getcsr();
	_mm_setcsr(csr | 0x8040u); /* FTZ | DAZ */
	return csr;
}

static inline void rvk_ftz_end(unsigned int csr)
{
	_mm_setcsr(csr);
}
#endif

/* The rotation of one RoPE pair (a, b) by (c, s): a c - b s, a s + b c,
 * each product rounded on its own (no FMA). scalar.c's rope and the tails
 * of the SIMD ones use it, and their vector parts do the same operations,
 * so every ISA gives the same bits. */
static inline void rvk_rope_pair(float *a, float *b, float c, float s)
{
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif
	const float x = *a, y = *b;
	*a = x * c - y * s;
	*b = x * s + y * c;
}

/* The scalar reference table (always available). */
extern const rvk_table rvk_scalar_table;

/* Each ISA file exports one function that overrides, in a copy of the
 * scalar table, the entries it accelerates (and sets name). They are only
 * called after dispatch.c has checked that the CPU has the ISA. */
void rvk_avx2_fill(rvk_table *t);
void rvk_avx512_fill(rvk_table *t);
void rvk_neon_fill(rvk_table *t);
void rvk_neon_dotprod_fill(rvk_table *t);

/* rvi_f16_to_f32 for the inner loops of kernels (the same exact result for
 * every input; test_kernels checks all 65536). Written without branches on
 * the value, so compilers can vectorize loops over it, and without float
 * subnormals, so the FPU's denormal modes cannot change it. */
static inline float rvk_f16_to_f32(uint16_t h)
{
	const uint32_t rest = h & 0x7fffu;
	/* all-ones masks for the two special ranges */
	const uint32_t is_special = 0u - (uint32_t)(rest >= 0x7c00u); /* inf, nan */
	const uint32_t is_sub = 0u - (uint32_t)(rest < 0x0400u);      /* zero, subnormal */
	/* normal: move the fields into place, re-bias the exponent 15 -> 127;
	 * inf and nan: the exponent (then 143) must become all ones (255) */
	const uint32_t normal = (rest << 13) + (112u << 23) + (is_special & (112u << 23));
	/* zero, subnormal m * 2^-24: computed as 2^-14 * (1 + m / 1024) - 2^-14,
	 * which is exact */
	uint32_t sub_bits = 0x38800000u | (rest << 13);
	float sub;
	memcpy(&sub, &sub_bits, sizeof(sub));
	sub -= 0x1p-14f;
	memcpy(&sub_bits, &sub, sizeof(sub_bits));
	const uint32_t bits =
	    (sub_bits & is_sub) | (normal & ~is_sub) | ((uint32_t)(h & 0x8000u) << 16);
	float f;
	memcpy(&f, &bits, sizeof(f));
	return f;
}

/* f (float) -> fp16, the IEEE conversion (round to nearest even, subnormal
 * halves included, NaN kept quiet): the scale of Q8_0 activations. Exported
 * by scalar.c; rvi_f32_to_f16 is this function. */
uint16_t rvk_f32_to_f16(float f);

/* The table in use: chosen on first call (RLAIFV_ISA may force one). */
const rvk_table *rvk_active(void);

/* Makes the kernels for isa ("scalar", "avx2", "avx512", "neon",
 * "neon-dotprod", or "auto"/"" for the best this build and CPU have; NULL
 * for $RLAIFV_ISA, auto when unset) the ones rvk_active() returns from now
 * on. true, or false with a message such as "RLAIFV_ISA=avx2: this CPU does
 * not support avx2" in msg (msg_size bytes, truncated; msg may be NULL)
 * and the current choice unchanged. rvk_active() applies $RLAIFV_ISA this
 * way on first use and silently falls back to the scalar table when the
 * value is unusable; the API checks it first (rvk_check_env) and reports. */
bool rvk_select(const char *isa, char *msg, size_t msg_size);

/* $RLAIFV_ISA, the one place it is read: NULL when unset or empty. */
const char *rvk_env_isa(void);

/* true when $RLAIFV_ISA is unset or names a set this build and CPU have;
 * else false with rvk_select's message in msg. */
bool rvk_check_env(char *msg, size_t msg_size);

/* The table for isa without making it the active one (for tests and
 * benchmarks that compare ISAs): NULL with a message in msg, as
 * rvk_select's, when this build or CPU lacks it. */
const rvk_table *rvk_table_for(const char *isa, char *msg, size_t msg_size);

/* Names of the ISAs this build and CPU can run, best first; returns the
 * count (at most max are stored). "scalar" is always last. */
int rvk_usable_isas(const char **names, int max);

/* ---- kernels chosen by measurement ----------------------------------------
 *
 * Feature flags say what a CPU can run, not what runs fastest on it: on
 * AMD Zen 4 (AVX-512 on 256-bit units) the avx512 set decodes K-quants and
 * F16 slower than the avx2 one while its prefill is three times faster. So
 * "auto" may be a measured table: per weight type, the exact products
 * (decode and batched candidates) take one set's entries and the wide ones
 * (prompt, image patches) another's, each the fastest set in a short
 * calibration (rvk_calibrate). src/kchoice.c runs it once per CPU and keeps
 * the outcome in the user's cache.
 *
 * What stays bit for bit (the promises of tests/test_kernels.c): the
 * quantized activations, dequantization, RoPE and biases are the same bits
 * in every set, so they are taken from the best set by feature. A weight
 * type's exact entries (vec_dot, vec_dot_rows, prep_size, prep,
 * vec_dot_prep) all come from ONE set: within a set, a row's result does
 * not depend on how many candidates share the step nor on the threads, and
 * the decode and candidate phases are therefore never chosen apart (their
 * speeds are summed into one score). Between sets vec_dot agrees only
 * within tolerance, so a choice changes results within tolerance, never
 * their determinism on one machine: the choice is made once per process
 * and kept per CPU in the cache, and a set must win by a margin to replace
 * the one first by feature (noise near a tie cannot make runs alternate). */

/* The phases measured per weight type and set. */
enum rvk_phase {
	RVK_PHASE_DECODE_CACHE,  /* one token, weights in cache */
	RVK_PHASE_DECODE_STREAM, /* one token, weights streamed from memory */
	RVK_PHASE_BATCH,         /* RVK_BATCH_ROWS candidates' tokens */
	RVK_PHASE_PREFILL,       /* RVK_PREFILL_ROWS tokens of a prompt */
	RVK_N_PHASES
};
#define RVK_BATCH_ROWS   4
#define RVK_PREFILL_ROWS 64

/* The weight types chosen per type (those with a vec_dot), in a fixed
 * order; rvk_choice's arrays are indexed like it. */
#define RVK_N_CHOICE_TYPES 8
extern const enum rvi_type rvk_choice_types[RVK_N_CHOICE_TYPES];

/* Maximal kernel sets a build can have (names as rvk_usable_isas gives). */
#define RVK_MAX_SETS 8

typedef struct rvk_choice {
	/* per choice type: the set of the exact products and of the wide ones
	 * (names of rvk_usable_isas: static strings) */
	const char *exact[RVK_N_CHOICE_TYPES];
	const char *wide[RVK_N_CHOICE_TYPES];
	/* what was measured, for the reports: GB/s of weights read per phase
	 * (0: not measured), per type and set of sets[] */
	int n_sets;
	const char *sets[RVK_MAX_SETS];
	double gbps[RVK_N_CHOICE_TYPES][RVK_MAX_SETS][RVK_N_PHASES];
	/* the image encoders' attention: the first set's fused kernel
	 * (attn_rows) when true, else the BLAS (src/attention.c); measured
	 * outside simd/ (it needs the BLAS), GFLOP/s of each (0: not measured
	 * or not there) */
	bool attn_fused;
	double attn_gflops_fused, attn_gflops_blas;
	/* the wide float products: the first set's own (gemm_rows) when
	 * true, else the BLAS (src/matmul.c); GFLOP/s as above */
	bool gemm_own;
	double gemm_gflops_own, gemm_gflops_blas;
} rvk_choice;

/* Measures every usable set but scalar (scalar too when it is the only
 * one) on every choice type and phase and fills c with the speeds and the
 * choice (rvk_choose). budget_ms bounds the time of one measurement (a few
 * ms; 0 for a single pass of each, for tests). false when memory for the
 * streaming buffer is lacking (c then holds the choice by feature). */
bool rvk_calibrate(rvk_choice *c, double budget_ms);

/* Fills c->exact and c->wide from c->gbps: per type, the set with the best
 * score, where the first set by feature keeps its place unless another is
 * RVK_CHOICE_MARGIN faster. Exact: the decode (cache and stream) and batch
 * phases, each as time relative to the first set's, summed; wide: the
 * prefill phase. */
#define RVK_CHOICE_MARGIN 0.05
void rvk_choose(rvk_choice *c);

/* The choice by feature: every type on the first usable set. */
void rvk_choice_default(rvk_choice *c);

/* Builds in *t the table of choice c (names must be usable sets; false
 * with a message otherwise): the first set's table with each type's exact
 * entries from its exact set and wide[type] pointing at its wide set's
 * table. name_buf (name_size bytes) receives the name ("auto: F16
 * avx2+avx512, ..."; a type whose two choices agree is named once) and
 * must live as long as the table. */
bool rvk_compose(rvk_table *t, char *name_buf, size_t name_size, const rvk_choice *c, char *msg,
                 size_t msg_size);

/* Makes c's table the "auto" one of this process, once: the first call
 * builds it (later ones keep the first choice, and return true if theirs
 * agreed) and makes it active if no set was selected before. */
bool rvk_set_auto(const rvk_choice *c, char *msg, size_t msg_size);

/* The choice rvk_set_auto made (false: none yet). */
bool rvk_auto_choice(rvk_choice *c);

/* The table in use without choosing one: NULL before the first rvk_active
 * or rvk_select. */
const rvk_table *rvk_peek(void);

/* Makes t (which must outlive every use) the active table: tests of
 * composed tables. */
void rvk_use(const rvk_table *t);

/* The CPU, as the cache key and the reports name it. */
typedef struct rvk_cpu {
	char vendor[16]; /* "AuthenticAMD", "GenuineIntel", "arm64" ... */
	int family, model;
	char name[64]; /* "AMD EPYC 9B45 ...", or "unknown" */
} rvk_cpu;
void rvk_cpu_info(rvk_cpu *cpu);

/* The kernels' build id: the package version, the sets built in and
 * RVK_KERNELS_REVISION, to be bumped with any change that can change a
 * kernel's speed. A cached choice made under another id is redone. */
#define RVK_KERNELS_REVISION 1
const char *rvk_build_id(void);

#endif
