/* image.h (src/image/): image loading (JPEG, PNG, BMP, PNM through stb_image, with limits
 * checked before decoding and JPEG EXIF orientation) and the LLaVA-1.5 image
 * preprocessing (pad to a mean-colour square, Pillow-exact bicubic resize,
 * rescale and normalise into planar float).
 *
 * Every function reports failure as an rv_status with a message in an
 * rvi_err that names the file: RV_ERR_IO when a file cannot be read,
 * RV_ERR_IMAGE when its content is unsupported, corrupt or over a limit,
 * RV_ERR_INVALID_ARG for bad parameters, RV_ERR_NOMEM. No state is kept
 * between calls; the functions are safe to call from several threads. */
#ifndef RLAIFV_IMAGE_H
#define RLAIFV_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "src/util.h"

/* 8-bit RGB, row-major, no row padding: pixel (x, y) channel c is
 * rgb[(y * w + x) * 3 + c]. rgb is malloc'ed; release with rvi_image_free. */
typedef struct rvi_image {
	int w, h;
	uint8_t *rgb;
} rvi_image;

/* What a file may ask of us before it is decoded. The defaults allow any
 * photo a camera takes while bounding decode memory to 768 MiB. */
typedef struct rvi_image_limits {
	uint64_t max_file_bytes; /* default 64 MiB */
	int max_side;            /* per side; default 16384, at most RVI_IMAGE_MAX_SIDE */
	uint64_t max_pixels;     /* w * h; default 64 Mi (e.g. 8192 x 8192) */
	/* Decode memory estimated from the header: w * h * (2 * channels *
	 * bytes per sample + 3), the decoder's raw and output buffers plus
	 * the RGB copy; default 768 MiB. Peak use stays below it. */
	uint64_t max_decode_bytes;
	/* The pixels a dynamic-resolution family resizes an image to at least
	 * and at most (Qwen2-VL's min_pixels, max_pixels); 0: its own. */
	int64_t resize_min_pixels, resize_max_pixels;
} rvi_image_limits;

#define RVI_IMAGE_DEFAULT_MAX_FILE_BYTES ((uint64_t)64 << 20)
#define RVI_IMAGE_DEFAULT_MAX_SIDE       16384
#define RVI_IMAGE_DEFAULT_MAX_PIXELS     ((uint64_t)1 << 26)
#define RVI_IMAGE_DEFAULT_MAX_DECODE     ((uint64_t)768 << 20)
/* Hard ceiling of max_side, also given to stb_image as STBI_MAX_DIMENSIONS. */
#define RVI_IMAGE_MAX_SIDE 65536

/* No single allocation made while decoding may exceed this. stb_image
 * allocates what a file declares (a PNG chunk length, a PNM size) before it
 * knows the data is there; this is the last line that keeps a 75-byte file
 * from reserving a gigabyte. At the default max_pixels the largest buffer
 * stb needs is 512 MiB (a 16-bit RGBA PNG), so larger max_pixels overrides
 * can fail with "allocation cap" for such files. */
#define RVI_IMAGE_ALLOC_CAP ((size_t)768 << 20)

rvi_image_limits rvi_image_default_limits(void);

/* Reads and decodes an image file into 8-bit RGB: grey is replicated, alpha
 * is dropped without compositing (as PIL's convert('RGB')). lim NULL means
 * the defaults. With apply_exif, a JPEG's EXIF orientation (1..8) is applied
 * after decoding so the pixels are upright. On failure *out is zeroed. */
int rvi_image_load_file(const char *path, const rvi_image_limits *lim, bool apply_exif,
                        rvi_image *out, rvi_err *err);

/* Reads a whole image file (a regular file only: a FIFO or device is
 * refused without blocking) into a malloc'ed buffer. RV_ERR_IO, or
 * RV_ERR_IMAGE when it holds more than max_bytes. */
int rvi_image_read_file(const char *path, uint64_t max_bytes, uint8_t **buf, size_t *n,
                        rvi_err *err);

/* The same from memory; name is only used in messages (e.g. a path). */
int rvi_image_load_memory(const void *buf, size_t n, const char *name, const rvi_image_limits *lim,
                          bool apply_exif, rvi_image *out, rvi_err *err);

/* Every check rvi_image_load_memory makes before it decodes (format,
 * structure, size and memory limits) and the size the decoded image will
 * have (upright, when apply_exif), without decoding: what a caller that
 * may not decode (an embedding-cache hit) still owes the limits, and what
 * a family needs to count the image's rows. */
int rvi_image_probe_memory(const void *buf, size_t n, const char *name, const rvi_image_limits *lim,
                           bool apply_exif, int *w, int *h, rvi_err *err);

/* Frees img->rgb and zeroes img; NULL and zeroed images are fine. */
void rvi_image_free(rvi_image *img);

/* The EXIF orientation of a JPEG held in buf (1..8), or 1 when buf is not a
 * JPEG, has no EXIF, or the tag is missing, malformed or out of range. */
int rvi_image_exif_orientation(const void *buf, size_t n);

/* Applies EXIF orientation o (1..8, as PIL's ImageOps.exif_transpose: 3 is a
 * 180 degree turn, 6 needs 90 degrees clockwise, 8 counter-clockwise, 2/4/5/7
 * mirror) into a new image; 5..8 swap width and height. */
int rvi_image_orient(const rvi_image *in, int o, rvi_image *out, rvi_err *err);

/* LLaVA's expand2square: a max(w,h) square filled with color, the image
 * pasted at ((side-w)/2, (side-h)/2). */
int rvi_image_pad_to_square(const rvi_image *in, const uint8_t color[3], rvi_image *out,
                            rvi_err *err);

/* The padding colour LLaVA derives from the processor mean: int(mean*255). */
void rvi_image_pad_color(const float mean[3], uint8_t color[3]);

/* Resizes to out_w x out_h exactly as Pillow's Image.resize(size, BICUBIC)
 * does for 8-bit RGB (fixed-point, two passes through an 8-bit
 * intermediate), so results match PIL bit for bit. */
int rvi_image_resize_bicubic_pil(const rvi_image *in, int out_w, int out_h, rvi_image *out,
                                 rvi_err *err);

/* Pillow's filters that rvi_image_resize_pil reproduces. */
typedef enum rvi_resample {
	RVI_RESAMPLE_BICUBIC = 0, /* Image.BICUBIC (a = -0.5, support 2) */
	RVI_RESAMPLE_LANCZOS = 1, /* Image.LANCZOS (sinc(x) sinc(x/3), support 3) */
	/* Image.BILINEAR (triangle 1 - |x|, support 1: antialiased when
	 * shrinking, like the others) */
	RVI_RESAMPLE_BILINEAR = 2,
} rvi_resample;

/* Image.resize(size, filt) of Pillow on 8-bit RGB, bit for bit (the
 * bicubic one's scheme with the filter's kernel and support). */
int rvi_image_resize_pil(const rvi_image *in, int out_w, int out_h, rvi_resample filt,
                         rvi_image *out, rvi_err *err);

/* A canvas of w x h pixels of colour pad with an image pasted at (ox, oy):
 * what resamplers read when a family pads before it resizes. */
typedef struct rvi_image_canvas {
	int w, h, ox, oy;
	uint8_t pad[3];
} rvi_image_canvas;

/* rvi_image_resize_bicubic_pil of img pasted on canvas, without building
 * the padded canvas (a long thin image costs its own pixels, not its
 * square). The image must lie inside the canvas. */
int rvi_image_resize_padded_pil(const rvi_image *img, const rvi_image_canvas *canvas, int out_w,
                                int out_h, rvi_image *out, rvi_err *err);

/* out_chw[c * w * h + y * w + x] = ((float)(u8 * (1/255)) - mean[c]) / std[c]
 * (the product in double, as HF's rescale, the rest in float32). */
void rvi_image_normalize_chw(const rvi_image *img, const float mean[3], const float std[3],
                             float *out_chw);

/* A w x h image with uninitialised pixels; RV_ERR_INVALID_ARG for sizes
 * that are not positive or overflow, RV_ERR_NOMEM. */
int rvi_image_new(int w, int h, rvi_image *out, rvi_err *err);

/* img has pixels and a positive size. */
bool rvi_image_valid(const rvi_image *img);

/* LLaVA-1.5 preprocessing: pad to square with rvi_image_pad_color(mean),
 * resize to image_size x image_size as rvi_image_resize_bicubic_pil, then
 * v = ((float)(u8 * (1/255)) - mean[c]) / std[c] in float32, written planar
 * into out_chw[c * S * S + y * S + x] (3 * S * S floats). Equal bit for bit
 * to pad + resize + normalise done one after another, but the padded square
 * is never built, so a wide image costs no more memory than its own pixels. */
int rvi_image_preprocess_llava(const rvi_image *img, int image_size, const float mean[3],
                               const float std[3], float *out_chw, rvi_err *err);

/* Qwen2-VL's smart_resize (HF Qwen2VLImageProcessor): both sides rounded
 * to multiples of factor (Python rounding: ties to even), then scaled
 * down to at most max_pixels or up to at least min_pixels keeping the
 * aspect ratio. Sides below factor and aspect ratios of 200 or more are
 * refused, as HF does (RV_ERR_IMAGE); absurd limits RV_ERR_INVALID_ARG. */
int rvi_qwen2vl_smart_resize(int w, int h, int factor, int64_t min_pixels, int64_t max_pixels,
                             int *out_w, int *out_h, rvi_err *err);

/* Qwen2-VL preprocessing: a Pillow bicubic stretch of img to out_w x out_h
 * (skipped when the size is already that), then normalised as
 * rvi_image_normalize_chw into out_chw (3 * out_w * out_h floats). */
int rvi_image_preprocess_qwen2vl(const rvi_image *img, int out_w, int out_h, const float mean[3],
                                 const float std[3], float *out_chw, rvi_err *err);

/* The rows the vision tower reads from a normalised w x h image (sides
 * multiples of patch * merge): merge blocks row-major, the merge x merge
 * patches of a block row-major, each row the patch's 3 x temporal x patch x
 * patch values in (channel, time, y, x) order, a still image repeated in
 * time. out: (h / patch) * (w / patch) rows. */
void rvi_qwen2vl_patches(const float *chw, int w, int h, int patch, int merge, int temporal,
                         float *out);

/* Idefics3 / SmolVLM geometry (HF's Idefics3ImageProcessor): an image of
 * w x h has its longest edge resized to longest_edge (w1 x h1: the other
 * side by int() of the aspect ratio in double, made even), then each side
 * stretched up to a multiple of tile (w2 x h2); larger than one tile it is
 * cut into rows x cols tiles, else rows = cols = 0 (the image alone). */
typedef struct rvi_idefics3_geom {
	int w1, h1, w2, h2;
	int rows, cols;
} rvi_idefics3_geom;

int rvi_idefics3_geometry(int w, int h, int longest_edge, int tile, rvi_idefics3_geom *g,
                          rvi_err *err);

/* Idefics3 / SmolVLM preprocessing along g (from rvi_idefics3_geometry of
 * img's size): both resizes Pillow LANCZOS, then the rows x cols tiles
 * row-major and the resize-2 image stretched to tile x tile last, each
 * normalised as rvi_image_normalize_chw into out, (rows * cols + 1) planar
 * (3, tile, tile) blocks. */
int rvi_image_preprocess_idefics3(const rvi_image *img, const rvi_idefics3_geom *g, int tile,
                                  const float mean[3], const float std[3], float *out,
                                  rvi_err *err);

/* Gemma 3 preprocessing (HF Gemma3ImageProcessor): img, then its n_h x
 * n_w pan-and-scan crops of cw x ch pixels from (0, 0) row-major (the last
 * of a row or column cut short by the image's edge; none when n_w = n_h =
 * 0), each stretched to S x S with Pillow's BILINEAR and normalised as
 * rvi_image_normalize_chw into out, (1 + n_w n_h) planar (3, S, S) blocks. */
int rvi_image_preprocess_gemma3(const rvi_image *img, int n_w, int n_h, int cw, int ch, int S,
                                const float mean[3], const float std[3], float *out, rvi_err *err);

/* ---- internal: the bridge to stb_image_impl.c ----------------------------
 * stb_image is compiled static in one file; these are its only entry points.
 * reason gets stb's failure string (never NULL on failure). */
void *rvi_image_capped_malloc(size_t n);
void *rvi_image_capped_realloc(void *p, size_t n);
/* The header's size (positive: a top-down BMP's negative height is its
 * row order, not its size), channel count and bytes per sample (1, or 2
 * for 16-bit PNG and PNM). */
int rvi_stbi_info(const uint8_t *buf, size_t n, int *w, int *h, int *comp, int *sample_bytes,
                  const char **reason);
/* 8-bit pixels with the file's own channel count (*comp: 1 grey, 2 grey +
 * alpha, 3 RGB, 4 RGBA); free() the result. */
uint8_t *rvi_stbi_load(const uint8_t *buf, size_t n, int *w, int *h, int *comp,
                       const char **reason);

#endif
