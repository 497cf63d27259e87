/* test_api_misuse.c: the public API used wrongly, as a careless or hostile
 * caller would: NULL pointers, every numeric field of the params structs
 * out of range, special files as paths, one context from two threads, an
 * image over a limit whose embedding is cached, a projector changed in
 * place, and the log channel's warnings. Like test_c_api.c it includes only
 * <rlaifv.h> and links the shared library. Each misuse must give its
 * documented status and a message naming the argument, never a crash (run
 * under ASan/UBSan by .ci/hardening.sh, and under TSan by
 * tests/tsan.test where the toolchain has it). */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>
#include <fcntl.h>

#include <rlaifv.h>

#include "public_check.h"

/* A status and a message that holds phrase. */
#define EXPECT(rc, want, msg, phrase)                                                              \
	CHECK((rc) == (want) && strstr((msg), (phrase)), "status %d '%s' (want %d, '%s')",         \
	      (int)(rc), (msg), (int)(want), (phrase))

static char tmp_dir[64];

static const char *tmp(const char *name)
{
	static char path[2][256];
	static int k;
	k ^= 1;
	snprintf(path[k], sizeof path[k], "%s/%s", tmp_dir, name);
	return path[k];
}

/* ---- the log channel ----------------------------------------------------- */

static int n_warnings;
static char last_warning[1024];

static void on_log(rv_log_level level, const char *msg, void *user)
{
	CHECK(user == &n_warnings, "the callback got another user pointer");
	CHECK(msg && !strchr(msg, '\n'), "a log message is not one line");
	if (level == RV_LOG_WARN) {
		n_warnings++;
		snprintf(last_warning, sizeof last_warning, "%s", msg);
	}
}

/* ---- NULLs and ranges ---------------------------------------------------- */

static void test_nulls(rv_model *model, rv_context *ctx)
{
	char err[512];
	rv_model *m = (rv_model *)1;
	rv_status rc = rv_model_load(data("stories260K.gguf"), NULL, NULL, err, sizeof err);
	EXPECT(rc, RV_ERR_INVALID_ARG, err, "out");
	rc = rv_model_load(NULL, NULL, &m, err, sizeof err);
	EXPECT(rc, RV_ERR_INVALID_ARG, err, "path");
	CHECK(m == NULL, "*out not cleared");
	rc = rv_model_load(NULL, NULL, &m, NULL, 0); /* no error buffer either */
	CHECK(rc == RV_ERR_INVALID_ARG, "%d", rc);
	rc = rv_model_load_mmproj(NULL, data("tiny-llava-mmproj-f32.gguf"), err, sizeof err);
	EXPECT(rc, RV_ERR_INVALID_ARG, err, "model");
	rc = rv_model_load_mmproj(model, NULL, err, sizeof err);
	EXPECT(rc, RV_ERR_INVALID_ARG, err, "path");
	rc = rv_model_check_tensors(NULL, err, sizeof err);
	EXPECT(rc, RV_ERR_INVALID_ARG, err, "model");

	rv_context *c = (rv_context *)1;
	rc = rv_context_new(NULL, NULL, &c, err, sizeof err);
	EXPECT(rc, RV_ERR_INVALID_ARG, err, "model");
	CHECK(c == NULL, "*out not cleared");
	rc = rv_context_new(model, NULL, NULL, err, sizeof err);
	EXPECT(rc, RV_ERR_INVALID_ARG, err, "out");

	CHECK(rv_model_has_vision(NULL) == 0 && rv_model_n_vocab(NULL) == 0 &&
	          rv_model_n_ctx_train(NULL) == 0 && rv_model_load_ms(NULL) == 0 &&
	          rv_context_n_ctx(NULL) == 0,
	      "getters on NULL");
	CHECK(rv_context_error(NULL) && *rv_context_error(NULL), "no message for a NULL context");
	rv_model_free(NULL);
	rv_context_free(NULL);
	rv_result_free(NULL);

	rv_result res;
	rv_gen_params gp = rv_gen_default_params();
	gp.n_predict = 2;
	rc = rv_generate(ctx, NULL, &gp, &res);
	EXPECT(rc, RV_ERR_INVALID_ARG, rv_context_error(ctx), "prompt is NULL");
	rc = rv_generate_prompt(ctx, NULL, &gp, &res);
	EXPECT(rc, RV_ERR_INVALID_ARG, rv_context_error(ctx), "prompt is NULL");
	rc = rv_generate(NULL, "hi", &gp, &res);
	CHECK(rc == RV_ERR_INVALID_ARG && res.text == NULL, "NULL context: %d", rc);
	rc = rv_generate(ctx, "hi", &gp, NULL);
	EXPECT(rc, RV_ERR_INVALID_ARG, rv_context_error(ctx), "result is NULL");
	int32_t *toks;
	int n;
	rc = rv_tokenize(ctx, NULL, -1, &toks, &n);
	EXPECT(rc, RV_ERR_INVALID_ARG, rv_context_error(ctx), "text");
	rc = rv_tokenize(ctx, "hi", -1, NULL, &n);
	EXPECT(rc, RV_ERR_INVALID_ARG, rv_context_error(ctx), "tokens");
	rc = rv_tokenize(NULL, "hi", -1, &toks, &n);
	CHECK(rc == RV_ERR_INVALID_ARG, "%d", rc);
	/* an image list that says it has images and has none */
	rv_prompt p = {"hi", NULL, 1, "llava", NULL};
	rc = rv_generate_prompt(ctx, &p, &gp, &res);
	CHECK(rc == RV_ERR_INVALID_ARG, "images NULL with n_images 1: %d", rc);
}

static void test_model_ranges(void)
{
	char err[512];
	rv_model *m;
	const int bad[] = {-1, RV_MAX_THREADS + 1, 65536, -2147483647 - 1};
	for (int i = 0; i < 4; i++) {
		rv_model_params mp = rv_model_default_params();
		mp.n_threads = bad[i];
		rv_status rc = rv_model_load(data("stories260K.gguf"), &mp, &m, err, sizeof err);
		EXPECT(rc, RV_ERR_INVALID_ARG, err, "rv_model_params.n_threads");
	}
}

static void test_context_ranges(rv_model *model)
{
	char err[512];
	struct {
		int field;
		int value;
		const char *name;
	} bad[] = {
	    {0, -1, "n_ctx"},          {0, RV_MAX_CTX + 1, "n_ctx"},
	    {1, -1, "n_batch"},        {1, RV_MAX_BATCH + 1, "n_batch"},
	    {2, -1, "n_threads"},      {2, 65536, "n_threads"},
	    {3, -1, "image_max_side"}, {3, RV_MAX_IMAGE_SIDE + 1, "image_max_side"},
	    {4, -1, "image_max_mib"},  {4, RV_MAX_IMAGE_MIB + 1, "image_max_mib"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		rv_context_params cp = rv_context_default_params();
		cp.no_cache = 1;
		int *f[] = {&cp.n_ctx, &cp.n_batch, &cp.n_threads, &cp.image_max_side,
		            &cp.image_max_mib};
		*f[bad[i].field] = bad[i].value;
		rv_context *c = (rv_context *)1;
		rv_status rc = rv_context_new(model, &cp, &c, err, sizeof err);
		EXPECT(rc, RV_ERR_INVALID_ARG, err, bad[i].name);
		CHECK(c == NULL, "%s: *out not cleared", bad[i].name);
	}
}

static void test_gen_ranges(rv_context *ctx)
{
	const char *names[] = {"n_candidates", "n_candidates", "temp",     "temp",  "temp",
	                       "top_p",        "top_p",        "min_p",    "min_p", "beta",
	                       "beta",         "score mode",   "reference"};
	for (int i = 0; i < 13; i++) {
		rv_gen_params gp = rv_gen_default_params();
		gp.n_predict = 2;
		switch (i) {
		case 0:
			gp.n_candidates = 0;
			break;
		case 1:
			gp.n_candidates = RV_MAX_CANDIDATES + 1;
			break;
		case 2:
			gp.temp = NAN;
			break;
		case 3:
			gp.temp = -0.5f;
			break;
		case 4:
			gp.temp = RV_MAX_TEMP * 2;
			break;
		case 5:
			gp.top_p = 1.5f;
			break;
		case 6:
			gp.top_p = NAN;
			break;
		case 7:
			gp.min_p = -0.1f;
			break;
		case 8:
			gp.min_p = INFINITY;
			break;
		case 9:
			gp.beta = 0;
			break;
		case 10:
			gp.beta = INFINITY;
			break;
		case 11:
			gp.score = (rv_score_mode)7;
			break;
		case 12:
			gp.reference = ctx;
			break;
		}
		rv_result res;
		rv_status rc = rv_generate(ctx, "hi", &gp, &res);
		EXPECT(rc, RV_ERR_INVALID_ARG, rv_context_error(ctx), names[i]);
		CHECK(res.text == NULL && res.n_candidates == 0, "%s: result not empty", names[i]);
	}
}

/* ---- special files ------------------------------------------------------- */

/* A FIFO nobody writes, a directory and a character device as the model,
 * the projector and an image: refused at once (alarm: a hang fails). */
static void test_special_files(rv_model *vision_model, rv_context *vision_ctx)
{
	char err[512];
	CHECK(mkfifo(tmp("fifo"), 0600) == 0, "mkfifo: %s", strerror(errno));
	const char *paths[] = {tmp("fifo"), tmp_dir, "/dev/zero"};
	const char *why[] = {"FIFO", "directory", "character device"};
	alarm(60);
	for (int i = 0; i < 3; i++) {
		rv_model *m = (rv_model *)1;
		rv_status rc = rv_model_load(paths[i], NULL, &m, err, sizeof err);
		EXPECT(rc, RV_ERR_IO, err, why[i]);
		CHECK(m == NULL, "*out not cleared");
		rc = rv_model_load_mmproj(vision_model, paths[i], err, sizeof err);
		CHECK(rc == RV_ERR_INVALID_ARG, "a second projector: %d", rc); /* it has one */

		rv_model *text = NULL;
		rc = rv_model_load(data("tiny-llava-text-f32.gguf"), NULL, &text, err, sizeof err);
		CHECK(rc == RV_OK, "%s", err);
		if (rc == RV_OK) {
			rc = rv_model_load_mmproj(text, paths[i], err, sizeof err);
			EXPECT(rc, RV_ERR_IO, err, why[i]);
			CHECK(!rv_model_has_vision(text), "a failed projector left behind");
			rv_model_free(text);
		}

		const char *images[] = {paths[i]};
		rv_prompt p = {"What is this?", images, 1, NULL, NULL};
		rv_gen_params gp = rv_gen_default_params();
		gp.n_predict = 1;
		gp.n_candidates = 1;
		rv_result res;
		rc = rv_generate_prompt(vision_ctx, &p, &gp, &res);
		EXPECT(rc, RV_ERR_IMAGE, rv_context_error(vision_ctx), why[i]);
	}
	alarm(0);
	unlink(tmp("fifo"));
}

/* ---- threads ------------------------------------------------------------- */

typedef struct shared {
	rv_context *ctx;
	atomic_int started, intruder_done;
	rv_status intruder_rc[3];
	char text[256];
} shared;

/* The first piece of the answer holds the call open until the intruder has
 * tried its calls, so that they certainly overlap. */
static int hold_open(const char *piece, size_t len, void *user)
{
	shared *s = user;
	(void)piece, (void)len;
	atomic_store(&s->started, 1);
	for (int i = 0; i < 20000 && !atomic_load(&s->intruder_done); i++)
		usleep(500);
	return 0;
}

static void *owner(void *arg)
{
	shared *s = arg;
	rv_gen_params gp = rv_gen_default_params();
	gp.n_predict = 16;
	gp.temp = 0;
	gp.on_text = hold_open;
	gp.user = s;
	rv_result res;
	rv_status rc = rv_generate(s->ctx, "Once upon a time", &gp, &res);
	snprintf(s->text, sizeof s->text, "%s", rc == RV_OK ? res.text : "(failed)");
	rv_result_free(&res);
	atomic_store(&s->started, 1); /* never leave the intruder waiting */
	return NULL;
}

static void no_task(int index, rv_status st, const char *msg, rv_result *res, void *user)
{
	(void)index, (void)st, (void)msg, (void)res, (void)user;
}

static void *intruder(void *arg)
{
	shared *s = arg;
	while (!atomic_load(&s->started))
		usleep(100);
	rv_gen_params gp = rv_gen_default_params();
	gp.n_predict = 4;
	rv_result res;
	s->intruder_rc[0] = rv_generate(s->ctx, "The little dog", &gp, &res);
	rv_result_free(&res);
	int32_t *toks = NULL;
	int n = 0;
	s->intruder_rc[1] = rv_tokenize(s->ctx, "hello", -1, &toks, &n);
	free(toks);
	rv_prompt p = {"The little dog", NULL, 0, "none", NULL, 0, 0};
	s->intruder_rc[2] = rv_generate_batch(s->ctx, 1, &p, &gp, 2, no_task, NULL);
	atomic_store(&s->intruder_done, 1);
	return NULL;
}

static void greedy(rv_context *ctx, char *out, size_t cap)
{
	rv_gen_params gp = rv_gen_default_params();
	gp.n_predict = 16;
	gp.temp = 0;
	rv_result res;
	rv_status rc = rv_generate(ctx, "Once upon a time", &gp, &res);
	snprintf(out, cap, "%s", rc == RV_OK ? res.text : "(failed)");
	rv_result_free(&res);
}

static void *own_context(void *arg)
{
	shared *s = arg;
	greedy(s->ctx, s->text, sizeof s->text);
	return NULL;
}

static void test_threads(rv_model *model)
{
	char err[512], want[256];
	rv_context_params cp = rv_context_default_params();
	cp.n_ctx = 64;
	cp.n_threads = 1;
	rv_context *ctx, *ctx2;
	CHECK(rv_context_new(model, &cp, &ctx, err, sizeof err) == RV_OK, "%s", err);
	CHECK(rv_context_new(model, &cp, &ctx2, err, sizeof err) == RV_OK, "%s", err);
	greedy(ctx, want, sizeof want);
	CHECK(strlen(want) > 8, "reference answer '%s'", want);

	/* One context, two threads: the second gets RV_ERR_BUSY; the first's
	 * answer is untouched. */
	shared s = {.ctx = ctx};
	pthread_t a, b;
	pthread_create(&a, NULL, owner, &s);
	pthread_create(&b, NULL, intruder, &s);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	CHECK(s.intruder_rc[0] == RV_ERR_BUSY, "rv_generate on a busy context: %d",
	      s.intruder_rc[0]);
	CHECK(s.intruder_rc[1] == RV_ERR_BUSY, "rv_tokenize on a busy context: %d",
	      s.intruder_rc[1]);
	CHECK(s.intruder_rc[2] == RV_ERR_BUSY, "rv_generate_batch on a busy context: %d",
	      s.intruder_rc[2]);
	CHECK(strcmp(s.text, want) == 0, "answer under contention '%s', alone '%s'", s.text, want);
	/* and the context works again afterwards */
	char again[256];
	greedy(ctx, again, sizeof again);
	CHECK(strcmp(again, want) == 0, "answer after contention '%s'", again);

	/* A context busy as another call's reference is busy too. */
	s = (shared){.ctx = ctx2};
	pthread_create(&a, NULL, owner, &s);
	while (!atomic_load(&s.started))
		usleep(100);
	rv_gen_params gp = rv_gen_default_params();
	gp.n_predict = 2;
	gp.reference = ctx2;
	rv_result res;
	rv_status rc = rv_generate(ctx, "hi", &gp, &res);
	EXPECT(rc, RV_ERR_BUSY, rv_context_error(ctx), "reference");
	/* rv_generate_batch likewise; and one refused for its arguments (two
	 * references) leaves the busy reference busy */
	rv_prompt bp[2] = {{"hi", NULL, 0, "none", NULL, 0, 0},
	                   {"hi", NULL, 0, "none", NULL, 0, 0}};
	rv_gen_params bg[2] = {gp, gp};
	rc = rv_generate_batch(ctx, 2, bp, bg, 2, no_task, NULL);
	EXPECT(rc, RV_ERR_BUSY, rv_context_error(ctx), "reference");
	bg[1].reference = NULL;
	rc = rv_generate_batch(ctx, 2, bp, bg, 2, no_task, NULL);
	EXPECT(rc, RV_ERR_INVALID_ARG, rv_context_error(ctx), "another reference");
	rc = rv_generate(ctx, "hi", &gp, &res);
	EXPECT(rc, RV_ERR_BUSY, rv_context_error(ctx), "reference");
	atomic_store(&s.intruder_done, 1);
	pthread_join(a, NULL);

	/* One model, one context per thread: the documented way. */
	shared t1 = {.ctx = ctx}, t2 = {.ctx = ctx2};
	pthread_create(&a, NULL, own_context, &t1);
	pthread_create(&b, NULL, own_context, &t2);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	CHECK(!strcmp(t1.text, want) && !strcmp(t2.text, want), "per-thread answers '%s' '%s'",
	      t1.text, t2.text);
	rv_context_free(ctx2);
	rv_context_free(ctx);
}

/* ---- the embedding cache: limits, identity, warnings --------------------- */

static int count_entries(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	int n = 0;
	for (struct dirent *e; d && (e = readdir(d));) {
		size_t l = strlen(e->d_name), k = strlen(suffix);
		n += l > k && !strcmp(e->d_name + l - k, suffix);
	}
	if (d)
		closedir(d);
	return n;
}

static rv_status describe(rv_model *model, const char *cache_dir, int max_side, char *err,
                          size_t err_size)
{
	rv_context_params cp = rv_context_default_params();
	cp.n_ctx = 256;
	cp.cache_dir = cache_dir;
	cp.image_max_side = max_side;
	rv_context *ctx;
	rv_status rc = rv_context_new(model, &cp, &ctx, err, err_size);
	if (rc != RV_OK)
		return rc;
	const char *images[] = {data("shapes_64x48.png")};
	rv_prompt p = {"What is this?", images, 1, NULL, NULL};
	rv_gen_params gp = rv_gen_default_params();
	gp.n_predict = 2;
	gp.n_candidates = 1;
	gp.temp = 0;
	rv_result res;
	rc = rv_generate_prompt(ctx, &p, &gp, &res);
	snprintf(err, err_size, "%s", rv_context_error(ctx));
	rv_result_free(&res);
	rv_context_free(ctx);
	return rc;
}

static rv_model *load_vision(const char *mmproj)
{
	char err[512];
	rv_model *m = NULL;
	rv_status rc = rv_model_load(data("tiny-llava-text-f32.gguf"), NULL, &m, err, sizeof err);
	if (rc == RV_OK)
		rc = rv_model_load_mmproj(m, mmproj, err, sizeof err);
	CHECK(rc == RV_OK, "%s", err);
	if (rc != RV_OK) {
		rv_model_free(m);
		return NULL;
	}
	return m;
}

static int copy_file(const char *from, const char *to)
{
	FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
	int ok = a && b;
	char buf[65536];
	for (size_t n; ok && (n = fread(buf, 1, sizeof buf, a)) > 0;)
		ok = fwrite(buf, 1, n, b) == n;
	if (a)
		fclose(a);
	if (b)
		ok = fclose(b) == 0 && ok;
	return ok;
}

static void test_cache(void)
{
	char err[512];
	const char *cache = tmp("cache");
	const char *mmproj = tmp("mmproj.gguf");
	CHECK(copy_file(data("tiny-llava-mmproj-f32.gguf"), mmproj), "copy the mmproj");
	rv_model *m = load_vision(mmproj);
	if (!m)
		return;
	n_warnings = 0;
	rv_status rc = describe(m, cache, 0, err, sizeof err);
	CHECK(rc == RV_OK, "%s", err);
	CHECK(count_entries(cache, ".emb") == 1 && count_entries(cache, ".id") == 1,
	      "%d entries, %d id files", count_entries(cache, ".emb"), count_entries(cache, ".id"));
	CHECK(n_warnings == 0, "a warning with a working cache: %s", last_warning);

	/* Limits are about the input: a cached image is refused as well. */
	rc = describe(m, cache, 40, err, sizeof err);
	EXPECT(rc, RV_ERR_IMAGE, err, "more than the limit of 40 per side");
	rv_model_free(m);

	/* The same projector file again: the same entry. */
	m = load_vision(mmproj);
	rc = describe(m, cache, 0, err, sizeof err);
	CHECK(rc == RV_OK && count_entries(cache, ".emb") == 1, "%s; %d entries", err,
	      count_entries(cache, ".emb"));
	rv_model_free(m);

	/* The projector changed in place, one bit in the middle of its
	 * weights, size and mtime kept: a new entry, not the old embedding. */
	struct stat st;
	CHECK(stat(mmproj, &st) == 0, "stat");
	int fd = open(mmproj, O_RDWR);
	unsigned char byte = 0;
	off_t at = (st.st_size / 2) & ~(off_t)3; /* the low mantissa byte of an f32 */
	CHECK(fd >= 0 && pread(fd, &byte, 1, at) == 1, "read %s", mmproj);
	byte ^= 1;
	CHECK(pwrite(fd, &byte, 1, at) == 1 && close(fd) == 0, "write %s", mmproj);
	struct timespec times[2] = {st.st_atim, st.st_mtim};
	CHECK(utimensat(AT_FDCWD, mmproj, times, 0) == 0, "utimensat");
	m = load_vision(mmproj);
	rc = describe(m, cache, 0, err, sizeof err);
	CHECK(rc == RV_OK && count_entries(cache, ".emb") == 2,
	      "an edited projector reused the old entry: %s; %d entries", err,
	      count_entries(cache, ".emb"));

	/* A cache directory that cannot be made: one warning, the run goes on. */
	n_warnings = 0;
	FILE *f = fopen(tmp("plain"), "w");
	CHECK(f && fclose(f) == 0, "create a file");
	rc = describe(m, tmp("plain/cache"), 0, err, sizeof err);
	CHECK(rc == RV_OK, "a bad cache directory failed the run: %s", err);
	CHECK(n_warnings == 1 && strstr(last_warning, "plain/cache"), "%d warnings, last '%s'",
	      n_warnings, last_warning);

	/* A directory where nothing can be written (even by root): the failed
	 * writes of the id file and the entry are reported once. */
	n_warnings = 0;
	rc = describe(m, "/proc/self", 0, err, sizeof err);
	CHECK(rc == RV_OK, "an unwritable cache failed the run: %s", err);
	CHECK(n_warnings == 1 && strstr(last_warning, "/proc/self"), "%d warnings, last '%s'",
	      n_warnings, last_warning);

	/* Without a callback nothing is reported (and nothing printed). */
	rv_log_set(NULL, NULL);
	n_warnings = 0;
	rc = describe(m, "/proc/self", 0, err, sizeof err);
	CHECK(rc == RV_OK && n_warnings == 0, "%s; %d warnings", err, n_warnings);
	rv_log_set(on_log, &n_warnings);
	rv_model_free(m);
}

static void remove_tree(const char *dir)
{
	DIR *d = opendir(dir);
	char path[512];
	for (struct dirent *e; d && (e = readdir(d));) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		if (unlink(path) != 0)
			remove_tree(path);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

int main(void)
{
	set_data_dir();
	snprintf(tmp_dir, sizeof tmp_dir, "/tmp/rlaifv-api-misuse-XXXXXX");
	if (!mkdtemp(tmp_dir)) {
		printf("mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	rv_log_set(on_log, &n_warnings);

	char err[512];
	rv_model *model = NULL;
	rv_context *ctx = NULL;
	rv_context_params cp = rv_context_default_params();
	cp.n_ctx = 64;
	cp.no_cache = 1;
	if (rv_model_load(data("stories260K.gguf"), NULL, &model, err, sizeof err) != RV_OK ||
	    rv_context_new(model, &cp, &ctx, err, sizeof err) != RV_OK) {
		printf("FAIL: cannot load stories260K: %s\n", err);
		return 1;
	}
	test_nulls(model, ctx);
	test_model_ranges();
	test_context_ranges(model);
	test_gen_ranges(ctx);
	test_threads(model);
	rv_context_free(ctx);
	rv_model_free(model);

	rv_model *vision = load_vision(data("tiny-llava-mmproj-f32.gguf"));
	if (vision) {
		cp.n_ctx = 256;
		rv_context *vctx = NULL;
		CHECK(rv_context_new(vision, &cp, &vctx, err, sizeof err) == RV_OK, "%s", err);
		if (vctx)
			test_special_files(vision, vctx);
		rv_context_free(vctx);
		rv_model_free(vision);
	}
	test_cache();
	remove_tree(tmp_dir);
	printf("test_api_misuse: %d checks, %d failed\n", checks, fails);
	return fails != 0;
}
