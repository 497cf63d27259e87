/* spm.c: SentencePiece ("llama") encoding of one plain fragment.
 *
 * Follows what llama.cpp does for SPM vocabularies, because its ids are the
 * reference: spaces become "▁" (and a "▁" goes in front when the vocabulary
 * has a dummy prefix), the fragment is split into UTF-8 characters and
 * adjacent symbols are merged greedily by the score of the merged piece
 * (highest first, leftmost on ties) using a priority queue of candidate
 * pairs; leftover symbols that are not pieces fall back to <0xNN> byte
 * tokens. One deliberate difference: a byte that does not start a valid
 * UTF-8 sequence is a symbol of its own (llama.cpp would take the length its
 * lead bits announce and swallow the following ASCII bytes). */
#include "src/tokenizer/vocab.h"

#include <stdlib.h>
#include <string.h>

#include "src/tokenizer/unicode.h"

static const char SPM_SPACE[3] = {'\xe2', '\x96', '\x81'}; /* U+2581 "▁" */

typedef struct sym {
	uint32_t off, n; /* bytes of the escaped text; n == 0 once merged away */
	int32_t prev, next;
} sym;

typedef struct bigram {
	float score;
	int32_t left, right;
	uint32_t size; /* byte length when queued: stale entries no longer match */
} bigram;

/* Heap order: higher score first, then the leftmost pair. */
static bool bigram_before(const bigram *a, const bigram *b)
{
	return a->score > b->score || (a->score == b->score && a->left < b->left);
}

typedef struct heap {
	bigram *v;
	size_t n;
} heap;

static void heap_push(heap *h, bigram b)
{
	size_t i = h->n++;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!bigram_before(&b, &h->v[p]))
			break;
		h->v[i] = h->v[p];
		i = p;
	}
	h->v[i] = b;
}

static bigram heap_pop(heap *h)
{
	bigram top = h->v[0];
	bigram last = h->v[--h->n];
	size_t i = 0, n = h->n;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && bigram_before(&h->v[c + 1], &h->v[c]))
			c++;
		if (!bigram_before(&h->v[c], &last))
			break;
		h->v[i] = h->v[c];
		i = c;
	}
	if (n > 0)
		h->v[i] = last;
	return top;
}

static void try_pair(const rvi_tokenizer *t, const char *buf, const sym *syms, heap *h, int32_t l,
                     int32_t r)
{
	if (l < 0 || r < 0)
		return;
	const sym *a = &syms[l], *b = &syms[r];
	uint32_t size = a->n + b->n; /* symbols are adjacent in buf */
	int32_t id = rvi_vocab_lookup(t, buf + a->off, size);
	if (id < 0)
		return;
	bigram bg = {t->score[id], l, r, size};
	heap_push(h, bg);
}

int rvi_spm_encode(const rvi_tokenizer *t, rvi_encode_work *w, const char *text, size_t len,
                   bool prefix, int32_t *ids, int64_t *n, rvi_err *err)
{
	/* The escaped fragment is at most 3 bytes per byte plus the prefix; it
	 * has at most one symbol per byte, and the merge queues at most three
	 * pairs per symbol (the first pairs, then two per merge). */
	size_t cap = 3 * len + 3;
	if (!rvi_work_reserve((void **)&w->buf, &w->buf_cap, cap, 1) ||
	    !rvi_work_reserve(&w->syms, &w->syms_cap, cap, sizeof(sym)) ||
	    !rvi_work_reserve(&w->heap, &w->heap_cap, 3 * cap, sizeof(bigram)))
		return rvi_errorf(err, RV_ERR_NOMEM, "out of memory tokenizing %zu bytes", len);
	char *buf = w->buf;
	sym *syms = w->syms;
	heap h = {w->heap, 0};

	size_t e = 0;
	if (prefix) {
		memcpy(buf, SPM_SPACE, 3);
		e = 3;
	}
	for (size_t k = 0; k < len; k++) {
		if (text[k] == ' ') {
			memcpy(buf + e, SPM_SPACE, 3);
			e += 3;
		} else {
			buf[e++] = text[k];
		}
	}

	const unsigned char *s = (const unsigned char *)buf;
	int32_t n_sym = 0;
	for (size_t off = 0; off < e;) {
		uint32_t cp;
		size_t cl = rvi_utf8_decode(s + off, e - off, &cp);
		sym *y = &syms[n_sym];
		y->off = (uint32_t)off;
		y->n = (uint32_t)cl;
		y->prev = n_sym - 1;
		off += cl;
		y->next = off < e ? n_sym + 1 : -1;
		n_sym++;
	}
	for (int32_t i = 1; i < n_sym; i++)
		try_pair(t, buf, syms, &h, i - 1, i);
	while (h.n > 0) {
		bigram bg = heap_pop(&h);
		sym *l = &syms[bg.left], *r = &syms[bg.right];
		if (l->n == 0 || r->n == 0 || l->n + r->n != bg.size)
			continue; /* one side was merged since this pair was queued */
		l->n += r->n;
		r->n = 0;
		l->next = r->next;
		if (r->next >= 0)
			syms[r->next].prev = bg.left;
		try_pair(t, buf, syms, &h, l->prev, bg.left);
		try_pair(t, buf, syms, &h, bg.left, l->next);
	}
	for (int32_t i = n_sym > 0 ? 0 : -1; i >= 0; i = syms[i].next) {
		const sym *y = &syms[i];
		int32_t id = rvi_vocab_lookup(t, buf + y->off, y->n);
		if (id >= 0) {
			ids[(*n)++] = id;
			continue;
		}
		for (uint32_t k = 0; k < y->n; k++) {
			int32_t b = t->byte_id[s[y->off + k]];
			if (b < 0)
				return rvi_errorf(err, RV_ERR_MODEL,
				                  "the vocabulary has no token for byte 0x%02X and "
				                  "no unknown token",
				                  s[y->off + k]);
			ids[(*n)++] = b;
		}
	}
	return RV_OK;
}
