/* registry.c: the model families this build knows, found by the name a
 * GGUF file gives (see arch.h). A new family adds its table here. */
#include "models/arch.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "models/clip.h"
#include "models/gemma3.h"
#include "models/gemma3_vision.h"
#include "models/idefics3.h"
#include "models/llama.h"
#include "models/minicpmv.h"
#include "models/qwen2.h"
#include "models/qwen25vl.h"

static const rvi_text_arch *const text_archs[] = {
    &rvi_llama_arch,   /* LLaMA 1/2/3, Vicuna, Mistral-style: the LLM of LLaVA */
    &rvi_qwen2_arch,   /* Qwen2, Qwen2.5: MiniCPM-V's LLM */
    &rvi_qwen2vl_arch, /* Qwen2-VL, Qwen2.5-VL: M-RoPE */
    &rvi_qwen3_arch,   /* Qwen3: q/k head norms; MiniCPM-V 4.5's LLM */
    &rvi_gemma3_arch,  /* Gemma 3: sliding-window layers, extra norms, GeGLU */
};

static const rvi_vision_arch *const vision_archs[] = {
    &rvi_llava_mlp_arch,      /* CLIP ViT + LLaVA-1.5's two-layer MLP projector */
    &rvi_qwen25vl_arch,       /* Qwen2.5-VL: windowed ViT with 2-D RoPE + patch merger */
    &rvi_qwen2vl_merger_arch, /* Qwen2-VL: its ViT with LayerNorm, full attention */
    &rvi_idefics3_arch,       /* SmolVLM, SmolVLM2, Idefics3: SigLIP + pixel shuffle */
    &rvi_gemma3v_arch,        /* Gemma 3: SigLIP + average pool, soft-embedding norm */
    &rvi_minicpmv_arch,       /* MiniCPM-V: SigLIP + resampler */
};

static const rvi_vision_registry builtin = {vision_archs,
                                            (int)(sizeof(vision_archs) / sizeof(vision_archs[0]))};

const rvi_vision_registry *rvi_vision_builtin(void)
{
	return &builtin;
}

/* Names for a message: the ones a registry knows, comma-separated. */
static void list_names(const char *const *names, int n, char *buf, size_t size)
{
	size_t used = 0;
	buf[0] = 0;
	for (int i = 0; i < n && used < size; i++) {
		int w = snprintf(buf + used, size - used, "%s%s", i ? ", " : "", names[i]);
		if (w < 0)
			break;
		used += (size_t)w;
	}
}

int rvi_text_arch_find(const rvi_gguf *g, const rvi_text_arch **out, rvi_err *err)
{
	*out = NULL;
	rvi_str s = {0};
	int rc = rvi_gguf_get_str(g, "general.architecture", true, &s, err);
	if (rc != RV_OK)
		return rc;
	const int n = (int)(sizeof(text_archs) / sizeof(text_archs[0]));
	const char *names[sizeof(text_archs) / sizeof(text_archs[0])];
	for (int i = 0; i < n; i++) {
		if (rvi_str_eq(s, text_archs[i]->name)) {
			*out = text_archs[i];
			return RV_OK;
		}
		names[i] = text_archs[i]->name;
	}
	char known[256];
	list_names(names, n, known, sizeof(known));
	return rvi_errorf(err, RV_ERR_UNSUPPORTED,
	                  "%s: general.architecture \"%.*s\" is not supported (known: %s)", g->path,
	                  (int)(s.len > 64 ? 64 : s.len), s.ptr, known);
}

int rvi_vision_arch_find(const rvi_gguf *g, const rvi_vision_registry *reg,
                         const rvi_vision_arch **out, rvi_err *err)
{
	*out = NULL;
	/* The family's loader checks general.architecture itself. */
	rvi_str s = {"mlp", 3};
	int rc = rvi_gguf_get_str(g, "clip.projector_type", false, &s, err);
	if (rc != RV_OK)
		return rc;
	const char *names[64];
	const int n = reg->n < 64 ? reg->n : 64;
	for (int i = 0; i < n; i++) {
		if (rvi_str_eq(s, reg->archs[i]->name)) {
			*out = reg->archs[i];
			return RV_OK;
		}
		names[i] = reg->archs[i]->name;
	}
	char known[256];
	list_names(names, n, known, sizeof(known));
	return rvi_errorf(err, RV_ERR_UNSUPPORTED,
	                  "%s: clip.projector_type \"%.*s\" is not supported (known: %s)", g->path,
	                  (int)(s.len > 64 ? 64 : s.len), s.ptr, known);
}

int rvi_arch_new(size_t size, int (*load)(void *obj, const rvi_gguf *g, rvi_err *err),
                 const rvi_gguf *g, void **out, rvi_err *err)
{
	void *obj = calloc(1, size);
	if (!obj)
		return rvi_errorf(err, RV_ERR_NOMEM, "out of memory");
	int rc = load(obj, g, err);
	if (rc != RV_OK) {
		free(obj);
		return rc;
	}
	*out = obj;
	return RV_OK;
}

void rvi_image_layout_free(rvi_image_layout *l)
{
	free(l->pieces);
	free(l->text);
	*l = (rvi_image_layout){0};
}

int rvi_image_layout_new(rvi_image_layout *l, int n_pieces, size_t text_cap, rvi_err *err)
{
	*l = (rvi_image_layout){0};
	l->pieces = rvi_zalloc((size_t)n_pieces, sizeof(*l->pieces));
	l->text = malloc(text_cap);
	if (!l->pieces || !l->text || n_pieces < 1 || text_cap < 1) {
		rvi_image_layout_free(l);
		return rvi_errorf(err, RV_ERR_NOMEM, "out of memory");
	}
	l->cap = n_pieces;
	l->text_cap = text_cap;
	return RV_OK;
}

void rvi_image_layout_text(rvi_image_layout *l, const char *fmt, ...)
{
	if (l->n >= l->cap || l->text_used >= l->text_cap)
		return;
	char *t = l->text + l->text_used;
	va_list ap;
	va_start(ap, fmt);
	const int w = vsnprintf(t, l->text_cap - l->text_used, fmt, ap);
	va_end(ap);
	if (w < 0)
		return;
	l->text_used +=
	    (size_t)w + 1 < l->text_cap - l->text_used ? (size_t)w + 1 : l->text_cap - l->text_used;
	l->pieces[l->n++] = (rvi_layout_piece){t, 0, 0, 0, 0};
}

void rvi_image_layout_rows(rvi_image_layout *l, int64_t row0, int64_t n_rows, int64_t grid_h,
                           int64_t grid_w)
{
	if (l->n < l->cap)
		l->pieces[l->n++] = (rvi_layout_piece){NULL, row0, n_rows, grid_h, grid_w};
}

void rvi_pixels_free(rvi_pixels *px)
{
	free(px->data);
	*px = (rvi_pixels){0};
}

int rvi_pixels_whole_images(const rvi_pixels *px, int64_t S, int64_t rows_per_image,
                            const char *family, int64_t *n, rvi_err *err)
{
	*n = px->n_floats / (3 * S * S);
	if (*n < 1 || *n * 3 * S * S != px->n_floats || *n * rows_per_image != px->shape.rows)
		return rvi_errorf(err, RV_ERR_INVALID_ARG,
		                  "%s encode: %lld pixels are not whole images of %lld rows",
		                  family, (long long)px->n_floats, (long long)px->shape.rows);
	return RV_OK;
}
