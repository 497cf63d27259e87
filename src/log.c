/* log.c: the callback set by rv_log_set (see log.h). The callback and its
 * user pointer are the process's one piece of mutable global state besides
 * the kernel table, as in ggml and whisper.cpp: a log sink belongs to the
 * program, not to a model or context. */
#include "src/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

/* Set and read under the lock so a message never reaches a callback with
 * another callback's user pointer. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static rv_log_fn log_fn;
static void *log_user;

void rv_log_set(rv_log_fn fn, void *user)
{
	pthread_mutex_lock(&log_lock);
	log_fn = fn;
	log_user = user;
	pthread_mutex_unlock(&log_lock);
}

void rvi_log(rv_log_level level, const char *fmt, ...)
{
	pthread_mutex_lock(&log_lock);
	rv_log_fn fn = log_fn;
	void *user = log_user;
	pthread_mutex_unlock(&log_lock);
	if (!fn)
		return;
	char msg[RVI_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fn(level, msg, user);
}
