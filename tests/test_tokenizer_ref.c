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

int main(void)
{
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
