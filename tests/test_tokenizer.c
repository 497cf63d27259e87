/* test_tokenizer.c: the SentencePiece tokenizer against llama.cpp's and the
 * training code's token ids (reference JSON files and the LLaVA prompts),
 * byte-exact round trips (ASCII, multi-byte UTF-8, emoji through byte
 * fallback, invalid UTF-8), streaming detokenization, special-token
 * parsing, a 200 KB input, and load errors on small vocabularies built in
 * memory as GGUF. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "src/gguf.h"
#include "tests/testutil.h"
#include "src/tokenizer/vocab.h"

/* ---- helpers ---------------------------------------------------------------- */

static bool ids_equal(const int32_t *a, int64_t na, const int32_t *b, int64_t nb)
{
	if (na != nb)
		return false;
	for (int64_t i = 0; i < na; i++)
		if (a[i] != b[i])
			return false;
	return true;
}

static void print_ids(const char *what, const int32_t *ids, int64_t n)
{
	fprintf(stderr, "  %s (%lld):", what, (long long)n);
	for (int64_t i = 0; i < n && i < 64; i++)
		fprintf(stderr, " %d", ids[i]);
	fputc('\n', stderr);
}

/* Tokenizes and compares with want; prints both on a mismatch. */
static void expect_ids(const rvi_tokenizer *t, const char *text, size_t len, bool bos, bool special,
                       const int32_t *want, int64_t n_want, const char *what)
{
	int32_t *ids = NULL;
	int64_t n = -1;
	rvi_err err = {0};
	int rc = rvi_tokenize(t, text, len, bos, special, &ids, &n, &err);
	bool ok = rc == RV_OK && ids_equal(ids, n, want, n_want);
	CHECK(ok, "%s: rc %d %s", what, rc, err.msg);
	if (!ok) {
		print_ids("got", ids, n);
		print_ids("want", want, n_want);
	}
	free(ids);
}

#define EXPECT(t, text, bos, special, ...)                                                         \
	do {                                                                                       \
		static const int32_t want_[] = {__VA_ARGS__};                                      \
		expect_ids(t, text, strlen(text), bos, special, want_,                             \
		           (int64_t)(sizeof(want_) / sizeof(want_[0])), text);                     \
	} while (0)

/* Encodes text (no BOS) and returns the ids; NULL on error. */
static int32_t *encode(const rvi_tokenizer *t, const char *text, size_t len, bool special,
                       int64_t *n)
{
	int32_t *ids = NULL;
	rvi_err err = {0};
	int rc = rvi_tokenize(t, text, len, false, special, &ids, n, &err);
	CHECK(rc == RV_OK, "tokenize: %s", err.msg);
	return rc == RV_OK ? ids : NULL;
}

/* Concatenated raw pieces of ids (malloc'ed, NUL-terminated). */
static char *raw_decode(const rvi_tokenizer *t, const int32_t *ids, int64_t n, size_t *len)
{
	size_t cap = rvi_tokenizer_max_piece(t), total = 0;
	char *out = malloc((size_t)n * cap + 1);
	int bad = 0;
	for (int64_t i = 0; i < n; i++) {
		int64_t k = rvi_token_piece(t, ids[i], out + total, cap);
		bad += k < 0;
		if (k > 0)
			total += (size_t)k;
	}
	CHECK(bad == 0, "rvi_token_piece failed %d times", bad);
	out[total] = 0;
	*len = total;
	return out;
}

/* Streaming decode of ids, one push per id, then a flush. */
static char *stream_decode(const rvi_tokenizer *t, const int32_t *ids, int64_t n, size_t *len)
{
	size_t cap = rvi_tokenizer_max_piece(t), total = 0;
	char *out = malloc((size_t)(n + 1) * cap + 4);
	int bad = 0;
	rvi_detok d;
	rvi_detok_init(&d, t);
	for (int64_t i = 0; i < n; i++) {
		int64_t k = rvi_detok_push(&d, ids[i], out + total, cap);
		bad += k < 0;
		if (k > 0)
			total += (size_t)k;
	}
	CHECK(bad == 0, "rvi_detok_push failed %d times", bad);
	int64_t k = rvi_detok_flush(&d, out + total, cap);
	CHECK(k >= 0, "flush");
	if (k > 0)
		total += (size_t)k;
	out[total] = 0;
	*len = total;
	return out;
}

/* Length of the valid UTF-8 sequence at s (strictly checked), else 0. */
static size_t valid_seq(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t l;
	unsigned lo = 0x80, hi = 0xBF;
	if (c < 0x80)
		return 1;
	else if (c >= 0xC2 && c <= 0xDF)
		l = 2;
	else if (c >= 0xE0 && c <= 0xEF)
		l = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
	else if (c >= 0xF0 && c <= 0xF4)
		l = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
	else
		return 0;
	if (l > n)
		return 0;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t k = 2; k < l; k++)
		if ((s[k] & 0xC0) != 0x80)
			return 0;
	return l;
}

/* Length of the maximal prefix of a valid sequence at s (>= 1): the bytes
 * one U+FFFD stands for under the Unicode "maximal subpart" practice. */
static size_t invalid_subpart(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t l = c >= 0xC2 && c <= 0xDF   ? 2
	           : c >= 0xE0 && c <= 0xEF ? 3
	           : c >= 0xF0 && c <= 0xF4 ? 4
	                                    : 0;
	if (l == 0)
		return 1;
	unsigned lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80;
	unsigned hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
	size_t k = 1;
	if (k < n && s[k] >= lo && s[k] <= hi)
		for (k = 2; k < l && k < n && (s[k] & 0xC0) == 0x80;)
			k++;
	return k;
}

/* Batch reference for the streaming decoder: valid sequences copied,
 * each maximal invalid subpart -> U+FFFD (what Python's errors="replace"
 * does). hex instead writes every invalid byte as \xHH (the llama.cpp
 * reference files' convention). */
static char *sanitize(const char *in, size_t n, bool hex)
{
	char *out = malloc(4 * n + 1);
	size_t o = 0;
	const unsigned char *s = (const unsigned char *)in;
	for (size_t i = 0; i < n;) {
		size_t l = valid_seq(s + i, n - i);
		if (l > 0) {
			memcpy(out + o, s + i, l);
			o += l;
			i += l;
			continue;
		}
		size_t bad = invalid_subpart(s + i, n - i);
		if (hex) {
			bad = 1;
			o += (size_t)sprintf(out + o, "\\x%02X", s[i]);
		} else {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
		}
		i += bad;
	}
	out[o] = 0;
	return out;
}

static rvi_tokenizer *load_model_tok(const char *name, rvi_gguf **g)
{
	rvi_err err = {0};
	rvi_tokenizer *t = NULL;
	int rc = rvi_gguf_open(g, tu_data(name), &err);
	CHECK(rc == RV_OK, "open %s: %s", name, err.msg);
	if (rc != RV_OK)
		return NULL;
	rc = rvi_tokenizer_load(&t, *g, 512, &err);
	CHECK(rc == RV_OK, "tokenizer %s: %s", name, err.msg);
	return t;
}

static int32_t *json_ids(const tu_json *arr, int64_t *n)
{
	*n = 0;
	if (!arr || arr->kind != TU_JARR)
		return NULL;
	int32_t *ids = malloc((arr->n + 1) * sizeof(*ids));
	for (size_t i = 0; i < arr->n; i++)
		ids[i] = (int32_t)arr->items[i].num;
	*n = (int64_t)arr->n;
	return ids;
}

/* ---- stories260K vocabulary ------------------------------------------------------ */

static void test_reference_ids(const rvi_tokenizer *t)
{
	CHECK(rvi_tokenizer_n_vocab(t) == 512, "n_vocab");
	CHECK(rvi_tokenizer_bos(t) == 1 && rvi_tokenizer_eos(t) == 2 && rvi_tokenizer_unk(t) == 0,
	      "special ids %d %d %d", rvi_tokenizer_bos(t), rvi_tokenizer_eos(t),
	      rvi_tokenizer_unk(t));
	CHECK(rvi_tokenizer_add_bos(t), "add_bos defaults to true");
	CHECK(rvi_tokenizer_is_eog(t, 2) && !rvi_tokenizer_is_eog(t, 1) &&
	          !rvi_tokenizer_is_eog(t, 410) && !rvi_tokenizer_is_eog(t, -1) &&
	          !rvi_tokenizer_is_eog(t, 512),
	      "is_eog");
	size_t len = 0;
	const char *s = rvi_token_text(t, 1, &len);
	CHECK(s && len == 3 && memcmp(s, "<s>", 3) == 0, "text of 1");
	s = rvi_token_text(t, 410, &len);
	CHECK(s && len == 3 && memcmp(s, "\xe2\x96\x81", 3) == 0, "text of 410 is U+2581");
	CHECK(rvi_token_text(t, 512, &len) == NULL && rvi_token_text(t, -1, &len) == NULL,
	      "text out of range");
	CHECK(rvi_token_type_of(t, 13) == RVI_TOKEN_BYTE &&
	          rvi_token_type_of(t, 1) == RVI_TOKEN_CONTROL &&
	          rvi_token_type_of(t, 0) == RVI_TOKEN_UNKNOWN &&
	          rvi_token_type_of(t, 300) == RVI_TOKEN_NORMAL,
	      "token types");

	EXPECT(t, "Once upon a time", true, false, 1, 403, 407, 261, 378);
	EXPECT(t, "USER: ", true, false, 1, 410, 471, 437, 459, 461, 467, 410);
	EXPECT(t, "\ndescribe\nASSISTANT:", false, false, 410, 13, 418, 406, 429, 325, 430, 411, 13,
	       447, 437, 437, 442, 437, 434, 447, 458, 434, 467);
	EXPECT(t, "Lily", true, false, 1, 317);
	EXPECT(t, "The little dog", true, false, 1, 291, 376, 400, 428);
	/* The LLaVA-1.5 prompt with its system sentence, as the training code
	 * tokenizes it: the text before and after <image> separately. */
	EXPECT(t,
	       "A chat between a curious human and an artificial intelligence assistant. The "
	       "assistant gives helpful, detailed, and polite answers to the human's questions. "
	       "USER: ",
	       true, false, 1, 410, 447, 280, 415, 294, 268, 316, 424, 411, 302, 261, 280, 425, 325,
	       277, 419, 270, 425, 423, 303, 269, 261, 416, 261, 420, 413, 417, 431, 417, 429, 417,
	       412, 421, 322, 413, 411, 306, 333, 302, 331, 261, 419, 419, 293, 413, 303, 413, 426,
	       291, 261, 419, 419, 293, 413, 303, 413, 298, 417, 360, 419, 281, 421, 427, 431, 425,
	       421, 432, 279, 316, 412, 290, 266, 432, 269, 282, 414, 421, 275, 411, 261, 416, 419,
	       424, 285, 419, 267, 265, 270, 425, 423, 303, 439, 419, 410, 456, 425, 411, 356, 417,
	       289, 419, 426, 410, 471, 437, 459, 461, 467, 410);
	EXPECT(t, "\ndescribe ASSISTANT:", false, false, 410, 13, 418, 406, 429, 325, 430, 411, 410,
	       447, 437, 437, 442, 437, 434, 447, 458, 434, 467);

	/* Empty text: just BOS, or nothing. */
	int32_t *ids = (int32_t *)1;
	int64_t n = -1;
	rvi_err err = {0};
	CHECK(rvi_tokenize(t, "", 0, true, false, &ids, &n, &err) == RV_OK && n == 1 && ids[0] == 1,
	      "empty with BOS");
	free(ids);
	CHECK(rvi_tokenize(t, NULL, 0, false, false, &ids, &n, &err) == RV_OK && n == 0 &&
	          ids == NULL,
	      "empty without BOS");
}

/* refs/<name>.json (llama.cpp): prompt -> prompt_tokens; the greedy tokens decode
 * to "text"; every piece in prompt_pieces/top5 is the token's text. */
static void test_llamacpp_ref(const char *file)
{
	char name[256];
	snprintf(name, sizeof(name), "refs/%s", file);
	tu_json *j = tu_json_load(tu_data(name));
	CHECK(j != NULL, "load %s", name);
	if (!j)
		return;
	const tu_json *model = tu_json_get(j, "model");
	rvi_gguf *g = NULL;
	rvi_tokenizer *t = model && model->kind == TU_JSTR ? load_model_tok(model->str, &g) : NULL;
	if (!t) {
		rvi_gguf_close(g);
		tu_json_free(j);
		return;
	}
	const tu_json *prompt = tu_json_get(j, "prompt");
	const tu_json *bos = tu_json_get(j, "add_bos");
	int64_t n_want = 0;
	int32_t *want = json_ids(tu_json_get(j, "prompt_tokens"), &n_want);
	if (prompt && want)
		expect_ids(t, prompt->str, strlen(prompt->str), bos && bos->b, false, want, n_want,
		           name);
	const tu_json *pp = tu_json_get(j, "prompt_pieces");
	for (size_t i = 0; pp && i < pp->n && (int64_t)i < n_want; i++) {
		char buf[256];
		int64_t k;
		int ty = rvi_token_type_of(t, want[i]);
		if (ty == RVI_TOKEN_CONTROL || ty == RVI_TOKEN_UNKNOWN) {
			size_t l = 0;
			const char *s = rvi_token_text(t, want[i], &l);
			k = (int64_t)l;
			memcpy(buf, s, l);
		} else {
			k = rvi_token_piece(t, want[i], buf, sizeof(buf) - 1);
		}
		buf[k < 0 ? 0 : k] = 0;
		char *r = sanitize(buf, k < 0 ? 0 : (size_t)k, true);
		CHECK(strcmp(r, pp->items[i].str) == 0, "%s prompt piece %zu: '%s' vs '%s'", name,
		      i, r, pp->items[i].str);
		free(r);
	}
	free(want);

	int64_t n = 0;
	int32_t *ids = json_ids(tu_json_get(j, "greedy.tokens"), &n);
	const tu_json *text = tu_json_get(j, "greedy.text");
	if (ids && text) {
		size_t len = 0;
		char *raw = raw_decode(t, ids, n, &len);
		char *shown = sanitize(raw, len, true);
		CHECK(strcmp(shown, text->str) == 0, "%s text:\n  got  '%s'\n  want '%s'", name,
		      shown, text->str);
		/* Streaming equals the batch replacement of invalid sequences. */
		size_t slen = 0;
		char *streamed = stream_decode(t, ids, n, &slen);
		char *repl = sanitize(raw, len, false);
		CHECK(strcmp(streamed, repl) == 0, "%s streaming decode", name);
		free(raw);
		free(shown);
		free(streamed);
		free(repl);
	}
	free(ids);

	const tu_json *top5 = tu_json_get(j, "greedy.top5");
	int bad = 0, seen = 0;
	for (size_t p = 0; top5 && p < top5->n; p++) {
		const tu_json *pos = &top5->items[p];
		for (size_t e = 0; e < pos->n; e++) {
			const tu_json *ent = &pos->items[e];
			int32_t id = (int32_t)ent->items[0].num;
			char buf[256];
			int64_t k;
			int ty = rvi_token_type_of(t, id);
			if (ty == RVI_TOKEN_CONTROL || ty == RVI_TOKEN_UNKNOWN) {
				size_t l = 0;
				const char *s = rvi_token_text(t, id, &l);
				memcpy(buf, s, l);
				k = (int64_t)l;
			} else {
				k = rvi_token_piece(t, id, buf, sizeof(buf));
			}
			char *r = sanitize(buf, k < 0 ? 0 : (size_t)k, true);
			if (strcmp(r, ent->items[2].str) != 0) {
				if (bad++ < 3)
					fprintf(stderr, "  %s top5 id %d: '%s' vs '%s'\n", name, id,
					        r, ent->items[2].str);
			}
			seen++;
			free(r);
		}
	}
	CHECK(bad == 0, "%s: %d of %d top5 pieces differ", name, bad, seen);

	rvi_tokenizer_free(t);
	rvi_gguf_close(g);
	tu_json_free(j);
}

/* ref-hf-*.json (training-code reference): prompt -> prompt_ids; the greedy
 * ids decode to "text" (invalid UTF-8 as U+FFFD) and "pieces" are the raw
 * token texts. */
static void check_hf_entry(const rvi_tokenizer *t, const tu_json *e, const char *name)
{
	const tu_json *prompt = tu_json_get(e, "prompt");
	int64_t n_want = 0;
	int32_t *want = json_ids(tu_json_get(e, "prompt_ids"), &n_want);
	if (prompt && want)
		expect_ids(t, prompt->str, strlen(prompt->str), true, false, want, n_want, name);
	free(want);

	const tu_json *gr = tu_json_get(e, "greedy");
	const tu_json *arr = tu_json_get(gr, "tokens");
	if (!arr)
		arr = tu_json_get(gr, "ids");
	int64_t n = 0;
	int32_t *ids = json_ids(arr, &n);
	const tu_json *text = tu_json_get(gr, "text");
	const tu_json *pieces = tu_json_get(gr, "pieces");
	CHECK(ids && text, "%s: greedy ids and text", name);
	if (ids && text) {
		size_t len = 0;
		char *s = stream_decode(t, ids, n, &len);
		CHECK(strcmp(s, text->str) == 0, "%s decoded:\n  got  '%s'\n  want '%s'", name, s,
		      text->str);
		free(s);
	}
	for (int64_t i = 0; ids && pieces && i < n && (size_t)i < pieces->n; i++) {
		size_t l = 0;
		const char *s = rvi_token_text(t, ids[i], &l);
		CHECK(s && strlen(pieces->items[i].str) == l &&
		          memcmp(s, pieces->items[i].str, l) == 0,
		      "%s piece %lld", name, (long long)i);
	}
	free(ids);
}

static void test_hf_ref(const rvi_tokenizer *t, const char *file)
{
	tu_json *j = tu_json_load(tu_data(file));
	CHECK(j != NULL, "load %s", file);
	if (!j)
		return;
	const tu_json *prompts = tu_json_get(j, "prompts");
	if (prompts) {
		for (size_t i = 0; i < prompts->n; i++)
			check_hf_entry(t, &prompts->items[i], file);
	} else {
		/* Top level: "prompt_ids" alongside "greedy". */
		check_hf_entry(t, j, file);
	}
	tu_json_free(j);
}

static void test_round_trips(const rvi_tokenizer *t)
{
	static const char *const texts[] = {
	    "Hello world",
	    "  two leading spaces, trailing too  ",
	    "tabs\tand\nnewlines\r\n",
	    "héllo wörld, naïve café",
	    "日本語のテキスト",
	    "emoji 😀🎉 and 𝄞",
	    "\x01\x7f control bytes",
	};
	for (size_t k = 0; k < sizeof(texts) / sizeof(texts[0]); k++) {
		int64_t n = 0;
		int32_t *ids = encode(t, texts[k], strlen(texts[k]), false, &n);
		size_t len = 0, slen = 0;
		char *raw = raw_decode(t, ids, n, &len);
		char *st = stream_decode(t, ids, n, &slen);
		/* Decoding keeps the "▁" prefix as a leading space. */
		CHECK(len == strlen(texts[k]) + 1 && raw[0] == ' ' &&
		          memcmp(raw + 1, texts[k], len - 1) == 0,
		      "raw round trip '%s' -> '%s'", texts[k], raw);
		CHECK(strcmp(st, raw) == 0, "stream round trip '%s' -> '%s'", texts[k], st);
		free(raw);
		free(st);
		free(ids);
	}

	/* Emoji through byte fallback: ▁ then the four bytes of U+1F600. */
	EXPECT(t, "😀", false, false, 410, 3 + 0xF0, 3 + 0x9F, 3 + 0x98, 3 + 0x80);

	/* Invalid UTF-8: every bad byte on its own, round trip byte-exact. */
	const char bad[] = "ab\xff\xc3(cd\xe2\x82";
	int64_t n = 0;
	int32_t *ids = encode(t, bad, sizeof(bad) - 1, false, &n);
	size_t len = 0;
	char *raw = raw_decode(t, ids, n, &len);
	CHECK(len == sizeof(bad) && raw[0] == ' ' && memcmp(raw + 1, bad, sizeof(bad) - 1) == 0,
	      "invalid UTF-8 raw round trip");
	bool has_ff = false, has_c3 = false;
	for (int64_t i = 0; i < n; i++) {
		has_ff |= ids[i] == 3 + 0xFF;
		has_c3 |= ids[i] == 3 + 0xC3;
	}
	CHECK(has_ff && has_c3, "invalid bytes become byte tokens");
	/* '(' after a lone C3 is still tokenized as text, not swallowed. */
	int64_t n_paren = 0;
	for (int64_t i = 0; i < n; i++)
		n_paren += ids[i] == 3 + '(';
	char *st = stream_decode(t, ids, n, &len);
	CHECK(strcmp(st, " ab\xef\xbf\xbd\xef\xbf\xbd(cd\xef\xbf\xbd") == 0,
	      "invalid UTF-8 streams as U+FFFD: '%s'", st);
	free(st);
	free(raw);
	free(ids);
	(void)n_paren;
}

/* Random byte strings (ASCII, spaces, UTF-8 lead and continuation bytes,
 * "<s>" fragments): decoding the ids gives the input back byte for byte,
 * and the streamed text equals the batch U+FFFD replacement. (No 0x96 in
 * the alphabet: a literal "▁" in the input decodes as a space, in
 * SentencePiece and llama.cpp alike.) */
static void test_random_bytes(const rvi_tokenizer *t)
{
	static const char alphabet[] =
	    "ab e\n<s>\xc3\xa9\xe2\x82\xac\x81\xf0\x9f\x98\x80\xff\x80\xed\xa0";
	uint64_t st = 31337;
	int bad_raw = 0, bad_stream = 0;
	for (int r = 0; r < 500; r++) {
		char in[96];
		size_t n = (size_t)(tu_rand_u64(&st) % sizeof(in));
		for (size_t i = 0; i < n; i++)
			in[i] = alphabet[tu_rand_u64(&st) % (sizeof(alphabet) - 1)];
		int64_t ni = 0;
		int32_t *ids = encode(t, in, n, false, &ni);
		size_t len = 0, slen = 0;
		char *raw = raw_decode(t, ids, ni, &len);
		bool ok = n == 0 ? len == 0
		                 : (len == n + 1 && raw[0] == ' ' && memcmp(raw + 1, in, n) == 0);
		bad_raw += !ok;
		char *st_out = stream_decode(t, ids, ni, &slen);
		char *want = sanitize(raw, len, false);
		bad_stream += strcmp(st_out, want) != 0 || strlen(want) != slen;
		free(want);
		free(st_out);
		free(raw);
		free(ids);
	}
	CHECK(bad_raw == 0, "random bytes: %d raw round trips differ", bad_raw);
	CHECK(bad_stream == 0, "random bytes: %d streamed decodes differ", bad_stream);
}

static void test_streaming(const rvi_tokenizer *t)
{
	/* "é€😀" spelled entirely as byte tokens. */
	const unsigned char bytes[] = {0xC3, 0xA9, 0xE2, 0x82, 0xAC, 0xF0, 0x9F, 0x98, 0x80};
	const int expect_len[] = {0, 2, 0, 0, 3, 0, 0, 0, 4};
	rvi_detok d;
	rvi_detok_init(&d, t);
	char out[512];
	size_t total = 0;
	size_t cap = rvi_tokenizer_max_piece(t);
	CHECK(cap >= 12 && cap <= sizeof(out), "max_piece %zu", cap);
	for (size_t i = 0; i < sizeof(bytes); i++) {
		int64_t k = rvi_detok_push(&d, 3 + bytes[i], out + total, cap);
		CHECK(k == expect_len[i], "push byte %zu wrote %lld", i, (long long)k);
		if (k > 0)
			total += (size_t)k;
	}
	CHECK(total == 9 && memcmp(out, "é€😀", 9) == 0, "split characters reassembled");
	CHECK(rvi_detok_flush(&d, out, sizeof(out)) == 0, "nothing pending");

	/* Control tokens print nothing; "▁" is a space. */
	CHECK(rvi_detok_push(&d, 1, out, cap) == 0 && rvi_detok_push(&d, 2, out, cap) == 0,
	      "control tokens are silent");
	CHECK(rvi_detok_push(&d, 410, out, cap) == 1 && out[0] == ' ', "U+2581 -> space");
	CHECK(rvi_detok_push(&d, 512, out, cap) == -1 && rvi_detok_push(&d, -3, out, cap) == -1,
	      "out of range");

	/* A truncated sequence followed by ASCII: U+FFFD then the ASCII. */
	rvi_detok_init(&d, t);
	CHECK(rvi_detok_push(&d, 3 + 0xE2, out, cap) == 0, "pending");
	CHECK(rvi_detok_push(&d, 3 + 0x82, out, cap) == 0, "pending 2");
	int64_t k = rvi_detok_push(&d, 3 + 'A', out, cap);
	CHECK(k == 4 && memcmp(out,
	                       "\xef\xbf\xbd"
	                       "A",
	                       4) == 0,
	      "E2 82 'A' -> FFFD A");
	/* A buffer too small is refused without losing state. */
	CHECK(rvi_detok_push(&d, 3 + 0xC3, out, cap) == 0, "pending C3");
	CHECK(rvi_detok_push(&d, 3 + 'x', out, 2) == -1, "cap too small refused");
	k = rvi_detok_push(&d, 3 + 'x', out, cap);
	CHECK(k == 4 && memcmp(out, "\xef\xbf\xbdx", 4) == 0, "state kept after refusal");
	CHECK(rvi_detok_push(&d, 3 + 0xF0, out, cap) == 0, "pending F0");
	CHECK(rvi_detok_flush(&d, out, 2) == -1, "flush cap too small");
	CHECK(rvi_detok_flush(&d, out, cap) == 3 && memcmp(out, "\xef\xbf\xbd", 3) == 0,
	      "flush pending -> FFFD");
	CHECK(rvi_detok_flush(&d, out, cap) == 0, "flush resets");
	/* Lone continuation bytes and bytes never valid in UTF-8. */
	CHECK(rvi_detok_push(&d, 3 + 0x80, out, cap) == 3 &&
	          rvi_detok_push(&d, 3 + 0xFF, out, cap) == 3 &&
	          rvi_detok_push(&d, 3 + 0xC0, out, cap) == 3,
	      "invalid bytes -> FFFD each");
	/* Surrogates (ED A0..) are invalid: ED then A0 -> two replacements. */
	CHECK(rvi_detok_push(&d, 3 + 0xED, out, cap) == 0, "ED pending");
	k = rvi_detok_push(&d, 3 + 0xA0, out, cap);
	CHECK(k == 6, "ED A0 -> FFFD FFFD (%lld)", (long long)k);
}

static void test_special(const rvi_tokenizer *t)
{
	/* parse_special: "<s>"/"</s>" become BOS/EOS and each plain segment
	 * gets its own "▁" prefix, as llama.cpp does. */
	int64_t na = 0, nb = 0, nc = 0;
	int32_t *a = encode(t, "Hello", 5, false, &na);
	int32_t *b = encode(t, "world", 5, false, &nb);
	int32_t *c = encode(t, "<s>Hello</s>world", 17, true, &nc);
	int32_t want[64];
	int64_t nw = 0;
	want[nw++] = 1;
	for (int64_t i = 0; i < na; i++)
		want[nw++] = a[i];
	want[nw++] = 2;
	for (int64_t i = 0; i < nb; i++)
		want[nw++] = b[i];
	CHECK(ids_equal(c, nc, want, nw), "parse_special on");
	if (!ids_equal(c, nc, want, nw)) {
		print_ids("got", c, nc);
		print_ids("want", want, nw);
	}
	free(c);
	/* Off: the same text is plain text, no control ids. */
	c = encode(t, "<s>Hello</s>world", 17, false, &nc);
	bool any_special = false;
	for (int64_t i = 0; i < nc; i++)
		any_special |= c[i] == 1 || c[i] == 2;
	CHECK(!any_special && nc > nw, "parse_special off keeps <s> as text");
	size_t len = 0;
	char *raw = raw_decode(t, c, nc, &len);
	CHECK(strcmp(raw, " <s>Hello</s>world") == 0, "parse_special off round trip '%s'", raw);
	free(raw);
	free(c);
	free(a);
	free(b);

	EXPECT(t, "<s>", true, true, 1, 1);
	EXPECT(t, "<unk>", false, true, 0);
	EXPECT(t, "</s></s>", false, true, 2, 2);
}

static void test_big(const rvi_tokenizer *t)
{
	enum { BIG = 200 * 1024 };
	char *text = malloc(BIG + 1);
	uint64_t st = 5;
	static const char *const words[] = {"the ", "little ", "dog ", "Lily ", "was ", "happy. ",
	                                    "\n",   "é",       "😀",    "zzz",   "  "};
	size_t o = 0;
	while (o < BIG - 8) {
		const char *w = words[tu_rand_u64(&st) % (sizeof(words) / sizeof(words[0]))];
		size_t l = strlen(w);
		memcpy(text + o, w, l);
		o += l;
	}
	text[o] = 0;
	clock_t t0 = clock();
	int64_t n = 0;
	int32_t *ids = encode(t, text, o, false, &n);
	double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
	printf("tokenized %zu bytes into %lld tokens in %.3f s\n", o, (long long)n, secs);
	CHECK(ids && n > 0, "200 KB text: %lld tokens", (long long)n);
	size_t len = 0;
	char *raw = ids ? raw_decode(t, ids, n, &len) : NULL;
	CHECK(raw && len == o + 1 && memcmp(raw + 1, text, o) == 0, "200 KB round trip");
	free(raw);
	free(ids);

	/* One long run of a single character, and one of spaces: long merge chains. */
	memset(text, 'a', BIG);
	t0 = clock();
	ids = encode(t, text, BIG, false, &n);
	secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
	printf("200 KB of 'a' in %.3f s\n", secs);
	CHECK(ids && n > 0, "200 KB of 'a'");
	raw = ids ? raw_decode(t, ids, n, &len) : NULL;
	CHECK(raw && len == BIG + 1 && memcmp(raw + 1, text, BIG) == 0, "run round trip");
	free(raw);
	free(ids);
	memset(text, ' ', BIG);
	ids = encode(t, text, BIG, false, &n);
	raw = ids ? raw_decode(t, ids, n, &len) : NULL;
	CHECK(raw && len == BIG + 1 && memcmp(raw + 1, text, BIG) == 0, "spaces round trip");
	free(raw);
	free(ids);
	free(text);
}

/* ---- vocabularies built in memory -------------------------------------------------- */

static void put_u32(tu_buf *b, uint32_t v)
{
	tu_put_le(b, v, 4);
}

static void put_u64(tu_buf *b, uint64_t v)
{
	tu_put_le(b, v, 8);
}

static void put_str(tu_buf *b, const char *s)
{
	put_u64(b, strlen(s));
	tu_put(b, s, strlen(s));
}

static void kv_head(tu_buf *b, const char *key, uint32_t type)
{
	put_str(b, key);
	put_u32(b, type);
}

enum { G_U32 = 4, G_I32 = 5, G_F32 = 6, G_BOOL = 7, G_STR = 8, G_ARR = 9 };

/* Options for the test vocabulary (zero = the normal, valid case). */
typedef struct vopt {
	const char *model; /* default "llama" */
	int bad_byte;      /* 1: byte token "<0xZZ>", 2: "<0x4>" */
	int scores_short;  /* scores array one entry short */
	int types_short;
	int scores_int; /* scores stored as an int32 array */
	int no_scores, no_types, no_bytes;
	int64_t bos;              /* 0 -> 1; otherwise this value (-2: key absent) */
	int64_t unk;              /* 0 -> 0 (id 0); -2: key absent */
	const char *name;         /* general.name, or NULL */
	const char *const *extra; /* more tokens after the pieces */
	const int *extra_type;    /* their types */
	int n_extra;
} vopt;

/* ids: 0 <unk>, 1 <s>, 2 </s>, 3..258 <0xHH> (unless no_bytes), then pieces. */
static const char *const PIECES[] = {
    "\xe2\x96\x81", "a",  "b",      "c",       "aa",
    "ab",           "bc", "<tool>", "<tool>>", "\xe2\x96\x81\xe2\x96\x81",
};
static const float PIECE_SCORE[] = {-1, -2, -3, -4, -5, -6, -5.5f, 0, 0, -7};
static const int PIECE_TYPE[] = {1, 1, 1, 1, 1, 1, 1, 4, 4, 1};
enum { N_PIECES = sizeof(PIECES) / sizeof(PIECES[0]) };

static unsigned char *build_vocab(const vopt *o, size_t *size, int *n_tokens)
{
	int nb = o->no_bytes ? 0 : 256;
	int n = 3 + nb + N_PIECES + o->n_extra;
	*n_tokens = n;
	char **tok = calloc((size_t)n, sizeof(*tok));
	float *score = calloc((size_t)n, sizeof(*score));
	int32_t *type = calloc((size_t)n, sizeof(*type));
	tok[0] = strdup("<unk>");
	type[0] = 2;
	tok[1] = strdup("<s>");
	type[1] = 3;
	tok[2] = strdup("</s>");
	type[2] = 3;
	for (int i = 0; i < nb; i++) {
		tok[3 + i] = malloc(16);
		snprintf(tok[3 + i], 16, "<0x%02X>", (unsigned)i & 0xFFu);
		type[3 + i] = 6;
	}
	if (o->bad_byte == 1)
		strcpy(tok[3 + 0x41], "<0xZZ>");
	if (o->bad_byte == 2)
		strcpy(tok[3 + 0x41], "<0x4>");
	for (int i = 0; i < N_PIECES; i++) {
		tok[3 + nb + i] = strdup(PIECES[i]);
		score[3 + nb + i] = PIECE_SCORE[i];
		type[3 + nb + i] = PIECE_TYPE[i];
	}
	for (int i = 0; i < o->n_extra; i++) {
		tok[3 + nb + N_PIECES + i] = strdup(o->extra[i]);
		type[3 + nb + N_PIECES + i] = o->extra_type[i];
	}

	tu_buf b = {0};
	int n_kv = 0;
	tu_buf kv = {0};
	if (o->name) {
		kv_head(&kv, "general.name", G_STR);
		put_str(&kv, o->name);
		n_kv++;
	}
	kv_head(&kv, "tokenizer.ggml.model", G_STR);
	put_str(&kv, o->model ? o->model : "llama");
	n_kv++;
	kv_head(&kv, "tokenizer.ggml.tokens", G_ARR);
	put_u32(&kv, G_STR);
	put_u64(&kv, (uint64_t)n);
	for (int i = 0; i < n; i++)
		put_str(&kv, tok[i]);
	n_kv++;
	if (!o->no_scores) {
		int ns = n - (o->scores_short ? 1 : 0);
		kv_head(&kv, "tokenizer.ggml.scores", G_ARR);
		put_u32(&kv, o->scores_int ? G_I32 : G_F32);
		put_u64(&kv, (uint64_t)ns);
		for (int i = 0; i < ns; i++) {
			uint32_t v;
			memcpy(&v, &score[i], 4);
			put_u32(&kv, o->scores_int ? (uint32_t)(int32_t)score[i] : v);
		}
		n_kv++;
	}
	if (!o->no_types) {
		int nt = n - (o->types_short ? 1 : 0);
		kv_head(&kv, "tokenizer.ggml.token_type", G_ARR);
		put_u32(&kv, G_I32);
		put_u64(&kv, (uint64_t)nt);
		for (int i = 0; i < nt; i++)
			put_u32(&kv, (uint32_t)type[i]);
		n_kv++;
	}
	if (o->bos != -2) {
		kv_head(&kv, "tokenizer.ggml.bos_token_id", G_U32);
		put_u32(&kv, (uint32_t)(o->bos ? o->bos : 1));
		n_kv++;
	}
	kv_head(&kv, "tokenizer.ggml.eos_token_id", G_U32);
	put_u32(&kv, 2);
	n_kv++;
	if (o->unk != -2) {
		kv_head(&kv, "tokenizer.ggml.unknown_token_id", G_U32);
		put_u32(&kv, (uint32_t)o->unk);
		n_kv++;
	}
	kv_head(&kv, "tokenizer.ggml.seperator_token_id", G_U32);
	put_u32(&kv, 4294967295u);
	n_kv++;

	tu_put(&b, "GGUF", 4);
	put_u32(&b, 3);
	put_u64(&b, 0); /* tensors */
	put_u64(&b, (uint64_t)n_kv);
	tu_put(&b, kv.p, kv.n);
	free(kv.p);
	for (int i = 0; i < n; i++)
		free(tok[i]);
	free(tok);
	free(score);
	free(type);
	*size = b.n;
	return b.p;
}

/* Loads a built vocabulary; returns the status, err filled. */
static int load_built(const vopt *o, int64_t expect, rvi_tokenizer **t, rvi_gguf **g,
                      unsigned char **mem, rvi_err *err)
{
	size_t size = 0;
	int n = 0;
	*t = NULL;
	*g = NULL;
	*mem = build_vocab(o, &size, &n);
	int rc = rvi_gguf_open_memory(g, *mem, size, "test-vocab", err);
	CHECK(rc == RV_OK, "open built vocab: %s", err->msg);
	if (rc != RV_OK)
		return rc;
	return rvi_tokenizer_load(t, *g, expect, err);
}

static void unload(rvi_tokenizer *t, rvi_gguf *g, unsigned char *mem)
{
	rvi_tokenizer_free(t);
	rvi_gguf_close(g);
	free(mem);
}

static void expect_load_error(const vopt *o, int64_t expect, int status, const char *needle,
                              const char *what)
{
	rvi_tokenizer *t;
	rvi_gguf *g;
	unsigned char *mem;
	rvi_err err = {0};
	int rc = load_built(o, expect, &t, &g, &mem, &err);
	CHECK(rc == status && t == NULL, "%s: rc %d (want %d): %s", what, rc, status, err.msg);
	CHECK(strstr(err.msg, needle) != NULL, "%s: message '%s' lacks '%s'", what, err.msg,
	      needle);
	unload(t, g, mem);
}

#define P(i) (259 + (i)) /* id of PIECES[i] when byte tokens are present */

static void test_built_vocab(void)
{
	vopt o = {0};
	rvi_tokenizer *t;
	rvi_gguf *g;
	unsigned char *mem;
	rvi_err err = {0};
	int rc = load_built(&o, 0, &t, &g, &mem, &err);
	CHECK(rc == RV_OK, "built vocab: %s", err.msg);
	if (rc == RV_OK) {
		/* Equal scores: the leftmost pair merges first. */
		EXPECT(t, "aaa", false, false, P(0), P(4), P(1));
		/* Higher score first: "bc" (-5.5) before "ab" (-6). */
		EXPECT(t, "abc", false, false, P(0), P(1), P(6));
		EXPECT(t, "ab", false, false, P(0), P(5));
		EXPECT(t, " a", false, false, P(9), P(1));
		EXPECT(t, "x", false, false, P(0), 3 + 'x');
		/* User-defined tokens are cut out even without parse_special,
		 * the longest first; the text after them gets its own "▁". */
		EXPECT(t, "a<tool>b", false, false, P(0), P(1), P(7), P(0), P(2));
		EXPECT(t, "a<tool>>b", false, false, P(0), P(1), P(8), P(0), P(2));
		EXPECT(t, "<s>a", false, true, 1, P(0), P(1));
		EXPECT(t, "<s>a", false, false, P(0), 3 + '<', 3 + 's', 3 + '>', P(1));
		EXPECT(t, "a<unk>", true, true, 1, P(0), P(1), 0);
		/* Detokenizing a user-defined token gives its text. */
		char out[256];
		rvi_detok d;
		rvi_detok_init(&d, t);
		CHECK(rvi_detok_push(&d, P(7), out, sizeof(out)) == 6 &&
		          memcmp(out, "<tool>", 6) == 0,
		      "user-defined piece");
	}
	unload(t, g, mem);

	/* Size check against the model's embedding rows. */
	int n_tok = 3 + 256 + N_PIECES;
	expect_load_error(&o, n_tok + 1, RV_ERR_MODEL, "tokenizer.ggml.tokens", "size mismatch");
	rc = load_built(&o, n_tok, &t, &g, &mem, &err);
	CHECK(rc == RV_OK, "expected size accepted: %s", err.msg);
	unload(t, g, mem);

	vopt e = {0};
	e.bad_byte = 1;
	expect_load_error(&e, 0, RV_ERR_MODEL, "tokenizer.ggml.tokens", "byte token <0xZZ>");
	e.bad_byte = 2;
	expect_load_error(&e, 0, RV_ERR_MODEL, "tokenizer.ggml.tokens", "byte token <0x4>");
	e = (vopt){0};
	e.scores_short = 1;
	expect_load_error(&e, 0, RV_ERR_MODEL, "tokenizer.ggml.scores", "scores short");
	e = (vopt){0};
	e.types_short = 1;
	expect_load_error(&e, 0, RV_ERR_MODEL, "tokenizer.ggml.token_type", "types short");
	e = (vopt){0};
	e.scores_int = 1;
	expect_load_error(&e, 0, RV_ERR_MODEL, "tokenizer.ggml.scores", "scores of type int32");
	e = (vopt){0};
	e.bos = n_tok;
	expect_load_error(&e, 0, RV_ERR_MODEL, "tokenizer.ggml.bos_token_id", "bos out of range");
	e = (vopt){0};
	e.model = "gpt2";
	expect_load_error(&e, 0, RV_ERR_MODEL, "missing key tokenizer.ggml.merges",
	                  "gpt2 no merges");
	e = (vopt){0};
	e.model = "bert";
	expect_load_error(&e, 0, RV_ERR_UNSUPPORTED, "tokenizer.ggml.model = \"bert\" is not",
	                  "bert");

	/* No BOS (UINT32_MAX = none): add_bos is off and asking for it fails. */
	e = (vopt){0};
	e.bos = 4294967295;
	rc = load_built(&e, 0, &t, &g, &mem, &err);
	CHECK(rc == RV_OK && rvi_tokenizer_bos(t) == -1 && !rvi_tokenizer_add_bos(t),
	      "bos none: %s", err.msg);
	if (t) {
		int32_t *ids = NULL;
		int64_t n = 0;
		CHECK(rvi_tokenize(t, "a", 1, true, false, &ids, &n, &err) == RV_ERR_INVALID_ARG,
		      "BOS requested without one");
		free(ids);
	}
	unload(t, g, mem);

	/* Missing scores and types: all 0 / normal; "<s>" is then plain text. */
	e = (vopt){0};
	e.no_scores = e.no_types = 1;
	rc = load_built(&e, 0, &t, &g, &mem, &err);
	CHECK(rc == RV_OK, "no scores/types: %s", err.msg);
	if (t) {
		CHECK(rvi_token_type_of(t, 1) == RVI_TOKEN_NORMAL, "default type normal");
		EXPECT(t, "<s>", false, true, P(0), 3 + '<', 3 + 's', 3 + '>');
	}
	unload(t, g, mem);

	/* No byte tokens: unknown characters become <unk>, per byte. */
	e = (vopt){0};
	e.no_bytes = 1;
	rc = load_built(&e, 0, &t, &g, &mem, &err);
	CHECK(rc == RV_OK, "no byte tokens: %s", err.msg);
	if (t)
		EXPECT(t, "a\xc3\xa9", false, false, 3, 4, 0, 0); /* ▁=3 a=4 in this layout */
	unload(t, g, mem);
	e.unk = -2;
	rc = load_built(&e, 0, &t, &g, &mem, &err);
	CHECK(rc == RV_OK, "no byte tokens, no unk: %s", err.msg);
	if (t) {
		int32_t *ids = NULL;
		int64_t n = 0;
		rc = rvi_tokenize(t, "\xc3\xa9", 2, false, false, &ids, &n, &err);
		CHECK(rc == RV_ERR_MODEL && ids == NULL, "unencodable byte: rc %d", rc);
		free(ids);
	}
	unload(t, g, mem);
}

/* The literal order of llama.cpp and Hugging Face, one pass per special
 * token from the longest: the reference for special.c's single scan. */
static void literal_partition(const rvi_tokenizer *t, const char *text, size_t len, bool parse,
                              const rvi_span *plain, int n_plain, rvi_frag_list *out)
{
	rvi_frag_list a = {0}, b = {0};
	rvi_frag_add(&a, 0, len, -1);
	for (int32_t k = 0; k < t->n_special; k++) {
		int32_t id = t->special[k];
		bool gated = t->type[id] != RVI_TOKEN_USER_DEFINED;
		if (!parse && gated)
			continue;
		b.n = 0;
		for (size_t i = 0; i < a.n; i++) {
			rvi_frag f = a.v[i];
			if (f.id >= 0) {
				rvi_frag_add(&b, f.off, f.len, f.id);
				continue;
			}
			size_t pos = f.off, end = f.off + f.len, from = pos;
			while (from < end) {
				const char *m =
				    memmem(text + from, end - from, t->text[id], t->len[id]);
				if (!m)
					break;
				size_t at = (size_t)(m - text);
				bool in_plain = false;
				for (int p = 0; p < n_plain; p++)
					in_plain |= at < plain[p].off + plain[p].len &&
					            plain[p].off < at + t->len[id];
				if (gated && in_plain) {
					from = at + 1;
					continue;
				}
				if (at > pos)
					rvi_frag_add(&b, pos, at - pos, -1);
				rvi_frag_add(&b, at, t->len[id], id);
				pos = from = at + t->len[id];
			}
			if (pos < end)
				rvi_frag_add(&b, pos, end - pos, -1);
		}
		rvi_frag_list tmp = a;
		a = b;
		b = tmp;
	}
	free(b.v);
	*out = a;
}

/* Random texts over the letters of overlapping special tokens ("ab" and
 * "bcd" in "abcd": the longer one wins although it starts later). */
static void test_special_order(void)
{
	static const char *const extra[] = {"ab", "bcd", "<a>", "<a><b>", "b", "cc", "<", "dab"};
	static const int types[] = {3, 3, 4, 3, 4, 3, 4, 3};
	vopt o = {.extra = extra, .extra_type = types, .n_extra = 8};
	rvi_tokenizer *t;
	rvi_gguf *g;
	unsigned char *mem;
	rvi_err err = {0};
	if (load_built(&o, 0, &t, &g, &mem, &err) != RV_OK) {
		CHECK(0, "special-order vocab: %s", err.msg);
		return;
	}
	static const char alphabet[] = "abcd<>";
	uint64_t s = 7;
	int bad = 0;
	for (int it = 0; it < 3000 && bad < 3; it++) {
		char text[40];
		size_t len = 1 + tu_rand_u64(&s) % 38;
		for (size_t i = 0; i < len; i++)
			text[i] = alphabet[tu_rand_u64(&s) % 6];
		text[len] = 0;
		bool parse = it % 3 != 0;
		rvi_span plain = {tu_rand_u64(&s) % len, tu_rand_u64(&s) % 6};
		int n_plain = it % 4 == 1;
		rvi_frag_list want = {0}, got = {0};
		literal_partition(t, text, len, parse, &plain, n_plain, &want);
		int rc = rvi_special_partition(t, text, len, parse, &plain, n_plain, &got, &err);
		bool same = rc == RV_OK && got.n == want.n;
		for (size_t i = 0; same && i < got.n; i++)
			same = got.v[i].off == want.v[i].off && got.v[i].len == want.v[i].len &&
			       got.v[i].id == want.v[i].id;
		if (!same)
			bad++;
		CHECK(same, "special cut of \"%s\" (parse %d, plain %d): %zu fragments, want %zu",
		      text, parse, n_plain, got.n, want.n);
		free(want.v);
		free(got.v);
	}
	unload(t, g, mem);
}

/* Phi-3's special tokens take the whitespace after them (llama.cpp's rule
 * by model name, HF's rstrip), except <s>, <unk> and <|endoftext|>. */
static void test_special_strip(void)
{
	static const char *const extra[] = {"<|end|>", "<|endoftext|>"};
	static const int types[] = {3, 3};
	for (int phi = 0; phi < 2; phi++) {
		vopt o = {.extra = extra,
		          .extra_type = types,
		          .n_extra = 2,
		          .name = phi ? "Phi3-Mini-4K" : "Mini"};
		rvi_tokenizer *t;
		rvi_gguf *g;
		unsigned char *mem;
		rvi_err err = {0};
		if (load_built(&o, 0, &t, &g, &mem, &err) != RV_OK) {
			CHECK(0, "strip vocab: %s", err.msg);
			return;
		}
		const char *text = "a<|end|> \n b<|endoftext|> c";
		rvi_frag_list f = {0};
		int rc = rvi_special_partition(t, text, strlen(text), true, NULL, 0, &f, &err);
		CHECK(rc == RV_OK && f.n == 5, "strip: %zu fragments", f.n);
		if (rc == RV_OK && f.n == 5) {
			/* "a" [end] " \n b" or "b" [endoftext] " c" */
			CHECK(f.v[2].off == (phi ? 11u : 8u) && f.v[4].len == 2,
			      "strip (phi %d): fragment at %zu, last %zu bytes", phi, f.v[2].off,
			      f.v[4].len);
		}
		free(f.v);
		unload(t, g, mem);
	}
}

int main(void)
{
	rvi_gguf *g = NULL;
	rvi_tokenizer *t = load_model_tok("stories260K.gguf", &g);
	if (t) {
		rvi_err err = {0};
		rvi_tokenizer *t2 = NULL;
		CHECK(rvi_tokenizer_load(&t2, g, 513, &err) == RV_ERR_MODEL && t2 == NULL &&
		          strstr(err.msg, "tokenizer.ggml.tokens"),
		      "n_vocab mismatch: %s", err.msg);
		test_reference_ids(t);
		test_round_trips(t);
		test_random_bytes(t);
		test_streaming(t);
		test_special(t);
		test_big(t);
		static const char *const hf[] = {
		    "ref-hf-stories260K.Lily.json",
		    "ref-hf-stories260K.Once_upon_a_time.json",
		    "ref-hf-stories260K.The_little_dog.json",
		    "ref-hf-text-f32.once_upon_a_time.json",
		    "ref-hf-text-q8_0.once_upon_a_time.json",
		    "ref-hf-kq-text-q4_k_m.json",
		    "ref-hf-kq-text-q6_k.json",
		};
		for (size_t i = 0; i < sizeof(hf) / sizeof(hf[0]); i++)
			test_hf_ref(t, hf[i]);
	}
	rvi_tokenizer_free(t);
	rvi_gguf_close(g);

	static const char *const refs[] = {
	    "stories260K.Lily.json",           "stories260K.Once_upon_a_time.json",
	    "stories260K.The_little_dog.json", "text-f32.once_upon_a_time.json",
	    "text-q8_0.once_upon_a_time.json",
	};
	for (size_t i = 0; i < sizeof(refs) / sizeof(refs[0]); i++)
		test_llamacpp_ref(refs[i]);

	test_built_vocab();
	test_special_order();
	test_special_strip();
	return tu_finish("test_tokenizer");
}
