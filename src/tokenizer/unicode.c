/* unicode.c: UTF-8 decoding of untrusted text and NFC normalization over the
 * generated tables (see unicode.h). NFC is the textbook algorithm: full
 * canonical decomposition (Hangul computed), canonical ordering of combining
 * marks, then canonical composition of unblocked pairs. */
#include "src/tokenizer/unicode.h"

#include <stdlib.h>
#include <string.h>

#define INVALID_CP 0xFFFFFFFFu
/* An invalid input byte inside NFC's code point buffer: kept as itself and
 * never composed (above U+10FFFF, so no table knows it). */
#define RAW_BYTE 0x80000000u

enum { SBASE = 0xAC00, LBASE = 0x1100, VBASE = 0x1161, TBASE = 0x11A7 };
enum { LCOUNT = 19, VCOUNT = 21, TCOUNT = 28, NCOUNT = VCOUNT * TCOUNT, SCOUNT = LCOUNT * NCOUNT };

size_t rvi_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned c = s[0];
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	size_t l;
	uint32_t v;
	unsigned lo = 0x80, hi = 0xBF;
	if (c >= 0xC2 && c <= 0xDF) {
		l = 2;
		v = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		l = 3;
		v = c & 0x0F;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		l = 4;
		v = c & 0x07;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else {
		*cp = INVALID_CP;
		return 1;
	}
	if (l > n) {
		*cp = INVALID_CP;
		return 1;
	}
	for (size_t k = 1; k < l; k++) {
		unsigned b = s[k];
		if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) {
			*cp = INVALID_CP;
			return 1;
		}
		v = (v << 6) | (b & 0x3F);
	}
	*cp = v;
	return l;
}

size_t rvi_utf8_encode(uint32_t c, char *out)
{
	if (c < 0x80) {
		out[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		out[0] = (char)(0xC0 | (c >> 6));
		out[1] = (char)(0x80 | (c & 0x3F));
		return 2;
	}
	if (c < 0x10000) {
		out[0] = (char)(0xE0 | (c >> 12));
		out[1] = (char)(0x80 | ((c >> 6) & 0x3F));
		out[2] = (char)(0x80 | (c & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | (c >> 18));
	out[1] = (char)(0x80 | ((c >> 12) & 0x3F));
	out[2] = (char)(0x80 | ((c >> 6) & 0x3F));
	out[3] = (char)(0x80 | (c & 0x3F));
	return 4;
}

static unsigned ccc_of(uint32_t c)
{
	if (c >= 0x110000)
		return 0;
	return rvi_ucd_ccc_stage2[rvi_ucd_ccc_stage1[c >> 8]][c & 0xFF];
}

bool rvi_nfc_needed(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		uint32_t c;
		i += rvi_utf8_decode(s + i, n - i, &c);
		if (rvi_ucd_flags(c) & RVI_U_NFC)
			return true;
	}
	return false;
}

static const rvi_ucd_decomp *find_decomp(uint32_t c)
{
	size_t lo = 0, hi = rvi_ucd_n_decomps;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (rvi_ucd_decomps[mid].cp < c)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < rvi_ucd_n_decomps && rvi_ucd_decomps[lo].cp == c ? &rvi_ucd_decomps[lo] : NULL;
}

/* The primary composite of (a, b), or 0 when there is none. */
static uint32_t compose(uint32_t a, uint32_t b)
{
	if (a >= LBASE && a < LBASE + LCOUNT && b >= VBASE && b < VBASE + VCOUNT)
		return SBASE + ((a - LBASE) * VCOUNT + (b - VBASE)) * TCOUNT;
	if (a >= SBASE && a < SBASE + SCOUNT && (a - SBASE) % TCOUNT == 0 && b > TBASE &&
	    b < TBASE + TCOUNT)
		return a + (b - TBASE);
	size_t lo = 0, hi = rvi_ucd_n_comps;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const rvi_ucd_comp *e = &rvi_ucd_comps[mid];
		if (e->first < a || (e->first == a && e->second < b))
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < rvi_ucd_n_comps && rvi_ucd_comps[lo].first == a && rvi_ucd_comps[lo].second == b)
		return rvi_ucd_comps[lo].composite;
	return 0;
}

bool rvi_nfc(const unsigned char *s, size_t n, char **out, size_t *out_len)
{
	/* A code point decomposes into at most 4 (Hangul 3, table entries up
	 * to 4), and every input byte is at most one code point. */
	uint32_t *d = malloc((4 * n + 1) * sizeof(*d));
	if (!d)
		return false;
	size_t nd = 0;
	for (size_t i = 0; i < n;) {
		uint32_t c;
		size_t l = rvi_utf8_decode(s + i, n - i, &c);
		if (c == INVALID_CP) {
			d[nd++] = RAW_BYTE | s[i];
		} else if (c >= SBASE && c < SBASE + SCOUNT) {
			uint32_t si = c - SBASE;
			d[nd++] = LBASE + si / NCOUNT;
			d[nd++] = VBASE + (si % NCOUNT) / TCOUNT;
			if (si % TCOUNT)
				d[nd++] = TBASE + si % TCOUNT;
		} else {
			const rvi_ucd_decomp *e =
			    (rvi_ucd_flags(c) & RVI_U_NFC) ? find_decomp(c) : NULL;
			if (e) {
				for (unsigned k = 0; k < e->len; k++)
					d[nd++] = rvi_ucd_decomp_pool[e->off + k];
			} else {
				d[nd++] = c;
			}
		}
		i += l;
	}
	/* Canonical ordering: a stable insertion sort of each run of marks. */
	for (size_t i = 1; i < nd; i++) {
		unsigned cc = ccc_of(d[i]);
		if (cc == 0)
			continue;
		uint32_t c = d[i];
		size_t j = i;
		while (j > 0 && ccc_of(d[j - 1]) > cc) {
			d[j] = d[j - 1];
			j--;
		}
		d[j] = c;
	}
	/* Canonical composition: a mark composes with the last starter unless
	 * a mark of the same or higher class (or a starter) stands between. */
	size_t nc = 0;
	if (nd > 0) {
		size_t starter = 0;
		unsigned last = ccc_of(d[0]) ? 256 : 0;
		nc = 1;
		for (size_t i = 1; i < nd; i++) {
			uint32_t c = d[i];
			unsigned cc = ccc_of(c);
			uint32_t comp =
			    d[starter] < 0x110000 && c < 0x110000 ? compose(d[starter], c) : 0;
			if (comp && (last < cc || last == 0)) {
				d[starter] = comp;
				continue;
			}
			if (cc == 0)
				starter = nc;
			last = cc;
			d[nc++] = c;
		}
	}
	char *o = malloc(4 * nc + 1);
	if (!o) {
		free(d);
		return false;
	}
	size_t ol = 0;
	for (size_t i = 0; i < nc; i++) {
		if (d[i] & RAW_BYTE)
			o[ol++] = (char)(d[i] & 0xFF);
		else
			ol += rvi_utf8_encode(d[i], o + ol);
	}
	free(d);
	*out = o;
	*out_len = ol;
	return true;
}
