/* vocab.h: the vocabulary shared by the tokenizer's parts (internal to
 * src/tokenizer/): token texts, scores, types, special ids, the EOG set, the
 * decoded bytes of every token, the text -> id map, and for byte-level BPE
 * the merge table and the pre-tokenizer choice. vocab.c loads it from GGUF;
 * spm.c and bpe.c encode with it, tokenize.c cuts special tokens out and
 * dispatches, decode.c turns ids back into text. Nothing outside
 * src/tokenizer/ includes this: the runtime uses tokenizer.h. */
#ifndef RLAIFV_TOKENIZER_VOCAB_H
#define RLAIFV_TOKENIZER_VOCAB_H

#include "src/tokenizer/tokenizer.h"

#define RVI_KEY_MODEL     "tokenizer.ggml.model"
#define RVI_KEY_PRE       "tokenizer.ggml.pre"
#define RVI_KEY_TOKENS    "tokenizer.ggml.tokens"
#define RVI_KEY_SCORES    "tokenizer.ggml.scores"
#define RVI_KEY_TYPES     "tokenizer.ggml.token_type"
#define RVI_KEY_MERGES    "tokenizer.ggml.merges"
#define RVI_KEY_BOS       "tokenizer.ggml.bos_token_id"
#define RVI_KEY_EOS       "tokenizer.ggml.eos_token_id"
#define RVI_KEY_UNK       "tokenizer.ggml.unknown_token_id"
#define RVI_KEY_EOT       "tokenizer.ggml.eot_token_id"
#define RVI_KEY_EOM       "tokenizer.ggml.eom_token_id"
#define RVI_KEY_ADD_BOS   "tokenizer.ggml.add_bos_token"
#define RVI_KEY_ADD_EOS   "tokenizer.ggml.add_eos_token"
#define RVI_KEY_ADD_SPACE "tokenizer.ggml.add_space_prefix"

enum rvi_vocab_kind {
	RVI_VOCAB_SPM, /* "llama": SentencePiece pieces merged by score */
	RVI_VOCAB_BPE, /* "gpt2": byte-level BPE merged by rank */
};

/* How byte-level BPE splits text before merging (tokenizer.ggml.pre). */
enum rvi_pretok {
	RVI_PRE_DEFAULT, /* no or "default" pre: llama.cpp's default regexes */
	RVI_PRE_GPT2,
	RVI_PRE_LLAMA3,
	RVI_PRE_QWEN2,
	RVI_PRE_STARCODER,
	RVI_PRE_DEEPSEEK_LLM,
	RVI_PRE_DEEPSEEK_CODER,
	RVI_PRE_FALCON,
};

/* Where special tokens can start and how they strip (special.c). */
enum { RVI_STRIP_LEFT = 1, RVI_STRIP_RIGHT = 2 };
typedef struct rvi_special_index {
	int32_t *rank; /* (n_vocab) position in special[], -1 = not special */
	size_t *lens;  /* distinct special lengths, longest first */
	int32_t n_lens;
	uint8_t *strip;        /* (n_special) RVI_STRIP_* of special[k] */
	uint64_t first1[4];    /* first bytes of the 1-byte special tokens */
	uint64_t first2[1024]; /* first two bytes of the longer ones */
} rvi_special_index;

/* One merge: (left, right) -> result, with its rank (position in the list). */
typedef struct rvi_merge {
	int32_t left, right, result, rank;
} rvi_merge;

struct rvi_tokenizer {
	enum rvi_vocab_kind kind;
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
	char *piece_arena; /* bytes each token decodes to (before UTF-8 checks) */
	size_t *piece_off;
	uint32_t *piece_len;
	uint8_t *piece_whole; /* 1 when the piece is complete, valid UTF-8 */
	size_t max_push;      /* most bytes one rvi_detok_push can write */
	int32_t byte_id[256]; /* SPM: byte fallback token per byte; BPE: the
	                         token of the byte's byte-level character; -1 = none */
	int32_t *special;     /* ids cut out of the text before merging, longest first */
	/* 1 for CONTROL tokens that Hugging Face matches even when special
	 * tokens are not parsed (added tokens with special: false that the
	 * converter typed CONTROL by their look); NULL when there are none */
	uint8_t *plain_match;
	int32_t n_special;
	rvi_special_index sx;
	int32_t bos, eos, unk;
	bool add_bos, add_eos;
	bool add_space_prefix;
	/* BPE only */
	enum rvi_pretok pre;
	char kind_name[40]; /* "spm" or "bpe:PRE" */
	bool ignore_merges; /* a pre-token that is itself a token is not merged */
	bool nfc;           /* the HF tokenizer normalizes to NFC first (Qwen2) */
	rvi_merge *merges;  /* open-addressing (left, right) map, result -1 = empty */
	uint64_t merge_mask;
};

/* A piece of the input: plain text (id < 0) or a special token. */
typedef struct rvi_frag {
	size_t off, len;
	int32_t id;
} rvi_frag;

typedef struct rvi_frag_list {
	rvi_frag *v;
	size_t n, cap;
} rvi_frag_list;

bool rvi_frag_add(rvi_frag_list *l, size_t off, size_t len, int32_t id);

/* Special-token matching (special.c): the index built once the special
 * list is sorted (model_name: general.name, which decides llama.cpp's strip
 * rules; NULL when absent), and the cut of a text into fragments. */
int rvi_special_index_build(rvi_tokenizer *t, const char *model_name, rvi_err *err);
void rvi_special_index_free(rvi_special_index *x);
int rvi_special_partition(const rvi_tokenizer *t, const char *text, size_t len, bool parse_special,
                          const rvi_span *plain, int n_plain, rvi_frag_list *out, rvi_err *err);

/* Whether s[0..n) is complete, valid UTF-8 (decode.c). */
bool rvi_utf8_whole(const unsigned char *s, size_t n);

/* The id of the token whose text is s[0..n), or -1. */
int32_t rvi_vocab_lookup(const rvi_tokenizer *t, const char *s, size_t n);

/* GPT-2's bytes_to_unicode: the code point byte b is written as in
 * byte-level BPE token texts. */
uint32_t rvi_bpe_byte_cp(unsigned b);

/* BPE part of loading (bpe.c): the pre-tokenizer from tokenizer.ggml.pre,
 * the merges, the per-byte tokens. Errors name the key. */
int rvi_bpe_load(rvi_tokenizer *t, const rvi_gguf *g, rvi_err *err);

/* Encodes one plain fragment, appending ids to ids[*n...]. The caller sized
 * ids for one id per input byte (plus the SPM prefix); w is scratch space
 * reused between fragments (free with rvi_encode_work_free). */
typedef struct rvi_encode_work {
	char *buf;
	size_t buf_cap;
	void *syms;
	size_t syms_cap;
	void *heap;
	size_t heap_cap;
	uint32_t *cp; /* BPE: code points of the fragment, their byte offsets */
	size_t cp_cap;
	uint32_t *off;
	size_t off_cap;
	uint8_t *flags;
	size_t flags_cap;
} rvi_encode_work;

int rvi_spm_encode(const rvi_tokenizer *t, rvi_encode_work *w, const char *text, size_t len,
                   bool prefix, int32_t *ids, int64_t *n, rvi_err *err);
int rvi_bpe_encode(const rvi_tokenizer *t, rvi_encode_work *w, const char *text, size_t len,
                   int32_t *ids, int64_t *n, rvi_err *err);
void rvi_encode_work_free(rvi_encode_work *w);

/* Grows *p (n elements of size bytes) to at least want elements; false when
 * out of memory. */
bool rvi_work_reserve(void **p, size_t *cap, size_t want, size_t size);

#endif
