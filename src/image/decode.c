/* decode.c: reading, checking and decoding image files, and EXIF orientation
 * (see image.h). Resampling is resample.c's, each family's preprocessing its
 * own file's (preprocess_*.c). Decoding itself is stb_image's
 * (stb_image_impl.c); this file owns everything stb does not check: limits
 * known before any pixel buffer exists, and the truncations stb 2.27 lets
 * through silently (it zero-fills a cut BMP or JPEG and leaves a cut PNM's
 * pixels uninitialised). */
#include "src/image/image.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum img_format { FMT_UNKNOWN, FMT_JPEG, FMT_PNG, FMT_BMP, FMT_PNM };

static const char *const format_names[] = {"unknown", "JPEG", "PNG", "BMP", "PNM"};

rvi_image_limits rvi_image_default_limits(void)
{
	rvi_image_limits lim = {
	    .max_file_bytes = RVI_IMAGE_DEFAULT_MAX_FILE_BYTES,
	    .max_side = RVI_IMAGE_DEFAULT_MAX_SIDE,
	    .max_pixels = RVI_IMAGE_DEFAULT_MAX_PIXELS,
	    .max_decode_bytes = RVI_IMAGE_DEFAULT_MAX_DECODE,
	};
	return lim;
}

void rvi_image_free(rvi_image *img)
{
	if (!img)
		return;
	free(img->rgb);
	img->rgb = NULL;
	img->w = img->h = 0;
}

static int check_limits(const rvi_image_limits *lim, const char *name, rvi_err *err)
{
	/* stb takes the buffer length as an int. */
	if (lim->max_file_bytes == 0 || lim->max_file_bytes > INT_MAX)
		return rvi_errorf(err, RV_ERR_INVALID_ARG,
		                  "%s: image file size limit %" PRIu64 " is out of range (1..%d)",
		                  name, lim->max_file_bytes, INT_MAX);
	if (lim->max_side < 1 || lim->max_side > RVI_IMAGE_MAX_SIDE)
		return rvi_errorf(err, RV_ERR_INVALID_ARG,
		                  "%s: image side limit %d is out of range (1..%d)", name,
		                  lim->max_side, RVI_IMAGE_MAX_SIDE);
	if (lim->max_pixels == 0)
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "%s: image pixel limit is 0", name);
	if (lim->max_decode_bytes == 0)
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "%s: image decode memory limit is 0",
		                  name);
	return RV_OK;
}

static int check_dims(uint64_t w, uint64_t h, const rvi_image_limits *lim, const char *name,
                      const char *fmt, rvi_err *err)
{
	if (w == 0 || h == 0)
		return rvi_errorf(err, RV_ERR_IMAGE,
		                  "%s: corrupt %s: image is %" PRIu64 "x%" PRIu64, name, fmt, w, h);
	if (w > (uint64_t)lim->max_side || h > (uint64_t)lim->max_side)
		return rvi_errorf(err, RV_ERR_IMAGE,
		                  "%s: image is %" PRIu64 "x%" PRIu64
		                  " pixels, more than the limit of %d per side",
		                  name, w, h, lim->max_side);
	if (w * h > lim->max_pixels) /* both <= 65536: no overflow */
		return rvi_errorf(err, RV_ERR_IMAGE,
		                  "%s: image is %" PRIu64 "x%" PRIu64
		                  " pixels, more than the limit of %" PRIu64 " pixels",
		                  name, w, h, lim->max_pixels);
	return RV_OK;
}

static uint32_t be16(const uint8_t *p)
{
	return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t le16(const uint8_t *p)
{
	return (uint32_t)p[1] << 8 | p[0];
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static enum img_format detect_format(const uint8_t *b, size_t n)
{
	static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
	if (n >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff)
		return FMT_JPEG;
	if (n >= 8 && memcmp(b, png_sig, 8) == 0)
		return FMT_PNG;
	if (n >= 2 && b[0] == 'B' && b[1] == 'M')
		return FMT_BMP;
	if (n >= 2 && b[0] == 'P' && (b[1] == '5' || b[1] == '6'))
		return FMT_PNM;
	return FMT_UNKNOWN;
}

/* A hint for formats people commonly try, so the message says what it is. */
static const char *unknown_format_hint(const uint8_t *b, size_t n)
{
	if (n >= 4 && memcmp(b, "GIF8", 4) == 0)
		return "; this looks like GIF";
	if (n >= 12 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WEBP", 4) == 0)
		return "; this looks like WebP";
	if (n >= 4 && (memcmp(b, "II*\0", 4) == 0 || memcmp(b, "MM\0*", 4) == 0))
		return "; this looks like TIFF";
	if (n >= 2 && b[0] == 'P' && b[1] >= '1' && b[1] <= '4')
		return "; ASCII and 1-bit PNM (P1-P4) are not supported, only binary P5/P6";
	return "";
}

/* ---- JPEG: segment walk (EXIF orientation, end-of-image marker) --------- */

static int exif_orientation_from_tiff(const uint8_t *t, size_t n)
{
	if (n < 8)
		return 1;
	bool le;
	if (t[0] == 'I' && t[1] == 'I')
		le = true;
	else if (t[0] == 'M' && t[1] == 'M')
		le = false;
	else
		return 1;
	uint32_t (*u16)(const uint8_t *) = le ? le16 : be16;
	uint32_t (*u32)(const uint8_t *) = le ? le32 : be32;
	if (u16(t + 2) != 42)
		return 1;
	uint64_t ifd = u32(t + 4);
	if (ifd > n || n - ifd < 2)
		return 1;
	uint32_t count = u16(t + ifd);
	for (uint32_t i = 0; i < count; i++) {
		uint64_t e = ifd + 2 + (uint64_t)i * 12;
		if (e > n || n - e < 12)
			return 1;
		if (u16(t + e) != 0x0112)
			continue;
		uint32_t type = u16(t + e + 2), cnt = u32(t + e + 4), v;
		if (cnt < 1)
			return 1;
		if (type == 3) /* SHORT: left-justified in the 4-byte value field */
			v = u16(t + e + 8);
		else if (type == 4) /* LONG */
			v = u32(t + e + 8);
		else
			return 1;
		return v >= 1 && v <= 8 ? (int)v : 1;
	}
	return 1;
}

typedef struct jpeg_scan {
	int orientation; /* 1..8 */
	bool has_eoi;
	/* Set when a segment runs past the end of the buffer. */
	bool cut;
	unsigned cut_marker;
	size_t cut_offset;
	uint32_t cut_len;
	/* A structural fault stb 2.27 does not catch safely; empty if none. */
	char bad[160];
} jpeg_scan;

/* Huffman tables: stb 2.27 writes past its 256-entry arrays when a DHT
 * declares more codes (stb issue 1289, fixed in 2.28). */
static void check_dht(const uint8_t *p, size_t len, size_t off, bool defined[2][4], jpeg_scan *js)
{
	size_t i = 0;
	while (i < len) {
		if (len - i < 17) {
			snprintf(js->bad, sizeof(js->bad), "DHT segment at offset %zu is cut short",
			         off);
			return;
		}
		unsigned tc = p[i] >> 4, th = p[i] & 15, count = 0;
		for (int k = 1; k <= 16; k++)
			count += p[i + k];
		if (tc > 1 || th > 3 || count > 256 || count > len - i - 17) {
			snprintf(js->bad, sizeof(js->bad),
			         "bad Huffman table (class %u, id %u, %u codes) at offset %zu", tc,
			         th, count, off);
			return;
		}
		defined[tc][th] = true;
		i += 17 + count;
	}
}

/* A scan may only use tables defined before it: stb 2.27 would decode with
 * whatever its table memory holds (fixed in 2.28 by zeroing it). */
static void check_sos(const uint8_t *p, size_t len, size_t off, bool defined[2][4], jpeg_scan *js)
{
	unsigned ns = len ? p[0] : 0;
	if (ns < 1 || ns > 4 || len < 1 + 2 * (size_t)ns + 3) {
		snprintf(js->bad, sizeof(js->bad), "bad scan header at offset %zu", off);
		return;
	}
	unsigned ss = p[1 + 2 * ns], se = p[2 + 2 * ns];
	for (unsigned c = 0; c < ns; c++) {
		unsigned td = p[2 + 2 * c] >> 4, ta = p[2 + 2 * c] & 15;
		if ((ss == 0 && (td > 3 || !defined[0][td])) ||
		    (se > 0 && (ta > 3 || !defined[1][ta]))) {
			snprintf(js->bad, sizeof(js->bad),
			         "scan at offset %zu uses a Huffman table that is not defined "
			         "(Motion-JPEG frames without tables are not supported)",
			         off);
			return;
		}
	}
}

static bool is_sof(unsigned m)
{
	return m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc;
}

/* Walks the marker segments from SOI to EOI, skipping entropy-coded data
 * after each SOS (where 0xFF is followed by 0x00 stuffing or an RSTn). Like
 * stb, tolerates junk bytes between segments. The EXIF thumbnail sits inside
 * its APP1 segment, so its own EOI is never mistaken for ours. */
static void scan_jpeg(const uint8_t *b, size_t n, jpeg_scan *js)
{
	memset(js, 0, sizeof(*js));
	js->orientation = 1;
	bool have_exif = false, defined[2][4] = {{false}};
	int frames = 0;
	size_t pos = 2;
	while (pos < n && !js->bad[0]) {
		if (b[pos] != 0xff) {
			pos++;
			continue;
		}
		while (pos < n && b[pos] == 0xff)
			pos++;
		if (pos >= n)
			return;
		unsigned m = b[pos++];
		if (m == 0xd9) {
			js->has_eoi = true;
			return;
		}
		if (m == 0x00 || m == 0x01 || m == 0xd8 || (m >= 0xd0 && m <= 0xd7))
			continue; /* no length field */
		size_t off = pos - 2;
		if (n - pos < 2)
			return; /* cut inside a marker: no EOI */
		uint32_t len = be16(b + pos);
		if (len < 2) {
			snprintf(js->bad, sizeof(js->bad),
			         "segment 0xFF%02X at offset %zu has length %" PRIu32, m, off, len);
			return;
		}
		if (len > n - pos) {
			js->cut = true, js->cut_marker = m, js->cut_offset = off;
			js->cut_len = len;
			return;
		}
		const uint8_t *body = b + pos + 2;
		size_t blen = len - 2;
		if (m == 0xe1 && !have_exif && blen >= 6 && memcmp(body, "Exif\0\0", 6) == 0) {
			have_exif = true;
			js->orientation = exif_orientation_from_tiff(body + 6, blen - 6);
		} else if (m == 0xc4) {
			check_dht(body, blen, off, defined, js);
		} else if (is_sof(m) && ++frames > 1) {
			snprintf(js->bad, sizeof(js->bad), "a second frame header at offset %zu",
			         off);
		} else if (m == 0xda) {
			check_sos(body, blen, off, defined, js);
		}
		pos += len;
		if (m != 0xda)
			continue;
		while (pos < n) {
			if (b[pos] == 0xff && pos + 1 < n &&
			    (b[pos + 1] == 0x00 || (b[pos + 1] >= 0xd0 && b[pos + 1] <= 0xd7))) {
				pos += 2;
				continue;
			}
			if (b[pos] == 0xff && pos + 1 < n && b[pos + 1] != 0xff)
				break;
			pos++;
		}
	}
}

int rvi_image_exif_orientation(const void *buf, size_t n)
{
	if (!buf || detect_format(buf, n) != FMT_JPEG)
		return 1;
	jpeg_scan js;
	scan_jpeg(buf, n, &js);
	return js.orientation;
}

/* ---- PNG, BMP, PNM: structure checks stb leaves out --------------------- */

static void chunk_name(const uint8_t *p, char out[16])
{
	bool letters = true;
	for (int i = 0; i < 4; i++)
		letters = letters && ((p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= 'a' && p[i] <= 'z'));
	if (letters)
		snprintf(out, 16, "'%c%c%c%c'", p[0], p[1], p[2], p[3]);
	else
		snprintf(out, 16, "0x%08" PRIx32, be32(p));
}

/* Every chunk must fit in the file before stb sees it: stb reallocates its
 * IDAT buffer to the declared length before copying. */
static int check_png_chunks(const uint8_t *b, size_t n, const char *name, rvi_err *err)
{
	size_t pos = 8;
	while (n - pos >= 8) {
		uint32_t len = be32(b + pos);
		char cname[16];
		chunk_name(b + pos + 4, cname);
		if (len > 0x7fffffffu || (uint64_t)len + 12 > n - pos)
			return rvi_errorf(err, RV_ERR_IMAGE,
			                  "%s: truncated or corrupt PNG: chunk %s at offset %zu "
			                  "declares %" PRIu32 " bytes but only %zu remain",
			                  name, cname, pos, len, n - pos - 8);
		if (memcmp(b + pos + 4, "IEND", 4) == 0)
			return RV_OK;
		pos += 12 + (size_t)len;
	}
	return rvi_errorf(err, RV_ERR_IMAGE,
	                  "%s: truncated PNG: the file ends before its IEND chunk", name);
}

static int png_ihdr_dims(const uint8_t *b, size_t n, uint64_t *w, uint64_t *h)
{
	if (n < 24 || memcmp(b + 12, "IHDR", 4) != 0)
		return 0;
	*w = be32(b + 16);
	*h = be32(b + 20);
	return 1;
}

typedef struct bmp_hdr {
	uint64_t w, h, bpp, offset;
	bool known; /* the pixel-data size below can be computed */
} bmp_hdr;

static int bmp_header(const uint8_t *b, size_t n, bmp_hdr *bh)
{
	memset(bh, 0, sizeof(*bh));
	if (n < 26)
		return 0;
	bh->offset = le32(b + 10);
	uint32_t hsz = le32(b + 14);
	uint32_t compression = 0;
	if (hsz == 12) {
		bh->w = le16(b + 18);
		bh->h = le16(b + 20);
		bh->bpp = le16(b + 24);
	} else if (hsz >= 40 && n >= 34) {
		/* Heights are signed (negative: top-down); take the magnitude in
		 * 64 bits so INT32_MIN cannot overflow. */
		int64_t w = (int32_t)le32(b + 18), h = (int32_t)le32(b + 22);
		bh->w = (uint64_t)(w < 0 ? -w : w);
		bh->h = (uint64_t)(h < 0 ? -h : h);
		bh->bpp = le16(b + 28);
		compression = le32(b + 30);
	} else {
		return 0;
	}
	/* stb reads uncompressed and bit-field pixels at offset, row by row;
	 * RLE it rejects itself. */
	bh->known = (compression == 0 || compression == 3) && bh->bpp >= 1 && bh->bpp <= 32;
	return 1;
}

static int check_bmp_size(const bmp_hdr *bh, size_t n, const char *name, rvi_err *err)
{
	if (!bh->known || bh->w == 0 || bh->h == 0)
		return RV_OK;
	/* Rows are padded to 4 bytes; the last row's padding may be missing. */
	uint64_t row = (bh->w * bh->bpp + 7) / 8, stride = (bh->w * bh->bpp + 31) / 32 * 4;
	uint64_t need = bh->offset + stride * (bh->h - 1) + row; /* w, h <= 65536 */
	if (need > n)
		return rvi_errorf(err, RV_ERR_IMAGE,
		                  "%s: truncated BMP: pixel data needs %" PRIu64
		                  " bytes from the start of the file but the file has %zu",
		                  name, need, n);
	return RV_OK;
}

static bool pnm_space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* Skips whitespace and '#' comments the way stb does. */
static size_t pnm_skip(const uint8_t *b, size_t n, size_t pos)
{
	for (;;) {
		while (pos < n && pnm_space(b[pos]))
			pos++;
		if (pos >= n || b[pos] != '#')
			return pos;
		while (pos < n && b[pos] != '\n' && b[pos] != '\r')
			pos++;
	}
}

/* Stops growing past 2^24: anything that large fails the side limit, and
 * the products below stay far from overflowing. */
static size_t pnm_int(const uint8_t *b, size_t n, size_t pos, uint64_t *v)
{
	*v = 0;
	while (pos < n && b[pos] >= '0' && b[pos] <= '9') {
		if (*v < (1u << 24))
			*v = *v * 10 + (uint64_t)(b[pos] - '0');
		pos++;
	}
	return pos;
}

typedef struct pnm_hdr {
	uint64_t w, h, maxv;
	size_t data; /* offset of the pixel data (may be n) */
} pnm_hdr;

/* The header as stb reads it: magic, then width, height and maxval
 * separated by whitespace and '#' comments, then one whitespace byte. Read
 * here first because stb 2.27's own integer parser overflows on long
 * numbers. */
static void pnm_header(const uint8_t *b, size_t n, pnm_hdr *ph)
{
	size_t pos = pnm_skip(b, n, 2);
	pos = pnm_int(b, n, pos, &ph->w);
	pos = pnm_skip(b, n, pos);
	pos = pnm_int(b, n, pos, &ph->h);
	pos = pnm_skip(b, n, pos);
	pos = pnm_int(b, n, pos, &ph->maxv);
	ph->data = pos < n ? pos + 1 : n;
}

/* Only maxval 255 is accepted: stb 2.27 neither rescales smaller maxvals
 * nor byte-swaps 16-bit samples (it keeps the low byte on little-endian
 * hosts), and converting a 16-bit PGM overruns a buffer (CVE-2021-42716). */
static int check_pnm_maxval(const pnm_hdr *ph, const char *name, rvi_err *err)
{
	if (ph->maxv != 255)
		return rvi_errorf(err, RV_ERR_IMAGE,
		                  "%s: unsupported PNM: maxval %" PRIu64
		                  " (only 8-bit files with maxval 255 are supported)",
		                  name, ph->maxv);
	return RV_OK;
}

/* stb 2.27 ignores a short read of PNM pixel data and hands back
 * uninitialised memory, so the data must be known to be all there. */
static int check_pnm_size(const pnm_hdr *ph, int channels, size_t n, const char *name, rvi_err *err)
{
	uint64_t need = ph->w * ph->h * (uint64_t)channels; /* w, h < 2^28 */
	if (need > n - ph->data)
		return rvi_errorf(err, RV_ERR_IMAGE,
		                  "%s: truncated PNM: %" PRIu64 "x%" PRIu64 " pixels need %" PRIu64
		                  " bytes of pixel data but the file has %zu",
		                  name, ph->w, ph->h, need, n - ph->data);
	return RV_OK;
}

/* ---- loading ------------------------------------------------------------ */

int rvi_image_read_file(const char *path, uint64_t max_bytes, uint8_t **out, size_t *out_n,
                        rvi_err *err)
{
	*out = NULL;
	*out_n = 0;
	int fd;
	struct stat st;
	int rc = rvi_open_regular(path, &fd, &st, err);
	if (rc != RV_OK)
		return rc;
	if ((uint64_t)st.st_size > max_bytes) {
		close(fd);
		return rvi_errorf(err, RV_ERR_IMAGE,
		                  "%s: file is %" PRIu64 " bytes, more than the limit of %" PRIu64
		                  " for an image",
		                  path, (uint64_t)st.st_size, max_bytes);
	}
	/* A growing file has no trustworthy size: read in steps and stop one
	 * byte past the limit. */
	size_t cap = st.st_size > 0 ? (size_t)st.st_size + 1 : 1 << 16;
	size_t n = 0;
	uint8_t *buf = malloc(cap);
	if (!buf) {
		close(fd);
		return rvi_errorf(err, RV_ERR_NOMEM, "%s: out of memory reading the file", path);
	}
	for (;;) {
		if (n == cap) {
			size_t ncap = cap * 2;
			if (ncap > max_bytes + 1)
				ncap = (size_t)max_bytes + 1;
			uint8_t *nb = ncap > cap ? realloc(buf, ncap) : NULL;
			if (!nb) {
				free(buf);
				close(fd);
				if (ncap <= cap)
					return rvi_errorf(
					    err, RV_ERR_IMAGE,
					    "%s: file is more than the limit of %" PRIu64
					    " bytes for an image",
					    path, max_bytes);
				return rvi_errorf(err, RV_ERR_NOMEM,
				                  "%s: out of memory reading the file", path);
			}
			buf = nb;
			cap = ncap;
		}
		ssize_t got = read(fd, buf + n, cap - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			int e = errno;
			free(buf);
			close(fd);
			return rvi_errorf(err, RV_ERR_IO, "%s: read error: %s", path, strerror(e));
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	close(fd);
	if (n > max_bytes) {
		free(buf);
		return rvi_errorf(err, RV_ERR_IMAGE,
		                  "%s: file is more than the limit of %" PRIu64
		                  " bytes for an image",
		                  path, max_bytes);
	}
	*out = buf;
	*out_n = n;
	return RV_OK;
}

int rvi_image_load_file(const char *path, const rvi_image_limits *lim, bool apply_exif,
                        rvi_image *out, rvi_err *err)
{
	rvi_image_limits def = rvi_image_default_limits();
	if (!lim)
		lim = &def;
	memset(out, 0, sizeof(*out));
	if (!path)
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "image path is NULL");
	int rc = check_limits(lim, path, err);
	if (rc != RV_OK)
		return rc;
	uint8_t *buf;
	size_t n;
	rc = rvi_image_read_file(path, lim->max_file_bytes, &buf, &n, err);
	if (rc != RV_OK)
		return rc;
	rc = rvi_image_load_memory(buf, n, path, lim, apply_exif, out, err);
	free(buf);
	return rc;
}

/* As PIL's convert('RGB'): grey is replicated, alpha dropped without
 * compositing. Takes ownership of px. */
static int to_rgb(uint8_t *px, int w, int h, int comp, rvi_image *out, rvi_err *err)
{
	size_t npx = (size_t)w * h; /* within the limits checked before decoding */
	if (comp == 3) {
		out->w = w, out->h = h, out->rgb = px;
		return RV_OK;
	}
	uint8_t *rgb = malloc(npx * 3);
	if (!rgb) {
		free(px);
		return rvi_errorf(err, RV_ERR_NOMEM, "out of memory for a %dx%d image", w, h);
	}
	for (size_t i = 0; i < npx; i++) {
		const uint8_t *s = px + i * (size_t)comp;
		uint8_t *d = rgb + i * 3;
		if (comp <= 2)
			d[0] = d[1] = d[2] = s[0];
		else
			d[0] = s[0], d[1] = s[1], d[2] = s[2];
	}
	free(px);
	out->w = w, out->h = h, out->rgb = rgb;
	return RV_OK;
}

static int decode_error(const char *name, const char *fmt, const char *reason, rvi_err *err)
{
	/* stb reports a refused and a failed allocation alike as "outofmem"
	 * unless the refusal was the last thing to set a reason. */
	if (strcmp(reason, "outofmem") == 0 || strcmp(reason, "allocation cap") == 0)
		return rvi_errorf(err, RV_ERR_IMAGE,
		                  "%s: cannot decode %s: it needs more memory than allowed (the "
		                  "allocation cap is %zu MiB per buffer) or memory ran out "
		                  "(stb_image: %s)",
		                  name, fmt, RVI_IMAGE_ALLOC_CAP >> 20, reason);
	return rvi_errorf(err, RV_ERR_IMAGE,
	                  "%s: cannot decode %s: corrupt or truncated file (stb_image: %s)", name,
	                  fmt, reason);
}

/* What the checks learn about a file that decoding needs. */
typedef struct header_info {
	const char *fmt;
	int w, h;
	jpeg_scan js;
} header_info;

/* Decode memory as the limits describe it (see image.h): stb's raw and
 * output buffers at the file's sample size, then our 8-bit RGB copy. */
static int check_decode_memory(const header_info *hi, int comp, int sample_bytes,
                               const rvi_image_limits *lim, const char *name, rvi_err *err)
{
	const uint64_t per_px = 2 * (uint64_t)comp * (uint64_t)sample_bytes + 3;
	const uint64_t need = (uint64_t)hi->w * (uint64_t)hi->h * per_px; /* < 2^32 * 19 */
	if (need > lim->max_decode_bytes)
		return rvi_errorf(err, RV_ERR_IMAGE,
		                  "%s: a %dx%d %s with %d channel%s of %d bits needs about %" PRIu64
		                  " MiB to decode, more than the limit of %" PRIu64 " MiB",
		                  name, hi->w, hi->h, hi->fmt, comp, comp == 1 ? "" : "s",
		                  8 * sample_bytes, (need + (1 << 20) - 1) >> 20,
		                  lim->max_decode_bytes >> 20);
	return RV_OK;
}

static int check_image(const uint8_t *b, size_t n, const char *name, const rvi_image_limits *lim,
                       header_info *hi, rvi_err *err)
{
	int rc = check_limits(lim, name, err);
	if (rc != RV_OK)
		return rc;
	if (n == 0 || !b)
		return rvi_errorf(err, RV_ERR_IMAGE, "%s: empty file", name);
	if (n > lim->max_file_bytes)
		return rvi_errorf(err, RV_ERR_IMAGE,
		                  "%s: file is %zu bytes, more than the limit of %" PRIu64
		                  " for an image",
		                  name, n, lim->max_file_bytes);
	enum img_format f = detect_format(b, n);
	const char *fmt = format_names[f];
	if (f == FMT_UNKNOWN)
		return rvi_errorf(err, RV_ERR_IMAGE,
		                  "%s: unsupported image format (expected JPEG, PNG, BMP or PNM)%s",
		                  name, unknown_format_hint(b, n));

	/* Our own reading of the declared size comes first: it names the
	 * numbers, and stb's header parsers reject huge values with a vaguer
	 * message (PNG), take abs(INT32_MIN) (BMP) or overflow an int (PNM). */
	uint64_t dw, dh;
	bmp_hdr bh;
	if (f == FMT_PNG && png_ihdr_dims(b, n, &dw, &dh) &&
	    (rc = check_dims(dw, dh, lim, name, fmt, err)) != RV_OK)
		return rc;
	if (f == FMT_BMP && bmp_header(b, n, &bh) &&
	    (rc = check_dims(bh.w, bh.h, lim, name, fmt, err)) != RV_OK)
		return rc;
	pnm_hdr ph = {0};
	if (f == FMT_PNM) {
		pnm_header(b, n, &ph);
		if ((rc = check_dims(ph.w, ph.h, lim, name, fmt, err)) != RV_OK ||
		    (rc = check_pnm_maxval(&ph, name, err)) != RV_OK)
			return rc;
	}

	/* stb's header parser already acts on the JPEG tables, so the JPEG
	 * structure is checked before stb sees any of it. */
	jpeg_scan js = {.orientation = 1};
	if (f == FMT_JPEG) {
		scan_jpeg(b, n, &js);
		if (js.cut)
			return rvi_errorf(
			    err, RV_ERR_IMAGE,
			    "%s: truncated or corrupt JPEG: segment 0xFF%02X at offset "
			    "%zu declares %" PRIu32 " bytes but only %zu remain",
			    name, js.cut_marker, js.cut_offset, js.cut_len, n - js.cut_offset - 2);
		if (js.bad[0])
			return rvi_errorf(err, RV_ERR_IMAGE, "%s: corrupt JPEG: %s", name, js.bad);
		if (!js.has_eoi)
			return rvi_errorf(err, RV_ERR_IMAGE,
			                  "%s: truncated JPEG: no end-of-image marker", name);
	}

	int w, h, comp, sample_bytes;
	const char *reason;
	if (!rvi_stbi_info(b, n, &w, &h, &comp, &sample_bytes, &reason))
		return rvi_errorf(err, RV_ERR_IMAGE, "%s: corrupt %s header (stb_image: %s)", name,
		                  fmt, reason);
	if ((rc = check_dims((uint64_t)w, (uint64_t)h, lim, name, fmt, err)) != RV_OK)
		return rc;
	*hi = (header_info){fmt, w, h, js};
	if ((rc = check_decode_memory(hi, comp, sample_bytes, lim, name, err)) != RV_OK)
		return rc;

	switch (f) {
	case FMT_PNG:
		rc = check_png_chunks(b, n, name, err);
		break;
	case FMT_BMP:
		if (bmp_header(b, n, &bh))
			rc = check_bmp_size(&bh, n, name, err);
		break;
	case FMT_PNM:
		rc = check_pnm_size(&ph, b[1] == '6' ? 3 : 1, n, name, err);
		break;
	default:
		break;
	}
	return rc;
}

int rvi_image_probe_memory(const void *data, size_t n, const char *name,
                           const rvi_image_limits *lim, bool apply_exif, int *w, int *h,
                           rvi_err *err)
{
	rvi_image_limits def = rvi_image_default_limits();
	header_info hi;
	int rc =
	    check_image(data, n, name ? name : "(image in memory)", lim ? lim : &def, &hi, err);
	if (rc != RV_OK)
		return rc;
	/* orientations 5..8 turn the image a quarter */
	const bool swap = apply_exif && hi.js.orientation >= 5;
	*w = swap ? hi.h : hi.w;
	*h = swap ? hi.w : hi.h;
	return RV_OK;
}

int rvi_image_load_memory(const void *data, size_t n, const char *name, const rvi_image_limits *lim,
                          bool apply_exif, rvi_image *out, rvi_err *err)
{
	const uint8_t *b = data;
	rvi_image_limits def = rvi_image_default_limits();
	if (!lim)
		lim = &def;
	if (!name)
		name = "(image in memory)";
	memset(out, 0, sizeof(*out));
	header_info hi;
	int rc = check_image(b, n, name, lim, &hi, err);
	if (rc != RV_OK)
		return rc;
	const char *fmt = hi.fmt, *reason;
	const int w = hi.w, h = hi.h;
	int dw2, dh2, comp;
	uint8_t *px = rvi_stbi_load(b, n, &dw2, &dh2, &comp, &reason);
	if (!px)
		return decode_error(name, fmt, reason, err);
	if (dw2 != w || dh2 != h || comp < 1 || comp > 4) {
		free(px);
		return rvi_errorf(
		    err, RV_ERR_IMAGE,
		    "%s: corrupt %s: header says %dx%d but decoding gave %dx%d with %d "
		    "channels",
		    name, fmt, w, h, dw2, dh2, comp);
	}
	rvi_image img = {0};
	rc = to_rgb(px, w, h, comp, &img, err);
	if (rc != RV_OK)
		return rc;
	if (apply_exif && hi.js.orientation != 1) {
		rc = rvi_image_orient(&img, hi.js.orientation, out, err);
		rvi_image_free(&img);
		return rc;
	}
	*out = img;
	return RV_OK;
}

/* ---- geometry ----------------------------------------------------------- */

int rvi_image_new(int w, int h, rvi_image *out, rvi_err *err)
{
	uint64_t px;
	out->w = out->h = 0;
	out->rgb = NULL;
	if (w <= 0 || h <= 0 || !rvi_mul_ok((uint64_t)w, (uint64_t)h, &px) ||
	    !rvi_mul_ok(px, 3, &px) || px > SIZE_MAX)
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "invalid image size %dx%d", w, h);
	out->rgb = malloc((size_t)px);
	if (!out->rgb)
		return rvi_errorf(err, RV_ERR_NOMEM, "out of memory for a %dx%d image", w, h);
	out->w = w;
	out->h = h;
	return RV_OK;
}

bool rvi_image_valid(const rvi_image *img)
{
	return img && img->rgb && img->w > 0 && img->h > 0;
}
int rvi_image_orient(const rvi_image *in, int o, rvi_image *out, rvi_err *err)
{
	if (!rvi_image_valid(in) || o < 1 || o > 8)
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "invalid image or EXIF orientation %d",
		                  o);
	int w = in->w, h = in->h;
	bool swap = o >= 5;
	int rc = rvi_image_new(swap ? h : w, swap ? w : h, out, err);
	if (rc != RV_OK)
		return rc;
	int ow = out->w, oh = out->h;
	for (int y = 0; y < oh; y++) {
		for (int x = 0; x < ow; x++) {
			int sx, sy;
			switch (o) {
			case 2:
				sx = w - 1 - x, sy = y;
				break;
			case 3:
				sx = w - 1 - x, sy = h - 1 - y;
				break;
			case 4:
				sx = x, sy = h - 1 - y;
				break;
			case 5:
				sx = y, sy = x;
				break;
			case 6:
				sx = y, sy = h - 1 - x;
				break;
			case 7:
				sx = w - 1 - y, sy = h - 1 - x;
				break;
			case 8:
				sx = w - 1 - y, sy = x;
				break;
			default:
				sx = x, sy = y;
				break;
			}
			memcpy(out->rgb + ((size_t)y * ow + x) * 3,
			       in->rgb + ((size_t)sy * w + sx) * 3, 3);
		}
	}
	return RV_OK;
}
