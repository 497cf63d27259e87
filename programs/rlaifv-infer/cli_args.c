/* cli_args.c: rlaifv-infer's command line: options, their defaults and
 * checks, and --help. Every option here is documented in
 * man/rlaifv-infer.1 (tests/man.test checks). */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <getopt.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "programs/numflag.h"
#include "programs/rlaifv-infer/cli.h"

static void usage(FILE *f)
{
	static const char text[] =
	    "Usage: rlaifv-infer [options] IMAGE PROMPT   (the built-in shapes model)\n"
	    "       rlaifv-infer [options] -m MODEL.gguf --mmproj MMPROJ.gguf IMAGE PROMPT\n"
	    "       rlaifv-infer [options] -m MODEL.gguf -p PROMPT\n"
	    "       rlaifv-infer [options] --hf OWNER/REPO[:QUANT] IMAGE PROMPT\n"
	    "Answer with a LLaVA-style or LLaMA-family GGUF model on the CPU: N candidate\n"
	    "answers are sampled from one shared prompt, the model scores each, and the\n"
	    "best is printed. Without -m and $RLAIFV_MODEL: the built-in tiny model,\n"
	    "trained on pictures of coloured circles, squares and triangles (not photos).\n"
	    "\n"
	    "Model and prompt:\n"
	    "  -m, --model FILE        model GGUF file (default: $RLAIFV_MODEL, else the\n"
	    "                          built-in shapes model; --version says where)\n"
	    "      --mmproj FILE       vision projector GGUF (default: $RLAIFV_MMPROJ, else\n"
	    "                          with the built-in model its projector)\n"
	    "  -p, --prompt TEXT       prompt; '-' reads it from standard input (<= 16 MiB)\n"
	    "      --hf REPO[:QUANT]   fetch model (and mmproj for images) from the Hugging\n"
	    "                          Face Hub into its cache (default quant Q4_K_M)\n"
	    "      --hf-file NAME      with --hf: this GGUF file of the repository\n"
	    "      --hf-mmproj NAME    with --hf: this projector file of the repository\n"
	    "      --hf-revision REV   with --hf: branch, tag or commit (default main)\n"
	    "      --hf-list REPO      print the quants and projectors REPO offers\n"
	    "      --hf-cache          print the GGUF files in the Hugging Face cache\n"
	    "      --image FILE        an image (JPEG, PNG, BMP, PNM); repeat for several\n"
	    "      --chat-template T   llava, vicuna, chatml, qwen2-vl, llama-2, smolvlm,\n"
	    "                          gemma3, qwen3, gguf\n"
	    "                          or none (default with images: the projector's, else\n"
	    "                          none)\n"
	    "      --system TEXT       the chat template's system sentence\n"
	    "      --no-parse-special  raw prompt: keep special-token text such as </s>\n"
	    "                          plain (default: it becomes the control token)\n"
	    "      --parse-special-user  chat template: let the prompt and --system text\n"
	    "                          hold control tokens too (default: plain text)\n"
	    "      --no-exif           ignore the EXIF orientation of JPEG photos\n"
	    "      --no-cache          do not use the image-embedding cache\n"
	    "      --image-max-side N  refuse images with a longer side (default 16384)\n"
	    "      --image-max-memory MIB  refuse images that need more memory to decode\n"
	    "                          (default 768)\n"
	    "      --image-min-pixels N, --image-max-pixels N\n"
	    "                          the pixels a dynamic-resolution model (Qwen2.5-VL)\n"
	    "                          resizes an image to (defaults 3136, 1003520)\n"
	    "      --image-longest-edge N  SmolVLM: resize images' longest edge to N\n"
	    "                          before tiling (default: the mmproj's)\n"
	    "      --pan-and-scan      Gemma 3: also encode crops of elongated images, as\n"
	    "                          HF's do_pan_and_scan (default off)\n"
	    "      --pan-and-scan-min-crop N, --pan-and-scan-max-crops N,\n"
	    "      --pan-and-scan-min-ratio R  its settings (defaults 256, 4, 1.2)\n"
	    "      --max-slices N      MiniCPM-V: cut images into at most N slices besides\n"
	    "                          the overview (default 9; 1: the overview alone)\n"
	    "  -n, --n-predict N       most tokens per answer (default -1: until the end)\n"
	    "  -c, --ctx-size N        context size in tokens (default: the model's, <= 4096)\n"
	    "  -t, --threads N         threads (default: $RLAIFV_THREADS or physical cores)\n"
	    "Sampling:\n"
	    "      --temp T            temperature; 0 = greedy, one candidate\n"
	    "                          (default 0.7 with several candidates, else 0.8)\n"
	    "      --top-k N           keep the N most likely tokens, 0 = off (default 40)\n"
	    "      --top-p P           keep the smallest set with probability >= P (0.95)\n"
	    "      --min-p P           drop tokens below P x the top probability (0.05)\n"
	    "      --seed N            random seed (default 0)\n"
	    "      --ignore-eos        keep generating past the end-of-sequence token\n"
	    "Best-of-N (self-feedback):\n"
	    "  -N, --candidates N      answers to sample and rank (default 4; 1 = plain)\n"
	    "      --score mean|sum    rank by mean (default) or summed log-probability\n"
	    "      --ref-model FILE    reference model: rank by beta x the log-ratio\n"
	    "                          (RLAIF-V); 'none': by the model alone (default:\n"
	    "                          none, with the built-in model its SFT model)\n"
	    "      --ref-mmproj FILE   the reference model's projector (default: the model's)\n"
	    "      --beta B            scale of the log-ratio (default 0.1)\n"
	    "      --show-candidates   print every candidate with its score on stderr\n"
	    "Output:\n"
	    "      --json              print one JSON object (text, tokens, log-probs,\n"
	    "                          candidates, timings) instead of the text\n"
	    "      --verbose           print the files used, load time, speeds and peak\n"
	    "                          memory on stderr\n"
	    "      --check-tensors     scan every weight for NaN/Inf after loading; a bad\n"
	    "                          one is a model load failure naming the tensor\n"
	    "      --tokenize          print the prompt's token ids as a JSON array (no\n"
	    "                          BOS/EOS) and exit; reads only the vocabulary\n"
	    "      --detokenize        the prompt is a JSON array of ids: print their text\n"
	    "Batch:\n"
	    "      --batch FILE        run every task of a JSON-lines file (see the man\n"
	    "                          page), the model loaded once; one result line each\n"
	    "      --output FILE       --batch: write the results here (default stdout)\n"
	    "      --resume            --batch: keep FILE's results, run only the others\n"
	    "      --shard I/N         --batch: only the tasks whose index mod N is I\n"
	    "      --pairs FILE        --batch: write best/worst preference pairs here\n"
	    "      --parallel K        --batch: decode up to K tasks together (1..64,\n"
	    "                          default 1); the results are the same\n"
	    "  -h, --help              show this help\n"
	    "      --version           show version, kernel set, BLAS and where the\n"
	    "                          built-in models are looked for\n"
	    "\n"
	    "Exit status: 0 ok, 1 runtime error, 2 usage error, 3 model load failed,\n"
	    "4 image load failed, 5-10 --hf failures (see the man page), 11 some --batch\n"
	    "task failed, 130 interrupted.\n";
	fputs(text, f);
}

static int parse_int(const char *flag, const char *s, long lo, long hi, int *out)
{
	return rvp_parse_int("rlaifv-infer", flag, s, lo, hi, out);
}

static int parse_float(const char *flag, const char *s, float lo, float hi, float *out)
{
	return rvp_parse_float("rlaifv-infer", flag, s, lo, hi, out);
}

static int parse_u64(const char *flag, const char *s, uint64_t *out)
{
	return rvp_parse_u64("rlaifv-infer", flag, s, out);
}

/* --shard I/N: 0 <= I < N */
static int parse_shard(const char *arg, cli_opts *o)
{
	const char *slash = strchr(arg, '/');
	char i_text[32];
	if (!slash || (size_t)(slash - arg) >= sizeof(i_text)) {
		fprintf(stderr, "rlaifv-infer: --shard: '%s' is not I/N\n", arg);
		return -1;
	}
	memcpy(i_text, arg, (size_t)(slash - arg));
	i_text[slash - arg] = 0;
	if (parse_int("--shard N", slash + 1, 1, 1 << 30, &o->shard_n) ||
	    parse_int("--shard I", i_text, 0, o->shard_n - 1, &o->shard_i))
		return -1;
	return 0;
}

enum long_only {
	OPT_TEMP = 256,
	OPT_TOP_K,
	OPT_TOP_P,
	OPT_MIN_P,
	OPT_SEED,
	OPT_IGNORE_EOS,
	OPT_SCORE,
	OPT_REF_MODEL,
	OPT_REF_MMPROJ,
	OPT_MMPROJ,
	OPT_IMAGE,
	OPT_CHAT_TEMPLATE,
	OPT_SYSTEM,
	OPT_NO_EXIF,
	OPT_NO_CACHE,
	OPT_IMAGE_MAX_SIDE,
	OPT_IMAGE_MAX_MEMORY,
	OPT_IMAGE_MIN_PIXELS,
	OPT_IMAGE_MAX_PIXELS,
	OPT_IMAGE_LONGEST_EDGE,
	OPT_PAN_AND_SCAN,
	OPT_PAS_MIN_CROP,
	OPT_PAS_MAX_CROPS,
	OPT_PAS_MIN_RATIO,
	OPT_MAX_SLICES,
	OPT_BETA,
	OPT_SHOW_CANDIDATES,
	OPT_JSON,
	OPT_VERBOSE,
	OPT_VERSION,
	OPT_CHECK_TENSORS,
	OPT_HF,
	OPT_HF_FILE,
	OPT_HF_MMPROJ,
	OPT_HF_REVISION,
	OPT_HF_LIST,
	OPT_HF_CACHE,
	OPT_NO_PARSE_SPECIAL,
	OPT_PARSE_SPECIAL_USER,
	OPT_TOKENIZE,
	OPT_DETOKENIZE,
	OPT_BATCH,
	OPT_OUTPUT,
	OPT_RESUME,
	OPT_SHARD,
	OPT_PAIRS,
	OPT_PARALLEL,
};

static const struct option long_options[] = {
    {"model", required_argument, 0, 'm'},
    {"prompt", required_argument, 0, 'p'},
    {"n-predict", required_argument, 0, 'n'},
    {"ctx-size", required_argument, 0, 'c'},
    {"threads", required_argument, 0, 't'},
    {"temp", required_argument, 0, OPT_TEMP},
    {"top-k", required_argument, 0, OPT_TOP_K},
    {"top-p", required_argument, 0, OPT_TOP_P},
    {"min-p", required_argument, 0, OPT_MIN_P},
    {"seed", required_argument, 0, OPT_SEED},
    {"ignore-eos", no_argument, 0, OPT_IGNORE_EOS},
    {"candidates", required_argument, 0, 'N'},
    {"score", required_argument, 0, OPT_SCORE},
    {"ref-model", required_argument, 0, OPT_REF_MODEL},
    {"ref-mmproj", required_argument, 0, OPT_REF_MMPROJ},
    {"mmproj", required_argument, 0, OPT_MMPROJ},
    {"image", required_argument, 0, OPT_IMAGE},
    {"chat-template", required_argument, 0, OPT_CHAT_TEMPLATE},
    {"system", required_argument, 0, OPT_SYSTEM},
    {"no-exif", no_argument, 0, OPT_NO_EXIF},
    {"no-cache", no_argument, 0, OPT_NO_CACHE},
    {"image-max-side", required_argument, 0, OPT_IMAGE_MAX_SIDE},
    {"image-max-memory", required_argument, 0, OPT_IMAGE_MAX_MEMORY},
    {"image-min-pixels", required_argument, 0, OPT_IMAGE_MIN_PIXELS},
    {"image-max-pixels", required_argument, 0, OPT_IMAGE_MAX_PIXELS},
    {"image-longest-edge", required_argument, 0, OPT_IMAGE_LONGEST_EDGE},
    {"pan-and-scan", no_argument, 0, OPT_PAN_AND_SCAN},
    {"pan-and-scan-min-crop", required_argument, 0, OPT_PAS_MIN_CROP},
    {"pan-and-scan-max-crops", required_argument, 0, OPT_PAS_MAX_CROPS},
    {"pan-and-scan-min-ratio", required_argument, 0, OPT_PAS_MIN_RATIO},
    {"max-slices", required_argument, 0, OPT_MAX_SLICES},
    {"beta", required_argument, 0, OPT_BETA},
    {"show-candidates", no_argument, 0, OPT_SHOW_CANDIDATES},
    {"json", no_argument, 0, OPT_JSON},
    {"verbose", no_argument, 0, OPT_VERBOSE},
    {"check-tensors", no_argument, 0, OPT_CHECK_TENSORS},
    {"hf", required_argument, 0, OPT_HF},
    {"hf-file", required_argument, 0, OPT_HF_FILE},
    {"hf-mmproj", required_argument, 0, OPT_HF_MMPROJ},
    {"hf-revision", required_argument, 0, OPT_HF_REVISION},
    {"hf-list", required_argument, 0, OPT_HF_LIST},
    {"hf-cache", no_argument, 0, OPT_HF_CACHE},
    {"no-parse-special", no_argument, 0, OPT_NO_PARSE_SPECIAL},
    {"parse-special-user", no_argument, 0, OPT_PARSE_SPECIAL_USER},
    {"tokenize", no_argument, 0, OPT_TOKENIZE},
    {"detokenize", no_argument, 0, OPT_DETOKENIZE},
    {"batch", required_argument, 0, OPT_BATCH},
    {"output", required_argument, 0, OPT_OUTPUT},
    {"resume", no_argument, 0, OPT_RESUME},
    {"shard", required_argument, 0, OPT_SHARD},
    {"pairs", required_argument, 0, OPT_PAIRS},
    {"parallel", required_argument, 0, OPT_PARALLEL},
    {"help", no_argument, 0, 'h'},
    {"version", no_argument, 0, OPT_VERSION},
    {0, 0, 0, 0},
};

static int print_version(void)
{
	char err[256];
	if (rv_select_kernels(NULL, err, sizeof(err)) != RV_OK) { /* $RLAIFV_ISA */
		fprintf(stderr, "rlaifv-infer: %s\n", err);
		return EXIT_USAGE;
	}
	printf("rlaifv-infer %s\nkernels: %s\nBLAS: %s\n", rv_version(), rv_kernel_set(),
	       rv_blas_info());
	char dir[4096];
	const char *why;
	cli_default_dir(dir, sizeof(dir), &why);
	printf("built-in models: %s (%s)\n", dir, why);
	return EXIT_OK;
}

/* One option; returns 0, or -1 after printing why its value is bad, or an
 * exit code (>= 0) for options that end the program. */
static int take_option(int c, const char *arg, cli_opts *o)
{
	switch (c) {
	case 'm':
		o->model = arg;
		return 0;
	case 'p':
		o->prompt = arg;
		return 0;
	case 'n':
		return parse_int("-n", arg, -1, 1 << 24, &o->n_predict);
	case 'c':
		return parse_int("-c", arg, 0, RV_MAX_CTX, &o->n_ctx);
	case 't':
		return parse_int("-t", arg, 1, RV_MAX_THREADS, &o->n_threads);
	case OPT_TEMP:
		o->temp_given = 1;
		return parse_float("--temp", arg, 0, RV_MAX_TEMP, &o->temp);
	case OPT_TOP_K:
		return parse_int("--top-k", arg, 0, 1 << 24, &o->top_k);
	case OPT_TOP_P:
		return parse_float("--top-p", arg, 0, 1, &o->top_p);
	case OPT_MIN_P:
		return parse_float("--min-p", arg, 0, 1, &o->min_p);
	case OPT_SEED:
		return parse_u64("--seed", arg, &o->seed);
	case OPT_IGNORE_EOS:
		o->ignore_eos = 1;
		return 0;
	case 'N':
		o->candidates_given = 1;
		return parse_int("-N", arg, 1, RV_MAX_CANDIDATES, &o->n_candidates);
	case OPT_SCORE:
		if (!strcmp(arg, "mean") || !strcmp(arg, "sum")) {
			o->score = !strcmp(arg, "sum") ? RV_SCORE_SUM : RV_SCORE_MEAN;
			return 0;
		}
		fprintf(stderr, "rlaifv-infer: --score: '%s' is not 'mean' or 'sum'\n", arg);
		return -1;
	case OPT_REF_MODEL:
		/* "none": no reference, not even the built-in model's default */
		o->no_ref_model = !strcmp(arg, "none");
		o->ref_model = o->no_ref_model ? NULL : arg;
		return 0;
	case OPT_REF_MMPROJ:
		o->ref_mmproj = arg;
		return 0;
	case OPT_MMPROJ:
		o->mmproj = arg;
		return 0;
	case OPT_IMAGE:
		if (o->n_images == (int)(sizeof(o->images) / sizeof(o->images[0]))) {
			fprintf(stderr, "rlaifv-infer: --image: at most %d images\n", o->n_images);
			return -1;
		}
		o->images[o->n_images++] = arg;
		return 0;
	case OPT_CHAT_TEMPLATE:
		o->chat_template = arg;
		return 0;
	case OPT_SYSTEM:
		o->system = arg;
		return 0;
	case OPT_NO_EXIF:
		o->no_exif = 1;
		return 0;
	case OPT_NO_CACHE:
		o->no_cache = 1;
		return 0;
	case OPT_IMAGE_MIN_PIXELS:
		return parse_int("--image-min-pixels", arg, 1, 1 << 30, &o->image_min_pixels);
	case OPT_IMAGE_MAX_PIXELS:
		return parse_int("--image-max-pixels", arg, 1, 1 << 30, &o->image_max_pixels);
	case OPT_IMAGE_MAX_SIDE:
		return parse_int("--image-max-side", arg, 1, RV_MAX_IMAGE_SIDE, &o->image_max_side);
	case OPT_IMAGE_MAX_MEMORY:
		return parse_int("--image-max-memory", arg, 1, RV_MAX_IMAGE_MIB, &o->image_max_mib);
	case OPT_IMAGE_LONGEST_EDGE:
		return parse_int("--image-longest-edge", arg, 1, 4096, &o->image_longest_edge);
	case OPT_PAN_AND_SCAN:
		o->pan_and_scan = 1;
		return 0;
	case OPT_PAS_MIN_CROP:
		return parse_int("--pan-and-scan-min-crop", arg, 1, RV_MAX_IMAGE_SIDE,
		                 &o->pas_min_crop_size);
	case OPT_PAS_MAX_CROPS:
		return parse_int("--pan-and-scan-max-crops", arg, 1, 64, &o->pas_max_crops);
	case OPT_PAS_MIN_RATIO: {
		/* checked as a float, kept as the double HF compares against */
		float f;
		if (parse_float("--pan-and-scan-min-ratio", arg, 1.0f, 1e4f, &f) != 0)
			return -1;
		o->pas_min_ratio = strtod(arg, NULL);
		return 0;
	}
	case OPT_MAX_SLICES:
		return parse_int("--max-slices", arg, 1, 64, &o->max_slices);
	case OPT_BETA:
		return parse_float("--beta", arg, 1e-6f, 1e6f, &o->beta);
	case OPT_SHOW_CANDIDATES:
		o->show_candidates = 1;
		return 0;
	case OPT_JSON:
		o->json = 1;
		return 0;
	case OPT_VERBOSE:
		o->verbose = 1;
		return 0;
	case OPT_CHECK_TENSORS:
		o->check_tensors = 1;
		return 0;
	case OPT_HF:
		o->hf = arg;
		return 0;
	case OPT_HF_FILE:
		o->hf_file = arg;
		return 0;
	case OPT_HF_MMPROJ:
		o->hf_mmproj = arg;
		return 0;
	case OPT_HF_REVISION:
		o->hf_revision = arg;
		return 0;
	case OPT_HF_LIST:
		o->hf_list = arg;
		return 0;
	case OPT_HF_CACHE:
		o->hf_cache = 1;
		return 0;
	case OPT_NO_PARSE_SPECIAL:
		o->no_parse_special = 1;
		return 0;
	case OPT_PARSE_SPECIAL_USER:
		o->parse_special_user = 1;
		return 0;
	case OPT_TOKENIZE:
		o->tokenize = 1;
		return 0;
	case OPT_DETOKENIZE:
		o->detokenize = 1;
		return 0;
	case OPT_BATCH:
		o->batch = arg;
		return 0;
	case OPT_OUTPUT:
		o->output = arg;
		return 0;
	case OPT_RESUME:
		o->resume = 1;
		return 0;
	case OPT_SHARD:
		return parse_shard(arg, o);
	case OPT_PAIRS:
		o->pairs = arg;
		return 0;
	case OPT_PARALLEL:
		return parse_int("--parallel", arg, 1, RV_MAX_PARALLEL, &o->parallel);
	case 'h':
		usage(stdout);
		return EXIT_OK;
	case OPT_VERSION:
		return print_version();
	}
	return -1;
}

int cli_parse_args(int argc, char **argv, cli_opts *o)
{
	memset(o, 0, sizeof(*o));
	/* 1280 merged tokens of 28 x 28 pixels: a laptop's prompt, where HF's
	 * 12845056 makes a phone photo over ten thousand */
	o->image_max_pixels = 1003520;
	o->n_predict = -1;
	o->temp = 0.8f;
	o->top_k = 40;
	o->top_p = 0.95f;
	o->min_p = 0.05f;
	o->n_candidates = 4;
	o->score = RV_SCORE_MEAN;
	o->beta = 0.1f;
	o->model = getenv("RLAIFV_MODEL");
	o->mmproj = getenv("RLAIFV_MMPROJ");
	if (o->mmproj && !*o->mmproj)
		o->mmproj = NULL;
	opterr = 0;
	for (int c; (c = getopt_long(argc, argv, ":m:p:n:c:t:N:h", long_options, NULL)) != -1;) {
		if (c == ':') {
			fprintf(stderr, "rlaifv-infer: option %s needs a value\n",
			        argv[optind - 1]);
			return EXIT_USAGE;
		}
		if (c == '?') {
			fprintf(stderr, "rlaifv-infer: unknown option '%s' (see --help)\n",
			        argv[optind - 1]);
			return EXIT_USAGE;
		}
		int r = take_option(c, optarg, o);
		if (r < 0)
			return EXIT_USAGE;
		if (c == 'h' || c == OPT_VERSION)
			return r;
	}
	/* positional: PROMPT, or IMAGE PROMPT */
	int n_pos = argc - optind;
	if (n_pos == 2 && !o->prompt && o->n_images < 64) {
		o->images[o->n_images++] = argv[optind];
		o->prompt = argv[optind + 1];
	} else if (n_pos == 1 && !o->prompt) {
		o->prompt = argv[optind];
	} else if (n_pos > 0) {
		fprintf(stderr, "rlaifv-infer: unexpected argument '%s' (see --help)\n",
		        argv[argc - 1]);
		return EXIT_USAGE;
	}
	if (o->hf_list || o->hf_cache)
		return -1; /* they need no model or prompt */
	if ((o->hf_file || o->hf_mmproj || o->hf_revision) && !o->hf) {
		fprintf(stderr, "rlaifv-infer: --hf-file, --hf-mmproj and --hf-revision go with "
		                "--hf OWNER/REPO\n");
		return EXIT_USAGE;
	}
	if (o->hf)
		o->model = o->mmproj = NULL; /* --hf names both; cli_hub fills them */
	/* no model named: the built-in one, which main() finds (cli_default.c) */
	if (!o->hf && (!o->model || !*o->model)) {
		o->model = NULL;
		o->default_model = 1;
	}
	if ((o->output || o->resume || o->shard_n || o->pairs || o->parallel > 1) && !o->batch) {
		fprintf(stderr, "rlaifv-infer: --output, --resume, --shard, --pairs and --parallel "
		                "go with --batch\n");
		return EXIT_USAGE;
	}
	if (o->batch && (o->prompt || o->n_images || o->json || o->tokenize || o->detokenize)) {
		fprintf(stderr, "rlaifv-infer: --batch takes its prompts and images from the tasks "
		                "file (and always writes JSON)\n");
		return EXIT_USAGE;
	}
	if (o->resume && !o->output) {
		fprintf(stderr, "rlaifv-infer: --resume needs --output FILE\n");
		return EXIT_USAGE;
	}
	if (!o->prompt && !o->batch) {
		fprintf(stderr, "rlaifv-infer: no prompt: give -p TEXT (see --help)\n");
		return EXIT_USAGE;
	}
	if (o->tokenize && o->detokenize) {
		fprintf(stderr, "rlaifv-infer: --tokenize and --detokenize exclude each other\n");
		return EXIT_USAGE;
	}
	if ((o->tokenize || o->detokenize) && o->n_images > 0) {
		fprintf(stderr, "rlaifv-infer: --%s takes no image\n",
		        o->tokenize ? "tokenize" : "detokenize");
		return EXIT_USAGE;
	}
	if (o->n_images > 0 && !o->mmproj && !o->hf && !o->default_model) {
		fprintf(stderr, "rlaifv-infer: an image needs the model's projector: give --mmproj "
		                "MMPROJ.gguf or set RLAIFV_MMPROJ\n");
		return EXIT_USAGE;
	}
	/* --temp 0 is greedy: one candidate, unless several were asked for,
	 * which could only repeat one answer */
	if (o->temp_given && o->temp == 0) {
		if (o->candidates_given && o->n_candidates > 1) {
			fprintf(stderr,
			        "rlaifv-infer: -N %d with --temp 0 would give %d identical "
			        "answers: use --temp > 0 or -N 1\n",
			        o->n_candidates, o->n_candidates);
			return EXIT_USAGE;
		}
		o->n_candidates = 1;
	} else if (!o->temp_given && o->n_candidates > 1) {
		o->temp = 0.7f;
	}
	return -1;
}
