/* tokenizer.c: SentencePiece ("llama") vocabularies from GGUF (see
 * tokenizer.h).
 *
 * Encoding follows what llama.cpp does for SPM vocabularies, because its ids
 * are the reference: the text is cut around special-token texts, every plain
 * segment gets a "▁" prefix, spaces become "▁", the segment is split into
 * UTF-8 characters and adjacent symbols are merged greedily by the score of
 * the merged piece (highest first, leftmost on ties) using a priority queue
 * of candidate pairs; leftover symbols that are not pieces fall back to
 * <0xNN> byte tokens. One deliberate difference: a byte that does not start
 * a valid UTF-8 sequence is a symbol of its own (llama.cpp would take the
 * length its lead bits announce and swallow the following ASCII bytes).
 *
 * Decoding is a small streaming UTF-8 validator in front of the raw piece
 * bytes, so that a character split over several byte tokens comes out whole
 * and anything invalid becomes U+FFFD. */
#include "src/tokenizer/tokenizer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MODEL     "tokenizer.ggml.model"
#define KEY_TOKENS    "tokenizer.ggml.tokens"
#define KEY_SCORES    "tokenizer.ggml.scores"
#define KEY_TYPES     "tokenizer.ggml.token_type"
#define KEY_BOS       "tokenizer.ggml.bos_token_id"
#define KEY_EOS       "tokenizer.ggml.eos_token_id"
#define KEY_UNK       "tokenizer.ggml.unknown_token_id"
#define KEY_EOT       "tokenizer.ggml.eot_token_id"
#define KEY_EOM       "tokenizer.ggml.eom_token_id"
#define KEY_ADD_BOS   "tokenizer.ggml.add_bos_token"
#define KEY_ADD_SPACE "tokenizer.ggml.add_space_prefix"

/* Longest text we tokenize: keeps every offset, length and heap size of the
 * merge (at most 3 * escaped length) inside 32 bits. */
#define MAX_TEXT_LEN ((size_t)1 << 28)

static const char SPM_SPACE[3] = {'\xe2', '\x96', '\x81'}; /* U+2581 "▁" */

struct rvi_tokenizer {
	int32_t n_vocab;
	char *arena;       /* every token text, each followed by a NUL */
	const char **text; /* text[i] points into arena */
	size_t *len;
	float *score;
	uint8_t *type;
	uint8_t *eog;   /* 1 for end-of-generation tokens */
	int32_t *table; /* open-addressing text -> id map, -1 = empty */
	uint64_t table_mask;
	size_t max_token_len;
	size_t max_push;      /* most bytes one rvi_detok_push can write */
	int32_t byte_id[256]; /* byte fallback token per byte, -1 = none */
	int32_t *special;     /* ids cut out of the text before merging, longest first */
	int32_t n_special;
	int32_t bos, eos, unk;
	bool add_bos;
	bool add_space_prefix;
};

/* ---- text -> id map ------------------------------------------------------- */

static uint64_t hash_bytes(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ull;
	}
	/* FNV's low bits mix poorly for short keys; fold the high half in. */
	return h ^ (h >> 29);
}

static int32_t lookup(const rvi_tokenizer *t, const char *s, size_t n)
{
	if (n == 0 || n > t->max_token_len)
		return -1;
	uint64_t i = hash_bytes(s, n) & t->table_mask;
	for (;;) {
		int32_t id = t->table[i];
		if (id < 0)
			return -1;
		if (t->len[id] == n && memcmp(t->text[id], s, n) == 0)
			return id;
		i = (i + 1) & t->table_mask;
	}
}

/* A later token with the same text replaces the earlier one, as in
 * llama.cpp's map, so duplicate texts resolve to the same id there and here. */
static void table_insert(rvi_tokenizer *t, int32_t id)
{
	uint64_t i = hash_bytes(t->text[id], t->len[id]) & t->table_mask;
	for (;;) {
		int32_t old = t->table[i];
		if (old < 0 || (t->len[old] == t->len[id] &&
		                memcmp(t->text[old], t->text[id], t->len[id]) == 0)) {
			t->table[i] = id;
			return;
		}
		i = (i + 1) & t->table_mask;
	}
}

/* ---- UTF-8 ------------------------------------------------------------------ */

/* Length of the sequence a lead byte starts; 0 if it cannot start one
 * (continuation bytes, C0/C1 overlongs, F5..FF). */
static int utf8_lead_len(unsigned char c)
{
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		return 2;
	if (c >= 0xE0 && c <= 0xEF)
		return 3;
	if (c >= 0xF0 && c <= 0xF4)
		return 4;
	return 0;
}

/* Whether c may be byte number pos (1..3) of a sequence led by lead; the
 * second-byte ranges exclude overlongs, surrogates and values > U+10FFFF. */
static bool utf8_cont_ok(unsigned char lead, int pos, unsigned char c)
{
	if ((c & 0xC0) != 0x80)
		return false;
	if (pos == 1) {
		if (lead == 0xE0)
			return c >= 0xA0;
		if (lead == 0xED)
			return c <= 0x9F;
		if (lead == 0xF0)
			return c >= 0x90;
		if (lead == 0xF4)
			return c <= 0x8F;
	}
	return true;
}

/* Length of the valid character at s[0..n), or 1 for an invalid byte. */
static size_t utf8_char_len(const unsigned char *s, size_t n)
{
	int l = utf8_lead_len(s[0]);
	if (l <= 1 || (size_t)l > n)
		return 1;
	for (int k = 1; k < l; k++)
		if (!utf8_cont_ok(s[0], k, s[k]))
			return 1;
	return (size_t)l;
}

/* ---- loading ---------------------------------------------------------------- */

static int get_special_id(const rvi_gguf *g, const char *key, int64_t n, int32_t *id, rvi_err *err)
{
	int64_t v = -1;
	int rc = rvi_gguf_get_i64(g, key, false, &v, err);
	if (rc != RV_OK)
		return rc;
	/* Converters write UINT32_MAX (or -1) for "no such token". */
	if (v == -1 || v == (int64_t)UINT32_MAX) {
		*id = -1;
		return RV_OK;
	}
	if (v < 0 || v >= n)
		return rvi_errorf(err, RV_ERR_MODEL,
		                  "%s = %lld is out of range (vocabulary of %lld tokens) in %s",
		                  key, (long long)v, (long long)n, g->path ? g->path : "model");
	*id = (int32_t)v;
	return RV_OK;
}

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return c - 'A' + 10;
}

/* Raw bytes a token stands for when decoded (before UTF-8 checking). */
static size_t piece_len(const rvi_tokenizer *t, int32_t id)
{
	switch (t->type[id]) {
	case RVI_TOKEN_NORMAL: {
		size_t n = 0;
		const char *s = t->text[id];
		for (size_t i = 0; i < t->len[id]; n++)
			i += (t->len[id] - i >= 3 && memcmp(s + i, SPM_SPACE, 3) == 0) ? 3 : 1;
		return n;
	}
	case RVI_TOKEN_BYTE:
		return 1;
	case RVI_TOKEN_USER_DEFINED:
		return t->len[id];
	default:
		return 0; /* control, unknown, unused, undefined: not rendered */
	}
}

typedef struct special_key {
	size_t len;
	int32_t id;
} special_key;

static int cmp_special(const void *a, const void *b)
{
	const special_key *x = a, *y = b;
	if (x->len != y->len)
		return x->len > y->len ? -1 : 1;
	return (x->id > y->id) - (x->id < y->id);
}

/* Token texts llama.cpp also treats as end of generation. */
static const char *const EOG_TEXTS[] = {
    "<|eot_id|>",    "<|im_end|>", "<|end|>",         "<end_of_turn>",
    "<|endoftext|>", "<|eom_id|>", "<|end_of_text|>", "<EOT>",
};

int rvi_tokenizer_load(rvi_tokenizer **out, const rvi_gguf *g, int64_t n_vocab_expected,
                       rvi_err *err)
{
	if (!out || !g)
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "rvi_tokenizer_load: NULL argument");
	*out = NULL;
	const char *file = g->path ? g->path : "model";
	int rc;

	rvi_str model;
	rc = rvi_gguf_get_str(g, KEY_MODEL, true, &model, err);
	if (rc != RV_OK)
		return rc;
	if (!rvi_str_eq(model, "llama")) {
		int show = model.len > 64 ? 64 : (int)model.len;
		return rvi_errorf(err, RV_ERR_UNSUPPORTED,
		                  "tokenizer model %.*s is not supported yet (%s)", show, model.ptr,
		                  file);
	}

	const rvi_gguf_kv *tok_kv, *score_kv, *type_kv;
	rc = rvi_gguf_get_arr(g, KEY_TOKENS, true, RVI_GGUF_STRING, &tok_kv, err);
	if (rc != RV_OK)
		return rc;
	uint64_t n = tok_kv->arr_n;
	if (n == 0 || n > INT32_MAX)
		return rvi_errorf(err, RV_ERR_MODEL, "%s has %llu entries in %s", KEY_TOKENS,
		                  (unsigned long long)n, file);
	if (n_vocab_expected > 0 && n != (uint64_t)n_vocab_expected)
		return rvi_errorf(err, RV_ERR_MODEL,
		                  "%s has %llu entries but the model has %lld embedding rows in %s",
		                  KEY_TOKENS, (unsigned long long)n, (long long)n_vocab_expected,
		                  file);
	rc = rvi_gguf_get_arr(g, KEY_SCORES, false, RVI_GGUF_FLOAT32, &score_kv, err);
	if (rc != RV_OK)
		return rc;
	if (score_kv && score_kv->arr_n != n)
		return rvi_errorf(err, RV_ERR_MODEL, "%s has %llu entries, expected %llu in %s",
		                  KEY_SCORES, (unsigned long long)score_kv->arr_n,
		                  (unsigned long long)n, file);
	rc = rvi_gguf_get_arr(g, KEY_TYPES, false, RVI_GGUF_INT32, &type_kv, err);
	if (rc != RV_OK)
		return rc;
	if (type_kv && type_kv->arr_n != n)
		return rvi_errorf(err, RV_ERR_MODEL, "%s has %llu entries, expected %llu in %s",
		                  KEY_TYPES, (unsigned long long)type_kv->arr_n,
		                  (unsigned long long)n, file);

	rvi_tokenizer *t = calloc(1, sizeof(*t));
	if (!t)
		return rvi_errorf(err, RV_ERR_NOMEM, "out of memory loading the vocabulary");
	t->n_vocab = (int32_t)n;
	t->bos = t->eos = t->unk = -1;

	uint64_t arena_size = 0;
	for (uint64_t i = 0; i < n; i++)
		if (!rvi_add_ok(arena_size, tok_kv->strs[i].len, &arena_size) ||
		    !rvi_add_ok(arena_size, 1, &arena_size) || arena_size > SIZE_MAX) {
			rc = rvi_errorf(err, RV_ERR_MODEL, "%s: token texts too large in %s",
			                KEY_TOKENS, file);
			goto fail;
		}
	uint64_t table_size = 16;
	while (table_size < 2 * n)
		table_size *= 2;
	t->arena = rvi_alloc((size_t)arena_size, 1);
	t->text = rvi_alloc(n, sizeof(*t->text));
	t->len = rvi_alloc(n, sizeof(*t->len));
	t->score = rvi_alloc(n, sizeof(*t->score));
	t->type = rvi_alloc(n, sizeof(*t->type));
	t->eog = rvi_zalloc(n, sizeof(*t->eog));
	t->table = rvi_alloc(table_size, sizeof(*t->table));
	t->special = rvi_alloc(n, sizeof(*t->special));
	if (!t->arena || !t->text || !t->len || !t->score || !t->type || !t->eog || !t->table ||
	    !t->special) {
		rc = rvi_errorf(err, RV_ERR_NOMEM, "out of memory loading the vocabulary");
		goto fail;
	}
	t->table_mask = table_size - 1;
	memset(t->table, 0xff, table_size * sizeof(*t->table));

	/* Copy the texts so the tokenizer does not depend on the mapping's lifetime. */
	size_t pos = 0;
	for (uint64_t i = 0; i < n; i++) {
		rvi_str s = tok_kv->strs[i];
		if (s.len > 0)
			memcpy(t->arena + pos, s.ptr, s.len);
		t->arena[pos + s.len] = '\0';
		t->text[i] = t->arena + pos;
		t->len[i] = s.len;
		pos += s.len + 1;
		if (s.len > t->max_token_len)
			t->max_token_len = s.len;

		double sc = score_kv ? rvi_gguf_arr_f64(score_kv, i) : 0.0;
		if (isnan(sc)) {
			rc = rvi_errorf(err, RV_ERR_MODEL, "%s[%llu] is NaN in %s", KEY_SCORES,
			                (unsigned long long)i, file);
			goto fail;
		}
		t->score[i] = (float)sc;

		int64_t ty = type_kv ? rvi_gguf_arr_i64(type_kv, i) : RVI_TOKEN_NORMAL;
		if (ty < RVI_TOKEN_UNDEFINED || ty > RVI_TOKEN_BYTE) {
			rc = rvi_errorf(err, RV_ERR_MODEL,
			                "%s[%llu] = %lld is not a token type in %s", KEY_TYPES,
			                (unsigned long long)i, (long long)ty, file);
			goto fail;
		}
		t->type[i] = (uint8_t)ty;
		if (ty == RVI_TOKEN_BYTE &&
		    (s.len != 6 || memcmp(s.ptr, "<0x", 3) != 0 || !is_hex(s.ptr[3]) ||
		     !is_hex(s.ptr[4]) || s.ptr[5] != '>')) {
			int show = s.len > 32 ? 32 : (int)s.len;
			rc = rvi_errorf(
			    err, RV_ERR_MODEL,
			    "%s[%llu] = \"%.*s\" is a byte token but not of the form <0xHH> "
			    "in %s",
			    KEY_TOKENS, (unsigned long long)i, show, s.ptr, file);
			goto fail;
		}
		table_insert(t, (int32_t)i);
	}

	int32_t eot = -1, eom = -1;
	if ((rc = get_special_id(g, KEY_BOS, (int64_t)n, &t->bos, err)) != RV_OK ||
	    (rc = get_special_id(g, KEY_EOS, (int64_t)n, &t->eos, err)) != RV_OK ||
	    (rc = get_special_id(g, KEY_UNK, (int64_t)n, &t->unk, err)) != RV_OK ||
	    (rc = get_special_id(g, KEY_EOT, (int64_t)n, &eot, err)) != RV_OK ||
	    (rc = get_special_id(g, KEY_EOM, (int64_t)n, &eom, err)) != RV_OK)
		goto fail;
	t->add_bos = true;
	t->add_space_prefix = true;
	if ((rc = rvi_gguf_get_bool(g, KEY_ADD_BOS, false, &t->add_bos, err)) != RV_OK ||
	    (rc = rvi_gguf_get_bool(g, KEY_ADD_SPACE, false, &t->add_space_prefix, err)) != RV_OK)
		goto fail;

	if (t->eos >= 0)
		t->eog[t->eos] = 1;
	if (eot >= 0)
		t->eog[eot] = 1;
	if (eom >= 0)
		t->eog[eom] = 1;
	for (size_t k = 0; k < sizeof(EOG_TEXTS) / sizeof(EOG_TEXTS[0]); k++) {
		int32_t id = lookup(t, EOG_TEXTS[k], strlen(EOG_TEXTS[k]));
		if (id >= 0)
			t->eog[id] = 1;
	}

	/* Byte fallback as llama.cpp resolves it: the "<0xHH>" piece, else a
	 * piece that is the byte itself, else (our choice) the unknown token. */
	for (int b = 0; b < 256; b++) {
		char buf[8];
		snprintf(buf, sizeof(buf), "<0x%02X>", b);
		int32_t id = lookup(t, buf, 6);
		if (id < 0) {
			char c = (char)b;
			id = lookup(t, &c, 1);
		}
		t->byte_id[b] = id >= 0 ? id : t->unk;
	}

	/* Texts cut out before merging: control, user-defined and unknown
	 * pieces, longest first (ties by id, so the order is deterministic). */
	for (int32_t i = 0; i < t->n_vocab; i++) {
		uint8_t ty = t->type[i];
		if ((ty == RVI_TOKEN_CONTROL || ty == RVI_TOKEN_USER_DEFINED ||
		     ty == RVI_TOKEN_UNKNOWN) &&
		    t->len[i] > 0)
			t->special[t->n_special++] = i;
	}
	if (t->n_special > 1) {
		special_key *keys = rvi_alloc((size_t)t->n_special, sizeof(*keys));
		if (!keys) {
			rc = rvi_errorf(err, RV_ERR_NOMEM, "out of memory loading the vocabulary");
			goto fail;
		}
		for (int32_t k = 0; k < t->n_special; k++)
			keys[k] = (special_key){t->len[t->special[k]], t->special[k]};
		qsort(keys, (size_t)t->n_special, sizeof(*keys), cmp_special);
		for (int32_t k = 0; k < t->n_special; k++)
			t->special[k] = keys[k].id;
		free(keys);
	}

	/* Worst case of one push: pending bytes plus the piece, each byte
	 * turning into a 3-byte U+FFFD. */
	size_t max_piece = 0;
	for (int32_t i = 0; i < t->n_vocab; i++) {
		size_t p = piece_len(t, i);
		if (p > max_piece)
			max_piece = p;
	}
	if (max_piece > (SIZE_MAX - 64) / 3 - 8) {
		rc = rvi_errorf(err, RV_ERR_MODEL, "%s: token text too long in %s", KEY_TOKENS,
		                file);
		goto fail;
	}
	t->max_push = 3 * (max_piece + 3);

	*out = t;
	return RV_OK;
fail:
	rvi_tokenizer_free(t);
	return rc;
}

void rvi_tokenizer_free(rvi_tokenizer *t)
{
	if (!t)
		return;
	free(t->arena);
	free(t->text);
	free(t->len);
	free(t->score);
	free(t->type);
	free(t->eog);
	free(t->table);
	free(t->special);
	free(t);
}

int64_t rvi_tokenizer_n_vocab(const rvi_tokenizer *t)
{
	return t->n_vocab;
}

int32_t rvi_tokenizer_bos(const rvi_tokenizer *t)
{
	return t->bos;
}

int32_t rvi_tokenizer_eos(const rvi_tokenizer *t)
{
	return t->eos;
}

int32_t rvi_tokenizer_unk(const rvi_tokenizer *t)
{
	return t->unk;
}

bool rvi_tokenizer_add_bos(const rvi_tokenizer *t)
{
	return t->add_bos && t->bos >= 0;
}

bool rvi_tokenizer_is_eog(const rvi_tokenizer *t, int32_t id)
{
	return id >= 0 && id < t->n_vocab && t->eog[id];
}

int rvi_token_type_of(const rvi_tokenizer *t, int32_t id)
{
	if (id < 0 || id >= t->n_vocab)
		return -1;
	return t->type[id];
}

const char *rvi_token_text(const rvi_tokenizer *t, int32_t id, size_t *len)
{
	if (id < 0 || id >= t->n_vocab)
		return NULL;
	if (len)
		*len = t->len[id];
	return t->text[id];
}

size_t rvi_tokenizer_max_piece(const rvi_tokenizer *t)
{
	return t->max_push;
}

/* ---- encoding ----------------------------------------------------------------- */

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

typedef struct spm_work {
	char *buf; /* escaped segment */
	sym *syms;
	bigram *heap;
	size_t n_heap;
} spm_work;

static void heap_push(spm_work *w, bigram b)
{
	size_t i = w->n_heap++;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!bigram_before(&b, &w->heap[p]))
			break;
		w->heap[i] = w->heap[p];
		i = p;
	}
	w->heap[i] = b;
}

static bigram heap_pop(spm_work *w)
{
	bigram top = w->heap[0];
	bigram last = w->heap[--w->n_heap];
	size_t i = 0, n = w->n_heap;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && bigram_before(&w->heap[c + 1], &w->heap[c]))
			c++;
		if (!bigram_before(&w->heap[c], &last))
			break;
		w->heap[i] = w->heap[c];
		i = c;
	}
	if (n > 0)
		w->heap[i] = last;
	return top;
}

static void try_pair(const rvi_tokenizer *t, spm_work *w, int32_t l, int32_t r)
{
	if (l < 0 || r < 0)
		return;
	const sym *a = &w->syms[l], *b = &w->syms[r];
	uint32_t size = a->n + b->n; /* symbols are adjacent in buf */
	int32_t id = lookup(t, w->buf + a->off, size);
	if (id < 0)
		return;
	bigram bg = {t->score[id], l, r, size};
	heap_push(w, bg);
}

/* Encodes w->buf[0..len) (already escaped), appending to ids. The caller
 * sized ids for one id per byte, the most this can produce. */
static int spm_encode(const rvi_tokenizer *t, spm_work *w, size_t len, int32_t *ids, int64_t *n,
                      rvi_err *err)
{
	const unsigned char *s = (const unsigned char *)w->buf;
	int32_t n_sym = 0;
	for (size_t off = 0; off < len;) {
		size_t cl = utf8_char_len(s + off, len - off);
		sym *y = &w->syms[n_sym];
		y->off = (uint32_t)off;
		y->n = (uint32_t)cl;
		y->prev = n_sym - 1;
		off += cl;
		y->next = off < len ? n_sym + 1 : -1;
		n_sym++;
	}
	w->n_heap = 0;
	for (int32_t i = 1; i < n_sym; i++)
		try_pair(t, w, i - 1, i);
	while (w->n_heap > 0) {
		bigram bg = heap_pop(w);
		sym *l = &w->syms[bg.left], *r = &w->syms[bg.right];
		if (l->n == 0 || r->n == 0 || l->n + r->n != bg.size)
			continue; /* one side was merged since this pair was queued */
		l->n += r->n;
		r->n = 0;
		l->next = r->next;
		if (r->next >= 0)
			w->syms[r->next].prev = bg.left;
		try_pair(t, w, l->prev, bg.left);
		try_pair(t, w, bg.left, l->next);
	}
	for (int32_t i = n_sym > 0 ? 0 : -1; i >= 0; i = w->syms[i].next) {
		const sym *y = &w->syms[i];
		int32_t id = lookup(t, w->buf + y->off, y->n);
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
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		frag *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return false;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = (frag){off, len, id};
	return true;
}

/* Cuts special-token texts out of the plain fragments, one token at a time
 * from the longest, leftmost occurrences first: the order llama.cpp uses,
 * which decides overlapping matches. User-defined tokens are cut even
 * without parse_special, as llama.cpp does. */
static int partition(const rvi_tokenizer *t, const char *text, size_t len, bool parse_special,
                     frag_list *out, rvi_err *err)
{
	frag_list a = {0}, b = {0};
	if (!frag_add(&a, 0, len, -1))
		goto nomem;
	for (int32_t k = 0; k < t->n_special; k++) {
		int32_t id = t->special[k];
		if (!parse_special && t->type[id] != RVI_TOKEN_USER_DEFINED)
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
			size_t pos = f.off, end = f.off + f.len;
			while (pos < end) {
				const char *m = memmem(text + pos, end - pos, pat, plen);
				if (!m)
					break;
				size_t at = (size_t)(m - text);
				if (at > pos && !frag_add(&b, pos, at - pos, -1))
					goto nomem;
				if (!frag_add(&b, at, plen, id))
					goto nomem;
				pos = at + plen;
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
		rc = partition(t, text, len, parse_special, &fr, err);
		if (rc != RV_OK)
			return rc;
	}

	/* Each plain fragment escapes to at most 3 bytes per byte plus the
	 * prefix and yields at most one id per escaped byte; it has at most one
	 * symbol per input byte plus the prefix, and the merge queues at most
	 * three pairs per symbol (the first pairs, then two per merge). */
	size_t max_frag = 0, max_sym = 0, cap = 1;
	for (size_t i = 0; i < fr.n; i++) {
		if (fr.v[i].id >= 0) {
			cap += 1;
			continue;
		}
		size_t e = 3 * fr.v[i].len + 3;
		cap += e;
		if (e > max_frag)
			max_frag = e;
		if (fr.v[i].len + 1 > max_sym)
			max_sym = fr.v[i].len + 1;
	}
	int32_t *ids = rvi_alloc(cap, sizeof(*ids));
	spm_work w = {0};
	if (max_frag > 0) {
		w.buf = rvi_alloc(max_frag, 1);
		w.syms = rvi_alloc(max_sym, sizeof(*w.syms));
		w.heap = rvi_alloc(3 * max_sym, sizeof(*w.heap));
	}
	if (!ids || (max_frag > 0 && (!w.buf || !w.syms || !w.heap))) {
		rc = rvi_errorf(err, RV_ERR_NOMEM, "out of memory tokenizing %zu bytes", len);
		goto done;
	}

	int64_t n = 0;
	if (add_bos)
		ids[n++] = t->bos;
	/* llama.cpp prefixes a plain fragment with "▁" when it is the first one
	 * or follows a special token, which makes that every plain fragment. */
	bool prev_special = true;
	for (size_t i = 0; i < fr.n; i++) {
		frag f = fr.v[i];
		if (f.id >= 0) {
			ids[n++] = f.id;
			prev_special = true;
			continue;
		}
		size_t e = 0;
		if (t->add_space_prefix && prev_special) {
			memcpy(w.buf, SPM_SPACE, 3);
			e = 3;
		}
		for (size_t k = 0; k < f.len; k++) {
			char c = text[f.off + k];
			if (c == ' ') {
				memcpy(w.buf + e, SPM_SPACE, 3);
				e += 3;
			} else {
				w.buf[e++] = c;
			}
		}
		rc = spm_encode(t, &w, e, ids, &n, err);
		if (rc != RV_OK)
			goto done;
		prev_special = false;
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
	free(w.buf);
	free(w.syms);
	free(w.heap);
	free(fr.v);
	return rc;
}

/* ---- decoding ----------------------------------------------------------------- */

/* Feeds one byte through the UTF-8 checker with state (p, np); writes what
 * becomes final to out + *pos (out NULL: only counts). A sequence that
 * turns out invalid is replaced by one U+FFFD per maximal invalid subpart
 * (the Unicode recommendation), then the byte that broke it starts over. */
static void utf8_feed(unsigned char *p, int *np, unsigned char c, char *out, size_t *pos)
{
	static const char fffd[3] = {'\xef', '\xbf', '\xbd'};
	for (;;) {
		if (*np == 0) {
			int l = utf8_lead_len(c);
			if (l == 1) {
				if (out)
					out[*pos] = (char)c;
				*pos += 1;
			} else if (l == 0) {
				if (out)
					memcpy(out + *pos, fffd, 3);
				*pos += 3;
			} else {
				p[0] = c;
				*np = 1;
			}
			return;
		}
		if (utf8_cont_ok(p[0], *np, c)) {
			p[(*np)++] = c;
			if (*np == utf8_lead_len(p[0])) {
				if (out)
					memcpy(out + *pos, p, (size_t)*np);
				*pos += (size_t)*np;
				*np = 0;
			}
			return;
		}
		if (out)
			memcpy(out + *pos, fffd, 3);
		*pos += 3;
		*np = 0;
	}
}

/* Runs the piece of id through the checker; returns the bytes produced. */
static size_t detok_run(const rvi_tokenizer *t, int32_t id, unsigned char *p, int *np, char *out)
{
	size_t pos = 0;
	const unsigned char *s = (const unsigned char *)t->text[id];
	size_t n = t->len[id];
	switch (t->type[id]) {
	case RVI_TOKEN_NORMAL:
		for (size_t i = 0; i < n;) {
			if (n - i >= 3 && memcmp(s + i, SPM_SPACE, 3) == 0) {
				utf8_feed(p, np, ' ', out, &pos);
				i += 3;
			} else {
				utf8_feed(p, np, s[i++], out, &pos);
			}
		}
		break;
	case RVI_TOKEN_BYTE:
		utf8_feed(p, np, (unsigned char)(hex_val((char)s[3]) * 16 + hex_val((char)s[4])),
		          out, &pos);
		break;
	case RVI_TOKEN_USER_DEFINED:
		for (size_t i = 0; i < n; i++)
			utf8_feed(p, np, s[i], out, &pos);
		break;
	default:
		break;
	}
	return pos;
}

void rvi_detok_init(rvi_detok *d, const rvi_tokenizer *t)
{
	memset(d, 0, sizeof(*d));
	d->tok = t;
}

int64_t rvi_detok_push(rvi_detok *d, int32_t id, char *out, size_t cap)
{
	const rvi_tokenizer *t = d->tok;
	if (id < 0 || id >= t->n_vocab)
		return -1;
	/* Dry run on a copy of the state first, so a short buffer is refused
	 * before anything is written or the state moves. */
	unsigned char p[8];
	int np = d->n_pending;
	memcpy(p, d->pending, sizeof(p));
	size_t need = detok_run(t, id, p, &np, NULL);
	if (need > cap)
		return -1;
	return (int64_t)detok_run(t, id, d->pending, &d->n_pending, out);
}

int64_t rvi_detok_flush(rvi_detok *d, char *out, size_t cap)
{
	if (d->n_pending == 0)
		return 0;
	if (cap < 3)
		return -1;
	memcpy(out, "\xef\xbf\xbd", 3);
	d->n_pending = 0;
	return 3;
}

int64_t rvi_token_piece(const rvi_tokenizer *t, int32_t id, char *out, size_t cap)
{
	if (id < 0 || id >= t->n_vocab)
		return -1;
	size_t n = piece_len(t, id);
	if (n > cap)
		return -1;
	const char *s = t->text[id];
	switch (t->type[id]) {
	case RVI_TOKEN_NORMAL: {
		size_t o = 0;
		for (size_t i = 0; i < t->len[id];) {
			if (t->len[id] - i >= 3 && memcmp(s + i, SPM_SPACE, 3) == 0) {
				out[o++] = ' ';
				i += 3;
			} else {
				out[o++] = s[i++];
			}
		}
		break;
	}
	case RVI_TOKEN_BYTE:
		out[0] = (char)(hex_val(s[3]) * 16 + hex_val(s[4]));
		break;
	case RVI_TOKEN_USER_DEFINED:
		memcpy(out, s, n);
		break;
	default:
		break;
	}
	return (int64_t)n;
}
