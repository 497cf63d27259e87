/* numflag.h: the strict parsing of numeric option values that rlaifv-infer
 * and rlaifv-bench share. A value is the whole argument, written plainly
 * (digits; a '-' only where negative values are allowed; for reals a
 * point and an exponent: strto* alone would also take leading blanks, a
 * '+', hex and "inf", so " -1" became 2^64 - 1), and within its range.
 * Otherwise "PROG: FLAG: 'VALUE' is not ..." goes to stderr and the
 * functions return -1 (0 when *out was set). */
#ifndef RLAIFV_NUMFLAG_H
#define RLAIFV_NUMFLAG_H

#include <stdint.h>

int rvp_parse_int(const char *prog, const char *flag, const char *s, long lo, long hi, int *out);
int rvp_parse_float(const char *prog, const char *flag, const char *s, float lo, float hi,
                    float *out);
int rvp_parse_u64(const char *prog, const char *flag, const char *s, uint64_t *out);

#endif
