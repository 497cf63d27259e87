/* sha256.c: SHA-256 as specified in FIPS 180-4 (see sha256.h). Written
 * for clarity over speed: the runtime hashes a few megabytes per image, far
 * below what the vision encoder costs. */
#include "src/sha256.h"

#include <string.h>

/* The first 32 bits of the fractional parts of the cube roots of the first
 * 64 primes (FIPS 180-4, 4.2.2). */
static const uint32_t sha_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static uint32_t ror(uint32_t x, int n)
{
	return (x >> n) | (x << (32 - n));
}

/* One application of the compression function to a 64-byte block. */
static void sha_block(uint32_t h[8], const uint8_t *p)
{
	uint32_t w[64];
	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		       (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (int i = 16; i < 64; i++) {
		uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
		uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
	for (int i = 0; i < 64; i++) {
		uint32_t t1 = hh + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) +
		              sha_k[i] + w[i];
		uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
		hh = g;
		g = f;
		f = e;
		e = d + t1;
		d = c;
		c = b;
		b = a;
		a = t1 + t2;
	}
	h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
}

void rvi_sha256_init(rvi_sha256_ctx *c)
{
	/* FIPS 180-4, 5.3.3: square roots of the first 8 primes. */
	static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
	                               0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
	memcpy(c->h, iv, sizeof(iv));
	c->n_bytes = 0;
	c->buf_n = 0;
}

void rvi_sha256_update(rvi_sha256_ctx *c, const void *data, size_t n)
{
	const uint8_t *p = data;
	if (n == 0)
		return; /* p may be NULL; memcpy from NULL would be undefined */
	c->n_bytes += n;
	if (c->buf_n) {
		/* Complete the pending block first so whole blocks below are
		 * hashed straight from the caller's memory. */
		size_t take = 64 - c->buf_n < n ? 64 - c->buf_n : n;
		memcpy(c->buf + c->buf_n, p, take);
		c->buf_n += take;
		p += take;
		n -= take;
		if (c->buf_n < 64)
			return;
		sha_block(c->h, c->buf);
		c->buf_n = 0;
	}
	for (; n >= 64; p += 64, n -= 64)
		sha_block(c->h, p);
	memcpy(c->buf, p, n);
	c->buf_n = n;
}

void rvi_sha256_final(rvi_sha256_ctx *c, uint8_t out[RVI_SHA256_BYTES])
{
	/* Padding (5.1.1): a 1 bit, zeros up to 56 mod 64, then the message
	 * length in bits as a big-endian 64-bit number. When fewer than 9 bytes
	 * are left in the block the padding spills into one more block. */
	uint64_t bits = c->n_bytes * 8;
	c->buf[c->buf_n++] = 0x80;
	if (c->buf_n > 56) {
		memset(c->buf + c->buf_n, 0, 64 - c->buf_n);
		sha_block(c->h, c->buf);
		c->buf_n = 0;
	}
	memset(c->buf + c->buf_n, 0, 56 - c->buf_n);
	for (int i = 0; i < 8; i++)
		c->buf[63 - i] = (uint8_t)(bits >> (8 * i));
	sha_block(c->h, c->buf);
	c->buf_n = 0;
	for (int i = 0; i < 8; i++) {
		out[4 * i] = (uint8_t)(c->h[i] >> 24);
		out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
		out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
		out[4 * i + 3] = (uint8_t)c->h[i];
	}
}

void rvi_sha256(const void *data, size_t n, uint8_t out[RVI_SHA256_BYTES])
{
	rvi_sha256_ctx c;
	rvi_sha256_init(&c);
	rvi_sha256_update(&c, data, n);
	rvi_sha256_final(&c, out);
}

void rvi_sha256_hex(const uint8_t digest[RVI_SHA256_BYTES], char hex[2 * RVI_SHA256_BYTES + 1])
{
	static const char digits[] = "0123456789abcdef";
	for (int i = 0; i < RVI_SHA256_BYTES; i++) {
		hex[2 * i] = digits[digest[i] >> 4];
		hex[2 * i + 1] = digits[digest[i] & 15];
	}
	hex[2 * RVI_SHA256_BYTES] = 0;
}
