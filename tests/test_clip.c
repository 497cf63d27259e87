/* test_clip.c: the CLIP vision encoder + LLaVA mlp projector (models/clip.c).
 *
 * References: the ref-hf float64 embeddings (HF CLIP + LLaVA-1.5 semantics:
 * class token first, every stored block, erf-GELU projector) for three
 * preprocessed images of the fixtures. The F32 mmproj must match within
 * 1e-4; F16 and Q8_0 copies of it (converted here) within looser named
 * tolerances. Also: bit-identical output for 1, 2 and 3 threads (on the
 * fixture, and at LLaVA-1.5's 577 positions, where rvi_matmul takes its BLAS
 * path), a file with ffn_up/ffn_down swapped, an ignored v.post_ln, erf GELU
 * in the ViT, and one malformed mmproj per check the loader makes (built in
 * memory from the valid file with the small GGUF writer below), each
 * failing with the file and the key or tensor named; the same for the
 * SigLIP + pixel-shuffle loader of the idefics3 family (models/idefics3.c),
 * whose mmproj shares CLIP's keys and block tensors. */
#include "models/clip.h"
#include "models/idefics3.h"
#include "tests/testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MMPROJ "tiny-llava-mmproj-f32.gguf"

/* Tolerances against the float64 reference: max |diff| (the embeddings
 * reach |5|) and the error's RMS relative to the reference's RMS.
 * F32 weights, f32 activations: measured ~5e-6 max, ~5e-7 relative. */
#define TOL_F32 1e-4
#define REL_F32 1e-5
/* Every tensor of 2+ dims rounded to F16 (half an ulp: 2^-12 relative) and
 * the error grown through 3 random-weight blocks and the projector:
 * measured 7.5e-3 max, 1.1e-3 relative. */
#define TOL_F16 1e-2
#define REL_F16 3e-3
/* Q8_0 matrices: per-weight error up to max|block| / 254, and rvi_matmul
 * quantizes the activations to Q8_0 as well (as llama.cpp does). Measured
 * 0.17 max, 2.9% relative (weights alone: 0.10, 1.8%). A layout or scale
 * bug would be ~100% relative. */
#define TOL_Q8_0 0.3
#define REL_Q8_0 0.05

#define SIDE   56
#define N_OUT  16
#define W_OUT  128
#define N_PIX  (3 * SIDE * SIDE)
#define N_EMBD (N_OUT * W_OUT)

static const struct {
	const char *pixels, *embd;
} pairs[] = {
    {"ref-hf-npy/ref-hf-llava-f32.shapes_64x48.describe-pixels.npy",
     "ref-hf-npy/ref-hf-llava-f32.shapes_64x48.describe-embd.npy"},
    {"ref-hf-npy/ref-hf-llava-f32.shapes_100x80.describe.stb-decoded-pixels.npy",
     "ref-hf-npy/ref-hf-llava-f32.shapes_100x80.describe.stb-decoded-embd.npy"},
    {"ref-hf-npy/ref-hf-llava-f32.shapes_100x80.describe-pixels.npy",
     "ref-hf-npy/ref-hf-llava-f32.shapes_100x80.describe-embd.npy"},
};
#define N_PAIRS (sizeof(pairs) / sizeof(pairs[0]))

/* ---- .npy ---------------------------------------------------------------- */

/* A little-endian float32 C-order .npy whose shape has exactly `count`
 * elements; NULL (and a failed check) otherwise. */
static float *npy_load(const char *name, size_t count)
{
	size_t n = 0;
	char *buf = tu_read_file(tu_data(name), &n);
	float *out = NULL;
	CHECK(buf != NULL, "cannot read %s", name);
	if (!buf)
		return NULL;
	const uint8_t *u = (const uint8_t *)buf;
	size_t hoff = 0, hlen = 0;
	if (n >= 10 && memcmp(buf, "\x93NUMPY", 6) == 0) {
		if (u[6] == 1) {
			hoff = 10;
			hlen = (size_t)u[8] | (size_t)u[9] << 8;
		} else if (n >= 12) {
			hoff = 12;
			hlen = (size_t)u[8] | (size_t)u[9] << 8 | (size_t)u[10] << 16 |
			       (size_t)u[11] << 24;
		}
	}
	CHECK(hoff && hlen <= n - hoff, "%s: not a .npy file", name);
	if (!hoff || hlen > n - hoff)
		goto done;
	/* The header is a Python dict literal; buf is NUL-terminated past n,
	 * and the header is copied so strstr stays inside it. */
	char *hdr = malloc(hlen + 1);
	if (!hdr)
		goto done;
	memcpy(hdr, buf + hoff, hlen);
	hdr[hlen] = 0;
	const char *shape = strstr(hdr, "'shape': (");
	size_t elems = 1;
	bool ok = strstr(hdr, "'descr': '<f4'") && strstr(hdr, "'fortran_order': False") && shape;
	if (ok) {
		char *p = (char *)shape + 10;
		while (*p && *p != ')') {
			char *end;
			unsigned long long d = strtoull(p, &end, 10);
			if (end == p)
				break;
			elems *= (size_t)d;
			p = end;
			while (*p == ',' || *p == ' ')
				p++;
		}
	}
	free(hdr);
	CHECK(ok && elems == count && n - hoff - hlen == count * sizeof(float),
	      "%s: expected %zu little-endian float32 values (C order)", name, count);
	if (!ok || elems != count || n - hoff - hlen != count * sizeof(float))
		goto done;
	out = malloc(count * sizeof(float));
	if (out)
		memcpy(out, buf + hoff + hlen, count * sizeof(float));
done:
	free(buf);
	return out;
}

/* ---- a GGUF re-writer ------------------------------------------------------
 * A parsed file becomes an editable list of keys and tensors (pointing at the
 * original's bytes or at buffers owned here); edit it, then serialise it. */

typedef struct skv {
	char key[128];
	enum rvi_gguf_type type;
	uint64_t u; /* unsigned ints, bool */
	int64_t i;  /* signed ints */
	double f;   /* floats */
	rvi_str s;  /* string */
	enum rvi_gguf_type arr_type;
	uint64_t arr_n;
	const uint8_t *arr_data; /* fixed-size elements, little-endian */
	const rvi_str *strs;     /* string elements */
	bool deleted;
} skv;

typedef struct stensor {
	char name[128];
	enum rvi_type type;
	int n_dims;
	int64_t ne[4];
	const void *data;
	uint64_t avail; /* bytes readable at data */
	bool deleted;
} stensor;

#define SPEC_MAX_KV    64
#define SPEC_MAX_T     128
#define SPEC_MAX_OWNED 256

typedef struct spec {
	skv kv[SPEC_MAX_KV];
	int n_kv;
	stensor t[SPEC_MAX_T];
	int n_t;
	void *owned[SPEC_MAX_OWNED];
	int n_owned;
} spec;

static void *spec_own(spec *s, size_t n)
{
	if (s->n_owned >= SPEC_MAX_OWNED)
		return NULL;
	void *p = calloc(1, n ? n : 1);
	if (p)
		s->owned[s->n_owned++] = p;
	return p;
}

static void spec_free(spec *s)
{
	if (!s)
		return;
	for (int i = 0; i < s->n_owned; i++)
		free(s->owned[i]);
	free(s);
}

static spec *spec_from(const rvi_gguf *g)
{
	spec *s = calloc(1, sizeof(*s));
	CHECK(s && g->n_kv <= SPEC_MAX_KV && g->n_tensors <= SPEC_MAX_T, "spec too small");
	if (!s || g->n_kv > SPEC_MAX_KV || g->n_tensors > SPEC_MAX_T) {
		free(s);
		return NULL;
	}
	for (uint64_t i = 0; i < g->n_kv; i++) {
		const rvi_gguf_kv *kv = &g->kv[i];
		skv *d = &s->kv[s->n_kv++];
		snprintf(d->key, sizeof(d->key), "%.*s", (int)kv->key.len, kv->key.ptr);
		d->type = kv->type;
		d->u = kv->v.u64;
		d->i = kv->v.i64;
		d->f = kv->v.f64;
		d->s = kv->v.str;
		d->arr_type = kv->arr_type;
		d->arr_n = kv->arr_n;
		d->arr_data = kv->arr_data;
		d->strs = kv->strs;
	}
	for (uint64_t i = 0; i < g->n_tensors; i++) {
		const rvi_gguf_tensor *t = &g->tensors[i];
		stensor *d = &s->t[s->n_t++];
		snprintf(d->name, sizeof(d->name), "%.*s", (int)t->name.len, t->name.ptr);
		d->type = t->type;
		d->n_dims = t->n_dims;
		memcpy(d->ne, t->ne, sizeof(d->ne));
		d->data = t->data;
		d->avail = t->nbytes;
	}
	return s;
}

static skv *spec_kv(spec *s, const char *key)
{
	for (int i = 0; i < s->n_kv; i++)
		if (!s->kv[i].deleted && strcmp(s->kv[i].key, key) == 0)
			return &s->kv[i];
	if (s->n_kv >= SPEC_MAX_KV)
		return NULL;
	skv *d = &s->kv[s->n_kv++];
	memset(d, 0, sizeof(*d));
	snprintf(d->key, sizeof(d->key), "%s", key);
	return d;
}

static void set_str(spec *s, const char *key, const char *v)
{
	skv *d = spec_kv(s, key);
	if (!d)
		return;
	d->type = RVI_GGUF_STRING;
	d->s = (rvi_str){v, strlen(v)};
}

static void set_u32(spec *s, const char *key, uint32_t v)
{
	skv *d = spec_kv(s, key);
	if (!d)
		return;
	d->type = RVI_GGUF_UINT32;
	d->u = v;
}

static void set_f32(spec *s, const char *key, float v)
{
	skv *d = spec_kv(s, key);
	if (!d)
		return;
	d->type = RVI_GGUF_FLOAT32;
	d->f = v;
}

static void set_bool(spec *s, const char *key, bool v)
{
	skv *d = spec_kv(s, key);
	if (!d)
		return;
	d->type = RVI_GGUF_BOOL;
	d->u = v;
}

/* An array of n values of elem_type (FLOAT32 or INT32) from doubles. */
static void set_arr(spec *s, const char *key, enum rvi_gguf_type elem_type, const double *v, int n)
{
	skv *d = spec_kv(s, key);
	uint8_t *bytes = spec_own(s, (size_t)n * 4);
	if (!d || !bytes)
		return;
	for (int i = 0; i < n; i++) {
		uint32_t u;
		if (elem_type == RVI_GGUF_FLOAT32) {
			float f = (float)v[i];
			memcpy(&u, &f, 4);
		} else {
			u = (uint32_t)(int32_t)v[i];
		}
		for (int b = 0; b < 4; b++)
			bytes[i * 4 + b] = (uint8_t)(u >> (8 * b));
	}
	d->type = RVI_GGUF_ARRAY;
	d->arr_type = elem_type;
	d->arr_n = (uint64_t)n;
	d->arr_data = bytes;
}

static void del_kv(spec *s, const char *key)
{
	for (int i = 0; i < s->n_kv; i++)
		if (strcmp(s->kv[i].key, key) == 0)
			s->kv[i].deleted = true;
}

static stensor *spec_t(spec *s, const char *name)
{
	for (int i = 0; i < s->n_t; i++)
		if (!s->t[i].deleted && strcmp(s->t[i].name, name) == 0)
			return &s->t[i];
	return NULL;
}

static void set_shape(spec *s, const char *name, int n_dims, int64_t a, int64_t b, int64_t c,
                      int64_t d)
{
	stensor *t = spec_t(s, name);
	CHECK(t != NULL, "no tensor %s to reshape", name);
	if (!t)
		return;
	t->n_dims = n_dims;
	t->ne[0] = a;
	t->ne[1] = b;
	t->ne[2] = c;
	t->ne[3] = d;
}

static void del_tensor(spec *s, const char *name)
{
	stensor *t = spec_t(s, name);
	CHECK(t != NULL, "no tensor %s to delete", name);
	if (t)
		t->deleted = true;
}

/* A copy of tensor `from` named `to`. */
static void dup_tensor(spec *s, const char *from, const char *to)
{
	stensor *t = spec_t(s, from);
	CHECK(t != NULL && s->n_t < SPEC_MAX_T, "cannot copy %s", from);
	if (!t || s->n_t >= SPEC_MAX_T)
		return;
	s->t[s->n_t] = *t;
	snprintf(s->t[s->n_t].name, sizeof(s->t[s->n_t].name), "%s", to);
	s->n_t++;
}

static void w_str(tu_buf *b, rvi_str s)
{
	tu_put_le(b, s.len, 8);
	tu_put(b, s.ptr, (size_t)s.len);
}

static int elem_size(enum rvi_gguf_type t)
{
	switch (t) {
	case RVI_GGUF_UINT8:
	case RVI_GGUF_INT8:
	case RVI_GGUF_BOOL:
		return 1;
	case RVI_GGUF_UINT16:
	case RVI_GGUF_INT16:
		return 2;
	case RVI_GGUF_UINT32:
	case RVI_GGUF_INT32:
	case RVI_GGUF_FLOAT32:
		return 4;
	case RVI_GGUF_UINT64:
	case RVI_GGUF_INT64:
	case RVI_GGUF_FLOAT64:
		return 8;
	default:
		return 0;
	}
}

static void w_scalar(tu_buf *b, const skv *kv)
{
	const int sz = elem_size(kv->type);
	if (kv->type == RVI_GGUF_FLOAT32) {
		float f = (float)kv->f;
		uint32_t u;
		memcpy(&u, &f, 4);
		tu_put_le(b, u, 4);
	} else if (kv->type == RVI_GGUF_FLOAT64) {
		uint64_t u;
		memcpy(&u, &kv->f, 8);
		tu_put_le(b, u, 8);
	} else if (kv->type == RVI_GGUF_INT8 || kv->type == RVI_GGUF_INT16 ||
	           kv->type == RVI_GGUF_INT32 || kv->type == RVI_GGUF_INT64) {
		tu_put_le(b, (uint64_t)kv->i, sz);
	} else {
		tu_put_le(b, kv->u, sz);
	}
}

#define ALIGN 32

/* The spec as GGUF v3 bytes (malloc'ed), NULL on failure. */
static uint8_t *spec_write(const spec *s, size_t *size)
{
	tu_buf b = {0};
	uint64_t n_kv = 0, n_t = 0;
	for (int i = 0; i < s->n_kv; i++)
		n_kv += !s->kv[i].deleted;
	for (int i = 0; i < s->n_t; i++)
		n_t += !s->t[i].deleted;
	tu_put(&b, "GGUF", 4);
	tu_put_le(&b, 3, 4);
	tu_put_le(&b, n_t, 8);
	tu_put_le(&b, n_kv, 8);
	for (int i = 0; i < s->n_kv; i++) {
		const skv *kv = &s->kv[i];
		if (kv->deleted)
			continue;
		w_str(&b, (rvi_str){kv->key, strlen(kv->key)});
		tu_put_le(&b, kv->type, 4);
		if (kv->type == RVI_GGUF_STRING) {
			w_str(&b, kv->s);
		} else if (kv->type == RVI_GGUF_ARRAY) {
			tu_put_le(&b, kv->arr_type, 4);
			tu_put_le(&b, kv->arr_n, 8);
			if (kv->arr_type == RVI_GGUF_STRING)
				for (uint64_t j = 0; j < kv->arr_n; j++)
					w_str(&b, kv->strs[j]);
			else
				tu_put(&b, kv->arr_data,
				       (size_t)kv->arr_n * (size_t)elem_size(kv->arr_type));
		} else {
			w_scalar(&b, kv);
		}
	}
	/* tensor infos, data offsets aligned */
	uint64_t off = 0;
	bool ok = true;
	for (int i = 0; i < s->n_t; i++) {
		const stensor *t = &s->t[i];
		if (t->deleted)
			continue;
		w_str(&b, (rvi_str){t->name, strlen(t->name)});
		tu_put_le(&b, (uint64_t)t->n_dims, 4);
		for (int d = 0; d < t->n_dims; d++)
			tu_put_le(&b, (uint64_t)t->ne[d], 8);
		tu_put_le(&b, t->type, 4);
		tu_put_le(&b, off, 8);
		const uint64_t bytes =
		    rvi_row_size(t->type, t->ne[0]) * (uint64_t)(t->ne[1] * t->ne[2] * t->ne[3]);
		ok = ok && bytes <= t->avail;
		off += (bytes + ALIGN - 1) / ALIGN * ALIGN;
	}
	CHECK(ok, "a tensor grew beyond its data");
	while (b.n % ALIGN)
		tu_put_le(&b, 0, 1);
	for (int i = 0; i < s->n_t; i++) {
		const stensor *t = &s->t[i];
		if (t->deleted)
			continue;
		const uint64_t bytes =
		    rvi_row_size(t->type, t->ne[0]) * (uint64_t)(t->ne[1] * t->ne[2] * t->ne[3]);
		tu_put(&b, t->data, (size_t)(bytes <= t->avail ? bytes : 0));
		while (b.n % ALIGN)
			tu_put_le(&b, 0, 1);
	}
	CHECK(ok, "writing a GGUF failed");
	if (!ok) {
		free(b.p);
		return NULL;
	}
	*size = b.n;
	return b.p;
}

/* An in-memory file: the bytes must outlive the rvi_gguf. */
typedef struct memfile {
	uint8_t *bytes;
	rvi_gguf *g;
} memfile;

static int memfile_open(memfile *m, const spec *s, const char *name, rvi_err *err)
{
	size_t n = 0;
	m->g = NULL;
	m->bytes = spec_write(s, &n);
	if (!m->bytes)
		return RV_ERR_NOMEM;
	return rvi_gguf_open_memory(&m->g, m->bytes, n, name, err);
}

static void memfile_close(memfile *m)
{
	rvi_gguf_close(m->g);
	free(m->bytes);
	m->g = NULL;
	m->bytes = NULL;
}

/* ---- weight conversions ------------------------------------------------- */

static void to_f16(spec *s, stensor *t)
{
	const uint64_t n = (uint64_t)(t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]);
	uint16_t *h = spec_own(s, (size_t)n * 2);
	CHECK(h != NULL && t->type == RVI_TYPE_F32, "cannot convert %s", t->name);
	if (!h || t->type != RVI_TYPE_F32)
		return;
	const float *f = t->data;
	for (uint64_t i = 0; i < n; i++)
		h[i] = rvi_f32_to_f16(f[i]);
	t->type = RVI_TYPE_F16;
	t->data = h;
	t->avail = n * 2;
}

/* Q8_0 as the format defines it: per 32 values d = max|x| / 127 (fp16),
 * q = round(x / d). */
static void to_q8_0(spec *s, stensor *t)
{
	const uint64_t n = (uint64_t)(t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]);
	rv_block_q8_0 *q = spec_own(s, (size_t)(n / RV_QK8_0) * sizeof(*q));
	CHECK(q != NULL && t->type == RVI_TYPE_F32 && t->ne[0] % RV_QK8_0 == 0,
	      "cannot quantize %s", t->name);
	if (!q || t->type != RVI_TYPE_F32 || t->ne[0] % RV_QK8_0 != 0)
		return;
	const float *f = t->data;
	for (uint64_t b = 0; b < n / RV_QK8_0; b++) {
		float amax = 0;
		for (int j = 0; j < RV_QK8_0; j++)
			amax = fmaxf(amax, fabsf(f[b * RV_QK8_0 + j]));
		const float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
		q[b].d = rvi_f32_to_f16(d);
		for (int j = 0; j < RV_QK8_0; j++)
			q[b].qs[j] = (int8_t)lroundf(f[b * RV_QK8_0 + j] * id);
	}
	t->type = RVI_TYPE_Q8_0;
	t->data = q;
	t->avail = (n / RV_QK8_0) * sizeof(*q);
}

/* ---- helpers --------------------------------------------------------------- */

typedef struct refs {
	float *pixels[N_PAIRS];
	float *embd[N_PAIRS];
} refs;

static bool refs_load(refs *r)
{
	bool ok = true;
	for (size_t i = 0; i < N_PAIRS; i++) {
		r->pixels[i] = npy_load(pairs[i].pixels, N_PIX);
		r->embd[i] = npy_load(pairs[i].embd, N_EMBD);
		ok = ok && r->pixels[i] && r->embd[i];
	}
	return ok;
}

static void refs_free(refs *r)
{
	for (size_t i = 0; i < N_PAIRS; i++) {
		free(r->pixels[i]);
		free(r->embd[i]);
	}
}

/* out (N_OUT x W_OUT, malloc'ed) for pixels, or NULL after a failed check. */
static float *encode(const rvi_clip *c, const float *pixels, int n_threads)
{
	float *out = malloc(N_EMBD * sizeof(float));
	rvi_err err = {0};
	int rc = out ? rvi_clip_encode(c, pixels, n_threads, out, &err) : RV_ERR_NOMEM;
	CHECK(rc == RV_OK, "encode (%d threads): %d %s", n_threads, rc, err.msg);
	if (rc != RV_OK) {
		free(out);
		return NULL;
	}
	return out;
}

static double max_abs_diff(const float *a, const float *b, size_t n, size_t *at)
{
	double m = 0;
	*at = 0;
	for (size_t i = 0; i < n; i++) {
		double d = fabs((double)a[i] - (double)b[i]);
		if (!(d <= m)) { /* NaN counts as the worst */
			m = isnan(d) ? INFINITY : d;
			*at = i;
		}
	}
	return m;
}

/* Encodes every reference image with c: each within tol (max abs) and
 * rel_tol (RMS of the error over RMS of the reference) of float64. */
static void check_against_refs(const rvi_clip *c, const refs *r, const char *label, double tol,
                               double rel_tol)
{
	for (size_t i = 0; i < N_PAIRS; i++) {
		float *out = encode(c, r->pixels[i], 2);
		if (!out)
			continue;
		size_t at;
		const float *want = r->embd[i];
		double d = max_abs_diff(out, want, N_EMBD, &at), se = 0, sr = 0;
		for (size_t j = 0; j < N_EMBD; j++) {
			se += ((double)out[j] - want[j]) * ((double)out[j] - want[j]);
			sr += (double)want[j] * want[j];
		}
		const double rel = sqrt(se / sr);
		printf("  %-4s %-62s max|diff| %.3g (tol %g), rel rms %.3g (tol %g)\n", label,
		       pairs[i].embd + 18, d, tol, rel, rel_tol);
		CHECK(d <= tol && rel <= rel_tol,
		      "%s %s: max |diff| %g at row %zu col %zu (got %g, want %g), rel rms %g",
		      label, pairs[i].embd, d, at / W_OUT, at % W_OUT, out[at], want[at], rel);
		free(out);
	}
}

static rvi_gguf *open_fixture(void)
{
	rvi_gguf *g = NULL;
	rvi_err err = {0};
	int rc = rvi_gguf_open(&g, tu_data(MMPROJ), &err);
	CHECK(rc == RV_OK, "open %s: %s", MMPROJ, err.msg);
	return rc == RV_OK ? g : NULL;
}

/* ---- tests ------------------------------------------------------------------ */

static void test_fixture_f32(const rvi_gguf *g, const refs *r)
{
	rvi_clip c;
	rvi_err err = {0};
	int rc = rvi_clip_load(&c, g, &err);
	CHECK(rc == RV_OK, "load: %s", err.msg);
	if (rc != RV_OK)
		return;
	CHECK(rvi_clip_image_size(&c) == SIDE, "image size %d", rvi_clip_image_size(&c));
	CHECK(rvi_clip_n_output_tokens(&c) == N_OUT, "%lld tokens",
	      (long long)rvi_clip_n_output_tokens(&c));
	CHECK(rvi_clip_n_output_embd(&c) == W_OUT, "width %lld",
	      (long long)rvi_clip_n_output_embd(&c));
	const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
	const float std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
	CHECK(memcmp(rvi_clip_image_mean(&c), mean, sizeof(mean)) == 0 &&
	          memcmp(rvi_clip_image_std(&c), std, sizeof(std)) == 0,
	      "mean/std differ from the OpenAI CLIP values");
	CHECK(c.hp.n_layer == 3 && c.hp.n_head == 4 && c.hp.head_dim == 16 && c.hp.n_ff == 256 &&
	          c.hp.eps == 9.9999997e-06f && c.hp.projection_dim_key == 128 &&
	          c.hp.n_embd == 64 && !c.hp.use_gelu && c.hp.patch_size == 14 &&
	          c.hp.n_mm_hidden == 128 && c.patch_bias == NULL,
	      "hyperparameters");

	check_against_refs(&c, r, "F32", TOL_F32, REL_F32);

	/* thread count: identical bits */
	float *o1 = encode(&c, r->pixels[0], 1);
	float *o2 = encode(&c, r->pixels[0], 2);
	float *o3 = encode(&c, r->pixels[0], 3);
	if (o1 && o2 && o3)
		CHECK(memcmp(o1, o2, N_EMBD * sizeof(float)) == 0 &&
		          memcmp(o1, o3, N_EMBD * sizeof(float)) == 0,
		      "output depends on the thread count");
	free(o1);
	free(o2);
	free(o3);

	/* the caller's width check */
	rvi_err e2 = {0};
	CHECK(rvi_clip_check_text_width(&c, 128, &e2) == RV_OK, "width 128 refused: %s", e2.msg);
	rc = rvi_clip_check_text_width(&c, 4096, &e2);
	CHECK(rc == RV_ERR_MODEL && strstr(e2.msg, "128") && strstr(e2.msg, "4096") &&
	          strstr(e2.msg, MMPROJ),
	      "width mismatch: %d %s", rc, e2.msg);

	/* bad arguments */
	float out[N_EMBD];
	rc = rvi_clip_encode(&c, NULL, 1, out, &e2);
	CHECK(rc == RV_ERR_INVALID_ARG, "NULL pixels: %d", rc);
	rc = rvi_clip_encode(&c, r->pixels[0], 1, NULL, &e2);
	CHECK(rc == RV_ERR_INVALID_ARG, "NULL output: %d", rc);
	rvi_clip_free(&c);
	rc = rvi_clip_encode(&c, r->pixels[0], 1, out, &e2);
	CHECK(rc == RV_ERR_INVALID_ARG, "freed model: %d", rc);
	rvi_clip_free(&c); /* twice is harmless */
}

/* A converted copy of the fixture: every tensor of 2+ dims to F16 (as
 * published mmproj files are), or every matrix to Q8_0. */
static void test_converted(const rvi_gguf *g, const refs *r, enum rvi_type type)
{
	spec *s = spec_from(g);
	if (!s)
		return;
	for (int i = 0; i < s->n_t; i++) {
		stensor *t = &s->t[i];
		if (type == RVI_TYPE_F16 && t->n_dims >= 2)
			to_f16(s, t);
		else if (type == RVI_TYPE_Q8_0 && t->n_dims == 2 &&
		         strcmp(t->name, "v.position_embd.weight") != 0)
			to_q8_0(s, t);
	}
	set_u32(s, "general.file_type", type == RVI_TYPE_F16 ? 1 : 7);
	memfile m;
	rvi_err err = {0};
	const char *name = type == RVI_TYPE_F16 ? "mmproj-f16.gguf" : "mmproj-q8_0.gguf";
	int rc = memfile_open(&m, s, name, &err);
	CHECK(rc == RV_OK, "%s: %s", name, err.msg);
	rvi_clip c;
	if (rc == RV_OK && (rc = rvi_clip_load(&c, m.g, &err)) == RV_OK) {
		CHECK(c.layers[0].wq.type == type && c.layers[2].fc2.type == type &&
		          c.mm2.type == type &&
		          c.patch_embd.type == (type == RVI_TYPE_F16 ? type : RVI_TYPE_F32),
		      "%s: weights not converted", name);
		if (type == RVI_TYPE_F16)
			check_against_refs(&c, r, "F16", TOL_F16, REL_F16);
		else
			check_against_refs(&c, r, "Q8_0", TOL_Q8_0, REL_Q8_0);
		float *o1 = encode(&c, r->pixels[1], 1);
		float *o2 = encode(&c, r->pixels[1], 2);
		if (o1 && o2)
			CHECK(memcmp(o1, o2, N_EMBD * sizeof(float)) == 0,
			      "%s: output depends on the thread count", name);
		free(o1);
		free(o2);
		rvi_clip_free(&c);
	} else {
		CHECK(rc == RV_OK, "load %s: %s", name, err.msg);
	}
	memfile_close(&m);
	spec_free(s);
}

/* Variants that must give exactly the fixture's output: ffn_up/ffn_down
 * (and their biases) swapped by an old converter, and a v.post_ln that
 * LLaVA does not use. */
static void test_equivalent_files(const rvi_gguf *g, const refs *r)
{
	rvi_clip base;
	rvi_err err = {0};
	if (rvi_clip_load(&base, g, &err) != RV_OK)
		return;
	float *want = encode(&base, r->pixels[0], 2);
	rvi_clip_free(&base);

	for (int variant = 0; variant < 2; variant++) {
		spec *s = spec_from(g);
		if (!s)
			break;
		const char *name = variant == 0 ? "mmproj-ffn-swapped.gguf" : "mmproj-post-ln.gguf";
		if (variant == 0) {
			for (int i = 0; i < s->n_t; i++) {
				char *n = s->t[i].name, *up = strstr(n, ".ffn_up."),
				     *down = strstr(n, ".ffn_down.");
				char tail[64];
				if (up) {
					snprintf(tail, sizeof(tail), "%s", up + 8);
					sprintf(up, ".ffn_down.%s", tail);
				} else if (down) {
					snprintf(tail, sizeof(tail), "%s", down + 10);
					sprintf(down, ".ffn_up.%s", tail);
				}
			}
		} else {
			dup_tensor(s, "v.pre_ln.weight", "v.post_ln.weight");
			dup_tensor(s, "v.pre_ln.bias", "v.post_ln.bias");
		}
		memfile m;
		int rc = memfile_open(&m, s, name, &err);
		CHECK(rc == RV_OK, "%s: %s", name, err.msg);
		rvi_clip c;
		if (rc == RV_OK && (rc = rvi_clip_load(&c, m.g, &err)) == RV_OK) {
			float *got = encode(&c, r->pixels[0], 2);
			if (got && want)
				CHECK(memcmp(got, want, N_EMBD * sizeof(float)) == 0,
				      "%s: output differs from the fixture's", name);
			free(got);
			rvi_clip_free(&c);
		} else {
			CHECK(rc == RV_OK, "load %s: %s", name, err.msg);
		}
		memfile_close(&m);
		spec_free(s);
	}
	free(want);
}

/* clip.use_gelu = true switches the ViT MLP to erf GELU: it must run and
 * give other (finite) embeddings. */
static void test_use_gelu(const rvi_gguf *g, const refs *r)
{
	spec *s = spec_from(g);
	if (!s)
		return;
	set_bool(s, "clip.use_gelu", true);
	memfile m;
	rvi_err err = {0};
	int rc = memfile_open(&m, s, "mmproj-gelu.gguf", &err);
	rvi_clip c;
	if (rc == RV_OK && (rc = rvi_clip_load(&c, m.g, &err)) == RV_OK) {
		CHECK(c.hp.use_gelu, "use_gelu not read");
		float *got = encode(&c, r->pixels[0], 2);
		if (got) {
			size_t at;
			double d = max_abs_diff(got, r->embd[0], N_EMBD, &at);
			CHECK(isfinite(d) && d > 1e-3, "erf GELU changed nothing (%g)", d);
		}
		free(got);
		rvi_clip_free(&c);
	}
	CHECK(rc == RV_OK, "use_gelu file: %s", err.msg);
	memfile_close(&m);
	spec_free(s);
}

/* Thread independence where rvi_matmul takes its BLAS path for real: the
 * fixture's weights at 336 x 336 pixels (577 positions, as LLaVA-1.5's
 * ViT-L/14-336), one block, random position table and pixels. */
static void test_wide_threads(const rvi_gguf *g)
{
	spec *s = spec_from(g);
	if (!s)
		return;
	const int S = 336, n_pos = (336 / 14) * (336 / 14) + 1;
	set_u32(s, "clip.vision.image_size", (uint32_t)S);
	set_u32(s, "clip.vision.block_count", 1);
	for (int i = 0; i < s->n_t; i++)
		if (strncmp(s->t[i].name, "v.blk.1.", 8) == 0 ||
		    strncmp(s->t[i].name, "v.blk.2.", 8) == 0)
			s->t[i].deleted = true;
	stensor *pos = spec_t(s, "v.position_embd.weight");
	float *table = spec_own(s, (size_t)64 * n_pos * sizeof(float));
	float *pixels = malloc((size_t)3 * S * S * sizeof(float));
	if (!pos || !table || !pixels) {
		CHECK(false, "wide model: setup failed");
		free(pixels);
		spec_free(s);
		return;
	}
	uint64_t rng = 7;
	for (int i = 0; i < 64 * n_pos; i++)
		table[i] = tu_rand_uniform(&rng, -0.5f, 0.5f);
	for (int i = 0; i < 3 * S * S; i++)
		pixels[i] = tu_rand_uniform(&rng, -2.0f, 2.0f);
	pos->ne[1] = n_pos;
	pos->data = table;
	pos->avail = (uint64_t)64 * n_pos * sizeof(float);

	memfile m;
	rvi_err err = {0};
	rvi_clip c;
	int rc = memfile_open(&m, s, "mmproj-336.gguf", &err);
	if (rc == RV_OK)
		rc = rvi_clip_load(&c, m.g, &err);
	CHECK(rc == RV_OK, "336-pixel model: %s", err.msg);
	if (rc == RV_OK) {
		const int64_t n = rvi_clip_n_output_tokens(&c) * rvi_clip_n_output_embd(&c);
		CHECK(rvi_clip_n_output_tokens(&c) == n_pos - 1, "%lld tokens",
		      (long long)rvi_clip_n_output_tokens(&c));
		float *o[3];
		for (int t = 0; t < 3; t++) {
			o[t] = malloc((size_t)n * sizeof(float));
			rc = o[t] ? rvi_clip_encode(&c, pixels, t + 1, o[t], &err) : RV_ERR_NOMEM;
			CHECK(rc == RV_OK, "encode 336 (%d threads): %s", t + 1, err.msg);
		}
		for (int t = 1; t < 3; t++) {
			int64_t differ = 0;
			for (int64_t i = 0; o[0] && o[t] && i < n; i++)
				differ += o[0][i] != o[t][i];
			CHECK(o[0] && o[t] && differ == 0,
			      "577 positions: %lld of %lld values differ between 1 and %d threads",
			      (long long)differ, (long long)n, t + 1);
		}
		for (int t = 0; t < 3; t++)
			free(o[t]);
		rvi_clip_free(&c);
	}
	memfile_close(&m);
	free(pixels);
	spec_free(s);
}

/* One malformed variant per loader check. */
enum {
	BAD_PROJECTOR,
	BAD_PROJECTOR_TYPE,
	BAD_ARCH,
	BAD_NO_VISION,
	BAD_MEAN_2,
	BAD_STD_4,
	BAD_STD_ZERO,
	BAD_MEAN_SCALAR,
	BAD_MEAN_MISSING,
	BAD_PATCH_0,
	BAD_IMAGE_NOT_MULTIPLE,
	BAD_IMAGE_HUGE,
	BAD_HEADS,
	BAD_EMBD_0,
	BAD_EPS_MISSING,
	BAD_EPS_NEG,
	BAD_USE_GELU_TYPE,
	BAD_FEATURE_LAYER,
	BAD_MISSING_BLOCK_TENSOR,
	BAD_MISSING_BIAS,
	BAD_SHAPE_Q,
	BAD_SHAPE_FFN,
	BAD_SHAPE_POS,
	BAD_SHAPE_PATCH,
	BAD_SHAPE_MM2,
	BAD_MISSING_MM0,
	BAD_BLOCKS_MORE,
	BAD_BLOCKS_FEWER,
	BAD_COUNT
};

static const struct {
	const char *what;
	int status;
	const char *phrase1, *phrase2;
} bad_cases[BAD_COUNT] = {
    [BAD_PROJECTOR] = {"projector ldp", RV_ERR_UNSUPPORTED, "clip.projector_type", "ldp"},
    [BAD_PROJECTOR_TYPE] = {"projector type u32", RV_ERR_MODEL, "clip.projector_type", "string"},
    [BAD_ARCH] = {"architecture llama", RV_ERR_UNSUPPORTED, "architecture", "llama"},
    [BAD_NO_VISION] = {"no vision encoder", RV_ERR_UNSUPPORTED, "clip.has_vision_encoder", "false"},
    [BAD_MEAN_2] = {"mean of 2", RV_ERR_MODEL, "clip.vision.image_mean", "2 elements"},
    [BAD_STD_4] = {"std of 4", RV_ERR_MODEL, "clip.vision.image_std", "4 elements"},
    [BAD_STD_ZERO] = {"std 0", RV_ERR_MODEL, "clip.vision.image_std[1]", "positive"},
    [BAD_MEAN_SCALAR] = {"mean scalar", RV_ERR_MODEL, "clip.vision.image_mean", "array"},
    [BAD_MEAN_MISSING] = {"mean missing", RV_ERR_MODEL, "clip.vision.image_mean", "missing"},
    [BAD_PATCH_0] = {"patch 0", RV_ERR_MODEL, "clip.vision.patch_size", "= 0"},
    [BAD_IMAGE_NOT_MULTIPLE] = {"image 50", RV_ERR_MODEL, "clip.vision.image_size 50",
                                "clip.vision.patch_size 14"},
    [BAD_IMAGE_HUGE] = {"image 1e6", RV_ERR_MODEL, "clip.vision.image_size", "out of range"},
    [BAD_HEADS] = {"heads 3", RV_ERR_MODEL, "clip.vision.attention.head_count 3",
                   "clip.vision.embedding_length 64"},
    [BAD_EMBD_0] = {"width 0", RV_ERR_MODEL, "clip.vision.embedding_length", "out of range"},
    [BAD_EPS_MISSING] = {"eps missing", RV_ERR_MODEL, "clip.vision.attention.layer_norm_epsilon",
                         "missing"},
    [BAD_EPS_NEG] = {"eps -1", RV_ERR_MODEL, "clip.vision.attention.layer_norm_epsilon",
                     "out of range"},
    [BAD_USE_GELU_TYPE] = {"use_gelu u32", RV_ERR_MODEL, "clip.use_gelu", "bool"},
    [BAD_FEATURE_LAYER] = {"feature layer 2", RV_ERR_UNSUPPORTED, "clip.vision.feature_layer",
                           "3 stored blocks"},
    [BAD_MISSING_BLOCK_TENSOR] = {"missing attn_k", RV_ERR_MODEL, "missing tensor",
                                  "v.blk.1.attn_k.weight"},
    [BAD_MISSING_BIAS] = {"missing ffn bias", RV_ERR_MODEL, "missing tensor",
                          "v.blk.2.ffn_down.bias"},
    [BAD_SHAPE_Q] = {"attn_q shape", RV_ERR_MODEL, "v.blk.0.attn_q.weight", "expected [64, 64]"},
    [BAD_SHAPE_FFN] = {"ffn_up shape", RV_ERR_MODEL, "v.blk.0.ffn_up.weight", "expected [64, 256]"},
    [BAD_SHAPE_POS] = {"position rows", RV_ERR_MODEL, "v.position_embd.weight",
                       "expected [64, 17]"},
    [BAD_SHAPE_PATCH] = {"patch kernel", RV_ERR_MODEL, "v.patch_embd.weight",
                         "expected [14, 14, 3, 64]"},
    [BAD_SHAPE_MM2] = {"mm.2 input", RV_ERR_MODEL, "mm.2.weight", "expected [128, 64]"},
    [BAD_MISSING_MM0] = {"missing mm.0", RV_ERR_MODEL, "missing tensor", "mm.0.weight"},
    [BAD_BLOCKS_MORE] = {"block_count 4", RV_ERR_MODEL, "missing tensor", "v.blk.3.ln1.weight"},
    [BAD_BLOCKS_FEWER] = {"block_count 2", RV_ERR_MODEL, "v.blk.2.", "clip.vision.block_count (2)"},
};

static void make_bad(spec *s, int which)
{
	const double two[2] = {0.5, 0.5}, four[4] = {0.2, 0.2, 0.2, 0.2};
	const double std0[3] = {0.26, 0, 0.27}, feat[1] = {2};
	switch (which) {
	case BAD_PROJECTOR:
		set_str(s, "clip.projector_type", "ldp");
		break;
	case BAD_PROJECTOR_TYPE:
		set_u32(s, "clip.projector_type", 1);
		break;
	case BAD_ARCH:
		set_str(s, "general.architecture", "llama");
		break;
	case BAD_NO_VISION:
		set_bool(s, "clip.has_vision_encoder", false);
		break;
	case BAD_MEAN_2:
		set_arr(s, "clip.vision.image_mean", RVI_GGUF_FLOAT32, two, 2);
		break;
	case BAD_STD_4:
		set_arr(s, "clip.vision.image_std", RVI_GGUF_FLOAT32, four, 4);
		break;
	case BAD_STD_ZERO:
		set_arr(s, "clip.vision.image_std", RVI_GGUF_FLOAT32, std0, 3);
		break;
	case BAD_MEAN_SCALAR:
		set_f32(s, "clip.vision.image_mean", 0.5f);
		break;
	case BAD_MEAN_MISSING:
		del_kv(s, "clip.vision.image_mean");
		break;
	case BAD_PATCH_0:
		set_u32(s, "clip.vision.patch_size", 0);
		break;
	case BAD_IMAGE_NOT_MULTIPLE:
		set_u32(s, "clip.vision.image_size", 50);
		break;
	case BAD_IMAGE_HUGE:
		set_u32(s, "clip.vision.image_size", 1000000);
		break;
	case BAD_HEADS:
		set_u32(s, "clip.vision.attention.head_count", 3);
		break;
	case BAD_EMBD_0:
		set_u32(s, "clip.vision.embedding_length", 0);
		break;
	case BAD_EPS_MISSING:
		del_kv(s, "clip.vision.attention.layer_norm_epsilon");
		break;
	case BAD_EPS_NEG:
		set_f32(s, "clip.vision.attention.layer_norm_epsilon", -1.0f);
		break;
	case BAD_USE_GELU_TYPE:
		set_u32(s, "clip.use_gelu", 1);
		break;
	case BAD_FEATURE_LAYER:
		set_arr(s, "clip.vision.feature_layer", RVI_GGUF_INT32, feat, 1);
		break;
	case BAD_MISSING_BLOCK_TENSOR:
		del_tensor(s, "v.blk.1.attn_k.weight");
		break;
	case BAD_MISSING_BIAS:
		del_tensor(s, "v.blk.2.ffn_down.bias");
		break;
	case BAD_SHAPE_Q:
		set_shape(s, "v.blk.0.attn_q.weight", 2, 32, 128, 1, 1);
		break;
	case BAD_SHAPE_FFN: /* same element count, neither fc1's shape nor fc2's */
		set_shape(s, "v.blk.0.ffn_up.weight", 2, 128, 128, 1, 1);
		break;
	case BAD_SHAPE_POS:
		set_shape(s, "v.position_embd.weight", 2, 64, 16, 1, 1);
		break;
	case BAD_SHAPE_PATCH:
		set_shape(s, "v.patch_embd.weight", 4, 14, 14, 3, 32);
		break;
	case BAD_SHAPE_MM2:
		set_shape(s, "mm.2.weight", 2, 256, 64, 1, 1);
		set_shape(s, "mm.2.bias", 1, 64, 1, 1, 1);
		break;
	case BAD_MISSING_MM0:
		del_tensor(s, "mm.0.weight");
		break;
	case BAD_BLOCKS_MORE:
		set_u32(s, "clip.vision.block_count", 4);
		break;
	case BAD_BLOCKS_FEWER:
		set_u32(s, "clip.vision.block_count", 2);
		break;
	}
}

static void test_bad_files(const rvi_gguf *g)
{
	for (int which = 0; which < BAD_COUNT; which++) {
		spec *s = spec_from(g);
		if (!s)
			return;
		make_bad(s, which);
		memfile m;
		rvi_err err = {0};
		int rc = memfile_open(&m, s, "bad-mmproj.gguf", &err);
		CHECK(rc == RV_OK, "%s: the crafted file does not parse: %s", bad_cases[which].what,
		      err.msg);
		if (rc == RV_OK) {
			rvi_clip c;
			memset(&c, 0xff, sizeof(c)); /* load must reset it */
			rc = rvi_clip_load(&c, m.g, &err);
			CHECK(rc == bad_cases[which].status &&
			          strstr(err.msg, bad_cases[which].phrase1) &&
			          strstr(err.msg, bad_cases[which].phrase2) &&
			          strstr(err.msg, "bad-mmproj.gguf"),
			      "%s: got %d \"%s\", want %d with \"%s\" and \"%s\"",
			      bad_cases[which].what, rc, err.msg, bad_cases[which].status,
			      bad_cases[which].phrase1, bad_cases[which].phrase2);
			CHECK(c.layers == NULL && c.pos_embd == NULL, "%s: failed load left state",
			      bad_cases[which].what);
			if (rc == RV_OK)
				rvi_clip_free(&c);
		}
		memfile_close(&m);
		spec_free(s);
	}
	/* the unmodified spec must load: the writer itself is not the fault */
	spec *s = spec_from(g);
	if (s) {
		memfile m;
		rvi_err err = {0};
		rvi_clip c;
		int rc = memfile_open(&m, s, "rewritten.gguf", &err);
		if (rc == RV_OK)
			rc = rvi_clip_load(&c, m.g, &err);
		CHECK(rc == RV_OK, "the rewritten fixture does not load: %s", err.msg);
		if (rc == RV_OK)
			rvi_clip_free(&c);
		memfile_close(&m);
		spec_free(s);
	}
}

/* ---- idefics3 (SmolVLM) mmproj files ------------------------------------ */

static const struct {
	const char *what;
	const char *key, *tensor; /* a key set to u32 value, or a tensor deleted */
	uint32_t value;
	int status;
	const char *phrase1, *phrase2;
} bad_idefics3[] = {
    {"scale 3", "clip.vision.projector.scale_factor", NULL, 3, RV_ERR_MODEL,
     "clip.vision.projector.scale_factor 3", "8 x 8 patch grid"},
    {"scale 0", "clip.vision.projector.scale_factor", NULL, 0, RV_ERR_MODEL,
     "clip.vision.projector.scale_factor", "out of range"},
    {"scale missing", "clip.vision.projector.scale_factor", NULL, UINT32_MAX, RV_ERR_MODEL,
     "clip.vision.projector.scale_factor", "missing"},
    {"longest edge 1e6", "clip.vision.preproc_image_size", NULL, 1000000, RV_ERR_MODEL,
     "clip.vision.preproc_image_size", "out of range"},
    {"longest edge missing", "clip.vision.preproc_image_size", NULL, UINT32_MAX, RV_ERR_MODEL,
     "clip.vision.preproc_image_size", "missing"},
    {"tile not a multiple of the patch", "clip.vision.image_size", NULL, 60, RV_ERR_MODEL,
     "clip.vision.image_size 60", "clip.vision.patch_size 8"},
    {"no connector", NULL, "mm.model.fc.weight", 0, RV_ERR_MODEL, "missing tensor",
     "mm.model.fc.weight"},
    {"no post-LN", NULL, "v.post_ln.bias", 0, RV_ERR_MODEL, "missing tensor", "v.post_ln.bias"},
    {"no patch bias", NULL, "v.patch_embd.bias", 0, RV_ERR_MODEL, "missing tensor",
     "v.patch_embd.bias"},
    {"no block tensor", NULL, "v.blk.2.attn_v.bias", 0, RV_ERR_MODEL, "missing tensor",
     "v.blk.2.attn_v.bias"},
    {"connector width", "clip.vision.projector.scale_factor", NULL, 2, RV_ERR_MODEL,
     "mm.model.fc.weight", "expected [256, 96]"},
    {"projector mlp", NULL, NULL, 0, RV_ERR_UNSUPPORTED, "clip.projector_type", "mlp"},
};

static void test_bad_idefics3(void)
{
	rvi_gguf *g = NULL;
	rvi_err err = {0};
	const char *path = tu_data("smolvlm/tiny-smolvlm-mmproj-f32.gguf");
	CHECK(rvi_gguf_open(&g, path, &err) == RV_OK, "%s", err.msg);
	if (!g)
		return;
	const int n = (int)(sizeof(bad_idefics3) / sizeof(bad_idefics3[0]));
	for (int which = -1; which < n; which++) {
		spec *s = spec_from(g);
		if (!s)
			break;
		if (which >= 0) {
			if (bad_idefics3[which].key && bad_idefics3[which].value == UINT32_MAX)
				del_kv(s, bad_idefics3[which].key);
			else if (bad_idefics3[which].key)
				set_u32(s, bad_idefics3[which].key, bad_idefics3[which].value);
			else if (bad_idefics3[which].tensor)
				del_tensor(s, bad_idefics3[which].tensor);
			else
				set_str(s, "clip.projector_type", "mlp");
		}
		memfile m;
		int rc = memfile_open(&m, s, "bad-mmproj.gguf", &err);
		CHECK(rc == RV_OK, "the crafted file does not parse: %s", err.msg);
		if (rc == RV_OK) {
			rvi_idefics3 x;
			memset(&x, 0xff, sizeof(x)); /* load must reset it */
			rc = rvi_idefics3_load(&x, m.g, &err);
			if (which < 0) { /* unmodified: the writer is not the fault */
				CHECK(rc == RV_OK, "the rewritten file does not load: %s", err.msg);
			} else {
				CHECK(rc == bad_idefics3[which].status &&
				          strstr(err.msg, bad_idefics3[which].phrase1) &&
				          strstr(err.msg, bad_idefics3[which].phrase2) &&
				          strstr(err.msg, "bad-mmproj.gguf"),
				      "%s: got %d \"%s\", want %d with \"%s\" and \"%s\"",
				      bad_idefics3[which].what, rc, err.msg,
				      bad_idefics3[which].status, bad_idefics3[which].phrase1,
				      bad_idefics3[which].phrase2);
				CHECK(rc == RV_OK || (x.layers == NULL && x.pos_embd == NULL),
				      "%s: failed load left state", bad_idefics3[which].what);
			}
			if (rc == RV_OK)
				rvi_idefics3_free(&x);
		}
		memfile_close(&m);
		spec_free(s);
	}
	rvi_gguf_close(g);
}

int main(void)
{
	test_bad_idefics3();
	rvi_gguf *g = open_fixture();
	refs r = {0};
	if (g && refs_load(&r)) {
		test_fixture_f32(g, &r);
		test_converted(g, &r, RVI_TYPE_F16);
		test_converted(g, &r, RVI_TYPE_Q8_0);
		test_equivalent_files(g, &r);
		test_use_gelu(g, &r);
		test_wide_threads(g);
		test_bad_files(g);
	}
	refs_free(&r);
	rvi_gguf_close(g);
	return tu_finish("test_clip");
}
