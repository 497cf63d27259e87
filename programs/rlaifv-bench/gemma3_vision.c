/* gemma3_vision.c: rlaifv-bench --gemma3-vision: the image encoder of a
 * Gemma-3-shaped projector (SigLIP-So400m at 896 pixels, patch 14: 4096
 * patches, 1152 wide, 27 blocks; the 4 x 4 pool to 256 rows and the input
 * projection to 2560) with random weights, generated into the cache like
 * the other models. Prints the encode time beside the sgemm rate measured
 * in the same run, and one block's parts (its six weight GEMMs, its
 * attention, its GELU) timed alone, the first two with their share of the
 * sgemm rate. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/gemma3_vision.h"
#include "programs/rlaifv-bench/bench.h"
#include "programs/rlaifv-bench/gguf_writer.h"
#include "src/attention.h"
#include "src/gguf.h"

enum {
	G3_IMAGE = 896,
	G3_PATCH = 14,
	G3_EMBD = 1152,
	G3_FF = 4304,
	G3_HEADS = 16,
	G3_BLOCKS = 27,
	G3_POOL = 4,
	G3_TEXT = 2560, /* Gemma 3 4B */
	G3_GENERATOR = 1,
};

/* SigLIP's pre-norm blocks v.blk.0.. as the converter writes them. */
static void add_blocks(rvb_gguf_writer *w, int64_t W, int64_t F, enum rvi_type t)
{
	const int64_t vw[1] = {W}, vf[1] = {F}, ww[2] = {W, W}, up[2] = {W, F}, down[2] = {F, W};
	static const char *const vecs[] = {"ln1.weight",  "ln1.bias",      "ln2.weight",
	                                   "ln2.bias",    "attn_q.bias",   "attn_k.bias",
	                                   "attn_v.bias", "attn_out.bias", "ffn_down.bias"};
	static const char *const mats[] = {"attn_q", "attn_k", "attn_v", "attn_out"};
	char n[64];
	for (int il = 0; il < G3_BLOCKS; il++) {
		for (size_t i = 0; i < sizeof(vecs) / sizeof(vecs[0]); i++) {
			snprintf(n, sizeof(n), "v.blk.%d.%s", il, vecs[i]);
			rvb_gguf_tensor_add(w, n, 1, vw, RVI_TYPE_F32,
			                    i % 2 == 0 && i < 4 ? RVB_FILL_ONES : RVB_FILL_ZEROS);
		}
		for (int i = 0; i < 4; i++) {
			snprintf(n, sizeof(n), "v.blk.%d.%s.weight", il, mats[i]);
			rvb_gguf_tensor_add(w, n, 2, ww, t, RVB_FILL_RANDOM);
		}
		snprintf(n, sizeof(n), "v.blk.%d.ffn_up.weight", il);
		rvb_gguf_tensor_add(w, n, 2, up, t, RVB_FILL_RANDOM);
		snprintf(n, sizeof(n), "v.blk.%d.ffn_up.bias", il);
		rvb_gguf_tensor_add(w, n, 1, vf, RVI_TYPE_F32, RVB_FILL_ZEROS);
		snprintf(n, sizeof(n), "v.blk.%d.ffn_down.weight", il);
		rvb_gguf_tensor_add(w, n, 2, down, t, RVB_FILL_RANDOM);
	}
}

static int build(rvb_gguf_writer *w, enum rvi_type t)
{
	static const float half[3] = {0.5f, 0.5f, 0.5f};
	const int64_t W = G3_EMBD, side = G3_IMAGE / G3_PATCH;
	rvb_gguf_str(w, "general.architecture", "clip");
	rvb_gguf_str(w, "general.name", "rlaifv-bench random Gemma 3 SigLIP-So400m");
	rvb_gguf_bool(w, "clip.has_vision_encoder", true);
	rvb_gguf_str(w, "clip.projector_type", "gemma3");
	rvb_gguf_u32(w, "clip.vision.image_size", G3_IMAGE);
	rvb_gguf_u32(w, "clip.vision.patch_size", G3_PATCH);
	rvb_gguf_u32(w, "clip.vision.embedding_length", G3_EMBD);
	rvb_gguf_u32(w, "clip.vision.feed_forward_length", G3_FF);
	rvb_gguf_u32(w, "clip.vision.projection_dim", G3_TEXT);
	rvb_gguf_u32(w, "clip.vision.attention.head_count", G3_HEADS);
	rvb_gguf_f32(w, "clip.vision.attention.layer_norm_epsilon", 1e-6f);
	rvb_gguf_u32(w, "clip.vision.block_count", G3_BLOCKS);
	rvb_gguf_arr_f32(w, "clip.vision.image_mean", half, 3);
	rvb_gguf_arr_f32(w, "clip.vision.image_std", half, 3);
	rvb_gguf_bool(w, "clip.use_gelu", true);
	/* the converter keeps the embeddings F32 and the projection F16 */
	const int64_t patch_ne[4] = {G3_PATCH, G3_PATCH, 3, W}, vec[1] = {W};
	const int64_t pos_ne[2] = {W, side * side}, proj_ne[2] = {G3_TEXT, W};
	rvb_gguf_tensor_add(w, "v.patch_embd.weight", 4, patch_ne, RVI_TYPE_F32, RVB_FILL_RANDOM);
	rvb_gguf_tensor_add(w, "v.patch_embd.bias", 1, vec, RVI_TYPE_F32, RVB_FILL_ZEROS);
	rvb_gguf_tensor_add(w, "v.position_embd.weight", 2, pos_ne, RVI_TYPE_F32, RVB_FILL_RANDOM);
	add_blocks(w, W, G3_FF, t);
	rvb_gguf_tensor_add(w, "v.post_ln.weight", 1, vec, RVI_TYPE_F32, RVB_FILL_ONES);
	rvb_gguf_tensor_add(w, "v.post_ln.bias", 1, vec, RVI_TYPE_F32, RVB_FILL_ZEROS);
	rvb_gguf_tensor_add(w, "mm.soft_emb_norm.weight", 1, vec, RVI_TYPE_F32, RVB_FILL_ONES);
	rvb_gguf_tensor_add(w, "mm.input_projection.weight", 2, proj_ne, RVI_TYPE_F16,
	                    RVB_FILL_RANDOM);
	return w->oom ? RV_ERR_NOMEM : RV_OK;
}

/* FLOPs of one encode: the patch conv, per block q/k/v/o, fc1/fc2 and
 * attention (q.k and att.v over all n x n pairs), the projection. */
static double encode_flops(const rvi_vit_hparams *hp, int64_t pool)
{
	const double n = (double)hp->n_patches, W = (double)hp->n_embd, F = (double)hp->n_ff;
	const double kpp = 3.0 * (double)(hp->patch_size * hp->patch_size);
	const double gemms = 2.0 * n * (4.0 * W * W + 2.0 * W * F), attn = 4.0 * n * n * W;
	return 2.0 * n * kpp * W + (gemms + attn) * (double)hp->n_layer +
	       2.0 * n / (double)(pool * pool) * W * (double)hp->n_mm_out;
}

static double median_of(double *v, int n)
{
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
			const double t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* One block's weight GEMMs and its attention, each timed alone (median of
 * reps) on random activations. */
static int time_parts(const rvb_opts *o, const rvi_gemma3v *m, double *gemm_ms, double *attn_ms,
                      double *gelu_ms, rvi_err *err)
{
	const rvi_vit_hparams *hp = &m->hp;
	const int64_t n = hp->n_patches, W = hp->n_embd, F = hp->n_ff;
	const rvi_vit_layer *L = &m->vit.layers[0];
	const rvi_attn_heads heads = {hp->n_head, hp->n_head, hp->head_dim,
	                              (float)(1.0 / sqrt((double)hp->head_dim))};
	float *x = rvi_alloc((size_t)(n * F), sizeof(float));
	float *y = rvi_alloc((size_t)(n * F), sizeof(float));
	float *q = rvi_alloc((size_t)(n * W), sizeof(float));
	float *k = rvi_alloc((size_t)(n * W), sizeof(float));
	float *v = rvi_alloc((size_t)(n * W), sizeof(float));
	float *sc = rvi_alloc(rvi_attn_full_scratch(&heads, n, o->n_threads), sizeof(float));
	double g[RVB_MAX_REPS], a[RVB_MAX_REPS], e[RVB_MAX_REPS];
	rvi_buf scr = {0};
	int rc = RV_OK;
	if (!x || !y || !q || !k || !v || !sc) {
		rc = rvi_errorf(err, RV_ERR_NOMEM, "out of memory for one block's activations");
		goto done;
	}
	uint64_t rng = 3;
	for (int64_t i = 0; i < n * F; i++)
		x[i] = (float)(rvb_rand(&rng) >> 40) * 0x1p-24f - 0.5f;
	for (int64_t i = 0; i < n * W; i++) {
		q[i] = x[i];
		k[i] = x[i + 1];
		v[i] = x[i + 2];
	}
	for (int r = 0; r <= o->reps && rc == RV_OK; r++) { /* pass 0 warms up */
		double t0 = rvi_now_ms();
		const rvi_weight *ws[6] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->fc1, &L->fc2};
		for (int i = 0; i < 6 && rc == RV_OK; i++)
			rc = rvi_vit_linear(ws[i], NULL, x, n, y, o->n_threads, &scr);
		if (r > 0)
			g[r - 1] = rvi_now_ms() - t0;
		t0 = rvi_now_ms();
		rvi_attn_full(&heads, q, k, v, y, n, NULL, 0, sc, o->n_threads);
		if (r > 0)
			a[r - 1] = rvi_now_ms() - t0;
		t0 = rvi_now_ms();
		rvi_vit_activate(x, n * F, RVI_VIT_GELU_TANH, o->n_threads);
		if (r > 0)
			e[r - 1] = rvi_now_ms() - t0;
	}
	if (rc != RV_OK)
		rc = rvi_errorf(err, rc, "a block's GEMM failed");
	*gemm_ms = median_of(g, o->reps);
	*attn_ms = median_of(a, o->reps);
	*gelu_ms = median_of(e, o->reps);
done:
	rvi_buf_free(&scr);
	free(x);
	free(y);
	free(q);
	free(k);
	free(v);
	free(sc);
	return rc;
}

int rvb_bench_gemma3_vision(const rvb_opts *o)
{
	char dir[4096], path[4200];
	rvi_err err = {0};
	rvb_limits lim;
	rvi_gguf *g = NULL;
	rvi_gemma3v m;
	memset(&m, 0, sizeof(m));
	float *px = NULL, *out = NULL;
	bool made;
	int rc = rvb_cache_dir(o, dir, sizeof(dir), &err);
	if (rc == RV_OK) {
		snprintf(path, sizeof(path), "%s/gemma3-siglip-so400m-896-random-v%d-%s.gguf", dir,
		         G3_GENERATOR, rvi_type_name((int)o->vision_type));
		rvb_gguf_writer w;
		rvb_gguf_init(&w);
		rc = build(&w, o->vision_type);
		rc = rc != RV_OK ? rvi_errorf(&err, rc, "out of memory describing the model")
		                 : rvb_materialize(&w, dir, path, 0x9e3a0000ull, &made, &err);
		rvb_gguf_free(&w);
	}
	if (rc == RV_OK) {
		rvb_log("%d threads; measuring sgemm", o->n_threads);
		rc = rvb_measure_limits(o, &lim, &err);
	}
	if (rc == RV_OK && (rc = rvi_gguf_open(&g, path, &err)) == RV_OK)
		rc = rvi_gemma3v_load(&m, g, &err);
	const rvi_vit_hparams *hp = &m.hp;
	const size_t S = (size_t)hp->image_size;
	const size_t n_out = (size_t)(rvi_gemma3v_rows_per_image(&m) * hp->n_mm_out);
	double ms[RVB_MAX_REPS];
	if (rc == RV_OK) {
		px = rvi_alloc(3 * S * S, sizeof(float));
		out = rvi_alloc(n_out, sizeof(float));
		if (!px || !out)
			rc = rvi_errorf(&err, RV_ERR_NOMEM, "out of memory for the image");
	}
	uint64_t rng = 7;
	for (size_t i = 0; px && i < 3 * S * S; i++)
		px[i] = (float)(rvb_rand(&rng) >> 40) * 0x1p-23f - 1.0f;
	/* the first pass faults the mapped weights in: not measured */
	for (int r = 0; r <= o->reps && rc == RV_OK; r++) {
		rvb_log("encode %d of %d", r, o->reps);
		const double t0 = rvi_now_ms();
		rc = rvi_gemma3v_encode(&m, px, 1, o->n_threads, out, NULL, &err);
		if (r > 0)
			ms[r - 1] = rvi_now_ms() - t0;
	}
	double gemm_ms = 0, attn_ms = 0, gelu_ms = 0;
	if (rc == RV_OK)
		rc = time_parts(o, &m, &gemm_ms, &attn_ms, &gelu_ms, &err);
	/* a limits sample after the encodes too: the machine's rate drifts
	 * over the minutes an encode takes (see rvb_limits) */
	if (rc == RV_OK)
		rc = rvb_sample_limits(o, &lim, &err);
	if (rc == RV_OK) {
		bool finite = true;
		for (size_t i = 0; i < n_out; i++)
			finite = finite && isfinite(out[i]);
		const double sgemm = lim.sgemm_gflops.median, med = median_of(ms, o->reps);
		const double flops = encode_flops(hp, m.pool);
		const double n = (double)hp->n_patches, W = (double)hp->n_embd;
		const double gf_gemm =
		    rvb_gflops(2.0 * n * (4.0 * W * W + 2.0 * W * hp->n_ff), gemm_ms);
		const double gf_attn = rvb_gflops(4.0 * n * n * W, attn_ms);
		const double gf = rvb_gflops(flops, med);
		printf("Gemma 3 vision encoder (random weights, %s): %lld px, patch %lld, %lld "
		       "patches, %lld wide, %lld blocks, %lld rows out\n",
		       rvi_type_name((int)o->vision_type), (long long)hp->image_size,
		       (long long)hp->patch_size, (long long)hp->n_patches, (long long)hp->n_embd,
		       (long long)hp->n_layer, (long long)rvi_gemma3v_rows_per_image(&m));
		printf("  %d threads; sgemm %.1f GFLOP/s (n = %d, median of %d before and after, "
		       "this run)\n",
		       o->n_threads, sgemm, lim.sgemm_n, lim.n_samples);
		printf(
		    "  image encode   %8.2f s  %7.1f GFLOP/s  %.2f of sgemm  (%.2f TFLOP, median "
		    "of %d)%s\n",
		    med / 1e3, gf, rvb_ratio(gf, sgemm), flops / 1e12, o->reps,
		    finite ? "" : "  NOT FINITE");
		printf("  one block: 6 weight GEMMs %7.1f ms  %7.1f GFLOP/s  %.2f of sgemm\n",
		       gemm_ms, gf_gemm, rvb_ratio(gf_gemm, sgemm));
		printf("  one block: attention      %7.1f ms  %7.1f GFLOP/s  %.2f of sgemm\n",
		       attn_ms, gf_attn, rvb_ratio(gf_attn, sgemm));
		printf("  one block: GELU-tanh      %7.1f ms  (%lld values)\n", gelu_ms,
		       (long long)(hp->n_patches * hp->n_ff));
	} else {
		fprintf(stderr, "rlaifv-bench: %s\n", err.msg);
	}
	free(px);
	free(out);
	if (m.vit.layers)
		rvi_gemma3v_free(&m);
	if (g)
		rvi_gguf_close(g);
	return rc == RV_OK          ? BENCH_EXIT_OK
	       : rc == RV_ERR_NOMEM ? BENCH_EXIT_RUNTIME
	                            : BENCH_EXIT_MODEL;
}
