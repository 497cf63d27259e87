/* util.h: error reporting, checked size arithmetic and timing shared by the
 * runtime. Owns no state: an rvi_err lives in whatever context reports it. */
#ifndef RLAIFV_UTIL_H
#define RLAIFV_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rlaifv.h"

#define RVI_ERR_MSG_MAX 512

/* Where a failing internal function leaves its message; the status it
 * returns is also kept so a caller can pass the error up unchanged. */
typedef struct rvi_err {
	int status;
	char msg[RVI_ERR_MSG_MAX];
} rvi_err;

#if defined(__GNUC__)
#define RVI_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define RVI_PRINTF(a, b)
#endif

/* Records status and a formatted message in err (which may be NULL);
 * returns status so callers can write `return rvi_errorf(err, ...)`. */
int rvi_errorf(rvi_err *err, int status, const char *fmt, ...) RVI_PRINTF(3, 4);

/* Overflow-checked arithmetic on sizes that come from files. Each returns
 * false (and leaves *out untouched) when the exact result does not fit. */
static inline bool rvi_mul_ok(uint64_t a, uint64_t b, uint64_t *out)
{
	uint64_t r;
	if (__builtin_mul_overflow(a, b, &r))
		return false;
	*out = r;
	return true;
}

static inline bool rvi_add_ok(uint64_t a, uint64_t b, uint64_t *out)
{
	uint64_t r;
	if (__builtin_add_overflow(a, b, &r))
		return false;
	*out = r;
	return true;
}

/* malloc/calloc that fail cleanly on a zero or overflowing request;
 * rvi_alloc's memory is 64-byte aligned (free() releases it). */
void *rvi_alloc(size_t n, size_t size);
void *rvi_zalloc(size_t n, size_t size);

/* The working memory of a forward pass: one 64-byte aligned block carved
 * into regions of floats, each starting on a cache line. */
typedef struct rvi_arena {
	float *base;
	uint64_t n_floats;
} rvi_arena;

/* Allocates n_regions regions of size[r] floats and points *region[r] at
 * each; RV_ERR_NOMEM (nothing allocated) when the total overflows or
 * memory runs out. */
int rvi_arena_alloc(rvi_arena *a, const uint64_t *size, float **const *region, int n_regions);
void rvi_arena_free(rvi_arena *a);

/* Opens path for reading without ever blocking on it: a FIFO, a terminal
 * or a device is refused from its fstat before any read, so a path that
 * is a FIFO nobody writes cannot hang the caller. what names the file's
 * role in messages ("model", "image"). On success *fd is an open
 * descriptor (blocking again) and *st its status; otherwise RV_ERR_IO with
 * "PATH: cannot open: REASON", "PATH: is a directory" or "PATH: not a
 * regular file (a FIFO)" in err. */
struct stat;
int rvi_open_regular(const char *path, int *fd, struct stat *st, rvi_err *err);

/* Monotonic wall clock in milliseconds. */
double rvi_now_ms(void);

/* x (n) uniform in [-0.5, 0.5) from a fixed xorshift stream started at
 * seed (non-zero): the data of the kernel measurements. */
void rvi_fill_uniform(float *x, size_t n, uint64_t seed);

/* The kernel choice's measurement of two ways of doing one job: run(path,
 * arg) does one pass of path 0 or 1 (false: it failed) of flop[path]
 * floating-point operations; the paths are timed in turn, at least two
 * passes each and for about budget_ms, the first of each left out (it
 * warms its memory). best[path]: the best GFLOP/s of each, 0 if none ran.
 * A busy machine can only make a pass slower, hence the best. */
void rvi_time_two(double budget_ms, bool (*run)(int path, void *arg), void *arg,
                  const double flop[2], double best[2]);

/* Peak resident set size of this process in bytes (0 when unknown). */
uint64_t rvi_peak_rss(void);

#endif
