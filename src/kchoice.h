/* kchoice.h: the kernels chosen by measurement (simd/kernels.h, "measured
 * tables"), kept per CPU in the user's cache so that the calibration runs
 * once per machine and every later run makes the same choice.
 *
 * Entry: <cache dir>/kernels-<16 hex digits of SHA-256(key)>.txt, where the
 * cache dir is $XDG_CACHE_HOME/rlaifv (default ~/.cache/rlaifv) and the key
 * is "vendor|family|model|name|kernel build id". Text, one record a line:
 *     rlaifv kernel choice 2
 *     key <the key>
 *     sets <the usable sets, best by feature first>
 *     choice <type> <exact set> <wide set>          one per choice type
 *     speed <type> <set> <GB/s per phase x 4>       one per type and set
 *     attention fused|blas <GFLOP/s fused> <GFLOP/s BLAS>
 *                                  the encoders' attention (src/attention.c)
 *     gemm own|blas <GFLOP/s own> <GFLOP/s BLAS>
 *                                  the wide float products (src/matmul.c)
 *     check <SHA-256 of every byte before this line, hex>
 * An entry is used only if every line is there and well formed, the check
 * matches and the key and sets are this process's; anything else (a
 * truncated or edited file, another CPU's entry copied over, a new build)
 * is measured again and replaced. Written to a temporary file and renamed.
 * A cache that cannot be read or written never makes a run fail: the
 * choice is measured, used, and a warning goes to the log. */
#ifndef RLAIFV_KCHOICE_H
#define RLAIFV_KCHOICE_H

#include <stdbool.h>
#include <stddef.h>

#include "simd/kernels.h"
#include "src/util.h"

#define RVI_KCHOICE_TAG "rlaifv kernel choice 2"

/* The entry's path in dir for this CPU and build (out: cap bytes). */
int rvi_kchoice_path(const char *dir, char *out, size_t cap, rvi_err *err);

/* The choice kept in dir: RV_OK and *c from the entry, or RV_OK after
 * measuring (budget_ms per measurement, see rvk_calibrate) and storing it,
 * with *measured telling which. A cache that failed is a message in warn
 * (warn->status non-zero), not an error: *c is always usable. dir NULL:
 * no cache. */
int rvi_kchoice_get(const char *dir, double budget_ms, rvk_choice *c, bool *measured,
                    rvi_err *warn);

/* Parses an entry's text (len bytes): true and *c when it is valid for
 * this CPU and build (see above). */
bool rvi_kchoice_parse(const char *text, size_t len, rvk_choice *c);

/* Makes the measured table this process's "auto", once (later calls do
 * nothing): from the cache, else measured, unless $RLAIFV_CALIBRATE is 0
 * (the choice by feature, no cache: tests, CI). Called where "auto" is to
 * be applied (not when $RLAIFV_ISA forces a set). Notes go to the log. */
void rvi_kernels_auto(void);

#endif
