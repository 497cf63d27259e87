/* qwen2.c: the Qwen2 text decoder, general.architecture "qwen2" (Qwen2,
 * Qwen2.5, the LLM of MiniCPM-V 2.6) and "qwen2vl" (the LLM of Qwen2-VL and
 * Qwen2.5-VL). Its recipe is LLaMA's (models/llama.c: pre-norm GQA
 * attention, SwiGLU FFN, RMSNorm, tied or untied output as the file has
 * it) with q, k, v biases and half-split RoPE, since llama.cpp's converter
 * leaves Qwen2's Q/K rows unpermuted. This file owns what differs: the
 * names, and M-RoPE's sections for qwen2vl. "qwen3" (Qwen3, the LLM of
 * MiniCPM-V 4.5) drops the biases and norms each q and k head. */
#include <stdio.h>
#include <stdlib.h>

#include "models/arch.h"
#include "models/llama.h"
#include "models/loader.h"
#include "models/qwen2.h"

static const rvi_llama_variant qwen2 = {"qwen2", true, true, false, false};
static const rvi_llama_variant qwen2vl = {"qwen2vl", true, true, false, false};
/* Qwen3 (the LLM of MiniCPM-V 4.5): no q, k, v biases; per-head RMSNorm of
 * q and k before RoPE; the head width is qwen3.attention.key_length (128
 * in the released models), which need not be n_embd / n_head. */
static const rvi_llama_variant qwen3 = {"qwen3", false, true, true, true};

static int load_qwen2(void *obj, const rvi_gguf *g, rvi_err *err)
{
	return rvi_llama_load_variant(obj, g, &qwen2, err);
}

/* qwen2vl.rope.dimension_sections: the converter writes HF's mrope_section
 * padded to 4 ([16, 24, 24, 0] for Qwen2.5-VL-7B): rotary pairs turned by
 * the t, h and w components, which must cover the rotary half exactly. */
static int load_sections(rvi_llama *m, const rvi_gguf *g, rvi_err *err)
{
	const char *k = "qwen2vl.rope.dimension_sections";
	const rvi_gguf_kv *kv = NULL;
	int rc = rvi_gguf_get_arr(g, k, true, RVI_GGUF_INT64, &kv, err);
	if (rc != RV_OK)
		return rc;
	if (kv->arr_n < 3 || kv->arr_n > 4)
		return rvi_errorf(err, RV_ERR_MODEL, "%s: %s has %llu values, expected 3 or 4",
		                  g->path, k, (unsigned long long)kv->arr_n);
	int64_t sum = 0;
	for (uint64_t i = 0; i < kv->arr_n; i++) {
		const int64_t s = rvi_gguf_arr_i64(kv, i);
		if (s < 0 || s > m->hp.n_rot)
			return rvi_errorf(err, RV_ERR_MODEL, "%s: %s[%llu] = %lld is out of range",
			                  g->path, k, (unsigned long long)i, (long long)s);
		if (i < 3)
			m->hp.rope_sections[i] = (int)s;
		else if (s != 0)
			return rvi_errorf(err, RV_ERR_MODEL,
			                  "%s: %s[3] = %lld: a fourth position component is not "
			                  "supported",
			                  g->path, k, (long long)s);
		sum += s;
	}
	if (sum != m->hp.n_rot / 2 || m->hp.rope_sections[0] == 0)
		return rvi_errorf(err, RV_ERR_MODEL,
		                  "%s: %s sum to %lld, expected the %lld rotary pairs (half of "
		                  "%lld rotated dims), with t's section first",
		                  g->path, k, (long long)sum, (long long)(m->hp.n_rot / 2),
		                  (long long)m->hp.n_rot);
	return RV_OK;
}

static int load_qwen2vl(void *obj, const rvi_gguf *g, rvi_err *err)
{
	rvi_llama *m = obj;
	int rc = rvi_llama_load_variant(m, g, &qwen2vl, err);
	if (rc == RV_OK && (rc = load_sections(m, g, err)) != RV_OK)
		rvi_llama_free(m);
	return rc;
}

static int load_qwen3(void *obj, const rvi_gguf *g, rvi_err *err)
{
	return rvi_llama_load_variant(obj, g, &qwen3, err);
}

RVI_ARCH_LOAD(arch_load_qwen2, rvi_llama, load_qwen2)
RVI_ARCH_LOAD(arch_load_qwen3, rvi_llama, load_qwen3)
RVI_ARCH_LOAD(arch_load_qwen2vl, rvi_llama, load_qwen2vl)

const rvi_text_arch rvi_qwen2_arch = RVI_LLAMA_TABLE("qwen2", arch_load_qwen2);
const rvi_text_arch rvi_qwen2vl_arch = RVI_LLAMA_TABLE("qwen2vl", arch_load_qwen2vl);
const rvi_text_arch rvi_qwen3_arch = RVI_LLAMA_TABLE("qwen3", arch_load_qwen3);
