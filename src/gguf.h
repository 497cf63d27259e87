/* gguf.h: read-only view of a GGUF v2/v3 file (metadata and tensor table).
 *
 * The file is mmapped; keys, strings and tensor data point into the mapping
 * and nothing that can be mapped is copied. Every count, length, dimension
 * product, offset and size is checked against the file before it is used.
 * This module knows the container format only: what the keys mean belongs
 * to the model loaders (models/), what a tensor type means to tensor.h. */
#ifndef RLAIFV_GGUF_H
#define RLAIFV_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "src/tensor.h"
#include "src/util.h"

/* Limits enforced on every file. The spec allows keys up to 65535 bytes, but
 * real keys are dotted identifiers of a few dozen bytes; tensor names in ggml
 * are at most 64. Alignments beyond 1 MiB only serve to make us map padding. */
#define RVI_GGUF_MAX_KEY           1024
#define RVI_GGUF_MAX_NAME          256
#define RVI_GGUF_MAX_DIMS          4
#define RVI_GGUF_DEFAULT_ALIGNMENT 32
#define RVI_GGUF_MAX_ALIGNMENT     (1u << 20)

/* Metadata value types, numbered as the GGUF spec numbers them. */
enum rvi_gguf_type {
	RVI_GGUF_UINT8 = 0,
	RVI_GGUF_INT8 = 1,
	RVI_GGUF_UINT16 = 2,
	RVI_GGUF_INT16 = 3,
	RVI_GGUF_UINT32 = 4,
	RVI_GGUF_INT32 = 5,
	RVI_GGUF_FLOAT32 = 6,
	RVI_GGUF_BOOL = 7,
	RVI_GGUF_STRING = 8,
	RVI_GGUF_ARRAY = 9,
	RVI_GGUF_UINT64 = 10,
	RVI_GGUF_INT64 = 11,
	RVI_GGUF_FLOAT64 = 12,
	RVI_GGUF_TYPE_COUNT
};

/* A string inside the mapping: not NUL-terminated, print with "%.*s". */
typedef struct rvi_str {
	const char *ptr;
	uint64_t len;
} rvi_str;

typedef struct rvi_gguf_kv {
	rvi_str key;
	enum rvi_gguf_type type;
	union {
		uint64_t u64; /* UINT8/16/32/64 and BOOL (0 or 1) */
		int64_t i64;  /* INT8/16/32/64 */
		double f64;   /* FLOAT32/64 */
		rvi_str str;  /* STRING */
	} v;
	/* ARRAY only: element type (never ARRAY: nested arrays are rejected),
	 * count, and for fixed-size elements the raw little-endian bytes in the
	 * mapping (unaligned: read them with the rvi_gguf_arr_* accessors). For
	 * STRING arrays, strs[i] is element i (allocated, pointing into the map). */
	enum rvi_gguf_type arr_type;
	uint64_t arr_n;
	const uint8_t *arr_data;
	rvi_str *strs;
} rvi_gguf_kv;

typedef struct rvi_gguf_tensor {
	rvi_str name;
	enum rvi_type type;
	int n_dims;
	int64_t ne[4];    /* ne[0] is the contiguous (row) dimension; unused dims are 1 */
	uint64_t nelem;   /* product of ne */
	uint64_t nbytes;  /* bytes of data, from the type's block size */
	uint64_t offset;  /* from the start of the data section */
	const void *data; /* inside the mapping, aligned to general.alignment */
} rvi_gguf_tensor;

/* What tells one file from another without reading it: a file whose
 * identity is unchanged is taken to hold the same bytes (ctime moves on
 * every write and cannot be set back, unlike mtime). */
typedef struct rvi_file_identity {
	uint64_t dev, ino, size;
	int64_t mtime_ns, ctime_ns;
} rvi_file_identity;

typedef struct rvi_gguf {
	char *path;          /* for messages */
	const uint8_t *base; /* the mapped file (or caller's buffer) */
	uint64_t size;
	bool mapped;                /* base came from mmap and must be unmapped */
	rvi_file_identity identity; /* of the mapped file; zero for a buffer */
	uint32_t version;
	uint64_t alignment;
	uint64_t data_offset; /* start of the tensor data section */
	uint64_t n_kv;
	rvi_gguf_kv *kv;
	uint64_t n_tensors;
	rvi_gguf_tensor *tensors;
} rvi_gguf;

/* Opens and validates path. On failure returns RV_ERR_IO (cannot open/read),
 * RV_ERR_MODEL (malformed) or RV_ERR_UNSUPPORTED (e.g. a tensor type we do
 * not implement: "unsupported tensor type Q2_K (10) in tensor blk.0.ffn_up.weight"),
 * with a message naming the file and the key or tensor at fault. */
int rvi_gguf_open(rvi_gguf **out, const char *path, rvi_err *err);

/* Same checks on a caller-owned buffer (kept, not copied; used by fuzzers). */
int rvi_gguf_open_memory(rvi_gguf **out, const void *data, size_t size, const char *name,
                         rvi_err *err);

void rvi_gguf_close(rvi_gguf *g);

/* Lookup by exact key / tensor name; NULL when absent. */
const rvi_gguf_kv *rvi_gguf_find(const rvi_gguf *g, const char *key);
const rvi_gguf_tensor *rvi_gguf_find_tensor(const rvi_gguf *g, const char *name);

/* Typed getters. Each returns RV_OK and sets *out; when the key is absent it
 * returns RV_OK and leaves *out unchanged if !required, else RV_ERR_MODEL
 * ("missing key llama.block_count in FILE"). A key of an incompatible type is
 * RV_ERR_MODEL naming key and both types. Integer getters accept any integer
 * type whose value fits; float getters accept FLOAT32/FLOAT64. */
int rvi_gguf_get_u32(const rvi_gguf *g, const char *key, bool required, uint32_t *out,
                     rvi_err *err);
int rvi_gguf_get_i64(const rvi_gguf *g, const char *key, bool required, int64_t *out, rvi_err *err);
int rvi_gguf_get_f32(const rvi_gguf *g, const char *key, bool required, float *out, rvi_err *err);
int rvi_gguf_get_bool(const rvi_gguf *g, const char *key, bool required, bool *out, rvi_err *err);
int rvi_gguf_get_str(const rvi_gguf *g, const char *key, bool required, rvi_str *out, rvi_err *err);
/* An array key with its element type checked (elem_type, or any integer
 * type when elem_type is RVI_GGUF_INT64); *out is NULL when absent and not required. */
int rvi_gguf_get_arr(const rvi_gguf *g, const char *key, bool required,
                     enum rvi_gguf_type elem_type, const rvi_gguf_kv **out, rvi_err *err);

/* Element i (< arr_n) of a fixed-size numeric array, converted. */
double rvi_gguf_arr_f64(const rvi_gguf_kv *kv, uint64_t i);
int64_t rvi_gguf_arr_i64(const rvi_gguf_kv *kv, uint64_t i);

/* True when s equals the NUL-terminated c. */
bool rvi_str_eq(rvi_str s, const char *c);

const char *rvi_gguf_type_name(enum rvi_gguf_type t);

#endif
