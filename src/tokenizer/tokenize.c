/* tokenize.c: text -> ids (rvi_tokenize, see tokenizer.h): cuts the texts of
 * special and user-defined tokens out of the input, then hands each plain
 * fragment to the vocabulary kind's encoder (spm.c, bpe.c). */
#include "src/tokenizer/vocab.h"

#include <stdlib.h>
#include <string.h>

/* Longest text we tokenize: keeps every offset, length and heap size of the
 * merge (at most 3 * escaped length) inside 32 bits. */
#define MAX_TEXT_LEN ((size_t)1 << 28)

bool rvi_work_reserve(void **p, size_t *cap, size_t want, size_t size)
{
	if (want <= *cap)
		return true;
	size_t c = *cap ? *cap : 64;
	while (c < want)
		c *= 2;
	void *q = realloc(*p, c * size); /* c * size < 2^28 * 12 * 3: no overflow */
	if (!q)
		return false;
	*p = q;
	*cap = c;
	return true;
}

void rvi_encode_work_free(rvi_encode_work *w)
{
	free(w->buf);
	free(w->syms);
	free(w->heap);
	free(w->cp);
	free(w->off);
	free(w->flags);
	memset(w, 0, sizeof(*w));
}

/* A piece of the input: plain text (id < 0) or a special token. */
typedef struct frag {
	size_t off, len;
	int32_t id;
} frag;

typedef struct frag_list {
	frag *v;
	size_t n, cap;
} frag_list;

static bool frag_add(frag_list *l, size_t off, size_t len, int32_t id)
{
	if (!rvi_work_reserve((void **)&l->v, &l->cap, l->n + 1, sizeof(frag)))
		return false;
	l->v[l->n++] = (frag){off, len, id};
	return true;
}

/* Cuts special-token texts out of the plain fragments, one token at a time
 * from the longest, leftmost occurrences first: the order llama.cpp uses,
 * which decides overlapping matches. User-defined tokens are cut even
 * without parse_special, as llama.cpp and Hugging Face do. */
static bool overlaps(const rvi_span *plain, int n_plain, size_t at, size_t len)
{
	for (int i = 0; i < n_plain; i++)
		if (at < plain[i].off + plain[i].len && plain[i].off < at + len)
			return true;
	return false;
}

static int partition(const rvi_tokenizer *t, const char *text, size_t len, bool parse_special,
                     const rvi_span *plain, int n_plain, frag_list *out, rvi_err *err)
{
	frag_list a = {0}, b = {0};
	if (!frag_add(&a, 0, len, -1))
		goto nomem;
	for (int32_t k = 0; k < t->n_special; k++) {
		int32_t id = t->special[k];
		const bool gated = t->type[id] != RVI_TOKEN_USER_DEFINED &&
		                   !(t->plain_match && t->plain_match[id]);
		if (!parse_special && gated)
			continue;
		const char *pat = t->text[id];
		size_t plen = t->len[id];
		b.n = 0;
		for (size_t i = 0; i < a.n; i++) {
			frag f = a.v[i];
			if (f.id >= 0) {
				if (!frag_add(&b, f.off, f.len, f.id))
					goto nomem;
				continue;
			}
			size_t pos = f.off, end = f.off + f.len, from = pos;
			while (from < end) {
				const char *m = memmem(text + from, end - from, pat, plen);
				if (!m)
					break;
				size_t at = (size_t)(m - text);
				if (gated && n_plain > 0 && overlaps(plain, n_plain, at, plen)) {
					from = at + 1;
					continue;
				}
				if (at > pos && !frag_add(&b, pos, at - pos, -1))
					goto nomem;
				if (!frag_add(&b, at, plen, id))
					goto nomem;
				pos = from = at + plen;
			}
			if (pos < end && !frag_add(&b, pos, end - pos, -1))
				goto nomem;
		}
		frag_list tmp = a;
		a = b;
		b = tmp;
	}
	free(b.v);
	*out = a;
	return RV_OK;
nomem:
	free(a.v);
	free(b.v);
	return rvi_errorf(err, RV_ERR_NOMEM, "out of memory tokenizing");
}

int rvi_tokenize(const rvi_tokenizer *t, const char *text, size_t len, bool add_bos,
                 bool parse_special, int32_t **ids_out, int64_t *n_out, rvi_err *err)
{
	return rvi_tokenize_spans(t, text, len, add_bos, parse_special, NULL, 0, ids_out, n_out,
	                          err);
}

int rvi_tokenize_spans(const rvi_tokenizer *t, const char *text, size_t len, bool add_bos,
                       bool parse_special, const rvi_span *plain, int n_plain, int32_t **ids_out,
                       int64_t *n_out, rvi_err *err)
{
	if (!t || !ids_out || !n_out || (!text && len > 0))
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "rvi_tokenize: NULL argument");
	*ids_out = NULL;
	*n_out = 0;
	if (len > MAX_TEXT_LEN)
		return rvi_errorf(err, RV_ERR_INVALID_ARG,
		                  "text of %zu bytes is too long to tokenize (limit %zu)", len,
		                  MAX_TEXT_LEN);
	if (add_bos && t->bos < 0)
		return rvi_errorf(err, RV_ERR_INVALID_ARG,
		                  "BOS requested but the vocabulary has no BOS token");

	frag_list fr = {0};
	int rc = RV_OK;
	if (len > 0) {
		rc = partition(t, text, len, parse_special, plain, n_plain, &fr, err);
		if (rc != RV_OK)
			return rc;
	}

	/* A plain fragment gives at most one id per byte of its escaped or
	 * normalized form (3 bytes per input byte, plus the SPM prefix). */
	size_t cap = 1;
	for (size_t i = 0; i < fr.n; i++)
		cap += fr.v[i].id >= 0 ? 1 : 3 * fr.v[i].len + 3;
	int32_t *ids = rvi_alloc(cap, sizeof(*ids));
	rvi_encode_work w = {0};
	if (!ids) {
		rc = rvi_errorf(err, RV_ERR_NOMEM, "out of memory tokenizing %zu bytes", len);
		goto done;
	}

	int64_t n = 0;
	if (add_bos)
		ids[n++] = t->bos;
	/* llama.cpp prefixes a plain fragment with "▁" when it is the first one
	 * or follows a special token, which makes that every plain fragment. */
	for (size_t i = 0; i < fr.n; i++) {
		frag f = fr.v[i];
		if (f.id >= 0) {
			ids[n++] = f.id;
			continue;
		}
		if (t->kind == RVI_VOCAB_SPM)
			rc = rvi_spm_encode(t, &w, text + f.off, f.len, t->add_space_prefix, ids,
			                    &n, err);
		else
			rc = rvi_bpe_encode(t, &w, text + f.off, f.len, ids, &n, err);
		if (rc != RV_OK)
			goto done;
	}

	if (n == 0) {
		*ids_out = NULL; /* nothing to return; free(NULL) is fine */
	} else {
		int32_t *shrunk = realloc(ids, (size_t)n * sizeof(*ids));
		*ids_out = shrunk ? shrunk : ids;
		ids = NULL;
	}
	*n_out = n;
done:
	free(ids);
	rvi_encode_work_free(&w);
	free(fr.v);
	return rc;
}
