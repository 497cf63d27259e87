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
	if (p->n_images > 0 && !m->mm_gguf)
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

	rvi_chat chat = {0};
	rvi_segment one = {.text = p->text ? p->text : "", .len = strlen(p->text ? p->text : "")};
	const rvi_segment *seg = &one;
	int n_seg = 1;
	if (!raw) {
		rc = rvi_chat_build(tname, p->system, p->text, p->n_images, &chat, &ctx->err);
		if (rc != RV_OK)
			return rc;
		seg = chat.seg;
		n_seg = chat.n_seg;
	}
	out->n_images = p->n_images;
	out->embd_rows = p->n_images > 0 ? rvi_clip_n_output_tokens(&m->clip) : 0;
	out->parts = rvi_zalloc((size_t)n_seg, sizeof(rvi_prompt_part));
	if (!out->parts)
		rc = rvi_errorf(&ctx->err, RV_ERR_NOMEM, "out of memory");
	const bool bos = add_bos < 0 ? rvi_tokenizer_add_bos(m->tok) : add_bos != 0;
	for (int i = 0; rc == RV_OK && i < n_seg; i++) {
		rvi_prompt_part *part = &out->parts[i];
		out->n_parts++;
		if (!seg[i].text) {
			part->image = seg[i].image;
			part->n = out->embd_rows;
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
			rc = rvi_tokenize_spans(m->tok, seg[i].text, seg[i].len, bos && i == 0,
			                        !(raw && p->no_parse_special), user, n_user,
			                        &part->tokens, &part->n, &ctx->err);
		}
		out->n_positions += part->n;
	}
	rvi_chat_free(&chat);
	if (rc == RV_OK && out->n_positions == 0)
		rc = rvi_errorf(&ctx->err, RV_ERR_INVALID_ARG,
		                "the prompt is empty and the model adds no BOS token");
	if (rc == RV_OK && out->n_positions >= ctx->st.kv.n_ctx) {
		char images[64] = "";
		if (p->n_images > 0)
			snprintf(images, sizeof(images), " (%lld of them for %d image%s)",
			         (long long)out->embd_rows, p->n_images,
			         p->n_images == 1 ? "" : "s");
		rc = rvi_errorf(&ctx->err, RV_ERR_CONTEXT,
		                "the prompt takes %lld positions%s but the context holds %lld: "
		                "shorten it or raise -c",
		                (long long)out->n_positions, images, (long long)ctx->st.kv.n_ctx);
	}
	if (rc != RV_OK)
		rvi_prompt_free(out);
	return rc;
}

int rvi_prompt_encode_images(rv_context *ctx, const rv_prompt *p, rvi_prompt *pr,
                             const rvi_prompt *share, const rv_model *share_model, double *ms)
{
	const rv_model *m = ctx->model;
	*ms = 0;
	if (pr->n_images == 0)
		return RV_OK;
	/* The same projector, or none of our own: the other prompt's rows. */
	if (share && share->embd && share->n_images == pr->n_images &&
	    share->embd_rows == pr->embd_rows &&
	    (!m->mm_gguf || !memcmp(m->mm_id, share_model->mm_id, sizeof(m->mm_id)))) {
		pr->embd = share->embd;
		pr->owns_embd = false;
		return RV_OK;
	}
	const double t0 = rvi_now_ms();
	const int64_t cols = rvi_clip_n_output_embd(&m->clip);
	pr->embd = rvi_zalloc((size_t)pr->n_images, sizeof(float *));
	pr->owns_embd = true;
	if (!pr->embd)
		return rvi_errorf(&ctx->err, RV_ERR_NOMEM, "out of memory");
	rvi_vision_opts o = {ctx->apply_exif, ctx->image_limits, ctx->cache_dir, ctx->n_threads};
	for (int i = 0; i < pr->n_images; i++) {
		pr->embd[i] = rvi_alloc((size_t)pr->embd_rows * (size_t)cols, sizeof(float));
		if (!pr->embd[i])
			return rvi_errorf(&ctx->err, RV_ERR_NOMEM, "out of memory");
		bool hit;
		rvi_err warn = {0};
		int rc = rvi_vision_embed(&m->clip, m->mm_id, p->images[i], &o, pr->embd[i], &hit,
		                          &warn, &ctx->err);
		/* Whatever kept the image from being read is about the image. */
		if (rc == RV_ERR_IO)
			rc = ctx->err.status = RV_ERR_IMAGE;
		if (rc != RV_OK)
			return rc;
	}
	*ms = rvi_now_ms() - t0;
	return RV_OK;
}

int rvi_prompt_prefill(rv_context *ctx, const rvi_prompt *pr)
{
	const rv_model *m = ctx->model;
	int last = pr->n_parts - 1;
	while (last > 0 && pr->parts[last].n == 0)
		last--;
	rvi_kvcache_clear(&ctx->st.kv);
	for (int i = 0; i <= last; i++) {
		const rvi_prompt_part *part = &pr->parts[i];
		float *logits = i == last ? ctx->logits : NULL;
		if (part->n == 0)
			continue;
		int rc = rvi_llama_forward(&m->llama, &ctx->st, part->tokens,
		                           part->tokens ? NULL : pr->embd[part->image], part->n,
		                           logits, false, &ctx->err);
		if (rc != RV_OK)
			return rc;
	}
	return RV_OK;
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
	memset(pr, 0, sizeof(*pr));
}
