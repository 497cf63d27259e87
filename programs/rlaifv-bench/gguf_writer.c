/* gguf_writer.c: GGUF v3 writer and random weight generators of rlaifv-bench
 * (see gguf_writer.h). The layout written is the one src/gguf.c reads:
 * header, key/value pairs, tensor infos, padding to the default alignment
 * (32), then each tensor's data at an aligned offset. */
#include "programs/rlaifv-bench/gguf_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ALIGNMENT   32
#define CHUNK_BYTES (8u << 20)

/* GGUF metadata value types (the spec's numbers). */
enum { T_U32 = 4, T_I32 = 5, T_F32 = 6, T_BOOL = 7, T_STR = 8, T_ARR = 9 };

uint64_t rvb_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void rvb_gguf_init(rvb_gguf_writer *w)
{
	memset(w, 0, sizeof(*w));
}

void rvb_gguf_free(rvb_gguf_writer *w)
{
	free(w->kv);
	free(w->tensors);
	memset(w, 0, sizeof(*w));
}

static void put(rvb_gguf_writer *w, const void *p, size_t n)
{
	if (w->oom)
		return;
	if (w->kv_len + n > w->kv_cap) {
		size_t cap = w->kv_cap ? w->kv_cap : 4096;
		while (cap < w->kv_len + n)
			cap *= 2;
		uint8_t *grown = realloc(w->kv, cap);
		if (!grown) {
			w->oom = true;
			return;
		}
		w->kv = grown;
		w->kv_cap = cap;
	}
	memcpy(w->kv + w->kv_len, p, n);
	w->kv_len += n;
}

/* Little-endian scalars (configure refuses big-endian hosts, so the
 * in-memory bytes are already the file's). */
static void put_u32(rvb_gguf_writer *w, uint32_t v)
{
	put(w, &v, 4);
}

static void put_u64(rvb_gguf_writer *w, uint64_t v)
{
	put(w, &v, 8);
}

static void put_string(rvb_gguf_writer *w, const char *s)
{
	const size_t n = strlen(s);
	put_u64(w, n);
	put(w, s, n);
}

static void put_key(rvb_gguf_writer *w, const char *key, uint32_t type)
{
	put_string(w, key);
	put_u32(w, type);
	w->n_kv++;
}

void rvb_gguf_str(rvb_gguf_writer *w, const char *key, const char *value)
{
	put_key(w, key, T_STR);
	put_string(w, value);
}

void rvb_gguf_u32(rvb_gguf_writer *w, const char *key, uint32_t value)
{
	put_key(w, key, T_U32);
	put_u32(w, value);
}

void rvb_gguf_i32(rvb_gguf_writer *w, const char *key, int32_t value)
{
	put_key(w, key, T_I32);
	put_u32(w, (uint32_t)value);
}

void rvb_gguf_f32(rvb_gguf_writer *w, const char *key, float value)
{
	put_key(w, key, T_F32);
	put(w, &value, 4);
}

void rvb_gguf_bool(rvb_gguf_writer *w, const char *key, bool value)
{
	const uint8_t b = value;
	put_key(w, key, T_BOOL);
	put(w, &b, 1);
}

void rvb_gguf_arr_str(rvb_gguf_writer *w, const char *key, const char *const *values, uint64_t n)
{
	put_key(w, key, T_ARR);
	put_u32(w, T_STR);
	put_u64(w, n);
	for (uint64_t i = 0; i < n; i++)
		put_string(w, values[i]);
}

void rvb_gguf_arr_f32(rvb_gguf_writer *w, const char *key, const float *values, uint64_t n)
{
	put_key(w, key, T_ARR);
	put_u32(w, T_F32);
	put_u64(w, n);
	put(w, values, (size_t)n * 4);
}

void rvb_gguf_arr_i32(rvb_gguf_writer *w, const char *key, const int32_t *values, uint64_t n)
{
	put_key(w, key, T_ARR);
	put_u32(w, T_I32);
	put_u64(w, n);
	put(w, values, (size_t)n * 4);
}

static uint64_t align_up(uint64_t x)
{
	return (x + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
}

void rvb_gguf_tensor_add(rvb_gguf_writer *w, const char *name, int n_dims, const int64_t *ne,
                         enum rvi_type type, rvb_fill fill)
{
	if (w->oom)
		return;
	if (w->n_tensors == w->cap_tensors) {
		uint64_t cap = w->cap_tensors ? 2 * w->cap_tensors : 64;
		rvb_gguf_tensor *grown = realloc(w->tensors, (size_t)cap * sizeof(*grown));
		if (!grown) {
			w->oom = true;
			return;
		}
		w->tensors = grown;
		w->cap_tensors = cap;
	}
	rvb_gguf_tensor *t = &w->tensors[w->n_tensors++];
	memset(t, 0, sizeof(*t));
	snprintf(t->name, sizeof(t->name), "%s", name);
	t->n_dims = n_dims;
	uint64_t rows = 1;
	for (int i = 0; i < 4; i++) {
		t->ne[i] = i < n_dims ? ne[i] : 1;
		if (i > 0)
			rows *= (uint64_t)t->ne[i];
	}
	t->type = type;
	t->fill = fill;
	t->nbytes = (uint64_t)rvi_row_size(type, t->ne[0]) * rows;
	t->offset = align_up(w->data_size);
	w->data_size = t->offset + t->nbytes;
}

/* Bytes before the data section: header, metadata, tensor infos. */
static uint64_t header_size(const rvb_gguf_writer *w)
{
	uint64_t n = 4 + 4 + 8 + 8 + w->kv_len;
	for (uint64_t i = 0; i < w->n_tensors; i++)
		n +=
		    8 + strlen(w->tensors[i].name) + 4 + 8 * (uint64_t)w->tensors[i].n_dims + 4 + 8;
	return n;
}

uint64_t rvb_gguf_file_size(const rvb_gguf_writer *w)
{
	return align_up(header_size(w)) + w->data_size;
}

/* ---- random weights ---------------------------------------------------- */

/* Target standard deviation of a weight: about a trained model's. */
#define WEIGHT_STD 0.02f

static void random_bytes(void *dst, size_t n, uint64_t *rng)
{
	uint8_t *p = dst;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		const uint64_t r = rvb_rand(rng);
		memcpy(p + i, &r, 8);
	}
	if (i < n) {
		const uint64_t r = rvb_rand(rng);
		memcpy(p + i, &r, n - i);
	}
}

/* 256 float values, uniform over [-a, a] with standard deviation WEIGHT_STD
 * (a = std x sqrt 3): a random byte picks one, eight per random number. */
static float uniform_value(int i)
{
	return ((float)i - 127.5f) / 127.5f * WEIGHT_STD * 1.7320508f;
}

static void fill_float(enum rvi_type t, void *dst, uint64_t n, uint64_t *rng)
{
	float table[256];
	uint16_t half[256];
	for (int i = 0; i < 256; i++) {
		table[i] = uniform_value(i);
		uint32_t bits;
		memcpy(&bits, &table[i], 4);
		/* BF16 truncates: the table values need no rounding care. */
		half[i] = t == RVI_TYPE_F16 ? rvi_f32_to_f16(table[i]) : (uint16_t)(bits >> 16);
	}
	for (uint64_t i = 0; i < n; i += 8) {
		uint64_t r = rvb_rand(rng);
		for (uint64_t j = i; j < n && j < i + 8; j++, r >>= 8) {
			if (t == RVI_TYPE_F32)
				((float *)dst)[j] = table[r & 255];
			else
				((uint16_t *)dst)[j] = half[r & 255];
		}
	}
}

void rvb_fill_random(enum rvi_type t, void *dst, uint64_t n, uint64_t *rng)
{
	if (t == RVI_TYPE_F32 || t == RVI_TYPE_F16 || t == RVI_TYPE_BF16) {
		fill_float(t, dst, n, rng);
		return;
	}
	const rvi_type_traits *tr = rvi_type_traits_of((int)t);
	const uint64_t n_blocks = n / (uint64_t)tr->block_size;
	random_bytes(dst, (size_t)(n_blocks * tr->type_size), rng);
	/* Random quants, then each block's scales set so that the weights have
	 * about WEIGHT_STD: d = std / (spread of the quant values). For the
	 * K-quants, dmin = d x the mean quant, so that sub-block minimums
	 * centre the weights on zero on average. */
	switch (t) {
	case RVI_TYPE_Q8_0: { /* int8 quants: std 74 */
		const uint16_t d = rvi_f32_to_f16(WEIGHT_STD / 74.0f);
		for (uint64_t b = 0; b < n_blocks; b++)
			((rv_block_q8_0 *)dst)[b].d = d;
		break;
	}
	case RVI_TYPE_Q4_0: { /* nibble - 8: std 4.6 */
		const uint16_t d = rvi_f32_to_f16(WEIGHT_STD / 4.6f);
		for (uint64_t b = 0; b < n_blocks; b++)
			((rv_block_q4_0 *)dst)[b].d = d;
		break;
	}
	case RVI_TYPE_Q4_K: { /* 6-bit scales ~32 x nibbles (std 4.6) + min spread: ~240 */
		const uint16_t d = rvi_f32_to_f16(WEIGHT_STD / 240.0f);
		const uint16_t dmin = rvi_f32_to_f16(WEIGHT_STD / 240.0f * 7.5f);
		for (uint64_t b = 0; b < n_blocks; b++) {
			((rv_block_q4_K *)dst)[b].d = d;
			((rv_block_q4_K *)dst)[b].dmin = dmin;
		}
		break;
	}
	case RVI_TYPE_Q5_K: { /* 6-bit scales ~32 x 5-bit quants (std 9.2) + min spread */
		/* the smallest normal fp16, not a subnormal: a std of ~0.03 */
		const uint16_t d = rvi_f32_to_f16(6.2e-5f);
		const uint16_t dmin = rvi_f32_to_f16(6.2e-5f * 15.5f);
		for (uint64_t b = 0; b < n_blocks; b++) {
			((rv_block_q5_K *)dst)[b].d = d;
			((rv_block_q5_K *)dst)[b].dmin = dmin;
		}
		break;
	}
	case RVI_TYPE_Q6_K: { /* int8 scales kept in [-16, 15] (rms 9.2) x (q - 32) (std 18.5) */
		const uint16_t d = rvi_f32_to_f16(WEIGHT_STD / (9.2f * 18.5f));
		for (uint64_t b = 0; b < n_blocks; b++) {
			rv_block_q6_K *blk = &((rv_block_q6_K *)dst)[b];
			for (int i = 0; i < RV_QK_K / 16; i++)
				blk->scales[i] = (int8_t)((blk->scales[i] & 31) - 16);
			blk->d = d;
		}
		break;
	}
	default: /* no other type is written */
		break;
	}
}

/* ---- writing ------------------------------------------------------------ */

static int write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n > 0) {
		ssize_t got = write(fd, b, n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return -1;
		b += got;
		n -= (size_t)got;
	}
	return 0;
}

/* One tensor's data, generated CHUNK_BYTES at a time (whole blocks). */
static int write_tensor(int fd, const rvb_gguf_tensor *t, uint8_t *buf, uint64_t *rng)
{
	const rvi_type_traits *tr = rvi_type_traits_of((int)t->type);
	const uint64_t per_chunk =
	    CHUNK_BYTES / tr->type_size * (uint64_t)tr->block_size; /* elements */
	uint64_t left = t->nbytes / tr->type_size * (uint64_t)tr->block_size;
	while (left > 0) {
		const uint64_t n = left < per_chunk ? left : per_chunk;
		const size_t bytes = (size_t)(n / (uint64_t)tr->block_size * tr->type_size);
		if (t->fill == RVB_FILL_RANDOM) {
			rvb_fill_random(t->type, buf, n, rng);
		} else if (t->fill == RVB_FILL_ONES && t->type == RVI_TYPE_F32) {
			for (uint64_t i = 0; i < n; i++)
				((float *)(void *)buf)[i] = 1.0f;
		} else {
			memset(buf, 0, bytes);
		}
		if (write_all(fd, buf, bytes) != 0)
			return -1;
		left -= n;
	}
	return 0;
}

int rvb_gguf_write(const rvb_gguf_writer *w, const char *path, uint64_t seed, rvi_err *err)
{
	if (w->oom)
		return rvi_errorf(err, RV_ERR_NOMEM, "%s: out of memory building the metadata",
		                  path);
	uint8_t *buf = malloc(CHUNK_BYTES);
	if (!buf)
		return rvi_errorf(err, RV_ERR_NOMEM, "out of memory");
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		free(buf);
		return rvi_errorf(err, RV_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
	}

	/* header, metadata and tensor infos, built in buf (they are far
	 * smaller than a chunk for these models) */
	rvb_gguf_writer h;
	rvb_gguf_init(&h);
	put(&h, "GGUF", 4);
	put_u32(&h, 3);
	put_u64(&h, w->n_tensors);
	put_u64(&h, w->n_kv);
	put(&h, w->kv, w->kv_len);
	for (uint64_t i = 0; i < w->n_tensors; i++) {
		const rvb_gguf_tensor *t = &w->tensors[i];
		put_string(&h, t->name);
		put_u32(&h, (uint32_t)t->n_dims);
		for (int d = 0; d < t->n_dims; d++)
			put_u64(&h, (uint64_t)t->ne[d]);
		put_u32(&h, (uint32_t)t->type);
		put_u64(&h, t->offset);
	}
	static const uint8_t zeros[ALIGNMENT];
	put(&h, zeros, (size_t)(align_up(h.kv_len) - h.kv_len));
	int rc = h.oom ? -1 : write_all(fd, h.kv, h.kv_len);
	rvb_gguf_free(&h);

	uint64_t rng = seed, pos = 0;
	for (uint64_t i = 0; rc == 0 && i < w->n_tensors; i++) {
		const rvb_gguf_tensor *t = &w->tensors[i];
		if (t->offset > pos)
			rc = write_all(fd, zeros, (size_t)(t->offset - pos));
		if (rc == 0)
			rc = write_tensor(fd, t, buf, &rng);
		pos = t->offset + t->nbytes;
	}
	/* the first failure's errno is the one worth reporting (ENOSPC...) */
	int e = rc != 0 ? errno : 0;
	if (rc == 0 && fsync(fd) != 0)
		rc = -1, e = errno;
	if (close(fd) != 0 && rc == 0)
		rc = -1, e = errno;
	free(buf);
	if (rc != 0) {
		unlink(path);
		return rvi_errorf(err, RV_ERR_IO, "%s: write failed: %s", path,
		                  e ? strerror(e) : "short write");
	}
	return RV_OK;
}
