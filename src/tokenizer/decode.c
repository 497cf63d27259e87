/* decode.c: ids back to text (see tokenizer.h). Every token's bytes were
 * computed at load (vocab.c), so this file only runs them through a small
 * streaming UTF-8 validator: a character split over several tokens comes
 * out whole and anything invalid becomes U+FFFD. */
#include "src/tokenizer/vocab.h"

#include <string.h>

/* Length of the sequence a lead byte starts; 0 if it cannot start one
 * (continuation bytes, C0/C1 overlongs, F5..FF). */
static int utf8_lead_len(unsigned char c)
{
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		return 2;
	if (c >= 0xE0 && c <= 0xEF)
		return 3;
	if (c >= 0xF0 && c <= 0xF4)
		return 4;
	return 0;
}

/* Whether c may be byte number pos (1..3) of a sequence led by lead; the
 * second-byte ranges exclude overlongs, surrogates and values > U+10FFFF. */
static bool utf8_cont_ok(unsigned char lead, int pos, unsigned char c)
{
	if ((c & 0xC0) != 0x80)
		return false;
	if (pos == 1) {
		if (lead == 0xE0)
			return c >= 0xA0;
		if (lead == 0xED)
			return c <= 0x9F;
		if (lead == 0xF0)
			return c >= 0x90;
		if (lead == 0xF4)
			return c <= 0x8F;
	}
	return true;
}

/* Feeds one byte through the UTF-8 checker with state (p, np); writes what
 * becomes final to out + *pos (out NULL: only counts). A sequence that
 * turns out invalid is replaced by one U+FFFD per maximal invalid subpart
 * (the Unicode recommendation), then the byte that broke it starts over. */
static void utf8_feed(unsigned char *p, int *np, unsigned char c, char *out, size_t *pos)
{
	static const char fffd[3] = {'\xef', '\xbf', '\xbd'};
	for (;;) {
		if (*np == 0) {
			int l = utf8_lead_len(c);
			if (l == 1) {
				if (out)
					out[*pos] = (char)c;
				*pos += 1;
			} else if (l == 0) {
				if (out)
					memcpy(out + *pos, fffd, 3);
				*pos += 3;
			} else {
				p[0] = c;
				*np = 1;
			}
			return;
		}
		if (utf8_cont_ok(p[0], *np, c)) {
			p[(*np)++] = c;
			if (*np == utf8_lead_len(p[0])) {
				if (out)
					memcpy(out + *pos, p, (size_t)*np);
				*pos += (size_t)*np;
				*np = 0;
			}
			return;
		}
		if (out)
			memcpy(out + *pos, fffd, 3);
		*pos += 3;
		*np = 0;
	}
}

/* Whether s[0..n) is complete, valid UTF-8: such a piece, pushed with
 * nothing pending, comes out unchanged. */
bool rvi_utf8_whole(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		int l = utf8_lead_len(s[i]);
		if (l == 0 || (size_t)l > n - i)
			return false;
		for (int k = 1; k < l; k++)
			if (!utf8_cont_ok(s[i], k, s[i + k]))
				return false;
		i += (size_t)l;
	}
	return true;
}

/* Runs the piece of id through the checker; returns the bytes produced. */
static size_t detok_run(const rvi_tokenizer *t, int32_t id, unsigned char *p, int *np, char *out)
{
	size_t pos = 0;
	const unsigned char *s = (const unsigned char *)t->piece_arena + t->piece_off[id];
	for (uint32_t i = 0; i < t->piece_len[id]; i++)
		utf8_feed(p, np, s[i], out, &pos);
	return pos;
}

void rvi_detok_init(rvi_detok *d, const rvi_tokenizer *t)
{
	memset(d, 0, sizeof(*d));
	d->tok = t;
}

int64_t rvi_detok_push(rvi_detok *d, int32_t id, char *out, size_t cap)
{
	const rvi_tokenizer *t = d->tok;
	if (id < 0 || id >= t->n_vocab)
		return -1;
	/* Most pieces are whole characters: copied as they are. */
	if (d->n_pending == 0 && t->piece_whole[id]) {
		size_t n = t->piece_len[id];
		if (n > cap)
			return -1;
		memcpy(out, t->piece_arena + t->piece_off[id], n);
		return (int64_t)n;
	}
	/* Dry run on a copy of the state first, so a short buffer is refused
	 * before anything is written or the state moves. */
	unsigned char p[8];
	int np = d->n_pending;
	memcpy(p, d->pending, sizeof(p));
	size_t need = detok_run(t, id, p, &np, NULL);
	if (need > cap)
		return -1;
	return (int64_t)detok_run(t, id, d->pending, &d->n_pending, out);
}

int64_t rvi_detok_flush(rvi_detok *d, char *out, size_t cap)
{
	if (d->n_pending == 0)
		return 0;
	if (cap < 3)
		return -1;
	memcpy(out, "\xef\xbf\xbd", 3);
	d->n_pending = 0;
	return 3;
}

int64_t rvi_token_piece(const rvi_tokenizer *t, int32_t id, char *out, size_t cap)
{
	if (id < 0 || id >= t->n_vocab)
		return -1;
	size_t n = t->piece_len[id];
	if (!out)
		return (int64_t)n;
	if (n > cap)
		return -1;
	if (n)
		memcpy(out, t->piece_arena + t->piece_off[id], n);
	return (int64_t)n;
}
