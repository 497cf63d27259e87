/* cli_json.h: a small strict JSON reader for rlaifv-infer --batch task
 * lines (RFC 8259 only: no comments, no trailing commas, no NaN, UTF-8
 * checked, duplicate keys refused), with limits on depth and size so that
 * a hostile line costs at most a few times its own length in memory. */
#ifndef RLAIFV_CLI_JSON_H
#define RLAIFV_CLI_JSON_H

#include <stddef.h>

#define CJ_MAX_DEPTH 32
#define CJ_MAX_TEXT  (64 << 20) /* the longest text cj_parse reads */

typedef enum { CJ_NULL, CJ_FALSE, CJ_TRUE, CJ_NUMBER, CJ_STRING, CJ_ARRAY, CJ_OBJECT } cj_type;

typedef struct cj_node {
	cj_type type;
	int child;       /* first element or member, -1 if none */
	int next;        /* next sibling, -1 if last */
	const char *key; /* member name (in an object), else NULL */
	const char *str; /* a string's decoded text (NUL-free) or a number's text */
	size_t len;      /* its length */
} cj_node;

typedef struct cj_doc {
	cj_node *nodes; /* nodes[0] is the root */
	int n, cap;
	char *arena; /* decoded strings and number texts */
	size_t used, arena_cap;
} cj_doc;

/* Parses text[0..len) (one whole value, blanks around it allowed) into
 * doc. 0 on success; -1 with a message in err (naming the byte offset) on
 * bad JSON or a limit passed; doc is then empty. cj_free in both cases. */
int cj_parse(const char *text, size_t len, cj_doc *doc, char *err, size_t errlen);
void cj_free(cj_doc *doc);

/* The member key of object node obj, or NULL. */
const cj_node *cj_get(const cj_doc *doc, const cj_node *obj, const char *key);

/* Whether number node v is an integer in [lo, hi] (written without
 * fraction or exponent); stores it in *out. */
int cj_integer(const cj_node *v, long long lo, long long hi, long long *out);

/* The four hex digits at s (a \u escape's, either case) into *out: 0, or
 * -1 on any other character (*out untouched). Reads exactly 4 bytes. */
int cj_hex4(const char *s, unsigned *out);

#endif
