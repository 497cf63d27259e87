/* special.c: finds the texts of special and user-defined tokens in an input
 * and cuts them out, leaving plain fragments for the encoders.
 *
 * The order that decides overlapping matches is llama.cpp's and Hugging
 * Face's: tokens by decreasing length (ties by id), and for each token its
 * occurrences left to right in what earlier tokens left plain. Doing that
 * literally costs one scan of the text per special token (thousands for
 * Gemma's vocabulary). Here the text is scanned once: at each byte whose
 * first two bytes begin some special token, every special length is looked
 * up in the vocabulary's hash map. Then the occurrences are taken in
 * (token rank, position) order, each unless it overlaps one already taken,
 * which is exactly the order above: a token's occurrence is found by the
 * literal scan if and only if no earlier-ranked token and no earlier
 * occurrence of its own took any of its bytes. */
#include "src/tokenizer/vocab.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

void rvi_special_index_free(rvi_special_index *x)
{
	free(x->rank);
	free(x->lens);
	free(x->strip);
	memset(x, 0, sizeof(*x));
}

/* The strip rules llama.cpp applies by model name, mirroring the
 * lstrip/rstrip flags of the Hugging Face added tokens (the converter does
 * not write them): Phi-3's special tokens take the spaces after them. */
static uint8_t strip_rule(const rvi_tokenizer *t, int32_t id, bool phi3)
{
	if (!phi3)
		return 0;
	const char *s = t->text[id];
	if (strcmp(s, "<unk>") == 0 || strcmp(s, "<s>") == 0 || strcmp(s, "<|endoftext|>") == 0)
		return 0;
	return RVI_STRIP_RIGHT;
}

static bool name_is_phi3(const char *name)
{
	if (!name)
		return false;
	char low[128];
	size_t n = strlen(name);
	if (n >= sizeof(low))
		n = sizeof(low) - 1;
	for (size_t i = 0; i < n; i++)
		low[i] = (char)tolower((unsigned char)name[i]);
	low[n] = 0;
	return strstr(low, "phi-3") || strstr(low, "phi3");
}

int rvi_special_index_build(rvi_tokenizer *t, const char *model_name, rvi_err *err)
{
	rvi_special_index *x = &t->sx;
	const bool phi3 = name_is_phi3(model_name);
	x->rank = rvi_alloc((size_t)t->n_vocab, sizeof(*x->rank));
	x->lens = rvi_alloc((size_t)t->n_special + 1, sizeof(*x->lens));
	x->strip = rvi_zalloc((size_t)t->n_special + 1, sizeof(*x->strip));
	if (!x->rank || !x->lens || !x->strip)
		return rvi_errorf(err, RV_ERR_NOMEM, "out of memory loading the vocabulary");
	memset(x->rank, 0xff, (size_t)t->n_vocab * sizeof(*x->rank));
	/* t->special is sorted by decreasing length: distinct lengths in order. */
	for (int32_t k = 0; k < t->n_special; k++) {
		int32_t id = t->special[k];
		size_t len = t->len[id];
		const unsigned char *s = (const unsigned char *)t->text[id];
		x->rank[id] = k;
		x->strip[k] = strip_rule(t, id, phi3);
		if (x->n_lens == 0 || x->lens[x->n_lens - 1] != len)
			x->lens[x->n_lens++] = len;
		if (len == 1)
			x->first1[s[0] >> 6] |= 1ull << (s[0] & 63);
		else
			x->first2[(s[0] << 8 | s[1]) >> 6] |= 1ull << ((s[0] << 8 | s[1]) & 63);
	}
	return RV_OK;
}

static bool bit(const uint64_t *set, unsigned i)
{
	return (set[i >> 6] >> (i & 63)) & 1;
}

/* An occurrence of special token number rank at [at, at + len). */
typedef struct occ {
	size_t at, len;
	int32_t rank;
} occ;

typedef struct occ_list {
	occ *v;
	size_t n, cap;
} occ_list;

static int cmp_rank_pos(const void *a, const void *b)
{
	const occ *x = a, *y = b;
	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	return (x->at > y->at) - (x->at < y->at);
}

static int cmp_pos(const void *a, const void *b)
{
	const occ *x = a, *y = b;
	return (x->at > y->at) - (x->at < y->at);
}

static bool overlaps(const rvi_span *plain, int n_plain, size_t at, size_t len)
{
	for (int i = 0; i < n_plain; i++)
		if (at < plain[i].off + plain[i].len && plain[i].off < at + len)
			return true;
	return false;
}

/* Whether token id may be cut here: user-defined tokens and the CONTROL
 * tokens Hugging Face matches as plain added tokens always; other special
 * tokens only with parse_special and never inside a span the caller marked
 * plain (user text). */
static bool may_cut(const rvi_tokenizer *t, int32_t id, bool parse_special, const rvi_span *plain,
                    int n_plain, size_t at, size_t len)
{
	const bool gated =
	    t->type[id] != RVI_TOKEN_USER_DEFINED && !(t->plain_match && t->plain_match[id]);
	if (!gated)
		return true;
	return parse_special && !(n_plain > 0 && overlaps(plain, n_plain, at, len));
}

static bool occ_add(occ_list *l, size_t at, size_t len, int32_t rank)
{
	if (!rvi_work_reserve((void **)&l->v, &l->cap, l->n + 1, sizeof(occ)))
		return false;
	l->v[l->n++] = (occ){at, len, rank};
	return true;
}

/* Every occurrence of a special token that may be cut, in text order. */
static bool find_all(const rvi_tokenizer *t, const char *text, size_t len, bool parse_special,
                     const rvi_span *plain, int n_plain, occ_list *out)
{
	const rvi_special_index *x = &t->sx;
	const unsigned char *u = (const unsigned char *)text;
	for (size_t i = 0; i < len; i++) {
		const bool one = bit(x->first1, u[i]);
		const bool two = i + 1 < len && bit(x->first2, (unsigned)u[i] << 8 | u[i + 1]);
		if (!one && !two)
			continue;
		for (int32_t k = 0; k < x->n_lens; k++) {
			size_t l = x->lens[k];
			if (l > len - i || (l == 1 ? !one : !two))
				continue;
			int32_t id = rvi_vocab_lookup(t, text + i, l);
			if (id < 0 || x->rank[id] < 0 ||
			    !may_cut(t, id, parse_special, plain, n_plain, i, l))
				continue;
			if (!occ_add(out, i, l, x->rank[id]))
				return false;
		}
	}
	return true;
}

/* Appends the plain text [from, to) trimmed as the neighbouring tokens'
 * strip flags say (ASCII whitespace, as llama.cpp trims). */
static bool add_plain(rvi_frag_list *out, const char *text, size_t from, size_t to, bool strip_left,
                      bool strip_right)
{
	if (strip_left)
		while (from < to && isspace((unsigned char)text[from]))
			from++;
	if (strip_right)
		while (to > from && isspace((unsigned char)text[to - 1]))
			to--;
	return to == from || rvi_frag_add(out, from, to - from, -1);
}

int rvi_special_partition(const rvi_tokenizer *t, const char *text, size_t len, bool parse_special,
                          const rvi_span *plain, int n_plain, rvi_frag_list *out, rvi_err *err)
{
	const rvi_special_index *x = &t->sx;
	occ_list all = {0};
	uint8_t *taken = NULL;
	size_t n_taken = 0;
	if (!find_all(t, text, len, parse_special, plain, n_plain, &all))
		goto nomem;
	if (all.n > 0) {
		if (!(taken = rvi_zalloc(len, 1)))
			goto nomem;
		qsort(all.v, all.n, sizeof(occ), cmp_rank_pos);
		for (size_t i = 0; i < all.n; i++) {
			occ o = all.v[i];
			if (memchr(taken + o.at, 1, o.len))
				continue;
			memset(taken + o.at, 1, o.len);
			all.v[n_taken++] = o;
		}
		qsort(all.v, n_taken, sizeof(occ), cmp_pos);
	}
	size_t pos = 0;
	uint8_t prev_strip = 0;
	for (size_t i = 0; i < n_taken; i++) {
		occ o = all.v[i];
		if (!add_plain(out, text, pos, o.at, prev_strip & RVI_STRIP_RIGHT,
		               x->strip[o.rank] & RVI_STRIP_LEFT) ||
		    !rvi_frag_add(out, o.at, o.len, t->special[o.rank]))
			goto nomem;
		pos = o.at + o.len;
		prev_strip = x->strip[o.rank];
	}
	if (!add_plain(out, text, pos, len, prev_strip & RVI_STRIP_RIGHT, false))
		goto nomem;
	free(all.v);
	free(taken);
	return RV_OK;
nomem:
	free(all.v);
	free(taken);
	free(out->v);
	memset(out, 0, sizeof(*out));
	return rvi_errorf(err, RV_ERR_NOMEM, "out of memory tokenizing");
}
