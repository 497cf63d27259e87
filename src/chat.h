/* chat.h: turning a question, images and a system sentence into the
 * prompt a chat model was trained on: a list of segments, text or image,
 * in order. Text segments are tokenized one by one (as LLaVA's
 * tokenizer_image_token does), only the first with BOS; an image segment
 * stands for the image's embedding rows. Knows nothing of tokens or
 * models. */
#ifndef RLAIFV_CHAT_H
#define RLAIFV_CHAT_H

#include <stdbool.h>
#include <stddef.h>

#include "src/util.h"

typedef struct rvi_segment {
	const char *text; /* NULL for an image */
	size_t len;
	int image; /* index into the prompt's images, for an image segment */
	/* Where the caller's text (system sentence, question) lies in text:
	 * plain text, not template markers. */
	size_t user_off[2], user_len[2];
	int n_user;
} rvi_segment;

typedef struct rvi_chat {
	rvi_segment *seg;
	int n_seg;
	char *storage; /* every segment's text lives here */
} rvi_chat;

/* Template names rvi_chat_build knows, for messages and the man page. */
#define RVI_CHAT_TEMPLATES "llava, vicuna, chatml, qwen2-vl, llama-2, smolvlm, gemma3, qwen3, gguf"

/* The system sentence of LLaVA-1.5 / Vicuna v1.1 training. */
extern const char rvi_llava_system[];

/* Builds the prompt of template `name` ("llava" and its alias "vicuna":
 * "{system} USER: <image>\n...{question} ASSISTANT:"; "chatml"; "qwen2-vl":
 * chatml with no newline after an image; "llama-2").
 * system NULL means the template's default. Each image is followed by a
 * newline, as in LLaVA's training data (but in qwen2-vl). */
int rvi_chat_build(const char *name, const char *system, const char *question, int n_images,
                   rvi_chat *out, rvi_err *err);

/* The template name a GGUF's tokenizer.chat_template (Jinja source) is
 * recognised as, or NULL when it is none we know. */
const char *rvi_chat_recognise(const char *jinja, size_t len);

void rvi_chat_free(rvi_chat *c);

#endif
