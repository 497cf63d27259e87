/* kchoice.c: the measured kernel choice and its cache entry (see kchoice.h). */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include "src/kchoice.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/attention.h"
#include "src/embcache.h"
#include "src/matmul.h"
#include "src/log.h"
#include "src/sha256.h"
#include "src/tensor.h"

/* An entry is a few kilobytes; anything longer is not one of ours. */
#define ENTRY_MAX (64 << 10)
/* Per measurement (see rvk_calibrate): about a second of one core
 * for the whole choice, most of it streaming 64 MiB twice per type and set. */
#define BUDGET_MS 2.0
/* The attention's and the wide products' two paths, each timed in turn (a
 * few ms a pass). */
#define ATTN_BUDGET_MS 20.0

/* "vendor|family|model|name|build id" of this CPU and build. */
static void make_key(char *out, size_t cap)
{
	rvk_cpu cpu;
	rvk_cpu_info(&cpu);
	snprintf(out, cap, "%s|%d|%d|%s|%s", cpu.vendor, cpu.family, cpu.model, cpu.name,
	         rvk_build_id());
	for (char *p = out; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}

int rvi_kchoice_path(const char *dir, char *out, size_t cap, rvi_err *err)
{
	char key[512], hex[2 * RVI_SHA256_BYTES + 1];
	uint8_t digest[RVI_SHA256_BYTES];
	make_key(key, sizeof(key));
	rvi_sha256(key, strlen(key), digest);
	rvi_sha256_hex(digest, hex);
	const int n = snprintf(out, cap, "%s/kernels-%.16s.txt", dir, hex);
	if (n < 0 || (size_t)n >= cap)
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "kernel choice: cache path too long");
	return RV_OK;
}

/* The usable set named name (the static string of c->sets), or NULL. */
static const char *set_named(const rvk_choice *c, const char *name)
{
	for (int i = 0; i < c->n_sets; i++)
		if (strcmp(c->sets[i], name) == 0)
			return c->sets[i];
	return NULL;
}

static int type_index(const char *name)
{
	for (int i = 0; i < RVK_N_CHOICE_TYPES; i++)
		if (strcmp(rvi_type_name((int)rvk_choice_types[i]), name) == 0)
			return i;
	return -1;
}

/* The text of c's entry into out (cap bytes) without the check line;
 * returns its length, or 0 when it does not fit. */
static size_t format_entry(const rvk_choice *c, char *out, size_t cap)
{
	char key[512];
	make_key(key, sizeof(key));
	size_t n = 0;
#define PUT(...)                                                                                   \
	do {                                                                                       \
		const int w_ = snprintf(out + n, cap - n, __VA_ARGS__);                            \
		if (w_ < 0 || (size_t)w_ >= cap - n)                                               \
			return 0;                                                                  \
		n += (size_t)w_;                                                                   \
	} while (0)
	PUT("%s\nkey %s\nsets", RVI_KCHOICE_TAG, key);
	for (int i = 0; i < c->n_sets; i++)
		PUT(" %s", c->sets[i]);
	PUT("\n");
	for (int ti = 0; ti < RVK_N_CHOICE_TYPES; ti++)
		PUT("choice %s %s %s\n", rvi_type_name((int)rvk_choice_types[ti]), c->exact[ti],
		    c->wide[ti]);
	for (int ti = 0; ti < RVK_N_CHOICE_TYPES; ti++)
		for (int si = 0; si < c->n_sets; si++) {
			const double *g = c->gbps[ti][si];
			PUT("speed %s %s %.3f %.3f %.3f %.3f\n",
			    rvi_type_name((int)rvk_choice_types[ti]), c->sets[si], g[0], g[1], g[2],
			    g[3]);
		}
	PUT("attention %s %.3f %.3f\n", c->attn_fused ? "fused" : "blas", c->attn_gflops_fused,
	    c->attn_gflops_blas);
	PUT("gemm %s %.3f %.3f\n", c->gemm_own ? "own" : "blas", c->gemm_gflops_own,
	    c->gemm_gflops_blas);
#undef PUT
	return n;
}

/* The rest of an "attention" or "gemm" line: "<own|blas> <own GFLOP/s>
 * <BLAS GFLOP/s>", own being that path's word; false when malformed or
 * seen before. */
static bool parse_path(const char *rest, const char *own, bool *seen, bool *is_own,
                       double *own_gflops, double *blas_gflops)
{
	/* a and g are only read once sscanf has filled all three: an empty
	 * rest leaves them unset (a fuzzer-found read past a). */
	char a[32] = "";
	double g[2] = {0, 0};
	int used = 0;
	const bool ok = sscanf(rest, "%31s %lf %lf%n", a, &g[0], &g[1], &used) == 3 &&
	                rest[used] == 0 && !*seen && (!strcmp(a, own) || !strcmp(a, "blas")) &&
	                g[0] >= 0 && g[0] < 1e6 && g[1] >= 0 && g[1] < 1e6;
	*seen = true;
	if (ok) {
		*is_own = !strcmp(a, own);
		*own_gflops = g[0];
		*blas_gflops = g[1];
	}
	return ok;
}

bool rvi_kchoice_parse(const char *text, size_t len, rvk_choice *c)
{
	rvk_choice_default(c);
	/* the check line ends the text: "check " + 64 hex digits + "\n" */
	const size_t check_len = 6 + 2 * RVI_SHA256_BYTES + 1;
	if (len < check_len || len > ENTRY_MAX || memchr(text, 0, len) != NULL)
		return false;
	const char *check = text + len - check_len;
	if (check != text && check[-1] != '\n')
		return false;
	if (strncmp(check, "check ", 6) != 0 || text[len - 1] != '\n')
		return false;
	uint8_t digest[RVI_SHA256_BYTES];
	char hex[2 * RVI_SHA256_BYTES + 1];
	rvi_sha256(text, (size_t)(check - text), digest);
	rvi_sha256_hex(digest, hex);
	if (memcmp(hex, check + 6, 2 * RVI_SHA256_BYTES) != 0)
		return false;

	/* The body, copied to parse it line by line. */
	const size_t body_len = (size_t)(check - text);
	char *body = malloc(body_len + 1);
	if (!body)
		return false;
	memcpy(body, text, body_len);
	body[body_len] = 0;
	char key[512], sets[256] = "";
	make_key(key, sizeof(key));
	for (int i = 0; i < c->n_sets; i++) {
		strcat(sets, " ");
		strcat(sets, c->sets[i]);
	}
	bool ok = true, seen[RVK_N_CHOICE_TYPES] = {false}, have_key = false, have_sets = false,
	     have_attn = false, have_gemm = false;
	int line_no = 0;
	char *save = NULL;
	for (char *line = strtok_r(body, "\n", &save); line && ok;
	     line = strtok_r(NULL, "\n", &save), line_no++) {
		char a[32], b[32], e[32];
		double g[RVK_N_PHASES];
		int used = 0;
		if (line_no == 0) {
			ok = strcmp(line, RVI_KCHOICE_TAG) == 0;
		} else if (strncmp(line, "key ", 4) == 0) {
			ok = !have_key && strcmp(line + 4, key) == 0;
			have_key = true;
		} else if (strncmp(line, "sets", 4) == 0) {
			ok = !have_sets && strcmp(line + 4, sets) == 0;
			have_sets = true;
		} else if (sscanf(line, "choice %31s %31s %31s%n", a, b, e, &used) == 3 &&
		           line[used] == 0) {
			const int ti = type_index(a);
			const char *ex = set_named(c, b), *wi = set_named(c, e);
			ok = ti >= 0 && !seen[ti] && ex && wi;
			if (ok) {
				seen[ti] = true;
				c->exact[ti] = ex;
				c->wide[ti] = wi;
			}
		} else if (sscanf(line, "speed %31s %31s %lf %lf %lf %lf%n", a, b, &g[0], &g[1],
		                  &g[2], &g[3], &used) == 6 &&
		           line[used] == 0) {
			const int ti = type_index(a);
			int si = -1;
			for (int i = 0; i < c->n_sets; i++)
				si = strcmp(c->sets[i], b) == 0 ? i : si;
			ok = ti >= 0 && si >= 0;
			for (int ph = 0; ok && ph < RVK_N_PHASES; ph++) {
				ok = g[ph] >= 0 && g[ph] < 1e6;
				c->gbps[ti][si][ph] = g[ph];
			}
		} else if (!strncmp(line, "attention ", 10)) {
			ok = parse_path(line + 10, "fused", &have_attn, &c->attn_fused,
			                &c->attn_gflops_fused, &c->attn_gflops_blas);
		} else if (!strncmp(line, "gemm ", 5)) {
			ok = parse_path(line + 5, "own", &have_gemm, &c->gemm_own,
			                &c->gemm_gflops_own, &c->gemm_gflops_blas);
		} else {
			ok = false;
		}
	}
	free(body);
	for (int i = 0; i < RVK_N_CHOICE_TYPES; i++)
		ok = ok && seen[i];
	ok = ok && have_key && have_sets && have_attn && have_gemm && line_no > 0;
	if (!ok)
		rvk_choice_default(c);
	return ok;
}

/* Reads the entry at path: true and *c when it is valid. */
static bool load_entry(const char *path, rvk_choice *c)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return false;
	char *buf = malloc(ENTRY_MAX + 1);
	const size_t n = buf ? fread(buf, 1, ENTRY_MAX + 1, f) : 0;
	fclose(f);
	const bool ok = buf && n <= ENTRY_MAX && rvi_kchoice_parse(buf, n, c);
	free(buf);
	return ok;
}

/* Writes c's entry to path atomically (a temporary file in the same
 * directory, renamed over it). */
static int store_entry(const char *path, const rvk_choice *c, rvi_err *err)
{
	char *text = malloc(ENTRY_MAX);
	size_t n = text ? format_entry(c, text, ENTRY_MAX - 80) : 0;
	if (n == 0) {
		free(text);
		return rvi_errorf(err, RV_ERR_NOMEM, "kernel choice: entry too large");
	}
	uint8_t digest[RVI_SHA256_BYTES];
	char hex[2 * RVI_SHA256_BYTES + 1];
	rvi_sha256(text, n, digest);
	rvi_sha256_hex(digest, hex);
	n += (size_t)snprintf(text + n, ENTRY_MAX - n, "check %s\n", hex);

	char tmp[RVI_EMBCACHE_PATH_MAX + 16];
	snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path);
	int r = RV_OK;
	const int fd = mkstemp(tmp);
	if (fd < 0) {
		r = rvi_errorf(err, RV_ERR_IO, "cannot create a file next to %s: %s", path,
		               strerror(errno));
	} else {
		const ssize_t w = write(fd, text, n);
		const int e = errno;
		/* close reports delayed write errors on some file systems */
		if (close(fd) != 0 || w != (ssize_t)n)
			r = rvi_errorf(err, RV_ERR_IO, "cannot write %s: %s", tmp,
			               strerror(w < 0   ? e
			                        : errno ? errno
			                                : EIO));
		else if (rename(tmp, path) != 0)
			r = rvi_errorf(err, RV_ERR_IO, "cannot rename %s to %s: %s", tmp, path,
			               strerror(errno));
		if (r != RV_OK)
			unlink(tmp);
	}
	free(text);
	return r;
}

int rvi_kchoice_get(const char *dir, double budget_ms, rvk_choice *c, bool *measured, rvi_err *warn)
{
	char path[RVI_EMBCACHE_PATH_MAX];
	*measured = false;
	const bool have_path = dir && rvi_kchoice_path(dir, path, sizeof(path), warn) == RV_OK;
	if (have_path && load_entry(path, c))
		return RV_OK;
	*measured = true;
	if (!rvk_calibrate(c, budget_ms)) {
		/* no memory for the buffers: the choice by feature, not kept */
		rvi_errorf(warn, RV_ERR_NOMEM, "kernel choice: no memory to measure");
		return RV_OK;
	}
	/* the encoders' attention and the wide float products: the first
	 * set's own kernels unless the BLAS is faster by the margin the kernel
	 * sets need */
	const rvk_table *first = c->n_sets > 0 ? rvk_table_for(c->sets[0], NULL, 0) : NULL;
	if (first) {
		rvi_attn_measure(first, budget_ms > 0 ? ATTN_BUDGET_MS : 0, &c->attn_gflops_fused,
		                 &c->attn_gflops_blas);
		rvi_matmul_measure(first, budget_ms > 0 ? ATTN_BUDGET_MS : 0, &c->gemm_gflops_own,
		                   &c->gemm_gflops_blas);
	}
	c->attn_fused = !(c->attn_gflops_blas > c->attn_gflops_fused * (1.0 + RVK_CHOICE_MARGIN));
	c->gemm_own = !(c->gemm_gflops_blas > c->gemm_gflops_own * (1.0 + RVK_CHOICE_MARGIN));
	if (have_path)
		store_entry(path, c, warn);
	return RV_OK;
}

/* ---- the process's choice ------------------------------------------------------- */

static pthread_once_t auto_once = PTHREAD_ONCE_INIT;

static void choose_auto(void)
{
	const char *cal = getenv("RLAIFV_CALIBRATE");
	if (cal && strcmp(cal, "0") == 0)
		return; /* the choice by feature */
	rvi_err warn = {0};
	char dir[RVI_EMBCACHE_PATH_MAX];
	const bool have_dir = rvi_embcache_dir(dir, sizeof(dir), &warn) == RV_OK;
	rvk_choice c;
	bool measured = false;
	const double t0 = rvi_now_ms();
	rvi_kchoice_get(have_dir ? dir : NULL, BUDGET_MS, &c, &measured, &warn);
	if (warn.status != RV_OK)
		rvi_log(RV_LOG_WARN,
		        "kernel choice not kept in the cache (measured again next run): %s",
		        warn.msg);
	char msg[256];
	if (!rvk_set_auto(&c, msg, sizeof(msg))) {
		rvi_log(RV_LOG_WARN, "kernel choice: %s", msg);
		return;
	}
	rvk_cpu cpu;
	rvk_cpu_info(&cpu);
	const rvk_table *t = rvk_table_for("auto", NULL, 0);
	rvi_log(RV_LOG_INFO, "kernels %s on %s family %d model %d (%s): %s",
	        measured ? "measured" : "from the cache", cpu.vendor, cpu.family, cpu.model,
	        cpu.name, t ? t->name : "?");
	if (measured)
		rvi_log(RV_LOG_INFO, "kernel calibration took %.0f ms", rvi_now_ms() - t0);
}

void rvi_kernels_auto(void)
{
	pthread_once(&auto_once, choose_auto);
}
