/* sha256.h: SHA-256 (FIPS 180-4), one-shot and incremental. The runtime
 * uses it to name image-embedding cache entries (embcache.h) from data that
 * arrives in pieces (a model's header and tensor table, an image file), and
 * the tests use it to fingerprint reference outputs. Not constant-time: it
 * hashes public data, never secrets. No global state; a context belongs to
 * its caller, so separate contexts may be used from separate threads. */
#ifndef RLAIFV_SHA256_H
#define RLAIFV_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define RVI_SHA256_BYTES 32

/* Running state of one hash. Treat the fields as private. */
typedef struct rvi_sha256_ctx {
	uint32_t h[8];    /* chaining value */
	uint64_t n_bytes; /* message bytes fed so far */
	uint8_t buf[64];  /* the incomplete block */
	size_t buf_n;     /* bytes held in buf (< 64) */
} rvi_sha256_ctx;

void rvi_sha256_init(rvi_sha256_ctx *c);
/* Appends n bytes; data may be NULL when n is 0. Any split of a message
 * gives the same digest as hashing it at once. */
void rvi_sha256_update(rvi_sha256_ctx *c, const void *data, size_t n);
/* Writes the digest. c is spent afterwards: rvi_sha256_init it to reuse. */
void rvi_sha256_final(rvi_sha256_ctx *c, uint8_t out[RVI_SHA256_BYTES]);

/* The digest of n bytes at data in one call. */
void rvi_sha256(const void *data, size_t n, uint8_t out[RVI_SHA256_BYTES]);

/* A digest as 64 lowercase hex digits and a NUL. */
void rvi_sha256_hex(const uint8_t digest[RVI_SHA256_BYTES], char hex[2 * RVI_SHA256_BYTES + 1]);

#endif
