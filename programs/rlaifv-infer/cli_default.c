/* cli_default.c: rlaifv-infer's built-in model (#20). Without -m and
 * $RLAIFV_MODEL it answers with the tiny model rlaifv ships, trained on a
 * synthetic world of coloured shapes: shapes-rlaifv.gguf (the model after
 * RLAIF-V alignment), shapes-mmproj.gguf (its projector) and, as the
 * reference of best-of-N's RLAIF-V reward, shapes-sft.gguf (the model
 * before alignment). Finding them is the program's job, not the library's:
 * where a program's data lives depends on how it was installed. */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "programs/rlaifv-infer/cli.h"

/* Makefile.am defines them: where `make install` puts the models, and the
 * build tree and the source tree's data folder of this build. */
#if !defined(RV_MODELS_DIR) || !defined(RV_BUILD_DIR) || !defined(RV_SOURCE_DATA_DIR)
#error "RV_MODELS_DIR, RV_BUILD_DIR and RV_SOURCE_DATA_DIR come from Makefile.am"
#endif

#define DEFAULT_MODEL  "shapes-rlaifv.gguf"
#define DEFAULT_MMPROJ "shapes-mmproj.gguf"
#define DEFAULT_REF    "shapes-sft.gguf"

/* Whether the running executable is the one `make` built in RV_BUILD_DIR:
 * the program itself or, behind libtool's wrapper script, its copy in
 * .libs/. Judged by /proc/self/exe, not by argv[0] or the working
 * directory, so that an installed program never takes a build tree's
 * files (nor the other way round), whatever folder it runs in. */
static int in_build_tree(void)
{
	char exe[PATH_MAX], build[PATH_MAX];
	const ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0 || !realpath(RV_BUILD_DIR, build))
		return 0;
	exe[n] = 0;
	char *slash = strrchr(exe, '/');
	if (!slash)
		return 0;
	*slash = 0; /* the executable's folder */
	const size_t len = strlen(build);
	return !strncmp(exe, build, len) && (!exe[len] || !strcmp(exe + len, "/.libs"));
}

/* The folder and, for messages, why that one. */
static const char *default_dir(const char **why)
{
	const char *env = getenv("RLAIFV_MODEL_DIR");
	if (env && *env) {
		*why = "from $RLAIFV_MODEL_DIR";
		return env;
	}
	if (in_build_tree()) {
		*why = "the source tree's, as this program runs from its build tree";
		return RV_SOURCE_DATA_DIR;
	}
	*why = "where make install puts them";
	return RV_MODELS_DIR;
}

const char *cli_default_dir(char *dir, size_t n, const char **why)
{
	const char *why_here;
	const char *d = default_dir(&why_here);
	/* the source tree without the build tree's "build/.." */
	char real[PATH_MAX];
	if (!strcmp(d, RV_SOURCE_DATA_DIR) && realpath(d, real))
		d = real;
	snprintf(dir, n, "%s", d);
	if (why)
		*why = why_here;
	return dir;
}

/* A default file the run needs that cannot be read: says which. */
static int missing(const char *path, const char *what)
{
	if (access(path, R_OK) == 0)
		return 0;
	fprintf(stderr, "rlaifv-infer: no model given, and the built-in %s is missing: %s: %s\n",
	        what, path, strerror(errno));
	return 1;
}

int cli_use_defaults(cli_opts *o, cli_defaults *d)
{
	if (!o->default_model)
		return -1;
	const char *why;
	cli_default_dir(d->dir, sizeof(d->dir), &why);
	snprintf(d->model, sizeof(d->model), "%s/%s", d->dir, DEFAULT_MODEL);
	o->model = d->model;
	int bad = missing(d->model, "model");
	/* --mmproj or $RLAIFV_MMPROJ still win; the projector is checked only
	 * for an image prompt, the one run that loads it */
	if (!o->mmproj) {
		snprintf(d->mmproj, sizeof(d->mmproj), "%s/%s", d->dir, DEFAULT_MMPROJ);
		o->mmproj = d->mmproj;
		o->default_mmproj = 1;
		bad |= o->n_images > 0 && missing(d->mmproj, "projector");
	}
	/* Best-of-N ranks by RLAIF-V's reward, the log-ratio of the aligned
	 * model to the SFT model it was trained from: that is what the pair
	 * was made for (#20). --ref-model names another or "none". */
	if (o->n_candidates > 1 && !o->ref_model && !o->no_ref_model && !o->tokenize &&
	    !o->detokenize) {
		snprintf(d->ref_model, sizeof(d->ref_model), "%s/%s", d->dir, DEFAULT_REF);
		o->ref_model = d->ref_model;
		o->default_ref = 1;
		bad |= missing(d->ref_model, "reference model");
	}
	if (!bad)
		return -1;
	fprintf(stderr,
	        "rlaifv-infer: the built-in models are looked for in %s (%s); give -m "
	        "MODEL.gguf or set RLAIFV_MODEL to use another model\n",
	        d->dir, why);
	return EXIT_MODEL;
}

static void file_line(FILE *f, const char *what, const char *path, const char *note)
{
	fprintf(f, "rlaifv-infer: %s %s%s\n", what, path, note);
}

void cli_print_files(FILE *f, const cli_opts *o, int with_mmproj)
{
	static const char builtin[] = " (built-in default)";
	file_line(f, "model", o->model, o->default_model ? builtin : "");
	if (with_mmproj)
		file_line(f, "projector", o->mmproj, o->default_mmproj ? builtin : "");
	if (!o->ref_model)
		return;
	file_line(f, "reference model", o->ref_model,
	          o->default_ref ? " (built-in default for best-of-N: RLAIF-V reward; "
	                           "--ref-model none turns it off)"
	                         : "");
	if (with_mmproj)
		file_line(f, "reference projector", o->ref_mmproj ? o->ref_mmproj : o->mmproj,
		          o->ref_mmproj ? "" : " (the model's)");
}
