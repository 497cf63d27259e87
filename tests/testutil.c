/* testutil.c: assertion counting, data paths, a small JSON reader, SHA-256
 * and seeded random numbers for the test programs (see testutil.h). */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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

/* ---- SHA-256 (FIPS 180-4) ------------------------------------------------ */

static const uint32_t sha_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static uint32_t ror(uint32_t x, int n)
{
	return (x >> n) | (x << (32 - n));
}

static void sha_block(uint32_t h[8], const uint8_t *p)
{
	uint32_t w[64];
	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		       (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (int i = 16; i < 64; i++) {
		uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
		uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
	for (int i = 0; i < 64; i++) {
		uint32_t t1 = hh + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) +
		              sha_k[i] + w[i];
		uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
		hh = g;
		g = f;
		f = e;
		e = d + t1;
		d = c;
		c = b;
		b = a;
		a = t1 + t2;
	}
	h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
}

void tu_sha256_hex(const void *data, size_t n, char hex[65])
{
	uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
	                 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
	const uint8_t *p = data;
	size_t full = n / 64 * 64;
	for (size_t i = 0; i < full; i += 64)
		sha_block(h, p + i);
	uint8_t tail[128] = {0};
	size_t rem = n - full;
	memcpy(tail, p + full, rem);
	tail[rem] = 0x80;
	size_t tail_len = rem + 9 <= 64 ? 64 : 128;
	uint64_t bits = (uint64_t)n * 8;
	for (int i = 0; i < 8; i++)
		tail[tail_len - 1 - i] = (uint8_t)(bits >> (8 * i));
	for (size_t i = 0; i < tail_len; i += 64)
		sha_block(h, tail + i);
	for (int i = 0; i < 8; i++)
		snprintf(hex + 8 * i, 9, "%08x", h[i]);
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
