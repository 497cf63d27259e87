/* test_malicious.c: hostile model files through the public API.
 *
 * Each case starts from a tiny valid LLaMA model (or CLIP projector) held
 * as a list of keys and tensors, breaks one thing, writes the GGUF to a
 * temporary file and loads it with rv_model_load / rv_model_load_mmproj:
 * the status must be the right one and the message must name the key or
 * tensor at fault, since that message is all a user gets. Then files whose
 * headers claim absurd sizes (a 2^40-element array, 2^31 tensors) must be
 * refused without allocating what they claim, checked under an address
 * space limit in a child process; a model claiming a 2^24-token context
 * must get a default context of 4096 (and an explicit one of 2^24 must cost
 * only what is used); and rv_model_check_tensors must find
 * a NaN or infinity planted in a weight of each type it reads. */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rlaifv.h"
#include "src/tensor.h"
#include "tests/testutil.h"

/* ASan reserves terabytes of shadow address space: no RLIMIT_AS under it. */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

/* ---- an in-memory model: keys and tensors, written out as GGUF --------- */

enum { G_U8 = 0, G_I32 = 5, G_U32 = 4, G_F32 = 6, G_BOOL = 7, G_STR = 8, G_ARR = 9, G_U64 = 10 };

typedef struct mkv {
	char key[96];
	int type;     /* G_* */
	int64_t i;    /* integers and bools */
	double f;     /* G_F32 */
	char *s;      /* G_STR */
	int arr_type; /* G_ARR: G_STR, G_F32 or G_I32 */
	int n;
	char **strs; /* G_ARR of G_STR */
	double *nums;
} mkv;

typedef struct mtensor {
	char name[96];
	int n_dims;
	int64_t ne[4];
	int type; /* RVI_TYPE_* */
	uint8_t *data;
	size_t nbytes;
} mtensor;

typedef struct spec {
	mkv kv[64];
	int n_kv;
	mtensor t[96];
	int n_t;
} spec;

static mkv *kv_slot(spec *s, const char *key)
{
	for (int i = 0; i < s->n_kv; i++)
		if (!strcmp(s->kv[i].key, key))
			return &s->kv[i];
	mkv *k = &s->kv[s->n_kv++];
	memset(k, 0, sizeof(*k));
	snprintf(k->key, sizeof(k->key), "%s", key);
	return k;
}

static void kv_clear(mkv *k)
{
	free(k->s);
	for (int i = 0; k->strs && i < k->n; i++)
		free(k->strs[i]);
	free(k->strs);
	free(k->nums);
	k->s = NULL;
	k->strs = NULL;
	k->nums = NULL;
}

static void set_int(spec *s, const char *key, int type, int64_t v)
{
	mkv *k = kv_slot(s, key);
	kv_clear(k);
	k->type = type;
	k->i = v;
}

static void set_u32(spec *s, const char *key, int64_t v)
{
	set_int(s, key, G_U32, v);
}

static void set_f32(spec *s, const char *key, double v)
{
	mkv *k = kv_slot(s, key);
	kv_clear(k);
	k->type = G_F32;
	k->f = v;
}

static void set_str(spec *s, const char *key, const char *v)
{
	mkv *k = kv_slot(s, key);
	kv_clear(k);
	k->type = G_STR;
	k->s = strdup(v);
}

static void set_nums(spec *s, const char *key, int arr_type, const double *v, int n)
{
	mkv *k = kv_slot(s, key);
	kv_clear(k);
	k->type = G_ARR;
	k->arr_type = arr_type;
	k->n = n;
	k->nums = calloc((size_t)n + 1, sizeof(double));
	memcpy(k->nums, v, (size_t)n * sizeof(double));
}

static void set_strs(spec *s, const char *key, const char *const *v, int n)
{
	mkv *k = kv_slot(s, key);
	kv_clear(k);
	k->type = G_ARR;
	k->arr_type = G_STR;
	k->n = n;
	k->strs = calloc((size_t)n + 1, sizeof(char *));
	for (int i = 0; i < n; i++)
		k->strs[i] = strdup(v[i]);
}

static void del_kv(spec *s, const char *key)
{
	for (int i = 0; i < s->n_kv; i++)
		if (!strcmp(s->kv[i].key, key)) {
			kv_clear(&s->kv[i]);
			s->kv[i] = s->kv[--s->n_kv];
			return;
		}
}

static mtensor *find_t(spec *s, const char *name)
{
	for (int i = 0; i < s->n_t; i++)
		if (!strcmp(s->t[i].name, name))
			return &s->t[i];
	return NULL;
}

/* Adds (or reshapes) an F32 tensor filled with small deterministic values;
 * norms get ones so that a forward pass stays tame. */
static void set_tensor(spec *s, const char *name, int n_dims, int64_t a, int64_t b, int64_t c,
                       int64_t d)
{
	mtensor *t = find_t(s, name);
	if (!t) {
		t = &s->t[s->n_t++];
		memset(t, 0, sizeof(*t));
		snprintf(t->name, sizeof(t->name), "%s", name);
	}
	free(t->data);
	t->n_dims = n_dims;
	t->ne[0] = a;
	t->ne[1] = b;
	t->ne[2] = c;
	t->ne[3] = d;
	t->type = RVI_TYPE_F32;
	const size_t n = (size_t)(a * b * c * d);
	t->nbytes = n * sizeof(float);
	t->data = malloc(t->nbytes);
	const bool norm = strstr(name, "norm") || strstr(name, "ln1.weight") ||
	                  strstr(name, "ln2.weight") || strstr(name, "pre_ln.weight");
	for (size_t i = 0; i < n; i++) {
		float v =
		    norm ? 1.0f : (float)((int)((i * 17 + strlen(name) * 31) % 13) - 6) / 40.0f;
		memcpy(t->data + i * 4, &v, 4);
	}
}

static void del_tensor(spec *s, const char *name)
{
	mtensor *t = find_t(s, name);
	if (t) {
		free(t->data);
		*t = s->t[--s->n_t];
	}
}

static void spec_free(spec *s)
{
	for (int i = 0; i < s->n_kv; i++)
		kv_clear(&s->kv[i]);
	for (int i = 0; i < s->n_t; i++)
		free(s->t[i].data);
	memset(s, 0, sizeof(*s));
}

static void w_str(tu_buf *b, const char *s)
{
	tu_put_le(b, strlen(s), 8);
	tu_put(b, s, strlen(s));
}

static void w_f32(tu_buf *b, double v)
{
	float f = (float)v;
	uint32_t u;
	memcpy(&u, &f, 4);
	tu_put_le(b, u, 4);
}

/* GGUF v3, alignment 32, tensors in list order. */
static uint8_t *spec_write(const spec *s, size_t *size)
{
	tu_buf b = {0};
	tu_put(&b, "GGUF", 4);
	tu_put_le(&b, 3, 4);
	tu_put_le(&b, (uint64_t)s->n_t, 8);
	tu_put_le(&b, (uint64_t)s->n_kv, 8);
	for (int i = 0; i < s->n_kv; i++) {
		const mkv *k = &s->kv[i];
		w_str(&b, k->key);
		tu_put_le(&b, (uint64_t)k->type, 4);
		switch (k->type) {
		case G_U8:
		case G_BOOL:
			tu_put_le(&b, (uint64_t)k->i, 1);
			break;
		case G_I32:
		case G_U32:
			tu_put_le(&b, (uint64_t)k->i, 4);
			break;
		case G_U64:
			tu_put_le(&b, (uint64_t)k->i, 8);
			break;
		case G_F32:
			w_f32(&b, k->f);
			break;
		case G_STR:
			w_str(&b, k->s);
			break;
		case G_ARR:
			tu_put_le(&b, (uint64_t)k->arr_type, 4);
			tu_put_le(&b, (uint64_t)k->n, 8);
			for (int j = 0; j < k->n; j++) {
				if (k->arr_type == G_STR)
					w_str(&b, k->strs[j]);
				else if (k->arr_type == G_F32)
					w_f32(&b, k->nums[j]);
				else
					tu_put_le(&b, (uint64_t)(int64_t)k->nums[j], 4);
			}
			break;
		}
	}
	uint64_t off = 0;
	for (int i = 0; i < s->n_t; i++) {
		const mtensor *t = &s->t[i];
		w_str(&b, t->name);
		tu_put_le(&b, (uint64_t)t->n_dims, 4);
		for (int d = 0; d < t->n_dims; d++)
			tu_put_le(&b, (uint64_t)t->ne[d], 8);
		tu_put_le(&b, (uint64_t)t->type, 4);
		tu_put_le(&b, off, 8);
		off += (t->nbytes + 31) / 32 * 32;
	}
	static const uint8_t zeros[32];
	tu_put(&b, zeros, (32 - b.n % 32) % 32);
	for (int i = 0; i < s->n_t; i++) {
		tu_put(&b, s->t[i].data, s->t[i].nbytes);
		tu_put(&b, zeros, (32 - s->t[i].nbytes % 32) % 32);
	}
	*size = b.n;
	return b.p;
}

static char tmpdir[256];

static const char *write_tmp(const char *name, const void *data, size_t n)
{
	static char path[512];
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	FILE *f = fopen(path, "wb");
	CHECK(f != NULL, "cannot create %s", path);
	if (f) {
		CHECK(fwrite(data, 1, n, f) == n, "short write to %s", path);
		fclose(f);
	}
	return path;
}

static const char *spec_file(const spec *s, const char *name)
{
	size_t n;
	uint8_t *p = spec_write(s, &n);
	const char *path = write_tmp(name, p, n);
	free(p);
	return path;
}

/* ---- the valid starting points ------------------------------------------- */

#define D     8  /* embedding width of the text model = projector output */
#define FF    32 /* ffn_down rows are 32 wide: room for one Q8_0 block */
#define HEADS 2
#define VOCAB 10

/* "\xe2\x96\x81" (and "\342\226\201" in octal, which cannot swallow the "a"
 * after it) is SentencePiece's "▁", a space. */
static const char *const vocab[VOCAB] = {"<unk>", "<s>",    "</s>",   "\xe2\x96\x81",  "a",
                                         "b",     "<0x0A>", "<0x41>", "\342\226\201a", "ab"};
static const double vocab_types[VOCAB] = {2, 3, 3, 1, 1, 1, 6, 6, 1, 1};

static void llama_spec(spec *s, int n_layer)
{
	memset(s, 0, sizeof(*s));
	set_str(s, "general.architecture", "llama");
	set_u32(s, "llama.context_length", 64);
	set_u32(s, "llama.embedding_length", D);
	set_u32(s, "llama.block_count", n_layer);
	set_u32(s, "llama.feed_forward_length", FF);
	set_u32(s, "llama.attention.head_count", HEADS);
	set_u32(s, "llama.attention.head_count_kv", HEADS);
	set_f32(s, "llama.attention.layer_norm_rms_epsilon", 1e-5);
	set_str(s, "tokenizer.ggml.model", "llama");
	set_strs(s, "tokenizer.ggml.tokens", vocab, VOCAB);
	double scores[VOCAB];
	for (int i = 0; i < VOCAB; i++)
		scores[i] = -i;
	set_nums(s, "tokenizer.ggml.scores", G_F32, scores, VOCAB);
	set_nums(s, "tokenizer.ggml.token_type", G_I32, vocab_types, VOCAB);
	set_u32(s, "tokenizer.ggml.bos_token_id", 1);
	set_u32(s, "tokenizer.ggml.eos_token_id", 2);
	set_tensor(s, "token_embd.weight", 2, D, VOCAB, 1, 1);
	set_tensor(s, "output_norm.weight", 1, D, 1, 1, 1);
	for (int il = 0; il < n_layer; il++) {
		char n[96];
#define L(suffix) (snprintf(n, sizeof(n), "blk.%d." suffix, il), n)
		set_tensor(s, L("attn_norm.weight"), 1, D, 1, 1, 1);
		set_tensor(s, L("attn_q.weight"), 2, D, D, 1, 1);
		set_tensor(s, L("attn_k.weight"), 2, D, D, 1, 1);
		set_tensor(s, L("attn_v.weight"), 2, D, D, 1, 1);
		set_tensor(s, L("attn_output.weight"), 2, D, D, 1, 1);
		set_tensor(s, L("ffn_norm.weight"), 1, D, 1, 1, 1);
		set_tensor(s, L("ffn_gate.weight"), 2, D, FF, 1, 1);
		set_tensor(s, L("ffn_up.weight"), 2, D, FF, 1, 1);
		set_tensor(s, L("ffn_down.weight"), 2, FF, D, 1, 1);
#undef L
	}
}

#define C_S 4 /* image size */
#define C_P 2 /* patch size */
#define C_W 4 /* ViT width */
#define C_F 8

static void clip_spec(spec *s)
{
	memset(s, 0, sizeof(*s));
	set_str(s, "general.architecture", "clip");
	set_str(s, "clip.projector_type", "mlp");
	set_int(s, "clip.has_vision_encoder", G_BOOL, 1);
	set_u32(s, "clip.vision.image_size", C_S);
	set_u32(s, "clip.vision.patch_size", C_P);
	set_u32(s, "clip.vision.embedding_length", C_W);
	set_u32(s, "clip.vision.feed_forward_length", C_F);
	set_u32(s, "clip.vision.attention.head_count", 2);
	set_u32(s, "clip.vision.block_count", 1);
	set_f32(s, "clip.vision.attention.layer_norm_epsilon", 1e-5);
	static const double mean[3] = {0.48, 0.45, 0.40}, std[3] = {0.26, 0.26, 0.27};
	set_nums(s, "clip.vision.image_mean", G_F32, mean, 3);
	set_nums(s, "clip.vision.image_std", G_F32, std, 3);
	const int n_pos = (C_S / C_P) * (C_S / C_P) + 1;
	set_tensor(s, "v.patch_embd.weight", 4, C_P, C_P, 3, C_W);
	set_tensor(s, "v.class_embd", 1, C_W, 1, 1, 1);
	set_tensor(s, "v.position_embd.weight", 2, C_W, n_pos, 1, 1);
	set_tensor(s, "v.pre_ln.weight", 1, C_W, 1, 1, 1);
	set_tensor(s, "v.pre_ln.bias", 1, C_W, 1, 1, 1);
	static const char *const vecs[] = {"ln1.weight",  "ln1.bias",      "ln2.weight",
	                                   "ln2.bias",    "attn_q.bias",   "attn_k.bias",
	                                   "attn_v.bias", "attn_out.bias", "ffn_down.bias"};
	char n[96];
	for (size_t i = 0; i < sizeof(vecs) / sizeof(vecs[0]); i++) {
		snprintf(n, sizeof(n), "v.blk.0.%s", vecs[i]);
		set_tensor(s, n, 1, C_W, 1, 1, 1);
	}
	static const char *const mats[] = {"attn_q", "attn_k", "attn_v", "attn_out"};
	for (size_t i = 0; i < 4; i++) {
		snprintf(n, sizeof(n), "v.blk.0.%s.weight", mats[i]);
		set_tensor(s, n, 2, C_W, C_W, 1, 1);
	}
	set_tensor(s, "v.blk.0.ffn_up.weight", 2, C_W, C_F, 1, 1);
	set_tensor(s, "v.blk.0.ffn_up.bias", 1, C_F, 1, 1, 1);
	set_tensor(s, "v.blk.0.ffn_down.weight", 2, C_F, C_W, 1, 1);
	set_tensor(s, "mm.0.weight", 2, C_W, 16, 1, 1);
	set_tensor(s, "mm.0.bias", 1, 16, 1, 1, 1);
	set_tensor(s, "mm.2.weight", 2, 16, D, 1, 1);
	set_tensor(s, "mm.2.bias", 1, D, 1, 1, 1);
}

/* ---- expectations ----------------------------------------------------------- */

/* Every phrase (NULL-terminated list) must be in msg. */
static bool has_all(const char *msg, va_list ap)
{
	for (const char *p; (p = va_arg(ap, const char *)) != NULL;)
		if (!strstr(msg, p))
			return false;
	return true;
}

/* Loads s as a text model: status want, message with every phrase. */
static void expect_text(const char *what, const spec *s, rv_status want, ...)
{
	const char *path = spec_file(s, "model.gguf");
	rv_model *m = (rv_model *)1;
	char err[512] = "";
	rv_status rc = rv_model_load(path, NULL, &m, err, sizeof(err));
	va_list ap;
	va_start(ap, want);
	const bool ok = has_all(err, ap);
	va_end(ap);
	CHECK(rc == want, "%s: status %d (%s), expected %d; message: %s", what, rc,
	      rv_status_str(rc), want, err);
	CHECK(want == RV_OK || m == NULL, "%s: *out is not NULL on failure", what);
	CHECK(ok, "%s: message lacks a phrase: %s", what, err);
	if (rc == RV_OK)
		rv_model_free(m);
}

/* Loads the text model at text_path (NULL: a valid one of width D), then
 * s as its projector. */
static void expect_mmproj_ap(const char *text_path, const char *what, const spec *s, rv_status want,
                             va_list ap)
{
	spec text;
	if (!text_path) {
		llama_spec(&text, 1);
		text_path = spec_file(&text, "text.gguf");
		spec_free(&text);
	}
	rv_model *m = NULL;
	char err[512] = "";
	rv_status rc = rv_model_load(text_path, NULL, &m, err, sizeof(err));
	CHECK(rc == RV_OK, "%s: the text model does not load: %s", what, err);
	if (rc != RV_OK)
		return;
	err[0] = 0;
	rc = rv_model_load_mmproj(m, spec_file(s, "mmproj.gguf"), err, sizeof(err));
	const bool ok = has_all(err, ap);
	CHECK(rc == want, "%s: status %d (%s), expected %d; message: %s", what, rc,
	      rv_status_str(rc), want, err);
	CHECK(ok, "%s: message lacks a phrase: %s", what, err);
	CHECK(rv_model_has_vision(m) == (rc == RV_OK), "%s: has_vision after status %d", what, rc);
	rv_model_free(m);
}

static void expect_mmproj(const char *what, const spec *s, rv_status want, ...)
{
	va_list ap;
	va_start(ap, want);
	expect_mmproj_ap(NULL, what, s, want, ap);
	va_end(ap);
}

/* A Gemma 3 text model: LLaMA's keys and tensors under "gemma3.", heads
 * of G_HD = 2 * D / HEADS (key_length, not n_embd / n_head), the norms
 * Gemma adds, a sliding window. */
#define G_HD 8

/* A decoder of LLaMA's recipe under arch's keys, with heads G_HD wide
 * (attention.key_length) and q/k head norms: Gemma 3's and Qwen3's base. */
static void qk_norm_spec(spec *s, int n_layer, const char *arch)
{
	llama_spec(s, n_layer);
	static const char *const keys[] = {"context_length",       "embedding_length",
	                                   "block_count",          "feed_forward_length",
	                                   "attention.head_count", "attention.head_count_kv"};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char from[96], to[96];
		snprintf(from, sizeof(from), "llama.%s", keys[i]);
		snprintf(to, sizeof(to), "%s.%s", arch, keys[i]);
		const mkv *k = kv_slot(s, from);
		const int64_t v = k->i;
		del_kv(s, from);
		set_u32(s, to, v);
	}
	del_kv(s, "llama.attention.layer_norm_rms_epsilon");
	set_str(s, "general.architecture", arch);
	char key[96];
	snprintf(key, sizeof(key), "%s.attention.key_length", arch);
	set_u32(s, key, G_HD);
	snprintf(key, sizeof(key), "%s.attention.value_length", arch);
	set_u32(s, key, G_HD);
	for (int il = 0; il < n_layer; il++) {
		char n[96];
#define L(suffix) (snprintf(n, sizeof(n), "blk.%d." suffix, il), n)
		set_tensor(s, L("attn_q.weight"), 2, D, HEADS * G_HD, 1, 1);
		set_tensor(s, L("attn_k.weight"), 2, D, HEADS * G_HD, 1, 1);
		set_tensor(s, L("attn_v.weight"), 2, D, HEADS * G_HD, 1, 1);
		set_tensor(s, L("attn_output.weight"), 2, HEADS * G_HD, D, 1, 1);
		set_tensor(s, L("attn_q_norm.weight"), 1, G_HD, 1, 1, 1);
		set_tensor(s, L("attn_k_norm.weight"), 1, G_HD, 1, 1, 1);
#undef L
	}
}

static void gemma3_spec(spec *s, int n_layer)
{
	qk_norm_spec(s, n_layer, "gemma3");
	set_u32(s, "gemma3.attention.sliding_window", 4);
	set_f32(s, "gemma3.rope.freq_base_swa", 10000);
	set_str(s, "gemma3.rope.scaling.type", "linear");
	set_f32(s, "gemma3.rope.scaling.factor", 8);
	for (int il = 0; il < n_layer; il++) {
		char n[96];
#define L(suffix) (snprintf(n, sizeof(n), "blk.%d." suffix, il), n)
		set_tensor(s, L("post_attention_norm.weight"), 1, D, 1, 1, 1);
		set_tensor(s, L("post_ffw_norm.weight"), 1, D, 1, 1, 1);
#undef L
	}
}

/* Qwen3 (MiniCPM-V 4.5's LLM): a q or k head norm of the wrong width or
 * missing is the file's fault, named; q, k, v biases are not read. */
static void test_qwen3(void)
{
	spec s;
	qk_norm_spec(&s, 2, "qwen3");
	expect_text("valid qwen3 model", &s, RV_OK, NULL);
	spec_free(&s);
	qk_norm_spec(&s, 2, "qwen3");
	set_tensor(&s, "blk.1.attn_q_norm.weight", 1, G_HD - 1, 1, 1, 1);
	expect_text("qwen3 q norm of another width", &s, RV_ERR_MODEL, "blk.1.attn_q_norm.weight",
	            "shape", NULL);
	spec_free(&s);
	qk_norm_spec(&s, 1, "qwen3");
	set_tensor(&s, "blk.0.attn_k_norm.weight", 2, G_HD, HEADS, 1, 1);
	expect_text("qwen3 k norm per head", &s, RV_ERR_MODEL, "blk.0.attn_k_norm.weight", "shape",
	            NULL);
	spec_free(&s);
	qk_norm_spec(&s, 2, "qwen3");
	del_tensor(&s, "blk.1.attn_k_norm.weight");
	expect_text("qwen3 without a k norm", &s, RV_ERR_MODEL, "missing tensor",
	            "blk.1.attn_k_norm.weight", NULL);
	spec_free(&s);
	qk_norm_spec(&s, 1, "qwen3");
	del_kv(&s, "qwen3.attention.key_length");
	expect_text("qwen3 without a head width", &s, RV_ERR_MODEL, "missing key",
	            "qwen3.attention.key_length", NULL);
	spec_free(&s);
}

/* Gemma 3's own keys and tensors: a head width that disagrees with the
 * tensors, a window of 0 or past the context, missing norms. */
static void test_gemma3(void)
{
	spec s;
	gemma3_spec(&s, 2);
	expect_text("valid gemma3 model", &s, RV_OK, NULL);
	rv_model *m = NULL;
	char err[512];
	if (rv_model_load(spec_file(&s, "model.gguf"), NULL, &m, err, sizeof(err)) == RV_OK) {
		rv_context *ctx = NULL;
		rv_context_params cp = rv_context_default_params();
		cp.no_cache = 1;
		cp.n_batch = 2; /* the sliding layers' ring wraps */
		CHECK(rv_context_new(m, &cp, &ctx, err, sizeof(err)) == RV_OK, "context: %s", err);
		rv_gen_params gp = rv_gen_default_params();
		gp.n_predict = 12;
		gp.n_candidates = 2;
		rv_result r;
		if (ctx) {
			CHECK(rv_generate(ctx, "ab a b ab", &gp, &r) == RV_OK, "gemma3: %s",
			      rv_context_error(ctx));
			rv_result_free(&r);
		}
		rv_context_free(ctx);
		rv_model_free(m);
	}
	spec_free(&s);

	static const struct {
		const char *what, *key;
		int64_t v;
		const char *phrase1, *phrase2;
	} bad[] = {
	    {"head width off the tensors", "gemma3.attention.key_length", G_HD / 2,
	     "blk.0.attn_q.weight", "shape"},
	    {"value width unlike the key width", "gemma3.attention.value_length", G_HD / 2,
	     "gemma3.attention.value_length", "differs"},
	    {"window 0", "gemma3.attention.sliding_window", 0, "gemma3.attention.sliding_window",
	     "out of range"},
	    {"window past the context", "gemma3.attention.sliding_window", 1 << 30,
	     "gemma3.attention.sliding_window", "out of range"},
	    {"window pattern 0", "gemma3.attention.sliding_window_pattern", 0,
	     "sliding_window_pattern", "out of range"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		gemma3_spec(&s, 1);
		set_u32(&s, bad[i].key, bad[i].v);
		if (i == 0) /* the value width follows: the tensors are at fault */
			set_u32(&s, "gemma3.attention.value_length", bad[i].v);
		expect_text(bad[i].what, &s, RV_ERR_MODEL, bad[i].phrase1, bad[i].phrase2, NULL);
		spec_free(&s);
	}
	static const char *const needed[] = {"blk.1.attn_q_norm.weight", "blk.0.attn_k_norm.weight",
	                                     "blk.1.post_attention_norm.weight",
	                                     "blk.0.post_ffw_norm.weight"};
	for (size_t i = 0; i < sizeof(needed) / sizeof(needed[0]); i++) {
		gemma3_spec(&s, 2);
		del_tensor(&s, needed[i]);
		char what[128];
		snprintf(what, sizeof(what), "without %s", needed[i]);
		expect_text(what, &s, RV_ERR_MODEL, "missing tensor", needed[i], NULL);
		spec_free(&s);
	}
	gemma3_spec(&s, 1);
	del_kv(&s, "gemma3.attention.sliding_window");
	expect_text("no window", &s, RV_ERR_MODEL, "missing key", "gemma3.attention.sliding_window",
	            NULL);
	spec_free(&s);
	gemma3_spec(&s, 1);
	del_kv(&s, "gemma3.attention.key_length");
	expect_text("no head width", &s, RV_ERR_MODEL, "missing key", "gemma3.attention.key_length",
	            NULL);
	spec_free(&s);
	gemma3_spec(&s, 1);
	set_tensor(&s, "blk.0.attn_k_norm.weight", 1, G_HD + 1, 1, 1, 1);
	expect_text("k norm of another width", &s, RV_ERR_MODEL, "blk.0.attn_k_norm.weight",
	            "shape", NULL);
	spec_free(&s);
	gemma3_spec(&s, 1);
	set_str(&s, "gemma3.rope.scaling.type", "yarn");
	expect_text("yarn scaling", &s, RV_ERR_UNSUPPORTED, "gemma3.rope.scaling.type", "yarn",
	            NULL);
	spec_free(&s);
	gemma3_spec(&s, 1);
	set_f32(&s, "gemma3.rope.scaling.factor", 0);
	expect_text("scaling factor 0", &s, RV_ERR_MODEL, "gemma3.rope.scaling.factor",
	            "out of range", NULL);
	spec_free(&s);
	gemma3_spec(&s, 2);
	static const double pattern[3] = {1, 0, 1};
	set_nums(&s, "gemma3.attention.sliding_window_pattern", G_I32, pattern, 3);
	expect_text("window pattern of ints", &s, RV_ERR_MODEL, "sliding_window_pattern", NULL);
	spec_free(&s);
}

/* ---- text model cases ------------------------------------------------------- */

static void test_valid(void)
{
	spec s;
	llama_spec(&s, 2);
	expect_text("valid model", &s, RV_OK, NULL);
	/* It also runs: the starting point is a real model. */
	rv_model *m = NULL;
	char err[512];
	if (rv_model_load(spec_file(&s, "model.gguf"), NULL, &m, err, sizeof(err)) == RV_OK) {
		rv_context *ctx = NULL;
		rv_context_params cp = rv_context_default_params();
		cp.no_cache = 1;
		CHECK(rv_context_new(m, &cp, &ctx, err, sizeof(err)) == RV_OK, "context: %s", err);
		CHECK(ctx && rv_context_n_ctx(ctx) == 64, "n_ctx is the trained 64");
		rv_gen_params gp = rv_gen_default_params();
		gp.n_predict = 4;
		gp.temp = 0;
		rv_result r;
		if (ctx) {
			CHECK(rv_generate(ctx, "ab a", &gp, &r) == RV_OK, "generate: %s",
			      rv_context_error(ctx));
			/* Every id is from the vocabulary: the sampler draws from
			 * n_vocab logits, and n_vocab is the vocabulary's size. */
			for (int i = 0; i < r.n_tokens; i++)
				CHECK(r.tokens[i] >= 0 && r.tokens[i] < VOCAB, "id %d",
				      r.tokens[i]);
			rv_result_free(&r);
		}
		CHECK(rv_model_check_tensors(m, err, sizeof(err)) == RV_OK, "check: %s", err);
		rv_context_free(ctx);
		rv_model_free(m);
	}
	spec_free(&s);
}

static void test_hparams(void)
{
	static const char *const required[] = {
	    "general.architecture", "llama.context_length",      "llama.embedding_length",
	    "llama.block_count",    "llama.feed_forward_length", "llama.attention.head_count",
	    "tokenizer.ggml.model", "tokenizer.ggml.tokens",
	};
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		spec s;
		llama_spec(&s, 1);
		del_kv(&s, required[i]);
		char what[128];
		snprintf(what, sizeof(what), "without %s", required[i]);
		expect_text(what, &s, RV_ERR_MODEL, "missing key", required[i], NULL);
		spec_free(&s);
	}

	static const struct {
		const char *what, *key;
		int64_t v;
		const char *phrase;
	} bad[] = {
	    {"zero heads", "llama.attention.head_count", 0, "out of range"},
	    {"head_count_kv 0", "llama.attention.head_count_kv", 0, "out of range"},
	    {"width not divisible by heads", "llama.attention.head_count", 3, "not a multiple"},
	    {"heads not divisible by kv heads", "llama.attention.head_count_kv", 3,
	     "not a multiple"},
	    {"zero layers", "llama.block_count", 0, "out of range"},
	    {"zero width", "llama.embedding_length", 0, "out of range"},
	    {"zero context", "llama.context_length", 0, "out of range"},
	    {"context past 2^24", "llama.context_length", (1 << 24) + 1, "out of range"},
	    {"odd rope dims", "llama.rope.dimension_count", 3, "odd"},
	    {"rope dims past the head", "llama.rope.dimension_count", 8, "out of range"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		spec s;
		llama_spec(&s, 1);
		set_u32(&s, bad[i].key, bad[i].v);
		/* Keep the case about one key: 3 heads of width 8 fail as "not a
		 * multiple" only with as many kv heads. */
		if (!strcmp(bad[i].what, "width not divisible by heads"))
			set_u32(&s, "llama.attention.head_count_kv", 3);
		expect_text(bad[i].what, &s, RV_ERR_MODEL, bad[i].key, bad[i].phrase, NULL);
		spec_free(&s);
	}

	spec s;
	llama_spec(&s, 1);
	set_str(&s, "general.architecture", "falcon");
	expect_text("another architecture", &s, RV_ERR_UNSUPPORTED, "falcon", NULL);
	spec_free(&s);
	llama_spec(&s, 1);
	set_u32(&s, "general.architecture", 7);
	expect_text("architecture of the wrong type", &s, RV_ERR_MODEL, "general.architecture",
	            "uint32", NULL);
	spec_free(&s);
	llama_spec(&s, 1);
	set_str(&s, "llama.embedding_length", "eight");
	expect_text("width as a string", &s, RV_ERR_MODEL, "llama.embedding_length", "string",
	            NULL);
	spec_free(&s);
	llama_spec(&s, 1);
	set_f32(&s, "llama.attention.layer_norm_rms_epsilon", NAN);
	expect_text("NaN epsilon", &s, RV_ERR_MODEL, "layer_norm_rms_epsilon", NULL);
	spec_free(&s);
}

static void test_tensors(void)
{
	spec s;
	llama_spec(&s, 2);
	set_u32(&s, "llama.block_count", 1);
	expect_text("more layers of tensors than block_count", &s, RV_ERR_MODEL, "blk.1.",
	            "llama.block_count", NULL);
	spec_free(&s);

	llama_spec(&s, 2);
	set_u32(&s, "llama.block_count", 3);
	expect_text("fewer layers of tensors than block_count", &s, RV_ERR_MODEL,
	            "missing tensor blk.2.", NULL);
	spec_free(&s);

	llama_spec(&s, 2);
	del_tensor(&s, "blk.1.ffn_down.weight");
	expect_text("a missing tensor", &s, RV_ERR_MODEL, "missing tensor blk.1.ffn_down.weight",
	            NULL);
	spec_free(&s);

	llama_spec(&s, 1);
	del_tensor(&s, "token_embd.weight");
	expect_text("no token embeddings", &s, RV_ERR_MODEL, "missing tensor token_embd.weight",
	            NULL);
	spec_free(&s);

	static const struct {
		const char *name;
		int n_dims;
		int64_t a, b, c;
	} shapes[] = {
	    {"blk.0.attn_k.weight", 2, D, D - 2, 1}, {"blk.0.attn_q.weight", 2, D + 1, D, 1},
	    {"blk.0.ffn_down.weight", 2, D, FF, 1},  {"blk.0.attn_v.weight", 3, D, D, 2},
	    {"output_norm.weight", 1, D + 1, 1, 1},  {"blk.0.ffn_norm.weight", 2, D, 2, 1},
	    {"output.weight", 2, D, VOCAB + 1, 1},   {"token_embd.weight", 2, D + 2, VOCAB, 1},
	};
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		llama_spec(&s, 1);
		set_tensor(&s, shapes[i].name, shapes[i].n_dims, shapes[i].a, shapes[i].b,
		           shapes[i].c, 1);
		char what[128];
		snprintf(what, sizeof(what), "misshapen %s", shapes[i].name);
		/* output.weight with one row too many also disagrees with the
		 * vocabulary; the message must name the tensor either way. */
		expect_text(what, &s, RV_ERR_MODEL, shapes[i].name, "shape", NULL);
		spec_free(&s);
	}
}

static void test_vocab(void)
{
	spec s;
	llama_spec(&s, 1);
	set_strs(&s, "tokenizer.ggml.tokens", vocab, VOCAB - 1);
	set_nums(&s, "tokenizer.ggml.scores", G_F32, (const double[VOCAB]){0}, VOCAB - 1);
	set_nums(&s, "tokenizer.ggml.token_type", G_I32, vocab_types, VOCAB - 1);
	expect_text("vocabulary smaller than token_embd", &s, RV_ERR_MODEL, "tokenizer.ggml.tokens",
	            "embedding rows", NULL);
	spec_free(&s);

	llama_spec(&s, 1);
	set_nums(&s, "tokenizer.ggml.scores", G_F32, (const double[VOCAB]){0}, VOCAB - 3);
	expect_text("scores short", &s, RV_ERR_MODEL, "tokenizer.ggml.scores", NULL);
	spec_free(&s);

	llama_spec(&s, 1);
	set_nums(&s, "tokenizer.ggml.scores", G_I32, (const double[VOCAB]){0}, VOCAB);
	expect_text("scores of the wrong type", &s, RV_ERR_MODEL, "tokenizer.ggml.scores", "int32",
	            NULL);
	spec_free(&s);

	llama_spec(&s, 1);
	double nan_scores[VOCAB] = {0, 0, 0, NAN};
	set_nums(&s, "tokenizer.ggml.scores", G_F32, nan_scores, VOCAB);
	expect_text("a NaN score", &s, RV_ERR_MODEL, "tokenizer.ggml.scores[3]", "NaN", NULL);
	spec_free(&s);

	llama_spec(&s, 1);
	double long_types[VOCAB + 1] = {0};
	memcpy(long_types, vocab_types, sizeof(vocab_types));
	set_nums(&s, "tokenizer.ggml.token_type", G_I32, long_types, VOCAB + 1);
	expect_text("types too long", &s, RV_ERR_MODEL, "tokenizer.ggml.token_type", NULL);
	spec_free(&s);

	llama_spec(&s, 1);
	double types[VOCAB];
	memcpy(types, vocab_types, sizeof(types));
	types[4] = 9;
	set_nums(&s, "tokenizer.ggml.token_type", G_I32, types, VOCAB);
	expect_text("an unknown token type", &s, RV_ERR_MODEL, "tokenizer.ggml.token_type[4]",
	            NULL);
	spec_free(&s);

	llama_spec(&s, 1);
	set_nums(&s, "tokenizer.ggml.tokens", G_I32, vocab_types, VOCAB);
	expect_text("tokens that are not strings", &s, RV_ERR_MODEL, "tokenizer.ggml.tokens", NULL);
	spec_free(&s);

	static const struct {
		const char *key;
		int type;
		int64_t v;
	} ids[] = {
	    {"tokenizer.ggml.bos_token_id", G_U32, VOCAB},
	    {"tokenizer.ggml.eos_token_id", G_U32, 1000000},
	    {"tokenizer.ggml.unknown_token_id", G_I32, -5},
	    {"tokenizer.ggml.eot_token_id", G_U32, VOCAB + 1},
	};
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		llama_spec(&s, 1);
		set_int(&s, ids[i].key, ids[i].type, ids[i].v);
		char what[128];
		snprintf(what, sizeof(what), "%s out of range", ids[i].key);
		expect_text(what, &s, RV_ERR_MODEL, ids[i].key, "out of range", NULL);
		spec_free(&s);
	}

	static const char *const bad_bytes[] = {"<0xZZ>", "<0x4>", "<0x041>", "0x41", "<0x41"};
	for (size_t i = 0; i < sizeof(bad_bytes) / sizeof(bad_bytes[0]); i++) {
		const char *toks[VOCAB];
		memcpy(toks, vocab, sizeof(toks));
		toks[7] = bad_bytes[i];
		llama_spec(&s, 1);
		set_strs(&s, "tokenizer.ggml.tokens", toks, VOCAB);
		char what[128];
		snprintf(what, sizeof(what), "malformed byte token %s", bad_bytes[i]);
		expect_text(what, &s, RV_ERR_MODEL, "tokenizer.ggml.tokens[7]", "byte token", NULL);
		spec_free(&s);
	}

	llama_spec(&s, 1);
	set_str(&s, "tokenizer.ggml.model", "gpt2");
	expect_text("a BPE vocabulary without merges", &s, RV_ERR_MODEL, "tokenizer.ggml.merges",
	            NULL);
	spec_free(&s);
	llama_spec(&s, 1);
	set_str(&s, "tokenizer.ggml.model", "bert");
	expect_text("a WordPiece vocabulary", &s, RV_ERR_UNSUPPORTED, "tokenizer.ggml.model",
	            "bert", NULL);
	spec_free(&s);
}

/* A file may claim a 2^24-token training context (the most accepted): the
 * default context is capped at 4096, so a context costs what 4096
 * positions cost, not gigabytes of cache and RoPE tables. */
static void test_huge_context(void)
{
	spec s;
	llama_spec(&s, 1);
	set_u32(&s, "llama.context_length", 1 << 24);
	rv_model *m = NULL;
	char err[512];
	rv_status rc = rv_model_load(spec_file(&s, "model.gguf"), NULL, &m, err, sizeof(err));
	CHECK(rc == RV_OK, "2^24 context: %s", err);
	spec_free(&s);
	if (rc != RV_OK)
		return;
	CHECK(rv_model_n_ctx_train(m) == 1 << 24, "n_ctx_train %d", rv_model_n_ctx_train(m));
	struct rusage before, after;
	getrusage(RUSAGE_SELF, &before);
	rv_context *ctx = NULL;
	rv_context_params cp = rv_context_default_params();
	cp.no_cache = 1;
	CHECK(rv_context_new(m, &cp, &ctx, err, sizeof(err)) == RV_OK, "context: %s", err);
	getrusage(RUSAGE_SELF, &after);
	CHECK(ctx && rv_context_n_ctx(ctx) == 4096, "default context %d, expected 4096",
	      ctx ? rv_context_n_ctx(ctx) : -1);
	/* ru_maxrss is in KiB; the context of this model needs well under
	 * 8 MiB (ASan's own bookkeeping included). */
	CHECK(after.ru_maxrss - before.ru_maxrss < 64 * 1024,
	      "context grew the peak RSS by %ld KiB", after.ru_maxrss - before.ru_maxrss);
	rv_context_free(ctx);

	/* Asked for explicitly, all 2^24 positions are granted, and still
	 * only what is used is paid for: the cache is calloc'ed and the RoPE
	 * table filled as positions are reached. */
	cp.n_ctx = 1 << 24;
	ctx = NULL;
	getrusage(RUSAGE_SELF, &before);
	CHECK(rv_context_new(m, &cp, &ctx, err, sizeof(err)) == RV_OK, "2^24 context: %s", err);
	if (ctx) {
		CHECK(rv_context_n_ctx(ctx) == 1 << 24, "n_ctx %d", rv_context_n_ctx(ctx));
		rv_gen_params gp = rv_gen_default_params();
		gp.n_predict = 2;
		gp.temp = 0;
		rv_result r;
		CHECK(rv_generate(ctx, "a b", &gp, &r) == RV_OK, "generate in a 2^24 context: %s",
		      rv_context_error(ctx));
		rv_result_free(&r);
	}
	getrusage(RUSAGE_SELF, &after);
	/* ASan writes shadow bytes for the gigabyte of (untouched) cache. */
	CHECK(after.ru_maxrss - before.ru_maxrss < (UNDER_ASAN ? 256 : 64) * 1024,
	      "a 2^24 context grew the peak RSS by %ld KiB", after.ru_maxrss - before.ru_maxrss);
	rv_context_free(ctx);
	rv_model_free(m);
}

/* ---- projector cases ------------------------------------------------------- */

/* A Gemma 3 projector (clip_spec's SigLIP without class token and pre-LN,
 * with a patch bias and post-LN), the 2 x 2 patch grid pooled 2 x 2 into
 * one row, RMS-normed and projected to D. */
static void gemma3_mmproj_spec(spec *s)
{
	clip_spec(s);
	set_str(s, "clip.projector_type", "gemma3");
	set_u32(s, "clip.vision.projector.scale_factor", 2);
	static const char *const gone[] = {"v.class_embd", "v.pre_ln.weight", "v.pre_ln.bias",
	                                   "mm.0.weight",  "mm.0.bias",       "mm.2.weight",
	                                   "mm.2.bias"};
	for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++)
		del_tensor(s, gone[i]);
	set_tensor(s, "v.position_embd.weight", 2, C_W, (C_S / C_P) * (C_S / C_P), 1, 1);
	set_tensor(s, "v.patch_embd.bias", 1, C_W, 1, 1, 1);
	set_tensor(s, "v.post_ln.weight", 1, C_W, 1, 1, 1);
	set_tensor(s, "v.post_ln.bias", 1, C_W, 1, 1, 1);
	set_tensor(s, "mm.soft_emb_norm.weight", 1, C_W, 1, 1, 1);
	set_tensor(s, "mm.input_projection.weight", 2, D, C_W, 1, 1);
}

static void test_gemma3_mmproj(void)
{
	spec s;
	gemma3_mmproj_spec(&s);
	expect_mmproj("valid Gemma 3 projector", &s, RV_OK, NULL);
	spec_free(&s);

	/* without the key the pool is 4 x 4, which a 2 x 2 grid cannot take */
	gemma3_mmproj_spec(&s);
	del_kv(&s, "clip.vision.projector.scale_factor");
	expect_mmproj("Gemma 3 pool not dividing the grid", &s, RV_ERR_MODEL,
	              "clip.vision.projector.scale_factor", "does not divide", "2 x 2", NULL);
	spec_free(&s);
	gemma3_mmproj_spec(&s);
	set_u32(&s, "clip.vision.projector.scale_factor", 3);
	expect_mmproj("Gemma 3 pool larger than the grid", &s, RV_ERR_MODEL,
	              "clip.vision.projector.scale_factor", "does not divide", NULL);
	spec_free(&s);
	gemma3_mmproj_spec(&s);
	set_u32(&s, "clip.vision.projector.scale_factor", 100000);
	expect_mmproj("Gemma 3 absurd pool", &s, RV_ERR_MODEL, "clip.vision.projector.scale_factor",
	              "out of range", NULL);
	spec_free(&s);
	gemma3_mmproj_spec(&s);
	set_u32(&s, "clip.vision.projector.scale_factor", 0);
	expect_mmproj("Gemma 3 pool of 0", &s, RV_ERR_MODEL, "clip.vision.projector.scale_factor",
	              NULL);
	spec_free(&s);

	static const char *const needed[] = {"mm.soft_emb_norm.weight",
	                                     "mm.input_projection.weight", "v.post_ln.bias",
	                                     "v.patch_embd.bias"};
	for (size_t i = 0; i < sizeof(needed) / sizeof(needed[0]); i++) {
		gemma3_mmproj_spec(&s);
		del_tensor(&s, needed[i]);
		expect_mmproj(needed[i], &s, RV_ERR_MODEL, needed[i], NULL);
		spec_free(&s);
	}
	static const struct {
		const char *what, *name;
		int n_dims;
		int64_t a, b;
		const char *phrase;
	} shapes[] = {
	    {"projection of another vision width", "mm.input_projection.weight", 2, D, C_W + 1,
	     "shape"},
	    {"projection as a vector", "mm.input_projection.weight", 1, D * C_W, 1, "shape"},
	    {"soft-embedding norm of another width", "mm.soft_emb_norm.weight", 1, C_W + 2, 1, ""},
	    {"position table for another grid", "v.position_embd.weight", 2, C_W, 9, "shape"},
	};
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		gemma3_mmproj_spec(&s);
		set_tensor(&s, shapes[i].name, shapes[i].n_dims, shapes[i].a, shapes[i].b, 1, 1);
		expect_mmproj(shapes[i].what, &s, RV_ERR_MODEL, shapes[i].name, shapes[i].phrase,
		              NULL);
		spec_free(&s);
	}
	/* a projection to another text width: refused before any work */
	gemma3_mmproj_spec(&s);
	set_tensor(&s, "mm.input_projection.weight", 2, D + 4, C_W, 1, 1);
	expect_mmproj("Gemma 3 projector for another width", &s, RV_ERR_MODEL, "12", "8", NULL);
	spec_free(&s);
}

static void test_mmproj(void)
{
	spec s;
	clip_spec(&s);
	expect_mmproj("valid projector", &s, RV_OK, NULL);
	spec_free(&s);

	static const struct {
		const char *what, *key;
		int64_t v;
		const char *phrase;
	} dims[] = {
	    {"zero patch size", "clip.vision.patch_size", 0, "out of range"},
	    {"zero image size", "clip.vision.image_size", 0, "out of range"},
	    {"patch larger than the image", "clip.vision.patch_size", 8, "larger than"},
	    {"zero heads", "clip.vision.attention.head_count", 0, "out of range"},
	    {"width not divisible by heads", "clip.vision.attention.head_count", 3,
	     "not a multiple"},
	    {"zero blocks", "clip.vision.block_count", 0, "out of range"},
	};
	for (size_t i = 0; i < sizeof(dims) / sizeof(dims[0]); i++) {
		clip_spec(&s);
		set_u32(&s, dims[i].key, dims[i].v);
		expect_mmproj(dims[i].what, &s, RV_ERR_MODEL, dims[i].key, dims[i].phrase, NULL);
		spec_free(&s);
	}

	/* 5 / 2: the 2 x 2 patches of 4, the last pixel row and column
	 * dropped as HF's convolution does: the file fits */
	clip_spec(&s);
	set_u32(&s, "clip.vision.image_size", 5);
	expect_mmproj("image size not a multiple of the patch", &s, RV_OK, NULL);
	spec_free(&s);

	/* A consistent-looking image and patch size that the position table
	 * does not match: 6 / 2 = 9 patches, but 4 + 1 rows are stored. */
	clip_spec(&s);
	set_u32(&s, "clip.vision.image_size", 6);
	expect_mmproj("patch grid vs position table", &s, RV_ERR_MODEL, "v.position_embd.weight",
	              "shape", NULL);
	spec_free(&s);
	clip_spec(&s);
	set_u32(&s, "clip.vision.patch_size", 4);
	expect_mmproj("patch size vs kernel", &s, RV_ERR_MODEL, "v.patch_embd.weight", "shape",
	              NULL);
	spec_free(&s);

	static const double four[4] = {0.5, 0.5, 0.5, 0.5}, zero_std[3] = {0.2, 0, 0.2},
	                    inf_mean[3] = {0.5, INFINITY, 0.5};
	static const struct {
		const char *what, *key;
		int arr_type;
		const double *v;
		int n;
		const char *phrase;
	} rgb[] = {
	    {"image_mean of 2", "clip.vision.image_mean", G_F32, four, 2, "3"},
	    {"image_mean of 4", "clip.vision.image_mean", G_F32, four, 4, "3"},
	    {"image_mean of integers", "clip.vision.image_mean", G_I32, four, 3, "floats"},
	    {"image_mean infinite", "clip.vision.image_mean", G_F32, inf_mean, 3, "out of range"},
	    {"image_std with a zero", "clip.vision.image_std", G_F32, zero_std, 3, "positive"},
	    {"image_std empty", "clip.vision.image_std", G_F32, four, 0, "3"},
	};
	for (size_t i = 0; i < sizeof(rgb) / sizeof(rgb[0]); i++) {
		clip_spec(&s);
		set_nums(&s, rgb[i].key, rgb[i].arr_type, rgb[i].v, rgb[i].n);
		expect_mmproj(rgb[i].what, &s, RV_ERR_MODEL, rgb[i].key, rgb[i].phrase, NULL);
		spec_free(&s);
	}
	clip_spec(&s);
	set_str(&s, "clip.vision.image_mean", "0.5");
	expect_mmproj("image_mean as a string", &s, RV_ERR_MODEL, "clip.vision.image_mean", NULL);
	spec_free(&s);
	clip_spec(&s);
	del_kv(&s, "clip.vision.image_std");
	expect_mmproj("no image_std", &s, RV_ERR_MODEL, "clip.vision.image_std", NULL);
	spec_free(&s);

	clip_spec(&s);
	set_tensor(&s, "mm.2.weight", 2, 16, D + 4, 1, 1);
	set_tensor(&s, "mm.2.bias", 1, D + 4, 1, 1, 1);
	expect_mmproj("projector for another width", &s, RV_ERR_MODEL, "12", "8", NULL);
	spec_free(&s);

	clip_spec(&s);
	del_tensor(&s, "v.blk.0.attn_out.weight");
	expect_mmproj("missing block tensor", &s, RV_ERR_MODEL, "v.blk.0.attn_out.weight", NULL);
	spec_free(&s);

	clip_spec(&s);
	set_u32(&s, "clip.vision.block_count", 2);
	expect_mmproj("more blocks than stored", &s, RV_ERR_MODEL, "missing tensor v.blk.1.", NULL);
	spec_free(&s);

	/* A text model given as a projector. */
	llama_spec(&s, 1);
	expect_mmproj("text model as projector", &s, RV_ERR_UNSUPPORTED, "llama", NULL);
	spec_free(&s);
}

/* ---- MiniCPM-V's resampler projector ---------------------------------------- */

#define R_D   128 /* resampler width: one 128-channel head; the text model's width */
#define R_Q   4   /* learned queries */
#define R_POS 4900

/* clip_spec's tower as MiniCPM-V's (70 x 70 positions, patch bias,
 * post-LN, no class token or pre-LN) with a resampler of width R_D. */
static void resampler_spec(spec *s, int64_t d)
{
	clip_spec(s);
	set_str(s, "clip.projector_type", "resampler");
	set_int(s, "clip.minicpmv_version", G_I32, 3);
	set_int(s, "clip.minicpmv_query_num", G_I32, R_Q);
	static const char *const gone[] = {"v.class_embd", "v.pre_ln.weight", "v.pre_ln.bias",
	                                   "mm.0.weight",  "mm.0.bias",       "mm.2.weight",
	                                   "mm.2.bias"};
	for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++)
		del_tensor(s, gone[i]);
	set_tensor(s, "v.patch_embd.bias", 1, C_W, 1, 1, 1);
	set_tensor(s, "v.position_embd.weight", 2, C_W, R_POS, 1, 1);
	set_tensor(s, "v.post_ln.weight", 1, C_W, 1, 1, 1);
	set_tensor(s, "v.post_ln.bias", 1, C_W, 1, 1, 1);
	set_tensor(s, "resampler.query", 2, d, R_Q, 1, 1);
	set_tensor(s, "resampler.kv.weight", 2, C_W, d, 1, 1);
	static const char *const sq[] = {"attn.q", "attn.k", "attn.v", "attn.out", "proj"};
	char n[96];
	for (size_t i = 0; i < sizeof(sq) / sizeof(sq[0]); i++) {
		snprintf(n, sizeof(n), "resampler.%s.weight", sq[i]);
		set_tensor(s, n, 2, d, d, 1, 1);
	}
	static const char *const vec[] = {
	    "attn.q.bias", "attn.k.bias",  "attn.v.bias", "attn.out.bias",  "ln_q.weight",
	    "ln_q.bias",   "ln_kv.weight", "ln_kv.bias",  "ln_post.weight", "ln_post.bias"};
	for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
		snprintf(n, sizeof(n), "resampler.%s", vec[i]);
		set_tensor(s, n, 1, d, 1, 1, 1);
	}
}

static void expect_resampler(const char *what, const spec *s, rv_status want, ...)
{
	va_list ap;
	va_start(ap, want);
	/* a Qwen2 text model of width R_D */
	expect_mmproj_ap(tu_data("minicpmv/tiny-minicpmv-text-f32.gguf"), what, s, want, ap);
	va_end(ap);
}

static void test_resampler(void)
{
	spec s;
	resampler_spec(&s, R_D);
	expect_resampler("valid resampler", &s, RV_OK, NULL);
	spec_free(&s);

	resampler_spec(&s, R_D);
	set_int(&s, "clip.minicpmv_query_num", G_I32, R_Q + 1);
	expect_resampler("query count vs tensor", &s, RV_ERR_MODEL, "clip.minicpmv_query_num",
	                 "resampler.query", "5", "4", NULL);
	spec_free(&s);

	resampler_spec(&s, R_D);
	set_tensor(&s, "v.position_embd.weight", 2, C_W, 69 * 70, 1, 1);
	expect_resampler("position table 69 x 70", &s, RV_ERR_MODEL, "v.position_embd.weight",
	                 "70 x 70", NULL);
	spec_free(&s);
	resampler_spec(&s, R_D);
	set_tensor(&s, "resampler.pos_embed_k", 2, R_D, 4096, 1, 1);
	expect_resampler("resampler table 64 x 64", &s, RV_ERR_MODEL, "resampler.pos_embed_k",
	                 "70 x 70", NULL);
	spec_free(&s);

	/* HF's heads are width // 128: 257 makes 2, which do not divide it;
	 * under 128 there are none */
	resampler_spec(&s, 257);
	expect_resampler("heads not dividing the width", &s, RV_ERR_MODEL, "257", "2 heads", NULL);
	spec_free(&s);
	resampler_spec(&s, 64);
	expect_resampler("width under one head", &s, RV_ERR_MODEL, "64", "0 heads", NULL);
	spec_free(&s);

	static const char *const need[] = {"resampler.query",         "resampler.kv.weight",
	                                   "resampler.attn.out.bias", "resampler.ln_post.bias",
	                                   "resampler.proj.weight",   "v.post_ln.weight"};
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		resampler_spec(&s, R_D);
		del_tensor(&s, need[i]);
		expect_resampler("missing resampler tensor", &s, RV_ERR_MODEL, "missing tensor",
		                 need[i], NULL);
		spec_free(&s);
	}

	/* 6 (MiniCPM-V 4.5) is read as 3 is; its query count is checked
	 * the same way */
	resampler_spec(&s, R_D);
	set_int(&s, "clip.minicpmv_version", G_I32, 6);
	expect_resampler("valid resampler, version 6", &s, RV_OK, NULL);
	set_int(&s, "clip.minicpmv_query_num", G_I32, R_Q - 1);
	expect_resampler("version 6: query count vs tensor", &s, RV_ERR_MODEL,
	                 "clip.minicpmv_query_num", "resampler.query", "3", "4", NULL);
	spec_free(&s);

	static const int64_t versions[] = {2, 5, 7, 99};
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		char v[16];
		snprintf(v, sizeof(v), "version %d", (int)versions[i]);
		resampler_spec(&s, R_D);
		set_int(&s, "clip.minicpmv_version", G_I32, versions[i]);
		expect_resampler(v, &s, RV_ERR_UNSUPPORTED, "clip.minicpmv_version", v + 8,
		                 "not supported", NULL);
		spec_free(&s);
	}
	resampler_spec(&s, R_D);
	del_kv(&s, "clip.minicpmv_version");
	expect_resampler("no version", &s, RV_ERR_MODEL, "clip.minicpmv_version", NULL);
	spec_free(&s);
}

/* ---- absurd claims, under an address-space limit ----------------------------- */

/* A GGUF header, then raw bytes. */
static size_t raw_header(uint8_t *buf, uint64_t n_tensors, uint64_t n_kv)
{
	memcpy(buf, "GGUF", 4);
	uint32_t v = 3;
	memcpy(buf + 4, &v, 4);
	memcpy(buf + 8, &n_tensors, 8);
	memcpy(buf + 16, &n_kv, 8);
	return 24;
}

static size_t raw_key(uint8_t *buf, const char *key, uint32_t type)
{
	uint64_t n = strlen(key);
	memcpy(buf, &n, 8);
	memcpy(buf + 8, key, n);
	memcpy(buf + 8 + n, &type, 4);
	return 12 + n;
}

/* Each file is refused with RV_ERR_MODEL and a message with phrase. Runs in
 * a child whose address space may grow by 384 MiB at most (no limit under
 * ASan), so a loader that believed a claim would fail there. */
static void huge_claims(void)
{
	uint8_t buf[4096];
	size_t n;
	struct {
		const char *what, *phrase;
		uint8_t data[256];
		size_t n;
	} c[8];
	int nc = 0;
	uint64_t u64;
	uint32_t u32;

	/* 2^40 strings in a string array */
	n = raw_header(buf, 0, 1);
	n += raw_key(buf + n, "tokenizer.ggml.tokens", G_ARR);
	u32 = G_STR;
	memcpy(buf + n, &u32, 4);
	u64 = (uint64_t)1 << 40;
	memcpy(buf + n + 4, &u64, 8);
	n += 12;
	memset(buf + n, 0, 64);
	n += 64;
	c[nc].what = "2^40 strings";
	c[nc].phrase = "1099511627776 strings";
	memcpy(c[nc].data, buf, n);
	c[nc++].n = n;

	/* 2^40 float32 values */
	n = raw_header(buf, 0, 1);
	n += raw_key(buf + n, "tokenizer.ggml.scores", G_ARR);
	u32 = G_F32;
	memcpy(buf + n, &u32, 4);
	memcpy(buf + n + 4, &u64, 8);
	n += 12;
	c[nc].what = "2^40 floats";
	c[nc].phrase = "1099511627776 float32";
	memcpy(c[nc].data, buf, n);
	c[nc++].n = n;

	/* 2^62 float32 values: the byte count overflows 64 bits */
	n = raw_header(buf, 0, 1);
	n += raw_key(buf + n, "x", G_ARR);
	memcpy(buf + n, &u32, 4);
	u64 = (uint64_t)1 << 62;
	memcpy(buf + n + 4, &u64, 8);
	n += 12;
	c[nc].what = "2^62 floats";
	c[nc].phrase = "runs past the end";
	memcpy(c[nc].data, buf, n);
	c[nc++].n = n;

	/* 2^31 tensors, 2^40 keys, both at once */
	n = raw_header(buf, (uint64_t)1 << 31, 0);
	memset(buf + n, 0, 100);
	c[nc].what = "2^31 tensors";
	c[nc].phrase = "2147483648 tensors";
	memcpy(c[nc].data, buf, n + 100);
	c[nc++].n = n + 100;
	n = raw_header(buf, (uint64_t)1 << 31, (uint64_t)1 << 40);
	c[nc].what = "2^40 keys";
	c[nc].phrase = "1099511627776 keys";
	memcpy(c[nc].data, buf, n);
	c[nc++].n = n;

	/* a string of 2^64 - 1 bytes */
	n = raw_header(buf, 0, 1);
	n += raw_key(buf + n, "general.name", G_STR);
	u64 = UINT64_MAX;
	memcpy(buf + n, &u64, 8);
	n += 8;
	c[nc].what = "2^64-1 byte string";
	c[nc].phrase = "runs past the end";
	memcpy(c[nc].data, buf, n);
	c[nc++].n = n;

	/* a tensor of 2^62 elements */
	n = raw_header(buf, 1, 0);
	u64 = 17;
	memcpy(buf + n, &u64, 8);
	memcpy(buf + n + 8, "token_embd.weight", 17);
	n += 25;
	u32 = 2;
	memcpy(buf + n, &u32, 4);
	u64 = (uint64_t)1 << 31;
	memcpy(buf + n + 4, &u64, 8);
	memcpy(buf + n + 12, &u64, 8);
	u32 = 0;
	memcpy(buf + n + 20, &u32, 4);
	u64 = 0;
	memcpy(buf + n + 24, &u64, 8);
	n += 32;
	c[nc].what = "2^62-element tensor";
	c[nc].phrase = "token_embd.weight";
	memcpy(c[nc].data, buf, n);
	c[nc++].n = n;

	/* What the process has mapped already (libraries, OpenBLAS's
	 * buffers) plus 384 MiB: room for a real load, not for any claim. */
	long pages = 0;
	FILE *statm = fopen("/proc/self/statm", "r");
	if (!statm || fscanf(statm, "%ld", &pages) != 1)
		pages = 0;
	if (statm)
		fclose(statm);
	const rlim_t limit = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)384 << 20);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		if (!UNDER_ASAN && pages > 0) {
			struct rlimit rl = {limit, limit};
			if (setrlimit(RLIMIT_AS, &rl) != 0)
				_exit(90);
		}
		int bad = 0;
		for (int i = 0; i < nc; i++) {
			char name[64];
			snprintf(name, sizeof(name), "claim%d.gguf", i);
			rv_model *m = NULL;
			char err[512] = "";
			rv_status rc = rv_model_load(write_tmp(name, c[i].data, c[i].n), NULL, &m,
			                             err, sizeof(err));
			if (rc != RV_ERR_MODEL || !strstr(err, c[i].phrase)) {
				fprintf(stderr, "FAIL: %s: status %d, message: %s\n", c[i].what, rc,
				        err);
				bad++;
			}
			rv_model_free(m);
		}
		fflush(NULL);
		_exit(bad ? 1 : 0);
	}
	int st = 0;
	CHECK(pid > 0 && waitpid(pid, &st, 0) == pid, "fork/wait");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "huge claims under a 384 MiB limit: child %s %d (see above)",
	      WIFEXITED(st) ? "exited with" : "died of signal",
	      WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
}

/* ---- rv_model_check_tensors --------------------------------------------------- */

/* Replaces an F32 tensor's data by the same values in type (F16, BF16,
 * Q8_0, Q4_0 from fp16 scales) so each reader of the check is exercised. */
static void convert(mtensor *t, int type)
{
	if (type == RVI_TYPE_F32)
		return;
	const size_t n = t->nbytes / 4;
	float *f = (float *)(void *)t->data;
	uint8_t *out;
	size_t nb;
	if (type == RVI_TYPE_F16 || type == RVI_TYPE_BF16) {
		nb = n * 2;
		out = calloc(1, nb);
		for (size_t i = 0; i < n; i++) {
			uint16_t h;
			if (type == RVI_TYPE_F16) {
				h = rvi_f32_to_f16(f[i]);
			} else {
				uint32_t u;
				memcpy(&u, &f[i], 4);
				h = (uint16_t)(u >> 16);
			}
			memcpy(out + 2 * i, &h, 2);
		}
	} else { /* Q8_0: d = max/127 per 32, q = round(x/d) */
		nb = n / 32 * sizeof(rv_block_q8_0);
		out = calloc(1, nb);
		for (size_t b = 0; b < n / 32; b++) {
			rv_block_q8_0 blk;
			/* fmaxf would drop a NaN: a non-finite value makes the
			 * scale non-finite, as a quantizer fed one would. */
			float mx = 0;
			for (int j = 0; j < 32; j++) {
				const float a = fabsf(f[b * 32 + j]);
				if (!isfinite(a)) {
					mx = a;
					break;
				}
				mx = fmaxf(mx, a);
			}
			const float d = mx / 127;
			blk.d = rvi_f32_to_f16(d);
			for (int j = 0; j < 32; j++)
				blk.qs[j] = (int8_t)(d ? lrintf(f[b * 32 + j] / d) : 0);
			memcpy(out + b * sizeof(blk), &blk, sizeof(blk));
		}
	}
	free(t->data);
	t->data = out;
	t->nbytes = nb;
	t->type = type;
}

static void expect_check(const char *what, const spec *s, const char *phrase1, const char *phrase2)
{
	rv_model *m = NULL;
	char err[512] = "";
	rv_status rc = rv_model_load(spec_file(s, "check.gguf"), NULL, &m, err, sizeof(err));
	CHECK(rc == RV_OK, "%s: load: %s", what, err);
	if (rc != RV_OK)
		return;
	err[0] = 0;
	rc = rv_model_check_tensors(m, err, sizeof(err));
	if (!phrase1) {
		CHECK(rc == RV_OK, "%s: %s", what, err);
	} else {
		CHECK(rc == RV_ERR_MODEL, "%s: status %d", what, rc);
		CHECK(strstr(err, phrase1) && strstr(err, phrase2), "%s: message: %s", what, err);
	}
	rv_model_free(m);
}

static void test_check_tensors(void)
{
	/* ffn_down is (32, 8) = 256 values, eight Q8_0 blocks of a row each. */
	static const int types[] = {RVI_TYPE_F32, RVI_TYPE_F16, RVI_TYPE_BF16, RVI_TYPE_Q8_0};
	static const char *const tnames[] = {"F32", "F16", "BF16", "Q8_0"};
	spec s;
	for (size_t i = 0; i < 4; i++) {
		for (int kind = 0; kind < 3; kind++) {
			llama_spec(&s, 2);
			const char *name = "blk.1.ffn_down.weight";
			mtensor *t = find_t(&s, name);
			if (kind > 0) {
				float bad = kind == 1 ? NAN : -INFINITY;
				memcpy(t->data + 4 * 70, &bad, 4);
			}
			convert(t, types[i]);
			char what[96];
			snprintf(what, sizeof(what), "%s %s", tnames[i],
			         kind == 0   ? "finite"
			         : kind == 1 ? "NaN"
			                     : "-Inf");
			if (kind == 0)
				expect_check(what, &s, NULL, NULL);
			else if (types[i] == RVI_TYPE_Q8_0)
				/* element 70 is in block 2; its scale max/127 is
				 * non-finite */
				expect_check(what, &s, name, "block 2");
			else
				expect_check(what, &s, name, kind == 1 ? "NaN" : "Inf");
			spec_free(&s);
		}
	}

	/* The model's own tensors are checked, and so are the projector's. */
	llama_spec(&s, 1);
	rv_model *m = NULL;
	char err[512] = "";
	if (rv_model_load(spec_file(&s, "text.gguf"), NULL, &m, err, sizeof(err)) == RV_OK) {
		spec c;
		clip_spec(&c);
		float inf = INFINITY;
		memcpy(find_t(&c, "mm.0.bias")->data + 4 * 3, &inf, 4);
		CHECK(rv_model_load_mmproj(m, spec_file(&c, "mmproj.gguf"), err, sizeof(err)) ==
		          RV_OK,
		      "mmproj: %s", err);
		CHECK(rv_model_check_tensors(m, err, sizeof(err)) == RV_ERR_MODEL &&
		          strstr(err, "mm.0.bias") && strstr(err, "element 3") &&
		          strstr(err, "mmproj.gguf"),
		      "projector tensor: %s", err);
		spec_free(&c);
		rv_model_free(m);
	}
	spec_free(&s);

	/* The committed fixture the CLI test uses. */
	m = NULL;
	if (rv_model_load(tu_data("bad/nan-weight.gguf"), NULL, &m, err, sizeof(err)) == RV_OK) {
		CHECK(rv_model_check_tensors(m, err, sizeof(err)) == RV_ERR_MODEL &&
		          strstr(err, "blk.0.ffn_up.weight") && strstr(err, "element 37") &&
		          strstr(err, "NaN"),
		      "nan-weight.gguf: %s", err);
		rv_model_free(m);
	} else {
		CHECK(0, "nan-weight.gguf does not load: %s", err);
	}
	CHECK(rv_model_check_tensors(NULL, err, sizeof(err)) == RV_ERR_INVALID_ARG, "NULL model");
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "%s/rlaifv-malicious.XXXXXX",
	         getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 99;
	}
	/* First, while the process has no threads: the child it forks must
	 * not inherit a started OpenMP runtime (libomp would register the
	 * child in /dev/shm, and the _exit that skips LeakSanitizer in the
	 * child would leave that file behind). */
	huge_claims();
	test_valid();
	test_hparams();
	test_tensors();
	test_vocab();
	test_huge_context();
	test_gemma3();
	test_qwen3();
	test_mmproj();
	test_resampler();
	test_check_tensors();
	test_gemma3_mmproj();

	static const char *const files[] = {"model.gguf",  "text.gguf",   "mmproj.gguf",
	                                    "check.gguf",  "claim0.gguf", "claim1.gguf",
	                                    "claim2.gguf", "claim3.gguf", "claim4.gguf",
	                                    "claim5.gguf", "claim6.gguf"};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char p[512];
		snprintf(p, sizeof(p), "%s/%s", tmpdir, files[i]);
		unlink(p);
	}
	rmdir(tmpdir);
	return tu_finish("test_malicious");
}
