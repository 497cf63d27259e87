/* bpe.c: byte-level BPE (tokenizer.ggml.model = "gpt2") as Hugging Face
 * `tokenizers` computes it, which is what the models were trained with:
 * optional NFC (Qwen2), the pre-tokenizer named by tokenizer.ggml.pre
 * (the regexes of the HF tokenizer.json files and llama.cpp's
 * llama-vocab.cpp, each written out here as a small matcher over code
 * points instead of a regex engine), GPT-2's byte -> character map, then
 * merges by rank (lowest first, leftmost on ties). Also loads the merge
 * table and the pre-tokenizer choice. */
#include "src/tokenizer/vocab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/tokenizer/unicode.h"

/* ---- loading ---------------------------------------------------------------- */

uint32_t rvi_bpe_byte_cp(unsigned b)
{
	/* Printable Latin-1 stands for itself; the other 68 bytes, in order,
	 * take U+0100.. (space 0x20 -> U+0120 "Ġ", "\n" -> U+010A "Ċ"). */
	if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE)
		return b;
	unsigned k = b <= 0x20 ? b : b <= 0xA0 ? b - 0x7F + 0x21 : 0x21 + 0x22;
	return 0x100 + k;
}

typedef struct pre_name {
	const char *name;
	enum rvi_pretok pre;
	bool ignore_merges, nfc;
} pre_name;

/* tokenizer.ggml.pre values, grouped by the splitting they mean. */
static const pre_name PRE_NAMES[] = {
    {"default", RVI_PRE_DEFAULT, false, false},
    {"gpt-2", RVI_PRE_GPT2, false, false},
    {"gpt2", RVI_PRE_GPT2, false, false},
    {"mpt", RVI_PRE_GPT2, false, false},
    {"gpt-neox", RVI_PRE_GPT2, false, false},
    {"olmo", RVI_PRE_GPT2, false, false},
    {"jais", RVI_PRE_GPT2, false, false},
    {"phi-2", RVI_PRE_GPT2, false, false},
    {"roberta-bpe", RVI_PRE_GPT2, false, false},
    {"llama-bpe", RVI_PRE_LLAMA3, true, false},
    {"llama3", RVI_PRE_LLAMA3, true, false},
    {"llama-v3", RVI_PRE_LLAMA3, true, false},
    {"falcon3", RVI_PRE_LLAMA3, true, false},
    {"pixtral", RVI_PRE_LLAMA3, true, false},
    {"smaug-bpe", RVI_PRE_LLAMA3, false, false},
    {"dbrx", RVI_PRE_LLAMA3, false, false},
    {"qwen2", RVI_PRE_QWEN2, false, true},
    {"stablelm2", RVI_PRE_QWEN2, false, false},
    {"starcoder", RVI_PRE_STARCODER, false, false},
    {"refact", RVI_PRE_STARCODER, false, false},
    {"smollm", RVI_PRE_STARCODER, false, false},
    {"command-r", RVI_PRE_STARCODER, false, false},
    {"codeshell", RVI_PRE_STARCODER, false, false},
    {"exaone", RVI_PRE_STARCODER, false, false},
    {"deepseek-llm", RVI_PRE_DEEPSEEK_LLM, false, false},
    {"deepseek-coder", RVI_PRE_DEEPSEEK_CODER, false, false},
    {"falcon", RVI_PRE_FALCON, false, false},
};

static uint64_t pair_hash(int32_t l, int32_t r)
{
	uint64_t x = ((uint64_t)(uint32_t)l << 32) | (uint32_t)r;
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return x;
}

static const rvi_merge *find_merge(const rvi_tokenizer *t, int32_t l, int32_t r)
{
	uint64_t i = pair_hash(l, r) & t->merge_mask;
	for (;;) {
		const rvi_merge *m = &t->merges[i];
		if (m->result < 0)
			return NULL;
		if (m->left == l && m->right == r)
			return m;
		i = (i + 1) & t->merge_mask;
	}
}

int rvi_bpe_load(rvi_tokenizer *t, const rvi_gguf *g, rvi_err *err)
{
	const char *file = g->path ? g->path : "model";
	rvi_str pre = {"default", 7};
	int rc = rvi_gguf_get_str(g, RVI_KEY_PRE, false, &pre, err);
	if (rc != RV_OK)
		return rc;
	size_t k;
	for (k = 0; k < sizeof(PRE_NAMES) / sizeof(PRE_NAMES[0]); k++)
		if (rvi_str_eq(pre, PRE_NAMES[k].name))
			break;
	if (k == sizeof(PRE_NAMES) / sizeof(PRE_NAMES[0])) {
		int show = pre.len > 64 ? 64 : (int)pre.len;
		return rvi_errorf(err, RV_ERR_UNSUPPORTED,
		                  "%s = \"%.*s\" is a pre-tokenizer we do not know in %s",
		                  RVI_KEY_PRE, show, pre.ptr, file);
	}
	t->pre = PRE_NAMES[k].pre;
	snprintf(t->kind_name, sizeof(t->kind_name), "bpe:%s", PRE_NAMES[k].name);
	t->ignore_merges = PRE_NAMES[k].ignore_merges;
	t->nfc = PRE_NAMES[k].nfc;

	for (unsigned b = 0; b < 256; b++) {
		char buf[4];
		size_t l = rvi_utf8_encode(rvi_bpe_byte_cp(b), buf);
		t->byte_id[b] = rvi_vocab_lookup(t, buf, l);
	}

	const rvi_gguf_kv *mk;
	rc = rvi_gguf_get_arr(g, RVI_KEY_MERGES, true, RVI_GGUF_STRING, &mk, err);
	if (rc != RV_OK)
		return rc;
	if (mk->arr_n > INT32_MAX)
		return rvi_errorf(err, RV_ERR_MODEL, "%s has %llu entries in %s", RVI_KEY_MERGES,
		                  (unsigned long long)mk->arr_n, file);
	uint64_t size = 16;
	while (size < 2 * mk->arr_n)
		size *= 2;
	t->merges = rvi_alloc(size, sizeof(*t->merges));
	char *cat = rvi_alloc(2 * t->max_token_len + 1, 1);
	if (!t->merges || !cat) {
		free(cat);
		return rvi_errorf(err, RV_ERR_NOMEM, "out of memory loading %s", RVI_KEY_MERGES);
	}
	t->merge_mask = size - 1;
	for (uint64_t i = 0; i < size; i++)
		t->merges[i].result = -1;
	for (uint64_t i = 0; i < mk->arr_n; i++) {
		rvi_str s = mk->strs[i];
		int show = s.len > 64 ? 64 : (int)s.len;
		/* "left right": the first space after the first byte splits them
		 * (a token never holds a raw space in byte-level BPE). */
		const char *sp = s.len > 1 ? memchr(s.ptr + 1, ' ', s.len - 1) : NULL;
		size_t ll = sp ? (size_t)(sp - s.ptr) : 0, rl = sp ? s.len - ll - 1 : 0;
		int32_t l = sp ? rvi_vocab_lookup(t, s.ptr, ll) : -1;
		int32_t r = sp ? rvi_vocab_lookup(t, sp + 1, rl) : -1;
		int32_t res = -1;
		if (l >= 0 && r >= 0) {
			memcpy(cat, s.ptr, ll);
			memcpy(cat + ll, sp + 1, rl);
			res = rvi_vocab_lookup(t, cat, ll + rl);
		}
		if (res < 0) {
			free(cat);
			return rvi_errorf(err, RV_ERR_MODEL, "%s[%llu] = \"%.*s\" %s in %s",
			                  RVI_KEY_MERGES, (unsigned long long)i, show, s.ptr,
			                  !sp     ? "is not two tokens separated by a space"
			                  : l < 0 ? "names a left part that is not a token"
			                  : r < 0 ? "names a right part that is not a token"
			                          : "merges into a text that is not a token",
			                  file);
		}
		uint64_t h = pair_hash(l, r) & t->merge_mask;
		while (t->merges[h].result >= 0 &&
		       !(t->merges[h].left == l && t->merges[h].right == r))
			h = (h + 1) & t->merge_mask;
		if (t->merges[h].result < 0) /* a repeated pair keeps its first rank */
			t->merges[h] = (rvi_merge){l, r, res, (int32_t)i};
	}
	free(cat);
	return RV_OK;
}

/* ---- pre-tokenizers ------------------------------------------------------------ */

typedef struct range {
	uint32_t lo, hi;
} range;

/* deepseek-llm's letter class (Latin, Greek, Cyrillic, Armenian, Georgian,
 * Cherokee, ... as listed in its tokenizer.json), its punctuation class and
 * deepseek's CJK class ([一-龥ࠀ-一가-퟿]). */
static const range DS_LETTERS[] = {
    {0x41, 0x5A},       {0x61, 0x7A},       {0xB5, 0xB5},       {0xC0, 0xD6},
    {0xD8, 0xF6},       {0xF8, 0x1BA},      {0x1BC, 0x1BF},     {0x1C4, 0x293},
    {0x295, 0x2AF},     {0x370, 0x373},     {0x376, 0x377},     {0x37B, 0x37D},
    {0x37F, 0x37F},     {0x386, 0x386},     {0x388, 0x38A},     {0x38C, 0x38C},
    {0x38E, 0x3A1},     {0x3A3, 0x3F5},     {0x3F7, 0x481},     {0x48A, 0x52F},
    {0x531, 0x556},     {0x10A0, 0x10C5},   {0x13A0, 0x13F5},   {0x13F8, 0x13FD},
    {0x1C90, 0x1CBA},   {0x1CBD, 0x1CBF},   {0x1D00, 0x1D2B},   {0x1D6B, 0x1D77},
    {0x1D79, 0x1D9A},   {0x1E00, 0x1F15},   {0x1F18, 0x1F1D},   {0x1F20, 0x1F45},
    {0x1F48, 0x1F4D},   {0x1F50, 0x1F57},   {0x1F59, 0x1F59},   {0x1F5B, 0x1F5B},
    {0x1F5D, 0x1F5D},   {0x1F5F, 0x1F7D},   {0x1F80, 0x1FB4},   {0x1FB6, 0x1FBC},
    {0x1FBE, 0x1FBE},   {0x1FC2, 0x1FC4},   {0x1FC6, 0x1FCC},   {0x1FD0, 0x1FD3},
    {0x1FD6, 0x1FDB},   {0x1FE0, 0x1FEC},   {0x1FF2, 0x1FF4},   {0x1FF6, 0x1FFC},
    {0x2102, 0x2102},   {0x2107, 0x2107},   {0x210A, 0x2113},   {0x2115, 0x2115},
    {0x2119, 0x211D},   {0x2124, 0x2124},   {0x2126, 0x2126},   {0x2128, 0x2128},
    {0x212A, 0x212D},   {0x212F, 0x2134},   {0x2139, 0x2139},   {0x213C, 0x213F},
    {0x2145, 0x2149},   {0x214E, 0x214E},   {0x2183, 0x2184},   {0x2C00, 0x2C7B},
    {0x2C7E, 0x2CE4},   {0x2CEB, 0x2CEE},   {0x2CF2, 0x2CF3},   {0xA640, 0xA66D},
    {0xA680, 0xA69B},   {0xA722, 0xA76F},   {0xA771, 0xA787},   {0xA78B, 0xA78E},
    {0xAB70, 0xABBF},   {0xFB00, 0xFB06},   {0xFB13, 0xFB17},   {0xFF21, 0xFF3A},
    {0xFF41, 0xFF5A},   {0x10400, 0x1044F}, {0x104B0, 0x104D3}, {0x104D8, 0x104FB},
    {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2}, {0x118A0, 0x118DF}, {0x1E900, 0x1E943},
};
static const range DS_PUNCT[] = {{0x21, 0x2F},     {0x3A, 0x7E},     {0xFF01, 0xFF0F},
                                 {0xFF1A, 0xFF5E}, {0x2018, 0x201F}, {0x3000, 0x3002}};
static const range DS_CJK[] = {{0x4E00, 0x9FA5}, {0x800, 0x4E00}, {0xAC00, 0xD7FF}};

static bool in_ranges(uint32_t c, const range *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (c >= r[i].lo && c <= r[i].hi)
			return true;
	return false;
}

/* Character classes of the simple patterns. */
enum cls {
	CLS_CRLF,       /* [\r\n] */
	CLS_L,          /* \p{L} */
	CLS_N,          /* \p{N} */
	CLS_P,          /* \p{P} */
	CLS_SPACE,      /* \s */
	CLS_DIGIT,      /* [0-9] */
	CLS_PUNCT_SYM,  /* [\p{P}\$\+<=>\^~\|] */
	CLS_PUNCT_SYMB, /* [\p{P}\$\+<=>\^~\|`] */
	CLS_DS_LETTERS,
	CLS_DS_PUNCT,
	CLS_DS_CJK,
};

/* One pass of a pre-tokenizer: a built-in regex or "\s?C{min,max}$?". */
typedef struct splitter {
	enum { SPLIT_GPT2, SPLIT_LLAMA3, SPLIT_QWEN2, SPLIT_CLASS } kind;
	enum cls cls;
	bool ws_prefix; /* \s? in front */
	uint8_t min, max;
	bool at_end; /* anchored with $ */
} splitter;

#define CLASS(c, p, lo, hi, e)                                                                     \
	{                                                                                          \
		SPLIT_CLASS, c, p, lo, hi, e                                                       \
	}
#define MANY 255 /* "+" */

typedef struct pre_def {
	uint8_t n;
	splitter s[6];
} pre_def;

static const pre_def PRE_DEFS[] = {
    [RVI_PRE_DEFAULT] = {4,
                         {CLASS(CLS_PUNCT_SYM, false, 1, MANY, false),
                          {SPLIT_GPT2, 0, false, 0, 0, false},
                          CLASS(CLS_N, false, 1, MANY, false),
                          CLASS(CLS_DIGIT, false, 3, 3, false)}},
    [RVI_PRE_GPT2] = {1, {{SPLIT_GPT2, 0, false, 0, 0, false}}},
    [RVI_PRE_LLAMA3] = {1, {{SPLIT_LLAMA3, 0, false, 0, 0, false}}},
    [RVI_PRE_QWEN2] = {1, {{SPLIT_QWEN2, 0, false, 0, 0, false}}},
    [RVI_PRE_STARCODER] = {2,
                           {CLASS(CLS_N, false, 1, 1, false), {SPLIT_GPT2, 0, false, 0, 0, false}}},
    [RVI_PRE_DEEPSEEK_LLM] =
        {6,
         {CLASS(CLS_CRLF, false, 1, 1, false), CLASS(CLS_DS_LETTERS, true, 1, MANY, false),
          CLASS(CLS_DS_PUNCT, true, 1, MANY, false), CLASS(CLS_SPACE, false, 1, MANY, true),
          CLASS(CLS_DS_CJK, false, 1, MANY, false), CLASS(CLS_N, false, 1, MANY, false)}},
    [RVI_PRE_DEEPSEEK_CODER] = {5,
                                {CLASS(CLS_CRLF, false, 1, 1, false),
                                 CLASS(CLS_L, true, 1, MANY, false),
                                 CLASS(CLS_P, true, 1, MANY, false),
                                 CLASS(CLS_DS_CJK, false, 1, MANY, false),
                                 CLASS(CLS_N, false, 1, 1, false)}},
    [RVI_PRE_FALCON] = {3,
                        {CLASS(CLS_PUNCT_SYMB, false, 1, MANY, false),
                         {SPLIT_GPT2, 0, false, 0, 0, false},
                         CLASS(CLS_DIGIT, false, 3, 3, false)}},
};

/* The fragment being encoded, as code points. */
typedef struct frag_cp {
	const uint32_t *cp;
	const uint8_t *fl; /* RVI_U_* flags of each code point */
} frag_cp;

static bool cls_has(enum cls c, uint32_t cp, unsigned fl)
{
	switch (c) {
	case CLS_CRLF:
		return cp == '\r' || cp == '\n';
	case CLS_L:
		return fl & RVI_U_LETTER;
	case CLS_N:
		return fl & RVI_U_NUMBER;
	case CLS_P:
		return fl & RVI_U_PUNCT;
	case CLS_SPACE:
		return fl & RVI_U_SPACE;
	case CLS_DIGIT:
		return cp >= '0' && cp <= '9';
	case CLS_PUNCT_SYMB:
		if (cp == '`')
			return true;
		/* fallthrough */
	case CLS_PUNCT_SYM:
		return (fl & RVI_U_PUNCT) || (cp < 0x80 && strchr("$+<=>^~|", (int)cp) && cp);
	case CLS_DS_LETTERS:
		return in_ranges(cp, DS_LETTERS, sizeof(DS_LETTERS) / sizeof(DS_LETTERS[0]));
	case CLS_DS_PUNCT:
		return in_ranges(cp, DS_PUNCT, sizeof(DS_PUNCT) / sizeof(DS_PUNCT[0]));
	case CLS_DS_CJK:
		return in_ranges(cp, DS_CJK, sizeof(DS_CJK) / sizeof(DS_CJK[0]));
	}
	return false;
}

#define IS_L(k)     (f->fl[k] & RVI_U_LETTER)
#define IS_N(k)     (f->fl[k] & RVI_U_NUMBER)
#define IS_WS(k)    (f->fl[k] & RVI_U_SPACE)
#define IS_OTHER(k) (!(f->fl[k] & (RVI_U_LETTER | RVI_U_NUMBER | RVI_U_SPACE)))

static size_t run_of(const frag_cp *f, size_t i, size_t b, unsigned flag)
{
	while (i < b && (f->fl[i] & flag))
		i++;
	return i;
}

static size_t run_other(const frag_cp *f, size_t i, size_t b)
{
	while (i < b && IS_OTHER(i))
		i++;
	return i;
}

/* "\s+(?!\S)|\s+" at a white-space code point: the run, less its last
 * space when a non-space follows (it goes with the next word). */
static size_t match_spaces(const frag_cp *f, size_t i, size_t b)
{
	size_t e = run_of(f, i, b, RVI_U_SPACE);
	return e == b || e - i < 2 ? e : e - 1;
}

static uint32_t ascii_lower(uint32_t c)
{
	if (c >= 'A' && c <= 'Z')
		return c + 32;
	if (c == 0x17F) /* "ſ" folds to "s" under (?i) */
		return 's';
	return c;
}

/* 's 't 're 've 'm 'll 'd (case-folded when fold); the match's end or 0. */
static size_t match_contraction(const frag_cp *f, size_t i, size_t b, bool fold)
{
	if (f->cp[i] != '\'' || i + 1 >= b)
		return 0;
	uint32_t c1 = fold ? ascii_lower(f->cp[i + 1]) : f->cp[i + 1];
	if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd')
		return i + 2;
	if (i + 2 >= b)
		return 0;
	uint32_t c2 = fold ? ascii_lower(f->cp[i + 2]) : f->cp[i + 2];
	if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l'))
		return i + 3;
	return 0;
}

/* GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static size_t match_gpt2(const frag_cp *f, size_t i, size_t b)
{
	size_t e = match_contraction(f, i, b, false);
	if (e)
		return e;
	size_t j = f->cp[i] == ' ' && i + 1 < b ? i + 1 : i;
	if (IS_L(j))
		return run_of(f, j, b, RVI_U_LETTER);
	if (IS_N(j))
		return run_of(f, j, b, RVI_U_NUMBER);
	if (IS_OTHER(j))
		return run_other(f, j, b);
	/* j == i + 1 is a space: nothing took the leading space */
	if (IS_WS(i))
		return match_spaces(f, i, b);
	return i + 1; /* unreachable: every code point is in one class */
}

/* Llama 3 (max_digits 3) and Qwen2 (1):
 * (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
 *  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
static size_t match_llama3(const frag_cp *f, size_t i, size_t b, size_t max_digits)
{
	size_t e = match_contraction(f, i, b, true);
	if (e)
		return e;
	uint32_t c = f->cp[i];
	if (IS_L(i))
		return run_of(f, i, b, RVI_U_LETTER);
	if (c != '\r' && c != '\n' && !IS_N(i) && i + 1 < b && IS_L(i + 1))
		return run_of(f, i + 1, b, RVI_U_LETTER);
	if (IS_N(i)) {
		e = i;
		while (e < b && e - i < max_digits && IS_N(e))
			e++;
		return e;
	}
	size_t j = c == ' ' && i + 1 < b && IS_OTHER(i + 1) ? i + 1 : i;
	if (IS_OTHER(j)) {
		e = run_other(f, j, b);
		while (e < b && (f->cp[e] == '\r' || f->cp[e] == '\n'))
			e++;
		return e;
	}
	/* white space: \s*[\r\n]+ ends after the run's last line break */
	e = run_of(f, i, b, RVI_U_SPACE);
	for (size_t k = e; k > i; k--)
		if (f->cp[k - 1] == '\r' || f->cp[k - 1] == '\n')
			return k;
	return match_spaces(f, i, b);
}

/* \s?C{min,max} with an optional $; the match's end or 0. */
static size_t match_class(const splitter *s, const frag_cp *f, size_t i, size_t b)
{
	for (int with_prefix = s->ws_prefix; with_prefix >= 0; with_prefix--) {
		size_t j = i;
		if (with_prefix) {
			if (!IS_WS(i))
				continue;
			j = i + 1;
		}
		size_t e = j;
		while (e < b && (s->max == MANY || e - j < s->max) &&
		       cls_has(s->cls, f->cp[e], f->fl[e]))
			e++;
		if (e - j < s->min || e == j || (s->at_end && e != b))
			continue;
		return e;
	}
	return 0;
}

typedef struct bpe_run {
	const rvi_tokenizer *t;
	rvi_encode_work *w;
	const char *text; /* the fragment's bytes */
	frag_cp f;
	const pre_def *def;
	int32_t *ids;
	int64_t *n;
} bpe_run;

static void bpe_word(bpe_run *r, size_t a, size_t b);

/* Applies pass `level` of the pre-tokenizer to code points [a, b): matches
 * and the text between them both become pieces of the next pass. */
static void split(bpe_run *r, int level, size_t a, size_t b)
{
	if (a == b)
		return;
	if (level == r->def->n) {
		bpe_word(r, a, b);
		return;
	}
	const splitter *s = &r->def->s[level];
	size_t i = a, last = a;
	while (i < b) {
		size_t e;
		switch (s->kind) {
		case SPLIT_GPT2:
			e = match_gpt2(&r->f, i, b);
			break;
		case SPLIT_LLAMA3:
			e = match_llama3(&r->f, i, b, 3);
			break;
		case SPLIT_QWEN2:
			e = match_llama3(&r->f, i, b, 1);
			break;
		default:
			e = match_class(s, &r->f, i, b);
			break;
		}
		if (!e) {
			i++;
			continue;
		}
		split(r, level + 1, last, i);
		split(r, level + 1, i, e);
		i = last = e;
	}
	split(r, level + 1, last, b);
}

/* ---- merging -------------------------------------------------------------------- */

typedef struct bsym {
	int32_t id; /* -1: a byte the vocabulary has no character for */
	int32_t prev, next;
} bsym;

typedef struct bpair {
	int32_t rank, left, lid, rid;
} bpair;

static bool pair_before(const bpair *a, const bpair *b)
{
	return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static void bheap_push(bpair *h, size_t *n, bpair p)
{
	size_t i = (*n)++;
	while (i > 0) {
		size_t q = (i - 1) / 2;
		if (!pair_before(&p, &h[q]))
			break;
		h[i] = h[q];
		i = q;
	}
	h[i] = p;
}

static bpair bheap_pop(bpair *h, size_t *n)
{
	bpair top = h[0], last = h[--*n];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= *n)
			break;
		if (c + 1 < *n && pair_before(&h[c + 1], &h[c]))
			c++;
		if (!pair_before(&h[c], &last))
			break;
		h[i] = h[c];
		i = c;
	}
	if (*n > 0)
		h[i] = last;
	return top;
}

static void queue_pair(const rvi_tokenizer *t, const bsym *s, bpair *h, size_t *nh, int32_t l)
{
	if (l < 0 || s[l].next < 0 || s[l].id < 0 || s[s[l].next].id < 0)
		return;
	const rvi_merge *m = find_merge(t, s[l].id, s[s[l].next].id);
	if (m)
		bheap_push(h, nh, (bpair){m->rank, l, s[l].id, s[s[l].next].id});
}

/* BPE of one pre-token, code points [a, b) of the fragment. */
static void bpe_word(bpe_run *r, size_t a, size_t b)
{
	const rvi_tokenizer *t = r->t;
	const unsigned char *p = (const unsigned char *)r->text + r->w->off[a];
	size_t len = r->w->off[b] - r->w->off[a];
	if (t->ignore_merges) {
		/* The byte-level text, 1 or 2 bytes per byte. */
		char *buf = r->w->buf;
		size_t o = 0;
		for (size_t k = 0; k < len; k++)
			o += rvi_utf8_encode(rvi_bpe_byte_cp(p[k]), buf + o);
		int32_t id = rvi_vocab_lookup(t, buf, o);
		if (id >= 0) {
			r->ids[(*r->n)++] = id;
			return;
		}
	}
	bsym *s = r->w->syms;
	bpair *h = r->w->heap;
	size_t nh = 0;
	for (size_t k = 0; k < len; k++)
		s[k] = (bsym){t->byte_id[p[k]], (int32_t)k - 1, k + 1 < len ? (int32_t)k + 1 : -1};
	for (size_t k = 0; k + 1 < len; k++)
		queue_pair(t, s, h, &nh, (int32_t)k);
	while (nh > 0) {
		bpair q = bheap_pop(h, &nh);
		bsym *l = &s[q.left];
		if (l->id != q.lid || l->next < 0 || s[l->next].id != q.rid)
			continue; /* stale: one side was merged since */
		const rvi_merge *m = find_merge(t, q.lid, q.rid);
		bsym *rt = &s[l->next];
		l->id = m->result;
		rt->id = -2; /* merged away */
		l->next = rt->next;
		if (rt->next >= 0)
			s[rt->next].prev = q.left;
		queue_pair(t, s, h, &nh, l->prev);
		queue_pair(t, s, h, &nh, q.left);
	}
	for (int32_t k = len ? 0 : -1; k >= 0; k = s[k].next) {
		if (s[k].id >= 0)
			r->ids[(*r->n)++] = s[k].id;
		else if (t->unk >= 0)
			r->ids[(*r->n)++] = t->unk;
		/* else dropped, as HF does for a character without a token */
	}
}

int rvi_bpe_encode(const rvi_tokenizer *t, rvi_encode_work *w, const char *text, size_t len,
                   int32_t *ids, int64_t *n, rvi_err *err)
{
	char *norm = NULL;
	if (t->nfc && rvi_nfc_needed((const unsigned char *)text, len)) {
		size_t nl;
		if (!rvi_nfc((const unsigned char *)text, len, &norm, &nl))
			return rvi_errorf(err, RV_ERR_NOMEM, "out of memory normalizing %zu bytes",
			                  len);
		text = norm;
		len = nl;
	}
	if (!rvi_work_reserve((void **)&w->buf, &w->buf_cap, 2 * len + 1, 1) ||
	    !rvi_work_reserve(&w->syms, &w->syms_cap, len + 1, sizeof(bsym)) ||
	    !rvi_work_reserve(&w->heap, &w->heap_cap, 3 * len + 1, sizeof(bpair)) ||
	    !rvi_work_reserve((void **)&w->cp, &w->cp_cap, len + 1, sizeof(uint32_t)) ||
	    !rvi_work_reserve((void **)&w->off, &w->off_cap, len + 1, sizeof(uint32_t)) ||
	    !rvi_work_reserve((void **)&w->flags, &w->flags_cap, len + 1, 1)) {
		free(norm);
		return rvi_errorf(err, RV_ERR_NOMEM, "out of memory tokenizing %zu bytes", len);
	}
	size_t nc = 0;
	for (size_t i = 0; i < len;) {
		uint32_t c;
		size_t l = rvi_utf8_decode((const unsigned char *)text + i, len - i, &c);
		w->cp[nc] = c;
		w->off[nc] = (uint32_t)i;
		w->flags[nc] = (uint8_t)rvi_ucd_flags(c);
		nc++;
		i += l;
	}
	w->off[nc] = (uint32_t)len;
	bpe_run r = {t, w, text, {w->cp, w->flags}, &PRE_DEFS[t->pre], ids, n};
	split(&r, 0, 0, nc);
	free(norm);
	return RV_OK;
}
