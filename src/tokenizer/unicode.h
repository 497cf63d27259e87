/* unicode.h: what the tokenizer needs to know about code points: general
 * category classes and White_Space for the pre-tokenizers, NFC for
 * vocabularies whose tokenizer normalizes (Qwen2), and UTF-8 decoding of
 * untrusted bytes. The tables are generated (unicode_data.c, by
 * tools/gen_unicode_tables.py); this file owns only their lookups. */
#ifndef RLAIFV_TOKENIZER_UNICODE_H
#define RLAIFV_TOKENIZER_UNICODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
	RVI_U_LETTER = 1 << 0, /* \p{L} */
	RVI_U_NUMBER = 1 << 1, /* \p{N} */
	RVI_U_PUNCT = 1 << 2,  /* \p{P} */
	RVI_U_SPACE = 1 << 3,  /* \s (White_Space) */
	RVI_U_MARK = 1 << 4,   /* \p{M} */
	RVI_U_SYMBOL = 1 << 5, /* \p{S} */
	RVI_U_NFC = 1 << 6,    /* NFC may change text around this code point */
};

typedef struct rvi_ucd_decomp {
	uint32_t cp;
	uint16_t off; /* into rvi_ucd_decomp_pool */
	uint8_t len;
} rvi_ucd_decomp;

typedef struct rvi_ucd_comp {
	uint32_t first, second, composite;
} rvi_ucd_comp;

extern const char rvi_unicode_version[];
extern const uint16_t rvi_ucd_flags_stage1[0x1100];
extern const uint8_t rvi_ucd_flags_stage2[][256];
extern const uint16_t rvi_ucd_ccc_stage1[0x1100];
extern const uint8_t rvi_ucd_ccc_stage2[][256];
extern const uint32_t rvi_ucd_decomp_pool[];
extern const rvi_ucd_decomp rvi_ucd_decomps[];
extern const size_t rvi_ucd_n_decomps;
extern const rvi_ucd_comp rvi_ucd_comps[];
extern const size_t rvi_ucd_n_comps;

/* Flags (RVI_U_*) of code point c; 0 past U+10FFFF. */
static inline unsigned rvi_ucd_flags(uint32_t c)
{
	if (c >= 0x110000)
		return 0;
	return rvi_ucd_flags_stage2[rvi_ucd_flags_stage1[c >> 8]][c & 0xFF];
}

/* Decodes one code point of s[0..n) (n >= 1) into *cp and returns its byte
 * length; an invalid byte (or truncated/overlong/surrogate sequence) decodes
 * as itself, 1 byte, with *cp = 0xFFFFFFFF so that it is no category. */
size_t rvi_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* Writes code point c (<= U+10FFFF) as UTF-8 to out (4 bytes room); returns
 * the length. */
size_t rvi_utf8_encode(uint32_t c, char *out);

/* Whether NFC could change s[0..n): false means s is already NFC (fast
 * path: ASCII text never needs work). */
bool rvi_nfc_needed(const unsigned char *s, size_t n);

/* NFC of s[0..n) (valid UTF-8 parts; invalid bytes are kept as they are),
 * into *out (malloc'ed, *out_len bytes). Returns false when out of memory. */
bool rvi_nfc(const unsigned char *s, size_t n, char **out, size_t *out_len);

#endif
