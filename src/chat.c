/* chat.c: the chat templates (see chat.h). Each template is a prefix, a
 * part between the images and the question, and a suffix; the system
 * sentence goes into the prefix. */
#include "src/chat.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char rvi_llava_system[] =
    "A chat between a curious human and an artificial intelligence assistant. The "
    "assistant gives helpful, detailed, and polite answers to the human's questions.";

typedef struct chat_template {
	const char *name;
	const char *default_system; /* or NULL: none unless one is given */
	const char *prefix;         /* printf format with one %s: the system turn */
	const char *after_image;    /* text after each image */
	const char *suffix;         /* after the question */
	/* Templates whose system turn is a message of its own: its format
	 * (one %s, the sentence) put into prefix's %s, "" without a system
	 * sentence; NULL: the sentence itself goes there. */
	const char *system_turn;
	/* The prefix when the turn starts with text, not an image; NULL:
	 * prefix. */
	const char *prefix_text_first;
	/* The question loses its leading and trailing whitespace (Jinja's
	 * `| trim`, Python's str.strip()) */
	bool trim_question;
} chat_template;

static const chat_template templates[] = {
    /* LLaVA-1.5 "conv_llava_v1" = Vicuna v1.1: sep " ", roles USER/ASSISTANT */
    {"llava", rvi_llava_system, "%s USER: ", "\n", " ASSISTANT:", NULL, NULL, false},
    {"vicuna", rvi_llava_system, "%s USER: ", "\n", " ASSISTANT:", NULL, NULL, false},
    {"chatml", "You are a helpful assistant.",
     "<|im_start|>system\n%s<|im_end|>\n<|im_start|>user\n", "\n",
     "<|im_end|>\n<|im_start|>assistant\n", NULL, NULL, false},
    /* Qwen2-VL / Qwen2.5-VL: chatml, images (framed by the vision family's
     * <|vision_start|> ... <|vision_end|>) straight before the question */
    {"qwen2-vl", "You are a helpful assistant.",
     "<|im_start|>system\n%s<|im_end|>\n<|im_start|>user\n", "",
     "<|im_end|>\n<|im_start|>assistant\n", NULL, NULL, false},
    {"llama-2", "You are a helpful assistant.", "[INST] <<SYS>>\n%s\n<</SYS>>\n\n", "\n",
     " [/INST]", NULL, NULL, false},
    /* SmolVLM's chat_template.json: "Role:" then ' ' unless the turn
     * starts with an image, <end_of_utterance>\n after each turn, and
     * "Assistant:" with no space after it */
    {"smolvlm", NULL, "<|im_start|>%sUser:", "", "<end_of_utterance>\nAssistant:",
     "System: %s<end_of_utterance>\n", "<|im_start|>%sUser: ", false},
    /* Gemma 3's template: no system role, the system text opens the first
     * user turn followed by a blank line; images (framed by the vision
     * family's \n\n<start_of_image> ... <end_of_image>\n\n) before the
     * question, which the template trims (`message['content'] | trim`, and
     * `item['text'] | trim` for a text part); <end_of_turn> ends the
     * model's turn */
    {"gemma3", NULL, "<start_of_turn>user\n%s", "", "<end_of_turn>\n<start_of_turn>model\n",
     "%s\n\n", NULL, true},
    /* Qwen3's template as MiniCPM-V 4.5's chat() applies it: no system
     * turn unless one is given, images and the question joined by "\n",
     * and enable_thinking=False (chat()'s default) opening the answer
     * with an empty <think> block */
    {"qwen3", NULL, "%s<|im_start|>user\n", "\n",
     "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
     "<|im_start|>system\n%s<|im_end|>\n", NULL, false},
};

/* The length of the whitespace character at s[0..n), 0 if none: those of
 * Python's str.isspace() (what Jinja's trim strips), in UTF-8. */
static size_t space_len(const unsigned char *s, size_t n)
{
	if (n >= 1 && ((s[0] >= 0x09 && s[0] <= 0x0d) || (s[0] >= 0x1c && s[0] <= 0x20)))
		return 1;
	if (n >= 2 && s[0] == 0xc2 && (s[1] == 0x85 || s[1] == 0xa0))
		return 2;
	if (n < 3)
		return 0;
	const unsigned cp =
	    (unsigned)(s[0] & 0x0f) << 12 | (unsigned)(s[1] & 0x3f) << 6 | (unsigned)(s[2] & 0x3f);
	if ((s[0] & 0xf0) != 0xe0 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
		return 0;
	return cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 ||
	               cp == 0x202f || cp == 0x205f || cp == 0x3000
	           ? 3
	           : 0;
}

/* *s, *n without the whitespace at either end. The end is found by
 * stepping back to each character's first byte. */
static void trim(const char **s, size_t *n)
{
	const unsigned char *p = (const unsigned char *)*s;
	size_t a = 0, b = *n, k;
	while (a < b && (k = space_len(p + a, b - a)) > 0)
		a += k;
	while (b > a) {
		size_t c = b - 1;
		while (c > a && (p[c] & 0xc0) == 0x80 && b - c < 3)
			c--;
		if (space_len(p + c, b - c) != b - c)
			break;
		b = c;
	}
	*s += a;
	*n = b - a;
}

static const chat_template *find(const char *name)
{
	for (size_t i = 0; i < sizeof(templates) / sizeof(templates[0]); i++)
		if (!strcmp(templates[i].name, name))
			return &templates[i];
	return NULL;
}

int rvi_chat_build(const char *name, const char *system, const char *question, int n_images,
                   rvi_chat *out, rvi_err *err)
{
	memset(out, 0, sizeof(*out));
	const chat_template *t = find(name ? name : "llava");
	if (!t)
		return rvi_errorf(err, RV_ERR_INVALID_ARG,
		                  "unknown chat template '%s' (known: " RVI_CHAT_TEMPLATES ")",
		                  name);
	if (n_images < 0 || n_images > 64)
		return rvi_errorf(err, RV_ERR_INVALID_ARG, "%d images: at most 64", n_images);
	if (!system)
		system = t->default_system;
	if (!system)
		system = "";
	if (!question)
		question = "";
	size_t q_len = strlen(question);
	if (t->trim_question)
		trim(&question, &q_len);
	const char *prefix =
	    n_images == 0 && t->prefix_text_first ? t->prefix_text_first : t->prefix;
	/* where the caller's system text will stand in the prefix (plain text) */
	const char *slot = strstr(prefix, "%s");
	size_t sys_off = slot ? (size_t)(slot - prefix) : 0;
	const size_t sys_len = slot ? strlen(system) : 0;
	char *turn = NULL;
	if (t->system_turn && *system) {
		const char *inner = strstr(t->system_turn, "%s");
		sys_off += inner ? (size_t)(inner - t->system_turn) : 0;
		const size_t n = strlen(t->system_turn) + strlen(system) + 1;
		if (!(turn = malloc(n)))
			return rvi_errorf(err, RV_ERR_NOMEM, "out of memory");
		snprintf(turn, n, t->system_turn, system);
		system = turn;
	}
	/* segments: the prefix, then (image, after_image) per image; the
	 * question and the suffix join the last text segment */
	const size_t n_seg = 1 + 2 * (size_t)n_images;
	size_t cap = strlen(prefix) + strlen(system) + 1 +
	             (size_t)n_images * (strlen(t->after_image) + 1) + q_len + strlen(t->suffix) +
	             1;
	out->seg = calloc(n_seg, sizeof(rvi_segment));
	out->storage = malloc(cap);
	if (!out->seg || !out->storage) {
		free(turn);
		rvi_chat_free(out);
		return rvi_errorf(err, RV_ERR_NOMEM, "out of memory");
	}
	char *w = out->storage;
	int n = 0;
	int len = snprintf(w, cap, prefix, system);
	free(turn);
	out->seg[n].text = w;
	out->seg[n].user_off[0] = sys_off;
	out->seg[n].user_len[0] = sys_len;
	out->seg[n].n_user = slot ? 1 : 0;
	w += len;
	for (int i = 0; i < n_images; i++) {
		out->seg[n].len = (size_t)(w - out->seg[n].text);
		w++; /* keep each segment NUL-terminated */
		n++;
		out->seg[n].image = i;
		n++;
		out->seg[n].text = w;
		w += sprintf(w, "%s", t->after_image);
	}
	rvi_segment *last = &out->seg[n];
	last->user_off[last->n_user] = (size_t)(w - last->text);
	last->user_len[last->n_user++] = q_len;
	memcpy(w, question, q_len);
	w += q_len;
	w += sprintf(w, "%s", t->suffix);
	out->seg[n].len = (size_t)(w - out->seg[n].text);
	n++;
	out->n_seg = n;
	return RV_OK;
}

const char *rvi_chat_recognise(const char *jinja, size_t len)
{
	/* Recognised by what each format writes around a user turn. */
	static const struct {
		const char *marker;
		const char *name;
	} markers[] = {
	    {"<|vision_start|>", "qwen2-vl"}, /* before chatml, whose marker it has too */
	    /* Qwen3's (MiniCPM-V 4.5's text model has it): no default system
	     * sentence, unlike chatml; the think block as MiniCPM-V's chat() */
	    {"enable_thinking", "qwen3"},
	    {"<start_of_turn>", "gemma3"},
	    {"<end_of_utterance>", "smolvlm"},
	    {"<|im_start|>", "chatml"},
	    {"[INST]", "llama-2"},
	    {"ASSISTANT:", "vicuna"},
	};
	for (size_t i = 0; i < sizeof(markers) / sizeof(markers[0]); i++) {
		const size_t ml = strlen(markers[i].marker);
		for (size_t j = 0; j + ml <= len; j++)
			if (!memcmp(jinja + j, markers[i].marker, ml))
				return markers[i].name;
	}
	return NULL;
}

void rvi_chat_free(rvi_chat *c)
{
	free(c->seg);
	free(c->storage);
	memset(c, 0, sizeof(*c));
}
