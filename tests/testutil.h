/* testutil.h: what every test program shares: assertion counting, paths to
 * tests/data, a small JSON reader for the reference files, SHA-256 and a
 * seeded random source. */
#ifndef RLAIFV_TESTUTIL_H
#define RLAIFV_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

extern int tu_failures;
extern int tu_checks;

/* CHECK(cond, fmt, ...): counts, and prints a FAIL line with file:line. */
#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		tu_checks++;                                                                       \
		if (!(cond)) {                                                                     \
			tu_failures++;                                                             \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);            \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
		}                                                                                  \
	} while (0)

/* Prints the summary and returns the exit status automake expects. */
int tu_finish(const char *name);

/* Path of a file in tests/data (uses $srcdir for VPATH builds); static buffer. */
const char *tu_data(const char *name);

/* Whole file into a malloc'ed, NUL-terminated buffer; NULL on error. */
char *tu_read_file(const char *path, size_t *size);

/* A copy of the file at path with the bytes of the first occurrence of
 * find replaced by repl (same length) and, when value_at >= 0, the
 * little-endian int32 value_at bytes after the match's end set to value
 * (a GGUF key's value: after its 4-byte type). Written to a temporary file
 * named after name; returns its path (static buffer: remove() it when
 * done), NULL when find is absent or a write fails. */
const char *tu_patched(const char *path, const char *name, const char *find, const char *repl,
                       long value_at, int32_t value);

/* JSON: a parsed tree. */
enum tu_json_kind { TU_JNULL, TU_JBOOL, TU_JNUM, TU_JSTR, TU_JARR, TU_JOBJ };
typedef struct tu_json {
	enum tu_json_kind kind;
	double num;
	bool b;
	char *str;             /* TU_JSTR (decoded UTF-8) */
	size_t n;              /* TU_JARR / TU_JOBJ element count */
	struct tu_json *items; /* elements / member values */
	char **keys;           /* TU_JOBJ member names */
} tu_json;

tu_json *tu_json_parse(const char *text); /* NULL on a syntax error */
tu_json *tu_json_load(const char *path);  /* parse a file; NULL on error */
void tu_json_free(tu_json *j);
/* Member of an object by name; a dotted path "greedy.tokens" walks objects. */
const tu_json *tu_json_get(const tu_json *j, const char *path);
const tu_json *tu_json_at(const tu_json *j, size_t i); /* array element or NULL */

/* A float32 .npy file (format 1.0 to 3.0, little-endian '<f4', C order or
 * a 2-D array in Fortran order): its values in C order (malloc'ed) and
 * element count; NULL when unreadable. */
float *tu_npy_f32(const char *path, size_t *n);

/* SHA-256 of data, as 64 lowercase hex digits + NUL into hex. */
void tu_sha256_hex(const void *data, size_t n, char hex[65]);

/* A growable byte buffer for the files tests write (GGUF, PNG, caches).
 * Out of memory ends the test program with a message. */
typedef struct tu_buf {
	uint8_t *p;
	size_t n, cap;
} tu_buf;

void tu_put(tu_buf *b, const void *data, size_t n);
void tu_put_le(tu_buf *b, uint64_t v, int bytes); /* the low `bytes` of v, little-endian */
void tu_put_be(tu_buf *b, uint64_t v, int bytes); /* ... big-endian */
void tu_buf_free(tu_buf *b);

/* Deterministic random numbers (splitmix64). */
uint64_t tu_rand_u64(uint64_t *state);
float tu_rand_uniform(uint64_t *state, float lo, float hi);

/* A float32 .npy file under tests/data (format 1.0 to 3.0, little-endian
 * '<f4', C order): malloc'ed values and *n their count; NULL when
 * unreadable. */
float *tu_npy_load(const char *name, size_t *n);
/* A (rows, cols) float32 .npy as above, in C or Fortran order, as
 * malloc'ed values in C order; NULL when unreadable or of another size. */
float *tu_npy_load_2d(const char *name, size_t rows, size_t cols);
/* max |a[i] - ref[i]| over n values against the float32 .npy name under
 * tests/data; INFINITY when it is unreadable, of another size, or a
 * difference is NaN. */
double tu_npy_max_diff(const float *a, size_t n, const char *name);

#endif
