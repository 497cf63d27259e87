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
