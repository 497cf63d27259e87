/* util.c: error messages, allocation and timing helpers (see util.h). */
#include "src/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int rvi_errorf(rvi_err *err, int status, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
		err->status = status;
	}
	return status;
}

void *rvi_alloc(size_t n, size_t size)
{
	uint64_t bytes;
	if (n == 0 || size == 0 || !rvi_mul_ok(n, size, &bytes) || bytes > SIZE_MAX)
		return NULL;
	/* 64-byte aligned, so that the kernels' vector loads of a row never
	 * straddle two cache lines (malloc's large blocks start 16 bytes into a
	 * page) */
	void *p = NULL;
	return posix_memalign(&p, 64, (size_t)bytes) == 0 ? p : NULL;
}

void *rvi_zalloc(size_t n, size_t size)
{
	if (n == 0 || size == 0)
		return NULL;
	return calloc(n, size);
}

int rvi_arena_alloc(rvi_arena *a, const uint64_t *size, float **const *region, int n_regions)
{
	uint64_t total = 0;
	a->base = NULL;
	a->n_floats = 0;
	for (int r = 0; r < n_regions; r++) {
		uint64_t rounded;
		if (!rvi_add_ok(size[r], 15, &rounded) ||
		    !rvi_add_ok(total, rounded / 16 * 16, &total))
			return RV_ERR_NOMEM;
	}
	a->base = total > 0 ? rvi_alloc((size_t)total, sizeof(float)) : NULL;
	if (total > 0 && (total > SIZE_MAX / sizeof(float) || !a->base))
		return RV_ERR_NOMEM;
	a->n_floats = total;
	uint64_t at = 0;
	for (int r = 0; r < n_regions; r++) {
		*region[r] = size[r] ? a->base + at : NULL;
		at += (size[r] + 15) / 16 * 16;
	}
	return RV_OK;
}

void rvi_arena_free(rvi_arena *a)
{
	free(a->base);
	a->base = NULL;
	a->n_floats = 0;
}

double rvi_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void rvi_fill_uniform(float *x, size_t n, uint64_t seed)
{
	uint64_t s = seed;
	for (size_t i = 0; i < n; i++) {
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		x[i] = (float)(s >> 40) / (float)(1 << 24) - 0.5f;
	}
}

void rvi_time_two(double budget_ms, bool (*run)(int path, void *arg), void *arg,
                  const double flop[2], double best[2])
{
	best[0] = best[1] = 0;
	const double t_end = rvi_now_ms() + (budget_ms > 0 ? budget_ms : 0);
	for (int pass = 0; pass < 4 || (pass < 64 && rvi_now_ms() < t_end); pass++) {
		const int path = pass % 2;
		const double t0 = rvi_now_ms();
		const bool ok = run(path, arg);
		const double ms = rvi_now_ms() - t0;
		if (ok && pass >= 2 && ms > 0 && flop[path] / (ms * 1e6) > best[path])
			best[path] = flop[path] / (ms * 1e6);
	}
}

uint64_t rvi_peak_rss(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (uint64_t)ru.ru_maxrss * 1024u; /* Linux reports KiB */
}

static const char *file_kind(mode_t m)
{
	return S_ISFIFO(m)   ? "a FIFO"
	       : S_ISCHR(m)  ? "a character device"
	       : S_ISBLK(m)  ? "a block device"
	       : S_ISSOCK(m) ? "a socket"
	                     : "not a file";
}

int rvi_open_regular(const char *path, int *fd, struct stat *st, rvi_err *err)
{
	*fd = -1;
	if (!path)
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "no path given");
	/* O_NONBLOCK: opening a FIFO for reading otherwise waits for a writer;
	 * O_NOCTTY: a terminal must not become our controlling one. */
	int f = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (f < 0)
		return rvi_errorf(err, RV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
	int rc = RV_OK;
	if (fstat(f, st) != 0)
		rc = rvi_errorf(err, RV_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
	else if (S_ISDIR(st->st_mode))
		rc = rvi_errorf(err, RV_ERR_IO, "%s: is a directory", path);
	else if (!S_ISREG(st->st_mode))
		rc = rvi_errorf(err, RV_ERR_IO, "%s: not a regular file (%s)", path,
		                file_kind(st->st_mode));
	else if (fcntl(f, F_SETFL, fcntl(f, F_GETFL) & ~O_NONBLOCK) != 0)
		rc = rvi_errorf(err, RV_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
	if (rc != RV_OK) {
		close(f);
		return rc;
	}
	*fd = f;
	return RV_OK;
}
