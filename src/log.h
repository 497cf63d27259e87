/* log.h: the library's one log channel. Warnings and notes the library
 * computes (an unusable embedding cache, a BLAS on generic kernels, a
 * kernel set forced by the environment) go to the callback the caller set
 * with rv_log_set, or nowhere: the library never writes to stderr itself. */
#ifndef RLAIFV_LOG_H
#define RLAIFV_LOG_H

#include "src/util.h"

/* Formats one message and hands it to the callback, if any. */
void rvi_log(rv_log_level level, const char *fmt, ...) RVI_PRINTF(2, 3);

#endif
