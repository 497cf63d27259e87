/* test_kernels.c: the kernel tables and the matmul driver against naive
 * double-precision references.
 *
 * - quantize/dequantize round trips of the activation types stay within
 *   their rounding bounds (and the scalar table rounds exactly as ggml);
 * - every vec_dot equals the double dot of the dequantized weights with the
 *   dequantized activations, within a per-type tolerance, over sizes that
 *   include tails;
 * - rvi_matmul matches a naive reference for several batch sizes, gives the
 *   same bits with 1 and 2 threads, and the same bits whatever the batch on
 *   its exact path;
 * - the f32 helpers match double references.
 * Each check runs on the scalar table and, when different, the active one.
 * Outputs are filled with NaN first so a kernel that skips one cannot pass.
 *
 * Tolerances are relative to sum |w_i a_i| (the size of the terms), which is
 * what float rounding scales with; they leave room for SIMD versions that
 * accumulate in float lanes, and a wrong layout or scale breaks them by
 * orders of magnitude. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "simd/kernels.h"
#include "src/matmul.h"
#include "src/tensor.h"
#include "tests/testutil.h"
#include "src/util.h"

/* vec_dot tolerances, relative to sum |w_i a_i|. */
#define TOL_DOT_FLOAT   1e-5 /* F32/F16/BF16 vs f32 activations */
#define TOL_DOT_Q8_0    2e-5 /* Q8_0, Q4_0 vs Q8_0: float sum of per-block terms */
#define TOL_DOT_K       2e-5 /* Q4_K, Q5_K, Q6_K vs Q8_K */
#define TOL_MATMUL_BLAS 1e-5 /* sgemm path (float weights, wide batches) */

/* Round trips, in units of the block's step d. Q8_0 stores d as fp16 but
 * quantizes with the exact d, which adds up to 127 * 2^-11 steps at the
 * block maximum: 0.5 + 0.062 + slack. */
#define Q8_0_ROUNDTRIP_STEPS 0.57
#define Q8_K_ROUNDTRIP_STEPS 0.501

/* f32 helpers: relative per element (rmsnorm, softmax, swiglu), relative to
 * the terms (axpy, dot). */
#define TOL_HELPER_REL 1e-5
#define TOL_AXPY_REL   0x1p-21
#define TOL_DOT_F32    1e-5
/* The norms and activations of the model recipes, against float64 formulas:
 * relative, plus an absolute floor for the activations, whose tails (GELU
 * of -6 is -6e-9) are sums that cancel. rope, rope_neox and add_bias must
 * give the scalar bits on every ISA. */
#define TOL_NORM_REL 1e-5
#define TOL_ACT_REL  1e-5
#define TOL_ACT_ABS  1e-7

static const enum rvi_type weight_types[] = {RVI_TYPE_F32,  RVI_TYPE_F16,  RVI_TYPE_BF16,
                                             RVI_TYPE_Q8_0, RVI_TYPE_Q4_0, RVI_TYPE_Q4_K,
                                             RVI_TYPE_Q5_K, RVI_TYPE_Q6_K};
#define N_WEIGHT_TYPES (sizeof(weight_types) / sizeof(weight_types[0]))

static uint64_t rng = 0x5eed;

static void fill_nan(float *y, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = NAN;
}

static float frand(float lo, float hi)
{
	return tu_rand_uniform(&rng, lo, hi);
}

static uint8_t brand(void)
{
	return (uint8_t)(tu_rand_u64(&rng) >> 24);
}

/* A random fp16 scale in [lo, hi). */
static uint16_t hrand(float lo, float hi)
{
	return rvi_f32_to_f16(frand(lo, hi));
}

/* Activations: uniform with a few larger outliers, as hidden states have. */
static void rand_acts(float *x, int64_t n)
{
	for (int64_t i = 0; i < n; i++) {
		x[i] = frand(-1.0f, 1.0f);
		if (tu_rand_u64(&rng) % 97 == 0)
			x[i] *= 20.0f;
	}
}

/* n_rows random rows of n elements of type t, as a file would hold them. */
static void *rand_weights(enum rvi_type t, int64_t n, int64_t n_rows)
{
	const size_t row = rvi_row_size(t, n);
	uint8_t *p = malloc(row * (size_t)n_rows);
	if (!p)
		return NULL;
	const int64_t nel = n * n_rows;
	switch (t) {
	case RVI_TYPE_F32:
		for (int64_t i = 0; i < nel; i++)
			((float *)p)[i] = frand(-1.0f, 1.0f);
		break;
	case RVI_TYPE_F16:
		for (int64_t i = 0; i < nel; i++)
			((uint16_t *)p)[i] = rvi_f32_to_f16(frand(-1.0f, 1.0f));
		break;
	case RVI_TYPE_BF16:
		for (int64_t i = 0; i < nel; i++) {
			const float f = frand(-1.0f, 1.0f);
			uint32_t u;
			memcpy(&u, &f, sizeof(u));
			((uint16_t *)p)[i] = (uint16_t)(u >> 16);
		}
		break;
	case RVI_TYPE_Q8_0: {
		rv_block_q8_0 *b = (rv_block_q8_0 *)p;
		for (int64_t i = 0; i < nel / 32; i++) {
			b[i].d = hrand(0.001f, 0.02f);
			for (int j = 0; j < 32; j++)
				b[i].qs[j] = (int8_t)brand();
		}
		break;
	}
	case RVI_TYPE_Q4_0: {
		rv_block_q4_0 *b = (rv_block_q4_0 *)p;
		for (int64_t i = 0; i < nel / 32; i++) {
			b[i].d = hrand(0.01f, 0.2f);
			for (int j = 0; j < 16; j++)
				b[i].qs[j] = brand();
		}
		break;
	}
	case RVI_TYPE_Q4_K:
	case RVI_TYPE_Q5_K: {
		/* Same leading fields; Q5_K also has qh. */
		for (int64_t i = 0; i < nel / 256; i++) {
			uint8_t *blk = p + (size_t)i * rvi_type_traits_of(t)->type_size;
			for (size_t j = 0; j < rvi_type_traits_of(t)->type_size; j++)
				blk[j] = brand();
			const uint16_t d = hrand(0.0005f, 0.005f), dmin = hrand(0.0005f, 0.005f);
			memcpy(blk, &d, 2);
			memcpy(blk + 2, &dmin, 2);
		}
		break;
	}
	case RVI_TYPE_Q6_K: {
		rv_block_q6_K *b = (rv_block_q6_K *)p;
		for (int64_t i = 0; i < nel / 256; i++) {
			for (int j = 0; j < 128; j++)
				b[i].ql[j] = brand();
			for (int j = 0; j < 64; j++)
				b[i].qh[j] = brand();
			for (int j = 0; j < 16; j++)
				b[i].scales[j] = (int8_t)brand();
			b[i].d = hrand(0.0001f, 0.001f);
		}
		break;
	}
	default:
		free(p);
		return NULL;
	}
	return p;
}

/* ---- table completeness and dispatch ------------------------------------ */

static void test_table(const rvk_table *k)
{
	CHECK(k->name != NULL, "table without a name");
	for (size_t i = 0; i < N_WEIGHT_TYPES; i++) {
		const enum rvi_type t = weight_types[i];
		const enum rvi_type vdt = rvi_type_traits_of(t)->vec_dot_type;
		CHECK(k->vec_dot[t] != NULL, "%s: no vec_dot for %s", k->name, rvi_type_name(t));
		CHECK(k->dequant[t] != NULL, "%s: no dequant for %s", k->name, rvi_type_name(t));
		if (vdt != RVI_TYPE_F32)
			CHECK(k->quant[vdt] != NULL, "%s: no quant for %s", k->name,
			      rvi_type_name(vdt));
	}
	CHECK(k->rmsnorm && k->softmax && k->swiglu && k->axpy && k->dot_f32 && k->attn_scores &&
	          k->attn_values,
	      "%s: helpers", k->name);
	CHECK(k->layernorm && k->rmsnorm_1p && k->gelu_erf && k->gelu_tanh && k->gelu_quick &&
	          k->silu && k->add_bias && k->rope && k->rope_neox,
	      "%s: recipe kernels", k->name);
}

static void test_dispatch(void)
{
	const rvk_table *first = rvk_active();
	CHECK(first != NULL && first == rvk_active(), "rvk_active is stable");

	char msg[256] = "";
	CHECK(rvk_select("scalar", msg, sizeof(msg)), "select scalar: %s", msg);
	CHECK(!strcmp(rvk_active()->name, "scalar"), "scalar selected");

	/* An ISA this build or CPU may not have: either it is there, or the
	 * message names it. */
	static const char *const others[] = {"avx2", "avx512", "neon", "neon-dotprod"};
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
		memset(msg, 0, sizeof(msg));
		const rvk_table *before = rvk_active();
		if (rvk_select(others[i], msg, sizeof(msg))) {
			CHECK(strcmp(rvk_active()->name, others[i]) == 0, "%s active", others[i]);
			test_table(rvk_active());
		} else {
			char want[64];
			snprintf(want, sizeof(want), "RLAIFV_ISA=%s: this ", others[i]);
			CHECK(strncmp(msg, want, strlen(want)) == 0 && strstr(msg, others[i]),
			      "message '%s'", msg);
			CHECK(rvk_active() == before, "%s refused: the choice stays", others[i]);
		}
	}
	memset(msg, 0, sizeof(msg));
	CHECK(!rvk_select("sse9", msg, sizeof(msg)), "unknown isa");
	CHECK(strstr(msg, "unknown instruction set") != NULL, "message '%s'", msg);
	CHECK(!rvk_select("sse9", NULL, 0), "NULL msg is fine");
	/* a short buffer gets a truncated, terminated message */
	char tiny[8];
	CHECK(!rvk_select("sse9", tiny, sizeof(tiny)) && strlen(tiny) == sizeof(tiny) - 1,
	      "truncated '%s'", tiny);

	/* Back to the best one, then to what was active before. */
	CHECK(rvk_select(NULL, msg, sizeof(msg)) && rvk_select("auto", msg, sizeof(msg)), "auto");
	CHECK(rvk_select(first->name, msg, sizeof(msg)) && rvk_active() == first, "restore %s",
	      first->name);
}

/* The inline fp16 conversion of kernels.h agrees with rvi_f16_to_f32 (which
 * test_dequant checks against the IEEE definition) on every input. */
static void test_f16_inline(void)
{
	int bad = 0;
	for (uint32_t h = 0; h < 65536; h++) {
		const float a = rvk_f16_to_f32((uint16_t)h), b = rvi_f16_to_f32((uint16_t)h);
		bad += memcmp(&a, &b, sizeof(a)) != 0; /* nan payloads too */
	}
	CHECK(bad == 0, "rvk_f16_to_f32 differs from rvi_f16_to_f32 on %d inputs", bad);
}

/* ---- quantization round trips ------------------------------------------- */

static void test_quant_q8_0(const rvk_table *k)
{
	enum { N = 4096 };
	static float x[N], y[N];
	static rv_block_q8_0 q[N / 32];
	rand_acts(x, N);
	/* Vary the block magnitudes; block 3 all zero; block 5 one outlier. */
	for (int b = 0; b < N / 32; b++)
		for (int j = 0; j < 32; j++)
			x[32 * b + j] *= ldexpf(1.0f, (b % 13) - 6);
	memset(x + 3 * 32, 0, 32 * sizeof(float));
	x[5 * 32 + 7] = -1000.0f;

	k->quant[RVI_TYPE_Q8_0](x, q, N);
	fill_nan(y, N);
	rvk_scalar_table.dequant[RVI_TYPE_Q8_0](q, y, N);
	int bad = 0, bad_max = 0;
	for (int b = 0; b < N / 32; b++) {
		float amax = 0.0f;
		int jmax = 0;
		for (int j = 0; j < 32; j++) {
			if (fabsf(x[32 * b + j]) > amax) {
				amax = fabsf(x[32 * b + j]);
				jmax = j;
			}
		}
		const double step = amax / 127.0;
		for (int j = 0; j < 32; j++)
			bad += !(fabs((double)x[32 * b + j] - y[32 * b + j]) <=
			         Q8_0_ROUNDTRIP_STEPS * step);
		/* the largest magnitude maps to +-127 (0 for an all-zero block) */
		bad_max += amax > 0 ? abs(q[b].qs[jmax]) != 127 : (q[b].d != 0 || q[b].qs[0] != 0);
	}
	CHECK(bad == 0, "%s Q8_0 round trip: %d values off by more than %.2f steps", k->name, bad,
	      Q8_0_ROUNDTRIP_STEPS);
	CHECK(bad_max == 0, "%s Q8_0: %d blocks without +-127 at the max", k->name, bad_max);
}

static void test_quant_q8_K(const rvk_table *k)
{
	enum { N = 2048 };
	static float x[N], y[N];
	static rv_block_q8_K q[N / 256];
	rand_acts(x, N);
	for (int b = 0; b < N / 256; b++)
		for (int j = 0; j < 256; j++)
			x[256 * b + j] *= ldexpf(1.0f, 3 * b - 9);
	memset(x + 2 * 256, 0, 256 * sizeof(float)); /* an all-zero block */
	x[5 * 256 + 100] = 1e6f;                     /* positive max: d < 0 */
	x[6 * 256 + 3] = -1e6f;                      /* negative max: d > 0 */

	k->quant[RVI_TYPE_Q8_K](x, q, N);
	fill_nan(y, N);
	rvk_scalar_table.dequant[RVI_TYPE_Q8_K](q, y, N);
	int bad = 0, bad_sums = 0;
	for (int b = 0; b < N / 256; b++) {
		for (int j = 0; j < 256; j++)
			bad += !(fabs((double)x[256 * b + j] - y[256 * b + j]) <=
			         Q8_K_ROUNDTRIP_STEPS * fabs(q[b].d));
		for (int s = 0; s < 16; s++) {
			int sum = 0;
			for (int j = 0; j < 16; j++)
				sum += q[b].qs[16 * s + j];
			bad_sums += sum != q[b].bsums[s];
		}
	}
	CHECK(bad == 0, "%s Q8_K round trip: %d values off", k->name, bad);
	CHECK(bad_sums == 0, "%s Q8_K: %d wrong bsums", k->name, bad_sums);
	/* ggml's sign convention: the largest magnitude becomes -127. */
	CHECK(q[5].qs[100] == -127 && q[5].d < 0, "%s Q8_K positive max: %d, d %g", k->name,
	      q[5].qs[100], (double)q[5].d);
	CHECK(q[6].qs[3] == -127 && q[6].d > 0, "%s Q8_K negative max: %d, d %g", k->name,
	      q[6].qs[3], (double)q[6].d);
	CHECK(q[2].d == 0.0f && q[2].qs[0] == 0 && q[2].bsums[0] == 0, "%s Q8_K zero block",
	      k->name);
}

/* The reference rounding: Q8_0 and Q8_K both round ties to even (what
 * llama.cpp's x86 kernels do), and every ISA must do the same. */
static void test_quant_ties(const rvk_table *k)
{
	float x[256] = {0};
	rv_block_q8_0 q0;
	x[0] = 127.0f; /* d = 1 exactly */
	x[1] = 0.5f;
	x[2] = 1.5f;
	x[3] = 2.5f;
	x[4] = -2.5f;
	k->quant[RVI_TYPE_Q8_0](x, &q0, 32);
	CHECK(q0.d == 0x3c00 && q0.qs[0] == 127, "Q8_0 d 0x%04x", q0.d);
	CHECK(q0.qs[1] == 0 && q0.qs[2] == 2 && q0.qs[3] == 2 && q0.qs[4] == -2,
	      "Q8_0 ties to even: %d %d %d %d", q0.qs[1], q0.qs[2], q0.qs[3], q0.qs[4]);

	rv_block_q8_K qk;
	x[0] = -127.0f; /* iscale = 1 */
	k->quant[RVI_TYPE_Q8_K](x, &qk, 256);
	CHECK(qk.d == 1.0f && qk.qs[0] == -127, "Q8_K d %g", (double)qk.d);
	CHECK(qk.qs[1] == 0 && qk.qs[2] == 2 && qk.qs[3] == 2 && qk.qs[4] == -2,
	      "Q8_K ties to even: %d %d %d %d", qk.qs[1], qk.qs[2], qk.qs[3], qk.qs[4]);
}

/* ---- vec_dot ------------------------------------------------------------ */

/* The dot of weight row w (type t, n elements) with activations x as the
 * kernels see them: x quantized to the vec_dot_type when that is not f32.
 * Fills act (the kernel's input) and returns the double reference and the
 * size of its terms. */
static double ref_dot(const rvk_table *k, enum rvi_type t, const void *w, const float *x, int64_t n,
                      void *act, double *terms)
{
	const enum rvi_type vdt = rvi_type_traits_of(t)->vec_dot_type;
	float *wf = malloc((size_t)n * sizeof(float));
	float *af = malloc((size_t)n * sizeof(float));
	double s = 0.0, sa = 0.0;
	if (!wf || !af) {
		free(wf);
		free(af);
		*terms = 0;
		return NAN;
	}
	rvk_scalar_table.dequant[t](w, wf, n);
	if (vdt == RVI_TYPE_F32) {
		memcpy(act, x, (size_t)n * sizeof(float));
		memcpy(af, x, (size_t)n * sizeof(float));
	} else {
		k->quant[vdt](x, act, n);
		rvk_scalar_table.dequant[vdt](act, af, n);
	}
	for (int64_t i = 0; i < n; i++) {
		s += (double)wf[i] * af[i];
		sa += fabs((double)wf[i] * af[i]);
	}
	free(wf);
	free(af);
	*terms = sa;
	return s;
}

static double dot_tolerance(enum rvi_type t)
{
	switch (t) {
	case RVI_TYPE_F32:
	case RVI_TYPE_F16:
	case RVI_TYPE_BF16:
		return TOL_DOT_FLOAT;
	case RVI_TYPE_Q8_0:
	case RVI_TYPE_Q4_0:
		return TOL_DOT_Q8_0;
	default:
		return TOL_DOT_K;
	}
}

static void test_vec_dot(const rvk_table *k)
{
	static const int64_t n_float[] = {1, 31, 32, 33, 255, 257, 1000, 4096};
	static const int64_t n_q32[] = {32, 64, 96, 160, 1024, 4096};
	static const int64_t n_qk[] = {256, 512, 768, 2048};

	for (size_t it = 0; it < N_WEIGHT_TYPES; it++) {
		const enum rvi_type t = weight_types[it];
		const int64_t bs = rvi_type_traits_of(t)->block_size;
		const int64_t *sizes = bs == 1 ? n_float : bs == 32 ? n_q32 : n_qk;
		const size_t n_sizes = bs == 1    ? sizeof(n_float) / sizeof(n_float[0])
		                       : bs == 32 ? sizeof(n_q32) / sizeof(n_q32[0])
		                                  : sizeof(n_qk) / sizeof(n_qk[0]);
		double worst = 0.0;
		for (size_t is = 0; is < n_sizes; is++) {
			const int64_t n = sizes[is];
			for (int rep = 0; rep < 4; rep++) {
				void *w = rand_weights(t, n, 1);
				float *x = malloc((size_t)n * sizeof(float));
				void *act = malloc((size_t)n * sizeof(float) + 64);
				if (!w || !x || !act) {
					CHECK(false, "oom");
					free(w);
					free(x);
					free(act);
					return;
				}
				rand_acts(x, n);
				double terms;
				const double want = ref_dot(k, t, w, x, n, act, &terms);
				float got = NAN;
				k->vec_dot[t](n, &got, w, act);
				const double err = fabs((double)got - want);
				const double rel = terms > 0 ? err / terms : err;
				if (rel > worst)
					worst = rel;
				CHECK(err <= dot_tolerance(t) * terms,
				      "%s %s n=%lld: %.9g, want %.9g", k->name, rvi_type_name(t),
				      (long long)n, (double)got, want);
				free(w);
				free(x);
				free(act);
			}
		}
		if (getenv("RLAIFV_TEST_VERBOSE"))
			printf("%s vec_dot %-5s worst relative error %.3g (tolerance %.1g)\n",
			       k->name, rvi_type_name(t), worst, dot_tolerance(t));
	}
}

/* ---- exactness against the scalar table ---------------------------------- */

/* What an ISA must reproduce bit for bit: the quantized activations (so a
 * model sees the same inputs whatever the CPU), dequantized weights, and
 * vec_dot_rows per row against its own vec_dot (so a row's result does not
 * depend on how many rows share a batched step). */
static void test_exact(const rvk_table *k)
{
	enum { N = 2048 + 256, MAX_ROWS = 9 };
	static float x[MAX_ROWS * N], y0[N], y1[N];
	static const enum rvi_type act_types[] = {RVI_TYPE_Q8_0, RVI_TYPE_Q8_K};
	for (size_t i = 0; i < 2; i++) {
		const enum rvi_type at = act_types[i];
		const size_t bytes = rvi_row_size(at, N);
		char *qa = malloc(bytes), *qb = malloc(bytes);
		int diff = 0;
		for (int rep = 0; rep < 20 && qa && qb; rep++) {
			rand_acts(x, N);
			for (int j = 0; j < N; j += 97)
				x[j] *= (float)(1 + rep); /* outliers of several sizes */
			if (rep == 1)
				memset(x, 0, 256 * sizeof(float)); /* all-zero blocks */
			if (rep == 2) { /* non-finite and denormal inputs are defined too */
				x[5] = NAN;
				x[300] = INFINITY;
				x[600] = -INFINITY;
				for (int j = 1024; j < 1024 + 256; j++)
					x[j] = 1e-42f * (float)(j % 7 - 3);
			}
			memset(qa, 0x55, bytes);
			memset(qb, 0xAA, bytes);
			rvk_scalar_table.quant[at](x, qa, N);
			k->quant[at](x, qb, N);
			diff += memcmp(qa, qb, bytes) != 0;
		}
		CHECK(qa && qb && diff == 0, "%s: quant %s differs from scalar in %d of 20 rows",
		      k->name, rvi_type_name(at), diff);
		free(qa);
		free(qb);
	}

	for (size_t it = 0; it < N_WEIGHT_TYPES; it++) {
		const enum rvi_type t = weight_types[it];
		const int64_t bs = rvi_type_traits_of(t)->block_size;
		const int64_t n = bs == 1 ? N - 3 : N; /* a tail for the float types */
		void *w = rand_weights(t, n, 1);
		if (!w)
			continue;
		fill_nan(y0, n);
		fill_nan(y1, n);
		rvk_scalar_table.dequant[t](w, y0, n);
		k->dequant[t](w, y1, n);
		CHECK(!memcmp(y0, y1, (size_t)n * sizeof(float)),
		      "%s: dequant %s differs from scalar", k->name, rvi_type_name(t));

		const enum rvi_type vdt = rvi_type_traits_of(t)->vec_dot_type;
		const size_t a_row =
		    vdt == RVI_TYPE_F32 ? (size_t)n * sizeof(float) : rvi_row_size(vdt, n);
		char *acts = malloc(a_row * MAX_ROWS);
		rand_acts(x, n * MAX_ROWS);
		for (int r = 0; r < MAX_ROWS && acts; r++) {
			if (vdt == RVI_TYPE_F32)
				memcpy(acts + r * a_row, x + r * n, a_row);
			else
				k->quant[vdt](x + r * n, acts + r * a_row, n);
		}
		float single[MAX_ROWS], batched[2 * MAX_ROWS];
		for (int r = 0; r < MAX_ROWS && acts; r++)
			k->vec_dot[t](n, &single[r], w, acts + r * a_row);
		for (int nrows = 1; nrows <= MAX_ROWS && acts && k->vec_dot_rows[t]; nrows++) {
			for (int r = 0; r < 2 * MAX_ROWS; r++)
				batched[r] = NAN;
			/* stride 2: results go to every other slot */
			k->vec_dot_rows[t](n, batched, 2, w, acts, a_row, nrows);
			int bad = 0;
			for (int r = 0; r < nrows; r++)
				bad += memcmp(&batched[2 * r], &single[r], sizeof(float)) != 0;
			for (int r = 0; r < nrows; r++)
				bad += !isnan(batched[2 * r + 1]); /* nothing between */
			CHECK(bad == 0, "%s: vec_dot_rows %s with %d rows differs from vec_dot",
			      k->name, rvi_type_name(t), nrows);
		}
		free(acts);
		free(w);
	}
}

/* ---- prepared activations (vec_dot_prep) ---------------------------------- */

/* For each weight type with the prepared path: every result within vec_dot's
 * tolerance of the double reference, for block counts odd and even; and each
 * result of an n_w x n_a call bit-identical to the same pair computed alone
 * (the grouping must not change a row's result). */
static void test_vec_dot_prep(const rvk_table *k)
{
	enum { NW = 9, NA = 7 };
	static const int64_t sizes[] = {32, 64, 96, 160, 1056, 4128}; /* x 8 for K-quants */
	static const int64_t float_sizes[] = {1, 15, 17, 100, 1000, 4095};
	for (size_t it = 0; it < N_WEIGHT_TYPES; it++) {
		const enum rvi_type t = weight_types[it];
		if (!k->vec_dot_prep[t])
			continue;
		CHECK(k->prep[t] && k->prep_size[t], "%s %s: prep without prep or prep_size",
		      k->name, rvi_type_name(t));
		const enum rvi_type vdt = rvi_type_traits_of(t)->vec_dot_type;
		for (size_t is = 0; is < sizeof(sizes) / sizeof(sizes[0]); is++) {
			const int64_t bs = rvi_type_traits_of(t)->block_size;
			const int64_t n =
			    bs == 1 ? float_sizes[is] : sizes[is] * (bs == 256 ? 8 : 1);
			const size_t w_row = rvi_row_size(t, n);
			const size_t a_row =
			    vdt == RVI_TYPE_F32 ? (size_t)n * sizeof(float) : rvi_row_size(vdt, n);
			const size_t p_row = (k->prep_size[t](n) + 63) / 64 * 64;
			char *w = rand_weights(t, n, NW);
			float *x = malloc((size_t)n * NA * sizeof(float));
			char *act = malloc(a_row * NA), *p = aligned_alloc(64, p_row * NA);
			float y[NW * NA], one;
			if (!w || !x || !act || !p) {
				CHECK(false, "oom");
				free(w), free(x), free(act), free(p);
				return;
			}
			CHECK(k->prep_size[t](n) % 64 == 0,
			      "%s %s: prep_size(%lld) not a multiple of 64", k->name,
			      rvi_type_name(t), (long long)n);
			rand_acts(x, n * NA);
			for (int j = 0; j < NA; j++) {
				/* prep must write all it reads */
				memset(p + j * p_row, 0xA5, p_row);
				double terms; /* this also makes act row j */
				(void)ref_dot(k, t, w, x + j * n, n, act + j * a_row, &terms);
				k->prep[t](n, act + j * a_row, p + j * p_row);
			}
			for (int i = 0; i < NW * NA; i++)
				y[i] = NAN;
			k->vec_dot_prep[t](n, y, NW, w, w_row, NW, p, p_row, NA);
			int far = 0, differs = 0;
			for (int j = 0; j < NA; j++)
				for (int i = 0; i < NW; i++) {
					double terms;
					const double r = ref_dot(k, t, w + i * w_row, x + j * n, n,
					                         act + j * a_row, &terms);
					far +=
					    !(fabs(y[j * NW + i] - r) <= dot_tolerance(t) * terms);
					one = NAN;
					k->vec_dot_prep[t](n, &one, 1, w + i * w_row, w_row, 1,
					                   p + j * p_row, p_row, 1);
					differs += memcmp(&one, &y[j * NW + i], sizeof(float)) != 0;
				}
			/* fewer activation rows take other tiles (decoding's) */
			for (int na = 1; na < 4; na++) {
				float yn[NW * 3];
				k->vec_dot_prep[t](n, yn, NW, w, w_row, NW, p, p_row, na);
				differs += memcmp(yn, y, sizeof(float) * NW * (size_t)na) != 0;
			}
			CHECK(far == 0,
			      "%s vec_dot_prep %s n=%lld: %d of %d results off the reference",
			      k->name, rvi_type_name(t), (long long)n, far, NW * NA);
			CHECK(differs == 0,
			      "%s vec_dot_prep %s n=%lld: %d results change with the grouping",
			      k->name, rvi_type_name(t), (long long)n, differs);
			free(w), free(x), free(act), free(p);
		}
	}
}

/* ---- matmul ------------------------------------------------------------- */

/* rvi_matmul_shared gives each weight what rvi_matmul_ex gives it alone:
 * runs of one type (converted once, rows split together), a type between
 * them, row counts that end inside a block of rows, widths of batch. */
static void test_matmul_shared(void)
{
	enum { N_IN = 1024, N_W = 5, MAX_TOK = 40 };
	static const enum rvi_type types[N_W] = {RVI_TYPE_Q4_0, RVI_TYPE_Q4_0, RVI_TYPE_Q8_0,
	                                         RVI_TYPE_Q4_0, RVI_TYPE_F32};
	static const int64_t n_out[N_W] = {100, 37, 64, 5, 3};
	static const int64_t toks[] = {1, 3, 8, 40};
	rvi_weight W[N_W];
	const rvi_weight *wp[N_W];
	void *wdata[N_W];
	float *y[N_W], *y_alone[N_W];
	float *x = malloc(sizeof(float) * N_IN * MAX_TOK);
	rvi_buf scratch = {0};
	bool ok = x != NULL;
	for (int i = 0; i < N_W; i++) {
		wdata[i] = rand_weights(types[i], N_IN, n_out[i]);
		W[i] = (rvi_weight){
		    .type = types[i], .n_in = N_IN, .n_out = n_out[i], .data = wdata[i]};
		wp[i] = &W[i];
		y[i] = malloc(sizeof(float) * (size_t)(n_out[i] * MAX_TOK));
		y_alone[i] = malloc(sizeof(float) * (size_t)(n_out[i] * MAX_TOK));
		ok = ok && wdata[i] && y[i] && y_alone[i];
	}
	if (!ok) {
		CHECK(false, "oom");
		goto out;
	}
	rand_acts(x, N_IN * MAX_TOK);
	for (size_t it = 0; it < sizeof(toks) / sizeof(toks[0]); it++) {
		for (int exact = 0; exact < 2; exact++) {
			const int64_t n_tok = toks[it];
			int differ = 0;
			for (int i = 0; i < N_W; i++) {
				fill_nan(y[i], n_out[i] * MAX_TOK);
				fill_nan(y_alone[i], n_out[i] * MAX_TOK);
				CHECK(rvi_matmul_ex(&W[i], x, n_tok, y_alone[i], 2, &scratch,
				                    exact) == RV_OK,
				      "matmul alone");
			}
			CHECK(rvi_matmul_shared(wp, y, N_W, x, n_tok, 2, &scratch, exact) == RV_OK,
			      "matmul_shared");
			for (int i = 0; i < N_W; i++)
				differ += memcmp(y[i], y_alone[i],
				                 sizeof(float) * (size_t)(n_out[i] * MAX_TOK)) != 0;
			CHECK(differ == 0,
			      "matmul_shared n_tok=%lld exact=%d: %d of %d outputs differ",
			      (long long)n_tok, exact, differ, N_W);
		}
	}
	/* a weight of another width is refused */
	W[1].n_in = N_IN / 2;
	CHECK(rvi_matmul_shared(wp, y, N_W, x, 1, 2, &scratch, true) == RV_ERR_INVALID_ARG,
	      "matmul_shared accepted weights of different widths");
	W[1].n_in = N_IN;
out:
	rvi_buf_free(&scratch);
	for (int i = 0; i < N_W; i++) {
		free(wdata[i]);
		free(y[i]);
		free(y_alone[i]);
	}
	free(x);
}

static void test_matmul_type(enum rvi_type t)
{
	enum { N_IN = 1024, N_OUT = 37, MAX_TOK = 40 };
	static const int64_t toks[] = {1, 3, 17, 40};
	const rvk_table *k = rvk_active();
	const enum rvi_type vdt = rvi_type_traits_of(t)->vec_dot_type;
	void *wdata = rand_weights(t, N_IN, N_OUT);
	float *x = malloc(sizeof(float) * N_IN * MAX_TOK);
	float *y1 = malloc(sizeof(float) * N_OUT * MAX_TOK);
	float *y2 = malloc(sizeof(float) * N_OUT * MAX_TOK);
	float *y_one = malloc(sizeof(float) * N_OUT);
	float *wf = malloc(sizeof(float) * N_IN * N_OUT);
	float *af = malloc(sizeof(float) * N_IN);
	void *act = malloc(sizeof(float) * N_IN);
	rvi_buf scratch = {0};
	if (!wdata || !x || !y1 || !y2 || !y_one || !wf || !af || !act) {
		CHECK(false, "oom");
		goto out;
	}
	const rvi_weight W = {.type = t, .n_in = N_IN, .n_out = N_OUT, .data = wdata};
	for (int64_t r = 0; r < N_OUT; r++)
		rvk_scalar_table.dequant[t]((const char *)wdata + r * rvi_row_size(t, N_IN),
		                            wf + r * N_IN, N_IN);
	rand_acts(x, N_IN * MAX_TOK);

	for (size_t it = 0; it < sizeof(toks) / sizeof(toks[0]); it++) {
		const int64_t n_tok = toks[it];
		const bool exact = n_tok <= RVI_MATMUL_EXACT_BATCH || vdt != RVI_TYPE_F32;
		fill_nan(y1, N_OUT * MAX_TOK);
		fill_nan(y2, N_OUT * MAX_TOK);
		CHECK(rvi_matmul(&W, x, n_tok, y1, 1, &scratch) == RV_OK, "matmul");
		CHECK(rvi_matmul(&W, x, n_tok, y2, 2, &scratch) == RV_OK, "matmul 2 threads");

		int bad = 0, bad_batch = 0;
		double worst = 0.0;
		for (int64_t tk = 0; tk < n_tok; tk++) {
			const float *xt = x + tk * N_IN;
			if (vdt == RVI_TYPE_F32) {
				memcpy(af, xt, sizeof(float) * N_IN);
			} else {
				k->quant[vdt](xt, act, N_IN);
				rvk_scalar_table.dequant[vdt](act, af, N_IN);
			}
			for (int64_t r = 0; r < N_OUT; r++) {
				double s = 0, sa = 0;
				for (int64_t i = 0; i < N_IN; i++) {
					s += (double)wf[r * N_IN + i] * af[i];
					sa += fabs((double)wf[r * N_IN + i] * af[i]);
				}
				const double tol =
				    (exact ? dot_tolerance(t) : TOL_MATMUL_BLAS) * sa;
				const double err = fabs((double)y1[tk * N_OUT + r] - s);
				bad += !(err <= tol);
				worst = fmax(worst, err / sa);
			}
			/* On the exact path every row equals a call with that token
			 * alone: nothing depends on the batch. */
			if (exact) {
				fill_nan(y_one, N_OUT);
				rvi_matmul(&W, xt, 1, y_one, 2, &scratch);
				bad_batch +=
				    memcmp(y_one, y1 + tk * N_OUT, sizeof(float) * N_OUT) != 0;
			}
		}
		CHECK(bad == 0, "matmul %s n_tok=%lld: %d outputs off (worst rel %.3g)",
		      rvi_type_name(t), (long long)n_tok, bad, worst);
		CHECK(bad_batch == 0, "matmul %s n_tok=%lld: %d rows depend on the batch",
		      rvi_type_name(t), (long long)n_tok, bad_batch);
		if (exact)
			CHECK(memcmp(y1, y2, sizeof(float) * N_OUT * (size_t)n_tok) == 0,
			      "matmul %s n_tok=%lld: 1 and 2 threads differ", rvi_type_name(t),
			      (long long)n_tok);
		/* nothing written past the n_tok rows */
		if (n_tok < MAX_TOK)
			CHECK(isnan(y1[N_OUT * n_tok]) && isnan(y2[N_OUT * n_tok]),
			      "matmul %s n_tok=%lld wrote past its output", rvi_type_name(t),
			      (long long)n_tok);
	}

	/* rvi_weight_row is the dequantized row. */
	float row[N_IN];
	fill_nan(row, N_IN);
	rvi_weight_row(&W, 5, row);
	CHECK(memcmp(row, wf + 5 * N_IN, sizeof(row)) == 0, "weight_row %s", rvi_type_name(t));

out:
	rvi_buf_free(&scratch);
	free(wdata);
	free(x);
	free(y1);
	free(y2);
	free(y_one);
	free(wf);
	free(af);
	free(act);
}

/* F16/BF16 weights on the BLAS path are dequantized a chunk of rows at a
 * time (8 MiB of f32): rows this long make 37 rows take two chunks. */
static void test_matmul_chunked(enum rvi_type t)
{
	enum { N_IN = 65536, N_OUT = 37, N_TOK = 17 };
	void *wdata = rand_weights(t, N_IN, N_OUT);
	float *x = malloc(sizeof(float) * N_IN * N_TOK);
	float *y = malloc(sizeof(float) * N_OUT * N_TOK);
	float *wf = malloc(sizeof(float) * N_IN);
	rvi_buf scratch = {0};
	if (!wdata || !x || !y || !wf) {
		CHECK(false, "oom");
		goto out;
	}
	const rvi_weight W = {.type = t, .n_in = N_IN, .n_out = N_OUT, .data = wdata};
	rand_acts(x, (int64_t)N_IN * N_TOK);
	fill_nan(y, N_OUT * N_TOK);
	CHECK(rvi_matmul(&W, x, N_TOK, y, 2, &scratch) == RV_OK, "chunked matmul");
	int bad = 0;
	for (int64_t r = 0; r < N_OUT; r++) {
		rvk_scalar_table.dequant[t]((const char *)wdata + r * rvi_row_size(t, N_IN), wf,
		                            N_IN);
		for (int64_t tk = 0; tk < N_TOK; tk++) {
			double s = 0, sa = 0;
			for (int64_t i = 0; i < N_IN; i++) {
				s += (double)wf[i] * x[tk * N_IN + i];
				sa += fabs((double)wf[i] * x[tk * N_IN + i]);
			}
			bad += !(fabs(y[tk * N_OUT + r] - s) <= TOL_MATMUL_BLAS * sa);
		}
	}
	CHECK(bad == 0, "chunked matmul %s: %d outputs off", rvi_type_name(t), bad);
out:
	rvi_buf_free(&scratch);
	free(wdata);
	free(x);
	free(y);
	free(wf);
}

static void test_matmul(void)
{
	for (size_t i = 0; i < N_WEIGHT_TYPES; i++)
		test_matmul_type(weight_types[i]);
	test_matmul_chunked(RVI_TYPE_F16);
	test_matmul_chunked(RVI_TYPE_BF16);
	test_matmul_shared();

	/* Misuse is reported, not computed. */
	float x[512] = {0}, y[4];
	rvi_buf scratch = {0};
	const rvi_weight q2k = {.type = (enum rvi_type)10, .n_in = 256, .n_out = 1, .data = x};
	CHECK(rvi_matmul(&q2k, x, 1, y, 1, &scratch) == RV_ERR_INVALID_ARG, "Q2_K weights");
	const rvi_weight odd = {.type = RVI_TYPE_Q8_0, .n_in = 40, .n_out = 1, .data = x};
	CHECK(rvi_matmul(&odd, x, 1, y, 1, &scratch) == RV_ERR_INVALID_ARG, "n_in %% 32");
	const rvi_weight f = {.type = RVI_TYPE_F32, .n_in = 4, .n_out = 1, .data = x};
	CHECK(rvi_matmul(&f, x, 0, y, 1, &scratch) == RV_OK, "no tokens");
	rvi_buf_free(&scratch);

	/* rvi_buf_reserve: aligned, grows, keeps a large enough buffer. */
	void *p = rvi_buf_reserve(&scratch, 100);
	CHECK(p != NULL && (uintptr_t)p % 64 == 0 && scratch.size >= 100, "reserve 100");
	CHECK(rvi_buf_reserve(&scratch, 50) == p, "reserve smaller keeps the buffer");
	void *q = rvi_buf_reserve(&scratch, 100000);
	CHECK(q != NULL && (uintptr_t)q % 64 == 0 && scratch.size >= 100000, "reserve 100000");
	if (q)
		memset(q, 1, 100000);
	CHECK(rvi_buf_reserve(&scratch, SIZE_MAX) == NULL && scratch.ptr == q, "huge fails");
	rvi_buf_free(&scratch);
	CHECK(scratch.ptr == NULL && scratch.size == 0, "free");
}

/* ---- f32 helpers -------------------------------------------------------- */

static bool close_rel(double got, double want, double rel)
{
	return fabs(got - want) <= rel * fabs(want) + 1e-30;
}

static void test_helpers(const rvk_table *k)
{
	static const int64_t sizes[] = {1, 7, 31, 257, 4096};
	for (size_t is = 0; is < sizeof(sizes) / sizeof(sizes[0]); is++) {
		const int64_t n = sizes[is];
		float *x = malloc(sizeof(float) * (size_t)n),
		      *w = malloc(sizeof(float) * (size_t)n);
		float *o = malloc(sizeof(float) * (size_t)n),
		      *u = malloc(sizeof(float) * (size_t)n);
		if (!x || !w || !o || !u) {
			CHECK(false, "oom");
			free(x);
			free(w);
			free(o);
			free(u);
			return;
		}
		rand_acts(x, n);
		for (int64_t i = 0; i < n; i++) {
			w[i] = frand(0.5f, 1.5f);
			u[i] = frand(-2.0f, 2.0f);
		}
		int bad = 0;

		/* rmsnorm */
		const float eps = 1e-5f;
		double ss = 0;
		for (int64_t i = 0; i < n; i++)
			ss += (double)x[i] * x[i];
		const double scale = 1.0 / sqrt(ss / (double)n + eps);
		fill_nan(o, n);
		k->rmsnorm(o, x, w, n, eps);
		for (int64_t i = 0; i < n; i++)
			bad += !close_rel(o[i], x[i] * scale * w[i], TOL_HELPER_REL);
		CHECK(bad == 0, "%s rmsnorm n=%lld: %d off", k->name, (long long)n, bad);

		/* softmax, with some masked (-inf) entries when n > 1 */
		bad = 0;
		for (int64_t i = 0; i < n; i++)
			o[i] = x[i] * 8.0f;
		if (n > 1)
			o[n / 2] = -INFINITY;
		double mx = -INFINITY, sum = 0;
		for (int64_t i = 0; i < n; i++)
			mx = fmax(mx, o[i]);
		double *e = malloc(sizeof(double) * (size_t)n);
		if (!e) {
			CHECK(false, "oom");
			free(x);
			free(w);
			free(o);
			free(u);
			return;
		}
		for (int64_t i = 0; i < n; i++) {
			e[i] = exp((double)o[i] - mx);
			sum += e[i];
		}
#if defined(__x86_64__) || defined(__i386__)
		const unsigned int csr = _mm_getcsr();
		k->softmax(o, n);
		/* a kernel that flushes subnormals must leave the mode as it was */
		CHECK(_mm_getcsr() == csr, "%s softmax changed MXCSR %#x -> %#x", k->name, csr,
		      _mm_getcsr());
#else
		k->softmax(o, n);
#endif
		double total = 0;
		for (int64_t i = 0; i < n; i++) {
			bad += !close_rel(o[i], e[i] / sum, TOL_HELPER_REL);
			total += o[i];
		}
		CHECK(bad == 0, "%s softmax n=%lld: %d off", k->name, (long long)n, bad);
		CHECK(fabs(total - 1.0) <= 1e-5, "%s softmax n=%lld sums to %.9g", k->name,
		      (long long)n, total);
		if (n > 1)
			CHECK(o[n / 2] == 0.0f, "%s softmax: masked entry %g", k->name,
			      (double)o[n / 2]);
		free(e);

		/* softmax of a wide range: what would be subnormal is 0, and
		 * the rest as before */
		bad = 0;
		for (int64_t i = 0; i < n; i++)
			o[i] = -3.0f * (float)(i % 40);
		k->softmax(o, n);
		double z = 0;
		for (int64_t j = 0; j < n; j++)
			z += exp(-3.0 * (double)(j % 40));
		for (int64_t i = 0; i < n; i++) {
			const double want = exp(-3.0 * (double)(i % 40)) / z;
			bad += want < FLT_MIN * 0.99 ? o[i] != 0.0f
			                             : !(want < FLT_MIN * 1.01 ||
			                                 close_rel(o[i], want, TOL_HELPER_REL));
		}
		CHECK(bad == 0, "%s softmax of a wide range n=%lld: %d off", k->name, (long long)n,
		      bad);

		/* swiglu, including gates far out in both tails */
		bad = 0;
		for (int64_t i = 0; i < n; i++)
			o[i] = x[i] * 4.0f;
		if (n > 2) {
			o[0] = -100.0f;
			o[1] = 100.0f;
		}
		float *g0 = malloc(sizeof(float) * (size_t)n);
		if (!g0) {
			CHECK(false, "oom");
			free(x);
			free(w);
			free(o);
			free(u);
			return;
		}
		memcpy(g0, o, sizeof(float) * (size_t)n);
		k->swiglu(o, u, n);
		for (int64_t i = 0; i < n; i++) {
			const double g = g0[i];
			bad += !close_rel(o[i], g / (1.0 + exp(-g)) * u[i], TOL_HELPER_REL);
		}
		CHECK(bad == 0, "%s swiglu n=%lld: %d off", k->name, (long long)n, bad);
		free(g0);

		/* axpy */
		bad = 0;
		for (int64_t i = 0; i < n; i++)
			o[i] = w[i];
		k->axpy(o, -0.75f, x, n);
		for (int64_t i = 0; i < n; i++) {
			const double want = (double)w[i] - 0.75 * x[i];
			bad +=
			    !(fabs(o[i] - want) <= TOL_AXPY_REL * (fabs(w[i]) + fabs(0.75 * x[i])));
		}
		CHECK(bad == 0, "%s axpy n=%lld: %d off", k->name, (long long)n, bad);

		/* dot_f32 */
		double d = 0, da = 0;
		for (int64_t i = 0; i < n; i++) {
			d += (double)x[i] * u[i];
			da += fabs((double)x[i] * u[i]);
		}
		const float got = k->dot_f32(x, u, n);
		CHECK(fabs(got - d) <= TOL_DOT_F32 * da, "%s dot_f32 n=%lld: %.9g, want %.9g",
		      k->name, (long long)n, (double)got, d);

		free(x);
		free(w);
		free(o);
		free(u);
	}
}

/* attn_scores and attn_values against double sums, over row counts around
 * the 16-row groups and the blocks, head sizes in and out of the fast
 * paths, strided rows; values add to what out held. Then NQ queries in one
 * call: each the same bits as alone. */
/* Compares got (n) with want (n): the count off by more than rel * |want| +
 * abs, or not bit-equal to same when given (the scalar results). */
static int count_off(const float *got, const double *want, const float *same, int64_t n, double rel,
                     double abs)
{
	int bad = 0;
	for (int64_t i = 0; i < n; i++) {
		bad += !(fabs(got[i] - want[i]) <= rel * fabs(want[i]) + abs);
		bad += same && memcmp(&got[i], &same[i], sizeof(float)) != 0;
	}
	return bad;
}

/* layernorm, rmsnorm_1p, the activations and add_bias of table k against
 * float64 formulas, on random rows of odd sizes, outputs first NaN. */
static void test_recipe_kernels(const rvk_table *k)
{
	static const int64_t sizes[] = {1, 7, 15, 16, 17, 31, 33, 100, 255, 257, 1025};
	for (size_t is = 0; is < sizeof(sizes) / sizeof(sizes[0]); is++) {
		const int64_t n = sizes[is];
		float *x = malloc(sizeof(float) * (size_t)n * 3), *w = x + n, *b = x + 2 * n;
		float *o = malloc(sizeof(float) * (size_t)n * 6), *ref = o + 3 * n;
		double *want = malloc(sizeof(double) * (size_t)n * 3);
		if (!x || !o || !want) {
			CHECK(false, "oom");
			free(x);
			free(o);
			free(want);
			return;
		}
		rand_acts(x, n);
		for (int64_t i = 0; i < n; i++) {
			x[i] += 0.25f; /* a mean to subtract */
			w[i] = frand(0.5f, 1.5f);
			b[i] = frand(-0.5f, 0.5f);
		}

		/* layernorm, out of place and in place */
		const float eps = 1e-5f;
		double mean = 0, var = 0;
		for (int64_t i = 0; i < n; i++)
			mean += x[i];
		mean /= (double)n;
		for (int64_t i = 0; i < n; i++)
			var += (x[i] - mean) * (x[i] - mean);
		for (int64_t i = 0; i < n; i++)
			want[i] = (x[i] - mean) / sqrt(var / (double)n + eps) * w[i] + b[i];
		fill_nan(o, n);
		k->layernorm(o, x, w, b, n, eps);
		int bad = count_off(o, want, NULL, n, TOL_NORM_REL, 1e-6);
		memcpy(ref, x, sizeof(float) * (size_t)n);
		k->layernorm(ref, ref, w, b, n, eps);
		bad += memcmp(ref, o, sizeof(float) * (size_t)n) != 0;
		CHECK(bad == 0, "%s layernorm n=%lld: %d off", k->name, (long long)n, bad);

		/* rmsnorm_1p: the weight plus one */
		double ss = 0;
		for (int64_t i = 0; i < n; i++)
			ss += (double)x[i] * x[i];
		for (int64_t i = 0; i < n; i++)
			want[i] = x[i] / sqrt(ss / (double)n + eps) * (1.0 + (w[i] - 1.0f));
		for (int64_t i = 0; i < n; i++)
			ref[i] = w[i] - 1.0f; /* exact: w in [0.5, 1.5) */
		fill_nan(o, n);
		k->rmsnorm_1p(o, x, ref, n, eps);
		bad = count_off(o, want, NULL, n, TOL_NORM_REL, 0);
		CHECK(bad == 0, "%s rmsnorm_1p n=%lld: %d off", k->name, (long long)n, bad);

		/* activations over [-6, 6] and a few outliers */
		static const char *const act_names[] = {"gelu_erf", "gelu_tanh", "gelu_quick",
		                                        "silu"};
		void (*const acts[])(float *, int64_t) = {k->gelu_erf, k->gelu_tanh, k->gelu_quick,
		                                          k->silu};
		for (int a = 0; a < 4; a++) {
			for (int64_t i = 0; i < n; i++)
				o[i] = x[i] * 6.0f;
			if (n > 2) {
				o[0] = -30.0f; /* sigmoids underflow: -0 or a tiny value */
				o[1] = 30.0f;
			}
			for (int64_t i = 0; i < n; i++) {
				const double v = o[i];
				switch (a) {
				case 0:
					want[i] = 0.5 * v * (1.0 + erf(v / sqrt(2.0)));
					break;
				case 1:
					want[i] = 0.5 * v *
					          (1.0 + tanh(sqrt(2.0 / M_PI) *
					                      (v + 0.044715 * v * v * v)));
					break;
				case 2:
					want[i] = v / (1.0 + exp(-1.702 * v));
					break;
				default:
					want[i] = v / (1.0 + exp(-v));
					break;
				}
			}
			acts[a](o, n);
			bad = count_off(o, want, NULL, n, TOL_ACT_REL, TOL_ACT_ABS);
			CHECK(bad == 0, "%s %s n=%lld: %d off", k->name, act_names[a], (long long)n,
			      bad);
		}

		/* add_bias on 3 rows: exact */
		for (int64_t i = 0; i < 3 * n; i++)
			o[i] = ref[i] = frand(-2.0f, 2.0f);
		for (int64_t i = 0; i < 3 * n; i++)
			want[i] = (double)o[i] + b[i % n];
		k->add_bias(o, b, 3, n);
		rvk_scalar_table.add_bias(ref, b, 3, n);
		bad = count_off(o, want, ref, 3 * n, 0x1p-24, 0);
		CHECK(bad == 0, "%s add_bias n=%lld: %d off", k->name, (long long)n, bad);

		free(x);
		free(o);
		free(want);
	}
}

/* rope and rope_neox of table k: the scalar bits, and the rotation within
 * float rounding of the float64 one; values past n_rot stay. */
static void test_rope(const rvk_table *k)
{
	static const int64_t rots[][2] = {{2, 2},   {6, 8},    {30, 32},   {34, 34},   {64, 64},
	                                  {62, 70}, {96, 128}, {128, 128}, {130, 130}, {256, 256}};
	const int64_t n_heads = 3;
	for (size_t ir = 0; ir < sizeof(rots) / sizeof(rots[0]); ir++) {
		const int64_t n_rot = rots[ir][0], hd = rots[ir][1], n = n_heads * hd;
		float *x = malloc(sizeof(float) * (size_t)n * 3), *o = x + n, *ref = x + 2 * n;
		float *cs = malloc(sizeof(float) * (size_t)n_rot);
		double *want = malloc(sizeof(double) * (size_t)n * 2), *mag = want + n;
		if (!x || !cs || !want) {
			CHECK(false, "oom");
			free(x);
			free(cs);
			free(want);
			return;
		}
		rand_acts(x, n);
		for (int64_t i = 0; i < n_rot / 2; i++) {
			const double th = frand(-100.0f, 100.0f);
			cs[2 * i] = (float)cos(th);
			cs[2 * i + 1] = (float)sin(th);
		}
		for (int neox = 0; neox < 2; neox++) {
			const int64_t half = n_rot / 2;
			for (int64_t h = 0; h < n_heads; h++) {
				const float *v = x + h * hd;
				for (int64_t i = 0; i < hd; i++) {
					want[h * hd + i] = v[i];
					mag[h * hd + i] = fabs(v[i]);
				}
				for (int64_t i = 0; i < half; i++) {
					const int64_t ia = neox ? i : 2 * i,
					              ib = neox ? i + half : 2 * i + 1;
					const double c = cs[2 * i], s = cs[2 * i + 1];
					want[h * hd + ia] = v[ia] * c - v[ib] * s;
					want[h * hd + ib] = v[ia] * s + v[ib] * c;
					mag[h * hd + ia] = mag[h * hd + ib] =
					    fabs(v[ia]) + fabs(v[ib]);
				}
			}
			memcpy(o, x, sizeof(float) * (size_t)n);
			memcpy(ref, x, sizeof(float) * (size_t)n);
			(neox ? k->rope_neox : k->rope)(o, n_heads, hd, n_rot, cs);
			(neox ? rvk_scalar_table.rope_neox : rvk_scalar_table.rope)(ref, n_heads,
			                                                            hd, n_rot, cs);
			/* three roundings of values at most |a| + |b| (mag) */
			int bad = 0;
			for (int64_t i = 0; i < n; i++) {
				bad += !(fabs(o[i] - want[i]) <= 0x1p-22 * mag[i]);
				bad += memcmp(&o[i], &ref[i], sizeof(float)) != 0;
			}
			CHECK(bad == 0, "%s %s n_rot=%lld head_dim=%lld: %d off", k->name,
			      neox ? "rope_neox" : "rope", (long long)n_rot, (long long)hd, bad);
		}
		free(x);
		free(cs);
		free(want);
	}
}

static void test_attention(const rvk_table *k)
{
	enum { NQ = 5 };
	static const int64_t hds[] = {8, 16, 40, 64, 80, 128, 144};
	static const int64_t ns[] = {1, 2, 15, 16, 17, 33, 100, 131};
	for (size_t ih = 0; ih < sizeof(hds) / sizeof(hds[0]); ih++) {
		for (size_t in = 0; in < sizeof(ns) / sizeof(ns[0]); in++) {
			const int64_t hd = hds[ih], n = ns[in], stride = hd * 3 + 5;
			const int64_t att_stride = n + 3, out_stride = hd + 7;
			float *q = malloc(sizeof(float) * (size_t)(hd * NQ));
			float *kv = malloc(sizeof(float) * (size_t)(n * stride));
			float *att = malloc(sizeof(float) * (size_t)(att_stride * NQ));
			float *att1 = malloc(sizeof(float) * (size_t)(n + 1));
			float *out = malloc(sizeof(float) * (size_t)(out_stride * NQ));
			float *out1 = malloc(sizeof(float) * (size_t)hd);
			if (!q || !kv || !att || !att1 || !out || !out1) {
				CHECK(false, "oom");
				free(q), free(kv), free(att), free(att1), free(out), free(out1);
				return;
			}
			rand_acts(q, hd * NQ);
			rand_acts(kv, n * stride);
			att1[n] = 12345.0f; /* must stay */
			k->attn_scores(att1, 0, q, 0, 1, kv + 2, stride, n, hd, 0.125f);
			int bad = 0;
			for (int64_t p = 0; p < n; p++) {
				double d = 0, da = 0;
				for (int64_t i = 0; i < hd; i++) {
					d += (double)q[i] * kv[p * stride + 2 + i];
					da += fabs((double)q[i] * kv[p * stride + 2 + i]);
				}
				bad += !(fabs(att1[p] - 0.125 * d) <= TOL_DOT_F32 * 0.125 * da);
			}
			CHECK(bad == 0 && att1[n] == 12345.0f,
			      "%s attn_scores hd=%lld n=%lld: %d off", k->name, (long long)hd,
			      (long long)n, bad);
			for (int64_t i = 0; i < hd; i++)
				out1[i] = (float)i - 3.0f;
			k->attn_values(out1, 0, att1, 0, 1, kv + 1, stride, n, hd);
			bad = 0;
			for (int64_t i = 0; i < hd; i++) {
				double d = (double)i - 3.0, da = fabs(d);
				for (int64_t p = 0; p < n; p++) {
					d += (double)att1[p] * kv[p * stride + 1 + i];
					da += fabs((double)att1[p] * kv[p * stride + 1 + i]);
				}
				bad += !(fabs(out1[i] - d) <= TOL_DOT_F32 * da);
			}
			CHECK(bad == 0, "%s attn_values hd=%lld n=%lld: %d off", k->name,
			      (long long)hd, (long long)n, bad);

			/* NQ queries at once; query 0 is the one above */
			for (int64_t j = 0; j < NQ; j++) {
				att[j * att_stride + n] = 12345.0f;
				for (int64_t i = 0; i < hd; i++)
					out[j * out_stride + i] = (float)i - 3.0f;
			}
			k->attn_scores(att, att_stride, q, hd, NQ, kv + 2, stride, n, hd, 0.125f);
			bad = memcmp(att, att1, sizeof(float) * (size_t)n) != 0;
			for (int64_t j = 0; j < NQ; j++) {
				float *one = malloc(sizeof(float) * (size_t)n);
				if (one) {
					k->attn_scores(one, 0, q + j * hd, 0, 1, kv + 2, stride, n,
					               hd, 0.125f);
					bad += memcmp(one, att + j * att_stride,
					              sizeof(float) * (size_t)n) != 0;
				}
				bad += !one || att[j * att_stride + n] != 12345.0f;
				free(one);
			}
			k->attn_values(out, out_stride, att, att_stride, NQ, kv + 1, stride, n, hd);
			bad += memcmp(out, out1, sizeof(float) * (size_t)hd) != 0;
			for (int64_t j = 1; j < NQ; j++) {
				for (int64_t i = 0; i < hd; i++)
					out1[i] = (float)i - 3.0f;
				k->attn_values(out1, 0, att + j * att_stride, 0, 1, kv + 1, stride,
				               n, hd);
				bad += memcmp(out1, out + j * out_stride,
				              sizeof(float) * (size_t)hd) != 0;
			}
			CHECK(bad == 0,
			      "%s attention hd=%lld n=%lld: %d of %d queries change when "
			      "computed together",
			      k->name, (long long)hd, (long long)n, bad, NQ);
			free(q), free(kv), free(att), free(att1), free(out), free(out1);
		}
	}
}

/* The fused encoder attention (attn_kv_pack, attn_rows) of the tables that
 * have it, against softmax(scale q k^T) v in double, over head widths and
 * key counts with tails, and each query alone against the same query in a
 * group (the same bits). */
static void test_attn_fused(const rvk_table *k)
{
	if (!k->attn_rows || !k->attn_kv_pack)
		return;
	static const int64_t hds[] = {1, 5, 16, 33, 64, 72, 80, 100, 128};
	static const int64_t ns[] = {1, 2, 15, 16, 17, 63, 64, 65, 130, 259};
	const int64_t nq = RVK_ATTN_ROWS, q_stride = 131, kv_stride = 133, out_stride = 129;
	float *q = malloc(sizeof(float) * (size_t)(nq * q_stride));
	float *kk = malloc(sizeof(float) * (size_t)(259 * kv_stride));
	float *vv = malloc(sizeof(float) * (size_t)(259 * kv_stride));
	float *kv = malloc(sizeof(float) * (size_t)RVK_ATTN_KV_FLOATS(259, 128));
	float *scr = malloc(sizeof(float) * (size_t)RVK_ATTN_SCRATCH(259, 128));
	float *out = malloc(sizeof(float) * (size_t)(nq * out_stride));
	float *one = malloc(sizeof(float) * 128);
	double *p = malloc(sizeof(double) * 259);
	if (!q || !kk || !vv || !kv || !scr || !out || !one || !p) {
		CHECK(false, "oom");
		goto done;
	}
	for (size_t ih = 0; ih < sizeof(hds) / sizeof(hds[0]); ih++) {
		for (size_t in = 0; in < sizeof(ns) / sizeof(ns[0]); in++) {
			const int64_t hd = hds[ih], n = ns[in];
			const float scale = 1.0f / sqrtf((float)hd);
			rand_acts(q, nq * q_stride);
			rand_acts(kk, n * kv_stride);
			rand_acts(vv, n * kv_stride);
			for (int64_t i = 0; i < nq * out_stride; i++)
				out[i] = 777.0f; /* past hd: must stay */
			k->attn_kv_pack(kv, kk, kv_stride, vv, kv_stride, n, hd);
			k->attn_rows(out, out_stride, q, q_stride, nq, kv, n, hd, scale, scr);
			int bad = 0, differ = 0;
			for (int64_t j = 0; j < nq; j++) {
				double mx = -INFINITY, sum = 0;
				for (int64_t t = 0; t < n; t++) {
					double d = 0;
					for (int64_t i = 0; i < hd; i++)
						d += (double)q[j * q_stride + i] *
						     kk[t * kv_stride + i];
					p[t] = (double)scale * d;
					mx = p[t] > mx ? p[t] : mx;
				}
				for (int64_t t = 0; t < n; t++)
					sum += (p[t] = exp(p[t] - mx));
				for (int64_t i = 0; i < hd; i++) {
					double want = 0, mag = 0;
					for (int64_t t = 0; t < n; t++) {
						want += p[t] / sum * vv[t * kv_stride + i];
						mag += p[t] / sum * fabs(vv[t * kv_stride + i]);
					}
					bad += !(fabs(out[j * out_stride + i] - want) <=
					         1e-5 * mag + 1e-7);
				}
				bad += out[j * out_stride + hd] != 777.0f;
				k->attn_rows(one, 0, q + j * q_stride, q_stride, 1, kv, n, hd,
				             scale, scr);
				differ += memcmp(one, out + j * out_stride,
				                 sizeof(float) * (size_t)hd) != 0;
			}
			CHECK(bad == 0, "%s attn_rows hd=%lld n=%lld: %d off", k->name,
			      (long long)hd, (long long)n, bad);
			CHECK(differ == 0,
			      "%s attn_rows hd=%lld n=%lld: %d queries change when alone", k->name,
			      (long long)hd, (long long)n, differ);
		}
	}
done:
	free(q), free(kk), free(vv), free(kv), free(scr), free(out), free(one), free(p);
}

/* The own wide float product (gemm_pack, gemm_rows) of the tables that
 * have it, against double dots, over inner widths across the pass of 512
 * steps, panels with row tails and token counts with tile tails, and each
 * token alone against the same token among others (the same bits). */
static void test_gemm(const rvk_table *k)
{
	if (!k->gemm_rows || !k->gemm_pack)
		return;
	static const int64_t n_ins[] = {1, 7, 16, 100, 511, 512, 513, 1153};
	static const int64_t n_rows[] = {1, 15, 16, 17, 40, 63, 64};
	enum { N_TOK = 14, Y_STRIDE = 70 };
	float *x = malloc(sizeof(float) * N_TOK * 1153);
	float *w = malloc(sizeof(float) * 64 * 1153);
	float *panel = malloc(sizeof(float) * RVK_GEMM_ROWS * 1153);
	float *y = malloc(sizeof(float) * N_TOK * Y_STRIDE);
	float *one = malloc(sizeof(float) * Y_STRIDE);
	if (!x || !w || !panel || !y || !one) {
		CHECK(false, "oom");
		goto done;
	}
	for (size_t ii = 0; ii < sizeof(n_ins) / sizeof(n_ins[0]); ii++)
		for (size_t ir = 0; ir < sizeof(n_rows) / sizeof(n_rows[0]); ir++) {
			const int64_t n_in = n_ins[ii], nr = n_rows[ir];
			rand_acts(x, N_TOK * n_in);
			rand_acts(w, nr * n_in);
			for (int64_t i = 0; i < N_TOK * Y_STRIDE; i++)
				y[i] = 777.0f; /* past nr: must stay */
			k->gemm_pack(panel, w, nr, n_in);
			k->gemm_rows(y, Y_STRIDE, x, N_TOK, panel, nr, n_in);
			int bad = 0, differ = 0;
			for (int64_t t = 0; t < N_TOK; t++) {
				for (int64_t r = 0; r < nr; r++) {
					double d = 0, mag = 0;
					for (int64_t i = 0; i < n_in; i++) {
						d += (double)x[t * n_in + i] * w[r * n_in + i];
						mag +=
						    fabs((double)x[t * n_in + i] * w[r * n_in + i]);
					}
					bad +=
					    !(fabs(y[t * Y_STRIDE + r] - d) <= TOL_DOT_FLOAT * mag);
				}
				bad += y[t * Y_STRIDE + nr] != 777.0f;
				k->gemm_rows(one, Y_STRIDE, x + t * n_in, 1, panel, nr, n_in);
				differ +=
				    memcmp(one, y + t * Y_STRIDE, sizeof(float) * (size_t)nr) != 0;
			}
			CHECK(bad == 0, "%s gemm n_in=%lld rows=%lld: %d off", k->name,
			      (long long)n_in, (long long)nr, bad);
			CHECK(differ == 0, "%s gemm n_in=%lld rows=%lld: %d tokens change alone",
			      k->name, (long long)n_in, (long long)nr, differ);
		}
done:
	free(x), free(w), free(panel), free(y), free(one);
}

int main(void)
{
	/* Every ISA this build and CPU can run, scalar included, against the
	 * double-precision reference built from the scalar dequantization. */
	const char *isas[8];
	const int n_isas = rvk_usable_isas(isas, 8);
	CHECK(n_isas >= 1 && !strcmp(isas[n_isas - 1], "scalar"), "scalar is always usable");
	const rvk_table *first = rvk_active();
	for (int i = 0; i < n_isas && i < 8; i++) {
		char msg[256] = "";
		const rvk_table *k = rvk_table_for(isas[i], msg, sizeof(msg));
		CHECK(k != NULL, "%s: %s", isas[i], msg);
		if (!k)
			continue;
		printf("testing the %s kernels\n", k->name);
		test_table(k);
		test_quant_q8_0(k);
		test_quant_q8_K(k);
		test_quant_ties(k);
		test_vec_dot(k);
		test_exact(k);
		test_vec_dot_prep(k);
		test_helpers(k);
		test_attention(k);
		test_attn_fused(k);
		test_gemm(k);
		test_recipe_kernels(k);
		test_rope(k);
		/* the matmul driver runs whatever table is active */
		CHECK(rvk_select(isas[i], msg, sizeof(msg)), "select %s", isas[i]);
		test_matmul();
	}
	CHECK(rvk_select(first->name, NULL, 0), "restore %s", first->name);
	test_f16_inline();
	test_dispatch();
	return tu_finish("test_kernels");
}
