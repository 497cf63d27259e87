/* prompt.c: templating, tokenizing, image encoding and prefill of a
 * prompt (see prompt.h). */
#include "src/prompt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/chat.h"
#include "src/vision.h"

/* The template a prompt asks for, resolved against the model. */
static int resolve_template(rv_context *ctx, const rv_prompt *p, const char **name)
{
	const char *t = p->chat_template;
	if (!t)
		t = p->n_images > 0 ? "llava" : "none";
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
			    "%s: %s; choose one with --chat-template (" RVI_CHAT_TEMPLATES ")",
			    ctx->model->gguf->path,
			    s.ptr ? "its chat template is none we recognise"
			          : "it has no chat template");
	}
	*name = t;
	return RV_OK;
}

int rvi_prompt_prepare(rv_context *ctx, const rv_prompt *p, int add_bos, rvi_prompt *out)
{
	const rv_model *m = ctx->model;
	memset(out, 0, sizeof(*out));
	if (p->n_images < 0 || (p->n_images > 0 && !p->images))
		return rvi_errorf(&ctx->err, RV_ERR_INVALID_ARG, "bad image list");
	if (p->n_images > 0 && !m->vision)
		return rvi_errorf(&ctx->err, RV_ERR_INVALID_ARG,
		                  "an image prompt needs the model's projector: give --mmproj "
		                  "MMPROJ.gguf (or set RLAIFV_MMPROJ)");
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
	rvi_segment one = {p->text ? p->text : "", strlen(p->text ? p->text : ""), 0};
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
	out->parts = rvi_zalloc((size_t)n_seg, sizeof(rvi_prompt_part));
	if (!out->parts)
		rc = rvi_errorf(&ctx->err, RV_ERR_NOMEM, "out of memory");
	const bool bos = add_bos < 0 ? rvi_tokenizer_add_bos(m->tok) : add_bos != 0;
	int64_t image_rows = 0;
	for (int i = 0; rc == RV_OK && i < n_seg; i++) {
		rvi_prompt_part *part = &out->parts[i];
		out->n_parts++;
		if (!seg[i].text) {
			part->image = seg[i].image;
			part->n = out->images[seg[i].image].shape.rows;
			image_rows += part->n;
		} else {
			/* Template text may hold special tokens (<|im_start|>); a raw
			 * prompt is taken as plain text. Only the first segment
			 * gets BOS, as LLaVA's tokenizer_image_token does. */
			rc = rvi_tokenize(m->tok, seg[i].text, seg[i].len, bos && i == 0, !raw,
			                  &part->tokens, &part->n, &ctx->err);
		}
		out->n_positions += part->n;
	}
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
		                "shorten it or raise -c",
		                (long long)out->n_positions, images,
		                (long long)rv_context_n_ctx(ctx));
	}
	if (rc != RV_OK)
		rvi_prompt_free(out);
	return rc;
}

int rvi_prompt_encode_images(rv_context *ctx, rvi_prompt *pr, const rvi_prompt *share,
                             const rv_model *share_model, double *ms)
{
	const rv_model *m = ctx->model;
	*ms = 0;
	if (pr->n_images == 0)
		return RV_OK;
	/* The same projector, or none of our own: the other prompt's rows. */
	if (share && share->embd && share->n_images == pr->n_images &&
	    (!m->vision || !memcmp(m->mm_id, share_model->mm_id, sizeof(m->mm_id)))) {
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
	for (int i = 0; i < pr->n_images; i++) {
		const rvi_vision_input *in = &pr->images[i];
		pr->embd[i] = rvi_alloc((size_t)in->shape.rows * (size_t)cols, sizeof(float));
		if (!pr->embd[i])
			return rvi_errorf(&ctx->err, RV_ERR_NOMEM, "out of memory");
		bool hit;
		rvi_err warn = {0};
		int rc = rvi_vision_embed(m->vision, m->vision_model, m->mm_id, in, &o, pr->embd[i],
		                          &hit, &warn, &ctx->err);
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
static int64_t part_positions(const rv_context *ctx, const rvi_prompt *pr,
                              const rvi_prompt_part *part, int64_t p0, rvi_pos *pos)
{
	const rvi_embd_shape *sh = part->tokens ? NULL : &pr->images[part->image].shape;
	if (!sh || ctx->model->info.n_pos_dims == 1 || sh->grid_h * sh->grid_w != part->n) {
		for (int64_t i = 0; i < part->n; i++) {
			const int32_t q = (int32_t)(p0 + i);
			pos[i] = (rvi_pos){q, q, q};
		}
		return p0 + part->n;
	}
	for (int64_t i = 0; i < part->n; i++)
		pos[i] = (rvi_pos){(int32_t)p0, (int32_t)(p0 + i / sh->grid_w),
		                   (int32_t)(p0 + i % sh->grid_w)};
	return p0 + (sh->grid_h > sh->grid_w ? sh->grid_h : sh->grid_w);
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
		ctx->pos_next = part_positions(ctx, pr, part, ctx->pos_next, pos);
		const rvi_batch b = {
		    part->n, part->tokens, part->tokens ? NULL : pr->embd[part->image],
		    NULL,    pos,          part->tokens ? RVI_ATTN_CAUSAL : m->info.image_attn};
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
