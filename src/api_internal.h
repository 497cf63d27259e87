/* api_internal.h: what rv_model and rv_context hold. Shared by api.c and
 * the tests that reach past the public API; not installed. */
#ifndef RLAIFV_API_INTERNAL_H
#define RLAIFV_API_INTERNAL_H

#include "gguf.h"
#include "llama.h"
#include "tokenizer.h"
#include "util.h"

struct rv_model {
	rvi_gguf *gguf; /* the mapping every weight points into */
	rvi_llama llama;
	rvi_tokenizer *tok;
	int n_threads;
	double load_ms;
};

struct rv_context {
	rv_model *model;
	rvi_llama_state st;
	float *logits; /* (n_vocab) of the last position */
	int n_threads;
	rvi_err err;
};

#endif
