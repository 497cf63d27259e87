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

bool rvi_frag_add(rvi_frag_list *l, size_t off, size_t len, int32_t id)
{
	if (!rvi_work_reserve((void **)&l->v, &l->cap, l->n + 1, sizeof(rvi_frag)))
		return false;
	l->v[l->n++] = (rvi_frag){off, len, id};
	return true;
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

	rvi_frag_list fr = {0};
	int rc = RV_OK;
	if (len > 0) {
		rc = rvi_special_partition(t, text, len, parse_special, plain, n_plain, &fr, err);
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
		rvi_frag f = fr.v[i];
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
