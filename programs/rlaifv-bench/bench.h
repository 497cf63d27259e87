/* bench.h: what the parts of rlaifv-bench share: its options, the random
 * models it generates (models.c), the measurements (run.c) and
 * their results, printed as a table or JSON (report.c). The
 * arithmetic on the results lives in stats.h; the GGUF writer in
 * gguf_writer.h. The tool reaches past the public API (it links the
 * internal library) because it times single forward passes and kernels. */
#ifndef RLAIFV_BENCH_H
#define RLAIFV_BENCH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "programs/rlaifv-bench/stats.h"
#include "simd/kernels.h"
#include "src/tensor.h"
#include "src/util.h"

enum bench_exit {
	BENCH_EXIT_OK = 0,
	BENCH_EXIT_RUNTIME = 1, /* a measurement failed */
	BENCH_EXIT_USAGE = 2,
	BENCH_EXIT_MODEL = 3, /* a model could not be generated or loaded */
};

/* Weight-type variants of the generated 1.1B model. */
typedef enum rvb_variant {
	RVB_F32,
	RVB_F16,
	RVB_Q8_0,
	RVB_Q4_0,
	RVB_Q4_K_M,
	RVB_Q5_K,
	RVB_Q6_K,
	RVB_N_VARIANTS
} rvb_variant;

/* "q4_k_m" -> RVB_Q4_K_M (case-insensitive); -1 when unknown. */
int rvb_variant_parse(const char *s);
const char *rvb_variant_name(rvb_variant v); /* "Q4_K_M" */

#define RVB_MAX_POINTS 4  /* prefill sizes, decode depths, best-of-N sizes */
#define RVB_MAX_REPS   64 /* repetitions are summarised in fixed arrays */

typedef struct rvb_opts {
	int n_threads;
	bool variants[RVB_N_VARIANTS]; /* generated text models to run */
	enum rvi_type vision_type;     /* F16 or F32 */
	bool no_vision;
	const char *model;  /* a real text model instead of generated ones */
	const char *mmproj; /* a real projector */
	const char *cache_dir;
	int reps;
	int decode_tokens; /* tokens timed per decode measurement */
	int n_predict;     /* tokens per best-of-N candidate */
	int stream_mib;    /* size of the read-bandwidth array */
	int sgemm_n;       /* the sgemm limit is measured at n^3 */
	int prompt_tokens; /* about this many in the best-of-N prompt */
	int prefill[RVB_MAX_POINTS], n_prefill;
	int depth[RVB_MAX_POINTS], n_depth;
	int bon[RVB_MAX_POINTS], n_bon;
	int batch_tasks;                /* --batch-tasks: the batch bench instead (batch.c) */
	int par[RVB_MAX_POINTS], n_par; /* --parallel-list: tasks decoded together */
	bool kernels;                   /* the kernel micro-benchmark instead */
	bool minicpmv;                  /* the MiniCPM-V image encoder instead */
	const char *tokenizers; /* comma-separated vocabulary files: tokenizer speed instead */
	const char *families;   /* comma-separated VLM shapes (families.c) instead */
	bool gemma3;            /* the Gemma 3 4B text bench instead (gemma3.c) */
	bool quick;
	bool json;
	bool generate_only;
	bool gemma3_vision; /* the Gemma 3 image encoder instead */
} rvb_opts;

/* Parses argv into o. Returns -1 to go on, else the exit code (after
 * --help, --version or a usage error, already printed). */
int rvb_parse_args(int argc, char **argv, rvb_opts *o);

/* --gemma3-vision: the image encoder of a generated Gemma-3-shaped
 * projector beside the sgemm rate (gemma3_vision.c); prints its own lines
 * and returns the exit code. It writes its model with rvb_materialize
 * (models.c): path in dir unless a file of the size w describes is there. */
int rvb_bench_gemma3_vision(const rvb_opts *o);
struct rvb_gguf_writer;
int rvb_materialize(const struct rvb_gguf_writer *w, const char *dir, const char *path,
                    uint64_t seed, bool *generated, rvi_err *err);

/* ---- generated models (models.c) --------------------------------- */

/* The cache directory: --cache-dir, else $XDG_CACHE_HOME/rlaifv/bench, else
 * ~/.cache/rlaifv/bench; created when missing. */
int rvb_cache_dir(const rvb_opts *o, char *out, size_t size, rvi_err *err);

/* Path of the generated text model of variant v in dir, written first when
 * it is not there yet (after checking the free space); *generated says
 * whether it was. */
int rvb_text_model(const char *dir, rvb_variant v, char *path, size_t size, bool *generated,
                   rvi_err *err);

/* The text of the k-th synthetic vocabulary piece (k >= 0) into s (16
 * bytes): a distinct letter string, with the SentencePiece space mark
 * when k is even, so that any text tokenizes. */
void rvb_piece_text(int k, char *s);

/* The same for the CLIP ViT-L/14-336 projector of weight type t (F16, F32). */
int rvb_vision_model(const char *dir, enum rvi_type t, char *path, size_t size, bool *generated,
                     rvi_err *err);

/* Writes the tokenizer keys of a SentencePiece vocabulary of n_vocab
 * synthetic tokens (<unk>, <s>, </s>, the byte tokens, letter pieces) whose
 * last n_specials ids are the given control tokens. */
struct rvb_gguf_writer;
int rvb_gguf_spm_vocab(struct rvb_gguf_writer *w, int n_vocab, const char *const *specials,
                       int n_specials);

/* A ViT block's tensors v.blk.il.*: (W, W) attention projections and
 * their biases, pre-norms (LayerNorm weight and bias, or with swiglu the
 * RMSNorm weight alone) and the MLP (W -> F -> W with biases, and with
 * swiglu a gate): CLIP / SigLIP, or Qwen2.5-VL's blocks. */
void rvb_gguf_vit_block(struct rvb_gguf_writer *w, int il, int64_t W, int64_t F, enum rvi_type t,
                        bool swiglu);

/* Writes path unless a file of the size w describes is there (the name
 * carries the generator version); *generated says whether it wrote. */
int rvb_materialize(const struct rvb_gguf_writer *w, const char *dir, const char *path,
                    uint64_t seed, bool *generated, rvi_err *err);

/* --family LIST: the VLM-shaped benchmarks (families.c); prints its own
 * report and returns the exit code. */
int rvb_bench_families(const rvb_opts *o);
/* A w x h PPM of smooth colours at path (what it shows does not change
 * the work), for the image benchmarks. */
int rvb_write_image(const char *path, int w, int h, rvi_err *err);

/* --batch-tasks N: tasks per hour and aggregate tokens/s of N image
 * questions answered K at a time for each K of --parallel-list, on the
 * generated (or -m / --mmproj) models (batch.c); prints its own table
 * and returns the exit code. */
int rvb_bench_batch(const rvb_opts *o);

/* --minicpmv: a MiniCPM-V-2.6-shaped image encoder at 1 and 9 slices
 * (minicpmv.c), then (without -m) the text side with an image through
 * --family minicpmv-2.6; prints its own tables and returns the exit code. */
int rvb_bench_minicpmv(const rvb_opts *o);
/* The MiniCPM-V 2.6-shaped projector's tensors and keys into w, and the
 * FLOPs of encoding px (every slice and the overview), for families.c. */
int rvb_minicpmv_build(struct rvb_gguf_writer *w);
struct rvi_pixels;
double rvb_minicpmv_flops(const struct rvi_pixels *px);

/* ---- results -------------------------------------------------------------- */

/* Samples of the limits are taken at the start and again before each
 * model, and pooled: the machine's bandwidth drifts over minutes (other
 * tenants of the host), and a ratio to a limit measured once, minutes
 * earlier, would carry that drift. */
#define RVB_MAX_LIMIT_SAMPLES (2 * RVB_MAX_REPS)

typedef struct rvb_limits {
	rvb_stats read_gbps;    /* GB/s (1e9 bytes) */
	rvb_stats sgemm_gflops; /* GFLOP/s */
	double stream_bytes;
	int sgemm_n;
	double bw[RVB_MAX_LIMIT_SAMPLES], gf[RVB_MAX_LIMIT_SAMPLES];
	int n_samples;
	bool blas_fallback; /* OpenBLAS runs its generic kernels on a CPU with wider ones */
} rvb_limits;

typedef struct rvb_vision_result {
	bool ran;
	char path[4096];
	const char *type;
	int64_t image_size, n_patches, n_layer, n_embd;
	double file_bytes;
	double load_ms;
	double flops;
	rvb_stats encode_ms;
	double gflops, ratio_sgemm; /* from the median */
	bool finite;
} rvb_vision_result;

typedef struct rvb_point {
	int size;         /* tokens, depth or N */
	rvb_stats ms;     /* per measurement */
	rvb_stats tok_s;  /* tokens/s (aggregate for best-of-N) */
	double flops;     /* prefill */
	double gflops;    /* prefill: from the median */
	double bytes_tok; /* decode: weights + KV read per token */
	double gbps;      /* decode: bytes/s from the median, in GB/s */
	double ratio;     /* of the limit (sgemm, bandwidth) or of single-stream */
	int tokens;       /* best-of-N: tokens decoded per run */
} rvb_point;

typedef struct rvb_model_result {
	char name[64];
	char path[4096];
	double file_bytes;
	double weight_bytes; /* read per decoded token */
	double kv_bytes;     /* the context's KV cache */
	int n_ctx;
	double load_ms;
	double rss_before_load; /* the process's baseline, part of peak_rss */
	double load_rss_growth; /* resident bytes that loading added */
	bool mapped;
	double peak_rss;
	double rss_budget;
	bool finite; /* the prefill logits were all finite */
	int prompt_tokens;
	rvb_llama_shape shape;
	rvb_point prefill[RVB_MAX_POINTS];
	int n_prefill;
	rvb_point decode[RVB_MAX_POINTS];
	int n_decode;
	rvb_point bon[RVB_MAX_POINTS];
	int n_bon;
} rvb_model_result;

typedef struct rvb_kernel_result {
	const char *isa;
	const char *type;
	double bytes;
	int64_t n_in, n_out;
	rvb_stats gbps;
	double ratio; /* median over the read bandwidth */
} rvb_kernel_result;

typedef struct rvb_report {
	const rvb_opts *opts;
	char date[32];
	char cpu[256];
	const char *kernels; /* the active set */
	const char *blas;
	char cache_dir[4096];
	rvb_limits limits;
	rvb_vision_result vision;
	rvb_model_result *models;
	int n_models;
	rvb_kernel_result *kern;
	int n_kern;
	const char *usable_isas[8];
	int n_usable_isas;
	/* the measured kernel choice ("auto" calibrated), when there is one */
	bool have_choice;
	rvk_choice choice;
} rvb_report;

/* ---- measurements (run.c) ------------------------------------------- */

/* Progress lines on stderr (the report itself goes to stdout). */
void rvb_log(const char *fmt, ...) RVI_PRINTF(1, 2);

/* --tokenizers: encode and decode speed of each vocabulary on a generated
 * mixed text (tokenizers.c); prints its own table and returns the exit
 * code. */
int rvb_bench_tokenizers(const rvb_opts *o);

/* --gemma3: a Gemma-3-4B-shaped random text model, generated once:
 * its KV bytes, prefill, decode and best-of-N (gemma3.c); prints its own
 * table and returns the exit code. */
int rvb_bench_gemma3(const rvb_opts *o);

/* o->reps samples of the limits into a zeroed *lim, then one more per call
 * of rvb_sample_limits (at most RVB_MAX_LIMIT_SAMPLES in all); the stats
 * cover every sample taken so far. */
int rvb_measure_limits(const rvb_opts *o, rvb_limits *lim, rvi_err *err);
int rvb_sample_limits(const rvb_opts *o, rvb_limits *lim, rvi_err *err);
int rvb_measure_vision(const rvb_opts *o, const char *path, rvb_vision_result *out, rvi_err *err);
int rvb_measure_model(const rvb_opts *o, const char *path, const char *name, rvb_model_result *out,
                      rvi_err *err);
/* The decode mat-vec of every weight type on every usable ISA. */
int rvb_measure_kernels(const rvb_opts *o, rvb_report *r, rvi_err *err);

/* The ratios of every figure of r to the limits (after the last sample). */
void rvb_apply_limits(rvb_report *r);

/* ---- output (report.c) ---------------------------------------------- */

void rvb_print_table(FILE *f, const rvb_report *r);
void rvb_print_json(FILE *f, const rvb_report *r);

#endif
