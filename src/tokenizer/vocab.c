/* vocab.c: loading a vocabulary from GGUF (see vocab.h): token texts,
 * scores and types with their bounds checks, special ids and flags, the
 * end-of-generation set, the text -> id map, and the bytes every token
 * decodes to (computed once here, so that decoding is the same for every
 * vocabulary kind). The BPE-only parts are loaded by bpe.c. */
#include "src/tokenizer/vocab.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/tokenizer/unicode.h"

static const char SPM_SPACE[3] = {'\xe2', '\x96', '\x81'}; /* U+2581 "▁" */

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

int32_t rvi_vocab_lookup(const rvi_tokenizer *t, const char *s, size_t n)
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

/* Inserts id; returns the id already holding the same text, or -1. */
static int32_t table_insert(rvi_tokenizer *t, int32_t id)
{
	uint64_t i = hash_bytes(t->text[id], t->len[id]) & t->table_mask;
	for (;;) {
		int32_t old = t->table[i];
		if (old < 0) {
			t->table[i] = id;
			return -1;
		}
		if (t->len[old] == t->len[id] && memcmp(t->text[old], t->text[id], t->len[id]) == 0)
			return old;
		i = (i + 1) & t->table_mask;
	}
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

/* Writes the bytes token id decodes to into out (NULL: only counts):
 * SentencePiece turns "▁" into a space and <0xHH> into its byte; byte-level
 * BPE maps each character back through bytes_to_unicode (a character
 * outside that table stays as it is); user-defined tokens (and control
 * tokens HF treats as plain added tokens) are their text; other control,
 * unknown and unused tokens render as nothing. */
static size_t token_piece(const rvi_tokenizer *t, int32_t id, const uint8_t *cp_byte, char *out)
{
	const char *s = t->text[id];
	size_t n = t->len[id], o = 0;
	switch (t->type[id]) {
	case RVI_TOKEN_NORMAL:
		if (t->kind == RVI_VOCAB_BPE) {
			for (size_t i = 0; i < n;) {
				uint32_t c;
				size_t l = rvi_utf8_decode((const unsigned char *)s + i, n - i, &c);
				if (c < 0x144 && (cp_byte[c] || c == rvi_bpe_byte_cp(0))) {
					if (out)
						out[o] = (char)cp_byte[c];
					o++;
				} else {
					if (out)
						memcpy(out + o, s + i, l);
					o += l;
				}
				i += l;
			}
			return o;
		}
		for (size_t i = 0; i < n;) {
			bool sp = n - i >= 3 && memcmp(s + i, SPM_SPACE, 3) == 0;
			if (out)
				out[o] = sp ? ' ' : s[i];
			o++;
			i += sp ? 3 : 1;
		}
		return o;
	case RVI_TOKEN_BYTE:
		if (t->kind == RVI_VOCAB_SPM) {
			if (out)
				out[0] = (char)(hex_val(s[3]) * 16 + hex_val(s[4]));
			return 1;
		}
		/* a BPE vocabulary's byte tokens are their text */
		if (out && n)
			memcpy(out, s, n);
		return n;
	case RVI_TOKEN_USER_DEFINED:
		if (out && n)
			memcpy(out, s, n);
		return n;
	case RVI_TOKEN_CONTROL:
		/* HF prints its non-special added tokens */
		if (!t->plain_match || !t->plain_match[id])
			return 0;
		if (out && n)
			memcpy(out, s, n);
		return n;
	default:
		return 0;
	}
}

static int make_pieces(rvi_tokenizer *t, const char *file, rvi_err *err)
{
	uint8_t cp_byte[0x144] = {0};
	for (unsigned b = 0; b < 256; b++)
		cp_byte[rvi_bpe_byte_cp(b)] = (uint8_t)b;
	uint64_t total = 0;
	size_t max_piece = 0;
	t->piece_off = rvi_alloc((size_t)t->n_vocab, sizeof(*t->piece_off));
	t->piece_len = rvi_alloc((size_t)t->n_vocab, sizeof(*t->piece_len));
	if (!t->piece_off || !t->piece_len)
		return rvi_errorf(err, RV_ERR_NOMEM, "out of memory loading the vocabulary");
	for (int32_t i = 0; i < t->n_vocab; i++) {
		size_t p = token_piece(t, i, cp_byte, NULL);
		t->piece_off[i] = (size_t)total;
		t->piece_len[i] = (uint32_t)p; /* p <= token length < 4 GiB (GGUF) */
		total += p;
		if (p > max_piece)
			max_piece = p;
	}
	/* Worst case of one push: pending bytes plus the piece, each byte
	 * turning into a 3-byte U+FFFD. */
	if (max_piece > (SIZE_MAX - 64) / 3 - 8 || total > SIZE_MAX - 1)
		return rvi_errorf(err, RV_ERR_MODEL, "%s: token text too long in %s",
		                  RVI_KEY_TOKENS, file);
	t->max_push = 3 * (max_piece + 3);
	t->piece_arena = rvi_alloc((size_t)total + 1, 1);
	if (!t->piece_arena)
		return rvi_errorf(err, RV_ERR_NOMEM, "out of memory loading the vocabulary");
	t->piece_whole = rvi_alloc((size_t)t->n_vocab, 1);
	if (!t->piece_whole)
		return rvi_errorf(err, RV_ERR_NOMEM, "out of memory loading the vocabulary");
	for (int32_t i = 0; i < t->n_vocab; i++) {
		char *piece = t->piece_arena + t->piece_off[i];
		token_piece(t, i, cp_byte, piece);
		t->piece_whole[i] = rvi_utf8_whole((const unsigned char *)piece, t->piece_len[i]);
	}
	return RV_OK;
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
    "<|eot_id|>", "<|im_end|>",      "<|end|>", "<end_of_turn>",      "<|endoftext|>",
    "<|eom_id|>", "<|end_of_text|>", "<EOT>",   "<end_of_utterance>", "<|return|>",
};

/* Added tokens that Hugging Face marks special: false although they look
 * special, so that llama.cpp's converter typed them CONTROL: HF matches them
 * in any text. Qwen2's code tokens, Gemma's <unusedN> and <mask>. */
static bool hf_plain_added(const rvi_tokenizer *t, int32_t id)
{
	const char *s = t->text[id];
	size_t n = t->len[id];
	if (t->kind == RVI_VOCAB_BPE && t->nfc)
		return (n > 7 && memcmp(s, "<|fim_", 6) == 0) || strcmp(s, "<|repo_name|>") == 0 ||
		       strcmp(s, "<|file_sep|>") == 0;
	if (t->kind == RVI_VOCAB_SPM && !t->add_space_prefix)
		return strcmp(s, "<mask>") == 0 ||
		       (n > 8 && memcmp(s, "<unused", 7) == 0 && s[n - 1] == '>');
	return false;
}

static int load_tokens(rvi_tokenizer *t, const rvi_gguf *g, const rvi_gguf_kv *tok_kv,
                       const rvi_gguf_kv *score_kv, const rvi_gguf_kv *type_kv, rvi_err *err)
{
	const char *file = g->path ? g->path : "model";
	uint64_t n = tok_kv->arr_n;
	uint64_t arena_size = 0;
	for (uint64_t i = 0; i < n; i++)
		if (!rvi_add_ok(arena_size, tok_kv->strs[i].len, &arena_size) ||
		    !rvi_add_ok(arena_size, 1, &arena_size) || arena_size > SIZE_MAX)
			return rvi_errorf(err, RV_ERR_MODEL, "%s: token texts too large in %s",
			                  RVI_KEY_TOKENS, file);
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
	    !t->special)
		return rvi_errorf(err, RV_ERR_NOMEM, "out of memory loading the vocabulary");
	t->table_mask = table_size - 1;
	memset(t->table, 0xff, table_size * sizeof(*t->table));

	/* Copy the texts so the tokenizer does not depend on the mapping's lifetime. */
	size_t pos = 0;
	for (uint64_t i = 0; i < n; i++) {
		rvi_str s = tok_kv->strs[i];
		int show = s.len > 32 ? 32 : (int)s.len;
		if (s.len > 0)
			memcpy(t->arena + pos, s.ptr, s.len);
		t->arena[pos + s.len] = '\0';
		t->text[i] = t->arena + pos;
		t->len[i] = s.len;
		pos += s.len + 1;
		if (s.len > t->max_token_len)
			t->max_token_len = s.len;

		double sc = score_kv ? rvi_gguf_arr_f64(score_kv, i) : 0.0;
		if (isnan(sc))
			return rvi_errorf(err, RV_ERR_MODEL, "%s[%llu] is NaN in %s",
			                  RVI_KEY_SCORES, (unsigned long long)i, file);
		t->score[i] = (float)sc;

		int64_t ty = type_kv ? rvi_gguf_arr_i64(type_kv, i) : RVI_TOKEN_NORMAL;
		if (ty < RVI_TOKEN_UNDEFINED || ty > RVI_TOKEN_BYTE)
			return rvi_errorf(
			    err, RV_ERR_MODEL, "%s[%llu] = %lld is not a token type in %s",
			    RVI_KEY_TYPES, (unsigned long long)i, (long long)ty, file);
		t->type[i] = (uint8_t)ty;
		if (ty == RVI_TOKEN_BYTE && t->kind == RVI_VOCAB_SPM &&
		    (s.len != 6 || memcmp(s.ptr, "<0x", 3) != 0 || !is_hex(s.ptr[3]) ||
		     !is_hex(s.ptr[4]) || s.ptr[5] != '>'))
			return rvi_errorf(err, RV_ERR_MODEL,
			                  "%s[%llu] = \"%.*s\" is a byte token but not of the form "
			                  "<0xHH> in %s",
			                  RVI_KEY_TOKENS, (unsigned long long)i, show, s.ptr, file);
		/* A BPE vocabulary comes from a map (HF's vocab), so an empty or
		 * repeated text means a damaged file; SentencePiece files do have
		 * them (llama.cpp keeps the last id of a text, and so do we). */
		if (t->kind == RVI_VOCAB_BPE && s.len == 0)
			return rvi_errorf(err, RV_ERR_MODEL, "%s[%llu] is empty in %s",
			                  RVI_KEY_TOKENS, (unsigned long long)i, file);
		if (s.len == 0)
			continue;
		int32_t old = table_insert(t, (int32_t)i);
		if (old >= 0 && t->kind == RVI_VOCAB_BPE)
			return rvi_errorf(
			    err, RV_ERR_MODEL, "%s[%llu] = \"%.*s\" repeats token %d in %s",
			    RVI_KEY_TOKENS, (unsigned long long)i, show, s.ptr, old, file);
		if (old >= 0) {
			/* the later id wins, as in llama.cpp's map */
			uint64_t h = hash_bytes(s.ptr, s.len) & t->table_mask;
			while (t->table[h] != old)
				h = (h + 1) & t->table_mask;
			t->table[h] = (int32_t)i;
		}
	}
	return RV_OK;
}

int rvi_tokenizer_load(rvi_tokenizer **out, const rvi_gguf *g, int64_t n_vocab_expected,
                       rvi_err *err)
{
	if (!out || !g)
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "rvi_tokenizer_load: NULL argument");
	*out = NULL;
	const char *file = g->path ? g->path : "model";
	int rc;

	rvi_str model;
	rc = rvi_gguf_get_str(g, RVI_KEY_MODEL, true, &model, err);
	if (rc != RV_OK)
		return rc;
	enum rvi_vocab_kind kind;
	if (rvi_str_eq(model, "llama")) {
		kind = RVI_VOCAB_SPM;
	} else if (rvi_str_eq(model, "gpt2")) {
		kind = RVI_VOCAB_BPE;
	} else {
		int show = model.len > 64 ? 64 : (int)model.len;
		return rvi_errorf(err, RV_ERR_UNSUPPORTED,
		                  "%s = \"%.*s\" is not a vocabulary kind we support (llama, gpt2) "
		                  "in %s",
		                  RVI_KEY_MODEL, show, model.ptr, file);
	}

	const rvi_gguf_kv *tok_kv, *score_kv, *type_kv;
	rc = rvi_gguf_get_arr(g, RVI_KEY_TOKENS, true, RVI_GGUF_STRING, &tok_kv, err);
	if (rc != RV_OK)
		return rc;
	uint64_t n = tok_kv->arr_n;
	if (n == 0 || n > INT32_MAX)
		return rvi_errorf(err, RV_ERR_MODEL, "%s has %llu entries in %s", RVI_KEY_TOKENS,
		                  (unsigned long long)n, file);
	if (n_vocab_expected > 0 && n != (uint64_t)n_vocab_expected)
		return rvi_errorf(err, RV_ERR_MODEL,
		                  "%s has %llu entries but the model has %lld embedding rows in %s",
		                  RVI_KEY_TOKENS, (unsigned long long)n,
		                  (long long)n_vocab_expected, file);
	rc = rvi_gguf_get_arr(g, RVI_KEY_SCORES, false, RVI_GGUF_FLOAT32, &score_kv, err);
	if (rc != RV_OK)
		return rc;
	if (score_kv && score_kv->arr_n != n)
		return rvi_errorf(err, RV_ERR_MODEL, "%s has %llu entries, expected %llu in %s",
		                  RVI_KEY_SCORES, (unsigned long long)score_kv->arr_n,
		                  (unsigned long long)n, file);
	rc = rvi_gguf_get_arr(g, RVI_KEY_TYPES, false, RVI_GGUF_INT32, &type_kv, err);
	if (rc != RV_OK)
		return rc;
	if (type_kv && type_kv->arr_n != n)
		return rvi_errorf(err, RV_ERR_MODEL, "%s has %llu entries, expected %llu in %s",
		                  RVI_KEY_TYPES, (unsigned long long)type_kv->arr_n,
		                  (unsigned long long)n, file);

	rvi_tokenizer *t = calloc(1, sizeof(*t));
	if (!t)
		return rvi_errorf(err, RV_ERR_NOMEM, "out of memory loading the vocabulary");
	t->kind = kind;
	t->n_vocab = (int32_t)n;
	t->bos = t->eos = t->unk = -1;
	rc = load_tokens(t, g, tok_kv, score_kv, type_kv, err);
	if (rc != RV_OK)
		goto fail;

	int32_t eot = -1, eom = -1;
	if ((rc = get_special_id(g, RVI_KEY_BOS, (int64_t)n, &t->bos, err)) != RV_OK ||
	    (rc = get_special_id(g, RVI_KEY_EOS, (int64_t)n, &t->eos, err)) != RV_OK ||
	    (rc = get_special_id(g, RVI_KEY_UNK, (int64_t)n, &t->unk, err)) != RV_OK ||
	    (rc = get_special_id(g, RVI_KEY_EOT, (int64_t)n, &eot, err)) != RV_OK ||
	    (rc = get_special_id(g, RVI_KEY_EOM, (int64_t)n, &eom, err)) != RV_OK)
		goto fail;
	/* llama.cpp's defaults: SentencePiece adds BOS and a dummy prefix,
	 * byte-level BPE neither unless the file says so. */
	t->add_bos = kind == RVI_VOCAB_SPM;
	t->add_eos = false;
	t->add_space_prefix = kind == RVI_VOCAB_SPM;
	if ((rc = rvi_gguf_get_bool(g, RVI_KEY_ADD_BOS, false, &t->add_bos, err)) != RV_OK ||
	    (rc = rvi_gguf_get_bool(g, RVI_KEY_ADD_EOS, false, &t->add_eos, err)) != RV_OK)
		goto fail;
	if (kind == RVI_VOCAB_SPM && (rc = rvi_gguf_get_bool(g, RVI_KEY_ADD_SPACE, false,
	                                                     &t->add_space_prefix, err)) != RV_OK)
		goto fail;

	if (t->eos >= 0)
		t->eog[t->eos] = 1;
	if (eot >= 0)
		t->eog[eot] = 1;
	if (eom >= 0)
		t->eog[eom] = 1;
	for (size_t k = 0; k < sizeof(EOG_TEXTS) / sizeof(EOG_TEXTS[0]); k++) {
		int32_t id = rvi_vocab_lookup(t, EOG_TEXTS[k], strlen(EOG_TEXTS[k]));
		if (id >= 0)
			t->eog[id] = 1;
	}

	if (kind == RVI_VOCAB_BPE) {
		rc = rvi_bpe_load(t, g, err);
		if (rc != RV_OK)
			goto fail;
	} else {
		/* Byte fallback as llama.cpp resolves it: the "<0xHH>" piece, else
		 * a piece that is the byte itself, else (our choice) the unknown
		 * token. */
		for (int b = 0; b < 256; b++) {
			char buf[8];
			snprintf(buf, sizeof(buf), "<0x%02X>", b);
			int32_t id = rvi_vocab_lookup(t, buf, 6);
			if (id < 0) {
				char c = (char)b;
				id = rvi_vocab_lookup(t, &c, 1);
			}
			t->byte_id[b] = id >= 0 ? id : t->unk;
		}
	}

	/* Texts cut out before merging: control, user-defined and unknown
	 * pieces, longest first (ties by id, so the order is deterministic). */
	for (int32_t i = 0; i < t->n_vocab; i++) {
		uint8_t ty = t->type[i];
		if (ty == RVI_TOKEN_CONTROL && hf_plain_added(t, i)) {
			if (!t->plain_match && !(t->plain_match = rvi_zalloc(n, 1))) {
				rc = rvi_errorf(err, RV_ERR_NOMEM,
				                "out of memory loading the vocabulary");
				goto fail;
			}
			t->plain_match[i] = 1;
		}
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
	rvi_str name = {0};
	char name_buf[128] = "";
	if (rvi_gguf_get_str(g, "general.name", false, &name, NULL) == RV_OK && name.ptr)
		snprintf(name_buf, sizeof(name_buf), "%.*s", (int)(name.len < 127 ? name.len : 127),
		         name.ptr);
	rc = rvi_special_index_build(t, name_buf, err);
	if (rc != RV_OK)
		goto fail;

	rc = make_pieces(t, file, err);
	if (rc != RV_OK)
		goto fail;
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
	rvi_special_index_free(&t->sx);
	free(t->piece_arena);
	free(t->piece_off);
	free(t->piece_len);
	free(t->piece_whole);
	free(t->merges);
	free(t->plain_match);
	free(t);
}

const char *rvi_tokenizer_kind(const rvi_tokenizer *t)
{
	return t->kind == RVI_VOCAB_SPM ? "spm" : t->kind_name;
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

bool rvi_tokenizer_add_eos(const rvi_tokenizer *t)
{
	return t->add_eos && t->eos >= 0;
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
