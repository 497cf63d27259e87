/* stb_image_impl.c: the one translation unit that compiles stb_image (Debian's
 * libstb-dev header, never a vendored copy), plus the capped allocator it
 * allocates through and the few wrappers decode.c calls.
 *
 * stb_image is compiled static (STB_IMAGE_STATIC) so that none of its symbols
 * leak out of librlaifv and clash with another copy in the host program; the
 * rvi_stbi_* wrappers are the only way in. */
#include "src/image/image.h"

#include <limits.h>
#include <stdlib.h>

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_ONLY_PNM
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_MAX_DIMENSIONS RVI_IMAGE_MAX_SIDE
#define STBI_MALLOC(n)      rvi_image_capped_malloc(n)
#define STBI_REALLOC(p, n)  rvi_image_capped_realloc(p, n)
#define STBI_FREE(p)        free(p)
/* A library must not abort on a hostile file. The asserts in stb_image 2.27
 * check invariants that its own code keeps (req_comp, bit depths) or, in the
 * JPEG Huffman decoder, compare a decoded code without guarding any memory
 * access; a violation then yields wrong pixels rather than a crash. */
#define STBI_ASSERT(x) ((void)0)

/* STB_IMAGE_STATIC leaves the entry points we do not call unused (GCC says
 * so at the end of the file, so this one stays on). At -O3 GCC also inlines
 * stb's callback refill into the memory path and warns about fields that
 * path never reads. The header is otherwise clean under our flags. */
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wunused-function"
#endif
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <stb/stb_image.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

/* A refusal is recorded in stb's own (thread-local) failure reason: some stb
 * paths, such as the PNG inflate buffer, return NULL on a failed allocation
 * without setting one. Memory comes zeroed: stb 2.27 can read state it never
 * wrote (the Huffman tables of a JPEG that lacks them, fixed upstream in
 * 2.28 by zeroing), and zeroed pages from the kernel cost nothing extra. */
void *rvi_image_capped_malloc(size_t n)
{
	if (n > RVI_IMAGE_ALLOC_CAP) {
		stbi__g_failure_reason = "allocation cap";
		return NULL;
	}
	return calloc(1, n ? n : 1);
}

void *rvi_image_capped_realloc(void *p, size_t n)
{
	if (n > RVI_IMAGE_ALLOC_CAP) {
		stbi__g_failure_reason = "allocation cap";
		return NULL; /* p stays valid; stb's error path frees it */
	}
	return realloc(p, n ? n : 1);
}

static const char *failure_reason(void)
{
	const char *r = stbi_failure_reason();
	return r && *r ? r : "unknown error";
}

int rvi_stbi_info(const uint8_t *buf, size_t n, int *w, int *h, int *comp, int *sample_bytes,
                  const char **reason)
{
	*reason = NULL;
	if (n > INT_MAX) {
		*reason = "too large";
		return 0;
	}
	stbi__g_failure_reason = NULL; /* never report a previous call's reason */
	if (!stbi_info_from_memory(buf, (int)n, w, h, comp)) {
		*reason = failure_reason();
		return 0;
	}
	/* stb's BMP info passes the header's signed height on: negative means
	 * rows stored top-down (stb_image's loader flips by it). */
	if (*h < 0 && *h != INT_MIN)
		*h = -*h;
	if (*w <= 0 || *h <= 0) {
		*reason = "bad size";
		return 0;
	}
	*sample_bytes = stbi_is_16_bit_from_memory(buf, (int)n) ? 2 : 1;
	return 1;
}

uint8_t *rvi_stbi_load(const uint8_t *buf, size_t n, int *w, int *h, int *comp, const char **reason)
{
	*reason = NULL;
	if (n > INT_MAX) {
		*reason = "too large";
		return NULL;
	}
	stbi__g_failure_reason = NULL;
	/* req_comp 0 (the file's own channels): stb 2.27 mishandles a 16-bit
	 * PGM when asked to convert it (CVE-2021-42716), and decode.c does the
	 * conversion to RGB anyway. */
	uint8_t *px = stbi_load_from_memory(buf, (int)n, w, h, comp, 0);
	if (!px)
		*reason = failure_reason();
	return px;
}
