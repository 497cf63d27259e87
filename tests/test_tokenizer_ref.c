/* test_tokenizer_ref.c: every tokenizer reference set gives the reference
 * ids, and decoding them gives the text back.
 *
 * Sets: the mini vocabularies of the model fixtures (tests/data/tokenizers,
 * always run) and, when the shared fixtures are beside the tree
 * ($RLAIFV_SHARED_FIXTURES, else ../shared/fixtures or /work/shared/fixtures),
 * llama.cpp's own test suites (llamacpp/ggml-vocab-NAME.json, ids from Hugging Face
 * tokenizers with special tokens not parsed) and the full vocabularies with
 * Hugging Face reference encodings (full/ref-*.json, both modes). A set whose
 * files are absent is skipped with a message.
 *
 * Round trip exceptions, by what the vocabulary can represent: a
 * SentencePiece dummy prefix adds one leading space; a vocabulary that
 * normalizes (qwen2: NFC) gives back the normalized text; SentencePiece
 * texts holding a literal "▁" decode it as a space. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "src/gguf.h"
#include "src/tokenizer/tokenizer.h"
#include "src/tokenizer/unicode.h"
#include "tests/testutil.h"

static const char *fixtures_dir(void)
{
	static char path[4096];
	const char *env = getenv("RLAIFV_SHARED_FIXTURES");
	const char *srcdir = getenv("srcdir");
	const char *cands[3] = {env, NULL, "/work/shared/fixtures"};
	char rel[4096];
	snprintf(rel, sizeof(rel), "%s/../shared/fixtures", srcdir ? srcdir : ".");
	cands[1] = rel;
	for (int i = 0; i < 3; i++) {
		if (!cands[i] || !*cands[i])
			continue;
		snprintf(path, sizeof(path), "%s/tokenizers/README.md", cands[i]);
		FILE *f = fopen(path, "rb");
		if (f) {
			fclose(f);
			snprintf(path, sizeof(path), "%s", cands[i]);
			return path;
		}
	}
	return NULL;
}

static bool same_ids(const int32_t *a, int64_t na, const tu_json *want)
{
	if (!want || want->kind != TU_JARR || (size_t)na != want->n)
		return false;
	for (int64_t i = 0; i < na; i++)
		if ((double)a[i] != tu_json_at(want, (size_t)i)->num)
			return false;
	return true;
}

static char *decode(const rvi_tokenizer *t, const int32_t *ids, int64_t n, size_t *len)
{
	size_t cap = rvi_tokenizer_max_piece(t), total = 0;
	char *out = malloc(cap * (size_t)(n + 1) + 4);
	rvi_detok d;
	rvi_detok_init(&d, t);
	for (int64_t i = 0; i < n; i++) {
		int64_t k = rvi_detok_push(&d, ids[i], out + total, cap);
		if (k > 0)
			total += (size_t)k;
	}
	int64_t k = rvi_detok_flush(&d, out + total, cap);
	if (k > 0)
		total += (size_t)k;
	*len = total;
	return out;
}

static void print_ids(const char *what, const int32_t *ids, int64_t n)
{
	fprintf(stderr, "  %s:", what);
	for (int64_t i = 0; i < n && i < 40; i++)
		fprintf(stderr, " %d", ids[i]);
	fprintf(stderr, "\n");
}

/* Runs one set; returns the number of rows checked. */
static int run_set(const char *name, const char *gguf_path, const char *json_path, bool is_spm,
                   bool nfc)
{
	rvi_gguf *g = NULL;
	rvi_tokenizer *t = NULL;
	rvi_err err = {0};
	tu_json *j = tu_json_load(json_path);
	if (!j || rvi_gguf_open(&g, gguf_path, &err) != RV_OK) {
		printf("# SKIP %s: %s or %s missing\n", name, gguf_path, json_path);
		tu_json_free(j);
		return 0;
	}
	int rc = rvi_tokenizer_load(&t, g, 0, &err);
	CHECK(rc == RV_OK, "%s: load: %s", name, err.msg);
	if (rc != RV_OK) {
		rvi_gguf_close(g);
		tu_json_free(j);
		return 0;
	}
	const tu_json *rows = tu_json_get(j, "rows");
	int n_ok = 0, n_rows = 0;
	for (size_t r = 0; rows && r < rows->n; r++) {
		const tu_json *row = tu_json_at(rows, r);
		const tu_json *text = tu_json_get(row, "text");
		const char *s = text->str;
		size_t len = strlen(s);
		n_rows++;
		bool row_ok = true;
		for (int mode = 0; mode < 2; mode++) {
			const tu_json *want =
			    tu_json_get(row, mode ? "ids_with_special_parsing" : "ids");
			if (!want)
				continue;
			int32_t *ids = NULL;
			int64_t n = 0;
			rc = rvi_tokenize(t, s, len, false, mode == 1, &ids, &n, &err);
			bool ok = rc == RV_OK && same_ids(ids, n, want);
			CHECK(ok, "%s row %zu (%s) \"%.60s\": ids differ", name, r,
			      mode ? "special" : "plain", s);
			if (!ok) {
				print_ids("got ", ids, n);
				int32_t w[64];
				int64_t nw = 0;
				for (size_t i = 0; i < want->n && i < 64; i++)
					w[nw++] = (int32_t)tu_json_at(want, i)->num;
				print_ids("want", w, nw);
				row_ok = false;
			}
			if (mode == 0 && rc == RV_OK) {
				size_t dl;
				char *back = decode(t, ids, n, &dl);
				const char *exp = s;
				size_t el = len;
				char *norm = NULL;
				if (nfc && rvi_nfc((const unsigned char *)s, len, &norm, &el))
					exp = norm;
				const char *got = back;
				if (is_spm && rvi_tokenizer_add_bos(t) && dl > 0 &&
				    back[0] == ' ' && dl == el + 1)
					got++, dl--;
				bool skip = is_spm && strstr(s, "\xe2\x96\x81");
				CHECK(skip || (dl == el && memcmp(got, exp, el) == 0),
				      "%s row %zu: round trip of \"%.60s\" gives \"%.*s\"", name, r,
				      s, (int)(dl > 80 ? 80 : dl), got);
				free(norm);
				free(back);
			}
			free(ids);
		}
		n_ok += row_ok;
	}
	printf("%s: %d/%d rows identical\n", name, n_ok, n_rows);
	rvi_tokenizer_free(t);
	rvi_gguf_close(g);
	tu_json_free(j);
	return n_rows;
}

/* ---- vocabularies built in memory ------------------------------------------- */

enum { G_U32 = 4, G_F32 = 6, G_BOOL = 7, G_STR = 8, G_ARR = 9, G_I32 = 5 };

static void put_str(tu_buf *b, const char *s)
{
	tu_put_le(b, strlen(s), 8);
	tu_put(b, s, strlen(s));
}

static void kv_head(tu_buf *b, const char *key, uint32_t type)
{
	put_str(b, key);
	tu_put_le(b, type, 4);
}

static void kv_strs(tu_buf *b, const char *key, const char *const *v, size_t n)
{
	kv_head(b, key, G_ARR);
	tu_put_le(b, G_STR, 4);
	tu_put_le(b, n, 8);
	for (size_t i = 0; i < n; i++)
		put_str(b, v[i]);
}

/* A byte-level BPE vocabulary: the 256 byte characters (ids 0..255 in byte
 * order), then extra[] (type NORMAL, or CONTROL when it starts with "<|"),
 * the merges, pre (NULL: no key). Returns the GGUF bytes. */
static unsigned char *build_bpe(const char *const *extra, size_t n_extra, const char *const *merges,
                                size_t n_merges, const char *pre, size_t *size)
{
	size_t n = 256 + n_extra;
	char **tok = calloc(n, sizeof(*tok));
	for (unsigned b = 0; b < 256; b++) {
		tok[b] = calloc(1, 4);
		/* GPT-2's bytes_to_unicode, written out independently of bpe.c */
		unsigned cp = b;
		if (!((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE)) {
			unsigned k = 0;
			for (unsigned x = 0; x < b; x++)
				if (!((x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) ||
				      x >= 0xAE))
					k++;
			cp = 256 + k;
		}
		rvi_utf8_encode(cp, tok[b]);
	}
	for (size_t i = 0; i < n_extra; i++)
		tok[256 + i] = strdup(extra[i]);
	tu_buf kv = {0};
	int n_kv = 0;
	kv_head(&kv, "tokenizer.ggml.model", G_STR);
	put_str(&kv, "gpt2");
	n_kv++;
	if (pre) {
		kv_head(&kv, "tokenizer.ggml.pre", G_STR);
		put_str(&kv, pre);
		n_kv++;
	}
	kv_strs(&kv, "tokenizer.ggml.tokens", (const char *const *)tok, n);
	n_kv++;
	kv_head(&kv, "tokenizer.ggml.token_type", G_ARR);
	tu_put_le(&kv, G_I32, 4);
	tu_put_le(&kv, n, 8);
	for (size_t i = 0; i < n; i++)
		tu_put_le(&kv, strncmp(tok[i], "<|", 2) == 0 ? 3 : 1, 4);
	n_kv++;
	kv_strs(&kv, "tokenizer.ggml.merges", merges, n_merges);
	n_kv++;
	tu_buf b = {0};
	tu_put(&b, "GGUF", 4);
	tu_put_le(&b, 3, 4);
	tu_put_le(&b, 0, 8);
	tu_put_le(&b, (uint64_t)n_kv, 8);
	tu_put(&b, kv.p, kv.n);
	free(kv.p);
	for (size_t i = 0; i < n; i++)
		free(tok[i]);
	free(tok);
	*size = b.n;
	return b.p;
}

static int load_bpe(const char *const *extra, size_t n_extra, const char *const *merges,
                    size_t n_merges, const char *pre, rvi_tokenizer **t, rvi_err *err)
{
	size_t size;
	unsigned char *mem = build_bpe(extra, n_extra, merges, n_merges, pre, &size);
	rvi_gguf *g = NULL;
	*t = NULL;
	int rc = rvi_gguf_open_memory(&g, mem, size, "bpe-vocab", err);
	if (rc == RV_OK)
		rc = rvi_tokenizer_load(t, g, 0, err);
	rvi_gguf_close(g); /* the tokenizer keeps copies */
	free(mem);
	return rc;
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void expect_bpe_error(const char *const *extra, size_t n_extra, const char *const *merges,
                             size_t n_merges, const char *pre, int status, const char *needle,
                             const char *what)
{
	rvi_tokenizer *t;
	rvi_err err = {0};
	int rc = load_bpe(extra, n_extra, merges, n_merges, pre, &t, &err);
	CHECK(rc == status && t == NULL, "%s: status %d (want %d): %s", what, rc, status, err.msg);
	CHECK(strstr(err.msg, needle) != NULL, "%s: message '%s' lacks '%s'", what, err.msg,
	      needle);
	rvi_tokenizer_free(t);
}

static void expect_encode(const rvi_tokenizer *t, const char *text, bool special,
                          const int32_t *want, int64_t n_want)
{
	int32_t *ids = NULL;
	int64_t n = 0;
	rvi_err err = {0};
	int rc = rvi_tokenize(t, text, strlen(text), false, special, &ids, &n, &err);
	bool ok = rc == RV_OK && n == n_want && (n == 0 || memcmp(ids, want, 4 * (size_t)n) == 0);
	CHECK(ok, "\"%s\": rc %d, %lld ids (want %lld)", text, rc, (long long)n, (long long)n_want);
	if (!ok) {
		print_ids("got ", ids, n);
		print_ids("want", want, n_want);
	}
	free(ids);
}

static void test_built_bpe(void)
{
	/* 256 "ab" 257 "abc" 258 "aa" 259 "<|end|>" 260 "ĠHello" (space + Hello
	 * via merges) 261 "He" 262 "ll" 263 "Hell" 264 "Hello" 265 "ĠH" */
	static const char *const extra[] = {"ab", "abc", "aa",   "<|end|>", "\xc4\xa0Hello",
	                                    "He", "ll",  "Hell", "Hello",   "\xc4\xa0H"};
	static const char *const merges[] = {
	    "a b", "ab c", "a a", "H e", "l l", "He ll", "Hell o", "\xc4\xa0 H", "\xc4\xa0 Hello"};
	rvi_tokenizer *t;
	rvi_err err = {0};
	int rc = load_bpe(extra, N(extra), merges, N(merges), "gpt-2", &t, &err);
	CHECK(rc == RV_OK, "load built BPE: %s", err.msg);
	if (rc == RV_OK) {
		expect_encode(t, "abc", false, (const int32_t[]){257}, 1);
		/* rank order: "a b" (0) before "a a" (2); leftmost on equal ranks */
		expect_encode(t, "aab", false, (const int32_t[]){'a', 256}, 2);
		expect_encode(t, "aaa", false, (const int32_t[]){258, 'a'}, 2);
		/* " Hello": "Ġ H" (rank 7) loses to "H e" (3) and so on, then
		 * "Ġ Hello" (8) joins; the pre-tokenizer keeps the space with it */
		expect_encode(t, "a Hello", false, (const int32_t[]){'a', 260}, 2);
		expect_encode(t, "x<|end|>", false,
		              (const int32_t[]){'x', '<', '|', 'e', 'n', 'd', '|', '>'}, 8);
		expect_encode(t, "x<|end|>", true, (const int32_t[]){'x', 259}, 2);
		/* a byte without a UTF-8 meaning is still its own byte character */
		expect_encode(t, "\xff", false, (const int32_t[]){0xFF}, 1);
		CHECK(!rvi_tokenizer_add_bos(t), "BPE adds no BOS by default");
		rvi_tokenizer_free(t);
	}

	expect_bpe_error(extra, N(extra), (const char *const[]){"a b", "a zz"}, 2, "gpt-2",
	                 RV_ERR_MODEL, "tokenizer.ggml.merges[1] = \"a zz\"", "unknown right part");
	expect_bpe_error(extra, N(extra), (const char *const[]){"q b"}, 1, "gpt-2", RV_ERR_MODEL,
	                 "tokenizer.ggml.merges[0]", "unknown merge result");
	expect_bpe_error(extra, N(extra), (const char *const[]){"ab"}, 1, "gpt-2", RV_ERR_MODEL,
	                 "not two tokens", "merge without a space");
	expect_bpe_error(extra, N(extra), merges, N(merges), "klingon", RV_ERR_UNSUPPORTED,
	                 "tokenizer.ggml.pre = \"klingon\"", "unknown pre-tokenizer");
	expect_bpe_error((const char *const[]){"ab", "ab"}, 2, merges, 1, "gpt-2", RV_ERR_MODEL,
	                 "tokenizer.ggml.tokens[257] = \"ab\" repeats token 256", "duplicate");
	expect_bpe_error((const char *const[]){"ab", ""}, 2, merges, 1, "gpt-2", RV_ERR_MODEL,
	                 "tokenizer.ggml.tokens[257] is empty", "empty token");
	rc = load_bpe(extra, N(extra), merges, N(merges), NULL, &t, &err);
	CHECK(rc == RV_OK, "no pre key means llama.cpp's default: %s", err.msg);
	rvi_tokenizer_free(t);
}

/* A Gemma-sized SentencePiece vocabulary (262144 pieces, thousands of
 * control and user-defined ones) loads in well under a second: nothing at
 * load may be quadratic in the vocabulary. */
static void test_big_spm_load(void)
{
	enum { NV = 262144 };
	tu_buf kv = {0};
	kv_head(&kv, "tokenizer.ggml.model", G_STR);
	put_str(&kv, "llama");
	kv_head(&kv, "tokenizer.ggml.add_space_prefix", G_BOOL);
	tu_put_le(&kv, 0, 1);
	kv_head(&kv, "tokenizer.ggml.tokens", G_ARR);
	tu_put_le(&kv, G_STR, 4);
	tu_put_le(&kv, NV, 8);
	char buf[32];
	for (int i = 0; i < NV; i++) {
		if (i < 256)
			snprintf(buf, sizeof(buf), "<0x%02X>", i);
		else if (i < 6400)
			snprintf(buf, sizeof(buf), "<unused%d>", i - 256);
		else
			snprintf(buf, sizeof(buf), "\xe2\x96\x81p%x", (unsigned)i * 2654435761u);
		put_str(&kv, buf);
	}
	kv_head(&kv, "tokenizer.ggml.token_type", G_ARR);
	tu_put_le(&kv, G_I32, 4);
	tu_put_le(&kv, NV, 8);
	for (int i = 0; i < NV; i++)
		tu_put_le(&kv, i < 256 ? 6 : i < 6400 ? (i % 2 ? 3 : 4) : 1, 4);
	tu_buf b = {0};
	tu_put(&b, "GGUF", 4);
	tu_put_le(&b, 3, 4);
	tu_put_le(&b, 0, 8);
	tu_put_le(&b, 4, 8);
	tu_put(&b, kv.p, kv.n);
	free(kv.p);
	rvi_gguf *g = NULL;
	rvi_tokenizer *t = NULL;
	rvi_err err = {0};
	int rc = rvi_gguf_open_memory(&g, b.p, b.n, "big-spm", &err);
	/* CPU time, so that a loaded machine does not make the test flaky */
	clock_t c0 = clock();
	if (rc == RV_OK)
		rc = rvi_tokenizer_load(&t, g, 0, &err);
	double secs = (double)(clock() - c0) / CLOCKS_PER_SEC;
	printf("262144-piece SentencePiece vocabulary loaded in %.3f s of CPU time\n", secs);
	CHECK(rc == RV_OK, "big vocabulary: %s", err.msg);
	/* generous for sanitizer builds; a release build takes a few 10 ms */
	CHECK(secs < 2.0, "big vocabulary took %.3f s to load", secs);
	if (rc == RV_OK) {
		/* no dummy prefix: "x" is the byte token, " x" too (no "▁x" piece) */
		expect_encode(t, "<unused7>x", true, (const int32_t[]){256 + 7, 'x'}, 2);
		expect_encode(t, "<unused8>", false, (const int32_t[]){256 + 8}, 1);
	}
	rvi_tokenizer_free(t);
	rvi_gguf_close(g);
	free(b.p);
}

int main(void)
{
	test_built_bpe();
	test_big_spm_load();

	static const char *const minis[] = {"qwen2", "smollm", "gemma3"};
	char gp[8192], jp[8192];
	for (int i = 0; i < 3; i++) {
		char name[64];
		snprintf(name, sizeof(name), "tokenizers/mini-%s/vocab.gguf", minis[i]);
		snprintf(gp, sizeof(gp), "%s", tu_data(name));
		snprintf(name, sizeof(name), "tokenizers/mini-%s/ref_encodings.json", minis[i]);
		snprintf(jp, sizeof(jp), "%s", tu_data(name));
		snprintf(name, sizeof(name), "mini/%s", minis[i]);
		int n = run_set(name, gp, jp, i == 2, i == 0);
		CHECK(n > 0, "%s: no rows (tests/data files missing?)", name);
	}

	const char *fx = fixtures_dir();
	if (!fx) {
		printf("# SKIP llama.cpp and full-vocabulary sets: no shared fixtures "
		       "(set RLAIFV_SHARED_FIXTURES)\n");
		return tu_finish("test_tokenizer_ref");
	}
	static const struct {
		const char *name, *gguf, *json;
		int spm, nfc;
	} sets[] = {
	    {"llamacpp/gpt-2", "llamacpp/ggml-vocab-gpt-2.gguf", "llamacpp/ggml-vocab-gpt-2.json",
	     0, 0},
	    {"llamacpp/starcoder", "llamacpp/ggml-vocab-starcoder.gguf",
	     "llamacpp/ggml-vocab-starcoder.json", 0, 0},
	    {"llamacpp/deepseek-coder", "llamacpp/ggml-vocab-deepseek-coder.gguf",
	     "llamacpp/ggml-vocab-deepseek-coder.json", 0, 0},
	    {"llamacpp/llama-spm", "llamacpp/ggml-vocab-llama-spm.gguf",
	     "llamacpp/ggml-vocab-llama-spm.json", 1, 0},
	    {"llamacpp/phi-3", "llamacpp/ggml-vocab-phi-3.gguf", "llamacpp/ggml-vocab-phi-3.json",
	     1, 0},
	    {"full/gpt-2", "llamacpp/ggml-vocab-gpt-2.gguf", "full/ref-gpt-2.json", 0, 0},
	    {"full/starcoder", "llamacpp/ggml-vocab-starcoder.gguf", "full/ref-starcoder.json", 0,
	     0},
	    {"full/qwen2", "full/vocab-qwen2.gguf", "full/ref-qwen2.json", 0, 1},
	    {"full/llama-bpe", "full/vocab-llama-bpe.gguf", "full/ref-llama-bpe.json", 0, 0},
	};
	for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
		snprintf(gp, sizeof(gp), "%s/tokenizers/%s", fx, sets[i].gguf);
		snprintf(jp, sizeof(jp), "%s/tokenizers/%s", fx, sets[i].json);
		run_set(sets[i].name, gp, jp, sets[i].spm, sets[i].nfc);
	}
	return tu_finish("test_tokenizer_ref");
}
