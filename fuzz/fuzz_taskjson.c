/* fuzz_taskjson.c: libFuzzer target for the JSON reader of rlaifv-infer
 * --batch task lines (programs/rlaifv-infer/cli_json.c).
 *
 * Properties checked on every input the reader accepts: the nodes link
 * only to later nodes inside the document, every string is as long as its
 * length says (no NUL inside), every number is one strtod takes whole, and
 * the tree written back as JSON reads again into the same text (a round
 * trip through the reader loses nothing). Rejected inputs must say why. */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "programs/rlaifv-infer/cli_json.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail_property(const char *what)
{
	fprintf(stderr, "property failed: %s\n", what);
	abort();
}

static void write_string(FILE *f, const char *s, size_t len)
{
	fputc('"', f);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void write_node(FILE *f, const cj_doc *d, int id)
{
	if (id < 0 || id >= d->n)
		fail_property("node index out of the document");
	const cj_node *v = &d->nodes[id];
	switch (v->type) {
	case CJ_NULL:
		fputs("null", f);
		return;
	case CJ_FALSE:
		fputs("false", f);
		return;
	case CJ_TRUE:
		fputs("true", f);
		return;
	case CJ_NUMBER: {
		char *end;
		strtod(v->str, &end);
		if (*end || strlen(v->str) != v->len)
			fail_property("a number strtod does not take whole");
		fputs(v->str, f);
		return;
	}
	case CJ_STRING:
		if (strlen(v->str) != v->len)
			fail_property("string length");
		write_string(f, v->str, v->len);
		return;
	case CJ_ARRAY:
	case CJ_OBJECT:
		fputc(v->type == CJ_ARRAY ? '[' : '{', f);
		for (int c = v->child; c >= 0; c = d->nodes[c].next) {
			if (c <= id || c >= d->n)
				fail_property("child link not to a later node");
			if ((v->type == CJ_OBJECT) != (d->nodes[c].key != NULL))
				fail_property("member keys");
			if (c != v->child)
				fputc(',', f);
			if (v->type == CJ_OBJECT) {
				write_string(f, d->nodes[c].key, strlen(d->nodes[c].key));
				fputc(':', f);
			}
			write_node(f, d, c);
		}
		fputc(v->type == CJ_ARRAY ? ']' : '}', f);
		return;
	}
	fail_property("node type");
}

static char *write_doc(const cj_doc *d, size_t *len)
{
	char *text = NULL;
	FILE *f = open_memstream(&text, len);
	if (!f)
		abort();
	write_node(f, d, 0);
	fclose(f);
	return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cj_doc d, d2;
	char err[256] = "";
	if (cj_parse((const char *)data, size, &d, err, sizeof(err)) != 0) {
		if (!err[0])
			fail_property("a rejection without a message");
		cj_free(&d);
		return 0;
	}
	size_t len, len2;
	char *text = write_doc(&d, &len);
	if (cj_parse(text, len, &d2, err, sizeof(err)) != 0)
		fail_property("the tree written back does not read again");
	char *text2 = write_doc(&d2, &len2);
	if (len != len2 || memcmp(text, text2, len))
		fail_property("the round trip changed the tree");
	free(text2);
	free(text);
	cj_free(&d2);
	cj_free(&d);
	return 0;
}
