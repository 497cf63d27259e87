/* test_dequant.c: the type table, the fp16/bf16 conversions and the
 * dequantization kernels.
 *
 * Hand-built blocks of every supported type are decoded and compared with
 * values the test derives from the format definition itself (written here in
 * a different shape from the kernels: per-element formulas instead of the
 * kernels' loops), with scales chosen as powers of two so every expected
 * value is exact. Then every tensor of the two K-quant fixture models is
 * dequantized and compared bit for bit with ref-dequant.json (SHA-256 of the
 * float32 data, its sum and first values, produced with ggml). Every check
 * runs on the scalar table and on the active one. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "src/gguf.h"
#include "simd/kernels.h"
#include "src/tensor.h"
#include "tests/testutil.h"
#include "src/util.h"

/* ---- the type table ----------------------------------------------------- */

static void test_traits(void)
{
	static const struct {
		int id;
		const char *name;
		int64_t bs;
		size_t ts;
		bool supported;
		int vdt;
	} want[] = {
	    {0, "F32", 1, 4, true, RVI_TYPE_F32},
	    {1, "F16", 1, 2, true, RVI_TYPE_F32},
	    {2, "Q4_0", 32, 18, true, RVI_TYPE_Q8_0},
	    {3, "Q4_1", 32, 20, false, 0},
	    {6, "Q5_0", 32, 22, false, 0},
	    {7, "Q5_1", 32, 24, false, 0},
	    {8, "Q8_0", 32, 34, true, RVI_TYPE_Q8_0},
	    {9, "Q8_1", 32, 36, false, 0},
	    {10, "Q2_K", 256, 84, false, 0},
	    {11, "Q3_K", 256, 110, false, 0},
	    {12, "Q4_K", 256, 144, true, RVI_TYPE_Q8_K},
	    {13, "Q5_K", 256, 176, true, RVI_TYPE_Q8_K},
	    {14, "Q6_K", 256, 210, true, RVI_TYPE_Q8_K},
	    {15, "Q8_K", 256, 292, false, 0},
	    {16, "IQ2_XXS", 256, 66, false, 0},
	    {17, "IQ2_XS", 256, 74, false, 0},
	    {18, "IQ3_XXS", 256, 98, false, 0},
	    {19, "IQ1_S", 256, 50, false, 0},
	    {20, "IQ4_NL", 32, 18, false, 0},
	    {21, "IQ3_S", 256, 110, false, 0},
	    {22, "IQ2_S", 256, 82, false, 0},
	    {23, "IQ4_XS", 256, 136, false, 0},
	    {24, "I8", 1, 1, false, 0},
	    {25, "I16", 1, 2, false, 0},
	    {26, "I32", 1, 4, false, 0},
	    {27, "I64", 1, 8, false, 0},
	    {28, "F64", 1, 8, false, 0},
	    {29, "IQ1_M", 256, 56, false, 0},
	    {30, "BF16", 1, 2, true, RVI_TYPE_F32},
	    {34, "TQ1_0", 256, 54, false, 0},
	    {35, "TQ2_0", 256, 66, false, 0},
	    {39, "MXFP4", 32, 17, false, 0},
	};
	bool known[RVI_TYPE_COUNT] = {false};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const rvi_type_traits *t = rvi_type_traits_of(want[i].id);
		known[want[i].id] = true;
		CHECK(t->name != NULL && strcmp(t->name, want[i].name) == 0, "id %d name %s",
		      want[i].id, t->name ? t->name : "(null)");
		CHECK(strcmp(rvi_type_name(want[i].id), want[i].name) == 0, "id %d", want[i].id);
		CHECK(t->block_size == want[i].bs, "%s block_size %lld", want[i].name,
		      (long long)t->block_size);
		CHECK(t->type_size == want[i].ts, "%s type_size %zu", want[i].name, t->type_size);
		CHECK(t->supported == want[i].supported, "%s supported", want[i].name);
		if (want[i].supported)
			CHECK((int)t->vec_dot_type == want[i].vdt, "%s vec_dot_type %d",
			      want[i].name, (int)t->vec_dot_type);
	}
	/* Retired ids (4, 5, 31..33, 36..38) and out-of-range ones are unknown. */
	for (int id = -2; id < RVI_TYPE_COUNT + 3; id++) {
		if (id >= 0 && id < RVI_TYPE_COUNT && known[id])
			continue;
		const rvi_type_traits *t = rvi_type_traits_of(id);
		CHECK(t != NULL && t->name == NULL && !t->supported, "id %d should be unknown", id);
		CHECK(strcmp(rvi_type_name(id), "unknown") == 0, "id %d", id);
		if (id >= 0 && id < RVI_TYPE_COUNT)
			CHECK(rvi_row_size((enum rvi_type)id, 256) == 0, "id %d row size", id);
	}
	/* The structs the kernels read in place match the sizes in the table. */
	CHECK(sizeof(rv_block_q8_0) == rvi_type_traits_of(RVI_TYPE_Q8_0)->type_size, "q8_0");
	CHECK(sizeof(rv_block_q4_0) == rvi_type_traits_of(RVI_TYPE_Q4_0)->type_size, "q4_0");
	CHECK(sizeof(rv_block_q4_K) == rvi_type_traits_of(RVI_TYPE_Q4_K)->type_size, "q4_K");
	CHECK(sizeof(rv_block_q5_K) == rvi_type_traits_of(RVI_TYPE_Q5_K)->type_size, "q5_K");
	CHECK(sizeof(rv_block_q6_K) == rvi_type_traits_of(RVI_TYPE_Q6_K)->type_size, "q6_K");
	CHECK(sizeof(rv_block_q8_K) == rvi_type_traits_of(RVI_TYPE_Q8_K)->type_size, "q8_K");

	CHECK(rvi_row_size(RVI_TYPE_F32, 7) == 28, "f32 row");
	CHECK(rvi_row_size(RVI_TYPE_F16, 7) == 14, "f16 row");
	CHECK(rvi_row_size(RVI_TYPE_Q8_0, 4096) == 128 * 34, "q8_0 row");
	CHECK(rvi_row_size(RVI_TYPE_Q4_K, 4096) == 16 * 144, "q4_K row");
	CHECK(rvi_row_size(RVI_TYPE_Q6_K, 256) == 210, "q6_K row");
}

/* ---- fp16 / bf16 -------------------------------------------------------- */

static uint32_t bits_of(float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof(u));
	return u;
}

static float float_of(uint32_t u)
{
	float f;
	memcpy(&f, &u, sizeof(f));
	return f;
}

/* The value of a finite half straight from the IEEE definition, in double. */
static double half_value(uint16_t h)
{
	const int e = (h >> 10) & 31, m = h & 1023;
	const double mag = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
	return (h & 0x8000) ? -mag : mag;
}

static void test_fp16(void)
{
	/* Every half decodes to its defined value; inf/nan keep their class. */
	int bad = 0;
	for (uint32_t h = 0; h < 65536; h++) {
		const float f = rvi_f16_to_f32((uint16_t)h);
		const int e = (h >> 10) & 31;
		if (e == 31) {
			if ((h & 1023) == 0)
				bad += !(isinf(f) && (signbit(f) != 0) == ((h & 0x8000) != 0));
			else
				bad += !isnan(f);
			continue;
		}
		bad += bits_of(f) != bits_of((float)half_value((uint16_t)h));
		/* and a finite half survives the round trip exactly (incl. -0) */
		bad += rvi_f32_to_f16(f) != h;
	}
	CHECK(bad == 0, "%d halves decode or round-trip wrongly", bad);

	static const struct {
		uint16_t h;
		float f;
	} known[] = {
	    {0x3c00, 1.0f},     {0xc000, -2.0f},           {0x3555, 0.333251953125f},
	    {0x0001, 0x1p-24f}, {0x03ff, 1023 * 0x1p-24f}, {0x0400, 0x1p-14f},
	    {0x7bff, 65504.0f}, {0x8000, -0.0f},           {0x8001, -0x1p-24f},
	    {0x7c00, INFINITY}, {0xfc00, -INFINITY},
	};
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		CHECK(bits_of(rvi_f16_to_f32(known[i].h)) == bits_of(known[i].f), "0x%04x",
		      known[i].h);
		CHECK(rvi_f32_to_f16(known[i].f) == known[i].h, "%g", (double)known[i].f);
	}
	CHECK(isnan(rvi_f16_to_f32(0x7e00)) && isnan(rvi_f16_to_f32(0xfe01)), "half nan");
	const uint16_t hn = rvi_f32_to_f16(NAN);
	CHECK((hn & 0x7c00) == 0x7c00 && (hn & 0x3ff) != 0, "nan -> 0x%04x", hn);
	const uint16_t hn2 = rvi_f32_to_f16(float_of(0x7f800001u)); /* lowest payload */
	CHECK((hn2 & 0x7c00) == 0x7c00 && (hn2 & 0x3ff) != 0, "snan -> 0x%04x", hn2);

	/* Rounding to nearest, ties to even, at the interesting places. */
	static const struct {
		float f;
		uint16_t h;
	} round[] = {
	    {1.0f + 0x1p-11f, 0x3c00},     /* tie, even stays down */
	    {1.0f + 3 * 0x1p-11f, 0x3c02}, /* tie, odd goes up */
	    {1.0f + 0x1p-11f + 0x1p-20f, 0x3c01},
	    {65519.99f, 0x7bff},
	    {65520.0f, 0x7c00}, /* tie to even = inf */
	    {1e10f, 0x7c00},
	    {-1e10f, 0xfc00},
	    {0x1p-25f, 0x0000}, /* tie between 0 and the smallest subnormal */
	    {0x1p-25f * 1.0000001f, 0x0001},
	    {1.5f * 0x1p-24f, 0x0002}, /* tie, to even */
	    {2.5f * 0x1p-24f, 0x0002},
	    {0x1p-26f, 0x0000},
	    {-0x1p-30f, 0x8000},
	    {0x1p-14f - 0x1p-25f, 0x0400}, /* rounds up into the normals */
	    {1e-45f, 0x0000},              /* a float subnormal */
	};
	for (size_t i = 0; i < sizeof(round) / sizeof(round[0]); i++)
		CHECK(rvi_f32_to_f16(round[i].f) == round[i].h, "%a -> 0x%04x, want 0x%04x",
		      (double)round[i].f, rvi_f32_to_f16(round[i].f), round[i].h);

	/* Random floats over the whole half range (subnormals included): the
	 * result is the nearest half, and on a tie the even one. */
	uint64_t rng = 12345;
	bad = 0;
	for (int i = 0; i < 200000; i++) {
		const uint64_t r = tu_rand_u64(&rng);
		const uint32_t exp = 95 + (uint32_t)(r % 49); /* 2^-32 .. 2^17 */
		const uint32_t u = (uint32_t)((r >> 8) & 0x807fffffu) | (exp << 23);
		const float f = float_of(u);
		const uint16_t h = rvi_f32_to_f16(f);
		if (fabsf(f) >= 65520.0f) {
			bad += (h & 0x7fff) != 0x7c00;
			continue;
		}
		const double d0 = fabs((double)f - half_value(h));
		const uint16_t mag = h & 0x7fff;
		for (int dir = -1; dir <= 1; dir += 2) {
			const int nm = (int)mag + dir;
			if (nm < 0 || nm > 0x7bff)
				continue;
			const double dn =
			    fabs((double)f - half_value((uint16_t)((h & 0x8000) | nm)));
			if (dn < d0 || (dn == d0 && (h & 1)))
				bad++;
		}
		/* the sign is kept, also when the magnitude rounds to zero */
		bad += ((h & 0x8000) != 0) != (signbit(f) != 0);
	}
	CHECK(bad == 0, "%d random floats rounded to a wrong half", bad);
}

static void test_bf16(void)
{
	static const struct {
		uint16_t h;
		float f;
	} known[] = {
	    {0x3f80, 1.0f},  {0xc040, -3.0f},    {0x4049, 3.140625f}, {0x0001, 0x1p-133f},
	    {0x8000, -0.0f}, {0x7f80, INFINITY}, {0xff80, -INFINITY}, {0x0080, 0x1p-126f},
	};
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		CHECK(bits_of(rvi_bf16_to_f32(known[i].h)) == bits_of(known[i].f), "bf16 0x%04x",
		      known[i].h);
	CHECK(isnan(rvi_bf16_to_f32(0x7fc0)), "bf16 nan");
}

/* ---- hand-built blocks -------------------------------------------------- */

/* Runs t->dequant[type] on a block into y (n floats, prefilled with NaN so a
 * kernel that skips an element cannot pass) and compares bit for bit. */
static void expect_dequant(const rvk_table *k, enum rvi_type type, const void *blk, int64_t n,
                           const float *want, const char *what)
{
	float *y = malloc((size_t)n * sizeof(float));
	if (!y) {
		CHECK(false, "oom");
		return;
	}
	for (int64_t i = 0; i < n; i++)
		y[i] = NAN;
	CHECK(k->dequant[type] != NULL, "%s: %s has no dequant", k->name, what);
	if (k->dequant[type] == NULL) {
		free(y);
		return;
	}
	k->dequant[type](blk, y, n);
	int bad = 0;
	int64_t first = -1;
	for (int64_t i = 0; i < n; i++) {
		if (bits_of(y[i]) != bits_of(want[i])) {
			bad++;
			if (first < 0)
				first = i;
		}
	}
	CHECK(bad == 0, "%s %s: %d wrong, first [%lld] = %.9g, want %.9g", k->name, what, bad,
	      (long long)first, first >= 0 ? (double)y[first] : 0.0,
	      first >= 0 ? (double)want[first] : 0.0);
	free(y);
}

static void test_float_rows(const rvk_table *k)
{
	const float f32[5] = {1.5f, -0.0f, INFINITY, 0x1p-149f, -3.25e7f};
	expect_dequant(k, RVI_TYPE_F32, f32, 5, f32, "F32");

	const uint16_t f16[8] = {0x3c00, 0xc000, 0x0001, 0x03ff, 0x7bff, 0x7c00, 0xfc00, 0x8000};
	const float f16_want[8] = {1.0f,     -2.0f,    0x1p-24f,  1023 * 0x1p-24f,
	                           65504.0f, INFINITY, -INFINITY, -0.0f};
	expect_dequant(k, RVI_TYPE_F16, f16, 8, f16_want, "F16");

	const uint16_t bf16[5] = {0x3f80, 0xc040, 0x0001, 0x7f80, 0x4049};
	const float bf16_want[5] = {1.0f, -3.0f, 0x1p-133f, INFINITY, 3.140625f};
	expect_dequant(k, RVI_TYPE_BF16, bf16, 5, bf16_want, "BF16");
}

static void test_q8_0_q4_0(const rvk_table *k)
{
	/* Q8_0, two blocks: d = 0.25 and d = -2^-10; q = 8j - 128 and j - 16. */
	rv_block_q8_0 q8[2];
	float q8_want[64];
	q8[0].d = 0x3400; /* 0.25 */
	q8[1].d = 0x9400; /* -2^-10 */
	for (int j = 0; j < 32; j++) {
		q8[0].qs[j] = (int8_t)(8 * j - 128);
		q8[1].qs[j] = (int8_t)(j - 16);
		q8_want[j] = (float)(8 * j - 128) * 0.25f;
		q8_want[32 + j] = (float)(j - 16) * -0x1p-10f;
	}
	expect_dequant(k, RVI_TYPE_Q8_0, q8, 64, q8_want, "Q8_0");

	/* Q4_0, d = 0.5: byte j = j | (15 - j) << 4, so weight j is (j - 8) / 2
	 * and weight j + 16 is (7 - j) / 2. */
	rv_block_q4_0 q4;
	float q4_want[32];
	q4.d = 0x3800; /* 0.5 */
	for (int j = 0; j < 16; j++) {
		q4.qs[j] = (uint8_t)(j | ((15 - j) << 4));
		q4_want[j] = (float)(j - 8) * 0.5f;
		q4_want[j + 16] = (float)(7 - j) * 0.5f;
	}
	expect_dequant(k, RVI_TYPE_Q4_0, &q4, 32, q4_want, "Q4_0");
}

/* The 12-byte packing of eight 6-bit scales and mins of Q4_K/Q5_K, built the
 * way the format defines it: sub-blocks 0..3 in the low 6 bits of bytes 0..3
 * (scales) and 4..7 (mins); sub-blocks 4..7 with their low 4 bits in bytes
 * 8..11 (scale in the low nibble, min in the high one) and their top 2 bits
 * in bits 6..7 of bytes 0..3 (scales) and 4..7 (mins). */
static void pack_scales_mins(uint8_t out[12], const uint8_t sc[8], const uint8_t mn[8])
{
	for (int j = 0; j < 4; j++) {
		out[j] = (uint8_t)(sc[j] | ((sc[j + 4] >> 4) << 6));
		out[j + 4] = (uint8_t)(mn[j] | ((mn[j + 4] >> 4) << 6));
		out[j + 8] = (uint8_t)((sc[j + 4] & 15) | ((mn[j + 4] & 15) << 4));
	}
}

/* Scales and mins that use all six bits, including the top two of
 * sub-blocks 4..7 that live in bytes 0..7. */
static const uint8_t k_sc[8] = {1, 2, 63, 17, 33, 48, 5, 62};
static const uint8_t k_mn[8] = {0, 7, 3, 40, 60, 21, 31, 16};

/* Nibble pattern: byte l of group g. */
static uint8_t k_qs(int g, int l)
{
	return (uint8_t)(((l + 3 * g) & 15) | (((7 * l + g) & 15) << 4));
}

static void test_q4_K_q5_K(const rvk_table *k)
{
	/* d = 0.5, dmin = 0.25: every product below is exact. Weight i of
	 * sub-block s = i / 32 is d * sc[s] * q - dmin * mn[s], where q is the
	 * low nibble (even s) or the high nibble (odd s) of byte i % 32 of
	 * group s / 2; for Q5_K plus 16 times bit s of qh[i % 32]. */
	rv_block_q4_K b4;
	rv_block_q5_K b5;
	float want4[256], want5[256];
	b4.d = b5.d = 0x3800;       /* 0.5 */
	b4.dmin = b5.dmin = 0x3400; /* 0.25 */
	pack_scales_mins(b4.scales, k_sc, k_mn);
	memcpy(b5.scales, b4.scales, 12);
	for (int g = 0; g < 4; g++)
		for (int l = 0; l < 32; l++)
			b4.qs[32 * g + l] = b5.qs[32 * g + l] = k_qs(g, l);
	for (int l = 0; l < 32; l++)
		b5.qh[l] = (uint8_t)(l * 37 + 11);
	for (int i = 0; i < 256; i++) {
		const int s = i / 32, l = i % 32;
		const uint8_t byte = k_qs(s / 2, l);
		const int q = s % 2 == 0 ? (byte & 15) : (byte >> 4);
		const int q5 = q + 16 * ((b5.qh[l] >> s) & 1);
		want4[i] = 0.5f * (float)k_sc[s] * (float)q - 0.25f * (float)k_mn[s];
		want5[i] = 0.5f * (float)k_sc[s] * (float)q5 - 0.25f * (float)k_mn[s];
	}
	expect_dequant(k, RVI_TYPE_Q4_K, &b4, 256, want4, "Q4_K");
	expect_dequant(k, RVI_TYPE_Q5_K, &b5, 256, want5, "Q5_K");

	/* Two blocks in a row: the second one is decoded with its own scales. */
	rv_block_q4_K two[2];
	float want_two[512];
	two[0] = b4;
	two[1] = b4;
	two[1].d = 0x4000; /* 2 */
	two[1].dmin = 0x0000;
	for (int i = 0; i < 256; i++) {
		want_two[i] = want4[i];
		const int s = i / 32;
		const uint8_t byte = k_qs(s / 2, i % 32);
		const int q = s % 2 == 0 ? (byte & 15) : (byte >> 4);
		want_two[256 + i] = 2.0f * (float)k_sc[s] * (float)q - 0.0f;
	}
	expect_dequant(k, RVI_TYPE_Q4_K, two, 512, want_two, "Q4_K x2");
}

static void test_q6_K(const rvk_table *k)
{
	/* The Q6_K layout as the format describes it: in each half h of 128
	 * weights, for l = 0..31, byte ql[64h + l] gives the low 4 bits of
	 * weights l (low nibble) and l + 64 (high nibble), byte ql[64h + 32 + l]
	 * those of weights l + 32 and l + 96, and qh[32h + l] the top 2 bits of
	 * weights l, l + 32, l + 64, l + 96 (bits 0-1, 2-3, 4-5, 6-7). Weight i
	 * is d * scales[i / 16] * (q - 32). */
	rv_block_q6_K b;
	float want[256];
	b.d = 0x3000; /* 0.125 */
	for (int i = 0; i < 16; i++)
		b.scales[i] = (int8_t)(i * 9 - 64);
	for (int i = 0; i < 128; i++)
		b.ql[i] = (uint8_t)(i * 29 + 5);
	for (int i = 0; i < 64; i++)
		b.qh[i] = (uint8_t)(i * 53 + 17);
	for (int h = 0; h < 2; h++) {
		for (int l = 0; l < 32; l++) {
			const uint8_t a = b.ql[64 * h + l], c = b.ql[64 * h + 32 + l];
			const uint8_t hb = b.qh[32 * h + l];
			const int q[4] = {
			    (a & 15) | ((hb & 3) << 4), (c & 15) | (((hb >> 2) & 3) << 4),
			    (a >> 4) | (((hb >> 4) & 3) << 4), (c >> 4) | (((hb >> 6) & 3) << 4)};
			for (int k4 = 0; k4 < 4; k4++) {
				const int i = 128 * h + 32 * k4 + l;
				want[i] = 0.125f * (float)b.scales[i / 16] * (float)(q[k4] - 32);
			}
		}
	}
	expect_dequant(k, RVI_TYPE_Q6_K, &b, 256, want, "Q6_K");

	/* Extremes: q = 0 and q = 63 with scale -128 and 127. */
	memset(&b, 0, sizeof(b));
	b.d = 0x3c00;
	b.scales[0] = -128;
	b.scales[15] = 127;
	memset(b.ql + 64, 0xff, 64);
	memset(b.qh + 32, 0xff, 32);
	for (int i = 0; i < 256; i++)
		want[i] = (float)b.scales[i / 16] * (float)(i < 128 ? -32 : 31);
	expect_dequant(k, RVI_TYPE_Q6_K, &b, 256, want, "Q6_K extremes");
}

static void test_q8_K(const rvk_table *k)
{
	rv_block_q8_K b;
	float want[256];
	memset(&b, 0, sizeof(b));
	b.d = -0.5f;
	for (int i = 0; i < 256; i++) {
		b.qs[i] = (int8_t)(i - 128);
		want[i] = -0.5f * (float)(i - 128);
	}
	expect_dequant(k, RVI_TYPE_Q8_K, &b, 256, want, "Q8_K");
}

/* ---- the fixture models against ref-dequant.json ------------------------ */

static const tu_json *member(const tu_json *obj, const char *key)
{
	/* Not tu_json_get: the keys are file and tensor names with dots. */
	if (obj == NULL || obj->kind != TU_JOBJ)
		return NULL;
	for (size_t i = 0; i < obj->n; i++)
		if (strcmp(obj->keys[i], key) == 0)
			return &obj->items[i];
	return NULL;
}

static void check_tensor(const rvk_table *k, const rvi_gguf_tensor *t, const char *name,
                         const tu_json *ref)
{
	const tu_json *type = member(ref, "type"), *ne = member(ref, "ne");
	const tu_json *sha = member(ref, "sha256_f32"), *sum = member(ref, "sum");
	const tu_json *first = member(ref, "first16");
	if (!type || !ne || !sha || !sum || !first) {
		CHECK(false, "%s: incomplete reference entry", name);
		return;
	}
	CHECK(strcmp(rvi_type_name(t->type), type->str) == 0, "%s: type %s, want %s", name,
	      rvi_type_name(t->type), type->str);
	for (size_t d = 0; d < ne->n && d < 4; d++)
		CHECK(t->ne[d] == (int64_t)ne->items[d].num, "%s: ne[%zu] = %lld", name, d,
		      (long long)t->ne[d]);
	if (!rvi_type_traits_of(t->type)->supported || k->dequant[t->type] == NULL) {
		CHECK(false, "%s: %s cannot be dequantized", name, rvi_type_name(t->type));
		return;
	}

	/* Row by row, as the runtime reads weights. */
	const int64_t n0 = t->ne[0];
	const int64_t rows = (int64_t)t->nelem / n0;
	const size_t row_bytes = rvi_row_size(t->type, n0);
	float *y = malloc((size_t)t->nelem * sizeof(float));
	if (!y) {
		CHECK(false, "oom");
		return;
	}
	for (uint64_t i = 0; i < t->nelem; i++)
		y[i] = NAN;
	CHECK(row_bytes * (uint64_t)rows == t->nbytes, "%s: %zu bytes/row x %lld rows != %llu",
	      name, row_bytes, (long long)rows, (unsigned long long)t->nbytes);
	for (int64_t r = 0; r < rows; r++)
		k->dequant[t->type]((const char *)t->data + (size_t)r * row_bytes, y + r * n0, n0);

	char hex[65];
	tu_sha256_hex(y, (size_t)t->nelem * sizeof(float), hex);
	CHECK(strcmp(hex, sha->str) == 0, "%s %s: sha256 %s, want %s", k->name, name, hex,
	      sha->str);
	double s = 0.0, sabs = 0.0;
	for (uint64_t i = 0; i < t->nelem; i++) {
		s += y[i];
		sabs += fabs(y[i]);
	}
	/* The reference sum may have been added in another order. */
	CHECK(fabs(s - sum->num) <= 1e-9 * (sabs + 1.0), "%s: sum %.17g, want %.17g", name, s,
	      sum->num);
	for (size_t i = 0; i < first->n && i < t->nelem; i++)
		CHECK((double)y[i] == first->items[i].num, "%s [%zu] = %.17g, want %.17g", name, i,
		      (double)y[i], first->items[i].num);
	free(y);
}

static void test_fixture(const rvk_table *k, const tu_json *ref, const char *file)
{
	const tu_json *tensors = member(ref, file);
	CHECK(tensors != NULL && tensors->n > 0, "ref-dequant.json has no %s", file);
	if (tensors == NULL)
		return;
	rvi_gguf *g = NULL;
	rvi_err err = {0};
	const int rc = rvi_gguf_open(&g, tu_data(file), &err);
	CHECK(rc == RV_OK, "open %s: %s", file, err.msg);
	if (rc != RV_OK)
		return;
	CHECK(g->n_tensors == tensors->n, "%s: %llu tensors, reference has %zu", file,
	      (unsigned long long)g->n_tensors, tensors->n);
	for (size_t i = 0; i < tensors->n; i++) {
		const rvi_gguf_tensor *t = rvi_gguf_find_tensor(g, tensors->keys[i]);
		CHECK(t != NULL, "%s: no tensor %s", file, tensors->keys[i]);
		if (t != NULL)
			check_tensor(k, t, tensors->keys[i], &tensors->items[i]);
	}
	rvi_gguf_close(g);
}

int main(void)
{
	test_traits();
	test_fp16();
	test_bf16();

	const rvk_table *tables[2] = {&rvk_scalar_table, rvk_active()};
	const int n_tables = tables[1] == tables[0] ? 1 : 2;
	tu_json *ref = tu_json_load(tu_data("ref-dequant.json"));
	CHECK(ref != NULL, "cannot load %s", tu_data("ref-dequant.json"));
	for (int i = 0; i < n_tables; i++) {
		test_float_rows(tables[i]);
		test_q8_0_q4_0(tables[i]);
		test_q4_K_q5_K(tables[i]);
		test_q6_K(tables[i]);
		test_q8_K(tables[i]);
		if (ref != NULL) {
			test_fixture(tables[i], ref, "tiny-kq-text-q4_k_m.gguf");
			test_fixture(tables[i], ref, "tiny-kq-text-q6_k.gguf");
		}
	}
	tu_json_free(ref);
	return tu_finish("test_dequant");
}
