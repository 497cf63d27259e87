/* stats.h: the arithmetic of rlaifv-bench, kept free of timing and I/O
 * so tests/test_bench.c can feed it known numbers: summary statistics of
 * repeated measurements, FLOP and byte counts derived from model shapes,
 * ratios of measured speeds to this machine's limits, and the issue's
 * targets. Nothing here measures anything. */
#ifndef RLAIFV_BENCH_STATS_H
#define RLAIFV_BENCH_STATS_H

#include <stdbool.h>
#include <stdint.h>

/* Targets of the "benchmark tool" issue, as fractions or multiples. */
#define RVB_TARGET_DECODE_BW     0.75 /* decode bytes/s over read bandwidth */
#define RVB_TARGET_PREFILL_SGEMM 1.7  /* prefill GFLOP/s over f32 sgemm GFLOP/s */
#define RVB_TARGET_VISION_SGEMM  0.9  /* vision GFLOP/s over f32 sgemm GFLOP/s */
#define RVB_TARGET_BON8_SPEEDUP  4.0  /* best-of-8 aggregate over single-stream tokens/s */
#define RVB_TARGET_RSS_SLACK     0.15 /* peak RSS over (file + KV cache) */
/* "Mapped, not read": loading may make at most this fraction of the file
 * resident (the tokenizer and norm vectors are copied; weights must not). */
#define RVB_TARGET_LOAD_RESIDENT 0.05

/* Summary of n repeated measurements. The median is what the tool reports
 * (robust to one disturbed run on a shared machine); min..max and the
 * median absolute deviation show the spread. */
typedef struct rvb_stats {
	int n;
	double median, min, max, mad;
} rvb_stats;

/* v is not modified; n == 0 gives all-NaN figures with n = 0. */
rvb_stats rvb_stats_of(const double *v, int n);

/* value / limit, NaN when the limit is not positive or either is NaN. */
double rvb_ratio(double value, double limit);

/* Fraction of the memory bandwidth bound that decoding reaches: it must
 * stream bytes_per_token per token, so the bound is bw / bytes_per_token
 * tokens/s and the ratio is tok_s * bytes_per_token / bw. */
double rvb_decode_bw_ratio(double tok_s, double bytes_per_token, double bw_bytes_per_s);

/* GFLOP/s of flops done in ms milliseconds (NaN for ms <= 0). */
double rvb_gflops(double flops, double ms);

/* Items per second for n items in ms milliseconds. */
double rvb_per_second(double n, double ms);

/* The shapes FLOPs and bytes are counted from (LLaMA decoder). */
typedef struct rvb_llama_shape {
	int64_t n_embd, n_layer, n_ff, n_head, n_head_kv, head_dim, n_vocab;
} rvb_llama_shape;

/* Multiply-adds x 2 of the per-layer matmuls for one token (q, k, v, o,
 * gate, up, down over all layers): 2 x their parameters. */
double rvb_llama_layer_flops_per_token(const rvb_llama_shape *s);

/* FLOPs of running n_tok tokens at positions n_past .. n_past+n_tok-1:
 * the layer matmuls, causal attention (q.k and the weighted sum of v, each
 * 2 x head_dim per head per attended position, position p attending p+1
 * positions), and the output matmul for n_logit_rows rows (1 in a prefill,
 * which only needs the last position's logits). Norms, RoPE and softmax
 * are left out: a few FLOPs per element, not per weight. */
double rvb_llama_flops(const rvb_llama_shape *s, int64_t n_past, int64_t n_tok,
                       int64_t n_logit_rows);

/* Bytes of f32 KV cache one decoded token reads with n_ctx positions in the
 * cache: keys and values of every layer (n_layer x n_ctx x kv_dim x 2 x 4). */
double rvb_llama_kv_read_bytes(const rvb_llama_shape *s, int64_t n_ctx);

/* Bytes of an f32 KV cache of n_ctx positions (what a context allocates). */
double rvb_llama_kv_cache_bytes(const rvb_llama_shape *s, int64_t n_ctx);

/* The CLIP ViT + MLP projector shapes. */
typedef struct rvb_clip_shape {
	int64_t image_size, patch_size, n_embd, n_ff, n_layer, n_mm_hidden, n_mm_out;
} rvb_clip_shape;

/* FLOPs of encoding one image: the patch convolution (as a matmul), per
 * block q/k/v/o and the two MLP matmuls over n_patches + 1 rows, full
 * attention (4 x n^2 x width), and the projector's two matmuls over the
 * patch rows. */
double rvb_clip_flops(const rvb_clip_shape *s);

/* Peak-memory budget: (file + KV cache) x (1 + slack). */
double rvb_rss_budget(double file_bytes, double kv_bytes, double slack);

/* True when loading made at most RVB_TARGET_LOAD_RESIDENT of the file
 * resident: the weights were mapped, not read. */
bool rvb_load_mapped(double rss_growth_bytes, double file_bytes);

#endif
