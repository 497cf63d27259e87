/* api_vocab.c: the public functions that need only a model's vocabulary
 * (rv_model_tokenize, rv_model_detokenize; see rlaifv.h), kept apart from
 * api.c so that they work on vocab_only models and need no context. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rlaifv.h"
#include "src/api_internal.h"

static rv_status fail(char *buf, size_t size, const rvi_err *err, int rc)
{
	if (buf && size)
		snprintf(buf, size, "%s", err->msg);
	return (rv_status)rc;
}

rv_status rv_model_tokenize(const rv_model *model, const char *text, size_t len, int add_special,
                            int parse_special, int32_t **tokens, int *n_tokens, char *err_buf,
                            size_t err_size)
{
	rvi_err err = {0};
	if (!model || !tokens || !n_tokens || (!text && len > 0))
		return fail(
		    err_buf, err_size, &err,
		    rvi_errorf(&err, RV_ERR_INVALID_ARG, "rv_model_tokenize: NULL argument"));
	*tokens = NULL;
	*n_tokens = 0;
	const rvi_tokenizer *t = model->tok;
	const bool bos = add_special && rvi_tokenizer_add_bos(t);
	const bool eos = add_special && rvi_tokenizer_add_eos(t);
	int32_t *ids = NULL;
	int64_t n = 0;
	int rc = rvi_tokenize(t, text, len, bos, parse_special != 0, &ids, &n, &err);
	if (rc != RV_OK)
		return fail(err_buf, err_size, &err, rc);
	if (n + (eos ? 1 : 0) > INT32_MAX) {
		free(ids);
		return fail(err_buf, err_size, &err,
		            rvi_errorf(&err, RV_ERR_INVALID_ARG,
		                       "text of %zu bytes gives too many tokens", len));
	}
	if (eos) {
		int32_t *more = realloc(ids, (size_t)(n + 1) * sizeof(*ids));
		if (!more) {
			free(ids);
			return fail(err_buf, err_size, &err,
			            rvi_errorf(&err, RV_ERR_NOMEM, "out of memory"));
		}
		ids = more;
		ids[n++] = rvi_tokenizer_eos(t);
	}
	*tokens = ids;
	*n_tokens = (int)n;
	return RV_OK;
}

rv_status rv_model_detokenize(const rv_model *model, const int32_t *tokens, int n_tokens,
                              char **text, size_t *len, char *err_buf, size_t err_size)
{
	rvi_err err = {0};
	if (!model || !text || !len || n_tokens < 0 || (!tokens && n_tokens > 0))
		return fail(
		    err_buf, err_size, &err,
		    rvi_errorf(&err, RV_ERR_INVALID_ARG, "rv_model_detokenize: bad argument"));
	*text = NULL;
	*len = 0;
	const rvi_tokenizer *t = model->tok;
	size_t total = 0;
	for (int i = 0; i < n_tokens; i++) {
		int64_t k = rvi_token_piece(t, tokens[i], NULL, 0);
		if (k < 0)
			return fail(
			    err_buf, err_size, &err,
			    rvi_errorf(&err, RV_ERR_INVALID_ARG,
			               "token %d (at position %d) is not in the vocabulary of "
			               "%lld tokens",
			               tokens[i], i, (long long)rvi_tokenizer_n_vocab(t)));
		total += (size_t)k;
	}
	char *out = malloc(total + 1);
	if (!out)
		return fail(err_buf, err_size, &err,
		            rvi_errorf(&err, RV_ERR_NOMEM, "out of memory"));
	size_t o = 0;
	for (int i = 0; i < n_tokens; i++)
		o += (size_t)rvi_token_piece(t, tokens[i], out + o, total - o + 1);
	out[o] = 0;
	*text = out;
	*len = o;
	return RV_OK;
}
