/* gguf.c: GGUF v2/v3 reader (see gguf.h).
 *
 * Every byte of the header is untrusted. The only way it is read is through
 * struct reader, whose take_* functions check each read against the end of
 * the buffer and, on overrun, report the file and the item being parsed; so
 * a malformed file costs an error message, never an out-of-bounds access.
 * Counts are compared with the bytes left before anything is allocated for
 * them, so a 30-byte file cannot make us allocate gigabytes, and all size
 * arithmetic goes through rvi_mul_ok/rvi_add_ok. Values are decoded byte by
 * byte as little-endian, which keeps the reader correct on any host. */
#include "src/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_HEADER_BYTES 24 /* magic, version, tensor count, KV count */

/* Smallest encodings of a KV (non-empty key 8+1, type 4, a 1-byte value) and
 * of a tensor info (name 8+1, n_dims 4, one dimension 8, type 4, offset 8):
 * a count larger than the bytes left divided by these cannot be genuine. */
#define MIN_KV_BYTES     14
#define MIN_TENSOR_BYTES 33

/* Names quoted in messages are cut to this many bytes. */
#define SHOW_MAX 96

typedef unsigned long long ull; /* for printf of uint64_t without PRIu64 noise */

/* Bytes of one element of a fixed-size value type; 0 for STRING/ARRAY. */
static const uint8_t value_size[RVI_GGUF_TYPE_COUNT] = {
    [RVI_GGUF_UINT8] = 1,  [RVI_GGUF_INT8] = 1,  [RVI_GGUF_UINT16] = 2,  [RVI_GGUF_INT16] = 2,
    [RVI_GGUF_UINT32] = 4, [RVI_GGUF_INT32] = 4, [RVI_GGUF_FLOAT32] = 4, [RVI_GGUF_BOOL] = 1,
    [RVI_GGUF_UINT64] = 8, [RVI_GGUF_INT64] = 8, [RVI_GGUF_FLOAT64] = 8,
};

static const char *const type_names[RVI_GGUF_TYPE_COUNT] = {
    [RVI_GGUF_UINT8] = "uint8",     [RVI_GGUF_INT8] = "int8",     [RVI_GGUF_UINT16] = "uint16",
    [RVI_GGUF_INT16] = "int16",     [RVI_GGUF_UINT32] = "uint32", [RVI_GGUF_INT32] = "int32",
    [RVI_GGUF_FLOAT32] = "float32", [RVI_GGUF_BOOL] = "bool",     [RVI_GGUF_STRING] = "string",
    [RVI_GGUF_ARRAY] = "array",     [RVI_GGUF_UINT64] = "uint64", [RVI_GGUF_INT64] = "int64",
    [RVI_GGUF_FLOAT64] = "float64",
};

const char *rvi_gguf_type_name(enum rvi_gguf_type t)
{
	if ((unsigned)t < RVI_GGUF_TYPE_COUNT)
		return type_names[t];
	return "unknown";
}

static bool is_int_type(enum rvi_gguf_type t)
{
	switch (t) {
	case RVI_GGUF_UINT8:
	case RVI_GGUF_INT8:
	case RVI_GGUF_UINT16:
	case RVI_GGUF_INT16:
	case RVI_GGUF_UINT32:
	case RVI_GGUF_INT32:
	case RVI_GGUF_UINT64:
	case RVI_GGUF_INT64:
		return true;
	default:
		return false;
	}
}

static bool is_signed_type(enum rvi_gguf_type t)
{
	return t == RVI_GGUF_INT8 || t == RVI_GGUF_INT16 || t == RVI_GGUF_INT32 ||
	       t == RVI_GGUF_INT64;
}

bool rvi_str_eq(rvi_str s, const char *c)
{
	if (!c)
		return false;
	size_t n = strlen(c);
	/* memcmp with a NULL pointer is undefined even for 0 bytes. */
	return s.len == n && (n == 0 || memcmp(s.ptr, c, n) == 0);
}

/* Copies s into buf for a message. Bytes that are not printable ASCII become
 * \xHH, so a hostile name cannot put terminal escapes into logs, and long
 * names are cut with "...". */
static const char *show(rvi_str s, char *buf, size_t cap)
{
	size_t o = 0;
	for (uint64_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.ptr[i];
		if (i >= SHOW_MAX || o + 8 >= cap) {
			snprintf(buf + o, cap - o, "...");
			return buf;
		}
		if (c >= 0x20 && c < 0x7f && c != '\\')
			buf[o++] = (char)c;
		else
			o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
	}
	buf[o] = '\0';
	return buf;
}

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static double lef32(const uint8_t *p)
{
	uint32_t u = le32(p);
	float f;
	memcpy(&f, &u, sizeof(f));
	return f;
}

static double lef64(const uint8_t *p)
{
	uint64_t u = le64(p);
	double d;
	memcpy(&d, &u, sizeof(d));
	return d;
}

/* ---- bounded reader ------------------------------------------------------ */

struct reader {
	const uint8_t *base;
	uint64_t pos, end;
	const char *file;
	char ctx[SHOW_MAX + 64]; /* what is being parsed, e.g. "key general.name" */
	rvi_err *err;
	int status; /* of the first failure, kept here too since err may be NULL */
};

static void set_ctx(struct reader *r, const char *fmt, ...) RVI_PRINTF(2, 3);
static void set_ctx(struct reader *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->ctx, sizeof(r->ctx), fmt, ap);
	va_end(ap);
}

/* Records a failure of the item in r->ctx; always returns false. */
static bool fail(struct reader *r, int status, const char *fmt, ...) RVI_PRINTF(3, 4);
static bool fail(struct reader *r, int status, const char *fmt, ...)
{
	char msg[RVI_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r->status = rvi_errorf(r->err, status, "%s: %s: %s", r->file, r->ctx, msg);
	return false;
}

static uint64_t left(const struct reader *r)
{
	return r->end - r->pos;
}

static bool take_bytes(struct reader *r, uint64_t n, const char *what, const uint8_t **out)
{
	*out = NULL; /* defined on failure too, which also quiets -Wmaybe-uninitialized */
	if (n > left(r))
		return fail(r, RV_ERR_MODEL,
		            "%s (%llu bytes at offset %llu) runs past the end of the file (%llu "
		            "bytes)",
		            what, (ull)n, (ull)r->pos, (ull)r->end);
	*out = r->base + r->pos;
	r->pos += n;
	return true;
}

static bool take_u8(struct reader *r, const char *what, uint8_t *out)
{
	const uint8_t *p;
	if (!take_bytes(r, 1, what, &p))
		return false;
	*out = p[0];
	return true;
}

static bool take_u16(struct reader *r, const char *what, uint16_t *out)
{
	const uint8_t *p;
	if (!take_bytes(r, 2, what, &p))
		return false;
	*out = le16(p);
	return true;
}

static bool take_u32(struct reader *r, const char *what, uint32_t *out)
{
	const uint8_t *p;
	if (!take_bytes(r, 4, what, &p))
		return false;
	*out = le32(p);
	return true;
}

static bool take_u64(struct reader *r, const char *what, uint64_t *out)
{
	const uint8_t *p;
	if (!take_bytes(r, 8, what, &p))
		return false;
	*out = le64(p);
	return true;
}

/* A GGUF string: u64 length, then that many bytes (no terminator). The length
 * is compared with what is left rather than added to the position, so even
 * UINT64_MAX cannot wrap. */
static bool take_str(struct reader *r, const char *what, rvi_str *out)
{
	uint64_t len;
	if (!take_u64(r, what, &len))
		return false;
	if (len > left(r))
		return fail(r, RV_ERR_MODEL,
		            "%s length %llu at offset %llu runs past the end of the file (%llu "
		            "bytes left)",
		            what, (ull)len, (ull)(r->pos - 8), (ull)left(r));
	out->ptr = (const char *)(r->base + r->pos);
	out->len = len;
	r->pos += len;
	return true;
}

/* ---- metadata ------------------------------------------------------------ */

static bool take_array(struct reader *r, rvi_gguf_kv *kv)
{
	uint32_t et;
	uint64_t n;
	if (!take_u32(r, "array element type", &et) || !take_u64(r, "array count", &n))
		return false;
	if (et == RVI_GGUF_ARRAY)
		return fail(r, RV_ERR_MODEL, "nested arrays are not supported");
	if (et >= RVI_GGUF_TYPE_COUNT)
		return fail(r, RV_ERR_MODEL, "unknown array element type %u", et);
	kv->arr_type = (enum rvi_gguf_type)et;
	kv->arr_n = n;
	if (et == RVI_GGUF_STRING) {
		/* Each element needs at least its 8-byte length: this bounds the
		 * allocation below by the file size. */
		if (n > left(r) / 8)
			return fail(r, RV_ERR_MODEL,
			            "array of %llu strings runs past the end of the file (%llu "
			            "bytes left)",
			            (ull)n, (ull)left(r));
		if (n == 0)
			return true;
		kv->strs = rvi_alloc((size_t)n, sizeof(*kv->strs));
		if (!kv->strs)
			return fail(r, RV_ERR_NOMEM, "out of memory for %llu strings", (ull)n);
		for (uint64_t i = 0; i < n; i++)
			if (!take_str(r, "array string", &kv->strs[i]))
				return false;
		return true;
	}
	uint64_t bytes;
	if (!rvi_mul_ok(n, value_size[et], &bytes) || bytes > left(r))
		return fail(r, RV_ERR_MODEL,
		            "array of %llu %s runs past the end of the file (%llu bytes left)",
		            (ull)n, type_names[et], (ull)left(r));
	if (!take_bytes(r, bytes, "array data", &kv->arr_data))
		return false;
	if (et == RVI_GGUF_BOOL) {
		for (uint64_t i = 0; i < n; i++)
			if (kv->arr_data[i] > 1)
				return fail(r, RV_ERR_MODEL,
				            "bool array element %llu is %u, not 0 or 1", (ull)i,
				            kv->arr_data[i]);
	}
	return true;
}

static bool take_value(struct reader *r, rvi_gguf_kv *kv)
{
	uint8_t u8;
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;
	switch (kv->type) {
	case RVI_GGUF_UINT8:
		if (!take_u8(r, "value", &u8))
			return false;
		kv->v.u64 = u8;
		return true;
	case RVI_GGUF_INT8:
		if (!take_u8(r, "value", &u8))
			return false;
		kv->v.i64 = (int8_t)u8;
		return true;
	case RVI_GGUF_UINT16:
		if (!take_u16(r, "value", &u16))
			return false;
		kv->v.u64 = u16;
		return true;
	case RVI_GGUF_INT16:
		if (!take_u16(r, "value", &u16))
			return false;
		kv->v.i64 = (int16_t)u16;
		return true;
	case RVI_GGUF_UINT32:
		if (!take_u32(r, "value", &u32))
			return false;
		kv->v.u64 = u32;
		return true;
	case RVI_GGUF_INT32:
		if (!take_u32(r, "value", &u32))
			return false;
		kv->v.i64 = (int32_t)u32;
		return true;
	case RVI_GGUF_FLOAT32: {
		const uint8_t *p;
		if (!take_bytes(r, 4, "value", &p))
			return false;
		kv->v.f64 = lef32(p);
		return true;
	}
	case RVI_GGUF_BOOL:
		if (!take_u8(r, "value", &u8))
			return false;
		if (u8 > 1)
			return fail(r, RV_ERR_MODEL, "bool value is %u, not 0 or 1", u8);
		kv->v.u64 = u8;
		return true;
	case RVI_GGUF_STRING:
		return take_str(r, "string value", &kv->v.str);
	case RVI_GGUF_ARRAY:
		return take_array(r, kv);
	case RVI_GGUF_UINT64:
		if (!take_u64(r, "value", &u64))
			return false;
		kv->v.u64 = u64;
		return true;
	case RVI_GGUF_INT64:
		if (!take_u64(r, "value", &u64))
			return false;
		kv->v.i64 = (int64_t)u64;
		return true;
	case RVI_GGUF_FLOAT64: {
		const uint8_t *p;
		if (!take_bytes(r, 8, "value", &p))
			return false;
		kv->v.f64 = lef64(p);
		return true;
	}
	default:
		break;
	}
	return fail(r, RV_ERR_MODEL, "unknown value type %u", (unsigned)kv->type);
}

static int cmp_str(rvi_str a, rvi_str b)
{
	uint64_t n = a.len < b.len ? a.len : b.len;
	int c = n ? memcmp(a.ptr, b.ptr, (size_t)n) : 0;
	if (c)
		return c;
	return (a.len > b.len) - (a.len < b.len);
}

static int cmp_kv_ptr(const void *a, const void *b)
{
	const rvi_gguf_kv *x = *(const rvi_gguf_kv *const *)a;
	const rvi_gguf_kv *y = *(const rvi_gguf_kv *const *)b;
	return cmp_str(x->key, y->key);
}

static int cmp_tensor_name(const void *a, const void *b)
{
	const rvi_gguf_tensor *x = *(const rvi_gguf_tensor *const *)a;
	const rvi_gguf_tensor *y = *(const rvi_gguf_tensor *const *)b;
	return cmp_str(x->name, y->name);
}

static int cmp_tensor_offset(const void *a, const void *b)
{
	const rvi_gguf_tensor *x = *(const rvi_gguf_tensor *const *)a;
	const rvi_gguf_tensor *y = *(const rvi_gguf_tensor *const *)b;
	return (x->offset > y->offset) - (x->offset < y->offset);
}

/* Sorting beats the pairwise check: a hostile file may hold a million keys. */
static int check_duplicate_keys(const rvi_gguf *g, rvi_err *err)
{
	if (g->n_kv < 2)
		return RV_OK;
	const rvi_gguf_kv **v = rvi_alloc((size_t)g->n_kv, sizeof(*v));
	if (!v)
		return rvi_errorf(err, RV_ERR_NOMEM, "%s: out of memory", g->path);
	for (uint64_t i = 0; i < g->n_kv; i++)
		v[i] = &g->kv[i];
	qsort(v, (size_t)g->n_kv, sizeof(*v), cmp_kv_ptr);
	int rc = RV_OK;
	for (uint64_t i = 1; i < g->n_kv; i++) {
		if (cmp_str(v[i - 1]->key, v[i]->key) == 0) {
			char b[SHOW_MAX + 8];
			rc = rvi_errorf(err, RV_ERR_MODEL, "%s: duplicate key %s", g->path,
			                show(v[i]->key, b, sizeof(b)));
			break;
		}
	}
	free(v);
	return rc;
}

static int read_alignment(rvi_gguf *g, rvi_err *err)
{
	g->alignment = RVI_GGUF_DEFAULT_ALIGNMENT;
	const rvi_gguf_kv *kv = rvi_gguf_find(g, "general.alignment");
	if (!kv)
		return RV_OK;
	if (kv->type != RVI_GGUF_UINT32)
		return rvi_errorf(err, RV_ERR_MODEL,
		                  "%s: key general.alignment has type %s, must be uint32", g->path,
		                  rvi_gguf_type_name(kv->type));
	uint64_t a = kv->v.u64;
	if (a == 0 || (a & (a - 1)) != 0 || a > RVI_GGUF_MAX_ALIGNMENT)
		return rvi_errorf(err, RV_ERR_MODEL,
		                  "%s: key general.alignment is %llu, must be a power of two no "
		                  "larger than %u",
		                  g->path, (ull)a, RVI_GGUF_MAX_ALIGNMENT);
	g->alignment = a;
	return RV_OK;
}

/* ---- tensor infos -------------------------------------------------------- */

/* Type, element count and byte size of one tensor; needs only its own info. */
static int check_tensor_type(const rvi_gguf *g, rvi_gguf_tensor *t, uint32_t type, rvi_err *err)
{
	char b[SHOW_MAX + 8];
	const char *name = show(t->name, b, sizeof(b));
	const rvi_type_traits *tt = type <= INT_MAX ? rvi_type_traits_of((int)type) : NULL;
	if (!tt || !tt->name)
		return rvi_errorf(err, RV_ERR_MODEL, "%s: unknown tensor type %u in tensor %s",
		                  g->path, type, name);
	if (!tt->supported)
		return rvi_errorf(err, RV_ERR_UNSUPPORTED,
		                  "%s: unsupported tensor type %s (%u) in tensor %s", g->path,
		                  tt->name, type, name);
	if (tt->block_size <= 0 || tt->type_size == 0)
		return rvi_errorf(err, RV_ERR_INTERNAL, "%s: no block layout for type %s", g->path,
		                  tt->name);
	t->type = (enum rvi_type)type;
	if (t->ne[0] % tt->block_size != 0)
		return rvi_errorf(err, RV_ERR_MODEL,
		                  "%s: tensor %s: first dimension %lld is not a multiple of the %s "
		                  "block size %lld",
		                  g->path, name, (long long)t->ne[0], tt->name,
		                  (long long)tt->block_size);
	uint64_t row, total;
	if (!rvi_mul_ok((uint64_t)(t->ne[0] / tt->block_size), tt->type_size, &row) ||
	    !rvi_mul_ok(row, t->nelem / (uint64_t)t->ne[0], &total))
		return rvi_errorf(err, RV_ERR_MODEL, "%s: tensor %s: byte size overflows", g->path,
		                  name);
	t->nbytes = total;
	return RV_OK;
}

static int take_tensor_info(struct reader *r, rvi_gguf *g, uint64_t i, rvi_gguf_tensor *t)
{
	char b[SHOW_MAX + 8];
	set_ctx(r, "tensor #%llu", (ull)i);
	if (!take_str(r, "name", &t->name))
		return r->status;
	if (t->name.len == 0 || t->name.len > RVI_GGUF_MAX_NAME)
		return rvi_errorf(r->err, RV_ERR_MODEL,
		                  "%s: tensor #%llu: name length %llu (%s) is not within 1..%d",
		                  r->file, (ull)i, (ull)t->name.len, show(t->name, b, sizeof(b)),
		                  RVI_GGUF_MAX_NAME);
	set_ctx(r, "tensor %s", show(t->name, b, sizeof(b)));

	uint32_t n_dims, type;
	if (!take_u32(r, "n_dims", &n_dims))
		return r->status;
	if (n_dims == 0 || n_dims > RVI_GGUF_MAX_DIMS)
		return rvi_errorf(r->err, RV_ERR_MODEL, "%s: %s: n_dims is %u, must be 1..%d",
		                  r->file, r->ctx, n_dims, RVI_GGUF_MAX_DIMS);
	t->n_dims = (int)n_dims;
	uint64_t nelem = 1;
	for (int d = 0; d < RVI_GGUF_MAX_DIMS; d++)
		t->ne[d] = 1;
	for (uint32_t d = 0; d < n_dims; d++) {
		uint64_t ne;
		if (!take_u64(r, "dimension", &ne))
			return r->status;
		if (ne == 0 || ne > INT64_MAX)
			return rvi_errorf(r->err, RV_ERR_MODEL,
			                  "%s: %s: dimension %u is %lld, must be positive", r->file,
			                  r->ctx, d, (long long)ne);
		t->ne[d] = (int64_t)ne;
		if (!rvi_mul_ok(nelem, ne, &nelem) || nelem > INT64_MAX)
			return rvi_errorf(r->err, RV_ERR_MODEL,
			                  "%s: %s: element count overflows (dimension %u is %llu)",
			                  r->file, r->ctx, d, (ull)ne);
	}
	t->nelem = nelem;
	if (!take_u32(r, "type", &type) || !take_u64(r, "offset", &t->offset))
		return r->status;
	return check_tensor_type(g, t, type, r->err);
}

static int check_tensor_layout(rvi_gguf *g, rvi_err *err)
{
	char b[SHOW_MAX + 8], b2[SHOW_MAX + 8];
	for (uint64_t i = 0; i < g->n_tensors; i++) {
		rvi_gguf_tensor *t = &g->tensors[i];
		uint64_t start, end;
		if (t->offset % g->alignment != 0)
			return rvi_errorf(err, RV_ERR_MODEL,
			                  "%s: tensor %s: offset %llu is not a multiple of the "
			                  "alignment %llu",
			                  g->path, show(t->name, b, sizeof(b)), (ull)t->offset,
			                  (ull)g->alignment);
		if (!rvi_add_ok(g->data_offset, t->offset, &start) ||
		    !rvi_add_ok(start, t->nbytes, &end) || end > g->size)
			return rvi_errorf(
			    err, RV_ERR_MODEL,
			    "%s: tensor %s: offset %llu + %llu bytes runs past the end "
			    "of the file (%llu bytes; data section at %llu)",
			    g->path, show(t->name, b, sizeof(b)), (ull)t->offset, (ull)t->nbytes,
			    (ull)g->size, (ull)g->data_offset);
		t->data = g->base + start;
	}
	if (g->n_tensors < 2)
		return RV_OK;

	const rvi_gguf_tensor **v = rvi_alloc((size_t)g->n_tensors, sizeof(*v));
	if (!v)
		return rvi_errorf(err, RV_ERR_NOMEM, "%s: out of memory", g->path);
	for (uint64_t i = 0; i < g->n_tensors; i++)
		v[i] = &g->tensors[i];
	int rc = RV_OK;
	qsort(v, (size_t)g->n_tensors, sizeof(*v), cmp_tensor_name);
	for (uint64_t i = 1; i < g->n_tensors; i++) {
		if (cmp_str(v[i - 1]->name, v[i]->name) == 0) {
			rc = rvi_errorf(err, RV_ERR_MODEL, "%s: duplicate tensor %s", g->path,
			                show(v[i]->name, b, sizeof(b)));
			goto out;
		}
	}
	/* After sorting by offset, no overlap means each tensor ends before the
	 * next begins (offsets and sizes were bounded by the file above). */
	qsort(v, (size_t)g->n_tensors, sizeof(*v), cmp_tensor_offset);
	for (uint64_t i = 1; i < g->n_tensors; i++) {
		const rvi_gguf_tensor *p = v[i - 1], *t = v[i];
		if (t->offset < p->offset + p->nbytes) {
			rc = rvi_errorf(err, RV_ERR_MODEL,
			                "%s: tensors %s (offset %llu, %llu bytes) and %s (offset "
			                "%llu) overlap",
			                g->path, show(p->name, b, sizeof(b)), (ull)p->offset,
			                (ull)p->nbytes, show(t->name, b2, sizeof(b2)),
			                (ull)t->offset);
			goto out;
		}
	}
out:
	free(v);
	return rc;
}

/* ---- the whole header ---------------------------------------------------- */

static int check_preamble(struct reader *r, rvi_gguf *g)
{
	rvi_err *err = r->err;
	if (g->size < GGUF_HEADER_BYTES)
		return rvi_errorf(err, RV_ERR_MODEL,
		                  "%s: file is too short to be GGUF (%llu bytes, the header alone "
		                  "is %d)",
		                  g->path, (ull)g->size, GGUF_HEADER_BYTES);
	const uint8_t *m;
	uint32_t version;
	take_bytes(r, 4, "magic", &m); /* these two cannot fail after the size check */
	if (memcmp(m, "GGUF", 4) != 0)
		return rvi_errorf(err, RV_ERR_MODEL,
		                  "%s: not a GGUF file (bad magic %02x %02x %02x %02x, expected "
		                  "47 47 55 46 \"GGUF\")",
		                  g->path, m[0], m[1], m[2], m[3]);
	take_u32(r, "version", &version);
	/* Big-endian GGUF keeps the magic bytes but swaps every number; a
	 * version whose low half is zero is such a file. */
	if (version > 0xffff && (version & 0xffff) == 0)
		return rvi_errorf(err, RV_ERR_UNSUPPORTED,
		                  "%s: byte-swapped (big-endian) GGUF files are not supported "
		                  "(version reads as 0x%08x)",
		                  g->path, version);
	if (version < 2 || version > 3)
		return rvi_errorf(err, version == 0 ? RV_ERR_MODEL : RV_ERR_UNSUPPORTED,
		                  "%s: GGUF version %u is not supported (only 2 and 3)", g->path,
		                  version);
	g->version = version;
	return RV_OK;
}

static int parse(rvi_gguf *g, rvi_err *err)
{
	struct reader r = {.base = g->base, .pos = 0, .end = g->size, .file = g->path, .err = err};
	char b[SHOW_MAX + 8];
	int rc = check_preamble(&r, g);
	if (rc)
		return rc;

	uint64_t n_tensors, n_kv, need_kv, need_t, need;
	set_ctx(&r, "header");
	/* Cannot fail: check_preamble made sure all 24 header bytes are there. */
	take_u64(&r, "tensor count", &n_tensors);
	take_u64(&r, "key count", &n_kv);
	if (!rvi_mul_ok(n_kv, MIN_KV_BYTES, &need_kv) ||
	    !rvi_mul_ok(n_tensors, MIN_TENSOR_BYTES, &need_t) ||
	    !rvi_add_ok(need_kv, need_t, &need) || need > left(&r))
		return rvi_errorf(err, RV_ERR_MODEL,
		                  "%s: header claims %llu keys and %llu tensors, more than the "
		                  "remaining %llu bytes can hold",
		                  g->path, (ull)n_kv, (ull)n_tensors, (ull)left(&r));

	if (n_kv) {
		g->kv = rvi_zalloc((size_t)n_kv, sizeof(*g->kv));
		if (!g->kv)
			return rvi_errorf(err, RV_ERR_NOMEM, "%s: out of memory for %llu keys",
			                  g->path, (ull)n_kv);
	}
	for (uint64_t i = 0; i < n_kv; i++) {
		/* Counted before parsing so close() frees a half-read string array. */
		rvi_gguf_kv *kv = &g->kv[g->n_kv++];
		uint32_t type;
		set_ctx(&r, "key #%llu", (ull)i);
		if (!take_str(&r, "key", &kv->key))
			return r.status;
		if (kv->key.len == 0 || kv->key.len > RVI_GGUF_MAX_KEY)
			return rvi_errorf(err, RV_ERR_MODEL,
			                  "%s: key #%llu: key length %llu (%s) is not within 1..%d",
			                  g->path, (ull)i, (ull)kv->key.len,
			                  show(kv->key, b, sizeof(b)), RVI_GGUF_MAX_KEY);
		set_ctx(&r, "key %s", show(kv->key, b, sizeof(b)));
		if (!take_u32(&r, "value type", &type))
			return r.status;
		kv->type = (enum rvi_gguf_type)type;
		if (!take_value(&r, kv))
			return r.status;
	}
	if ((rc = check_duplicate_keys(g, err)) || (rc = read_alignment(g, err)))
		return rc;

	/* Recheck with what the KVs left: still before allocating. */
	if (n_tensors > left(&r) / MIN_TENSOR_BYTES)
		return rvi_errorf(err, RV_ERR_MODEL,
		                  "%s: header claims %llu tensors, more than the remaining %llu "
		                  "bytes can hold",
		                  g->path, (ull)n_tensors, (ull)left(&r));
	if (n_tensors) {
		g->tensors = rvi_zalloc((size_t)n_tensors, sizeof(*g->tensors));
		if (!g->tensors)
			return rvi_errorf(err, RV_ERR_NOMEM, "%s: out of memory for %llu tensors",
			                  g->path, (ull)n_tensors);
	}
	for (uint64_t i = 0; i < n_tensors; i++) {
		if ((rc = take_tensor_info(&r, g, i, &g->tensors[i])))
			return rc;
		g->n_tensors++;
	}

	/* The data section starts at the end of the header rounded up to the
	 * alignment. With no tensors the file may stop before that padding. */
	uint64_t end;
	if (!rvi_add_ok(r.pos, g->alignment - 1, &end))
		return rvi_errorf(err, RV_ERR_MODEL, "%s: data section offset overflows", g->path);
	g->data_offset = end / g->alignment * g->alignment;
	return check_tensor_layout(g, err);
}

static rvi_gguf *new_gguf(const char *name, rvi_err *err)
{
	rvi_gguf *g = calloc(1, sizeof(*g));
	if (g)
		g->path = strdup(name);
	if (!g || !g->path) {
		free(g);
		rvi_errorf(err, RV_ERR_NOMEM, "%s: out of memory", name);
		return NULL;
	}
	return g;
}

int rvi_gguf_open_memory(rvi_gguf **out, const void *data, size_t size, const char *name,
                         rvi_err *err)
{
	*out = NULL;
	if (!name)
		name = "<memory>";
	if (!data && size)
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "%s: NULL buffer", name);
	rvi_gguf *g = new_gguf(name, err);
	if (!g)
		return RV_ERR_NOMEM;
	g->base = data;
	g->size = size;
	int rc = parse(g, err);
	if (rc) {
		rvi_gguf_close(g);
		return rc;
	}
	*out = g;
	return RV_OK;
}

/* The mapping is read-only and private: tensors are used in place, never
 * written. (If another process truncates the file while it is mapped, touching
 * the lost pages raises SIGBUS; no reader can check against that.) */
int rvi_gguf_open(rvi_gguf **out, const char *path, rvi_err *err)
{
	*out = NULL;
	if (!path)
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "NULL model path");
	int fd;
	struct stat st;
	int rc = rvi_open_regular(path, &fd, &st, err);
	if (rc != RV_OK)
		return rc;
	if ((uint64_t)st.st_size > SIZE_MAX) {
		close(fd);
		return rvi_errorf(err, RV_ERR_IO, "%s: too large to map (%llu bytes)", path,
		                  (ull)st.st_size);
	}
	rvi_gguf *g = new_gguf(path, err);
	if (!g) {
		close(fd);
		return RV_ERR_NOMEM;
	}
	g->size = (uint64_t)st.st_size;
	/* mmap rejects length 0; an empty file is left unmapped and the parser
	 * reports it as too short. */
	if (g->size) {
		void *p = mmap(NULL, (size_t)g->size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (p == MAP_FAILED) {
			int e = errno;
			close(fd);
			rvi_gguf_close(g);
			return rvi_errorf(err, RV_ERR_IO, "%s: cannot map: %s", path, strerror(e));
		}
		g->base = p;
		g->mapped = true;
	}
	close(fd);
	g->identity =
	    (rvi_file_identity){(uint64_t)st.st_dev, (uint64_t)st.st_ino, (uint64_t)st.st_size,
	                        (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec,
	                        (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec};
	rc = parse(g, err);
	if (rc) {
		rvi_gguf_close(g);
		return rc;
	}
	*out = g;
	return RV_OK;
}

void rvi_gguf_close(rvi_gguf *g)
{
	if (!g)
		return;
	for (uint64_t i = 0; i < g->n_kv; i++)
		free(g->kv[i].strs);
	free(g->kv);
	free(g->tensors);
	if (g->mapped)
		munmap((void *)g->base, (size_t)g->size);
	free(g->path);
	free(g);
}

/* ---- lookups and typed getters ------------------------------------------- */

const rvi_gguf_kv *rvi_gguf_find(const rvi_gguf *g, const char *key)
{
	if (!g || !key)
		return NULL;
	for (uint64_t i = 0; i < g->n_kv; i++)
		if (rvi_str_eq(g->kv[i].key, key))
			return &g->kv[i];
	return NULL;
}

const rvi_gguf_tensor *rvi_gguf_find_tensor(const rvi_gguf *g, const char *name)
{
	if (!g || !name)
		return NULL;
	for (uint64_t i = 0; i < g->n_tensors; i++)
		if (rvi_str_eq(g->tensors[i].name, name))
			return &g->tensors[i];
	return NULL;
}

/* The kv for a getter, or NULL with *rc set: RV_OK when absent and optional. */
static const rvi_gguf_kv *lookup(const rvi_gguf *g, const char *key, bool required, int *rc,
                                 rvi_err *err)
{
	const rvi_gguf_kv *kv = rvi_gguf_find(g, key);
	*rc = RV_OK;
	if (!kv && required)
		*rc = rvi_errorf(err, RV_ERR_MODEL, "missing key %s in %s", key,
		                 g ? g->path : "(no file)");
	return kv;
}

/* "uint32" or "array of float32", for type mismatch messages. */
static const char *describe(const rvi_gguf_kv *kv, char *buf, size_t cap)
{
	if (kv->type == RVI_GGUF_ARRAY)
		snprintf(buf, cap, "array of %s", rvi_gguf_type_name(kv->arr_type));
	else
		snprintf(buf, cap, "%s", rvi_gguf_type_name(kv->type));
	return buf;
}

static int wrong_type(const rvi_gguf *g, const rvi_gguf_kv *kv, const char *want, rvi_err *err)
{
	char b[SHOW_MAX + 8], d[32];
	return rvi_errorf(err, RV_ERR_MODEL, "%s: key %s has type %s, expected %s", g->path,
	                  show(kv->key, b, sizeof(b)), describe(kv, d, sizeof(d)), want);
}

static int out_of_range(const rvi_gguf *g, const rvi_gguf_kv *kv, const char *want, rvi_err *err)
{
	char b[SHOW_MAX + 8], v[32];
	if (is_signed_type(kv->type))
		snprintf(v, sizeof(v), "%lld", (long long)kv->v.i64);
	else if (is_int_type(kv->type))
		snprintf(v, sizeof(v), "%llu", (ull)kv->v.u64);
	else
		snprintf(v, sizeof(v), "%g", kv->v.f64);
	return rvi_errorf(err, RV_ERR_MODEL, "%s: key %s: value %s does not fit in %s", g->path,
	                  show(kv->key, b, sizeof(b)), v, want);
}

int rvi_gguf_get_u32(const rvi_gguf *g, const char *key, bool required, uint32_t *out, rvi_err *err)
{
	int rc;
	const rvi_gguf_kv *kv = lookup(g, key, required, &rc, err);
	if (!kv)
		return rc;
	if (!is_int_type(kv->type))
		return wrong_type(g, kv, "an integer (uint32)", err);
	if (is_signed_type(kv->type) ? kv->v.i64 < 0 || kv->v.i64 > UINT32_MAX
	                             : kv->v.u64 > UINT32_MAX)
		return out_of_range(g, kv, "uint32", err);
	*out = is_signed_type(kv->type) ? (uint32_t)kv->v.i64 : (uint32_t)kv->v.u64;
	return RV_OK;
}

int rvi_gguf_get_i64(const rvi_gguf *g, const char *key, bool required, int64_t *out, rvi_err *err)
{
	int rc;
	const rvi_gguf_kv *kv = lookup(g, key, required, &rc, err);
	if (!kv)
		return rc;
	if (!is_int_type(kv->type))
		return wrong_type(g, kv, "an integer (int64)", err);
	if (!is_signed_type(kv->type) && kv->v.u64 > INT64_MAX)
		return out_of_range(g, kv, "int64", err);
	*out = is_signed_type(kv->type) ? kv->v.i64 : (int64_t)kv->v.u64;
	return RV_OK;
}

int rvi_gguf_get_f32(const rvi_gguf *g, const char *key, bool required, float *out, rvi_err *err)
{
	int rc;
	const rvi_gguf_kv *kv = lookup(g, key, required, &rc, err);
	if (!kv)
		return rc;
	if (kv->type != RVI_GGUF_FLOAT32 && kv->type != RVI_GGUF_FLOAT64)
		return wrong_type(g, kv, "float32 or float64", err);
	/* A finite float64 that would become infinite is a broken value, not a
	 * request for infinity. */
	if (isfinite(kv->v.f64) && fabs(kv->v.f64) > FLT_MAX)
		return out_of_range(g, kv, "float32", err);
	*out = (float)kv->v.f64;
	return RV_OK;
}

int rvi_gguf_get_bool(const rvi_gguf *g, const char *key, bool required, bool *out, rvi_err *err)
{
	int rc;
	const rvi_gguf_kv *kv = lookup(g, key, required, &rc, err);
	if (!kv)
		return rc;
	if (kv->type != RVI_GGUF_BOOL)
		return wrong_type(g, kv, "bool", err);
	*out = kv->v.u64 != 0;
	return RV_OK;
}

int rvi_gguf_get_str(const rvi_gguf *g, const char *key, bool required, rvi_str *out, rvi_err *err)
{
	int rc;
	const rvi_gguf_kv *kv = lookup(g, key, required, &rc, err);
	if (!kv)
		return rc;
	if (kv->type != RVI_GGUF_STRING)
		return wrong_type(g, kv, "string", err);
	*out = kv->v.str;
	return RV_OK;
}

int rvi_gguf_get_arr(const rvi_gguf *g, const char *key, bool required,
                     enum rvi_gguf_type elem_type, const rvi_gguf_kv **out, rvi_err *err)
{
	int rc;
	const rvi_gguf_kv *kv = lookup(g, key, required, &rc, err);
	if (!kv) {
		if (rc == RV_OK)
			*out = NULL;
		return rc;
	}
	bool ok =
	    kv->type == RVI_GGUF_ARRAY &&
	    (elem_type == RVI_GGUF_INT64 ? is_int_type(kv->arr_type) : kv->arr_type == elem_type);
	if (!ok) {
		char want[48];
		snprintf(want, sizeof(want), "array of %s",
		         elem_type == RVI_GGUF_INT64 ? "integers" : rvi_gguf_type_name(elem_type));
		return wrong_type(g, kv, want, err);
	}
	*out = kv;
	return RV_OK;
}

/* The element's bytes, or NULL when i is out of range or not fixed-size. */
static const uint8_t *elem(const rvi_gguf_kv *kv, uint64_t i)
{
	if (!kv || kv->type != RVI_GGUF_ARRAY || i >= kv->arr_n || !kv->arr_data ||
	    (unsigned)kv->arr_type >= RVI_GGUF_TYPE_COUNT || value_size[kv->arr_type] == 0)
		return NULL;
	return kv->arr_data + i * value_size[kv->arr_type];
}

double rvi_gguf_arr_f64(const rvi_gguf_kv *kv, uint64_t i)
{
	const uint8_t *p = elem(kv, i);
	if (!p)
		return 0.0;
	switch (kv->arr_type) {
	case RVI_GGUF_FLOAT32:
		return lef32(p);
	case RVI_GGUF_FLOAT64:
		return lef64(p);
	case RVI_GGUF_UINT64:
		return (double)le64(p);
	default:
		return (double)rvi_gguf_arr_i64(kv, i);
	}
}

int64_t rvi_gguf_arr_i64(const rvi_gguf_kv *kv, uint64_t i)
{
	const uint8_t *p = elem(kv, i);
	if (!p)
		return 0;
	switch (kv->arr_type) {
	case RVI_GGUF_UINT8:
	case RVI_GGUF_BOOL:
		return p[0];
	case RVI_GGUF_INT8:
		return (int8_t)p[0];
	case RVI_GGUF_UINT16:
		return le16(p);
	case RVI_GGUF_INT16:
		return (int16_t)le16(p);
	case RVI_GGUF_UINT32:
		return le32(p);
	case RVI_GGUF_INT32:
		return (int32_t)le32(p);
	case RVI_GGUF_UINT64: {
		uint64_t u = le64(p);
		return u > INT64_MAX ? INT64_MAX : (int64_t)u; /* saturate, like floats */
	}
	case RVI_GGUF_INT64:
		return (int64_t)le64(p);
	case RVI_GGUF_FLOAT32:
	case RVI_GGUF_FLOAT64: {
		/* Converting an out-of-range float to an integer is undefined. */
		double d = kv->arr_type == RVI_GGUF_FLOAT32 ? lef32(p) : lef64(p);
		if (isnan(d))
			return 0;
		if (d >= 9223372036854775807.0)
			return INT64_MAX;
		if (d <= -9223372036854775808.0)
			return INT64_MIN;
		return (int64_t)d;
	}
	default:
		return 0;
	}
}
