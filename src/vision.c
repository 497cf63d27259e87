/* vision.c: image file -> cached or freshly encoded image embeddings (see
 * vision.h). */
#include "src/vision.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "src/embcache.h"
#include "simd/kernels.h"

/* Bumped whenever the encoder's output bits change, so old cache entries
 * stop matching. */
#define ENCODER_VERSION 1

/* Bytes sampled from each end and the middle of every tensor. */
#define ID_SAMPLE 4096

void rvi_vision_mmproj_id(const rvi_gguf *g, uint8_t id[RVI_SHA256_BYTES])
{
	rvi_sha256_ctx c;
	rvi_sha256_init(&c);
	uint64_t size = g->size;
	rvi_sha256_update(&c, &size, sizeof(size));
	rvi_sha256_update(&c, g->base, (size_t)g->data_offset);
	for (uint64_t i = 0; i < g->n_tensors; i++) {
		const rvi_gguf_tensor *t = &g->tensors[i];
		const uint8_t *p = t->data;
		const uint64_t n = t->nbytes;
		if (n <= 3 * ID_SAMPLE) {
			rvi_sha256_update(&c, p, (size_t)n);
			continue;
		}
		rvi_sha256_update(&c, p, ID_SAMPLE);
		rvi_sha256_update(&c, p + n / 2 - ID_SAMPLE / 2, ID_SAMPLE);
		rvi_sha256_update(&c, p + n - ID_SAMPLE, ID_SAMPLE);
	}
	rvi_sha256_final(&c, id);
}

/* The whole file, read once so the bytes hashed are the bytes decoded. */
static int read_file(const char *path, uint64_t max_bytes, uint8_t **buf, size_t *n, rvi_err *err)
{
	*buf = NULL;
	FILE *f = fopen(path, "rb");
	if (!f)
		return rvi_errorf(err, RV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
		fclose(f);
		return rvi_errorf(err, RV_ERR_IO, "%s: not a regular file", path);
	}
	if ((uint64_t)st.st_size > max_bytes) {
		fclose(f);
		return rvi_errorf(err, RV_ERR_IMAGE, "%s: %llu bytes is over the %llu-byte limit",
		                  path, (unsigned long long)st.st_size,
		                  (unsigned long long)max_bytes);
	}
	*n = (size_t)st.st_size;
	*buf = malloc(*n ? *n : 1);
	if (!*buf) {
		fclose(f);
		return rvi_errorf(err, RV_ERR_NOMEM, "%s: out of memory", path);
	}
	size_t got = fread(*buf, 1, *n, f);
	fclose(f);
	if (got != *n) {
		free(*buf);
		*buf = NULL;
		return rvi_errorf(err, RV_ERR_IO, "%s: read error", path);
	}
	return RV_OK;
}

int rvi_vision_open(const rvi_vision_arch *arch, const void *model, const char *path,
                    const rvi_vision_opts *o, rvi_vision_input *in, rvi_err *err)
{
	memset(in, 0, sizeof(*in));
	in->path = path;
	int rc = read_file(path, o->limits.max_file_bytes, &in->bytes, &in->n, err);
	/* the limits hold for every image, whether its rows are cached or not */
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
		char params[192];
		int pn = snprintf(
		    params, sizeof(params),
		    "family=%s exif=%d rows=%lld grid=%lldx%lld encoder=%d kernels=%s", arch->name,
		    o->apply_exif, (long long)rows, (long long)in->shape.grid_h,
		    (long long)in->shape.grid_w, ENCODER_VERSION, rvk_active()->name);
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
