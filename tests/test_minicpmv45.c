/* test_minicpmv45.c: MiniCPM-V 4.5 (clip.minicpmv_version 6, a Qwen3 text
 * model) against tools/make_minicpmv45_fixture.py's float64 reference of
 * its remote code (tests/data/minicpmv45, see its README; not an HF run):
 * the image embeddings (two 128-channel resampler heads, F16 weights)
 * within 1e-4 on every kernel set; with the default template of a version
 * 6 projector (Qwen3's, thinking off, no system turn) the prompt ids, the
 * first position's top 10, 16 greedy tokens and their log-probs and three
 * scored continuations; a text-only prompt with a system sentence. The
 * slicing and pixels are 2.6's, checked in test_minicpmv. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/arch.h"
#include "models/minicpmv.h"
#include "rlaifv.h"
#include "simd/kernels.h"
#include "src/api_internal.h"
#include "src/chat.h"
#include "src/tokenizer/tokenizer.h"
#include "tests/testutil.h"
#include "tests/vlmcheck.h"

#define TOL_EMBD 1e-4
#define TOL_LP   1e-3
/* ids in the fixture's vocabulary (see its README) */
#define UNK_ID       956
#define ENDOFTEXT_ID 957
#define IM_START_ID  958
#define IM_END_ID    959

#define DIR    "minicpmv45/"
#define MMPROJ DIR "tiny-minicpmv45-mmproj-f16.gguf"
#define TEXT   DIR "tiny-minicpmv45-text-f16.gguf"

typedef struct image_case {
	const char *file; /* under tests/data */
	const char *stem; /* the reference's name for it */
} image_case;

static const image_case images[] = {
    {"shapes_64x48.png", "shapes_64x48"},
    {"minicpmv/grid_200x150.png", "grid_200x150"},
};

static tu_json *load_ref(const char *what)
{
	char name[256];
	snprintf(name, sizeof(name), DIR "ref-minicpmv45.%s.json", what);
	tu_json *j = tu_json_load(tu_data(name));
	CHECK(j != NULL, "%s", name);
	return j;
}

/* ---- the projector -------------------------------------------------------- */

static void test_embeddings(const void *model, const image_case *ic)
{
	char name[256];
	snprintf(name, sizeof(name), "%s.describe", ic->stem);
	tu_json *ref = load_ref(name);
	const rvi_vision_arch *a = &rvi_minicpmv_arch;
	rvi_err err = {0};
	rvi_image img = {0};
	rvi_pixels px = {0};
	float *out = NULL;
	int rc = rvi_image_load_file(tu_data(ic->file), NULL, true, &img, &err);
	if (rc == RV_OK)
		rc = a->preprocess(model, &img, NULL, &px, &err);
	CHECK(rc == RV_OK, "%s: %s", ic->file, err.msg);
	if (rc != RV_OK || !ref)
		goto done;
	const tu_json *slices = tu_json_get(ref, "slices_wh");
	const int64_t D = a->n_embd_out(model), n_img = slices ? (int64_t)slices->n : 0;
	CHECK(D == 256 && n_img == 1 + px.shape.tiles_w * px.shape.tiles_h &&
	          px.shape.rows == 64 * n_img,
	      "%s: %lld images of %lld rows, width %lld", ic->file, (long long)n_img,
	      (long long)px.shape.rows, (long long)D);
	const size_t n = (size_t)(px.shape.rows * D);
	/* two thread counts: the resampler's heads run one a thread */
	if (px.shape.rows != 64 * n_img || !(out = vc_encode(a, model, &px, ic->file)))
		goto done;
	snprintf(name, sizeof(name), DIR "%s", tu_json_get(ref, "image_embedding.npy")->str);
	const double worst = tu_npy_max_diff(out, n, name);
	CHECK(worst <= TOL_EMBD, "%s: embeddings differ by %g", ic->file, worst);
	printf("%s: %lld images, embeddings max |diff| %.3g\n", ic->file, (long long)n_img, worst);
done:
	free(out);
	rvi_pixels_free(&px);
	rvi_image_free(&img);
	tu_json_free(ref);
}

static void test_projector(void)
{
	rvi_gguf *g;
	void *model = vc_load_vision(&rvi_minicpmv_arch, MMPROJ, &g);
	if (!model)
		return;
	const rvi_minicpmv *m = model;
	CHECK(m->version == 6 && m->n_query == 64 && m->n_rhead == 2 && m->hp.n_mm_out == 256,
	      "version %lld, %lld queries, %lld heads", (long long)m->version,
	      (long long)m->n_query, (long long)m->n_rhead);
	/* the version picks the template */
	const char *t = rvi_minicpmv_arch.chat_template_of(model);
	CHECK(t && !strcmp(t, "qwen3"), "version 6's template: %s", t ? t : "none");
	const char *isas[8];
	const int n_isas = rvk_usable_isas(isas, 8);
	const rvk_table *first = rvk_active();
	for (int k = 0; k < n_isas && k < 8; k++) {
		CHECK(rvk_select(isas[k], NULL, 0), "select %s", isas[k]);
		printf("-- %s kernels\n", isas[k]);
		for (size_t i = 0; i < sizeof(images) / sizeof(images[0]); i++)
			test_embeddings(model, &images[i]);
	}
	CHECK(rvk_select(first->name, NULL, 0), "restore %s", first->name);
	rvi_minicpmv_arch.free(model);
	rvi_gguf_close(g);
}

/* ---- the template ---------------------------------------------------------- */

static void test_template(void)
{
	rvi_chat c;
	rvi_err err = {0};
	/* chat(): "(<image>./</image>)\n" + question, no system turn, and
	 * enable_thinking=False's empty think block */
	CHECK(rvi_chat_build("qwen3", NULL, "describe", 1, &c, &err) == RV_OK, "%s", err.msg);
	CHECK(c.n_seg == 3 && !strcmp(c.seg[0].text, "<|im_start|>user\n") && !c.seg[1].text &&
	          !strcmp(c.seg[2].text, "\ndescribe<|im_end|>\n<|im_start|>assistant\n"
	                                 "<think>\n\n</think>\n\n"),
	      "image prompt");
	rvi_chat_free(&c);
	CHECK(rvi_chat_build("qwen3", "Be brief.", "Hi", 0, &c, &err) == RV_OK, "%s", err.msg);
	CHECK(c.n_seg == 1 &&
	          !strcmp(c.seg[0].text,
	                  "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n"
	                  "Hi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n") &&
	          c.seg[0].n_user == 2 && c.seg[0].user_off[0] == 19 && c.seg[0].user_len[0] == 9,
	      "system + text: '%s'", c.seg[0].text);
	rvi_chat_free(&c);
	/* a GGUF carrying Qwen3's Jinja template is read as this one, not
	 * as chatml (which would add Qwen2's system sentence) */
	static const char jinja[] = "{%- if enable_thinking is defined and enable_thinking is "
	                            "false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}"
	                            "{{- '<|im_start|>' + message.role }}";
	const char *name = rvi_chat_recognise(jinja, sizeof(jinja) - 1);
	CHECK(name && !strcmp(name, "qwen3"), "Qwen3's template taken for %s",
	      name ? name : "none");
}

/* ---- the text model over the prompt ---------------------------------------- */

static const vc_scored_keys scored_keys = {"scored_candidates.candidates", "ids", "logprobs",
                                           "scored_candidates.best_by_mean_logprob"};

static void check_prompt(rv_context *ctx, const rv_prompt *p, const char *what)
{
	tu_json *ref = load_ref(what);
	if (!ref)
		return;
	const tu_json *ids = tu_json_get(ref, "tokens.ids");
	vc_prompt_ids(ctx, p, ids, UNK_ID, what);
	vc_first_top10(ctx, p, tu_json_get(ref, "first_position_top10"), TOL_LP, true, what);
	vc_greedy(ctx, p, ref, TOL_LP, VC_ALL_TOKENS, ids ? (int)ids->n : -1, what);
	vc_scored(ctx, p, ref, &scored_keys, TOL_LP, what);
	tu_json_free(ref);
}

static void test_text_model(void)
{
	rv_model *m;
	rv_context *ctx = vc_open(TEXT, MMPROJ, &m);
	if (!ctx) {
		rv_model_free(m);
		return;
	}
	/* chat()'s terminators <|im_end|> (the file's EOS) and <|endoftext|> */
	CHECK(rvi_tokenizer_is_eog(m->tok, IM_END_ID) &&
	          rvi_tokenizer_is_eog(m->tok, ENDOFTEXT_ID) &&
	          !rvi_tokenizer_is_eog(m->tok, IM_START_ID),
	      "the end-of-generation tokens");
	for (size_t i = 0; i < sizeof(images) / sizeof(images[0]); i++) {
		char path[4096], what[128];
		snprintf(path, sizeof(path), "%s", tu_data(images[i].file));
		snprintf(what, sizeof(what), "%s.describe", images[i].stem);
		const char *imgs[1] = {path};
		/* no template named: version 6's own */
		rv_prompt p = {.text = "describe", .images = imgs, .n_images = 1};
		check_prompt(ctx, &p, what);
	}
	rv_prompt p = {.text = "Once upon a time", .chat_template = "qwen3", .system = "Be brief."};
	check_prompt(ctx, &p, "text.once_upon_a_time");
	/* best-of-N on the sliced image: candidates equal to their solo runs,
	 * the model as its own reference */
	char path[4096];
	snprintf(path, sizeof(path), "%s", tu_data("minicpmv/grid_200x150.png"));
	const char *imgs[1] = {path};
	rv_prompt pb = {.text = "describe", .images = imgs, .n_images = 1};
	vc_bestofn(ctx, &pb, NULL, 1e-4, "best-of-4, own reference");
	rv_context_free(ctx);
	rv_model_free(m);
}

int main(void)
{
	test_template();
	test_projector();
	test_text_model();
	return tu_finish("test_minicpmv45");
}
