/* numflag.c: strict numeric option values (see numflag.h). */
#include "programs/numflag.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

static bool plain_number(const char *s, bool negative_ok, bool real)
{
	if (*s == '-' && negative_ok)
		s++;
	if (!isdigit((unsigned char)*s) && !(real && *s == '.'))
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s) &&
		    !(real && (*s == '.' || *s == 'e' || *s == 'E' ||
		               ((*s == '-' || *s == '+') && (s[-1] == 'e' || s[-1] == 'E')))))
			return false;
	return true;
}

int rvp_parse_int(const char *prog, const char *flag, const char *s, long lo, long hi, int *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (!plain_number(s, lo < 0, false) || errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "%s: %s: '%s' is not an integer in [%ld, %ld]\n", prog, flag, s, lo,
		        hi);
		return -1;
	}
	*out = (int)v;
	return 0;
}

int rvp_parse_float(const char *prog, const char *flag, const char *s, float lo, float hi,
                    float *out)
{
	char *end;
	errno = 0;
	float v = strtof(s, &end);
	if (!plain_number(s, lo < 0, true) || errno || end == s || *end || !(v >= lo && v <= hi)) {
		fprintf(stderr, "%s: %s: '%s' is not a number in [%g, %g]\n", prog, flag, s,
		        (double)lo, (double)hi);
		return -1;
	}
	*out = v;
	return 0;
}

int rvp_parse_u64(const char *prog, const char *flag, const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (!plain_number(s, false, false) || errno || end == s || *end) {
		fprintf(stderr, "%s: %s: '%s' is not a non-negative integer\n", prog, flag, s);
		return -1;
	}
	*out = v;
	return 0;
}
