/* fuzz_embcache.c: libFuzzer target for image-embedding cache entries.
 *
 * The input is written as an entry file in a private temporary directory
 * and looked up with rvi_embcache_load. A random file would fail the key
 * and dimension checks at once, so the lookup takes its key and, when they
 * are small, its dimensions from the file's own header: the fuzzer then
 * reaches the size checks, zlib and the CRC. Bit 0 of byte 7 (reserved in
 * the format) asks for one row more than the header says instead, so the
 * dimension checks are exercised against near misses too.
 * Properties checked: anything but a hit or a miss is an I/O failure we did
 * not cause, and a hit reproduces the data as stored.
 * The same input is also a kernel-choice entry (src/kchoice.h), the other
 * file of the cache: parsed as it is, and with a valid check line appended
 * so that the fuzzer reaches the line parser behind the SHA-256; an entry
 * that parses must name usable kernel sets (rvk_compose accepts it). */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/embcache.h"
#include "src/kchoice.h"
#include "src/sha256.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[256];
static char entry_path[RVI_EMBCACHE_PATH_MAX];

static void cleanup(void)
{
	if (entry_path[0])
		unlink(entry_path);
	if (dir[0])
		rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* fuzz/run.sh names a directory it removes afterwards (libFuzzer
	 * ends with _Exit, so atexit handlers may not run); otherwise tmpfs
	 * when there is one, as libFuzzer writes thousands of files a second. */
	const char *given = getenv("RLAIFV_FUZZ_TMP");
	const char *base = given && *given                 ? given
	                   : access("/dev/shm", W_OK) == 0 ? "/dev/shm"
	                                                   : getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/rlaifv-fuzz-embcache.XXXXXX", base ? base : "/tmp");
	if (!mkdtemp(dir)) {
		perror("fuzz_embcache: mkdtemp");
		exit(1);
	}
	atexit(cleanup);
	return 0;
}

static uint32_t u32_at(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* data as a kernel-choice entry, as it is and with its check line. */
static void kchoice_entry(const uint8_t *data, size_t size)
{
	rvk_choice c;
	rvk_table t;
	char name[512], msg[256];
	if (rvi_kchoice_parse((const char *)data, size, &c) &&
	    !rvk_compose(&t, name, sizeof(name), &c, msg, sizeof(msg)))
		abort();
	char *text = malloc(size + 80);
	if (!text)
		return;
	uint8_t digest[RVI_SHA256_BYTES];
	char hex[2 * RVI_SHA256_BYTES + 1];
	rvi_sha256(data, size, digest);
	rvi_sha256_hex(digest, hex);
	memcpy(text, data, size);
	const int n = snprintf(text + size, 80, "check %s\n", hex);
	if (rvi_kchoice_parse(text, size + (size_t)n, &c) &&
	    !rvk_compose(&t, name, sizeof(name), &c, msg, sizeof(msg))) {
		fprintf(stderr, "fuzz_embcache: a parsed kernel choice does not compose: %s\n",
		        msg);
		abort();
	}
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	kchoice_entry(data, size);
	uint8_t key[RVI_SHA256_BYTES] = {0};
	int64_t rows = 1, cols = 1;
	if (size >= 8 + RVI_SHA256_BYTES)
		memcpy(key, data + 8, RVI_SHA256_BYTES);
	if (size >= 48) {
		uint64_t r = u32_at(data + 40), c = u32_at(data + 44);
		/* Header dimensions up to 64 Ki floats; others as small ones. */
		if (r >= 1 && c >= 1 && r * c <= (1u << 16)) {
			rows = (int64_t)r;
			cols = (int64_t)c;
		} else {
			rows = 1 + (int64_t)(r % 64);
			cols = 1 + (int64_t)(c % 64);
		}
		if (data[7] & 1)
			rows++;
	}
	rvi_err err;
	if (rvi_embcache_entry_path(dir, key, entry_path, sizeof(entry_path), &err) != RV_OK)
		abort();
	int fd = open(entry_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size)) {
		perror("fuzz_embcache: write");
		abort();
	}
	close(fd);

	float *out = malloc((size_t)(rows * cols) * sizeof(float));
	if (!out)
		return 0;
	int rc = rvi_embcache_load(dir, key, rows, cols, out, &err);
	if (rc != RV_OK && rc != RVI_EMBCACHE_MISS) {
		fprintf(stderr, "fuzz_embcache: unexpected status %d: %s\n", rc, err.msg);
		abort();
	}
	if (rc == RV_OK) {
		/* Store what was read under the same key and read it back: a hit
		 * must survive a round trip bit for bit. */
		float *again = malloc((size_t)(rows * cols) * sizeof(float));
		if (again) {
			if (rvi_embcache_store(dir, key, rows, cols, out, &err) != RV_OK ||
			    rvi_embcache_load(dir, key, rows, cols, again, &err) != RV_OK ||
			    memcmp(out, again, (size_t)(rows * cols) * sizeof(float)) != 0) {
				fprintf(stderr, "fuzz_embcache: round trip failed: %s\n", err.msg);
				abort();
			}
			free(again);
		}
	}
	free(out);
	return 0;
}
