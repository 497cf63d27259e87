/* gguf_writer.h: the small GGUF v3 writer rlaifv-bench makes its random-weight
 * models with, and the random weight generators it shares with the kernel
 * micro-benchmark. Metadata is collected in memory; tensor data is generated
 * while the file is written, a few MiB at a time, so a 4 GB model never
 * needs 4 GB of memory. Writes only what the runtime's reader accepts; it is
 * not a general GGUF library (no reading, no editing). */
#ifndef RLAIFV_BENCH_GGUF_H
#define RLAIFV_BENCH_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "src/tensor.h"
#include "src/util.h"

/* What a tensor's bytes are. */
typedef enum rvb_fill {
	RVB_FILL_RANDOM, /* weights of the tensor's type, about uniform, std ~0.02 */
	RVB_FILL_ONES,   /* norm scales (F32 only) */
	RVB_FILL_ZEROS,  /* biases */
} rvb_fill;

typedef struct rvb_gguf_tensor {
	char name[64];
	int n_dims;
	int64_t ne[4];
	enum rvi_type type;
	rvb_fill fill;
	uint64_t nbytes;
	uint64_t offset; /* from the start of the data section */
} rvb_gguf_tensor;

typedef struct rvb_gguf_writer {
	uint8_t *kv; /* the serialized key/value pairs */
	size_t kv_len, kv_cap;
	uint64_t n_kv;
	rvb_gguf_tensor *tensors;
	uint64_t n_tensors, cap_tensors;
	uint64_t data_size; /* bytes of the data section so far */
	bool oom;           /* an append failed: rvb_gguf_write refuses */
} rvb_gguf_writer;

void rvb_gguf_init(rvb_gguf_writer *w);
void rvb_gguf_free(rvb_gguf_writer *w);

/* Metadata, in the order written. Failures are remembered (w->oom). */
void rvb_gguf_str(rvb_gguf_writer *w, const char *key, const char *value);
void rvb_gguf_u32(rvb_gguf_writer *w, const char *key, uint32_t value);
void rvb_gguf_i32(rvb_gguf_writer *w, const char *key, int32_t value);
void rvb_gguf_f32(rvb_gguf_writer *w, const char *key, float value);
void rvb_gguf_bool(rvb_gguf_writer *w, const char *key, bool value);
void rvb_gguf_arr_str(rvb_gguf_writer *w, const char *key, const char *const *values, uint64_t n);
void rvb_gguf_arr_f32(rvb_gguf_writer *w, const char *key, const float *values, uint64_t n);
void rvb_gguf_arr_i32(rvb_gguf_writer *w, const char *key, const int32_t *values, uint64_t n);

/* A tensor of shape ne[0..n_dims) (ne[0] contiguous); ne[0] must be a
 * multiple of the type's block size. */
void rvb_gguf_tensor_add(rvb_gguf_writer *w, const char *name, int n_dims, const int64_t *ne,
                         enum rvi_type type, rvb_fill fill);

/* Bytes the file will have. */
uint64_t rvb_gguf_file_size(const rvb_gguf_writer *w);

/* Writes the file to path (created or truncated), tensor data generated
 * from seed; fsyncs it so that write-back does not disturb what is measured
 * next. On failure the partial file is removed. */
int rvb_gguf_write(const rvb_gguf_writer *w, const char *path, uint64_t seed, rvi_err *err);

/* Writes w to path in dir (models.c) unless a file of exactly its size is
 * there already, checking the free space first; *generated says whether
 * it was written. */
int rvb_materialize(const rvb_gguf_writer *w, const char *dir, const char *path, uint64_t seed,
                    bool *generated, rvi_err *err);

/* n elements (a multiple of the block size) of random weights of type t at
 * dst: random quants with block scales chosen so that the weights have a
 * standard deviation of roughly 0.02 (a trained model's), which keeps a
 * normed decoder's activations finite over any number of layers. */
void rvb_fill_random(enum rvi_type t, void *dst, uint64_t n, uint64_t *rng);

/* splitmix64: fast, seedable, good enough for filler bytes. */
uint64_t rvb_rand(uint64_t *state);

#endif
