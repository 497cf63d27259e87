/* arch.h: what a model family implements, and the registry that finds one.
 *
 * A family is two tables of functions: a text decoder (general.architecture
 * of the model GGUF) and a vision tower with its projector
 * (clip.projector_type of the mmproj GGUF). The runtime (src/api.c,
 * prompt.c, bestofn.c, vision.c) calls a family only through these tables,
 * so adding one is a file in models/ that fills a table, plus a line in
 * models/registry.c; nothing in src/ changes. Each table's model and state
 * are opaque to the runtime (void *): only the family's own file reads
 * them. ggml's backend interface and SQLite's VFS are the pattern. */
#ifndef RLAIFV_ARCH_H
#define RLAIFV_ARCH_H

#include <stdbool.h>
#include <stdint.h>

#include "src/gguf.h"
#include "src/image/image.h"
#include "src/kvcache.h"
#include "src/util.h"

/* ---- batches ------------------------------------------------------------ */

/* A position: 1-D families read t only; M-RoPE (Qwen2-VL) rotates its
 * frequency sections by t, h and w. Text tokens have t = h = w. */
typedef struct rvi_pos {
	int32_t t, h, w;
} rvi_pos;

/* Who an item attends to. CAUSAL: every earlier cache row and itself.
 * BIDIRECTIONAL: as CAUSAL, and also every item of its own batch (an image
 * span that sees itself whole, as Gemma 3's image tokens do); such a batch
 * runs as one chunk. */
typedef enum rvi_attn_rule {
	RVI_ATTN_CAUSAL = 0,
	RVI_ATTN_BIDIRECTIONAL = 1,
} rvi_attn_rule;

/* A batch of inputs: token ids (or embedding rows), each appended either to
 * the shared prefix (seq NULL: all of them) or to the end of the suffix
 * sequence seq[i] (batched decoding of candidates, several items per
 * sequence for teacher-forced scoring). A batch is all-prefix or
 * all-suffix. The cache row an item takes is implied by the order; its
 * position is explicit (pos) or, when pos is NULL, its cache row. */
typedef struct rvi_batch {
	int64_t n;
	const int32_t *tokens; /* (n), or NULL */
	const float *embd;     /* (n, n_embd) rows when tokens is NULL */
	const int32_t *seq;    /* (n) suffix of each item, or NULL: the prefix */
	const rvi_pos *pos;    /* (n) positions, or NULL: t = h = w = cache row */
	rvi_attn_rule attn;
} rvi_batch;

/* ---- text decoder ------------------------------------------------------- */

typedef struct rvi_text_info {
	int64_t n_vocab;
	int64_t n_embd; /* width of an input embedding row (image rows too) */
	int64_t n_ctx_train;
	uint64_t weight_bytes;    /* read per decoded token */
	int n_pos_dims;           /* 1, or 3 when positions are (t, h, w) */
	rvi_attn_rule image_attn; /* how an image's rows attend to each other */
} rvi_text_info;

typedef struct rvi_text_arch {
	const char *name; /* general.architecture */
	/* Binds the weights of g (which outlives the model). Errors name the
	 * file and the key or tensor at fault. */
	int (*load)(const rvi_gguf *g, void **model, rvi_err *err);
	void (*free)(void *model);
	rvi_text_info (*info)(const void *model);
	/* Working memory and KV cache of one context. */
	int (*state_new)(const void *model, int64_t n_ctx, int64_t n_batch, int n_threads,
	                 void **state, rvi_err *err);
	void (*state_free)(void *state);
	rvi_kvcache *(*cache)(void *state);
	/* Runs a batch (split into chunks as the state allows); logits get
	 * (n_vocab) floats for the last item, or one row per item when
	 * all_logits; NULL for none. An item's result is bit-identical
	 * whatever else shares its batch. */
	int (*decode)(const void *model, void *state, const rvi_batch *b, float *logits,
	              bool all_logits, rvi_err *err);
} rvi_text_arch;

/* ---- vision tower and projector ----------------------------------------- */

/* The embedding rows one image becomes, laid out as grid_h x grid_w
 * (row-major; rows = grid_h * grid_w), which M-RoPE positions follow.
 * Families that cut an image into tiles say how many (0 x 0 otherwise);
 * their rows are the tiles' rows one after another. */
typedef struct rvi_embd_shape {
	int64_t rows, grid_h, grid_w;
	int tiles_h, tiles_w;
} rvi_embd_shape;

/* How an image's rows sit in the prompt, for families that frame them
 * with marker tokens (tile tags, begin/end of image): pieces in order,
 * each either text (tokenized with special tokens parsed: the family's
 * own markers) or a run of rows laid out as grid_h x grid_w. */
typedef struct rvi_layout_piece {
	const char *text; /* NUL-terminated, or NULL for a run of rows */
	int64_t row0, n_rows;
	int64_t grid_h, grid_w;
} rvi_layout_piece;

typedef struct rvi_image_layout {
	rvi_layout_piece *pieces;
	int n;
	char *text; /* the pieces' text lives here */
	/* The text pieces are tokenized as one string with the chat text
	 * before and after them, as a processor that expands a placeholder in
	 * the prompt string does (false: each piece alone). */
	bool text_joins;
	/* pieces[0].text is a printf format whose one %d is the image's
	 * index in the prompt (MiniCPM-V's <image_id>k</image_id>) */
	bool first_indexed;
	int cap;                    /* pieces allocated */
	size_t text_used, text_cap; /* bytes of text */
} rvi_image_layout;

void rvi_image_layout_free(rvi_image_layout *l);

/* A family's layout is built with these: room for n_pieces pieces and
 * text_cap bytes of their text, then the pieces in order (each a text
 * piece from a printf format, or a run of rows). A piece that does not fit
 * is left out (text is cut short): size the layout for what it gets. */
int rvi_image_layout_new(rvi_image_layout *l, int n_pieces, size_t text_cap, rvi_err *err);
void rvi_image_layout_text(rvi_image_layout *l, const char *fmt, ...) RVI_PRINTF(2, 3);
void rvi_image_layout_rows(rvi_image_layout *l, int64_t row0, int64_t n_rows, int64_t grid_h,
                           int64_t grid_w);

/* A preprocessed image: n_floats of planar pixels in the family's layout,
 * w x h pixels each plane, and the rows they encode to. */
typedef struct rvi_pixels {
	float *data; /* rvi_alloc'ed; rvi_pixels_free */
	int64_t n_floats;
	int w, h;
	int w2, h2; /* families with images of two sizes: the second (MiniCPM-V's slices) */
	rvi_embd_shape shape;
} rvi_pixels;

void rvi_pixels_free(rvi_pixels *px);

/* *n: how many planar (3, S, S) images px holds, each rows_per_image of
 * px's rows; RV_ERR_INVALID_ARG naming family when they are not whole. */
int rvi_pixels_whole_images(const rvi_pixels *px, int64_t S, int64_t rows_per_image,
                            const char *family, int64_t *n, rvi_err *err);

/* HF's pan-and-scan (Gemma3ImageProcessor do_pan_and_scan and its
 * pan_and_scan_* arguments): an elongated image is also cut into crops,
 * each encoded as an image of its own. */
typedef struct rvi_pan_and_scan {
	bool on;
	int min_crop_size; /* pan_and_scan_min_crop_size */
	int max_crops;     /* pan_and_scan_max_num_crops */
	double min_ratio;  /* pan_and_scan_min_ratio_to_activate */
} rvi_pan_and_scan;

typedef struct rvi_vision_arch {
	const char *name; /* clip.projector_type */
	/* Binds the weights of the mmproj g (which outlives the model). */
	int (*load)(const rvi_gguf *g, void **model, rvi_err *err);
	void (*free)(void *model);
	int64_t (*n_embd_out)(const void *model); /* width of an output row */
	/* The rows an upright image of w x h pixels gives, within lim's
	 * resize limits (families with a fixed size ignore them). */
	int (*embd_shape)(const void *model, int w, int h, const rvi_image_limits *lim,
	                  rvi_embd_shape *out, rvi_err *err);
	/* One decoded, upright image into the encoder's pixels. */
	int (*preprocess)(const void *model, const rvi_image *img, const rvi_image_limits *lim,
	                  rvi_pixels *out, rvi_err *err);
	/* out (px->shape.rows, n_embd_out) rows; the same whatever n_threads. */
	int (*encode)(const void *model, const rvi_pixels *px, int n_threads, float *out,
	              rvi_err *err);
	/* The pieces an image of this shape becomes in the prompt; NULL:
	 * its rows alone, in one run. */
	int (*layout)(const void *model, const rvi_embd_shape *shape, rvi_image_layout *out,
	              rvi_err *err);
	/* The chat template (src/chat.c) an image prompt gets when none is
	 * asked for; NULL: "llava". */
	const char *chat_template;
	/* For families whose versions were trained on different templates:
	 * this model's (NULL: chat_template); NULL for the others. */
	const char *(*chat_template_of)(const void *model);
	/* The longest edge images are resized to before tiling (0: the
	 * file's); NULL for families without that knob. */
	int (*set_longest_edge)(void *model, int longest_edge, rvi_err *err);
	/* Pan-and-scan crops (Gemma 3); NULL for families without them. */
	int (*set_pan_and_scan)(void *model, const rvi_pan_and_scan *s, rvi_err *err);
	/* The most slices an image is cut into (0: the family's default);
	 * NULL for families that do not slice that way. */
	int (*set_max_slices)(void *model, int max_slices, rvi_err *err);
} rvi_vision_arch;

/* For a family's load: a zeroed object of size bytes that load fills from
 * g; freed again (and *out left alone) when load fails. */
int rvi_arch_new(size_t size, int (*load)(void *obj, const rvi_gguf *g, rvi_err *err),
                 const rvi_gguf *g, void **out, rvi_err *err);

/* Defines static int NAME(g, model, err), a family's load entry: a zeroed
 * TYPE that LOAD_INTO(void *obj, g, err) fills. */
#define RVI_ARCH_LOAD(NAME, TYPE, LOAD_INTO)                                                       \
	static int NAME(const rvi_gguf *g, void **model, rvi_err *err)                             \
	{                                                                                          \
		return rvi_arch_new(sizeof(TYPE), LOAD_INTO, g, model, err);                       \
	}

/* The load entry (static arch_load) of a family whose model is a TYPE that
 * LOAD(TYPE *, g, err) fills, leaving it free of allocations on failure. */
#define RVI_ARCH_LOAD_TYPED(TYPE, LOAD)                                                            \
	static int arch_load_into(void *obj, const rvi_gguf *g, rvi_err *err)                      \
	{                                                                                          \
		return LOAD(obj, g, err);                                                          \
	}                                                                                          \
	RVI_ARCH_LOAD(arch_load, TYPE, arch_load_into)

/* The load and free entries (static arch_load and arch_free) of such a
 * family whose FREE(TYPE *) empties the model. */
#define RVI_ARCH_LOAD_FREE(TYPE, LOAD, FREE)                                                       \
	RVI_ARCH_LOAD_TYPED(TYPE, LOAD)                                                            \
	static void arch_free(void *model)                                                         \
	{                                                                                          \
		if (model)                                                                         \
			FREE(model);                                                               \
		free(model);                                                                       \
	}

/* ---- registry ----------------------------------------------------------- */

/* The text family that g's general.architecture names; RV_ERR_UNSUPPORTED
 * naming the key and value when none does. */
int rvi_text_arch_find(const rvi_gguf *g, const rvi_text_arch **out, rvi_err *err);

/* A list of vision families to choose from: the built-in one, or a
 * test's. */
typedef struct rvi_vision_registry {
	const rvi_vision_arch *const *archs;
	int n;
} rvi_vision_registry;

const rvi_vision_registry *rvi_vision_builtin(void);

/* The vision family that g's clip.projector_type names in reg ("mlp" when
 * the key is absent: converters older than projector types wrote LLaVA-1.5
 * files); RV_ERR_UNSUPPORTED naming the key and value when none does. */
int rvi_vision_arch_find(const rvi_gguf *g, const rvi_vision_registry *reg,
                         const rvi_vision_arch **out, rvi_err *err);

#endif
