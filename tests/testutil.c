/* testutil.c: assertion counting, data paths, a small JSON reader, SHA-256
 * and seeded random numbers for the test programs (see testutil.h). */
#include "tests/testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/sha256.h"

int tu_failures;
int tu_checks;

int tu_finish(const char *name)
{
	printf("%s: %d checks, %d failed\n", name, tu_checks, tu_failures);
	return tu_failures ? 1 : 0;
}

const char *tu_data(const char *name)
{
	static char path[4096];
	const char *srcdir = getenv("srcdir");
	snprintf(path, sizeof(path), "%s/tests/data/%s", srcdir ? srcdir : ".", name);
	return path;
}

char *tu_read_file(const char *path, size_t *size)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap + 1);
	for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
		n += got;
		if (n == cap) {
			cap *= 2;
			char *grown = realloc(buf, cap + 1);
			if (!grown) {
				free(buf);
				buf = NULL;
			}
			buf = grown;
		}
	}
	fclose(f);
	if (!buf)
		return NULL;
	buf[n] = 0;
	if (size)
		*size = n;
	return buf;
}

const char *tu_patched(const char *path, const char *name, const char *find, const char *repl,
                       long value_at, int32_t value)
{
	static char out[512];
	size_t n;
	char *buf = tu_read_file(path, &n);
	const size_t fl = strlen(find);
	char *at = NULL;
	for (size_t i = 0; buf && i + fl <= n && !at; i++)
		if (!memcmp(buf + i, find, fl))
			at = buf + i;
	if (!at || (value_at >= 0 && (size_t)(at - buf) + fl + (size_t)value_at + 4 > n)) {
		free(buf);
		return NULL;
	}
	memcpy(at, repl, fl);
	const uint8_t le[4] = {(uint8_t)value, (uint8_t)(value >> 8), (uint8_t)(value >> 16),
	                       (uint8_t)((uint32_t)value >> 24)};
	if (value_at >= 0)
		memcpy(at + fl + value_at, le, 4);
	const char *tmp = getenv("TMPDIR");
	snprintf(out, sizeof(out), "%s/rlaifv-test-%ld-%s", tmp && *tmp ? tmp : "/tmp",
	         (long)getpid(), name);
	FILE *f = fopen(out, "wb");
	bool ok = f && fwrite(buf, 1, n, f) == n;
	if (f && fclose(f) != 0)
		ok = false;
	free(buf);
	return ok ? out : NULL;
}

/* ---- JSON ------------------------------------------------------------- */

typedef struct {
	const char *p;
	int depth;
} jparser;

static void skip_ws(jparser *ps)
{
	while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')
		ps->p++;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int put_utf8(char *out, unsigned cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xC0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xE0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	out[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

static int read_hex4(const char *p, unsigned *out)
{
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		int h = hexval(p[i]);
		if (h < 0)
			return -1;
		v = v * 16 + (unsigned)h;
	}
	*out = v;
	return 0;
}

static char *parse_string(jparser *ps)
{
	if (*ps->p != '"')
		return NULL;
	ps->p++;
	const char *start = ps->p;
	size_t cap = 16;
	while (*ps->p && *ps->p != '"') {
		if (*ps->p == '\\' && ps->p[1])
			ps->p++;
		ps->p++;
		cap++;
	}
	if (*ps->p != '"')
		return NULL;
	char *out = malloc(cap * 2);
	size_t n = 0;
	for (const char *q = start; q < ps->p;) {
		if (*q != '\\') {
			out[n++] = *q++;
			continue;
		}
		q++;
		char c = *q++;
		switch (c) {
		case 'n':
			out[n++] = '\n';
			break;
		case 't':
			out[n++] = '\t';
			break;
		case 'r':
			out[n++] = '\r';
			break;
		case 'b':
			out[n++] = '\b';
			break;
		case 'f':
			out[n++] = '\f';
			break;
		case 'u': {
			unsigned cp;
			if (read_hex4(q, &cp) < 0) {
				free(out);
				return NULL;
			}
			q += 4;
			if (cp >= 0xD800 && cp < 0xDC00 && q[0] == '\\' && q[1] == 'u') {
				unsigned lo;
				if (read_hex4(q + 2, &lo) == 0 && lo >= 0xDC00 && lo < 0xE000) {
					cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
					q += 6;
				}
			}
			n += (size_t)put_utf8(out + n, cp);
			break;
		}
		default:
			out[n++] = c;
			break;
		}
	}
	out[n] = 0;
	ps->p++;
	return out;
}

static bool parse_value(jparser *ps, tu_json *out);

static bool push_item(tu_json *j, size_t *cap, tu_json *item, char *key)
{
	if (j->n == *cap) {
		*cap = *cap ? *cap * 2 : 8;
		j->items = realloc(j->items, *cap * sizeof(*j->items));
		if (j->kind == TU_JOBJ)
			j->keys = realloc(j->keys, *cap * sizeof(*j->keys));
	}
	j->items[j->n] = *item;
	if (j->kind == TU_JOBJ)
		j->keys[j->n] = key;
	j->n++;
	return true;
}

static bool parse_container(jparser *ps, tu_json *out, char close)
{
	size_t cap = 0;
	ps->p++;
	skip_ws(ps);
	if (*ps->p == close) {
		ps->p++;
		return true;
	}
	for (;;) {
		char *key = NULL;
		skip_ws(ps);
		if (close == '}') {
			key = parse_string(ps);
			if (!key)
				return false;
			skip_ws(ps);
			if (*ps->p != ':') {
				free(key);
				return false;
			}
			ps->p++;
		}
		tu_json item;
		if (!parse_value(ps, &item)) {
			free(key);
			return false;
		}
		push_item(out, &cap, &item, key);
		skip_ws(ps);
		if (*ps->p == ',') {
			ps->p++;
			continue;
		}
		if (*ps->p == close) {
			ps->p++;
			return true;
		}
		return false;
	}
}

static bool parse_value(jparser *ps, tu_json *out)
{
	memset(out, 0, sizeof(*out));
	skip_ws(ps);
	if (++ps->depth > 64)
		return false;
	bool ok = true;
	char c = *ps->p;
	if (c == '{') {
		out->kind = TU_JOBJ;
		ok = parse_container(ps, out, '}');
	} else if (c == '[') {
		out->kind = TU_JARR;
		ok = parse_container(ps, out, ']');
	} else if (c == '"') {
		out->kind = TU_JSTR;
		out->str = parse_string(ps);
		ok = out->str != NULL;
	} else if (!strncmp(ps->p, "true", 4) || !strncmp(ps->p, "false", 5)) {
		out->kind = TU_JBOOL;
		out->b = c == 't';
		ps->p += out->b ? 4 : 5;
	} else if (!strncmp(ps->p, "null", 4)) {
		out->kind = TU_JNULL;
		ps->p += 4;
	} else if (!strncmp(ps->p, "NaN", 3)) {
		out->kind = TU_JNUM;
		out->num = NAN;
		ps->p += 3;
	} else {
		char *end;
		out->kind = TU_JNUM;
		out->num = strtod(ps->p, &end);
		ok = end != ps->p;
		ps->p = end;
	}
	ps->depth--;
	return ok;
}

tu_json *tu_json_parse(const char *text)
{
	jparser ps = {text, 0};
	tu_json *j = malloc(sizeof(*j));
	if (!parse_value(&ps, j)) {
		tu_json_free(j);
		return NULL;
	}
	skip_ws(&ps);
	if (*ps.p) {
		tu_json_free(j);
		return NULL;
	}
	return j;
}

tu_json *tu_json_load(const char *path)
{
	char *text = tu_read_file(path, NULL);
	if (!text)
		return NULL;
	tu_json *j = tu_json_parse(text);
	free(text);
	return j;
}

static void json_free_members(tu_json *j)
{
	for (size_t i = 0; i < j->n; i++) {
		json_free_members(&j->items[i]);
		if (j->keys)
			free(j->keys[i]);
	}
	free(j->items);
	free(j->keys);
	free(j->str);
}

void tu_json_free(tu_json *j)
{
	if (!j)
		return;
	json_free_members(j);
	free(j);
}

const tu_json *tu_json_get(const tu_json *j, const char *path)
{
	while (j && *path) {
		const char *dot = strchr(path, '.');
		size_t len = dot ? (size_t)(dot - path) : strlen(path);
		const tu_json *next = NULL;
		if (j->kind == TU_JOBJ) {
			for (size_t i = 0; i < j->n; i++) {
				if (strlen(j->keys[i]) == len && !memcmp(j->keys[i], path, len)) {
					next = &j->items[i];
					break;
				}
			}
		}
		j = next;
		path += len + (dot ? 1 : 0);
	}
	return j;
}

const tu_json *tu_json_at(const tu_json *j, size_t i)
{
	if (!j || (j->kind != TU_JARR && j->kind != TU_JOBJ) || i >= j->n)
		return NULL;
	return &j->items[i];
}

/* ---- SHA-256 ------------------------------------------------------------- */

/* The library's implementation (src/sha256.c), so the code exists once. */
void tu_sha256_hex(const void *data, size_t n, char hex[65])
{
	uint8_t digest[RVI_SHA256_BYTES];
	rvi_sha256(data, n, digest);
	rvi_sha256_hex(digest, hex);
}

/* ---- random ------------------------------------------------------------ */

uint64_t tu_rand_u64(uint64_t *state)
{
	uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

float tu_rand_uniform(uint64_t *state, float lo, float hi)
{
	double u = (double)(tu_rand_u64(state) >> 11) / 9007199254740992.0;
	return lo + (float)(u * (hi - lo));
}

void tu_put(tu_buf *b, const void *data, size_t n)
{
	if (b->n + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->n + n)
			cap *= 2;
		uint8_t *p = realloc(b->p, cap);
		if (!p) {
			fprintf(stderr, "tests: out of memory for a %zu-byte buffer\n", cap);
			exit(1);
		}
		b->p = p;
		b->cap = cap;
	}
	if (n)
		memcpy(b->p + b->n, data, n);
	b->n += n;
}

void tu_put_le(tu_buf *b, uint64_t v, int bytes)
{
	uint8_t t[8];
	for (int i = 0; i < bytes && i < 8; i++)
		t[i] = (uint8_t)(v >> (8 * i));
	tu_put(b, t, (size_t)(bytes < 8 ? bytes : 8));
}

void tu_put_be(tu_buf *b, uint64_t v, int bytes)
{
	uint8_t t[8];
	for (int i = 0; i < bytes && i < 8; i++)
		t[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
	tu_put(b, t, (size_t)(bytes < 8 ? bytes : 8));
}

void tu_buf_free(tu_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->n = b->cap = 0;
}

float *tu_npy_f32(const char *path, size_t *n)
{
	size_t size;
	char *buf = tu_read_file(path, &size);
	*n = 0;
	if (!buf || size < 12 || memcmp(buf, "\x93NUMPY", 6)) {
		free(buf);
		return NULL;
	}
	const size_t hl = buf[6] == 1 ? (size_t)(uint8_t)buf[8] | (size_t)(uint8_t)buf[9] << 8
	                              : (size_t)(uint8_t)buf[8] | (size_t)(uint8_t)buf[9] << 8 |
	                                    (size_t)(uint8_t)buf[10] << 16;
	const size_t start = buf[6] == 1 ? 10 : 12, off = start + hl;
	if (off > size) {
		free(buf);
		return NULL;
	}
	char save = buf[off];
	buf[off] = 0; /* the header alone, for strstr */
	const bool fortran = strstr(buf + start, "True") != NULL;
	const char *shape = strstr(buf + start, "'shape': (");
	unsigned long rows = 0, cols = 0;
	bool ok = strstr(buf + start, "'<f4'") &&
	          (!fortran || (shape && sscanf(shape, "'shape': (%lu, %lu)", &rows, &cols) == 2));
	buf[off] = save;
	*n = (size - off) / 4;
	/* Fortran order: a 2-D array's columns one after another */
	ok = ok && (!fortran || rows * cols == *n);
	float *v = ok ? malloc(*n * sizeof(float) + 1) : NULL;
	if (!v) {
		*n = 0;
		free(buf);
		return NULL;
	}
	memcpy(v, buf + off, *n * sizeof(float));
	for (size_t i = 0; fortran && i < rows; i++)
		for (size_t j = 0; j < cols; j++)
			memcpy(&v[i * cols + j], buf + off + (j * rows + i) * 4, 4);
	free(buf);
	return v;
}

float *tu_npy_load(const char *name, size_t *n)
{
	return tu_npy_f32(tu_data(name), n);
}

double tu_npy_max_diff(const float *a, size_t n, const char *name)
{
	size_t rn = 0;
	float *ref = tu_npy_load(name, &rn);
	double worst = ref && rn == n ? 0 : INFINITY;
	for (size_t i = 0; ref && rn == n && i < n; i++) {
		const double d = fabs((double)a[i] - ref[i]);
		worst = d > worst || d != d ? (d != d ? INFINITY : d) : worst;
	}
	free(ref);
	return worst;
}

float *tu_npy_load_2d(const char *name, size_t rows, size_t cols)
{
	size_t n;
	float *v = tu_npy_f32(tu_data(name), &n);
	if (v && n != rows * cols) {
		free(v);
		return NULL;
	}
	return v;
}
