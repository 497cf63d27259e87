/* util.c: error messages, allocation and timing helpers (see util.h). */
#include "src/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

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

uint64_t rvi_peak_rss(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (uint64_t)ru.ru_maxrss * 1024u; /* Linux reports KiB */
}
