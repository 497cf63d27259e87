/* minicpmv.c: rlaifv-bench --minicpmv: the image encoder of a random
 * MiniCPM-V-2.6-shaped projector (SigLIP-400M: width 1152, 27 blocks, 16
 * heads, FFN 4304, 448-pixel slices of 14-pixel patches; a resampler of 64
 * queries into Qwen2-7B's width 3584, 28 heads), generated on first use
 * (F16 weights, as openbmb's mmproj-model-f16.gguf) and cached beside the
 * other generated models. It times preprocessing and encoding of an image
 * that is one slice (448 x 448: the overview alone) and of one that is
 * cut into 9 (1344 x 1344: a 3 x 3 grid and the overview, 10 encoder
 * passes), against the sgemm rate measured in the same run. With -m, the
 * text model given (openbmb's Qwen2-7B GGUF of MiniCPM-V 2.6) is measured
 * as the default run measures one: prefill, decode, best-of-N; without,
 * a random Qwen2-7B-shaped one (Q4_0) with a 448-px image in the ChatML
 * prompt: --family minicpmv-2.6 (families.c), which uses this projector. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/minicpmv.h"
#include "programs/rlaifv-bench/bench.h"
#include "programs/rlaifv-bench/gguf_writer.h"
#include "rlaifv.h"
#include "src/gguf.h"

enum {
	MC_SLICE = 448,
	MC_PATCH = 14,
	MC_EMBD = 1152,
	MC_FF = 4304,
	MC_HEADS = 16,
	MC_BLOCKS = 27,
	MC_TEXT = 3584, /* Qwen2-7B's width: the resampler's */
	MC_QUERIES = 64,
	MC_POS = 70 * 70,
};

static void matrix(rvb_gguf_writer *w, const char *name, int64_t n_in, int64_t n_out)
{
	const int64_t ne[2] = {n_in, n_out};
	rvb_gguf_tensor_add(w, name, 2, ne, RVI_TYPE_F16, RVB_FILL_RANDOM);
}

static void vector(rvb_gguf_writer *w, const char *name, int64_t n, rvb_fill fill)
{
	const int64_t ne[1] = {n};
	rvb_gguf_tensor_add(w, name, 1, ne, RVI_TYPE_F32, fill);
}

/* The converter's layout (models/minicpmv.c reads it), F16 matrices. */
int rvb_minicpmv_build(rvb_gguf_writer *w)
{
	static const float half[3] = {0.5f, 0.5f, 0.5f};
	rvb_gguf_str(w, "general.architecture", "clip");
	rvb_gguf_str(w, "general.name", "rlaifv-bench random MiniCPM-V 2.6 vision F16");
	rvb_gguf_bool(w, "clip.has_vision_encoder", true);
	rvb_gguf_bool(w, "clip.has_minicpmv_projector", true);
	rvb_gguf_str(w, "clip.projector_type", "resampler");
	/* INT32 as the converter writes it (llama.cpp reads no other type) */
	rvb_gguf_i32(w, "clip.minicpmv_version", 3);
	rvb_gguf_u32(w, "clip.minicpmv_query_num", MC_QUERIES);
	rvb_gguf_u32(w, "clip.vision.image_size", MC_SLICE);
	rvb_gguf_u32(w, "clip.vision.patch_size", MC_PATCH);
	rvb_gguf_u32(w, "clip.vision.embedding_length", MC_EMBD);
	rvb_gguf_u32(w, "clip.vision.feed_forward_length", MC_FF);
	rvb_gguf_u32(w, "clip.vision.attention.head_count", MC_HEADS);
	rvb_gguf_u32(w, "clip.vision.block_count", MC_BLOCKS);
	/* 0 as the converter writes it; llama.cpp refuses a file without it */
	rvb_gguf_u32(w, "clip.vision.projection_dim", 0);
	rvb_gguf_f32(w, "clip.vision.attention.layer_norm_epsilon", 1e-6f);
	rvb_gguf_arr_f32(w, "clip.vision.image_mean", half, 3);
	rvb_gguf_arr_f32(w, "clip.vision.image_std", half, 3);
	rvb_gguf_bool(w, "clip.use_gelu", true);

	const int64_t D = MC_TEXT, W = MC_EMBD;
	const int64_t q_ne[2] = {D, MC_QUERIES};
	rvb_gguf_tensor_add(w, "resampler.query", 2, q_ne, RVI_TYPE_F32, RVB_FILL_RANDOM);
	/* the converter's 70 x 70 sincos table: neither rlaifv nor llama.cpp's
	 * graph reads it, but llama.cpp's loader requires it */
	const int64_t pk_ne[2] = {D, MC_POS};
	rvb_gguf_tensor_add(w, "resampler.pos_embed_k", 2, pk_ne, RVI_TYPE_F32, RVB_FILL_RANDOM);
	matrix(w, "resampler.proj.weight", D, D);
	matrix(w, "resampler.kv.weight", W, D);
	static const char *const attn[] = {"q", "k", "v", "out"};
	char n[64];
	for (int i = 0; i < 4; i++) {
		snprintf(n, sizeof(n), "resampler.attn.%s.weight", attn[i]);
		matrix(w, n, D, D);
		snprintf(n, sizeof(n), "resampler.attn.%s.bias", attn[i]);
		vector(w, n, D, RVB_FILL_ZEROS);
	}
	static const char *const ln[] = {"q", "kv", "post"};
	for (int i = 0; i < 3; i++) {
		snprintf(n, sizeof(n), "resampler.ln_%s.weight", ln[i]);
		vector(w, n, D, RVB_FILL_ONES);
		snprintf(n, sizeof(n), "resampler.ln_%s.bias", ln[i]);
		vector(w, n, D, RVB_FILL_ZEROS);
	}
	const int64_t patch_ne[4] = {MC_PATCH, MC_PATCH, 3, W};
	rvb_gguf_tensor_add(w, "v.patch_embd.weight", 4, patch_ne, RVI_TYPE_F16, RVB_FILL_RANDOM);
	vector(w, "v.patch_embd.bias", W, RVB_FILL_ZEROS);
	matrix(w, "v.position_embd.weight", W, MC_POS);
	for (int il = 0; il < MC_BLOCKS; il++) {
#define TN(s) (snprintf(n, sizeof(n), "v.blk.%d." s, il), n)
		static const char *const proj[] = {"attn_q", "attn_k", "attn_v", "attn_out"};
		for (int i = 0; i < 4; i++) {
			char b[64];
			snprintf(n, sizeof(n), "v.blk.%d.%s.weight", il, proj[i]);
			matrix(w, n, W, W);
			snprintf(b, sizeof(b), "v.blk.%d.%s.bias", il, proj[i]);
			vector(w, b, W, RVB_FILL_ZEROS);
		}
		vector(w, TN("ln1.weight"), W, RVB_FILL_ONES);
		vector(w, TN("ln1.bias"), W, RVB_FILL_ZEROS);
		/* the converter's swapped names: ffn_down is fc1 (W -> F) */
		matrix(w, TN("ffn_down.weight"), W, MC_FF);
		vector(w, TN("ffn_down.bias"), MC_FF, RVB_FILL_ZEROS);
		matrix(w, TN("ffn_up.weight"), MC_FF, W);
		vector(w, TN("ffn_up.bias"), W, RVB_FILL_ZEROS);
		vector(w, TN("ln2.weight"), W, RVB_FILL_ONES);
		vector(w, TN("ln2.bias"), W, RVB_FILL_ZEROS);
#undef TN
	}
	vector(w, "v.post_ln.weight", W, RVB_FILL_ONES);
	vector(w, "v.post_ln.bias", W, RVB_FILL_ZEROS);
	return w->oom ? RV_ERR_NOMEM : RV_OK;
}

/* Multiply-adds x 2 of one encoder pass over an image of n patches:
 * SigLIP (patch conv, q/k/v/out, scores and values, MLP) and the
 * resampler (kv, keys and values, queries, scores and values, out, proj). */
static double pass_flops(double n)
{
	const double W = MC_EMBD, F = MC_FF, D = MC_TEXT, Q = MC_QUERIES;
	const double vit = 2 * n * 3 * MC_PATCH * MC_PATCH * W +
	                   MC_BLOCKS * (2 * n * 4 * W * W + 2 * 2 * n * n * W + 2 * 2 * n * W * F);
	const double rs = 2 * n * W * D + 2 * 2 * n * D * D + 2 * Q * D * D + 2 * 2 * Q * n * D +
	                  2 * 2 * Q * D * D;
	return vit + rs;
}

double rvb_minicpmv_flops(const rvi_pixels *px)
{
	double flops = 0;
	for (int64_t k = 0; k < px->shape.rows / MC_QUERIES; k++) {
		const int w = k ? px->w2 : px->w, h = k ? px->h2 : px->h;
		flops += pass_flops((double)(w / MC_PATCH) * (h / MC_PATCH));
	}
	return flops;
}

typedef struct point {
	int side, images;
	double flops;
	rvb_stats ms;
} point;

/* Preprocessing and encoding of a side x side random image, reps times
 * after one unmeasured pass (which faults the mapped weights in) unless warm. */
static int measure(const rvb_opts *o, const void *model, int side, bool warm, point *pt,
                   rvi_err *err)
{
	const rvi_vision_arch *a = &rvi_minicpmv_arch;
	rvi_image img = {0};
	int rc = rvi_image_new(side, side, &img, err);
	if (rc != RV_OK)
		return rc;
	uint64_t rng = 11;
	for (size_t i = 0; i < (size_t)side * side * 3; i++)
		img.rgb[i] = (uint8_t)(rvb_rand(&rng) >> 56);
	const int reps = o->reps > 0 ? o->reps : 1;
	double *ms = calloc((size_t)reps, sizeof(double));
	float *out = NULL;
	for (int r = warm ? 0 : -1; rc == RV_OK && r < reps && ms; r++) {
		const double t = rvi_now_ms();
		rvi_pixels px = {0};
		rc = a->preprocess(model, &img, NULL, &px, err);
		if (rc == RV_OK && !out)
			out = malloc((size_t)(px.shape.rows * MC_TEXT) * sizeof(float));
		if (rc == RV_OK)
			rc = out ? a->encode(model, &px, o->n_threads, out, err)
			         : rvi_errorf(err, RV_ERR_NOMEM, "out of memory");
		if (r >= 0)
			ms[r] = rvi_now_ms() - t;
		pt->images = (int)(px.shape.rows / MC_QUERIES);
		pt->flops = rvb_minicpmv_flops(&px);
		rvi_pixels_free(&px);
	}
	pt->side = side;
	if (rc == RV_OK && !ms)
		rc = rvi_errorf(err, RV_ERR_NOMEM, "out of memory");
	if (rc == RV_OK)
		pt->ms = rvb_stats_of(ms, reps);
	free(ms);
	free(out);
	rvi_image_free(&img);
	return rc;
}

int rvb_bench_minicpmv(const rvb_opts *o)
{
	char dir[4096], path[4200];
	rvi_err err = {0};
	rvb_gguf_writer w;
	rvb_gguf_init(&w);
	int rc = rvb_cache_dir(o, dir, sizeof(dir), &err);
	if (rc == RV_OK) {
		snprintf(path, sizeof(path), "%s/minicpmv-2.6-vision-random-v2-f16.gguf", dir);
		rc = rvb_minicpmv_build(&w);
		bool made;
		rc = rc != RV_OK ? rvi_errorf(&err, rc, "out of memory describing the projector")
		                 : rvb_materialize(&w, dir, path, 0x3c9f0000ull, &made, &err);
	}
	rvb_gguf_free(&w);
	rvb_opts fo = *o; /* the text side's run (families.c) */
	fo.families = "minicpmv-2.6";
	if (rc != RV_OK || o->generate_only) {
		if (rc == RV_OK)
			printf("%s\n", path);
		else
			fprintf(stderr, "rlaifv-bench: %s\n", err.msg);
		if (rc == RV_OK && !o->model)
			return rvb_bench_families(&fo);
		return rc == RV_OK ? BENCH_EXIT_OK : BENCH_EXIT_MODEL;
	}
	rvi_gguf *g = NULL;
	void *model = NULL;
	rvb_limits lim;
	point pts[2];
	rc = rvi_gguf_open(&g, path, &err);
	if (rc == RV_OK)
		rc = rvi_minicpmv_arch.load(g, &model, &err);
	rvb_log("%d threads; measuring sgemm", o->n_threads);
	if (rc == RV_OK)
		rc = rvb_measure_limits(o, &lim, &err);
	static const int sides[2] = {MC_SLICE, 3 * MC_SLICE};
	for (int i = 0; i < 2 && rc == RV_OK; i++) {
		rvb_log("MiniCPM-V image encode, %dx%d", sides[i], sides[i]);
		/* the weights are in memory after the first image */
		rc = measure(o, model, sides[i], i > 0, &pts[i], &err);
		if (rc == RV_OK)
			rvb_log("  %d encoder passes, %.1f ms", pts[i].images, pts[i].ms.median);
		if (rc == RV_OK)
			rc = rvb_sample_limits(o, &lim, &err);
	}
	if (model)
		rvi_minicpmv_arch.free(model);
	rvi_gguf_close(g);
	if (rc != RV_OK) {
		fprintf(stderr, "rlaifv-bench: %s\n", err.msg);
		return BENCH_EXIT_RUNTIME;
	}
	printf("MiniCPM-V 2.6-shaped image encoder (random F16 weights), %d threads, kernels %s\n",
	       o->n_threads, rv_kernel_set());
	printf("sgemm %.1f GFLOP/s (median of %d)\n", lim.sgemm_gflops.median, lim.sgemm_gflops.n);
	printf("%-12s %7s %10s %12s %10s %10s\n", "image", "passes", "GFLOP", "prep+enc ms",
	       "GFLOP/s", "of sgemm");
	for (int i = 0; i < 2; i++) {
		const double gf = rvb_gflops(pts[i].flops, pts[i].ms.median);
		printf("%5dx%-6d %7d %10.1f %12.1f %10.1f %10.2f\n", pts[i].side, pts[i].side,
		       pts[i].images, pts[i].flops / 1e9, pts[i].ms.median, gf,
		       rvb_ratio(gf, lim.sgemm_gflops.median));
	}
	if (o->model) {
		/* the text side, as the default run reports a model */
		rvb_report rep = {.opts = o, .kernels = rv_kernel_set(), .blas = rv_blas_info()};
		rvb_model_result mr;
		rep.limits = lim;
		const char *base = strrchr(o->model, '/');
		rvb_log("model %s", o->model);
		if ((rc = rvb_sample_limits(o, &rep.limits, &err)) ||
		    (rc = rvb_measure_model(o, o->model, base ? base + 1 : o->model, &mr, &err))) {
			fprintf(stderr, "rlaifv-bench: %s\n", err.msg);
			return BENCH_EXIT_RUNTIME;
		}
		rep.models = &mr;
		rep.n_models = 1;
		rvb_apply_limits(&rep);
		printf("\n");
		rvb_print_table(stdout, &rep);
	} else {
		/* the text side: a Qwen2-7B-shaped model, the image's rows
		 * cached, through families.c's measurements */
		printf("\n");
		fflush(stdout);
		return rvb_bench_families(&fo);
	}
	return fflush(stdout) == 0 ? BENCH_EXIT_OK : BENCH_EXIT_RUNTIME;
}
