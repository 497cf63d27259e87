/* cli_hub.c: rlaifv-infer's --hf, --hf-list and --hf-cache: reads the
 * Hugging Face environment, calls the Hub client (hub.c) and maps its
 * failures to the exit codes the man page lists. */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <unistd.h>

#include "programs/rlaifv-infer/cli.h"
#include "programs/rlaifv-infer/hub.h"

static int hub_exit(int st)
{
	switch (st) {
	case HUB_OK:
		return EXIT_OK;
	case HUB_ERR_NOT_FOUND:
		return EXIT_HUB_NOT_FOUND;
	case HUB_ERR_AUTH:
		return EXIT_HUB_AUTH;
	case HUB_ERR_NO_FILE:
		return EXIT_HUB_NO_FILE;
	case HUB_ERR_NETWORK:
		return EXIT_HUB_NETWORK;
	case HUB_ERR_REFUSED:
		return EXIT_HUB_REFUSED;
	case HUB_ERR_IO:
		return EXIT_HUB_IO;
	default: /* a bad name, or built --without-curl */
		return EXIT_USAGE;
	}
}

int cli_hub(cli_opts *o, hub_paths *paths)
{
	if (!o->hf && !o->hf_list && !o->hf_cache)
		return -1;
	char err[1024];
	hub_env env;
	int st = hub_env_init(&env, err, sizeof(err));
	env.log = stderr;
	env.log_tty = isatty(STDERR_FILENO);
	if (st == HUB_OK && o->hf_cache)
		st = hub_cache_list(&env, stdout, err, sizeof(err));
	if (st == HUB_OK && o->hf_list) {
		char repo[256], quant[64];
		st = hub_parse_spec(o->hf_list, repo, sizeof(repo), quant, sizeof(quant), err,
		                    sizeof(err));
		if (st == HUB_OK)
			st = hub_list(&env, repo, o->hf_revision, stdout, err, sizeof(err));
	}
	if (st != HUB_OK || o->hf_cache || o->hf_list) {
		if (st != HUB_OK)
			fprintf(stderr, "rlaifv-infer: %s\n", err);
		return hub_exit(st);
	}
	static char repo[256], quant[64];
	st = hub_parse_spec(o->hf, repo, sizeof(repo), quant, sizeof(quant), err, sizeof(err));
	hub_request r = {repo,         quant[0] ? quant : NULL, o->hf_file,
	                 o->hf_mmproj, o->hf_revision,          o->n_images > 0};
	if (st == HUB_OK)
		st = hub_fetch(&env, &r, paths, err, sizeof(err));
	if (st != HUB_OK) {
		fprintf(stderr, "rlaifv-infer: --hf %s: %s\n", o->hf, err);
		return hub_exit(st);
	}
	o->model = paths->model;
	o->mmproj = paths->mmproj[0] ? paths->mmproj : NULL;
	return -1;
}
