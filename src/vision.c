/* vision.c: image file -> cached or freshly encoded image embeddings (see
 * vision.h). */
#include "src/vision.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/embcache.h"
#include "simd/kernels.h"

/* Bumped whenever the encoder's output bits change, so old cache entries
 * stop matching. */
#define ENCODER_VERSION 2

/* The side file's one line; a file with anything else is ignored. */
#define SIDE_TAG "rlaifv mmproj id v1"

static int side_path(const char *dir, const rvi_file_identity *fi, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s/mmproj-%llx-%llx.id", dir, (unsigned long long)fi->dev,
	                 (unsigned long long)fi->ino);
	return n > 0 && (size_t)n < cap ? 0 : -1;
}

static int side_line(const rvi_file_identity *fi, const uint8_t id[RVI_SHA256_BYTES], char *out,
                     size_t cap)
{
	int n = snprintf(out, cap, SIDE_TAG " size=%llu mtime=%lld ctime=%lld sha256=",
	                 (unsigned long long)fi->size, (long long)fi->mtime_ns,
	                 (long long)fi->ctime_ns);
	for (int i = 0; i < RVI_SHA256_BYTES && n > 0 && (size_t)n + 3 < cap; i++)
		n += snprintf(out + n, cap - (size_t)n, "%02x", id[i]);
	return n;
}

/* The remembered hash, when the side file names this very file. */
static bool side_read(const char *path, const rvi_file_identity *fi, uint8_t id[RVI_SHA256_BYTES])
{
	int fd;
	struct stat st;
	rvi_err ignored;
	if (rvi_open_regular(path, &fd, &st, &ignored) != RV_OK)
		return false;
	char got[256], want[256];
	ssize_t n = read(fd, got, sizeof(got) - 1);
	close(fd);
	if (n <= 0)
		return false;
	got[n] = 0;
	uint8_t zero[RVI_SHA256_BYTES] = {0};
	const int prefix = side_line(fi, zero, want, sizeof(want)) - 2 * RVI_SHA256_BYTES;
	if (n != prefix + 2 * RVI_SHA256_BYTES + 1 || memcmp(got, want, (size_t)prefix) != 0 ||
	    got[n - 1] != '\n')
		return false;
	for (int i = 0; i < RVI_SHA256_BYTES; i++) {
		unsigned v;
		if (sscanf(got + prefix + 2 * i, "%2x", &v) != 1)
			return false;
		id[i] = (uint8_t)v;
	}
	return true;
}

/* Written to a temporary file and renamed, like cache entries, so that a
 * reader never sees half a line. */
static void side_write(const char *path, const rvi_file_identity *fi,
                       const uint8_t id[RVI_SHA256_BYTES], rvi_err *warning)
{
	char tmp[RVI_EMBCACHE_PATH_MAX + 16], line[256];
	snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path);
	int n = side_line(fi, id, line, sizeof(line) - 1);
	line[n++] = '\n';
	int fd = mkstemp(tmp);
	if (fd < 0) {
		rvi_errorf(warning, RV_ERR_IO, "cannot write %s: %s", path, strerror(errno));
		return;
	}
	bool ok = write(fd, line, (size_t)n) == n;
	ok = close(fd) == 0 && ok;
	if (!ok || rename(tmp, path) != 0) {
		rvi_errorf(warning, RV_ERR_IO, "cannot write %s: %s", path, strerror(errno));
		unlink(tmp);
	}
}

void rvi_vision_mmproj_id(const rvi_gguf *g, rvi_mmproj_id *state, const char *cache_dir,
                          uint8_t id[RVI_SHA256_BYTES], rvi_err *warning)
{
	warning->msg[0] = 0;
	pthread_mutex_lock(&state->lock);
	if (!state->known) {
		char path[RVI_EMBCACHE_PATH_MAX];
		const bool have_side = g->mapped && cache_dir &&
		                       side_path(cache_dir, &g->identity, path, sizeof(path)) == 0;
		if (!have_side || !side_read(path, &g->identity, state->id)) {
			/* The mapping, not a second read of the path: these are the
			 * bytes the encoder uses. */
			rvi_sha256_ctx c;
			rvi_sha256_init(&c);
			rvi_sha256_update(&c, g->base, (size_t)g->size);
			rvi_sha256_final(&c, state->id);
			if (have_side)
				side_write(path, &g->identity, state->id, warning);
		}
		state->known = true;
	}
	memcpy(id, state->id, RVI_SHA256_BYTES);
	pthread_mutex_unlock(&state->lock);
}

bool rvi_vision_same_mmproj(const rvi_gguf *a, const rvi_gguf *b)
{
	if (a == b)
		return true;
	if (!a || !b || !a->mapped || !b->mapped)
		return false;
	const rvi_file_identity *x = &a->identity, *y = &b->identity;
	return x->dev == y->dev && x->ino == y->ino && x->size == y->size &&
	       x->mtime_ns == y->mtime_ns && x->ctime_ns == y->ctime_ns;
}

int rvi_vision_open(const rvi_vision_arch *arch, const void *model, const char *path,
                    const rvi_vision_opts *o, rvi_vision_input *in, rvi_err *err)
{
	memset(in, 0, sizeof(*in));
	in->path = path;
	/* The whole file, read once so the bytes hashed are the bytes decoded. */
	int rc = rvi_image_read_file(path, o->limits.max_file_bytes, &in->bytes, &in->n, err);
	/* The limits are about the input, so a cached embedding does not
	 * excuse an image from them. */
	if (rc == RV_OK)
		rc = rvi_image_probe_memory(in->bytes, in->n, path, &o->limits, o->apply_exif,
		                            &in->w, &in->h, err);
	if (rc == RV_OK)
		rc = arch->embd_shape(model, in->w, in->h, &o->limits, &in->shape, err);
	if (rc != RV_OK)
		rvi_vision_input_free(in);
	return rc;
}

void rvi_vision_input_free(rvi_vision_input *in)
{
	free(in->bytes);
	memset(in, 0, sizeof(*in));
}

int rvi_vision_embed(const rvi_vision_arch *arch, const void *model,
                     const uint8_t mmproj_id[RVI_SHA256_BYTES], const rvi_vision_input *in,
                     const rvi_vision_opts *o, float *out, bool *cache_hit, rvi_err *cache_warning,
                     rvi_err *err)
{
	const int64_t rows = in->shape.rows, cols = arch->n_embd_out(model);
	*cache_hit = false;
	cache_warning->msg[0] = 0;

	uint8_t key[RVI_SHA256_BYTES];
	if (o->cache_dir) {
		/* everything the rows depend on besides the file and the
		 * projector (whose header and weights mmproj_id covers) */
		char params[512];
		const rvk_table *k = rvk_active();
		int pn = snprintf(
		    params, sizeof(params),
		    "family=%s exif=%d rows=%lld grid=%lldx%lld encoder=%d kernels=%s "
		    "attention=%s products=%s",
		    arch->name, o->apply_exif, (long long)rows, (long long)in->shape.grid_h,
		    (long long)in->shape.grid_w, ENCODER_VERSION, k->name,
		    k->attn_rows ? "fused" : "blas", k->gemm_rows ? "own" : "blas");
		/* a measured table's name is at most a few hundred bytes; were it
		 * longer, the key covers what fits */
		if (pn < 0 || (size_t)pn >= sizeof(params))
			pn = pn < 0 ? 0 : (int)sizeof(params) - 1;
		rvi_embcache_key(in->bytes, in->n, mmproj_id, params, (size_t)pn, key);
		int rc = rvi_embcache_load(o->cache_dir, key, rows, cols, out, cache_warning);
		if (rc == RV_OK) {
			*cache_hit = true;
			return RV_OK;
		}
		if (rc == RVI_EMBCACHE_MISS)
			cache_warning->msg[0] = 0; /* a miss is no news */
	}

	rvi_image img = {0};
	rvi_pixels px = {0};
	int rc =
	    rvi_image_load_memory(in->bytes, in->n, in->path, &o->limits, o->apply_exif, &img, err);
	if (rc == RV_OK)
		rc = arch->preprocess(model, &img, &o->limits, &px, err);
	rvi_image_free(&img);
	if (rc == RV_OK && px.shape.rows != rows)
		rc = rvi_errorf(err, RV_ERR_INTERNAL,
		                "%s: the image was counted as %lld rows but encodes to %lld",
		                in->path, (long long)rows, (long long)px.shape.rows);
	if (rc == RV_OK)
		rc = arch->encode(model, &px, o->n_threads, out, err);
	rvi_pixels_free(&px);
	if (rc == RV_OK && o->cache_dir)
		rvi_embcache_store(o->cache_dir, key, rows, cols, out, cache_warning);
	return rc;
}
