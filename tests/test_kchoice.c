/* test_kchoice.c: kernels chosen by measurement (simd/kernels.h, "measured
 * tables"; src/kchoice.h).
 *
 * - rvk_choose keeps the first set unless another is faster by the margin,
 *   the exact products on decode and batch speeds, the wide on prefill;
 * - a composed table gives, per weight type, its exact set's bits on the
 *   exact path (one token, a few candidates, an exact batch of any size)
 *   and its wide set's on wide products, and a token's result does not
 *   depend on how many share its step;
 * - the cache entry: written, read back the same, and every corrupt or
 *   foreign entry (flipped byte, truncation, another CPU's key, another
 *   build's sets, an unknown set, a missing type, garbage, oversized)
 *   ignored,
 *   measured again and replaced; an unwritable cache directory only warns;
 * - through the API: $RLAIFV_ISA forces one set without measuring, "auto"
 *   measures once and keeps the entry, and a cache directory that cannot be
 *   made is a warning in the log.
 * The cache lives in a temporary $XDG_CACHE_HOME: the user's is never read
 * or written. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "simd/kernels.h"
#include "src/embcache.h"
#include "src/kchoice.h"
#include "src/matmul.h"
#include "src/sha256.h"
#include "src/tensor.h"
#include "tests/testutil.h"

static char tmpdir[256];

/* ---- rvk_choose ------------------------------------------------------------------ */

static void test_choose(void)
{
	rvk_choice c;
	memset(&c, 0, sizeof(c));
	c.n_sets = 2;
	c.sets[0] = "first";
	c.sets[1] = "second";
	for (int ti = 0; ti < RVK_N_CHOICE_TYPES; ti++)
		for (int ph = 0; ph < RVK_N_PHASES; ph++) {
			c.gbps[ti][0][ph] = 10;
			c.gbps[ti][1][ph] = 10;
		}
	/* type 0: the second 3% faster everywhere: within the margin */
	for (int ph = 0; ph < RVK_N_PHASES; ph++)
		c.gbps[0][1][ph] = 10.3;
	/* type 1: the second much faster at decode only, slower at prefill */
	c.gbps[1][1][RVK_PHASE_DECODE_CACHE] = 20;
	c.gbps[1][1][RVK_PHASE_DECODE_STREAM] = 20;
	c.gbps[1][1][RVK_PHASE_PREFILL] = 5;
	/* type 2: the second faster at prefill only */
	c.gbps[2][1][RVK_PHASE_PREFILL] = 30;
	/* type 3: second faster at decode but not measured in the batch phase */
	c.gbps[3][1][RVK_PHASE_DECODE_STREAM] = 40;
	c.gbps[3][1][RVK_PHASE_BATCH] = 0;
	rvk_choose(&c);
	CHECK(!strcmp(c.exact[0], "first") && !strcmp(c.wide[0], "first"),
	      "3%% faster keeps the first set: %s/%s", c.exact[0], c.wide[0]);
	CHECK(!strcmp(c.exact[1], "second") && !strcmp(c.wide[1], "first"),
	      "decode faster: exact second, wide first: %s/%s", c.exact[1], c.wide[1]);
	CHECK(!strcmp(c.exact[2], "first") && !strcmp(c.wide[2], "second"),
	      "prefill faster: wide second: %s/%s", c.exact[2], c.wide[2]);
	CHECK(!strcmp(c.exact[3], "first"), "an unmeasured phase cannot win: %s", c.exact[3]);
	for (int ti = 4; ti < RVK_N_CHOICE_TYPES; ti++)
		CHECK(!strcmp(c.exact[ti], "first") && !strcmp(c.wide[ti], "first"),
		      "a tie keeps the first set");
}

/* ---- composed tables --------------------------------------------------------------- */

/* Random weights valid in every type: every 16-bit half a normal fp16 in
 * +-[0.125, 0.25) (scales, f16 and bf16 values, and f32 made of two). */
static void *valid_weights(size_t bytes, uint64_t *rng)
{
	uint16_t *w = malloc(bytes);
	for (size_t i = 0; w && i < bytes / 2; i++) {
		const uint64_t r = tu_rand_u64(rng);
		w[i] = (uint16_t)(0x3000u | (r & 0x3ffu) | ((r >> 20 & 1u) << 15));
	}
	return w;
}

/* y of rvi_matmul_ex on the table t (made active for the call). */
static void matmul_on(const rvk_table *t, const rvi_weight *W, const float *x, int64_t n_tok,
                      float *y, bool exact, rvi_buf *scratch)
{
	rvk_use(t);
	for (int64_t i = 0; i < n_tok * W->n_out; i++)
		y[i] = NAN;
	CHECK(rvi_matmul_ex(W, x, n_tok, y, 2, scratch, exact) == RV_OK, "matmul on %s", t->name);
}

/* The composed table of exact set a and wide set b for every type: its
 * products equal a's (exact) or b's (wide) bit for bit. */
static void test_composed(const char *a, const char *b)
{
	rvk_choice c;
	rvk_choice_default(&c);
	const char *sa = NULL, *sb = NULL;
	for (int i = 0; i < c.n_sets; i++) {
		sa = strcmp(c.sets[i], a) == 0 ? c.sets[i] : sa;
		sb = strcmp(c.sets[i], b) == 0 ? c.sets[i] : sb;
	}
	if (!sa || !sb)
		return;
	for (int ti = 0; ti < RVK_N_CHOICE_TYPES; ti++) {
		c.exact[ti] = sa;
		c.wide[ti] = sb;
	}
	static rvk_table t;
	static char name[512];
	char msg[256] = "";
	CHECK(rvk_compose(&t, name, sizeof(name), &c, msg, sizeof(msg)), "compose: %s", msg);
	const rvk_table *ta = rvk_table_for(a, NULL, 0), *tb = rvk_table_for(b, NULL, 0);
	printf("composed %s\n", t.name);
	enum { N_IN = 512, N_OUT = 37, N_TOK = 20 };
	uint64_t rng = 77;
	float *x = malloc(sizeof(float) * N_IN * N_TOK);
	float *y = malloc(sizeof(float) * N_OUT * N_TOK),
	      *r = malloc(sizeof(float) * N_OUT * N_TOK);
	float *one = malloc(sizeof(float) * N_OUT);
	for (int i = 0; x && i < N_IN * N_TOK; i++)
		x[i] = tu_rand_uniform(&rng, -1, 1);
	rvi_buf scratch = {0};
	for (int ti = 0; ti < RVK_N_CHOICE_TYPES && x && y && r && one; ti++) {
		const enum rvi_type ty = rvk_choice_types[ti];
		const size_t bytes = rvi_row_size(ty, N_IN) * N_OUT;
		void *w = valid_weights(bytes, &rng);
		const rvi_weight W = {ty, N_IN, N_OUT, w};
		const char *tn = rvi_type_name((int)ty);
		/* exact: one token, five candidates, and an exact batch of 20 */
		static const int64_t exact_tok[] = {1, 5, N_TOK};
		for (int e = 0; e < 3 && w; e++) {
			const int64_t n = exact_tok[e];
			matmul_on(&t, &W, x, n, y, true, &scratch);
			matmul_on(ta, &W, x, n, r, true, &scratch);
			CHECK(!memcmp(y, r, sizeof(float) * (size_t)(n * N_OUT)),
			      "%s: %lld exact tokens differ from %s's", tn, (long long)n, a);
			/* each token as if alone */
			int bad = 0;
			for (int64_t j = 0; j < n; j++) {
				matmul_on(&t, &W, x + j * N_IN, 1, one, true, &scratch);
				bad += memcmp(one, y + j * N_OUT, sizeof(float) * N_OUT) != 0;
			}
			CHECK(bad == 0, "%s: %d of %lld tokens change with the batch", tn, bad,
			      (long long)n);
		}
		/* wide: the prompt's path of b; for float weights the first set's
		 * own product where it has one (src/matmul.c) */
		const bool own = t.gemm_rows &&
		                 (ty == RVI_TYPE_F32 || ty == RVI_TYPE_F16 || ty == RVI_TYPE_BF16);
		if (w) {
			matmul_on(&t, &W, x, N_TOK, y, false, &scratch);
			matmul_on(own ? rvk_table_for(c.sets[0], NULL, 0) : tb, &W, x, N_TOK, r,
			          false, &scratch);
			CHECK(!memcmp(y, r, sizeof(float) * N_OUT * N_TOK),
			      "%s: wide product differs from %s's", tn, b);
		}
		free(w);
	}
	/* the activations' quantization is the first set's (the same bits in all) */
	CHECK(t.quant[RVI_TYPE_Q8_K] == rvk_table_for(c.sets[0], NULL, 0)->quant[RVI_TYPE_Q8_K],
	      "helpers of the first set");
	rvk_use(rvk_table_for(c.sets[0], NULL, 0));
	rvi_buf_free(&scratch);
	free(x), free(y), free(r), free(one);

	/* the encoders' attention: the first set's fused kernel, or none (the
	 * BLAS) when the choice says so */
	const rvk_table *first = rvk_table_for(c.sets[0], NULL, 0);
	CHECK(t.attn_rows == first->attn_rows && t.attn_kv_pack == first->attn_kv_pack,
	      "fused attention of the first set");
	c.attn_fused = false;
	CHECK(rvk_compose(&t, name, sizeof(name), &c, msg, sizeof(msg)) && t.attn_rows == NULL &&
	          t.attn_kv_pack == NULL,
	      "attention by the BLAS: no fused kernel in the table");
	c.attn_fused = true;
	CHECK(t.gemm_rows == first->gemm_rows && t.gemm_pack == first->gemm_pack,
	      "own products of the first set");
	c.gemm_own = false;
	CHECK(rvk_compose(&t, name, sizeof(name), &c, msg, sizeof(msg)) && t.gemm_rows == NULL &&
	          t.gemm_pack == NULL,
	      "products by the BLAS: no own product in the table");
	c.gemm_own = true;

	/* a choice naming a set this build or CPU lacks is refused */
	c.wide[3] = "sse9";
	rvk_table t2;
	char name2[512];
	CHECK(!rvk_compose(&t2, name2, sizeof(name2), &c, msg, sizeof(msg)) && strstr(msg, "sse9"),
	      "unknown set refused: '%s'", msg);
}

/* ---- the cache entry ---------------------------------------------------------------- */

static char *read_all(const char *path, size_t *n)
{
	return tu_read_file(path, n);
}

static void write_all(const char *path, const char *text, size_t n)
{
	FILE *f = fopen(path, "wb");
	CHECK(f && fwrite(text, 1, n, f) == n, "write %s", path);
	if (f)
		fclose(f);
}

/* text with its check line recomputed (a well-formed entry with other
 * content) */
static char *with_check(const char *body)
{
	char hex[65];
	tu_sha256_hex(body, strlen(body), hex);
	char *s = malloc(strlen(body) + 80);
	sprintf(s, "%scheck %s\n", body, hex);
	return s;
}

static bool same_choice(const rvk_choice *a, const rvk_choice *b)
{
	for (int i = 0; i < RVK_N_CHOICE_TYPES; i++)
		if (strcmp(a->exact[i], b->exact[i]) || strcmp(a->wide[i], b->wide[i]))
			return false;
	return a->attn_fused == b->attn_fused && a->gemm_own == b->gemm_own;
}

/* The body of the valid entry text (without its check line), with line
 * `from` replaced by `to` (first occurrence). */
static char *edited_body(const char *text, size_t n, const char *from, const char *to)
{
	const char *check = strstr(text, "check ");
	const size_t body_n = check ? (size_t)(check - text) : n;
	char *body = malloc(body_n + strlen(to) + 1);
	const char *at = strstr(text, from);
	if (!body || !at || at >= text + body_n) {
		free(body);
		return NULL;
	}
	size_t k = (size_t)(at - text);
	memcpy(body, text, k);
	strcpy(body + k, to);
	const size_t rest = k + strlen(from);
	memcpy(body + k + strlen(to), text + rest, body_n - rest);
	body[k + strlen(to) + body_n - rest] = 0;
	return body;
}

static void test_cache(void)
{
	char dir[300], path[RVI_EMBCACHE_PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/entries", tmpdir);
	CHECK(mkdir(dir, 0700) == 0, "mkdir %s", dir);
	rvi_err warn = {0};
	CHECK(rvi_kchoice_path(dir, path, sizeof(path), &warn) == RV_OK, "path");
	rvk_choice c1, c2;
	bool measured = false;
	CHECK(rvi_kchoice_get(dir, 0, &c1, &measured, &warn) == RV_OK && measured &&
	          warn.status == RV_OK,
	      "first run measures: %s", warn.msg);
	size_t n = 0;
	char *text = read_all(path, &n);
	CHECK(text != NULL, "entry written at %s", path);
	if (!text)
		return;
	CHECK(rvi_kchoice_parse(text, n, &c2) && same_choice(&c1, &c2), "entry parses back");
	measured = true;
	CHECK(rvi_kchoice_get(dir, 0, &c2, &measured, &warn) == RV_OK && !measured &&
	          same_choice(&c1, &c2),
	      "second run reads the entry");
	CHECK(c2.gbps[1][0][RVK_PHASE_DECODE_STREAM] == c1.gbps[1][0][RVK_PHASE_DECODE_STREAM] ||
	          fabs(c2.gbps[1][0][RVK_PHASE_DECODE_STREAM] -
	               c1.gbps[1][0][RVK_PHASE_DECODE_STREAM]) < 1e-3,
	      "speeds read back");

	/* Bad entries: each one written over the good one, then a run must
	 * measure again and leave a valid entry. */
	char key_line[600];
	const char *kl = strstr(text, "key ");
	const size_t kn = kl ? strcspn(kl, "\n") : 0;
	snprintf(key_line, sizeof(key_line), "%.*s", (int)kn, kl ? kl : "");
	const char *choice_line = "choice F16 ";
	char *bad[32] = {0};
	const char *what[32] = {0}; /* more than the cases below */
	int nb = 0;
	/* a flipped byte */
	bad[nb] = malloc(n + 1), what[nb] = "flipped byte";
	memcpy(bad[nb], text, n + 1);
	bad[nb][n / 2] ^= 0x20;
	nb++;
	/* truncated */
	bad[nb] = malloc(n + 1), what[nb] = "truncated";
	memcpy(bad[nb], text, n);
	bad[nb][n - 10] = 0;
	nb++;
	/* longer than any entry (64 KiB): not read further */
	bad[nb] = malloc(70001), what[nb] = "oversized";
	memset(bad[nb], 'a', 70000);
	bad[nb][69999] = '\n';
	bad[nb][70000] = 0;
	nb++;
	/* empty and garbage */
	bad[nb] = strdup(""), what[nb++] = "empty";
	bad[nb] = strdup("\x7f"
	                 "ELF\x01\x02 not an entry\n"),
	what[nb++] = "garbage";
	/* well-formed, with a valid check, but foreign or invalid */
	struct {
		const char *from, *to, *what;
	} edits[] = {
	    {key_line, "key GenuineIntel|6|207|Intel Xeon|0.1.0 rev 1 sets avx512 avx2 scalar",
	     "another CPU's key"},
	    {"\nsets ", "\nsets neon ", "another build's sets"},
	    {choice_line, "choice F16 sse9 ", "an unknown set"},
	    {choice_line, "choice Q2_K ", "an unknown type"},
	    {"choice F32 ", "choice F16 ", "a type twice and one missing"},
	    {"speed F16 ", "speed F16 nan ", "a malformed speed"},
	    {RVI_KCHOICE_TAG, "rlaifv kernel choice 1", "another format version"},
	    {"\nattention ", "\nattention cuda 1 2\nattention ", "an unknown attention path"},
	    {"\nattention ", "\nattention fused -1 2\nattention ", "a malformed attention speed"},
	    {"\nattention ", "\nattention fused 1 2\nattention ", "the attention twice"},
	    {"\nattention ", "\nattention \nattention ", "an empty attention line"},
	    {"\ngemm ", "\ngemm \ngemm ", "an empty product line"},
	    {"\ngemm ", "\ngemm mkl 1 2\ngemm ", "an unknown product path"},
	    {"\ngemm ", "\ngemm own 1 2\ngemm ", "the product twice"},
	};
	for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
		char *body = edited_body(text, n, edits[i].from, edits[i].to);
		CHECK(body != NULL, "edit '%s'", edits[i].what);
		if (!body)
			continue;
		bad[nb] = with_check(body), what[nb++] = edits[i].what;
		free(body);
	}
	/* the unedited body with a fresh check is fine (the edits' control) */
	char *same = edited_body(text, n, "\nsets ", "\nsets ");
	char *good = same ? with_check(same) : NULL;
	CHECK(good && rvi_kchoice_parse(good, strlen(good), &c2), "re-checked entry parses");
	free(same), free(good);

	for (int i = 0; i < nb; i++) {
		const size_t bn = strlen(bad[i]);
		CHECK(!rvi_kchoice_parse(bad[i], bn, &c2), "%s: parsed", what[i]);
		write_all(path, bad[i], bn);
		measured = false;
		warn.status = RV_OK;
		CHECK(rvi_kchoice_get(dir, 0, &c2, &measured, &warn) == RV_OK && measured,
		      "%s: not measured again", what[i]);
		size_t n2 = 0;
		char *t2 = read_all(path, &n2);
		rvk_choice c3;
		CHECK(t2 && rvi_kchoice_parse(t2, n2, &c3) && same_choice(&c2, &c3),
		      "%s: not replaced by a valid entry", what[i]);
		free(t2);
		free(bad[i]);
	}
	free(text);

	/* no temporary file left behind */
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "ls %s | grep -v '^kernels-[0-9a-f]*\\.txt$' | grep -q .", dir);
	CHECK(system(cmd) != 0, "stray files in %s", dir);

	/* an unwritable directory (a regular file where the directory should
	 * be: root may write anywhere else): measured, usable, a warning */
	char file_dir[300];
	snprintf(file_dir, sizeof(file_dir), "%s/plainfile", tmpdir);
	write_all(file_dir, "x", 1);
	memset(&warn, 0, sizeof(warn));
	CHECK(rvi_kchoice_get(file_dir, 0, &c2, &measured, &warn) == RV_OK && measured &&
	          warn.status != RV_OK && warn.msg[0],
	      "unwritable: status %d '%s'", warn.status, warn.msg);
	char msg[256];
	rvk_table t;
	char name[512];
	CHECK(rvk_compose(&t, name, sizeof(name), &c2, msg, sizeof(msg)), "usable: %s", msg);
}

/* ---- through the API ------------------------------------------------------------- */

static int n_warn;
static char last_warn[512];
static void on_log(rv_log_level level, const char *msg, void *user)
{
	(void)user;
	if (level == RV_LOG_WARN) {
		n_warn++;
		snprintf(last_warn, sizeof(last_warn), "%s", msg);
	}
}

/* Files named kernels-* under dir. */
static int entries_in(const char *dir)
{
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "ls %s 2>/dev/null | grep -c '^kernels-' >/dev/null", dir);
	return system(cmd) == 0;
}

static void test_api(void)
{
	char xdg[300], dir[320], err[256] = "";
	snprintf(xdg, sizeof(xdg), "%s/xdg", tmpdir);
	snprintf(dir, sizeof(dir), "%s/rlaifv", xdg);
	setenv("XDG_CACHE_HOME", xdg, 1);
	setenv("RLAIFV_CALIBRATE", "1", 1);
	rv_log_set(on_log, NULL);
	const char *isas[RVK_MAX_SETS];
	const int n_isas = rvk_usable_isas(isas, RVK_MAX_SETS);

	/* forced: that set, nothing measured, nothing written */
	const char *forced = n_isas > 1 ? isas[1] : isas[0];
	setenv("RLAIFV_ISA", forced, 1);
	CHECK(rv_select_kernels(NULL, err, sizeof(err)) == RV_OK, "forced: %s", err);
	CHECK(!strcmp(rv_kernel_set(), forced), "forced %s, got %s", forced, rv_kernel_set());
	CHECK(!entries_in(dir), "a forced set measured nothing");

	/* auto: measured once, kept */
	unsetenv("RLAIFV_ISA");
	CHECK(rv_select_kernels(NULL, err, sizeof(err)) == RV_OK, "auto: %s", err);
	const char *set = rv_kernel_set();
	if (n_isas > 2) /* more than one set besides scalar */
		CHECK(!strncmp(set, "auto:", 5), "auto set '%s'", set);
	CHECK(entries_in(dir) == (n_isas > 2), "entry kept in %s", dir);
	CHECK(n_warn == 0, "warning '%s'", last_warn);
	/* the measured table is named by its name and restored by it */
	char saved[512];
	snprintf(saved, sizeof(saved), "%s", set);
	CHECK(rv_select_kernels("scalar", err, sizeof(err)) == RV_OK &&
	          rv_select_kernels(saved, err, sizeof(err)) == RV_OK &&
	          !strcmp(rv_kernel_set(), saved),
	      "restore by name: %s", err);
	/* forcing still wins over the measured table */
	if (n_isas > 1) {
		setenv("RLAIFV_ISA", isas[1], 1);
		CHECK(rv_select_kernels(NULL, err, sizeof(err)) == RV_OK &&
		          !strcmp(rv_kernel_set(), isas[1]),
		      "forced after auto: %s", rv_kernel_set());
		unsetenv("RLAIFV_ISA");
	}
	/* the matmul of the measured table: each token as if alone */
	CHECK(rv_select_kernels("auto", err, sizeof(err)) == RV_OK &&
	          !strcmp(rv_kernel_set(), saved),
	      "auto again: %s", rv_kernel_set());
	rv_log_set(NULL, NULL);
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/rlaifv-test-kchoice-XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	test_choose();
	const char *isas[RVK_MAX_SETS];
	const int n_isas = rvk_usable_isas(isas, RVK_MAX_SETS);
	/* every pair of sets, scalar included, both ways */
	for (int i = 0; i < n_isas && i < RVK_MAX_SETS; i++)
		for (int j = 0; j < n_isas && j < RVK_MAX_SETS; j++)
			if (i != j)
				test_composed(isas[i], isas[j]);
	test_cache();
	test_api();
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
	return tu_finish("test_kchoice");
}
