/* tokenizer.h: the tokenizer's interface to the rest of the runtime:
 * vocabularies from GGUF (SentencePiece "llama", byte-level BPE "gpt2"),
 * encoding text to token ids and decoding ids back to valid UTF-8. Other
 * vocabulary kinds are refused at load. Knows nothing of models or
 * sampling. The parts live beside this header: vocab.c (loading), tokenize.c
 * (special tokens, dispatch), spm.c, bpe.c (encoders), decode.c,
 * unicode.c (+ generated unicode_data.c). */
#ifndef RLAIFV_TOKENIZER_H
#define RLAIFV_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "src/gguf.h"
#include "src/util.h"

/* Token types as tokenizer.ggml.token_type numbers them. */
enum rvi_token_type {
	RVI_TOKEN_UNDEFINED = 0,
	RVI_TOKEN_NORMAL = 1,
	RVI_TOKEN_UNKNOWN = 2,
	RVI_TOKEN_CONTROL = 3,
	RVI_TOKEN_USER_DEFINED = 4,
	RVI_TOKEN_UNUSED = 5,
	RVI_TOKEN_BYTE = 6,
};

typedef struct rvi_tokenizer rvi_tokenizer;

/* Loads the vocabulary of g (tokenizer.ggml.* keys). n_vocab_expected is the
 * number of embedding rows the model has (0: don't check); a vocabulary of a
 * different size, short/mistyped scores or types, out-of-range special ids,
 * a malformed byte token "<0xZZ>", and for BPE empty or repeated tokens and
 * merges naming unknown tokens are RV_ERR_MODEL naming the key; an unknown
 * tokenizer.ggml.model or .pre is RV_ERR_UNSUPPORTED. */
int rvi_tokenizer_load(rvi_tokenizer **out, const rvi_gguf *g, int64_t n_vocab_expected,
                       rvi_err *err);
void rvi_tokenizer_free(rvi_tokenizer *t);

int64_t rvi_tokenizer_n_vocab(const rvi_tokenizer *t);
/* "spm", or "bpe:" and the pre-tokenizer name ("bpe:qwen2"), for reports. */
const char *rvi_tokenizer_kind(const rvi_tokenizer *t);
int32_t rvi_tokenizer_bos(const rvi_tokenizer *t); /* -1 when none */
int32_t rvi_tokenizer_eos(const rvi_tokenizer *t); /* -1 when none */
/* tokenizer.ggml.add_bos_token; default true for SentencePiece, false for BPE */
bool rvi_tokenizer_add_bos(const rvi_tokenizer *t);
bool rvi_tokenizer_add_eos(
    const rvi_tokenizer *t); /* tokenizer.ggml.add_eos_token, default false */
bool rvi_tokenizer_is_eog(const rvi_tokenizer *t, int32_t id); /* end of generation (EOS/EOT) */
int32_t rvi_tokenizer_unk(const rvi_tokenizer *t);             /* -1 when none */
/* The enum rvi_token_type of id, or -1 if out of range. */
int rvi_token_type_of(const rvi_tokenizer *t, int32_t id);

/* Encodes len bytes of text, giving the ids Hugging Face tokenizers (and,
 * where they agree, llama.cpp) give. add_bos prepends BOS
 * (RV_ERR_INVALID_ARG if there is none); parse_special lets the text of
 * control/unknown tokens ("<s>", "</s>", "<|im_end|>") map to those tokens,
 * else it is tokenized as plain text; user-defined tokens always map.
 * SentencePiece: with add_space_prefix a "▁" is put in front of each plain
 * segment between special tokens, spaces become "▁", pieces are merged by
 * score, and characters not in the vocabulary fall back to <0xNN> tokens
 * (bytes of invalid UTF-8 too, one by one). Byte-level BPE: NFC when the
 * vocabulary's tokenizer normalizes (qwen2), the pre-tokenizer of
 * tokenizer.ggml.pre, then merges by rank. *ids is malloc'ed (free() it;
 * NULL when *n is 0); *n its length. */
int rvi_tokenize(const rvi_tokenizer *t, const char *text, size_t len, bool add_bos,
                 bool parse_special, int32_t **ids, int64_t *n, rvi_err *err);

/* A byte range of a text. */
typedef struct rvi_span {
	size_t off, len;
} rvi_span;

/* rvi_tokenize, except that no control or unknown token is cut out where
 * its text overlaps one of the n_plain spans (sorted or not): a chat
 * template's user text stays plain text while the template's own markers
 * around it become control tokens, and the text is still encoded as one
 * piece (so the ids are those of the whole string wherever the user text
 * holds no special-token text). */
int rvi_tokenize_spans(const rvi_tokenizer *t, const char *text, size_t len, bool add_bos,
                       bool parse_special, const rvi_span *plain, int n_plain, int32_t **ids,
                       int64_t *n, rvi_err *err);

/* The raw piece text of id (with "▁", "<0x0A>" as stored); NULL if out of range. */
const char *rvi_token_text(const rvi_tokenizer *t, int32_t id, size_t *len);

/* Streaming detokenizer: turns ids into UTF-8 text, "▁" into spaces, byte
 * tokens into their bytes, control tokens into nothing. Bytes of an
 * incomplete UTF-8 sequence are held back until it completes; invalid
 * sequences become U+FFFD, so every output is valid UTF-8. */
typedef struct rvi_detok {
	const rvi_tokenizer *tok;
	unsigned char pending[8];
	int n_pending;
} rvi_detok;

void rvi_detok_init(rvi_detok *d, const rvi_tokenizer *t);
/* Appends the text of id to out (cap bytes); returns the number of bytes
 * written, or -1 if id is out of range or cap is too small (out and the
 * state untouched). cap >= rvi_tokenizer_max_piece always suffices. */
int64_t rvi_detok_push(rvi_detok *d, int32_t id, char *out, size_t cap);
/* Emits what is pending at the end of a stream (as U+FFFD, 3 bytes; -1 if
 * cap < 3) and resets the state. */
int64_t rvi_detok_flush(rvi_detok *d, char *out, size_t cap);
/* The most bytes one rvi_detok_push can write (every byte of the longest
 * piece and of what is pending turning into U+FFFD). */
size_t rvi_tokenizer_max_piece(const rvi_tokenizer *t);

/* The raw bytes id decodes to, without UTF-8 checking: "▁" as space, a byte
 * token as its byte, control/unknown/unused tokens as nothing. Returns the
 * length, or -1 if id is out of range or cap is too small;
 * rvi_tokenizer_max_piece always suffices. out NULL: only the length. */
int64_t rvi_token_piece(const rvi_tokenizer *t, int32_t id, char *out, size_t cap);

#endif
