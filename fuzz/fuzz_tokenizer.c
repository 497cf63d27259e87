/* fuzz_tokenizer.c: libFuzzer target for text <-> ids on real vocabularies
 * from tests/data, loaded once: stories260K (SentencePiece with a dummy
 * prefix) and the mini qwen2 (byte-level BPE, NFC, Qwen2 pre-tokenizer),
 * smollm (byte-level BPE, StarCoder pre-tokenizer) and gemma3 (SentencePiece
 * without dummy prefix, user-defined whitespace tokens) vocabularies.
 *
 * The first input byte picks the vocabulary (bits 3-4) and the mode, the
 * rest is the payload:
 *   even: the payload is text, encoded with parse_special on or off (bit 1)
 *         and BOS on or off (bit 2); every id must be in range, and for
 *         valid UTF-8 without special parsing, decoding must give the text
 *         back: SentencePiece with byte fallback and byte-level BPE are
 *         lossless, so the only allowed differences are the dummy prefix's
 *         space, a "▁" of the text coming back as a space (SentencePiece),
 *         NFC (qwen2), and bytes smollm's vocabulary has no character for
 *         (lead byte 0xF1: code points U+40000..U+7FFFF).
 *   odd:  the payload is little-endian 16-bit ids, some past the vocabulary,
 *         streamed through the detokenizer with the documented worst-case
 *         buffer and through rvi_token_piece; the stream must be valid
 *         UTF-8 and out-of-range ids must be refused.
 * Violated properties abort, so libFuzzer reports them like crashes. */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/gguf.h"
#include "src/tokenizer/tokenizer.h"
#include "src/tokenizer/unicode.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifndef FUZZ_TESTDATA
#define FUZZ_TESTDATA "tests/data"
#endif

enum { V_STORIES, V_QWEN2, V_SMOLLM, V_GEMMA3, N_VOCABS };
static const char *const VOCAB_FILES[N_VOCABS] = {
    "stories260K.gguf", "tokenizers/mini-qwen2/vocab.gguf", "tokenizers/mini-smollm/vocab.gguf",
    "tokenizers/mini-gemma3/vocab.gguf"};
static rvi_gguf *ggufs[N_VOCABS];
static rvi_tokenizer *toks[N_VOCABS];
static rvi_tokenizer *tok; /* the one this input uses */
static int which;

#define REQUIRE(cond)                                                                              \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "property failed: %s (%s:%d)\n", #cond, __FILE__,          \
			        __LINE__);                                                         \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	const char *dir = getenv("RLAIFV_FUZZ_DATA");
	for (int v = 0; v < N_VOCABS; v++) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : FUZZ_TESTDATA,
		         VOCAB_FILES[v]);
		rvi_err err;
		if (rvi_gguf_open(&ggufs[v], path, &err) != RV_OK ||
		    rvi_tokenizer_load(&toks[v], ggufs[v], 0, &err) != RV_OK) {
			fprintf(stderr, "fuzz_tokenizer: %s (set RLAIFV_FUZZ_DATA to tests/data)\n",
			        err.msg);
			exit(1);
		}
	}
	return 0;
}

/* Strict UTF-8 check (no overlongs, surrogates or values past U+10FFFF). */
static bool valid_utf8(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned c = s[i];
		size_t l;
		unsigned lo = 0x80, hi = 0xBF;
		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xC2 && c <= 0xDF) {
			l = 2;
		} else if (c >= 0xE0 && c <= 0xEF) {
			l = 3;
			if (c == 0xE0)
				lo = 0xA0;
			if (c == 0xED)
				hi = 0x9F;
		} else if (c >= 0xF0 && c <= 0xF4) {
			l = 4;
			if (c == 0xF0)
				lo = 0x90;
			if (c == 0xF4)
				hi = 0x8F;
		} else {
			return false;
		}
		if (n - i < l)
			return false;
		for (size_t k = 1; k < l; k++) {
			unsigned d = s[i + k];
			if (d < (k == 1 ? lo : 0x80) || d > (k == 1 ? hi : 0xBF))
				return false;
		}
		i += l;
	}
	return true;
}

/* Streams ids through the detokenizer into a malloc'ed string. */
static char *detok_all(const int32_t *ids, int64_t n, size_t *len)
{
	const int64_t n_vocab = rvi_tokenizer_n_vocab(tok);
	const size_t cap = rvi_tokenizer_max_piece(tok);
	char *out = malloc((size_t)n * cap + 4);
	char *piece = malloc(cap);
	REQUIRE(out && piece);
	rvi_detok d;
	rvi_detok_init(&d, tok);
	size_t o = 0;
	for (int64_t i = 0; i < n; i++) {
		int64_t r = rvi_detok_push(&d, ids[i], out + o, cap);
		if (ids[i] < 0 || ids[i] >= n_vocab) {
			REQUIRE(r == -1);
			REQUIRE(rvi_token_piece(tok, ids[i], piece, cap) == -1);
			continue;
		}
		REQUIRE(r >= 0 && (size_t)r <= cap);
		o += (size_t)r;
		int64_t p = rvi_token_piece(tok, ids[i], piece, cap);
		REQUIRE(p >= 0 && (size_t)p <= cap);
	}
	int64_t r = rvi_detok_flush(&d, out + o, 4);
	REQUIRE(r >= 0 && r <= 3);
	o += (size_t)r;
	free(piece);
	*len = o;
	return out;
}

static void fuzz_encode(const uint8_t *text, size_t n, bool special, bool bos)
{
	rvi_err err;
	int32_t *ids = NULL;
	int64_t n_ids = 0;
	int rc = rvi_tokenize(tok, (const char *)text, n, bos, special, &ids, &n_ids, &err);
	REQUIRE(rc == RV_OK);
	const int64_t n_vocab = rvi_tokenizer_n_vocab(tok);
	for (int64_t i = 0; i < n_ids; i++)
		REQUIRE(ids[i] >= 0 && ids[i] < n_vocab);
	size_t len;
	char *dec = detok_all(ids, n_ids, &len);
	REQUIRE(valid_utf8((const unsigned char *)dec, len));
	const bool spm = which == V_STORIES || which == V_GEMMA3;
	if (!special && !bos && n > 0 && valid_utf8(text, n) &&
	    !(which == V_SMOLLM && memchr(text, 0xF1, n))) {
		char *nfc = NULL;
		size_t nfc_len = 0;
		if (which == V_QWEN2) {
			REQUIRE(rvi_nfc(text, n, &nfc, &nfc_len));
			text = (const uint8_t *)nfc;
			n = nfc_len;
		}
		/* The space the "▁" prefix stands for comes first; a "▁" in the
		 * text itself is a space to SentencePiece, so it comes back as one. */
		char *want = malloc(n + 1);
		size_t w = 0;
		REQUIRE(want);
		if (which == V_STORIES)
			want[w++] = ' ';
		for (size_t i = 0; i < n;) {
			if (spm && n - i >= 3 && memcmp(text + i, "\xe2\x96\x81", 3) == 0) {
				want[w++] = ' ';
				i += 3;
			} else {
				want[w++] = (char)text[i++];
			}
		}
		REQUIRE(len == w && memcmp(dec, want, w) == 0);
		free(want);
		free(nfc);
	}
	free(dec);
	free(ids);
}

static void fuzz_decode(const uint8_t *p, size_t n)
{
	const int64_t n_vocab = rvi_tokenizer_n_vocab(tok);
	int64_t n_ids = (int64_t)(n / 2);
	int32_t *ids = malloc((size_t)(n_ids + 1) * sizeof(*ids));
	REQUIRE(ids);
	for (int64_t i = 0; i < n_ids; i++) {
		uint32_t v = (uint32_t)p[2 * i] | (uint32_t)p[2 * i + 1] << 8;
		/* Mostly valid ids, with some just past either end. */
		ids[i] =
		    v >= 0xff00 ? (int32_t)(v - 0xff80) : (int32_t)(v % (uint32_t)(n_vocab + 2));
	}
	size_t len;
	char *dec = detok_all(ids, n_ids, &len);
	REQUIRE(valid_utf8((const unsigned char *)dec, len));
	free(dec);

	/* A push into a buffer smaller than it needs changes nothing. */
	if (n_ids > 0 && ids[0] >= 0 && ids[0] < n_vocab) {
		rvi_detok d;
		rvi_detok_init(&d, tok);
		char small[4];
		int64_t r = rvi_detok_push(&d, ids[0], small, 0);
		REQUIRE(r == 0 || r == -1);
		REQUIRE(r == 0 || d.n_pending == 0);
	}
	free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const uint8_t mode = data[0];
	which = (mode >> 3) & 3;
	tok = toks[which];
	if (mode & 1)
		fuzz_decode(data + 1, size - 1);
	else
		fuzz_encode(data + 1, size - 1, (mode & 2) != 0, (mode & 4) != 0);
	return 0;
}
