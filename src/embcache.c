/* embcache.c: the image-embedding cache (see embcache.h for the key, the
 * file format and the rules a caller follows). Everything read from a cache
 * file is treated as hostile: a check that fails makes a miss, never an
 * error, a crash or an allocation the caller's dimensions do not justify. */
#include "src/embcache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static const char emb_magic[5] = {'R', 'V', 'E', 'M', 'B'};

/* Header field offsets (the table in embcache.h). */
enum {
	OFF_MAGIC = 0,
	OFF_VERSION = 5,
	OFF_RESERVED = 6,
	OFF_KEY = 8,
	OFF_ROWS = 40,
	OFF_COLS = 44,
	OFF_RAW = 48,
	OFF_CRC = 56,
	OFF_ZLEN = 60,
	HDR = RVI_EMBCACHE_HEADER_BYTES,
};

/* ---- little-endian fields ------------------------------------------------ */

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* The floats are stored little-endian; a big-endian host swaps them. */
static bool host_is_le(void)
{
	const uint16_t one = 1;
	uint8_t first;
	memcpy(&first, &one, 1);
	return first == 1;
}

static void swap32_words(void *buf, size_t n_words)
{
	uint8_t *p = buf;
	for (size_t i = 0; i < n_words; i++, p += 4) {
		uint8_t t0 = p[0], t1 = p[1];
		p[0] = p[3];
		p[1] = p[2];
		p[2] = t1;
		p[3] = t0;
	}
}

/* ---- paths --------------------------------------------------------------- */

/* Creates every missing directory of path (modifiable, absolute) with mode
 * 0700. A component that already exists only has to be a directory: mkdir
 * on an existing path can fail with EACCES or EROFS rather than EEXIST, so
 * the outcome is judged by stat, not by errno. */
static int mkdir_p(char *path, rvi_err *err)
{
	for (char *p = path + 1;; p++) {
		if (*p != '/' && *p != 0)
			continue;
		char saved = *p;
		*p = 0;
		if (mkdir(path, 0700) != 0) {
			int e = errno;
			struct stat st;
			if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
				int r = rvi_errorf(err, RV_ERR_IO,
				                   "cannot create cache directory %s: %s", path,
				                   strerror(e == EEXIST ? ENOTDIR : e));
				*p = saved;
				return r;
			}
		}
		*p = saved;
		if (!saved)
			return RV_OK;
	}
}

int rvi_embcache_dir(char *out, size_t cap, rvi_err *err)
{
	if (!out || cap == 0)
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "cache directory: no output buffer");
	out[0] = 0;
	const char *base = getenv("XDG_CACHE_HOME");
	const char *sub = "/rlaifv";
	if (!base || base[0] != '/') {
		/* The XDG spec: a relative XDG_CACHE_HOME is invalid and ignored. */
		base = getenv("HOME");
		sub = "/.cache/rlaifv";
		if (!base || base[0] != '/')
			return rvi_errorf(err, RV_ERR_IO,
			                  "no cache directory: neither XDG_CACHE_HOME nor HOME is "
			                  "an absolute path");
	}
	/* Drop trailing slashes so "/x/" gives "/x/rlaifv"; "/" stays a root. */
	size_t len = strlen(base);
	while (len > 1 && base[len - 1] == '/')
		len--;
	if (len == 1)
		len = 0;
	size_t sub_n = strlen(sub);
	if (len >= cap || sub_n >= cap - len)
		return rvi_errorf(err, RV_ERR_INVALID_ARG,
		                  "cache directory path too long (%zu bytes)", len + sub_n);
	memcpy(out, base, len);
	memcpy(out + len, sub, sub_n + 1);
	int r = mkdir_p(out, err);
	if (r != RV_OK)
		out[0] = 0;
	return r;
}

int rvi_embcache_entry_path(const char *dir, const uint8_t key[RVI_SHA256_BYTES], char *out,
                            size_t cap, rvi_err *err)
{
	if (!dir || !key || !out || cap == 0)
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "cache entry path: NULL argument");
	char hex[2 * RVI_SHA256_BYTES + 1];
	rvi_sha256_hex(key, hex);
	int n = snprintf(out, cap, "%s/%s.emb", dir, hex);
	if (n < 0 || (size_t)n >= cap) {
		out[0] = 0;
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "cache entry path too long in %s", dir);
	}
	return RV_OK;
}

/* ---- key ----------------------------------------------------------------- */

void rvi_embcache_key_begin(rvi_sha256_ctx *c, const uint8_t mmproj_id[RVI_SHA256_BYTES],
                            const void *params, size_t params_n)
{
	uint8_t len[8];
	put_u64(len, params_n);
	rvi_sha256_init(c);
	rvi_sha256_update(c, RVI_EMBCACHE_KEY_TAG, sizeof(RVI_EMBCACHE_KEY_TAG));
	rvi_sha256_update(c, mmproj_id, RVI_SHA256_BYTES);
	rvi_sha256_update(c, len, sizeof(len));
	rvi_sha256_update(c, params, params_n);
}

void rvi_embcache_key(const void *image, size_t image_n, const uint8_t mmproj_id[RVI_SHA256_BYTES],
                      const void *params, size_t params_n, uint8_t key[RVI_SHA256_BYTES])
{
	rvi_sha256_ctx c;
	rvi_embcache_key_begin(&c, mmproj_id, params, params_n);
	rvi_sha256_update(&c, image, image_n);
	rvi_sha256_final(&c, key);
}

/* ---- load ---------------------------------------------------------------- */

/* The byte count of n_rows x n_cols floats, when the dimensions fit the
 * file format (u32 each) and the result fits zlib's uLong and size_t. */
static int data_bytes(int64_t n_rows, int64_t n_cols, uint64_t *bytes, rvi_err *err)
{
	uint64_t elems, b;
	if (n_rows < 1 || n_cols < 1 || n_rows > UINT32_MAX || n_cols > UINT32_MAX ||
	    !rvi_mul_ok((uint64_t)n_rows, (uint64_t)n_cols, &elems) ||
	    !rvi_mul_ok(elems, sizeof(float), &b) || b > SIZE_MAX || b > (uLong)-1)
		return rvi_errorf(err, RV_ERR_INVALID_ARG,
		                  "embedding cache: bad dimensions %lld x %lld", (long long)n_rows,
		                  (long long)n_cols);
	*bytes = b;
	return RV_OK;
}

/* Reads up to n bytes, retrying short reads and EINTR. Returns the count
 * read (less than n only at end of file), or -1 with errno set. */
static ptrdiff_t read_full(int fd, void *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, (uint8_t *)buf + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ptrdiff_t)got;
}

static int miss(rvi_err *err, const char *path, const char *why)
{
	return rvi_errorf(err, RVI_EMBCACHE_MISS, "embedding cache miss: %s: %s", path, why);
}

/* Checks a header against what the caller expects; on success *zlen is
 * the compressed length, which the checks bound by the caller's size. */
static const char *check_header(const uint8_t *h, const uint8_t key[RVI_SHA256_BYTES],
                                int64_t n_rows, int64_t n_cols, uint64_t bytes, uint64_t file_size,
                                uint64_t *zlen)
{
	if (memcmp(h + OFF_MAGIC, emb_magic, sizeof(emb_magic)) != 0)
		return "not an embedding cache file (bad magic)";
	if (h[OFF_VERSION] != RVI_EMBCACHE_FORMAT_VERSION)
		return "another format version";
	if (h[OFF_RESERVED] != 0 || h[OFF_RESERVED + 1] != 0)
		return "reserved header bytes are not zero";
	if (memcmp(h + OFF_KEY, key, RVI_SHA256_BYTES) != 0)
		return "entry is for another key";
	if (get_u32(h + OFF_ROWS) != (uint64_t)n_rows || get_u32(h + OFF_COLS) != (uint64_t)n_cols)
		return "entry has other dimensions";
	if (get_u64(h + OFF_RAW) != bytes)
		return "uncompressed size does not match the dimensions";
	/* A genuine entry is never longer than zlib's worst case for the
	 * caller's size, which is therefore the most this function reads. */
	uint64_t z = get_u64(h + OFF_ZLEN);
	if (z == 0 || z > compressBound((uLong)bytes))
		return "impossible compressed size";
	if (z != file_size - HDR)
		return "compressed size does not match the file size";
	*zlen = z;
	return NULL;
}

int rvi_embcache_load(const char *dir, const uint8_t key[RVI_SHA256_BYTES], int64_t n_rows,
                      int64_t n_cols, float *out, rvi_err *err)
{
	if (!dir || !key || !out)
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "embedding cache load: NULL argument");
	uint64_t bytes;
	int r = data_bytes(n_rows, n_cols, &bytes, err);
	if (r != RV_OK)
		return r;
	char path[RVI_EMBCACHE_PATH_MAX];
	r = rvi_embcache_entry_path(dir, key, path, sizeof(path), err);
	if (r != RV_OK)
		return r;

	/* O_NONBLOCK so that a FIFO under the entry's name cannot block the
	 * open; anything but a regular file is rejected right after. */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return miss(err, path, "no entry");
		return rvi_errorf(err, RV_ERR_IO, "cannot open embedding cache entry %s: %s", path,
		                  strerror(errno));
	}
	uint8_t *z = NULL;
	struct stat st;
	uint8_t h[HDR];
	uint64_t zlen = 0;
	const char *why;
	ptrdiff_t got;
	if (fstat(fd, &st) != 0) {
		r = rvi_errorf(err, RV_ERR_IO, "cannot stat embedding cache entry %s: %s", path,
		               strerror(errno));
		goto done;
	}
	if (!S_ISREG(st.st_mode)) {
		r = miss(err, path, "not a regular file");
		goto done;
	}
	if (st.st_size < HDR) {
		r = miss(err, path, "truncated header");
		goto done;
	}
	if ((got = read_full(fd, h, HDR)) < 0) {
		r = rvi_errorf(err, RV_ERR_IO, "cannot read embedding cache entry %s: %s", path,
		               strerror(errno));
		goto done;
	}
	if (got < HDR) {
		r = miss(err, path, "truncated header");
		goto done;
	}
	why = check_header(h, key, n_rows, n_cols, bytes, (uint64_t)st.st_size, &zlen);
	if (why) {
		r = miss(err, path, why);
		goto done;
	}
	/* zlen <= compressBound(bytes), a uLong, and uLong is never wider than
	 * size_t where this builds (LP64, ILP32, LLP64). */
	z = malloc((size_t)zlen);
	if (!z) {
		r = rvi_errorf(err, RV_ERR_NOMEM, "embedding cache: out of memory (%llu bytes)",
		               (unsigned long long)zlen);
		goto done;
	}
	if ((got = read_full(fd, z, (size_t)zlen)) < 0) {
		r = rvi_errorf(err, RV_ERR_IO, "cannot read embedding cache entry %s: %s", path,
		               strerror(errno));
		goto done;
	}
	if ((uint64_t)got != zlen) {
		r = miss(err, path, "truncated data"); /* shrank since fstat */
		goto done;
	}
	/* uncompress2 also reports how much input it used: the stream must
	 * fill out exactly and end exactly at the end of the file. */
	uLongf out_n = (uLongf)bytes;
	uLong in_n = (uLong)zlen;
	int zr = uncompress2((Bytef *)out, &out_n, z, &in_n);
	if (zr == Z_MEM_ERROR) {
		r = rvi_errorf(err, RV_ERR_NOMEM, "embedding cache: zlib out of memory");
		goto done;
	}
	if (zr != Z_OK) {
		r = miss(err, path,
		         zr == Z_BUF_ERROR ? "data longer than expected or cut short"
		                           : "corrupt compressed data");
		goto done;
	}
	if (out_n != bytes || in_n != zlen) {
		r = miss(err, path,
		         out_n != bytes ? "data shorter than expected"
		                        : "trailing bytes after the compressed data");
		goto done;
	}
	if (crc32_z(0, (const Bytef *)out, (size_t)bytes) != get_u32(h + OFF_CRC)) {
		r = miss(err, path, "CRC mismatch");
		goto done;
	}
	if (!host_is_le())
		swap32_words(out, (size_t)bytes / 4);
	r = RV_OK;
done:
	free(z);
	close(fd);
	return r;
}

/* ---- store --------------------------------------------------------------- */

/* Compresses n bytes into one zlib stream in dst (cap bytes, at least
 * compressBound(n)); *dst_n receives its length. Huffman coding only, no
 * LZ77 string matching: activations hold no repeated strings worth
 * finding, and what zlib saves on them (about 7%) comes from entropy-coding
 * the sign and exponent bytes, which Huffman coding alone gets at a third
 * of the time (576 x 4096 normal floats: default strategy 610 ms, Huffman
 * only 200 ms, both 93% of the raw size). A store delays the user's first
 * answer, so its time matters more than a few percent of disk. The stream
 * is an ordinary one that uncompress reads. Input and output are handed
 * over in pieces because zlib counts a buffer in 32-bit uInt. */
#ifndef EMB_ZCHUNK
#define EMB_ZCHUNK (1u << 30) /* -DEMB_ZCHUNK=small exercises the loop below */
#endif

static int deflate_huffman(uint8_t *dst, uLong cap, const uint8_t *src, uint64_t n, uLong *dst_n)
{
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	int zr = deflateInit2(&zs, Z_BEST_SPEED, Z_DEFLATED, 15, 8, Z_HUFFMAN_ONLY);
	if (zr != Z_OK)
		return zr;
	uint64_t in_left = n;    /* input not yet handed to zlib */
	uint64_t out_left = cap; /* output space not yet handed to zlib */
	zs.next_out = dst;
	for (;;) {
		if (zs.avail_in == 0 && in_left) {
			uInt take = in_left > EMB_ZCHUNK ? EMB_ZCHUNK : (uInt)in_left;
			zs.next_in =
			    (Bytef *)(uintptr_t)(src + (n - in_left)); /* not const in zlib */
			zs.avail_in = take;
			in_left -= take;
		}
		if (zs.avail_out == 0 && out_left) {
			uInt give = out_left > EMB_ZCHUNK ? EMB_ZCHUNK : (uInt)out_left;
			zs.avail_out = give;
			out_left -= give;
		}
		zr = deflate(&zs, in_left ? Z_NO_FLUSH : Z_FINISH);
		if (zr == Z_STREAM_END) {
			zr = Z_OK;
			break;
		}
		if (zr != Z_OK && zr != Z_BUF_ERROR)
			break;
		/* Out of space: cannot happen within compressBound, but a cut
		 * stream must not be written. */
		if (zs.avail_out == 0 && out_left == 0) {
			zr = Z_BUF_ERROR;
			break;
		}
	}
	*dst_n = zs.total_out;
	deflateEnd(&zs);
	return zr;
}

static bool write_full(int fd, const void *buf, size_t n)
{
	const uint8_t *p = buf;
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			return false;
		}
		p += w;
		n -= (size_t)w;
	}
	return true;
}

int rvi_embcache_store(const char *dir, const uint8_t key[RVI_SHA256_BYTES], int64_t n_rows,
                       int64_t n_cols, const float *data, rvi_err *err)
{
	if (!dir || !key || !data)
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "embedding cache store: NULL argument");
	uint64_t bytes, file_cap;
	int r = data_bytes(n_rows, n_cols, &bytes, err);
	if (r != RV_OK)
		return r;
	char path[RVI_EMBCACHE_PATH_MAX], tmp[RVI_EMBCACHE_PATH_MAX];
	char hex[2 * RVI_SHA256_BYTES + 1];
	rvi_sha256_hex(key, hex);
	r = rvi_embcache_entry_path(dir, key, path, sizeof(path), err);
	if (r != RV_OK)
		return r;
	int n = snprintf(tmp, sizeof(tmp), "%s/.%s.emb.XXXXXX", dir, hex);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "cache entry path too long in %s", dir);

	uLong bound = compressBound((uLong)bytes);
	if (bound < bytes || !rvi_add_ok(bound, HDR, &file_cap) || file_cap > SIZE_MAX)
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "embedding cache: %llu bytes too large",
		                  (unsigned long long)bytes);
	uint8_t *file = malloc((size_t)file_cap);
	float *swapped = NULL;
	int fd = -1;
	bool tmp_exists = false; /* a temporary file to unlink on failure */
	if (!file) {
		r = rvi_errorf(err, RV_ERR_NOMEM, "embedding cache: out of memory (%llu bytes)",
		               (unsigned long long)file_cap);
		goto done;
	}
	const Bytef *src = (const Bytef *)data;
	if (!host_is_le()) {
		swapped = malloc((size_t)bytes);
		if (!swapped) {
			r = rvi_errorf(err, RV_ERR_NOMEM, "embedding cache: out of memory");
			goto done;
		}
		memcpy(swapped, data, (size_t)bytes);
		swap32_words(swapped, (size_t)bytes / 4);
		src = (const Bytef *)swapped;
	}
	uLong zlen = 0;
	int zr = deflate_huffman(file + HDR, bound, src, bytes, &zlen);
	if (zr != Z_OK) {
		r = rvi_errorf(err, zr == Z_MEM_ERROR ? RV_ERR_NOMEM : RV_ERR_INTERNAL,
		               "embedding cache: deflate failed (%d)", zr);
		goto done;
	}
	memset(file, 0, HDR);
	memcpy(file + OFF_MAGIC, emb_magic, sizeof(emb_magic));
	file[OFF_VERSION] = RVI_EMBCACHE_FORMAT_VERSION;
	memcpy(file + OFF_KEY, key, RVI_SHA256_BYTES);
	put_u32(file + OFF_ROWS, (uint32_t)n_rows);
	put_u32(file + OFF_COLS, (uint32_t)n_cols);
	put_u64(file + OFF_RAW, bytes);
	put_u32(file + OFF_CRC, (uint32_t)crc32_z(0, src, (size_t)bytes));
	put_u64(file + OFF_ZLEN, zlen);

	/* mkstemp creates the file 0600 with a name no other run can pick. */
	fd = mkstemp(tmp);
	if (fd < 0) {
		r = rvi_errorf(err, RV_ERR_IO, "cannot create a file in cache directory %s: %s",
		               dir, strerror(errno));
		goto done;
	}
	tmp_exists = true;
	if (!write_full(fd, file, HDR + (size_t)zlen)) {
		r = rvi_errorf(err, RV_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
		goto done;
	}
	/* close reports delayed write errors on some file systems (NFS). */
	int cr = close(fd);
	fd = -1;
	if (cr != 0) {
		r = rvi_errorf(err, RV_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
		goto done;
	}
	if (rename(tmp, path) != 0) {
		r = rvi_errorf(err, RV_ERR_IO, "cannot rename %s to %s: %s", tmp, path,
		               strerror(errno));
		goto done;
	}
	tmp_exists = false; /* it is the entry now */
	r = RV_OK;
done:
	if (fd >= 0)
		close(fd);
	if (tmp_exists)
		unlink(tmp);
	free(swapped);
	free(file);
	return r;
}
