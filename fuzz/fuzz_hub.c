/* fuzz_hub.c: rlaifv-infer's reader of the Hub's tree listings (--hf,
 * programs/rlaifv-infer/hub.c): any bytes as a listing are parsed or
 * refused, never read out of bounds and never with an unbounded allocation;
 * a listing it accepts goes through the rules that choose the model, its
 * split parts and the projector. Without libcurl there is no listing
 * reader, and the target does nothing. */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <stdint.h>

#ifdef HAVE_CURL
#include "programs/rlaifv-infer/hub.c"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
#ifdef HAVE_CURL
	hub_files f = {0};
	char err[512];
	if (parse_listing((const char *)data, size, "fuzz/repo", &f, err, sizeof(err)) == HUB_OK) {
		hub_request r = {"fuzz/repo", NULL, NULL, NULL, NULL, 1};
		plan pl;
		make_plan(&f, &r, &pl, "in the listing", err, sizeof(err));
		r.quant = "Q8_0";
		make_plan(&f, &r, &pl, "in the listing", err, sizeof(err));
	}
	files_free(&f);
#else
	(void)data, (void)size;
#endif
	return 0;
}
