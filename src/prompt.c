/* prompt.c: templating, tokenizing, image encoding and prefill of a
 * prompt (see prompt.h). */
#include "src/prompt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/chat.h"
#include "src/log.h"
#include "src/vision.h"

/* The template a prompt asks for, resolved against the model. */
static int resolve_template(rv_context *ctx, const rv_prompt *p, const char **name)
{
	const char *t = p->chat_template;
	const rvi_vision_arch *va = ctx->model->vision;
	if (!t && p->n_images > 0 && va)
		t = va->chat_template_of ? va->chat_template_of(ctx->model->vision_model) : NULL;
	if (!t && p->n_images > 0)
		t = va && va->chat_template ? va->chat_template : "llava";
	if (!t)
		t = "none";
	if (!strcmp(t, "gguf")) {
		rvi_str s = {0};
		int rc = rvi_gguf_get_str(ctx->model->gguf, "tokenizer.chat_template", false, &s,
		                          &ctx->err);
		if (rc != RV_OK)
			return rc;
		t = s.ptr ? rvi_chat_recognise(s.ptr, s.len) : NULL;
		if (!t)
			return rvi_errorf(
			    &ctx->err, RV_ERR_INVALID_ARG,
			    "%s: %s; name one in the prompt's chat_template (" RVI_CHAT_TEMPLATES
			    ")",
			    ctx->model->gguf->path,
			    s.ptr ? "its chat template is none we recognise"
			          : "it has no chat template");
	}
	*name = t;
	return RV_OK;
}

/* A new part at the end of pr (zeroed), or NULL when memory runs out. */
static rvi_prompt_part *new_part(rv_context *ctx, rvi_prompt *pr)
{
	if (pr->n_parts == pr->cap_parts) {
		const int cap = pr->cap_parts ? 2 * pr->cap_parts : 8;
		rvi_prompt_part *p = realloc(pr->parts, (size_t)cap * sizeof(*p));
		if (!p) {
			rvi_errorf(&ctx->err, RV_ERR_NOMEM, "out of memory");
			return NULL;
		}
		pr->parts = p;
		pr->cap_parts = cap;
	}
	rvi_prompt_part *part = &pr->parts[pr->n_parts++];
	memset(part, 0, sizeof(*part));
	return part;
}

/* Text tokenized into a part; with special, control tokens are cut out
 * except where they overlap the n_plain spans of the text. */
static int add_text(rv_context *ctx, rvi_prompt *pr, const char *text, size_t len, bool bos,
                    bool special, const rvi_span *plain, int n_plain)
{
	rvi_prompt_part *part = new_part(ctx, pr);
	if (!part)
		return RV_ERR_NOMEM;
	int rc = rvi_tokenize_spans(ctx->model->tok, text, len, bos, special, plain, n_plain,
	                            &part->tokens, &part->n, &ctx->err);
	pr->n_positions += part->n;
	return rc;
}

static int add_rows(rv_context *ctx, rvi_prompt *pr, int image, int64_t row0, int64_t n,
                    int64_t grid_h, int64_t grid_w)
{
	rvi_prompt_part *part = new_part(ctx, pr);
	if (!part)
		return RV_ERR_NOMEM;
	*part = (rvi_prompt_part){NULL, n, image, row0, grid_h, grid_w};
	pr->n_positions += n;
	return RV_OK;
}

/* Text waiting to be tokenized: a chat segment and the layout text that
 * joins it (rvi_image_layout.text_joins) make one string, as a processor's
 * expanded prompt is one string to its tokenizer. Anything else (rows, a
 * piece of its own) ends it. */
typedef struct pending_text {
	char *buf;
	size_t len, cap;
	rvi_span plain[4]; /* user text kept plain: at most one segment's two */
	int n_plain;
	bool bos, special, any;
	bool joins; /* it ends with layout text that joins what follows */
} pending_text;

static int pending_add(rv_context *ctx, pending_text *pt, const char *text, size_t len,
                       const rvi_span *plain, int n_plain)
{
	if (pt->len + len + 1 > pt->cap) {
		const size_t cap = (pt->len + len + 1) * 2;
		char *b = realloc(pt->buf, cap);
		if (!b)
			return rvi_errorf(&ctx->err, RV_ERR_NOMEM, "out of memory");
		pt->buf = b;
		pt->cap = cap;
	}
	if (pt->n_plain + n_plain > (int)(sizeof(pt->plain) / sizeof(pt->plain[0])))
		return rvi_errorf(&ctx->err, RV_ERR_INTERNAL, "prompt: too many user spans");
	for (int k = 0; k < n_plain; k++)
		pt->plain[pt->n_plain++] = (rvi_span){plain[k].off + pt->len, plain[k].len};
	memcpy(pt->buf + pt->len, text, len);
	pt->len += len;
	pt->any = true;
	return RV_OK;
}

static int pending_flush(rv_context *ctx, rvi_prompt *pr, pending_text *pt)
{
	int rc = RV_OK;
	if (pt->any)
		rc = add_text(ctx, pr, pt->buf ? pt->buf : "", pt->len, pt->bos, pt->special,
		              pt->plain, pt->n_plain);
	pt->len = 0;
	pt->n_plain = 0;
	pt->bos = false;
	pt->special = true;
	pt->any = false;
	pt->joins = false;
	return rc;
}

/* An image's place in the prompt: its rows, framed by the family's
 * markers when it has a layout. */
static int add_image(rv_context *ctx, rvi_prompt *pr, pending_text *pt, int image,
                     const rvi_embd_shape *sh)
{
	const rv_model *m = ctx->model;
	int rc;
	if (!m->vision->layout) {
		if ((rc = pending_flush(ctx, pr, pt)) != RV_OK)
			return rc;
		return add_rows(ctx, pr, image, 0, sh->rows, sh->grid_h, sh->grid_w);
	}
	rvi_image_layout l = {0};
	rc = m->vision->layout(m->vision_model, sh, &l, &ctx->err);
	for (int i = 0; rc == RV_OK && i < l.n; i++) {
		const rvi_layout_piece *pc = &l.pieces[i];
		char indexed[128];
		const char *text = pc->text;
		if (text && i == 0 && l.first_indexed) {
			/* the family's format, its one %d the image's index */
			const int n = snprintf(indexed, sizeof(indexed), pc->text, image);
			if (n <= 0 || (size_t)n >= sizeof(indexed)) {
				rc = rvi_errorf(&ctx->err, RV_ERR_INTERNAL, "image layout: '%s'",
				                pc->text);
				break;
			}
			text = indexed;
		}
		if (text && l.text_joins) {
			rc = pending_add(ctx, pt, text, strlen(text), NULL, 0);
			pt->joins = true;
		} else if ((rc = pending_flush(ctx, pr, pt)) != RV_OK)
			break;
		else if (text)
			rc = add_text(ctx, pr, text, strlen(text), false, true, NULL, 0);
		else if (pc->row0 < 0 || pc->n_rows < 0 || pc->row0 > sh->rows - pc->n_rows)
			rc =
			    rvi_errorf(&ctx->err, RV_ERR_INTERNAL,
			               "image layout: rows %lld..%lld of %lld", (long long)pc->row0,
			               (long long)(pc->row0 + pc->n_rows), (long long)sh->rows);
		else
			rc = add_rows(ctx, pr, image, pc->row0, pc->n_rows, pc->grid_h, pc->grid_w);
	}
	rvi_image_layout_free(&l);
	return rc;
}

int rvi_prompt_prepare(rv_context *ctx, const rv_prompt *p, int add_bos, rvi_prompt *out)
{
	const rv_model *m = ctx->model;
	memset(out, 0, sizeof(*out));
	if (p->n_images < 0 || (p->n_images > 0 && !p->images))
		return rvi_errorf(&ctx->err, RV_ERR_INVALID_ARG, "bad image list");
	if (p->n_images > 0 && !m->vision)
		return rvi_errorf(&ctx->err, RV_ERR_INVALID_ARG,
		                  "an image prompt needs the model's projector: load one with "
		                  "rv_model_load_mmproj");
	const char *tname = NULL;
	int rc = resolve_template(ctx, p, &tname);
	if (rc != RV_OK)
		return rc;
	const bool raw = !strcmp(tname, "none");
	if (raw && p->n_images > 0)
		return rvi_errorf(&ctx->err, RV_ERR_INVALID_ARG,
		                  "images need a chat template to go into (not \"none\")");

	/* Each image is read and checked now, and counted by the rows its size
	 * gives, so that the prompt is known to fit before any compute. */
	out->n_images = p->n_images;
	if (p->n_images > 0) {
		out->images = rvi_zalloc((size_t)p->n_images, sizeof(rvi_vision_input));
		if (!out->images)
			return rvi_errorf(&ctx->err, RV_ERR_NOMEM, "out of memory");
	}
	const rvi_vision_opts o = {ctx->apply_exif, ctx->image_limits, ctx->cache_dir,
	                           ctx->n_threads};
	for (int i = 0; rc == RV_OK && i < p->n_images; i++) {
		rc = rvi_vision_open(m->vision, m->vision_model, p->images[i], &o, &out->images[i],
		                     &ctx->err);
		/* Whatever kept the image from being read is about the image. */
		if (rc == RV_ERR_IO)
			rc = ctx->err.status = RV_ERR_IMAGE;
	}
	if (rc != RV_OK) {
		rvi_prompt_free(out);
		return rc;
	}

	rvi_chat chat = {0};
	rvi_segment one = {.text = p->text ? p->text : "", .len = strlen(p->text ? p->text : "")};
	const rvi_segment *seg = &one;
	int n_seg = 1;
	if (!raw) {
		rc = rvi_chat_build(tname, p->system, p->text, p->n_images, &chat, &ctx->err);
		if (rc != RV_OK) {
			rvi_prompt_free(out);
			return rc;
		}
		seg = chat.seg;
		n_seg = chat.n_seg;
	}
	const bool bos = add_bos < 0 ? rvi_tokenizer_add_bos(m->tok) : add_bos != 0;
	int64_t image_rows = 0;
	pending_text pt = {.special = true};
	for (int i = 0; rc == RV_OK && i < n_seg; i++) {
		if (!seg[i].text) {
			const rvi_embd_shape *sh = &out->images[seg[i].image].shape;
			image_rows += sh->rows;
			rc = add_image(ctx, out, &pt, seg[i].image, sh);
		} else {
			/* Template markers (<|im_start|>) are control tokens, the
			 * user's text is plain unless asked; a raw prompt's
			 * special-token text is parsed unless asked not to. Only
			 * the first segment gets BOS, as LLaVA's
			 * tokenizer_image_token does. */
			rvi_span user[2];
			int n_user = raw || p->parse_special_user ? 0 : seg[i].n_user;
			for (int k = 0; k < n_user; k++)
				user[k] = (rvi_span){seg[i].user_off[k], seg[i].user_len[k]};
			/* one segment alone, or joined to the layout text
			 * before it */
			if (pt.any && !pt.joins)
				rc = pending_flush(ctx, out, &pt);
			pt.bos |= bos && i == 0;
			pt.special = !(raw && p->no_parse_special);
			pt.joins = false;
			if (rc == RV_OK)
				rc = pending_add(ctx, &pt, seg[i].text, seg[i].len, user, n_user);
		}
	}
	if (rc == RV_OK)
		rc = pending_flush(ctx, out, &pt);
	free(pt.buf);
	rvi_chat_free(&chat);
	if (rc == RV_OK && out->n_positions == 0)
		rc = rvi_errorf(&ctx->err, RV_ERR_INVALID_ARG,
		                "the prompt is empty and the model adds no BOS token");
	if (rc == RV_OK && out->n_positions >= rv_context_n_ctx(ctx)) {
		char images[64] = "";
		if (p->n_images > 0)
			snprintf(images, sizeof(images), " (%lld of them for %d image%s)",
			         (long long)image_rows, p->n_images, p->n_images == 1 ? "" : "s");
		rc = rvi_errorf(&ctx->err, RV_ERR_CONTEXT,
		                "the prompt takes %lld positions%s but the context holds %lld: "
		                "shorten it or make the context larger (n_ctx)",
		                (long long)out->n_positions, images,
		                (long long)rv_context_n_ctx(ctx));
	}
	if (rc != RV_OK)
		rvi_prompt_free(out);
	return rc;
}

void rvi_prompt_cache_warning(rv_context *ctx, const rvi_err *warning)
{
	if (!warning->msg[0] || ctx->cache_warned)
		return;
	ctx->cache_warned = true;
	rvi_log(RV_LOG_WARN,
	        "image-embedding cache: %s (further cache problems of this context "
	        "are not reported)",
	        warning->msg);
}

/* The model's preprocessing settings that change an image's rows, as
 * text ("" when all are the file's): for the cache key and for whether
 * two models may share rows. */
static void preprocess_tag(const rv_model *m, char *buf, size_t cap)
{
	int n = 0;
	buf[0] = 0;
	if (m->image_longest_edge > 0)
		n = snprintf(buf, cap, "longest_edge=%d", m->image_longest_edge);
	if (m->image_max_slices > 0 && n >= 0 && (size_t)n < cap)
		n += snprintf(buf + n, cap - (size_t)n, "%smax_slices=%d", n ? " " : "",
		              m->image_max_slices);
	if (m->pan_and_scan.on && n >= 0 && (size_t)n < cap)
		snprintf(buf + n, cap - (size_t)n, "%span_and_scan=%d,%d,%.17g", n ? " " : "",
		         m->pan_and_scan.min_crop_size, m->pan_and_scan.max_crops,
		         m->pan_and_scan.min_ratio);
}

int rvi_prompt_encode_images(rv_context *ctx, rvi_prompt *pr, const rvi_prompt *share,
                             const rv_model *share_model, double *ms)
{
	const rv_model *m = ctx->model;
	*ms = 0;
	if (pr->n_images == 0)
		return RV_OK;
	/* The same projector and settings, or none of our own: the other
	 * prompt's rows. */
	char tag[128], share_tag[128] = "";
	preprocess_tag(m, tag, sizeof(tag));
	if (share_model)
		preprocess_tag(share_model, share_tag, sizeof(share_tag));
	if (share && share->embd && share->n_images == pr->n_images &&
	    (!m->vision || (rvi_vision_same_mmproj(m->mm_gguf, share_model->mm_gguf) &&
	                    !strcmp(tag, share_tag)))) {
		pr->embd = share->embd;
		pr->owns_embd = false;
		return RV_OK;
	}
	const double t0 = rvi_now_ms();
	const int64_t cols = m->vision->n_embd_out(m->vision_model);
	pr->embd = rvi_zalloc((size_t)pr->n_images, sizeof(float *));
	pr->owns_embd = true;
	if (!pr->embd)
		return rvi_errorf(&ctx->err, RV_ERR_NOMEM, "out of memory");
	const rvi_vision_opts o = {ctx->apply_exif, ctx->image_limits, ctx->cache_dir,
	                           ctx->n_threads};
	uint8_t mm_id[RVI_SHA256_BYTES] = {0};
	rvi_err warn = {0};
	if (o.cache_dir) {
		rvi_vision_mmproj_id(m->mm_gguf, m->mm_id, o.cache_dir, mm_id, &warn);
		rvi_prompt_cache_warning(ctx, &warn);
		/* a preprocessing setting is part of what the rows depend on */
		if (tag[0]) {
			rvi_sha256_ctx c;
			rvi_sha256_init(&c);
			rvi_sha256_update(&c, mm_id, sizeof(mm_id));
			rvi_sha256_update(&c, tag, strlen(tag));
			rvi_sha256_final(&c, mm_id);
		}
	}
	for (int i = 0; i < pr->n_images; i++) {
		const rvi_vision_input *in = &pr->images[i];
		pr->embd[i] = rvi_alloc((size_t)in->shape.rows * (size_t)cols, sizeof(float));
		if (!pr->embd[i])
			return rvi_errorf(&ctx->err, RV_ERR_NOMEM, "out of memory");
		bool hit;
		int rc = rvi_vision_embed(m->vision, m->vision_model, mm_id, in, &o, pr->embd[i],
		                          &hit, &warn, &ctx->err);
		rvi_prompt_cache_warning(ctx, &warn);
		if (rc == RV_ERR_IO)
			rc = ctx->err.status = RV_ERR_IMAGE;
		if (rc != RV_OK)
			return rc;
	}
	*ms = rvi_now_ms() - t0;
	return RV_OK;
}

/* Positions of a part starting at p0: text and 1-D images count up; with
 * (t, h, w) positions an image's rows sit at (p0, p0 + row, p0 + col) of
 * its grid, and what follows starts at p0 + max(grid_h, grid_w), as
 * Qwen2-VL's get_rope_index does. Returns the position after the part. */
static int64_t part_positions(const rv_context *ctx, const rvi_prompt_part *part, int64_t p0,
                              rvi_pos *pos)
{
	const int64_t gh = part->grid_h, gw = part->grid_w;
	if (part->tokens || ctx->model->info.n_pos_dims == 1 || gh * gw != part->n) {
		for (int64_t i = 0; i < part->n; i++) {
			const int32_t q = (int32_t)(p0 + i);
			pos[i] = (rvi_pos){q, q, q};
		}
		return p0 + part->n;
	}
	for (int64_t i = 0; i < part->n; i++)
		pos[i] = (rvi_pos){(int32_t)p0, (int32_t)(p0 + i / gw), (int32_t)(p0 + i % gw)};
	return p0 + (gh > gw ? gh : gw);
}

int64_t rvi_prompt_positions(const rv_context *ctx, const rvi_prompt *pr, rvi_pos *pos)
{
	int64_t p = 0, k = 0;
	for (int i = 0; i < pr->n_parts; i++) {
		p = part_positions(ctx, &pr->parts[i], p, pos + k);
		k += pr->parts[i].n;
	}
	return p;
}

int rvi_prompt_prefill(rv_context *ctx, const rvi_prompt *pr)
{
	const rv_model *m = ctx->model;
	int last = pr->n_parts - 1;
	while (last > 0 && pr->parts[last].n == 0)
		last--;
	int64_t longest = 1;
	for (int i = 0; i <= last; i++)
		if (pr->parts[i].n > longest)
			longest = pr->parts[i].n;
	rvi_pos *pos = rvi_alloc((size_t)longest, sizeof(rvi_pos));
	if (!pos)
		return rvi_errorf(&ctx->err, RV_ERR_NOMEM, "out of memory");
	rvi_kvcache_clear(ctx->kv);
	ctx->pos_next = 0;
	int rc = RV_OK;
	for (int i = 0; rc == RV_OK && i <= last; i++) {
		const rvi_prompt_part *part = &pr->parts[i];
		if (part->n == 0)
			continue;
		ctx->pos_next = part_positions(ctx, part, ctx->pos_next, pos);
		/* rows: the part's run of its image's embedding rows */
		const float *rows =
		    part->tokens ? NULL : pr->embd[part->image] + part->row0 * m->info.n_embd;
		const rvi_batch b = {part->n, part->tokens,
		                     rows,    NULL,
		                     pos,     part->tokens ? RVI_ATTN_CAUSAL : m->info.image_attn};
		rc = rvi_context_decode(ctx, &b, i == last ? ctx->logits : NULL, false);
	}
	free(pos);
	return rc;
}

void rvi_prompt_free(rvi_prompt *pr)
{
	for (int i = 0; pr->parts && i < pr->n_parts; i++)
		free(pr->parts[i].tokens);
	free(pr->parts);
	if (pr->owns_embd && pr->embd)
		for (int i = 0; i < pr->n_images; i++)
			free(pr->embd[i]);
	if (pr->owns_embd)
		free(pr->embd);
	for (int i = 0; pr->images && i < pr->n_images; i++)
		rvi_vision_input_free(&pr->images[i]);
	free(pr->images);
	memset(pr, 0, sizeof(*pr));
}
