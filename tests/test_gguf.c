/* test_gguf.c: the GGUF reader against files crafted here byte by byte (one
 * valid file with every value type, then one malformed variant per check the
 * reader makes), against the real fixtures, and against truncated and
 * randomly corrupted copies, which must fail cleanly and never crash.
 *
 * Every crafted buffer is handed to the reader in an allocation of exactly
 * its size, so under ASan/valgrind a single byte read past the end is caught. */
#include "src/gguf.h"
#include "tests/testutil.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NAME "crafted.gguf"

/* ---- a tiny GGUF writer -------------------------------------------------- */

static void w_u8(tu_buf *b, uint8_t v)
{
	tu_put_le(b, v, 1);
}

static void w_u16(tu_buf *b, uint16_t v)
{
	tu_put_le(b, v, 2);
}

static void w_u32(tu_buf *b, uint32_t v)
{
	tu_put_le(b, v, 4);
}

static void w_u64(tu_buf *b, uint64_t v)
{
	tu_put_le(b, v, 8);
}

static void w_f32(tu_buf *b, float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	w_u32(b, u);
}

static void w_f64(tu_buf *b, double d)
{
	uint64_t u;
	memcpy(&u, &d, 8);
	w_u64(b, u);
}

static void w_strn(tu_buf *b, const char *s, size_t n)
{
	w_u64(b, n);
	tu_put(b, s, n);
}

static void w_str(tu_buf *b, const char *s)
{
	w_strn(b, s, strlen(s));
}

static void w_header(tu_buf *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
	tu_put(b, "GGUF", 4);
	w_u32(b, version);
	w_u64(b, n_tensors);
	w_u64(b, n_kv);
}

static void w_key(tu_buf *b, const char *key, uint32_t type)
{
	w_str(b, key);
	w_u32(b, type);
}

static void w_kv_u32(tu_buf *b, const char *key, uint32_t v)
{
	w_key(b, key, RVI_GGUF_UINT32);
	w_u32(b, v);
}

static void w_arr(tu_buf *b, const char *key, uint32_t elem_type, uint64_t n)
{
	w_key(b, key, RVI_GGUF_ARRAY);
	w_u32(b, elem_type);
	w_u64(b, n);
}

static void w_tensor(tu_buf *b, const char *name, uint32_t n_dims, const uint64_t *ne,
                     uint32_t type, uint64_t offset)
{
	w_str(b, name);
	w_u32(b, n_dims);
	for (uint32_t i = 0; i < n_dims; i++)
		w_u64(b, ne[i]);
	w_u32(b, type);
	w_u64(b, offset);
}

static void w_zeros(tu_buf *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		w_u8(b, 0);
}

static void w_pad(tu_buf *b, size_t align)
{
	while (b->n % align)
		w_u8(b, 0);
}

static void w_reset(tu_buf *b)
{
	b->n = 0;
}

/* ---- helpers ------------------------------------------------------------- */

/* Parses an exact-size copy of data[0..n) (so overreads hit ASan). */
static int parse_copy(rvi_gguf **g, const uint8_t *data, size_t n, uint8_t **copy, rvi_err *err)
{
	*copy = malloc(n ? n : 1);
	if (!*copy) {
		fprintf(stderr, "test_gguf: out of memory\n");
		exit(1);
	}
	if (n)
		memcpy(*copy, data, n);
	return rvi_gguf_open_memory(g, *copy, n, NAME, err);
}

/* The crafted file b must be rejected with status, and the message must name
 * the file and contain each given phrase (the key, tensor or reason). */
static void expect_err(const char *what, const tu_buf *b, int status, const char *phrase1,
                       const char *phrase2)
{
	rvi_gguf *g = (rvi_gguf *)&g; /* must be reset to NULL on failure */
	rvi_err err = {0};
	uint8_t *copy;
	int rc = parse_copy(&g, b->p, b->n, &copy, &err);
	if (getenv("TEST_GGUF_VERBOSE"))
		printf("%-32s -> %d %s\n", what, rc, err.msg);
	CHECK(rc == status, "%s: status %d, want %d (message: %s)", what, rc, status, err.msg);
	CHECK(err.status == rc, "%s: err.status %d != %d", what, err.status, rc);
	if (rc == RV_OK) {
		rvi_gguf_close(g);
	} else {
		CHECK(g == NULL, "%s: *out not NULL on failure", what);
		CHECK(strncmp(err.msg, NAME ":", strlen(NAME) + 1) == 0 || strstr(err.msg, NAME),
		      "%s: message does not name the file: %s", what, err.msg);
	}
	if (phrase1)
		CHECK(strstr(err.msg, phrase1) != NULL, "%s: message '%s' lacks '%s'", what,
		      err.msg, phrase1);
	if (phrase2)
		CHECK(strstr(err.msg, phrase2) != NULL, "%s: message '%s' lacks '%s'", what,
		      err.msg, phrase2);
	free(copy);
}

static void expect_ok(const char *what, const tu_buf *b)
{
	rvi_gguf *g = NULL;
	rvi_err err = {0};
	uint8_t *copy;
	int rc = parse_copy(&g, b->p, b->n, &copy, &err);
	CHECK(rc == RV_OK && g, "%s: status %d (%s)", what, rc, err.msg);
	rvi_gguf_close(g);
	free(copy);
}

/* ---- the valid crafted file ---------------------------------------------- */

#define VALID_ALIGN 64

/* Tensor data: a byte pattern so data pointers can be checked. */
static uint8_t pattern(size_t i)
{
	return (uint8_t)(i * 7 + 3);
}

static size_t build_valid(tu_buf *b, uint32_t version)
{
	w_reset(b);
	w_header(b, version, 3, 32);
	w_key(b, "t.u8", RVI_GGUF_UINT8);
	w_u8(b, 200);
	w_key(b, "t.i8", RVI_GGUF_INT8);
	w_u8(b, (uint8_t)-100);
	w_key(b, "t.u16", RVI_GGUF_UINT16);
	w_u16(b, 60000);
	w_key(b, "t.i16", RVI_GGUF_INT16);
	w_u16(b, (uint16_t)-30000);
	w_kv_u32(b, "t.u32", 4000000000u);
	w_key(b, "t.i32", RVI_GGUF_INT32);
	w_u32(b, (uint32_t)-2000000000);
	w_key(b, "t.f32", RVI_GGUF_FLOAT32);
	w_f32(b, 1.5f);
	w_key(b, "t.bool", RVI_GGUF_BOOL);
	w_u8(b, 1);
	w_key(b, "t.str", RVI_GGUF_STRING);
	w_str(b, "hello, world");
	w_key(b, "t.u64", RVI_GGUF_UINT64);
	w_u64(b, 0xfffffffffffffff0ull);
	w_key(b, "t.i64", RVI_GGUF_INT64);
	w_u64(b, (uint64_t)-5000000000ll);
	w_key(b, "t.f64", RVI_GGUF_FLOAT64);
	w_f64(b, -2.25e300);
	w_key(b, "t.f64small", RVI_GGUF_FLOAT64);
	w_f64(b, 0.125);
	w_key(b, "t.empty_str", RVI_GGUF_STRING);
	w_str(b, "");
	w_key(b, "t.false", RVI_GGUF_BOOL);
	w_u8(b, 0);
	w_kv_u32(b, "t.small", 5);

	w_arr(b, "a.u8", RVI_GGUF_UINT8, 3);
	w_u8(b, 1), w_u8(b, 2), w_u8(b, 255);
	w_arr(b, "a.i8", RVI_GGUF_INT8, 3);
	w_u8(b, 0xff), w_u8(b, 0), w_u8(b, 127);
	w_arr(b, "a.u16", RVI_GGUF_UINT16, 2);
	w_u16(b, 65535), w_u16(b, 7);
	w_arr(b, "a.i16", RVI_GGUF_INT16, 2);
	w_u16(b, (uint16_t)-32768), w_u16(b, 32767);
	w_arr(b, "a.u32", RVI_GGUF_UINT32, 2);
	w_u32(b, 4294967295u), w_u32(b, 0);
	w_arr(b, "a.i32", RVI_GGUF_INT32, 4);
	w_u32(b, 2), w_u32(b, 3), w_u32(b, 3), w_u32(b, (uint32_t)-6);
	w_arr(b, "a.f32", RVI_GGUF_FLOAT32, 3);
	w_f32(b, 0.5f), w_f32(b, -1.25f), w_f32(b, 3e9f);
	w_arr(b, "a.bool", RVI_GGUF_BOOL, 3);
	w_u8(b, 1), w_u8(b, 0), w_u8(b, 1);
	w_arr(b, "a.u64", RVI_GGUF_UINT64, 2);
	w_u64(b, 0xffffffffffffffffull), w_u64(b, 42);
	w_arr(b, "a.i64", RVI_GGUF_INT64, 2);
	w_u64(b, (uint64_t)INT64_MIN), w_u64(b, (uint64_t)-1);
	w_arr(b, "a.f64", RVI_GGUF_FLOAT64, 2);
	w_f64(b, -0.1), w_f64(b, 1e300);
	w_arr(b, "a.str", RVI_GGUF_STRING, 3);
	w_str(b, "one"), w_str(b, ""), w_str(b, "three");
	w_arr(b, "a.empty", RVI_GGUF_INT32, 0);
	w_arr(b, "a.empty_str", RVI_GGUF_STRING, 0);
	w_kv_u32(b, "general.alignment", VALID_ALIGN);
	w_key(b, "t.utf8", RVI_GGUF_STRING);
	w_str(b, "\xe2\x96\x81"
	         "caf\xc3\xa9"); /* "▁café" */

	/* F32 [4,3] (48 B), Q8_0 [64,2] (4 blocks, 136 B), Q4_K [256,1,2,1] (2 blocks, 288 B). */
	const uint64_t ne_a[] = {4, 3}, ne_b[] = {64, 2}, ne_c[] = {256, 1, 2, 1};
	w_tensor(b, "w.f32", 2, ne_a, RVI_TYPE_F32, 0);
	w_tensor(b, "w.q8", 2, ne_b, RVI_TYPE_Q8_0, 64);
	w_tensor(b, "blk.0.w.q4k", 4, ne_c, RVI_TYPE_Q4_K, 256);
	size_t header_end = b->n;
	w_pad(b, VALID_ALIGN);
	size_t data = b->n;
	for (size_t i = 0; i < 256 + 288; i++)
		w_u8(b, pattern(i));
	(void)header_end;
	return data;
}

static void check_valid(const rvi_gguf *g, size_t data_offset, uint32_t version, const char *via)
{
	rvi_err err = {0};
	CHECK(g->version == version, "%s: version %u", via, g->version);
	CHECK(g->n_kv == 32, "%s: n_kv %llu", via, (unsigned long long)g->n_kv);
	CHECK(g->n_tensors == 3, "%s: n_tensors %llu", via, (unsigned long long)g->n_tensors);
	CHECK(g->alignment == VALID_ALIGN, "%s: alignment %llu", via,
	      (unsigned long long)g->alignment);
	CHECK(g->data_offset == data_offset, "%s: data_offset %llu, want %zu", via,
	      (unsigned long long)g->data_offset, data_offset);
	CHECK(rvi_str_eq(g->kv[0].key, "t.u8") && rvi_str_eq(g->kv[31].key, "t.utf8"),
	      "%s: KV order not kept", via);

	/* Raw values, one per type. */
	const rvi_gguf_kv *kv;
	kv = rvi_gguf_find(g, "t.u8");
	CHECK(kv && kv->type == RVI_GGUF_UINT8 && kv->v.u64 == 200, "%s: t.u8", via);
	kv = rvi_gguf_find(g, "t.i8");
	CHECK(kv && kv->type == RVI_GGUF_INT8 && kv->v.i64 == -100, "%s: t.i8", via);
	kv = rvi_gguf_find(g, "t.u16");
	CHECK(kv && kv->type == RVI_GGUF_UINT16 && kv->v.u64 == 60000, "%s: t.u16", via);
	kv = rvi_gguf_find(g, "t.i16");
	CHECK(kv && kv->type == RVI_GGUF_INT16 && kv->v.i64 == -30000, "%s: t.i16", via);
	kv = rvi_gguf_find(g, "t.u32");
	CHECK(kv && kv->type == RVI_GGUF_UINT32 && kv->v.u64 == 4000000000u, "%s: t.u32", via);
	kv = rvi_gguf_find(g, "t.i32");
	CHECK(kv && kv->type == RVI_GGUF_INT32 && kv->v.i64 == -2000000000, "%s: t.i32", via);
	kv = rvi_gguf_find(g, "t.f32");
	CHECK(kv && kv->type == RVI_GGUF_FLOAT32 && kv->v.f64 == 1.5, "%s: t.f32", via);
	kv = rvi_gguf_find(g, "t.bool");
	CHECK(kv && kv->type == RVI_GGUF_BOOL && kv->v.u64 == 1, "%s: t.bool", via);
	kv = rvi_gguf_find(g, "t.str");
	CHECK(kv && kv->type == RVI_GGUF_STRING && rvi_str_eq(kv->v.str, "hello, world"),
	      "%s: t.str", via);
	kv = rvi_gguf_find(g, "t.u64");
	CHECK(kv && kv->type == RVI_GGUF_UINT64 && kv->v.u64 == 0xfffffffffffffff0ull, "%s: t.u64",
	      via);
	kv = rvi_gguf_find(g, "t.i64");
	CHECK(kv && kv->type == RVI_GGUF_INT64 && kv->v.i64 == -5000000000ll, "%s: t.i64", via);
	kv = rvi_gguf_find(g, "t.f64");
	CHECK(kv && kv->type == RVI_GGUF_FLOAT64 && kv->v.f64 == -2.25e300, "%s: t.f64", via);
	kv = rvi_gguf_find(g, "t.empty_str");
	CHECK(kv && kv->type == RVI_GGUF_STRING && kv->v.str.len == 0 && rvi_str_eq(kv->v.str, ""),
	      "%s: t.empty_str", via);
	kv = rvi_gguf_find(g, "t.utf8");
	CHECK(kv && rvi_str_eq(kv->v.str, "\xe2\x96\x81"
	                                  "caf\xc3\xa9"),
	      "%s: t.utf8", via);
	CHECK(rvi_gguf_find(g, "t.u") == NULL && rvi_gguf_find(g, "t.u88") == NULL &&
	          rvi_gguf_find(g, "") == NULL && rvi_gguf_find(g, NULL) == NULL,
	      "%s: find matched a non-key", via);

	/* Arrays through the accessors (their data is unaligned in the file). */
	kv = rvi_gguf_find(g, "a.u8");
	CHECK(kv && kv->type == RVI_GGUF_ARRAY && kv->arr_type == RVI_GGUF_UINT8 &&
	          kv->arr_n == 3 && rvi_gguf_arr_i64(kv, 0) == 1 && rvi_gguf_arr_i64(kv, 2) == 255,
	      "%s: a.u8", via);
	kv = rvi_gguf_find(g, "a.i8");
	CHECK(kv && kv->arr_type == RVI_GGUF_INT8 && rvi_gguf_arr_i64(kv, 0) == -1 &&
	          rvi_gguf_arr_i64(kv, 2) == 127 && rvi_gguf_arr_f64(kv, 0) == -1.0,
	      "%s: a.i8", via);
	kv = rvi_gguf_find(g, "a.u16");
	CHECK(kv && kv->arr_type == RVI_GGUF_UINT16 && rvi_gguf_arr_i64(kv, 0) == 65535 &&
	          rvi_gguf_arr_i64(kv, 1) == 7,
	      "%s: a.u16", via);
	kv = rvi_gguf_find(g, "a.i16");
	CHECK(kv && kv->arr_type == RVI_GGUF_INT16 && rvi_gguf_arr_i64(kv, 0) == -32768 &&
	          rvi_gguf_arr_i64(kv, 1) == 32767,
	      "%s: a.i16", via);
	kv = rvi_gguf_find(g, "a.u32");
	CHECK(kv && kv->arr_type == RVI_GGUF_UINT32 && rvi_gguf_arr_i64(kv, 0) == 4294967295ll &&
	          rvi_gguf_arr_i64(kv, 1) == 0,
	      "%s: a.u32", via);
	kv = rvi_gguf_find(g, "a.i32");
	CHECK(kv && kv->arr_type == RVI_GGUF_INT32 && kv->arr_n == 4 &&
	          rvi_gguf_arr_i64(kv, 0) == 2 && rvi_gguf_arr_i64(kv, 3) == -6 &&
	          rvi_gguf_arr_f64(kv, 3) == -6.0,
	      "%s: a.i32", via);
	kv = rvi_gguf_find(g, "a.f32");
	CHECK(kv && kv->arr_type == RVI_GGUF_FLOAT32 && rvi_gguf_arr_f64(kv, 0) == 0.5 &&
	          rvi_gguf_arr_f64(kv, 1) == -1.25 && rvi_gguf_arr_f64(kv, 2) == (double)3e9f,
	      "%s: a.f32", via);
	/* Float to integer truncates toward zero and saturates instead of UB. */
	CHECK(kv && rvi_gguf_arr_i64(kv, 0) == 0 && rvi_gguf_arr_i64(kv, 1) == -1 &&
	          rvi_gguf_arr_i64(kv, 2) == 3000000000ll,
	      "%s: a.f32 as int", via);
	kv = rvi_gguf_find(g, "a.bool");
	CHECK(kv && kv->arr_type == RVI_GGUF_BOOL && rvi_gguf_arr_i64(kv, 0) == 1 &&
	          rvi_gguf_arr_i64(kv, 1) == 0 && rvi_gguf_arr_i64(kv, 2) == 1,
	      "%s: a.bool", via);
	kv = rvi_gguf_find(g, "a.u64");
	CHECK(kv && kv->arr_type == RVI_GGUF_UINT64 &&
	          rvi_gguf_arr_f64(kv, 0) == 18446744073709551615.0 &&
	          rvi_gguf_arr_i64(kv, 0) == INT64_MAX && rvi_gguf_arr_i64(kv, 1) == 42,
	      "%s: a.u64", via);
	kv = rvi_gguf_find(g, "a.i64");
	CHECK(kv && kv->arr_type == RVI_GGUF_INT64 && rvi_gguf_arr_i64(kv, 0) == INT64_MIN &&
	          rvi_gguf_arr_i64(kv, 1) == -1,
	      "%s: a.i64", via);
	kv = rvi_gguf_find(g, "a.f64");
	CHECK(kv && kv->arr_type == RVI_GGUF_FLOAT64 && rvi_gguf_arr_f64(kv, 0) == -0.1 &&
	          rvi_gguf_arr_f64(kv, 1) == 1e300 && rvi_gguf_arr_i64(kv, 1) == INT64_MAX,
	      "%s: a.f64", via);
	CHECK(kv && rvi_gguf_arr_f64(kv, 2) == 0.0 && rvi_gguf_arr_i64(kv, 99) == 0,
	      "%s: out-of-range index not 0", via);
	kv = rvi_gguf_find(g, "a.str");
	CHECK(kv && kv->arr_type == RVI_GGUF_STRING && kv->arr_n == 3 && kv->strs &&
	          rvi_str_eq(kv->strs[0], "one") && rvi_str_eq(kv->strs[1], "") &&
	          rvi_str_eq(kv->strs[2], "three") && rvi_gguf_arr_i64(kv, 0) == 0,
	      "%s: a.str", via);
	kv = rvi_gguf_find(g, "a.empty");
	CHECK(kv && kv->arr_type == RVI_GGUF_INT32 && kv->arr_n == 0, "%s: a.empty", via);
	kv = rvi_gguf_find(g, "a.empty_str");
	CHECK(kv && kv->arr_type == RVI_GGUF_STRING && kv->arr_n == 0, "%s: a.empty_str", via);

	/* Tensors: geometry, sizes from the type traits, data in place. */
	const rvi_gguf_tensor *t = rvi_gguf_find_tensor(g, "w.f32");
	CHECK(t && t->type == RVI_TYPE_F32 && t->n_dims == 2 && t->ne[0] == 4 && t->ne[1] == 3 &&
	          t->ne[2] == 1 && t->ne[3] == 1 && t->nelem == 12 && t->nbytes == 48 &&
	          t->offset == 0,
	      "%s: w.f32", via);
	CHECK(t && t->data == g->base + data_offset, "%s: w.f32 data", via);
	t = rvi_gguf_find_tensor(g, "w.q8");
	CHECK(t && t->type == RVI_TYPE_Q8_0 && t->n_dims == 2 && t->ne[0] == 64 && t->ne[1] == 2 &&
	          t->nelem == 128 && t->nbytes == 136 && t->offset == 64,
	      "%s: w.q8", via);
	CHECK(t && ((const uint8_t *)t->data)[0] == pattern(64) &&
	          ((const uint8_t *)t->data)[135] == pattern(64 + 135),
	      "%s: w.q8 data", via);
	t = rvi_gguf_find_tensor(g, "blk.0.w.q4k");
	CHECK(t && t->type == RVI_TYPE_Q4_K && t->n_dims == 4 && t->ne[0] == 256 && t->ne[1] == 1 &&
	          t->ne[2] == 2 && t->ne[3] == 1 && t->nelem == 512 && t->nbytes == 288 &&
	          t->offset == 256,
	      "%s: q4k", via);
	CHECK(t && (size_t)((const uint8_t *)t->data - g->base) == data_offset + 256 &&
	          ((const uint8_t *)t->data)[287] == pattern(256 + 287),
	      "%s: q4k data", via);
	CHECK(t && t->nbytes == rvi_row_size(t->type, t->ne[0]) * 2, "%s: q4k row size", via);
	CHECK(rvi_gguf_find_tensor(g, "w.f3") == NULL && rvi_gguf_find_tensor(g, NULL) == NULL,
	      "%s: find_tensor matched a non-tensor", via);

	/* Typed getters: conversions, range checks, type checks. */
	uint32_t u32 = 77;
	int64_t i64 = 77;
	float f32 = 77;
	bool bl = false;
	rvi_str s = {0};
	const rvi_gguf_kv *arr = NULL;
	int rc;
	CHECK(rvi_gguf_get_u32(g, "t.u8", true, &u32, &err) == RV_OK && u32 == 200,
	      "%s: u32 from u8", via);
	CHECK(rvi_gguf_get_u32(g, "t.u32", true, &u32, &err) == RV_OK && u32 == 4000000000u,
	      "%s: u32", via);
	CHECK(rvi_gguf_get_u32(g, "t.i16", true, &u32, &err) == RV_ERR_MODEL &&
	          strstr(err.msg, "t.i16") && strstr(err.msg, "-30000") &&
	          strstr(err.msg, "does not fit"),
	      "%s: negative into u32: %s", via, err.msg);
	CHECK(rvi_gguf_get_u32(g, "t.u64", true, &u32, &err) == RV_ERR_MODEL &&
	          strstr(err.msg, "t.u64"),
	      "%s: u64 into u32: %s", via, err.msg);
	rc = rvi_gguf_get_u32(g, "t.str", true, &u32, &err);
	CHECK(rc == RV_ERR_MODEL && strstr(err.msg, "t.str") && strstr(err.msg, "string") &&
	          strstr(err.msg, "uint32") && strstr(err.msg, g->path),
	      "%s: string as u32: %d %s", via, rc, err.msg);
	CHECK(rvi_gguf_get_u32(g, "t.bool", true, &u32, &err) == RV_ERR_MODEL, "%s: bool as u32",
	      via);
	u32 = 77;
	CHECK(rvi_gguf_get_u32(g, "no.such.key", false, &u32, &err) == RV_OK && u32 == 77,
	      "%s: optional missing key changed *out", via);
	rc = rvi_gguf_get_u32(g, "no.such.key", true, &u32, &err);
	CHECK(rc == RV_ERR_MODEL && strstr(err.msg, "missing key no.such.key") &&
	          strstr(err.msg, g->path) && u32 == 77,
	      "%s: required missing key: %s", via, err.msg);

	CHECK(rvi_gguf_get_i64(g, "t.i64", true, &i64, &err) == RV_OK && i64 == -5000000000ll,
	      "%s: i64", via);
	CHECK(rvi_gguf_get_i64(g, "t.i8", true, &i64, &err) == RV_OK && i64 == -100,
	      "%s: i64 from i8", via);
	CHECK(rvi_gguf_get_i64(g, "t.u32", true, &i64, &err) == RV_OK && i64 == 4000000000ll,
	      "%s: i64 from u32", via);
	CHECK(rvi_gguf_get_i64(g, "t.u64", true, &i64, &err) == RV_ERR_MODEL &&
	          strstr(err.msg, "18446744073709551600"),
	      "%s: huge u64 into i64: %s", via, err.msg);
	CHECK(rvi_gguf_get_i64(g, "t.f32", true, &i64, &err) == RV_ERR_MODEL &&
	          strstr(err.msg, "float32"),
	      "%s: float as i64: %s", via, err.msg);

	CHECK(rvi_gguf_get_f32(g, "t.f32", true, &f32, &err) == RV_OK && f32 == 1.5f, "%s: f32",
	      via);
	CHECK(rvi_gguf_get_f32(g, "t.f64small", true, &f32, &err) == RV_OK && f32 == 0.125f,
	      "%s: f32 from f64", via);
	CHECK(rvi_gguf_get_f32(g, "t.f64", true, &f32, &err) == RV_ERR_MODEL &&
	          strstr(err.msg, "t.f64"),
	      "%s: f64 beyond float range: %s", via, err.msg);
	CHECK(rvi_gguf_get_f32(g, "t.u32", true, &f32, &err) == RV_ERR_MODEL &&
	          strstr(err.msg, "uint32"),
	      "%s: int as f32: %s", via, err.msg);

	CHECK(rvi_gguf_get_bool(g, "t.bool", true, &bl, &err) == RV_OK && bl, "%s: bool", via);
	CHECK(rvi_gguf_get_bool(g, "t.false", true, &bl, &err) == RV_OK && !bl, "%s: false", via);
	CHECK(rvi_gguf_get_bool(g, "t.u8", true, &bl, &err) == RV_ERR_MODEL &&
	          strstr(err.msg, "uint8") && strstr(err.msg, "bool"),
	      "%s: u8 as bool: %s", via, err.msg);

	CHECK(rvi_gguf_get_str(g, "t.str", true, &s, &err) == RV_OK &&
	          rvi_str_eq(s, "hello, world"),
	      "%s: str", via);
	CHECK(rvi_gguf_get_str(g, "a.str", true, &s, &err) == RV_ERR_MODEL &&
	          strstr(err.msg, "array of string"),
	      "%s: array as str: %s", via, err.msg);

	CHECK(rvi_gguf_get_arr(g, "a.f32", true, RVI_GGUF_FLOAT32, &arr, &err) == RV_OK &&
	          arr == rvi_gguf_find(g, "a.f32"),
	      "%s: arr f32", via);
	CHECK(rvi_gguf_get_arr(g, "a.u16", true, RVI_GGUF_INT64, &arr, &err) == RV_OK &&
	          arr == rvi_gguf_find(g, "a.u16"),
	      "%s: any-int arr", via);
	rc = rvi_gguf_get_arr(g, "a.f32", true, RVI_GGUF_INT32, &arr, &err);
	CHECK(rc == RV_ERR_MODEL && strstr(err.msg, "a.f32") &&
	          strstr(err.msg, "array of float32") && strstr(err.msg, "array of int32"),
	      "%s: f32 arr as int32: %s", via, err.msg);
	CHECK(rvi_gguf_get_arr(g, "a.f32", true, RVI_GGUF_INT64, &arr, &err) == RV_ERR_MODEL,
	      "%s: f32 arr as ints", via);
	CHECK(rvi_gguf_get_arr(g, "a.bool", true, RVI_GGUF_INT64, &arr, &err) == RV_ERR_MODEL,
	      "%s: bool arr as ints", via);
	CHECK(rvi_gguf_get_arr(g, "t.u32", true, RVI_GGUF_UINT32, &arr, &err) == RV_ERR_MODEL &&
	          strstr(err.msg, "t.u32"),
	      "%s: scalar as array: %s", via, err.msg);
	arr = (const rvi_gguf_kv *)&arr;
	CHECK(rvi_gguf_get_arr(g, "no.arr", false, RVI_GGUF_STRING, &arr, &err) == RV_OK &&
	          arr == NULL,
	      "%s: optional missing array", via);
	CHECK(rvi_gguf_get_arr(g, "no.arr", true, RVI_GGUF_STRING, &arr, &err) == RV_ERR_MODEL &&
	          strstr(err.msg, "missing key no.arr"),
	      "%s: required missing array: %s", via, err.msg);
}

static void test_valid(void)
{
	tu_buf b = {0};
	for (uint32_t version = 2; version <= 3; version++) {
		size_t data = build_valid(&b, version);
		rvi_gguf *g = NULL;
		rvi_err err = {0};
		uint8_t *copy;
		int rc = parse_copy(&g, b.p, b.n, &copy, &err);
		CHECK(rc == RV_OK && g, "valid v%u: %d %s", version, rc, err.msg);
		if (g) {
			CHECK(g->base == copy && !g->mapped && g->size == b.n,
			      "memory buffer not used in place");
			check_valid(g, data, version, "memory");
		}
		rvi_gguf_close(g);
		free(copy);
	}

	/* The same file through the mmap path. */
	size_t data = build_valid(&b, 3);
	char path[] = "/tmp/test_gguf_XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0, "mkstemp: %s", strerror(errno));
	if (fd >= 0) {
		CHECK(write(fd, b.p, b.n) == (ssize_t)b.n, "write temp file");
		close(fd);
		rvi_gguf *g = NULL;
		rvi_err err = {0};
		int rc = rvi_gguf_open(&g, path, &err);
		CHECK(rc == RV_OK && g, "open temp: %d %s", rc, err.msg);
		if (g) {
			CHECK(g->mapped && strcmp(g->path, path) == 0, "mmap path fields");
			check_valid(g, data, 3, "mmap");
		}
		rvi_gguf_close(g);
		unlink(path);
	}

	/* Every proper prefix of the valid file is malformed: each must fail. */
	int fails = 0;
	for (size_t n = 0; n < b.n; n++) {
		rvi_gguf *g = NULL;
		rvi_err err = {0};
		uint8_t *copy;
		int rc = parse_copy(&g, b.p, n, &copy, &err);
		if (rc != RV_ERR_MODEL || g || !strstr(err.msg, NAME)) {
			fails++;
			CHECK(0, "prefix of %zu bytes: status %d (%s)", n, rc, err.msg);
		}
		rvi_gguf_close(g);
		free(copy);
	}
	CHECK(fails == 0, "%d prefixes misparsed", fails);
	free(b.p);
}

/* Random corruption of the valid file: any outcome is fine except a crash or
 * a result that points outside the buffer (ASan checks every touch below). */
static void test_mutations(void)
{
	tu_buf b = {0};
	build_valid(&b, 3);
	uint64_t rng = 12345;
	int ok = 0, bad = 0;
	for (int iter = 0; iter < 4000; iter++) {
		uint8_t *m = malloc(b.n);
		memcpy(m, b.p, b.n);
		int flips = 1 + (int)(tu_rand_u64(&rng) % 4);
		for (int k = 0; k < flips; k++) {
			size_t at = (size_t)(tu_rand_u64(&rng) % b.n);
			uint64_t r = tu_rand_u64(&rng);
			/* Mostly small changes in the header, where the structure is. */
			if (r % 3 == 0)
				at %= 64;
			m[at] =
			    (r & 8) ? (uint8_t)(r >> 8) : (uint8_t)(m[at] ^ (1u << (r >> 4 & 7)));
		}
		rvi_gguf *g = NULL;
		rvi_err err = {0};
		int rc = rvi_gguf_open_memory(&g, m, b.n, NAME, &err);
		if (rc == RV_OK) {
			ok++;
			unsigned sum = 0;
			for (uint64_t i = 0; i < g->n_kv; i++) {
				const rvi_gguf_kv *kv = &g->kv[i];
				sum += (unsigned char)kv->key.ptr[kv->key.len - 1];
				if (kv->type == RVI_GGUF_STRING && kv->v.str.len)
					sum += (unsigned char)kv->v.str.ptr[kv->v.str.len - 1];
				for (uint64_t j = 0; kv->type == RVI_GGUF_ARRAY && j < kv->arr_n;
				     j++) {
					if (kv->strs && kv->strs[j].len)
						sum += (unsigned char)kv->strs[j]
						           .ptr[kv->strs[j].len - 1];
					sum += (unsigned)rvi_gguf_arr_i64(kv, j);
				}
			}
			for (uint64_t i = 0; i < g->n_tensors; i++) {
				const rvi_gguf_tensor *t = &g->tensors[i];
				const uint8_t *d = t->data;
				sum += d[0] + d[t->nbytes - 1];
				CHECK((const uint8_t *)t->data + t->nbytes <= m + b.n,
				      "mutation %d: tensor past end", iter);
			}
			(void)sum;
			rvi_gguf_close(g);
		} else {
			bad++;
			CHECK(g == NULL && rc < 0 && strstr(err.msg, NAME),
			      "mutation %d: status %d message '%s'", iter, rc, err.msg);
		}
		free(m);
	}
	if (getenv("TEST_GGUF_VERBOSE"))
		printf("mutations: %d accepted, %d rejected\n", ok, bad);
	CHECK(bad > 1000 && ok > 10, "mutations: %d accepted, %d rejected", ok, bad);
	free(b.p);
}

/* ---- malformed files ------------------------------------------------------ */

static void test_preamble(void)
{
	tu_buf b = {0};
	w_header(&b, 3, 0, 0);
	expect_ok("empty 24-byte file", &b);
	b.n = 23;
	expect_err("23 bytes", &b, RV_ERR_MODEL, "too short", "23 bytes");
	b.n = 0;
	expect_err("0 bytes", &b, RV_ERR_MODEL, "too short", NULL);

	w_reset(&b);
	tu_put(&b, "GGML", 4);
	w_u32(&b, 3), w_u64(&b, 0), w_u64(&b, 0);
	expect_err("bad magic", &b, RV_ERR_MODEL, "bad magic 47 47 4d 4c", NULL);
	w_reset(&b);
	w_header(&b, 0, 0, 0);
	expect_err("version 0", &b, RV_ERR_MODEL, "version 0", NULL);
	w_reset(&b);
	w_header(&b, 1, 0, 0);
	expect_err("version 1", &b, RV_ERR_UNSUPPORTED, "version 1 is not supported", NULL);
	w_reset(&b);
	w_header(&b, 4, 0, 0);
	expect_err("version 4", &b, RV_ERR_UNSUPPORTED, "version 4", NULL);
	w_reset(&b);
	w_header(&b, 0x03000000u, 0, 0);
	expect_err("big-endian", &b, RV_ERR_UNSUPPORTED, "byte-swapped", NULL);
	w_reset(&b);
	w_header(&b, 2, 0, 0);
	expect_ok("v2 empty", &b);

	/* Counts no file of this size could hold: rejected before allocating. */
	w_reset(&b);
	w_header(&b, 3, 0, UINT64_MAX);
	expect_err("kv count UINT64_MAX", &b, RV_ERR_MODEL, "18446744073709551615 keys", NULL);
	w_reset(&b);
	w_header(&b, 3, 1ull << 40, 0);
	expect_err("tensor count 2^40", &b, RV_ERR_MODEL, "1099511627776 tensors", NULL);
	w_reset(&b);
	w_header(&b, 3, UINT64_MAX / 2, UINT64_MAX / 2);
	expect_err("both counts huge", &b, RV_ERR_MODEL, "more than the remaining", NULL);
	w_reset(&b);
	w_header(&b, 3, 0, 8);
	w_kv_u32(&b, "a.b", 1);
	w_zeros(&b, 80);
	expect_err("kv count 8, room for 7", &b, RV_ERR_MODEL, "8 keys", NULL);
	/* Plausible by size, but the keys are not there. */
	w_reset(&b);
	w_header(&b, 3, 0, 2);
	w_kv_u32(&b, "a.b", 1);
	w_str(&b, "c.d");
	w_u16(&b, 0);
	expect_err("value type cut", &b, RV_ERR_MODEL, "key c.d: value type", "runs past the end");
	free(b.p);
}

static void test_bad_kv(void)
{
	tu_buf b = {0};
	char big[RVI_GGUF_MAX_KEY + 2];
	memset(big, 'k', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';

	w_header(&b, 3, 0, 1);
	w_kv_u32(&b, "", 1);
	expect_err("empty key", &b, RV_ERR_MODEL, "key #0", "key length 0");

	w_reset(&b);
	w_header(&b, 3, 0, 1);
	w_kv_u32(&b, big, 1); /* 1025 bytes */
	expect_err("over-long key", &b, RV_ERR_MODEL, "key #0", "key length 1025");
	w_reset(&b);
	w_header(&b, 3, 0, 1);
	big[RVI_GGUF_MAX_KEY] = '\0';
	w_kv_u32(&b, big, 1); /* exactly the limit */
	expect_ok("1024-byte key", &b);

	w_reset(&b);
	w_header(&b, 3, 0, 3);
	w_kv_u32(&b, "dup.key", 1);
	w_kv_u32(&b, "other", 2);
	w_key(&b, "dup.key", RVI_GGUF_STRING);
	w_str(&b, "x");
	expect_err("duplicate key", &b, RV_ERR_MODEL, "duplicate key dup.key", NULL);
	/* A prefix of another key is not a duplicate. */
	w_reset(&b);
	w_header(&b, 3, 0, 2);
	w_kv_u32(&b, "dup.key", 1);
	w_kv_u32(&b, "dup.ke", 2);
	expect_ok("prefix keys", &b);

	w_reset(&b);
	w_header(&b, 3, 0, 1);
	w_key(&b, "x.type", 13);
	w_u32(&b, 0);
	expect_err("value type 13", &b, RV_ERR_MODEL, "key x.type", "unknown value type 13");
	w_reset(&b);
	w_header(&b, 3, 0, 1);
	w_key(&b, "x.type", 0xffffffffu);
	w_u64(&b, 0);
	expect_err("value type ~0", &b, RV_ERR_MODEL, "key x.type",
	           "unknown value type 4294967295");

	w_reset(&b);
	w_header(&b, 3, 0, 1);
	w_key(&b, "x.s", RVI_GGUF_STRING);
	w_u64(&b, UINT64_MAX);
	tu_put(&b, "abcdef", 6);
	expect_err("string length UINT64_MAX", &b, RV_ERR_MODEL, "key x.s",
	           "string value length 18446744073709551615");
	w_reset(&b);
	w_header(&b, 3, 0, 1);
	w_key(&b, "x.s", RVI_GGUF_STRING);
	w_u64(&b, 7);
	tu_put(&b, "abcdef", 6);
	expect_err("string past end by 1", &b, RV_ERR_MODEL, "key x.s", "runs past the end");
	w_reset(&b);
	w_header(&b, 3, 0, 2);
	w_kv_u32(&b, "a.b", 1);
	w_u64(&b, 1000);
	tu_put(&b, "x.y", 3);
	w_zeros(&b, 16);
	expect_err("key past end", &b, RV_ERR_MODEL, "key #1", "key length 1000");
	w_reset(&b);
	w_header(&b, 3, 0, 1);
	w_key(&b, "x.u64", RVI_GGUF_UINT64);
	w_u32(&b, 0);
	w_u8(&b, 0); /* 5 of the 8 value bytes */
	expect_err("truncated u64 value", &b, RV_ERR_MODEL, "key x.u64", "value");

	/* Arrays: count x element size overflowing, or past the end. */
	w_reset(&b);
	w_header(&b, 3, 0, 1);
	w_arr(&b, "x.a", RVI_GGUF_UINT64, 1ull << 61); /* x8 = 2^64: wraps to 0 */
	w_u64(&b, 0);
	expect_err("array bytes wrap", &b, RV_ERR_MODEL, "key x.a", "runs past the end");
	w_reset(&b);
	w_header(&b, 3, 0, 1);
	w_arr(&b, "x.a", RVI_GGUF_INT32, (1ull << 62) + 1); /* x4 wraps to 4 */
	w_u32(&b, 0);
	expect_err("array bytes wrap to 4", &b, RV_ERR_MODEL, "key x.a", "runs past the end");
	w_reset(&b);
	w_header(&b, 3, 0, 1);
	w_arr(&b, "x.a", RVI_GGUF_FLOAT32, 3);
	w_f32(&b, 1), w_f32(&b, 2), w_u16(&b, 0), w_u8(&b, 0);
	expect_err("array past end by 1", &b, RV_ERR_MODEL, "array of 3 float32",
	           "runs past the end");
	w_reset(&b);
	w_header(&b, 3, 0, 1);
	w_arr(&b, "x.a", RVI_GGUF_ARRAY, 1);
	w_u32(&b, RVI_GGUF_UINT8), w_u64(&b, 1), w_u8(&b, 0);
	expect_err("nested array", &b, RV_ERR_MODEL, "key x.a", "nested");
	w_reset(&b);
	w_header(&b, 3, 0, 1);
	w_arr(&b, "x.a", 13, 1);
	w_u64(&b, 0);
	expect_err("array of type 13", &b, RV_ERR_MODEL, "key x.a",
	           "unknown array element type 13");
	w_reset(&b);
	w_header(&b, 3, 0, 1);
	w_arr(&b, "x.strs", RVI_GGUF_STRING, 1ull << 60);
	w_str(&b, "a"), w_str(&b, "b");
	expect_err("string array count 2^60", &b, RV_ERR_MODEL, "key x.strs",
	           "1152921504606846976 strings");
	w_reset(&b);
	w_header(&b, 3, 0, 1);
	w_arr(&b, "x.strs", RVI_GGUF_STRING, 2);
	w_str(&b, "a"), w_u64(&b, 5), tu_put(&b, "abcd", 4);
	expect_err("string array element past end", &b, RV_ERR_MODEL, "key x.strs",
	           "array string length 5");
	w_reset(&b);
	w_header(&b, 3, 0, 1);
	w_key(&b, "x.bool", RVI_GGUF_BOOL);
	w_u8(&b, 2);
	expect_err("bool 2", &b, RV_ERR_MODEL, "key x.bool", "bool value is 2");
	w_reset(&b);
	w_header(&b, 3, 0, 1);
	w_arr(&b, "x.bools", RVI_GGUF_BOOL, 2);
	w_u8(&b, 1), w_u8(&b, 7);
	expect_err("bool array 7", &b, RV_ERR_MODEL, "key x.bools", "element 1 is 7");

	/* general.alignment. */
	const uint32_t bad_align[] = {0, 3, 48, 2u << 20};
	const char *why[] = {"is 0,", "is 3,", "is 48,", "is 2097152,"};
	for (int i = 0; i < 4; i++) {
		w_reset(&b);
		w_header(&b, 3, 0, 1);
		w_kv_u32(&b, "general.alignment", bad_align[i]);
		expect_err("bad alignment", &b, RV_ERR_MODEL, "general.alignment", why[i]);
	}
	w_reset(&b);
	w_header(&b, 3, 0, 1);
	w_key(&b, "general.alignment", RVI_GGUF_UINT64);
	w_u64(&b, 32);
	expect_err("uint64 alignment", &b, RV_ERR_MODEL, "general.alignment", "must be uint32");
	w_reset(&b);
	w_header(&b, 3, 0, 1);
	w_key(&b, "general.alignment", RVI_GGUF_STRING);
	w_str(&b, "32");
	expect_err("string alignment", &b, RV_ERR_MODEL, "general.alignment", "type string");
	w_reset(&b);
	w_header(&b, 3, 0, 1);
	w_kv_u32(&b, "general.alignment", 1u << 20);
	expect_ok("1 MiB alignment, no tensors", &b);

	/* A hostile key is quoted with escapes, not raw bytes. */
	w_reset(&b);
	w_header(&b, 3, 0, 2);
	w_kv_u32(&b, "esc\x1b[2J", 1);
	w_kv_u32(&b, "esc\x1b[2J", 1);
	expect_err("escape in key", &b, RV_ERR_MODEL, "duplicate key esc\\x1b[2J", NULL);
	free(b.p);
}

/* One tensor info with a bit of metadata before it, then padding to 32 and
 * data_bytes of data. */
static void one_tensor(tu_buf *b, const char *name, uint32_t n_dims, const uint64_t *ne,
                       uint32_t type, uint64_t offset, size_t data_bytes)
{
	w_reset(b);
	w_header(b, 3, 1, 1);
	w_kv_u32(b, "general.alignment", 32);
	w_tensor(b, name, n_dims, ne, type, offset);
	w_pad(b, 32);
	w_zeros(b, data_bytes);
}

static void test_bad_tensors(void)
{
	tu_buf b = {0};
	const uint64_t v16[] = {16}, m4x4[] = {4, 4};
	char big[RVI_GGUF_MAX_NAME + 2];
	memset(big, 'n', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';

	one_tensor(&b, "t0", 1, v16, RVI_TYPE_F32, 0, 64);
	expect_ok("one F32 tensor", &b);
	one_tensor(&b, "", 1, v16, RVI_TYPE_F32, 0, 64);
	expect_err("empty tensor name", &b, RV_ERR_MODEL, "tensor #0", "name length 0");
	one_tensor(&b, big, 1, v16, RVI_TYPE_F32, 0, 64);
	expect_err("257-byte name", &b, RV_ERR_MODEL, "tensor #0", "name length 257");
	big[RVI_GGUF_MAX_NAME] = '\0';
	one_tensor(&b, big, 1, v16, RVI_TYPE_F32, 0, 64);
	expect_ok("256-byte name", &b);

	w_reset(&b);
	w_header(&b, 3, 2, 0);
	w_tensor(&b, "dup.weight", 1, v16, RVI_TYPE_F32, 0);
	w_tensor(&b, "dup.weight", 1, v16, RVI_TYPE_F32, 64);
	w_pad(&b, 32);
	w_zeros(&b, 128);
	expect_err("duplicate tensor", &b, RV_ERR_MODEL, "duplicate tensor dup.weight", NULL);

	one_tensor(&b, "t0", 0, v16, RVI_TYPE_F32, 0, 64);
	expect_err("n_dims 0", &b, RV_ERR_MODEL, "tensor t0", "n_dims is 0");
	const uint64_t five[] = {1, 1, 1, 1, 16};
	one_tensor(&b, "t0", 5, five, RVI_TYPE_F32, 0, 64);
	expect_err("n_dims 5", &b, RV_ERR_MODEL, "tensor t0", "n_dims is 5");
	const uint64_t zero[] = {16, 0};
	one_tensor(&b, "t0", 2, zero, RVI_TYPE_F32, 0, 64);
	expect_err("zero dimension", &b, RV_ERR_MODEL, "tensor t0", "dimension 1 is 0");
	const uint64_t neg[] = {(uint64_t)INT64_MIN, 1};
	one_tensor(&b, "t0", 2, neg, RVI_TYPE_F32, 0, 64);
	expect_err("negative dimension", &b, RV_ERR_MODEL, "tensor t0",
	           "dimension 0 is -9223372036854775808");
	const uint64_t wrap[] = {1ull << 32, 1ull << 32};
	one_tensor(&b, "t0", 2, wrap, RVI_TYPE_F32, 0, 64);
	expect_err("element count wraps", &b, RV_ERR_MODEL, "tensor t0", "element count overflows");
	const uint64_t sign[] = {1ull << 32, 1ull << 31};
	one_tensor(&b, "t0", 2, sign, RVI_TYPE_F32, 0, 64);
	expect_err("element count 2^63", &b, RV_ERR_MODEL, "tensor t0", "element count overflows");
	const uint64_t bytes[] = {1ull << 61, 2};
	one_tensor(&b, "t0", 2, bytes, RVI_TYPE_F32, 0, 64);
	expect_err("byte size wraps", &b, RV_ERR_MODEL, "tensor t0", "byte size overflows");
	const uint64_t huge[] = {1ull << 40};
	one_tensor(&b, "t0", 1, huge, RVI_TYPE_F32, 0, 64);
	expect_err("huge but no overflow", &b, RV_ERR_MODEL, "tensor t0", "runs past the end");

	const uint64_t k256[] = {256};
	one_tensor(&b, "blk.0.ffn_up.weight", 1, k256, 10, 0, 84);
	expect_err("Q2_K", &b, RV_ERR_UNSUPPORTED,
	           "unsupported tensor type Q2_K (10) in tensor blk.0.ffn_up.weight", NULL);
	one_tensor(&b, "t0", 1, k256, RVI_TYPE_Q8_K, 0, 292);
	expect_err("Q8_K", &b, RV_ERR_UNSUPPORTED, "unsupported tensor type Q8_K (15) in tensor t0",
	           NULL);
	one_tensor(&b, "t0", 1, v16, 99, 0, 64);
	expect_err("type 99", &b, RV_ERR_MODEL, "unknown tensor type 99 in tensor t0", NULL);
	one_tensor(&b, "t0", 1, v16, 4, 0, 64);
	expect_err("retired type 4", &b, RV_ERR_MODEL, "unknown tensor type 4 in tensor t0", NULL);
	one_tensor(&b, "t0", 1, v16, 0xffffffffu, 0, 64);
	expect_err("type ~0", &b, RV_ERR_MODEL, "unknown tensor type 4294967295 in tensor t0",
	           NULL);

	const uint64_t q33[] = {33, 2};
	one_tensor(&b, "t0", 2, q33, RVI_TYPE_Q8_0, 0, 4 * 34);
	expect_err("Q8_0 row of 33", &b, RV_ERR_MODEL, "tensor t0",
	           "first dimension 33 is not a multiple of the Q8_0 block size 32");
	const uint64_t k512[] = {512, 3};
	one_tensor(&b, "t0", 2, k512, RVI_TYPE_Q6_K, 0, 6 * 210);
	expect_ok("Q6_K [512,3]", &b);
	const uint64_t k128[] = {128};
	one_tensor(&b, "t0", 1, k128, RVI_TYPE_Q4_K, 0, 144);
	expect_err("Q4_K row of 128", &b, RV_ERR_MODEL, "tensor t0", "block size 256");

	one_tensor(&b, "t0", 1, v16, RVI_TYPE_F32, 4, 68);
	expect_err("misaligned", &b, RV_ERR_MODEL, "tensor t0",
	           "offset 4 is not a multiple of the alignment 32");
	one_tensor(&b, "blk.3.attn_q.weight", 2, m4x4, RVI_TYPE_F32, 0, 63);
	expect_err("one byte short", &b, RV_ERR_MODEL, "tensor blk.3.attn_q.weight: offset 0 + 64",
	           "runs past the end of the file");
	one_tensor(&b, "t0", 1, v16, RVI_TYPE_F32, UINT64_MAX - 31, 64);
	expect_err("offset wraps", &b, RV_ERR_MODEL, "tensor t0", "runs past the end of the file");
	one_tensor(&b, "t0", 1, v16, RVI_TYPE_F32, 1ull << 40, 64);
	expect_err("offset far away", &b, RV_ERR_MODEL, "tensor t0",
	           "runs past the end of the file");

	/* Overlap: t0 covers [0,64), t1 starts at 32. Listed out of order. */
	w_reset(&b);
	w_header(&b, 3, 3, 0);
	w_tensor(&b, "t2", 1, v16, RVI_TYPE_F32, 128);
	w_tensor(&b, "t1", 1, v16, RVI_TYPE_F32, 32);
	w_tensor(&b, "t0", 1, v16, RVI_TYPE_F32, 0);
	w_pad(&b, 32);
	w_zeros(&b, 192);
	expect_err("overlap", &b, RV_ERR_MODEL, "tensors t0", "and t1 (offset 32) overlap");
	/* Touching is fine, and so are gaps. */
	w_reset(&b);
	w_header(&b, 3, 3, 0);
	w_tensor(&b, "t2", 1, v16, RVI_TYPE_F32, 128);
	w_tensor(&b, "t1", 1, v16, RVI_TYPE_F32, 64);
	w_tensor(&b, "t0", 1, v16, RVI_TYPE_F32, 0);
	w_pad(&b, 32);
	w_zeros(&b, 192);
	expect_ok("adjacent tensors", &b);

	/* The tensor table itself cut short, and a tensor count that lies. */
	w_reset(&b);
	w_header(&b, 3, 1, 0);
	w_str(&b, "blk.0.attn_q.weight"), w_u32(&b, 2), w_u64(&b, 4);
	w_u32(&b, 0); /* half of the second dimension */
	expect_err("tensor info cut", &b, RV_ERR_MODEL, "tensor blk.0.attn_q.weight: dimension",
	           "runs past the end");
	w_reset(&b);
	w_header(&b, 3, 2, 0);
	w_tensor(&b, "t0", 1, v16, RVI_TYPE_F32, 0);
	w_pad(&b, 32);
	w_zeros(&b, 64);
	expect_err("missing second tensor", &b, RV_ERR_MODEL, "tensor #1", NULL);

	/* Without tensors the file may end right after the header. */
	w_reset(&b);
	w_header(&b, 3, 0, 1);
	w_kv_u32(&b, "x", 1);
	expect_ok("0 tensors, unpadded", &b);

	/* NULL err is allowed: the status still comes back. */
	one_tensor(&b, "t0", 1, v16, 99, 0, 64);
	rvi_gguf *g = NULL;
	CHECK(rvi_gguf_open_memory(&g, b.p, b.n, NULL, NULL) == RV_ERR_MODEL && !g,
	      "NULL err / name");
	free(b.p);
}

/* ---- real fixtures --------------------------------------------------------- */

static rvi_gguf *open_fixture(const char *name)
{
	rvi_gguf *g = NULL;
	rvi_err err = {0};
	int rc = rvi_gguf_open(&g, tu_data(name), &err);
	CHECK(rc == RV_OK && g, "open %s: %d %s", name, rc, err.msg);
	return rc == RV_OK ? g : NULL;
}

/* What holds for every valid file: sizes agree with rvi_row_size, data in bounds. */
static void check_sizes(const rvi_gguf *g, const char *name)
{
	for (uint64_t i = 0; i < g->n_tensors; i++) {
		const rvi_gguf_tensor *t = &g->tensors[i];
		uint64_t rows = t->nelem / (uint64_t)t->ne[0];
		CHECK(t->nbytes == rvi_row_size(t->type, t->ne[0]) * rows, "%s: tensor %.*s size",
		      name, (int)t->name.len, t->name.ptr);
		CHECK((const uint8_t *)t->data + t->nbytes <= g->base + g->size &&
		          (uint64_t)((const uint8_t *)t->data - g->base) % g->alignment == 0,
		      "%s: tensor %.*s placement", name, (int)t->name.len, t->name.ptr);
	}
}

static void check_tensor(const rvi_gguf *g, const char *name, enum rvi_type type, int n_dims,
                         int64_t ne0, int64_t ne1, uint64_t offset)
{
	const rvi_gguf_tensor *t = rvi_gguf_find_tensor(g, name);
	CHECK(t && t->type == type && t->n_dims == n_dims && t->ne[0] == ne0 && t->ne[1] == ne1 &&
	          t->offset == offset,
	      "tensor %s: type %d dims %d [%lld,%lld] offset %llu", name, t ? (int)t->type : -1,
	      t ? t->n_dims : -1, t ? (long long)t->ne[0] : -1, t ? (long long)t->ne[1] : -1,
	      t ? (unsigned long long)t->offset : 0);
}

static void test_fixtures(void)
{
	rvi_err err = {0};
	uint32_t u32 = 0;
	float f32 = 0;
	bool bl = false;
	rvi_str s = {0};
	const rvi_gguf_kv *arr = NULL;

	rvi_gguf *g = open_fixture("stories260K.gguf");
	if (g) {
		CHECK(g->version == 3 && g->n_kv == 19 && g->n_tensors == 48 && g->alignment == 32,
		      "stories: header");
		CHECK(g->data_offset == 14176 && g->size == 1185376, "stories: data offset %llu",
		      (unsigned long long)g->data_offset);
		CHECK(rvi_gguf_get_u32(g, "llama.embedding_length", true, &u32, &err) == RV_OK &&
		          u32 == 64,
		      "stories: embedding_length");
		CHECK(rvi_gguf_get_u32(g, "llama.block_count", true, &u32, &err) == RV_OK &&
		          u32 == 5,
		      "stories: block_count");
		CHECK(rvi_gguf_get_u32(g, "llama.feed_forward_length", true, &u32, &err) == RV_OK &&
		          u32 == 172,
		      "stories: ffn");
		CHECK(rvi_gguf_get_u32(g, "tokenizer.ggml.padding_token_id", true, &u32, &err) ==
		              RV_OK &&
		          u32 == 4294967295u,
		      "stories: padding id");
		CHECK(rvi_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", true, &f32,
		                       &err) == RV_OK &&
		          f32 == 9.9999997e-06f,
		      "stories: eps %g", f32);
		CHECK(rvi_gguf_get_str(g, "general.architecture", true, &s, &err) == RV_OK &&
		          rvi_str_eq(s, "llama"),
		      "stories: architecture");
		CHECK(rvi_gguf_find(g, "tokenizer.ggml.add_bos_token") == NULL,
		      "stories: no add_bos_token key");
		CHECK(rvi_gguf_find(g, "llama.rope.freq_base") == NULL, "stories: no freq_base");
		CHECK(rvi_gguf_get_arr(g, "tokenizer.ggml.tokens", true, RVI_GGUF_STRING, &arr,
		                       &err) == RV_OK &&
		          arr->arr_n == 512 && rvi_str_eq(arr->strs[0], "<unk>") &&
		          rvi_str_eq(arr->strs[1], "<s>") && rvi_str_eq(arr->strs[2], "</s>") &&
		          rvi_str_eq(arr->strs[3], "<0x00>") &&
		          rvi_str_eq(arr->strs[258], "<0xFF>"),
		      "stories: tokens");
		CHECK(rvi_gguf_get_arr(g, "tokenizer.ggml.scores", true, RVI_GGUF_FLOAT32, &arr,
		                       &err) == RV_OK &&
		          arr->arr_n == 512 && rvi_gguf_arr_f64(arr, 0) == 0.0 &&
		          rvi_gguf_arr_f64(arr, 260) == -1.0,
		      "stories: scores %g", arr ? rvi_gguf_arr_f64(arr, 260) : 0);
		CHECK(rvi_gguf_get_arr(g, "tokenizer.ggml.token_type", true, RVI_GGUF_INT64, &arr,
		                       &err) == RV_OK &&
		          arr->arr_type == RVI_GGUF_INT32 && arr->arr_n == 512 &&
		          rvi_gguf_arr_i64(arr, 0) == 2 && rvi_gguf_arr_i64(arr, 1) == 3 &&
		          rvi_gguf_arr_i64(arr, 3) == 6,
		      "stories: token types");
		check_tensor(g, "token_embd.weight", RVI_TYPE_F32, 2, 64, 512, 0);
		check_tensor(g, "output_norm.weight", RVI_TYPE_F32, 1, 64, 1, 131072);
		check_tensor(g, "blk.0.ffn_down.weight", RVI_TYPE_F32, 2, 172, 64, 355840);
		check_tensor(g, "blk.4.ffn_norm.weight", RVI_TYPE_F32, 1, 64, 1, 1170944);
		const rvi_gguf_tensor *t = rvi_gguf_find_tensor(g, "token_embd.weight");
		CHECK(t && t->nbytes == 131072 && t->data == g->base + 14176, "stories: embd data");
		t = rvi_gguf_find_tensor(g, "blk.4.ffn_norm.weight");
		CHECK(t && (const uint8_t *)t->data + t->nbytes == g->base + g->size,
		      "stories: last tensor ends the file");
		check_sizes(g, "stories");
		rvi_gguf_close(g);
	}

	g = open_fixture("tiny-llava-text-q8_0.gguf");
	if (g) {
		CHECK(g->n_kv == 25 && g->n_tensors == 21, "q8_0: counts");
		CHECK(rvi_gguf_get_u32(g, "general.file_type", true, &u32, &err) == RV_OK &&
		          u32 == 7,
		      "q8_0: file_type");
		CHECK(rvi_gguf_get_u32(g, "llama.embedding_length", true, &u32, &err) == RV_OK &&
		          u32 == 128,
		      "q8_0: embedding_length");
		CHECK(rvi_gguf_get_f32(g, "llama.rope.freq_base", true, &f32, &err) == RV_OK &&
		          f32 == 10000.0f,
		      "q8_0: freq_base");
		CHECK(rvi_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", true, &bl, &err) ==
		              RV_OK &&
		          bl,
		      "q8_0: add_bos");
		CHECK(rvi_gguf_get_bool(g, "tokenizer.ggml.add_eos_token", true, &bl, &err) ==
		              RV_OK &&
		          !bl,
		      "q8_0: add_eos");
		CHECK(rvi_gguf_get_str(g, "tokenizer.chat_template", true, &s, &err) == RV_OK &&
		          s.len > 14 && memcmp(s.ptr, "{% for message", 14) == 0,
		      "q8_0: chat template");
		check_tensor(g, "token_embd.weight", RVI_TYPE_Q8_0, 2, 128, 512, 0);
		check_tensor(g, "blk.0.attn_norm.weight", RVI_TYPE_F32, 1, 128, 1, 69632);
		check_tensor(g, "blk.1.ffn_down.weight", RVI_TYPE_Q8_0, 2, 320, 128, 393728);
		check_tensor(g, "output.weight", RVI_TYPE_Q8_0, 2, 128, 512, 437760);
		const rvi_gguf_tensor *t = rvi_gguf_find_tensor(g, "token_embd.weight");
		CHECK(t && t->nbytes == 512 * 4 * 34, "q8_0: embd bytes");
		check_sizes(g, "q8_0");
		rvi_gguf_close(g);
	}

	g = open_fixture("tiny-kq-text-q4_k_m.gguf");
	if (g) {
		CHECK(g->n_kv == 26 && g->n_tensors == 21, "q4_k_m: counts");
		CHECK(rvi_gguf_get_u32(g, "general.file_type", true, &u32, &err) == RV_OK &&
		          u32 == 15,
		      "q4_k_m: file_type");
		CHECK(rvi_gguf_get_u32(g, "llama.embedding_length", true, &u32, &err) == RV_OK &&
		          u32 == 256,
		      "q4_k_m: embedding_length");
		check_tensor(g, "output.weight", RVI_TYPE_Q6_K, 2, 256, 512, 0);
		check_tensor(g, "token_embd.weight", RVI_TYPE_Q4_K, 2, 256, 512, 108544);
		check_tensor(g, "blk.1.ffn_down.weight", RVI_TYPE_Q6_K, 2, 512, 256, 636160);
		check_tensor(g, "blk.1.ffn_up.weight", RVI_TYPE_Q4_K, 2, 256, 512, 818432);
		const rvi_gguf_tensor *t = rvi_gguf_find_tensor(g, "output.weight");
		CHECK(t && t->nbytes == 512 * 210, "q4_k_m: Q6_K bytes");
		check_sizes(g, "q4_k_m");
		rvi_gguf_close(g);
	}
}

static void test_truncated_fixture(void)
{
	size_t size = 0;
	uint8_t *full = (uint8_t *)tu_read_file(tu_data("stories260K.gguf"), &size);
	CHECK(full && size == 1185376, "read stories260K.gguf");
	if (!full)
		return;
	const size_t cuts[] = {0,     4,     23,    24,    100,      1000,
	                       14151, 14152, 14175, 14176, size / 2, size - 1};
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		rvi_gguf *g = NULL;
		rvi_err err = {0};
		uint8_t *copy;
		int rc = parse_copy(&g, full, cuts[i], &copy, &err);
		CHECK(rc == RV_ERR_MODEL && !g && strstr(err.msg, NAME),
		      "stories cut at %zu: %d %s", cuts[i], rc, err.msg);
		rvi_gguf_close(g);
		free(copy);
	}
	/* A cut inside the data names the first tensor that no longer fits. */
	{
		rvi_gguf *g = NULL;
		rvi_err err = {0};
		uint8_t *copy;
		parse_copy(&g, full, size - 1, &copy, &err);
		CHECK(strstr(err.msg, "tensor blk.4.ffn_norm.weight") &&
		          strstr(err.msg, "runs past the end of the file (1185375 bytes"),
		      "cut message: %s", err.msg);
		rvi_gguf_close(g);
		free(copy);
	}

	/* The same through files and mmap, including an empty file. */
	const size_t file_cuts[] = {0, 23, 1000, size - 1, size};
	for (size_t i = 0; i < sizeof(file_cuts) / sizeof(file_cuts[0]); i++) {
		char path[] = "/tmp/test_gguf_XXXXXX";
		int fd = mkstemp(path);
		CHECK(fd >= 0, "mkstemp: %s", strerror(errno));
		if (fd < 0)
			continue;
		CHECK(write(fd, full, file_cuts[i]) == (ssize_t)file_cuts[i], "write");
		close(fd);
		rvi_gguf *g = NULL;
		rvi_err err = {0};
		int rc = rvi_gguf_open(&g, path, &err);
		if (file_cuts[i] == size)
			CHECK(rc == RV_OK && g && g->n_tensors == 48, "whole copy: %s", err.msg);
		else
			CHECK(rc == RV_ERR_MODEL && !g && strstr(err.msg, path),
			      "file cut at %zu: %d %s", file_cuts[i], rc, err.msg);
		rvi_gguf_close(g);
		unlink(path);
	}
	free(full);
}

static void test_io_errors(void)
{
	rvi_gguf *g = (rvi_gguf *)&g;
	rvi_err err = {0};
	int rc = rvi_gguf_open(&g, "/nonexistent/dir/model.gguf", &err);
	CHECK(rc == RV_ERR_IO && !g && err.status == RV_ERR_IO, "missing file: %d", rc);
	CHECK(strstr(err.msg, "/nonexistent/dir/model.gguf") &&
	          strstr(err.msg, "No such file or directory"),
	      "missing file message: %s", err.msg);

	char dir[] = "/tmp/test_gguf_dir_XXXXXX";
	CHECK(mkdtemp(dir) != NULL, "mkdtemp: %s", strerror(errno));
	g = (rvi_gguf *)&g;
	rc = rvi_gguf_open(&g, dir, &err);
	CHECK(rc == RV_ERR_IO && !g && strstr(err.msg, dir), "directory: %d %s", rc, err.msg);
	rmdir(dir);

	/* A real file that disappears is the same as a missing one. */
	char path[] = "/tmp/test_gguf_XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0, "mkstemp");
	if (fd >= 0) {
		close(fd);
		unlink(path);
		rc = rvi_gguf_open(&g, path, &err);
		CHECK(rc == RV_ERR_IO && strstr(err.msg, path), "unlinked temp: %d %s", rc,
		      err.msg);
	}
	rvi_gguf_close(NULL); /* allowed */
}

static void test_misc(void)
{
	rvi_str abc = {"abc", 3}, empty = {NULL, 0};
	CHECK(rvi_str_eq(abc, "abc") && !rvi_str_eq(abc, "ab") && !rvi_str_eq(abc, "abcd") &&
	          !rvi_str_eq(abc, "abd") && !rvi_str_eq(abc, NULL),
	      "rvi_str_eq");
	CHECK(rvi_str_eq(empty, "") && !rvi_str_eq(empty, "a"), "rvi_str_eq empty");
	CHECK(strcmp(rvi_gguf_type_name(RVI_GGUF_FLOAT32), "float32") == 0 &&
	          strcmp(rvi_gguf_type_name(RVI_GGUF_ARRAY), "array") == 0 &&
	          strcmp(rvi_gguf_type_name(RVI_GGUF_FLOAT64), "float64") == 0 &&
	          strcmp(rvi_gguf_type_name(RVI_GGUF_UINT8), "uint8") == 0 &&
	          strcmp(rvi_gguf_type_name((enum rvi_gguf_type)13), "unknown") == 0,
	      "rvi_gguf_type_name");
	CHECK(rvi_gguf_arr_f64(NULL, 0) == 0 && rvi_gguf_arr_i64(NULL, 0) == 0, "NULL kv");
}

int main(void)
{
	test_misc();
	test_valid();
	test_preamble();
	test_bad_kv();
	test_bad_tensors();
	test_mutations();
	test_fixtures();
	test_truncated_fixture();
	test_io_errors();
	return tu_finish("test_gguf");
}
