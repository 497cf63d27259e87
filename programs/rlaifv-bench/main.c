/* main.c: rlaifv-bench's command line and the order of a run: parse
 * the options (every one is documented in man/rlaifv-bench.1, which
 * tests/man.test checks against the table below), make or find the models,
 * measure the machine's limits, the vision encoder and each text model (or
 * the kernels), and print the report. */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include "programs/rlaifv-bench/bench.h"

#include "programs/numflag.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "simd/kernels.h"

static void usage(FILE *f)
{
	static const char text[] =
	    "Usage: rlaifv-bench [options]\n"
	    "       rlaifv-bench --kernels [options]\n"
	    "Measure rlaifv on this machine with random-weight models of real shapes (a 1.1B\n"
	    "LLaMA and a CLIP ViT-L/14-336 projector, generated once and cached), next to\n"
	    "the machine's own limits: read bandwidth and OpenBLAS sgemm.\n"
	    "\n"
	    "What to measure:\n"
	    "      --types LIST        generated text models: f32, f16, q8_0, q4_0, q4_k_m,\n"
	    "                          q5_k, q6_k or all, comma-separated\n"
	    "                          (default q4_0,q4_k_m,q8_0)\n"
	    "      --vision-type T     generated projector: f16, f32 or none (default f16)\n"
	    "      --gemma3-vision     time the image encoder of a Gemma-3-shaped projector\n"
	    "                          (SigLIP-So400m, 896 px: 4096 patches) instead\n"
	    "  -m, --model FILE        measure this text model instead of generated ones\n"
	    "      --mmproj FILE       measure this projector instead of a generated one\n"
	    "      --tokenizers LIST   measure tokenizing speed (MB/s) of these vocabulary\n"
	    "                          GGUF files (comma-separated) instead of models\n"
	    "      --family LIST       measure vision-language models of real shapes end to\n"
	    "                          end: smolvlm-256m, smolvlm2-2.2b, qwen25vl-3b,\n"
	    "                          minicpmv-2.6 or all\n"
	    "      --kernels           measure the decode mat-vec of each weight type on each\n"
	    "                          kernel set instead of models\n"
	    "      --gemma3            a Gemma-3-4B-shaped text model instead: KV bytes at\n"
	    "                          1k/8k/32k, prefill, decode, best-of-N\n"
	    "      --minicpmv          measure a MiniCPM-V-2.6-shaped image encoder at 1\n"
	    "                          and 9 slices, then its text side (Qwen2-7B-shaped,\n"
	    "                          or -m) with an image instead of models (6 GB generated)\n"
	    "      --batch-tasks N     tasks/hour and aggregate tokens/s of N image questions\n"
	    "                          (one answer each, -n tokens) answered K at a time,\n"
	    "                          as rlaifv-infer --batch --parallel K, instead\n"
	    "      --parallel-list LIST  the K values (default 1,4,8)\n"
	    "      --generate-only     make the models and stop\n"
	    "      --cache-dir DIR     where generated models are kept\n"
	    "                          (default $XDG_CACHE_HOME/rlaifv/bench)\n"
	    "How:\n"
	    "  -t, --threads N         threads (default: $RLAIFV_THREADS or physical cores)\n"
	    "  -r, --reps N            repetitions of every measurement (default 3)\n"
	    "      --prefill LIST      prompt sizes to time (default 128,512)\n"
	    "      --depths LIST       cache depths to time decoding at (default 128,1024)\n"
	    "      --decode-tokens N   tokens per decode measurement (default 32)\n"
	    "      --best-of LIST      candidate counts (default 1,4,8)\n"
	    "  -n, --n-predict N       tokens per candidate (default 32)\n"
	    "      --prompt-tokens N   length of the best-of-N prompt (default 128)\n"
	    "      --stream-mib N      size of the bandwidth test array (default 1024)\n"
	    "      --sgemm-n N         size of the sgemm test (default 2048)\n"
	    "      --quick             tiny sizes and one repetition (a smoke test)\n"
	    "Output:\n"
	    "      --json              print one JSON object instead of the table\n"
	    "  -h, --help              show this help\n"
	    "      --version           show version, kernel set and BLAS\n"
	    "\n"
	    "Progress goes to stderr. Exit status: 0 ok, 1 a measurement failed, 2 usage\n"
	    "error, 3 a model could not be generated or loaded.\n";
	fputs(text, f);
}

enum long_only {
	OPT_TYPES = 256,
	OPT_VISION_TYPE,
	OPT_GEMMA3_VISION,
	OPT_MMPROJ,
	OPT_KERNELS,
	OPT_GENERATE_ONLY,
	OPT_CACHE_DIR,
	OPT_PREFILL,
	OPT_DEPTHS,
	OPT_DECODE_TOKENS,
	OPT_BEST_OF,
	OPT_PROMPT_TOKENS,
	OPT_STREAM_MIB,
	OPT_SGEMM_N,
	OPT_QUICK,
	OPT_JSON,
	OPT_VERSION,
	OPT_TOKENIZERS,
	OPT_FAMILY,
	OPT_GEMMA3,
	OPT_MINICPMV,
	OPT_BATCH_TASKS,
	OPT_PARALLEL_LIST,
};

static const struct option long_options[] = {
    {"types", required_argument, 0, OPT_TYPES},
    {"vision-type", required_argument, 0, OPT_VISION_TYPE},
    {"gemma3-vision", no_argument, 0, OPT_GEMMA3_VISION},
    {"model", required_argument, 0, 'm'},
    {"mmproj", required_argument, 0, OPT_MMPROJ},
    {"kernels", no_argument, 0, OPT_KERNELS},
    {"tokenizers", required_argument, 0, OPT_TOKENIZERS},
    {"family", required_argument, 0, OPT_FAMILY},
    {"gemma3", no_argument, 0, OPT_GEMMA3},
    {"minicpmv", no_argument, 0, OPT_MINICPMV},
    {"batch-tasks", required_argument, 0, OPT_BATCH_TASKS},
    {"parallel-list", required_argument, 0, OPT_PARALLEL_LIST},
    {"generate-only", no_argument, 0, OPT_GENERATE_ONLY},
    {"cache-dir", required_argument, 0, OPT_CACHE_DIR},
    {"threads", required_argument, 0, 't'},
    {"reps", required_argument, 0, 'r'},
    {"prefill", required_argument, 0, OPT_PREFILL},
    {"depths", required_argument, 0, OPT_DEPTHS},
    {"decode-tokens", required_argument, 0, OPT_DECODE_TOKENS},
    {"best-of", required_argument, 0, OPT_BEST_OF},
    {"n-predict", required_argument, 0, 'n'},
    {"prompt-tokens", required_argument, 0, OPT_PROMPT_TOKENS},
    {"stream-mib", required_argument, 0, OPT_STREAM_MIB},
    {"sgemm-n", required_argument, 0, OPT_SGEMM_N},
    {"quick", no_argument, 0, OPT_QUICK},
    {"json", no_argument, 0, OPT_JSON},
    {"help", no_argument, 0, 'h'},
    {"version", no_argument, 0, OPT_VERSION},
    {0, 0, 0, 0},
};

static int parse_int(const char *flag, const char *s, long lo, long hi, int *out)
{
	return rvp_parse_int("rlaifv-bench", flag, s, lo, hi, out);
}

/* "128,512": 1 to RVB_MAX_POINTS integers in [lo, hi]. */
static int parse_list(const char *flag, const char *s, long lo, long hi, int *out, int *n)
{
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", s);
	*n = 0;
	for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (*n == RVB_MAX_POINTS) {
			fprintf(stderr, "rlaifv-bench: %s: at most %d values\n", flag,
			        RVB_MAX_POINTS);
			return -1;
		}
		if (parse_int(flag, tok, lo, hi, &out[(*n)++]) != 0)
			return -1;
	}
	if (*n == 0) {
		fprintf(stderr, "rlaifv-bench: %s: no values in '%s'\n", flag, s);
		return -1;
	}
	return 0;
}

static int parse_types(const char *s, rvb_opts *o)
{
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", s);
	memset(o->variants, 0, sizeof(o->variants));
	int n = 0;
	for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save), n++) {
		if (!strcasecmp(tok, "all")) {
			for (int v = 0; v < RVB_N_VARIANTS; v++)
				o->variants[v] = true;
			continue;
		}
		const int v = rvb_variant_parse(tok);
		if (v < 0) {
			fprintf(
			    stderr,
			    "rlaifv-bench: --types: unknown type '%s' (expected f32, f16, q8_0, "
			    "q4_0, q4_k_m, q5_k, q6_k or all)\n",
			    tok);
			return -1;
		}
		o->variants[v] = true;
	}
	if (n == 0) {
		fprintf(stderr, "rlaifv-bench: --types: no types given\n");
		return -1;
	}
	return 0;
}

static int print_version(void)
{
	char err[256];
	if (rv_select_kernels(NULL, err, sizeof(err)) != RV_OK) { /* $RLAIFV_ISA */
		fprintf(stderr, "rlaifv-bench: %s\n", err);
		return BENCH_EXIT_USAGE;
	}
	printf("rlaifv-bench %s\nkernels: %s\nBLAS: %s\n", rv_version(), rv_kernel_set(),
	       rv_blas_info());
	return BENCH_EXIT_OK;
}

/* Options whose default depends on --quick start at -1 ("not given"). */
static void apply_defaults(rvb_opts *o)
{
	const bool q = o->quick;
#define DEFAULT(field, normal, quick)                                                              \
	if (o->field < 0)                                                                          \
	o->field = q ? (quick) : (normal)
	DEFAULT(reps, 3, 1);
	DEFAULT(decode_tokens, 32, 4);
	DEFAULT(n_predict, 32, 4);
	DEFAULT(prompt_tokens, 128, 16);
	DEFAULT(stream_mib, 1024, 64);
	DEFAULT(sgemm_n, 2048, 256);
#undef DEFAULT
	if (o->n_prefill == 0) {
		o->prefill[o->n_prefill++] = q ? 16 : 128;
		o->prefill[o->n_prefill++] = q ? 64 : 512;
	}
	if (o->n_depth == 0) {
		o->depth[o->n_depth++] = q ? 16 : 128;
		o->depth[o->n_depth++] = q ? 64 : 1024;
	}
	if (o->n_bon == 0) {
		o->bon[o->n_bon++] = 1;
		o->bon[o->n_bon++] = 4;
		o->bon[o->n_bon++] = 8;
	}
	if (o->n_par == 0) {
		o->par[o->n_par++] = 1;
		o->par[o->n_par++] = 4;
		o->par[o->n_par++] = 8;
	}
	if (o->n_threads <= 0)
		o->n_threads = rv_default_threads();
}

/* One option; 0, -1 after printing why its value is bad, or an exit code
 * (>= 0) for options that end the program. */
static int take_option(int c, const char *arg, rvb_opts *o)
{
	switch (c) {
	case OPT_TYPES:
		return parse_types(arg, o);
	case OPT_VISION_TYPE:
		o->no_vision = !strcasecmp(arg, "none");
		if (!strcasecmp(arg, "f16"))
			o->vision_type = RVI_TYPE_F16;
		else if (!strcasecmp(arg, "f32"))
			o->vision_type = RVI_TYPE_F32;
		else if (!o->no_vision) {
			fprintf(stderr,
			        "rlaifv-bench: --vision-type: '%s' is not f16, f32 or none\n", arg);
			return -1;
		}
		return 0;
	case 'm':
		o->model = arg;
		return 0;
	case OPT_MMPROJ:
		o->mmproj = arg;
		return 0;
	case OPT_GEMMA3_VISION:
		o->gemma3_vision = true;
		return 0;
	case OPT_KERNELS:
		o->kernels = true;
		return 0;
	case OPT_MINICPMV:
		o->minicpmv = true;
		return 0;
	case OPT_TOKENIZERS:
		o->tokenizers = arg;
		return 0;
	case OPT_FAMILY:
		o->families = arg;
		return 0;
	case OPT_GEMMA3:
		o->gemma3 = true;
		return 0;
	case OPT_GENERATE_ONLY:
		o->generate_only = true;
		return 0;
	case OPT_BATCH_TASKS:
		return parse_int("--batch-tasks", arg, 1, 1 << 20, &o->batch_tasks);
	case OPT_PARALLEL_LIST:
		return parse_list("--parallel-list", arg, 1, RV_MAX_PARALLEL, o->par, &o->n_par);
	case OPT_CACHE_DIR:
		o->cache_dir = arg;
		return 0;
	case 't':
		return parse_int("-t", arg, 1, 1024, &o->n_threads);
	case 'r':
		return parse_int("-r", arg, 1, RVB_MAX_REPS, &o->reps);
	case OPT_PREFILL:
		return parse_list("--prefill", arg, 1, 1 << 16, o->prefill, &o->n_prefill);
	case OPT_DEPTHS:
		return parse_list("--depths", arg, 0, 1 << 20, o->depth, &o->n_depth);
	case OPT_DECODE_TOKENS:
		return parse_int("--decode-tokens", arg, 1, 4096, &o->decode_tokens);
	case OPT_BEST_OF:
		return parse_list("--best-of", arg, 1, RV_MAX_CANDIDATES, o->bon, &o->n_bon);
	case 'n':
		return parse_int("-n", arg, 1, 4096, &o->n_predict);
	case OPT_PROMPT_TOKENS:
		return parse_int("--prompt-tokens", arg, 1, 1 << 16, &o->prompt_tokens);
	case OPT_STREAM_MIB:
		return parse_int("--stream-mib", arg, 1, 1 << 16, &o->stream_mib);
	case OPT_SGEMM_N:
		return parse_int("--sgemm-n", arg, 16, 16384, &o->sgemm_n);
	case OPT_QUICK:
		o->quick = true;
		return 0;
	case OPT_JSON:
		o->json = true;
		return 0;
	case 'h':
		usage(stdout);
		return BENCH_EXIT_OK;
	case OPT_VERSION:
		return print_version();
	}
	return -1;
}

int rvb_parse_args(int argc, char **argv, rvb_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->variants[RVB_Q4_0] = o->variants[RVB_Q4_K_M] = o->variants[RVB_Q8_0] = true;
	o->vision_type = RVI_TYPE_F16;
	o->reps = o->decode_tokens = o->n_predict = o->prompt_tokens = -1;
	o->stream_mib = o->sgemm_n = -1;
	opterr = 0;
	for (int c; (c = getopt_long(argc, argv, ":t:r:m:n:h", long_options, NULL)) != -1;) {
		if (c == ':') {
			fprintf(stderr, "rlaifv-bench: option %s needs a value\n",
			        argv[optind - 1]);
			return BENCH_EXIT_USAGE;
		}
		if (c == '?') {
			fprintf(stderr, "rlaifv-bench: unknown option '%s' (see --help)\n",
			        argv[optind - 1]);
			return BENCH_EXIT_USAGE;
		}
		const int r = take_option(c, optarg, o);
		if (r < 0)
			return BENCH_EXIT_USAGE;
		if (c == 'h' || c == OPT_VERSION)
			return r;
	}
	if (optind < argc) {
		fprintf(stderr, "rlaifv-bench: unexpected argument '%s' (see --help)\n",
		        argv[optind]);
		return BENCH_EXIT_USAGE;
	}
	apply_defaults(o);
	return -1;
}

/* ---- the run ----------------------------------------------------------------------- */

/* "vendor family F model M, name": the CPU every figure was measured on. */
static void cpu_name(char *out, size_t size)
{
	rvk_cpu cpu;
	rvk_cpu_info(&cpu);
	snprintf(out, size, "%s family %d model %d, %s", cpu.vendor, cpu.family, cpu.model,
	         cpu.name);
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

static int status_exit(int rc)
{
	return rc == RV_ERR_MODEL || rc == RV_ERR_UNSUPPORTED || rc == RV_ERR_IO
	           ? BENCH_EXIT_MODEL
	           : BENCH_EXIT_RUNTIME;
}

int main(int argc, char **argv)
{
	rvb_opts o;
	int code = rvb_parse_args(argc, argv, &o);
	if (code >= 0)
		return code;
	if (o.tokenizers)
		return rvb_bench_tokenizers(&o);
	if (o.families)
		return rvb_bench_families(&o);
	if (o.gemma3)
		return rvb_bench_gemma3(&o);
	if (o.minicpmv)
		return rvb_bench_minicpmv(&o);
	if (o.batch_tasks > 0)
		return rvb_bench_batch(&o);
	char ebuf[512];
	if (rv_select_kernels(NULL, ebuf, sizeof(ebuf)) != RV_OK) { /* $RLAIFV_ISA */
		fprintf(stderr, "rlaifv-bench: %s\n", ebuf);
		return BENCH_EXIT_USAGE;
	}
	if (o.gemma3_vision)
		return rvb_bench_gemma3_vision(&o);

	rvb_report rep;
	memset(&rep, 0, sizeof(rep));
	rep.opts = &o;
	const time_t now = time(NULL);
	strftime(rep.date, sizeof(rep.date), "%Y-%m-%d %H:%M UTC", gmtime(&now));
	cpu_name(rep.cpu, sizeof(rep.cpu));
	rep.kernels = rv_kernel_set();
	rep.have_choice = rvk_auto_choice(&rep.choice);
	rep.blas = rv_blas_info();
	rvi_err err = {0};
	int rc = RV_OK;

	/* Paths first: generating is slow and must not happen between two
	 * measurements (its write-back would disturb them). */
	char(*paths)[4096] = calloc(RVB_N_VARIANTS, sizeof(*paths));
	char vision_path[4096] = "";
	const char *names[RVB_N_VARIANTS];
	int n_models = 0;
	rep.models = calloc(RVB_N_VARIANTS, sizeof(*rep.models));
	if (!paths || !rep.models) {
		fprintf(stderr, "rlaifv-bench: out of memory\n");
		return BENCH_EXIT_RUNTIME;
	}
	const bool want_vision = !o.kernels && (o.mmproj || (!o.model && !o.no_vision));
	const bool generate = !o.kernels && (!o.model || (want_vision && !o.mmproj));
	if (generate && (rc = rvb_cache_dir(&o, rep.cache_dir, sizeof(rep.cache_dir), &err)))
		goto fail;
	if (!o.kernels && o.model) {
		snprintf(paths[0], sizeof(paths[0]), "%s", o.model);
		names[n_models++] = base_name(o.model);
	} else if (!o.kernels) {
		for (int v = 0; v < RVB_N_VARIANTS; v++) {
			if (!o.variants[v])
				continue;
			bool made;
			if ((rc = rvb_text_model(rep.cache_dir, (rvb_variant)v, paths[n_models],
			                         sizeof(paths[0]), &made, &err)))
				goto fail;
			names[n_models++] = rvb_variant_name((rvb_variant)v);
		}
	}
	if (want_vision && o.mmproj) {
		snprintf(vision_path, sizeof(vision_path), "%s", o.mmproj);
	} else if (want_vision) {
		bool made;
		if ((rc = rvb_vision_model(rep.cache_dir, o.vision_type, vision_path,
		                           sizeof(vision_path), &made, &err)))
			goto fail;
	}
	if (o.generate_only) {
		for (int i = 0; i < n_models; i++)
			printf("%s\n", paths[i]);
		if (*vision_path)
			printf("%s\n", vision_path);
		free(paths);
		free(rep.models);
		return BENCH_EXIT_OK;
	}

	rvb_log("%d threads, kernels %s; measuring read bandwidth and sgemm", o.n_threads,
	        rep.kernels);
	if ((rc = rvb_measure_limits(&o, &rep.limits, &err)))
		goto fail;
	if (o.kernels && (rc = rvb_measure_kernels(&o, &rep, &err)))
		goto fail;
	if (*vision_path) {
		rvb_log("vision: %s", vision_path);
		if ((rc = rvb_measure_vision(&o, vision_path, &rep.vision, &err)))
			goto fail;
	}
	for (int i = 0; i < n_models; i++) {
		/* a limits sample between models: see rvb_limits */
		if ((rc = rvb_sample_limits(&o, &rep.limits, &err)))
			goto fail;
		rvb_log("model %s: %s", names[i], paths[i]);
		if ((rc = rvb_measure_model(&o, paths[i], names[i], &rep.models[rep.n_models],
		                            &err)))
			goto fail;
		rep.n_models++;
	}
	if (o.kernels && (rc = rvb_sample_limits(&o, &rep.limits, &err)))
		goto fail;
	rvb_apply_limits(&rep);
	if (o.json)
		rvb_print_json(stdout, &rep);
	else
		rvb_print_table(stdout, &rep);
	free(paths);
	free(rep.models);
	free(rep.kern);
	return fflush(stdout) == 0 ? BENCH_EXIT_OK : BENCH_EXIT_RUNTIME;
fail:
	fprintf(stderr, "rlaifv-bench: %s\n", err.msg);
	free(paths);
	free(rep.models);
	free(rep.kern);
	return status_exit(rc);
}
