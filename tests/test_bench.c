/* test_bench.c: rlaifv-bench without timing anything.
 *
 * - bench_stats.c with known numbers fed in: median, spread and MAD of
 *   repetitions, ratios to limits (10 tok/s x 1 GB/token over 20 GB/s is
 *   half the bandwidth bound), FLOP counts of the decoder and the vision
 *   encoder on shapes small enough to count by hand and on the real 1.1B
 *   and ViT-L shapes against their published parameter counts, and the
 *   memory budget;
 * - a smoke run: `rlaifv-bench --model stories260K.gguf --quick --json`
 *   must print one valid JSON object with the fields the man page lists,
 *   and bad options must give exit status 2. No figure's value is checked:
 *   make check must not depend on the machine's speed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "programs/rlaifv-bench/stats.h"
#include "tests/testutil.h"

#define NEAR(a, b) (fabs((double)(a) - (double)(b)) <= 1e-9 * fmax(1.0, fabs((double)(b))))

static void test_stats(void)
{
	const double odd[] = {3, 1, 2};
	rvb_stats s = rvb_stats_of(odd, 3);
	CHECK(s.n == 3 && s.median == 2 && s.min == 1 && s.max == 3 && s.mad == 1,
	      "odd: n %d median %g min %g max %g mad %g", s.n, s.median, s.min, s.max, s.mad);
	CHECK(odd[0] == 3 && odd[1] == 1, "the input was reordered");

	/* even count: the mean of the middle two; |x - 2.5| = 1.5, 1.5, .5, .5 */
	const double even[] = {4, 1, 3, 2};
	s = rvb_stats_of(even, 4);
	CHECK(s.median == 2.5 && s.mad == 1.0, "even: median %g mad %g", s.median, s.mad);

	/* one disturbed run moves the median not at all */
	const double noisy[] = {10, 10.2, 9.9, 3.0, 10.1};
	s = rvb_stats_of(noisy, 5);
	CHECK(s.median == 10 && s.min == 3.0 && s.max == 10.2, "noisy: median %g", s.median);

	s = rvb_stats_of(odd, 0);
	CHECK(s.n == 0 && isnan(s.median) && isnan(s.mad), "no samples: median %g", s.median);
	s = rvb_stats_of(odd, 1);
	CHECK(s.median == 3 && s.mad == 0 && s.min == s.max, "one sample: %g", s.median);
}

static void test_ratios(void)
{
	/* the example: 10 tok/s x 1 GB per token = 10 GB/s of 20 */
	CHECK(NEAR(rvb_decode_bw_ratio(10, 1e9, 20e9), 0.5), "decode ratio %g",
	      rvb_decode_bw_ratio(10, 1e9, 20e9));
	CHECK(isnan(rvb_decode_bw_ratio(10, 1e9, 0)), "no bandwidth must be NaN");
	CHECK(isnan(rvb_ratio(1, -1)) && isnan(rvb_ratio(NAN, 1)), "bad ratios must be NaN");
	CHECK(NEAR(rvb_ratio(340, 200), 1.7), "prefill ratio");
	CHECK(NEAR(rvb_gflops(2e9, 1000), 2.0), "2 GFLOP in 1 s is %g GFLOP/s",
	      rvb_gflops(2e9, 1000));
	CHECK(isnan(rvb_gflops(1, 0)), "0 ms must be NaN");
	CHECK(NEAR(rvb_per_second(32, 500), 64), "32 tokens in 0.5 s: %g/s",
	      rvb_per_second(32, 500));
}

static void test_llama_counts(void)
{
	/* width 4, 1 layer, FFN 8, 2 heads of 2 sharing 1 KV head, vocab 10:
	 * q 4x4 + k, v 2x4 each + o 4x4 + gate, up, down 3 x 4x8 = 144 params */
	const rvb_llama_shape tiny = {4, 1, 8, 2, 1, 2, 10};
	CHECK(NEAR(rvb_llama_layer_flops_per_token(&tiny), 288), "tiny per-token %g",
	      rvb_llama_layer_flops_per_token(&tiny));
	/* prefill of 3 tokens: 3 x 288 + attention 4 x q_dim 4 x (1 + 2 + 3)
	 * attended positions + one logits row 2 x 4 x 10 */
	CHECK(NEAR(rvb_llama_flops(&tiny, 0, 3, 1), 864 + 96 + 80), "tiny prefill %g",
	      rvb_llama_flops(&tiny, 0, 3, 1));
	/* decoding one token after 2: it attends 3 positions */
	CHECK(NEAR(rvb_llama_flops(&tiny, 2, 1, 1), 288 + 48 + 80), "tiny decode %g",
	      rvb_llama_flops(&tiny, 2, 1, 1));
	/* K and V, 1 layer x 10 positions x kv_dim 2 x 4 bytes each */
	CHECK(NEAR(rvb_llama_kv_cache_bytes(&tiny, 10), 160), "tiny KV %g",
	      rvb_llama_kv_cache_bytes(&tiny, 10));

	/* TinyLlama 1.1B: 968.9M parameters in the layers' matrices */
	const rvb_llama_shape tl = {2048, 22, 5632, 32, 4, 64, 32000};
	const double per_tok = rvb_llama_layer_flops_per_token(&tl);
	CHECK(NEAR(per_tok, 2.0 * 968884224), "1.1B per-token %g", per_tok);
	/* with the embedding and output matrices and the norm vectors: the
	 * published 1,100,048,384 */
	CHECK(NEAR(per_tok / 2 + 2.0 * 2048 * 32000 + (2.0 * 22 + 1) * 2048, 1100048384.0),
	      "1.1B parameters");
	/* KV cache of 2048 positions: 22 x 2048 x 256 x 2 x 4 bytes = 92 MB */
	CHECK(NEAR(rvb_llama_kv_cache_bytes(&tl, 2048), 92274688), "1.1B KV %g",
	      rvb_llama_kv_cache_bytes(&tl, 2048));
}

static void test_clip_counts(void)
{
	/* image 4, patch 2: 4 patches + class = 5 rows; width 2, FFN 4, one
	 * block, projector 2 -> 3 -> 5. patch 2x4x12x2 = 192; block: q,k,v,o
	 * 2x5x4x2x2 = 160, MLP 2x5x2x2x4 = 160, attention 4x25x2 = 200;
	 * projector 2x4x(2x3 + 3x5) = 168 */
	const rvb_clip_shape tiny = {4, 2, 2, 4, 1, 3, 5};
	CHECK(NEAR(rvb_clip_flops(&tiny), 192 + 520 + 168), "tiny CLIP %g", rvb_clip_flops(&tiny));
	/* ViT-L/14-336 (23 blocks run) + LLaVA projector: ~2 x 290M
	 * parameters x 577 rows plus 31 GFLOP of attention */
	const rvb_clip_shape vit = {336, 14, 1024, 4096, 23, 2048, 2048};
	const double g = rvb_clip_flops(&vit) / 1e9;
	CHECK(g > 350 && g < 400, "ViT-L/14-336: %g GFLOP", g);
}

static void test_budget(void)
{
	CHECK(NEAR(rvb_rss_budget(1e9, 1e8, 0.15), 1.265e9), "budget %g",
	      rvb_rss_budget(1e9, 1e8, 0.15));
	CHECK(rvb_load_mapped(3e6, 1e9), "3 MB resident of a 1 GB file is mapped");
	CHECK(!rvb_load_mapped(6e8, 1e9), "600 MB resident of a 1 GB file was read");
	CHECK(!rvb_load_mapped(0, 0), "an empty file proves nothing");
}

/* ---- the tool itself ------------------------------------------------------------ */

static const char *bench_path(void)
{
	static char path[4096];
	const char *b = getenv("top_builddir");
	snprintf(path, sizeof(path), "%s/rlaifv-bench", b ? b : ".");
	return path;
}

/* Runs the tool with args (stderr discarded); stdout into *out. */
static int run(const char *args, char **out)
{
	char cmd[8192];
	snprintf(cmd, sizeof(cmd), "'%s' %s 2>/dev/null", bench_path(), args);
	FILE *p = popen(cmd, "r");
	if (!p)
		return -1;
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap + 1);
	for (size_t got; buf && (got = fread(buf + n, 1, cap - n, p)) > 0;) {
		n += got;
		if (n == cap) {
			char *grown = realloc(buf, 2 * cap + 1);
			if (!grown)
				free(buf);
			buf = grown;
			cap *= 2;
		}
	}
	const int status = pclose(p);
	if (buf)
		buf[n] = 0;
	*out = buf;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static bool is_num(const tu_json *j)
{
	return j && j->kind == TU_JNUM;
}

static bool is_stats(const tu_json *j)
{
	return is_num(tu_json_get(j, "median")) && is_num(tu_json_get(j, "min")) &&
	       is_num(tu_json_get(j, "max")) && is_num(tu_json_get(j, "mad")) &&
	       is_num(tu_json_get(j, "n"));
}

static void test_smoke(void)
{
	char args[4096], *out = NULL;
	snprintf(args, sizeof(args), "--model '%s' --quick --json --stream-mib 16",
	         tu_data("stories260K.gguf"));
	int code = run(args, &out);
	CHECK(code == 0, "--quick --json exited %d", code);
	tu_json *j = out ? tu_json_parse(out) : NULL;
	CHECK(j && j->kind == TU_JOBJ, "not one JSON object: %.300s", out ? out : "(nothing)");
	if (!j) {
		free(out);
		return;
	}
	const tu_json *s = tu_json_get(j, "tool");
	CHECK(s && s->kind == TU_JSTR && !strcmp(s->str, "rlaifv-bench"), "tool");
	const char *strs[] = {"version", "date", "cpu", "kernels", "blas"};
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		s = tu_json_get(j, strs[i]);
		CHECK(s && s->kind == TU_JSTR && s->str[0], "%s", strs[i]);
	}
	CHECK(is_num(tu_json_get(j, "threads")) && is_num(tu_json_get(j, "reps")), "threads");
	CHECK(is_stats(tu_json_get(j, "limits.read_gbps")), "limits.read_gbps");
	CHECK(is_stats(tu_json_get(j, "limits.sgemm_gflops")), "limits.sgemm_gflops");
	CHECK(is_num(tu_json_get(j, "limits.stream_bytes")), "limits.stream_bytes");
	s = tu_json_get(j, "vision");
	CHECK(s && s->kind == TU_JNULL, "no --mmproj: vision must be null");

	const tu_json *models = tu_json_get(j, "models");
	CHECK(models && models->kind == TU_JARR && models->n == 1, "one model");
	const tu_json *m = tu_json_at(models, 0);
	const char *nums[] = {"file_bytes",     "weight_bytes",     "n_ctx",
	                      "kv_bytes",       "load_ms",          "load_rss_growth_bytes",
	                      "peak_rss_bytes", "rss_budget_bytes", "prompt_tokens"};
	for (size_t i = 0; m && i < sizeof(nums) / sizeof(nums[0]); i++)
		CHECK(is_num(tu_json_get(m, nums[i])), "models[0].%s", nums[i]);
	s = tu_json_get(m, "finite");
	CHECK(s && s->kind == TU_JBOOL && s->b, "the tiny model's logits must be finite");
	s = tu_json_get(m, "mapped");
	CHECK(s && s->kind == TU_JBOOL, "models[0].mapped");

	const tu_json *pre = tu_json_get(m, "prefill");
	CHECK(pre && pre->kind == TU_JARR && pre->n == 2, "two prefill sizes");
	for (size_t i = 0; pre && i < pre->n; i++) {
		const tu_json *p = tu_json_at(pre, i);
		CHECK(is_num(tu_json_get(p, "tokens")) && is_stats(tu_json_get(p, "ms")) &&
		          is_stats(tu_json_get(p, "tokens_per_s")) &&
		          is_num(tu_json_get(p, "gflops")) && is_num(tu_json_get(p, "ratio_sgemm")),
		      "prefill[%zu]", i);
	}
	const tu_json *dec = tu_json_get(m, "decode");
	CHECK(dec && dec->kind == TU_JARR && dec->n == 2, "two decode depths");
	for (size_t i = 0; dec && i < dec->n; i++) {
		const tu_json *p = tu_json_at(dec, i);
		CHECK(is_num(tu_json_get(p, "context")) &&
		          is_stats(tu_json_get(p, "tokens_per_s")) &&
		          is_num(tu_json_get(p, "bytes_per_token")) &&
		          is_num(tu_json_get(p, "ratio_bandwidth")),
		      "decode[%zu]", i);
	}
	const tu_json *bon = tu_json_get(m, "best_of_n");
	CHECK(bon && bon->kind == TU_JARR && bon->n == 3, "best-of 1, 4, 8");
	for (size_t i = 0; bon && i < bon->n; i++) {
		const tu_json *p = tu_json_at(bon, i);
		const tu_json *n = tu_json_get(p, "n"), *tok = tu_json_get(p, "tokens");
		CHECK(is_num(n) && n->num == (i == 0 ? 1 : i == 1 ? 4 : 8), "best_of_n[%zu].n", i);
		/* ignore_eos and a fixed n_predict: every candidate is as long */
		CHECK(is_num(tok) && is_num(n) && tok->num == n->num * 4,
		      "best_of_n[%zu]: %g tokens for N = %g", i, tok ? tok->num : -1,
		      n ? n->num : -1);
		CHECK(is_stats(tu_json_get(p, "wall_ms")) &&
		          is_stats(tu_json_get(p, "tokens_per_s")) &&
		          is_num(tu_json_get(p, "speedup")),
		      "best_of_n[%zu]", i);
	}
	const tu_json *targets = tu_json_get(j, "targets");
	CHECK(targets && targets->kind == TU_JARR && targets->n >= 4, "targets");
	for (size_t i = 0; targets && i < targets->n; i++) {
		const tu_json *t = tu_json_at(targets, i);
		s = tu_json_get(t, "met");
		CHECK(s && s->kind == TU_JBOOL && tu_json_get(t, "name") && tu_json_get(t, "goal"),
		      "targets[%zu]", i);
	}
	tu_json_free(j);
	free(out);

	/* usage errors: status 2, nothing on stdout */
	code = run("--types q3_k", &out);
	CHECK(code == 2 && out && !*out, "unknown type: exit %d", code);
	free(out);
	code = run("--reps 0", &out);
	CHECK(code == 2, "--reps 0: exit %d", code);
	free(out);
	code = run("--help", &out);
	CHECK(code == 0 && out && strstr(out, "--kernels"), "--help: exit %d", code);
	free(out);
}

int main(void)
{
	test_stats();
	test_ratios();
	test_llama_counts();
	test_clip_counts();
	test_budget();
	test_smoke();
	return tu_finish("test_bench");
}
