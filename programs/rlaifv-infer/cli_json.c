/* cli_json.c: the strict JSON reader of cli_json.h. Recursive descent with
 * a depth limit; every node and decoded string lives in two buffers of the
 * document, sized from the input's length, so nothing grows without bound. */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "programs/rlaifv-infer/cli_json.h"

typedef struct parser {
	const char *s;
	size_t len, pos;
	cj_doc *doc;
	char *err;
	size_t errlen;
} parser;

static int fail(parser *p, const char *fmt, ...)
{
	if (p->err && p->errlen) {
		int n = snprintf(p->err, p->errlen, "byte %zu: ", p->pos);
		if (n >= 0 && (size_t)n < p->errlen) {
			va_list ap;
			va_start(ap, fmt);
			vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
			va_end(ap);
		}
	}
	return -1;
}

static void skip_blanks(parser *p)
{
	while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
	                           p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
		p->pos++;
}

static int new_node(parser *p, cj_type type)
{
	cj_doc *d = p->doc;
	if (d->n == d->cap) {
		/* every node takes at least one byte of input */
		if ((size_t)d->cap > p->len)
			return fail(p, "too many values");
		int cap = d->cap ? d->cap * 2 : 16;
		cj_node *nodes = realloc(d->nodes, (size_t)cap * sizeof(*nodes));
		if (!nodes)
			return fail(p, "out of memory");
		d->nodes = nodes;
		d->cap = cap;
	}
	d->nodes[d->n] = (cj_node){type, -1, -1, NULL, NULL, 0};
	return d->n++;
}

/* The arena holds at most 2 bytes per input byte plus one: each decoded
 * string or number text is no longer than its source, plus its NUL. */
static char *arena_put(parser *p, char c)
{
	cj_doc *d = p->doc;
	if (d->used >= d->arena_cap)
		return NULL;
	d->arena[d->used] = c;
	return &d->arena[d->used++];
}

int cj_hex4(const char *s, unsigned *out)
{
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		const char c = s[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

static int hex4(parser *p, unsigned *out)
{
	if (p->len - p->pos < 4)
		return fail(p, "truncated \\u escape");
	if (cj_hex4(p->s + p->pos, out))
		return fail(p, "bad \\u escape");
	p->pos += 4;
	return 0;
}

static void put_utf8(parser *p, unsigned cp)
{
	if (cp < 0x80) {
		arena_put(p, (char)cp);
	} else if (cp < 0x800) {
		arena_put(p, (char)(0xC0 | cp >> 6));
		arena_put(p, (char)(0x80 | (cp & 0x3F)));
	} else if (cp < 0x10000) {
		arena_put(p, (char)(0xE0 | cp >> 12));
		arena_put(p, (char)(0x80 | (cp >> 6 & 0x3F)));
		arena_put(p, (char)(0x80 | (cp & 0x3F)));
	} else {
		arena_put(p, (char)(0xF0 | cp >> 18));
		arena_put(p, (char)(0x80 | (cp >> 12 & 0x3F)));
		arena_put(p, (char)(0x80 | (cp >> 6 & 0x3F)));
		arena_put(p, (char)(0x80 | (cp & 0x3F)));
	}
}

/* The length of the valid UTF-8 sequence at s[0..n), 0 if invalid
 * (overlong forms, surrogates and code points past U+10FFFF refused). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t k = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC0 ? 2 : 0;
	if (k == 0 || s[0] > 0xF4 || s[0] == 0xC0 || s[0] == 0xC1 || n < k)
		return 0;
	for (size_t i = 1; i < k; i++)
		if ((s[i] & 0xC0) != 0x80)
			return 0;
	if ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0) ||
	    (s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] >= 0x90))
		return 0;
	return k;
}

/* A string at p->pos (its opening quote): decoded into the arena. */
static int parse_string(parser *p, const char **out, size_t *out_len)
{
	p->pos++;
	char *start = &p->doc->arena[p->doc->used];
	size_t n0 = p->doc->used;
	for (;;) {
		if (p->pos >= p->len)
			return fail(p, "unterminated string");
		unsigned char c = (unsigned char)p->s[p->pos];
		if (c == '"') {
			p->pos++;
			break;
		}
		if (c < 0x20)
			return fail(p, "control character in a string");
		if (c == '\\') {
			if (++p->pos >= p->len)
				return fail(p, "unterminated string");
			char e = p->s[p->pos++];
			unsigned cp;
			switch (e) {
			case '"':
			case '\\':
			case '/':
				arena_put(p, e);
				continue;
			case 'b':
				arena_put(p, '\b');
				continue;
			case 'f':
				arena_put(p, '\f');
				continue;
			case 'n':
				arena_put(p, '\n');
				continue;
			case 'r':
				arena_put(p, '\r');
				continue;
			case 't':
				arena_put(p, '\t');
				continue;
			case 'u':
				if (hex4(p, &cp))
					return -1;
				if (cp >= 0xDC00 && cp <= 0xDFFF)
					return fail(p, "lone low surrogate");
				if (cp >= 0xD800 && cp <= 0xDBFF) {
					unsigned lo;
					if (p->len - p->pos < 2 || p->s[p->pos] != '\\' ||
					    p->s[p->pos + 1] != 'u')
						return fail(p, "lone high surrogate");
					p->pos += 2;
					if (hex4(p, &lo))
						return -1;
					if (lo < 0xDC00 || lo > 0xDFFF)
						return fail(p, "lone high surrogate");
					cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
				}
				if (cp == 0)
					return fail(p, "\\u0000 in a string");
				put_utf8(p, cp);
				continue;
			default:
				return fail(p, "bad escape \\%c", e);
			}
		}
		if (c < 0x80) {
			arena_put(p, (char)c);
			p->pos++;
			continue;
		}
		size_t k = utf8_len((const unsigned char *)p->s + p->pos, p->len - p->pos);
		if (!k)
			return fail(p, "invalid UTF-8");
		for (size_t i = 0; i < k; i++)
			arena_put(p, p->s[p->pos + i]);
		p->pos += k;
	}
	*out_len = p->doc->used - n0;
	arena_put(p, 0);
	*out = start;
	return 0;
}

static int is_digit(parser *p)
{
	return p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9';
}

static int parse_number(parser *p, cj_node *v)
{
	size_t start = p->pos;
	if (p->s[p->pos] == '-')
		p->pos++;
	if (!is_digit(p))
		return fail(p, "bad number");
	if (p->s[p->pos] == '0')
		p->pos++;
	else
		while (is_digit(p))
			p->pos++;
	if (p->pos < p->len && p->s[p->pos] == '.') {
		p->pos++;
		if (!is_digit(p))
			return fail(p, "bad number");
		while (is_digit(p))
			p->pos++;
	}
	if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
		p->pos++;
		if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
			p->pos++;
		if (!is_digit(p))
			return fail(p, "bad number");
		while (is_digit(p))
			p->pos++;
	}
	char *t = &p->doc->arena[p->doc->used];
	for (size_t i = start; i < p->pos; i++)
		arena_put(p, p->s[i]);
	arena_put(p, 0);
	v->str = t;
	v->len = p->pos - start;
	return 0;
}

static int parse_value(parser *p, int depth);

static int literal(parser *p, const char *word)
{
	size_t n = strlen(word);
	if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n))
		return fail(p, "unexpected character '%c'", p->s[p->pos]);
	p->pos += n;
	return 0;
}

/* The elements of an array or members of an object, p->pos past the '['
 * or '{'. Links the children of node id. */
static int parse_children(parser *p, int id, int depth, int object)
{
	const char close = object ? '}' : ']';
	int last = -1;
	skip_blanks(p);
	if (p->pos < p->len && p->s[p->pos] == close) {
		p->pos++;
		return 0;
	}
	for (;;) {
		const char *key = NULL;
		size_t key_len = 0;
		skip_blanks(p);
		if (object) {
			if (p->pos >= p->len || p->s[p->pos] != '"')
				return fail(p, "expected a member name");
			if (parse_string(p, &key, &key_len))
				return -1;
			for (int c = p->doc->nodes[id].child; c >= 0; c = p->doc->nodes[c].next)
				if (!strcmp(p->doc->nodes[c].key, key))
					return fail(p, "duplicate member \"%s\"", key);
			skip_blanks(p);
			if (p->pos >= p->len || p->s[p->pos] != ':')
				return fail(p, "expected ':'");
			p->pos++;
		}
		int c = parse_value(p, depth + 1);
		if (c < 0)
			return -1;
		p->doc->nodes[c].key = key;
		if (last < 0)
			p->doc->nodes[id].child = c;
		else
			p->doc->nodes[last].next = c;
		last = c;
		skip_blanks(p);
		if (p->pos >= p->len)
			return fail(p, "unterminated %s", object ? "object" : "array");
		if (p->s[p->pos] == close) {
			p->pos++;
			return 0;
		}
		if (p->s[p->pos] != ',')
			return fail(p, "expected ',' or '%c'", close);
		p->pos++;
	}
}

/* One value at p->pos; returns its node, or -1. */
static int parse_value(parser *p, int depth)
{
	if (depth > CJ_MAX_DEPTH)
		return fail(p, "nested deeper than %d", CJ_MAX_DEPTH);
	skip_blanks(p);
	if (p->pos >= p->len)
		return fail(p, "unexpected end");
	char c = p->s[p->pos];
	int id;
	switch (c) {
	case '{':
	case '[':
		if ((id = new_node(p, c == '{' ? CJ_OBJECT : CJ_ARRAY)) < 0)
			return -1;
		p->pos++;
		return parse_children(p, id, depth, c == '{') ? -1 : id;
	case '"': {
		const char *s;
		size_t n;
		if ((id = new_node(p, CJ_STRING)) < 0 || parse_string(p, &s, &n))
			return -1;
		p->doc->nodes[id].str = s;
		p->doc->nodes[id].len = n;
		return id;
	}
	case 't':
		return literal(p, "true") ? -1 : new_node(p, CJ_TRUE);
	case 'f':
		return literal(p, "false") ? -1 : new_node(p, CJ_FALSE);
	case 'n':
		return literal(p, "null") ? -1 : new_node(p, CJ_NULL);
	default:
		if (c != '-' && (c < '0' || c > '9'))
			return fail(p, "unexpected character '%c'", c);
		if ((id = new_node(p, CJ_NUMBER)) < 0)
			return -1;
		return parse_number(p, &p->doc->nodes[id]) ? -1 : id;
	}
}

void cj_free(cj_doc *doc)
{
	free(doc->nodes);
	free(doc->arena);
	memset(doc, 0, sizeof(*doc));
}

int cj_parse(const char *text, size_t len, cj_doc *doc, char *err, size_t errlen)
{
	memset(doc, 0, sizeof(*doc));
	parser p = {text, len, 0, doc, err, errlen};
	if (len > CJ_MAX_TEXT)
		return fail(&p, "longer than %d MiB", CJ_MAX_TEXT >> 20);
	doc->arena_cap = 2 * len + 1;
	doc->arena = malloc(doc->arena_cap);
	if (!doc->arena)
		return fail(&p, "out of memory");
	if (parse_value(&p, 0) < 0) {
		cj_free(doc);
		return -1;
	}
	skip_blanks(&p);
	if (p.pos != len) {
		fail(&p, "text after the value");
		cj_free(doc);
		return -1;
	}
	return 0;
}

const cj_node *cj_get(const cj_doc *doc, const cj_node *obj, const char *key)
{
	if (!obj || obj->type != CJ_OBJECT)
		return NULL;
	for (int c = obj->child; c >= 0; c = doc->nodes[c].next)
		if (!strcmp(doc->nodes[c].key, key))
			return &doc->nodes[c];
	return NULL;
}

int cj_integer(const cj_node *v, long long lo, long long hi, long long *out)
{
	if (!v || v->type != CJ_NUMBER || strpbrk(v->str, ".eE"))
		return 0;
	errno = 0;
	char *end;
	long long x = strtoll(v->str, &end, 10);
	if (errno || *end || x < lo || x > hi)
		return 0;
	*out = x;
	return 1;
}
