/* public_check.h: the checking macro and data paths of the tests that see
 * the library only through <rlaifv.h> (test_c_api.c, test_api_misuse.c):
 * header-only, so those tests still link nothing but librlaifv. */
#ifndef RLAIFV_TESTS_PUBLIC_CHECK_H
#define RLAIFV_TESTS_PUBLIC_CHECK_H

#include <stdio.h>
#include <stdlib.h>

static int fails, checks;

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		checks++;                                                                          \
		if (!(cond)) {                                                                     \
			fails++;                                                                   \
			printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                     \
			printf(__VA_ARGS__);                                                       \
			printf("\n");                                                              \
		}                                                                                  \
	} while (0)

/* $srcdir/tests/data, set by set_data_dir() */
static char data_dir[4096];

static void set_data_dir(void)
{
	const char *srcdir = getenv("srcdir");
	snprintf(data_dir, sizeof data_dir, "%s/tests/data", srcdir ? srcdir : ".");
}

/* data_dir/name; the last two results stay valid. */
static const char *data(const char *name)
{
	static char path[2][4352];
	static int k;
	k ^= 1;
	snprintf(path[k], sizeof path[k], "%s/%s", data_dir, name);
	return path[k];
}

#endif
