/* test_qwen3.c: the Qwen3 text decoder (general.architecture "qwen3", the
 * LLM of MiniCPM-V 4.5) against tools/make_qwen3_fixture.py's float64
 * reference of HF's Qwen3 maths (tests/data/qwen3; not an HF run): every
 * prompt position's logits and the greedy continuation, under every kernel
 * set this build and CPU can run. The fixture's heads (4 x 16) are wider
 * than its embedding (48) and its q/k head norms far from 1, so a missed
 * norm or a head width taken from n_embd / n_head fails. */
#include <math.h>
#include <stdlib.h>

#include "models/arch.h"
#include "models/qwen2.h"
#include "simd/kernels.h"
#include "src/gguf.h"
#include "tests/testutil.h"

/* F32 weights and activations against float64: summation order only. */
#define TOL_LOGIT 1e-3

static int argmax(const float *v, int64_t n)
{
	int best = 0;
	for (int64_t i = 1; i < n; i++)
		if (v[i] > v[best])
			best = (int)i;
	return best;
}

static void check_reference(const rvi_gguf *g, const tu_json *ref)
{
	const rvi_text_arch *arch = NULL;
	void *model = NULL, *state = NULL;
	rvi_err err = {0};
	CHECK(rvi_text_arch_find(g, &arch, &err) == RV_OK && arch == &rvi_qwen3_arch,
	      "qwen3 finds its table: %s", err.msg);
	if (!arch || arch->load(g, &model, &err) != RV_OK) {
		CHECK(0, "load: %s", err.msg);
		return;
	}
	const rvi_text_info info = arch->info(model);
	const tu_json *ids = tu_json_get(ref, "prompt_ids");
	const tu_json *rows = tu_json_get(ref, "logits");
	const tu_json *greedy = tu_json_get(ref, "greedy_ids");
	const int64_t nv = info.n_vocab, n = (int64_t)ids->n;
	CHECK(nv == (int64_t)tu_json_get(ref, "n_vocab")->num && rows->n == ids->n, "vocab %lld",
	      (long long)nv);
	int32_t tok[64];
	float *logits = malloc((size_t)(n * nv) * sizeof(float));
	CHECK(arch->state_new(model, 32, 8, 2, &state, &err) == RV_OK, "state: %s", err.msg);
	for (int64_t t = 0; t < n && t < 64; t++)
		tok[t] = (int32_t)tu_json_at(ids, (size_t)t)->num;
	/* the prompt in two chunks of the batch of 8 is not needed: 7 items */
	rvi_batch b = {n, tok, NULL, NULL, NULL, RVI_ATTN_CAUSAL};
	if (state && logits && arch->decode(model, state, &b, logits, true, &err) == RV_OK) {
		double worst = 0;
		for (int64_t t = 0; t < n; t++)
			for (int64_t v = 0; v < nv; v++) {
				const double want =
				    tu_json_at(tu_json_at(rows, (size_t)t), (size_t)v)->num;
				const double d = fabs(logits[t * nv + v] - want);
				worst = d > worst || isnan(d) ? d : worst;
			}
		CHECK(worst < TOL_LOGIT, "prompt logits differ by %g", worst);
		/* greedy, one token at a time through the cache */
		for (size_t i = 0; i < greedy->n; i++) {
			int32_t id = (int32_t)argmax(logits + (i == 0 ? (n - 1) * nv : 0), nv);
			const int want = (int)tu_json_at(greedy, i)->num;
			CHECK(id == want, "greedy token %zu: %d, want %d", i, id, want);
			rvi_batch one = {1, &id, NULL, NULL, NULL, RVI_ATTN_CAUSAL};
			if (arch->decode(model, state, &one, logits, false, &err) != RV_OK) {
				CHECK(0, "decode: %s", err.msg);
				break;
			}
		}
	} else {
		CHECK(0, "prompt: %s", err.msg);
	}
	free(logits);
	if (state)
		arch->state_free(state);
	arch->free(model);
}

int main(void)
{
	rvi_gguf *g = NULL;
	rvi_err err = {0};
	tu_json *ref = tu_json_load(tu_data("qwen3/ref-qwen3.json"));
	CHECK(ref != NULL, "cannot read qwen3/ref-qwen3.json");
	CHECK(rvi_gguf_open(&g, tu_data("qwen3/tiny-qwen3-f32.gguf"), &err) == RV_OK, "open: %s",
	      err.msg);
	if (!ref || !g)
		return tu_finish("test_qwen3");
	const char *isas[8];
	const int n_isas = rvk_usable_isas(isas, 8);
	const rvk_table *first = rvk_active();
	for (int i = 0; i < n_isas && i < 8; i++) {
		CHECK(rvk_select(isas[i], NULL, 0), "select %s", isas[i]);
		printf("-- %s kernels\n", isas[i]);
		check_reference(g, ref);
	}
	CHECK(rvk_select(first->name, NULL, 0), "restore %s", first->name);
	rvi_gguf_close(g);
	tu_json_free(ref);
	return tu_finish("test_qwen3");
}
