/* test_hub.c: rlaifv-infer's Hugging Face Hub client (programs/rlaifv-infer/
 * hub.c) against a Hub this test serves itself on 127.0.0.1: the tree
 * listing, resolve/ HEADs and GETs answered by a redirect to a "CDN" path
 * with X-Repo-Commit / X-Linked-Etag / X-Linked-Size, Range requests, and
 * on demand a cut connection, a wrong byte, 401/404/500, or malicious
 * answers. The server is a forked process (one child per connection, so
 * two clients can be served at once) that logs each request to a file the
 * checks read. Also checks the choosing rules on plain listings, the
 * environment variables, a cache written the way huggingface_hub lays it
 * out, and rlaifv-infer --hf end to end on the shipped tiny model. */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "programs/rlaifv-infer/hub.h"
#include "src/sha256.h"
#include "tests/testutil.h"

#define COMMIT  "0123456789abcdef0123456789abcdef01234567"
#define COMMIT2 "89abcdef0123456789abcdef0123456789abcdef"

static char g_endpoint[64];

#ifdef HAVE_CURL
/* ---- the Hub the test serves ----------------------------------------- */

typedef struct srv_file {
	const char *path;
	unsigned char *data;
	size_t len;
	char sha[65];
} srv_file;

typedef struct scenario {
	srv_file files[16];
	int n_files;
	const char *listing; /* a raw listing body instead of the files' */
	size_t listing_pad;  /* that many spaces before it (an oversized answer) */
	int listing_status;  /* answer the listing with this status */
	int listing_fails;   /* answer the first N listings with 500 */
	int head_status;     /* answer HEADs with this status */
	const char *commit;  /* X-Repo-Commit; COMMIT when NULL */
	const char *etag;    /* X-Linked-Etag instead of the sha256 */
	const char *size;    /* X-Linked-Size instead of the file's */
	size_t cut_at;       /* the first blob GET stops after this many bytes */
	int corrupt;         /* blobs arrive with one byte flipped */
	int huge_length;     /* blobs come with a Content-Length of 10^14 */
	int ignore_range;    /* a 200 with the whole file to a Range request */
	int slow_ms;         /* pause per 16 KB of a blob */
	const char *token;   /* answer 401 without "Authorization: Bearer <token>" */
	int page;            /* listing pages of this many files, linked by Link */
	const char *next;    /* a Link to this URL instead of the next page */
} scenario;

typedef struct shared {
	int cuts_done;
	int listings;
} shared;

static shared *g_shared; /* MAP_SHARED: counters across the server's children */
static char g_log[512];  /* request log: "METHOD PATH [range N] [auth]" lines */

static void sha_hex(const void *p, size_t n, char hex[65])
{
	uint8_t d[RVI_SHA256_BYTES];
	rvi_sha256(p, n, d);
	rvi_sha256_hex(d, hex);
}

static void add_file(scenario *s, const char *path, size_t len, unsigned seed)
{
	srv_file *f = &s->files[s->n_files++];
	f->path = path;
	f->len = len;
	f->data = malloc(len ? len : 1);
	for (size_t i = 0; i < len; i++) {
		seed = seed * 1103515245u + 12345u;
		f->data[i] = (unsigned char)(seed >> 16);
	}
	sha_hex(f->data, len, f->sha);
}

static void add_file_data(scenario *s, const char *path, const void *data, size_t len)
{
	srv_file *f = &s->files[s->n_files++];
	f->path = path;
	f->len = len;
	f->data = malloc(len ? len : 1);
	memcpy(f->data, data, len);
	sha_hex(f->data, len, f->sha);
}

static void log_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void log_line(const char *fmt, ...)
{
	char line[1200];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0 || n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	int fd = open(g_log, O_WRONLY | O_APPEND | O_CREAT, 0644);
	if (fd >= 0) {
		if (write(fd, line, (size_t)n) < 0)
			perror("log");
		close(fd);
	}
}

static void send_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
		if (w <= 0)
			return;
		c += w;
		n -= (size_t)w;
	}
}

static void reply(int fd, int status, const char *extra, const char *body, size_t len)
{
	char head[2048];
	int n = snprintf(head, sizeof(head),
	                 "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n",
	                 status, len, extra ? extra : "");
	send_all(fd, head, (size_t)n);
	send_all(fd, body, len);
}

static void url_decode(char *s)
{
	char *o = s;
	for (; *s; s++) {
		if (*s == '%' && s[1] && s[2]) {
			char h[3] = {s[1], s[2], 0};
			*o++ = (char)strtol(h, NULL, 16);
			s += 2;
		} else {
			*o++ = *s;
		}
	}
	*o = 0;
}

static void serve_listing(int fd, const scenario *s, const char *target)
{
	int k = __atomic_fetch_add(&g_shared->listings, 1, __ATOMIC_SEQ_CST);
	if (s->listing_status || k < s->listing_fails) {
		const char *b = "{\"error\":\"no\"}";
		reply(fd, s->listing_status ? s->listing_status : 500, NULL, b, strlen(b));
		return;
	}
	if (s->listing) {
		size_t n = strlen(s->listing), total = s->listing_pad + n;
		char head[256];
		int h = snprintf(
		    head, sizeof(head),
		    "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", total);
		send_all(fd, head, (size_t)h);
		char pad[4096];
		memset(pad, ' ', sizeof(pad));
		for (size_t left = s->listing_pad; left;) {
			size_t c = left < sizeof(pad) ? left : sizeof(pad);
			send_all(fd, pad, c);
			left -= c;
		}
		send_all(fd, s->listing, n);
		return;
	}
	char *b = malloc(65536);
	size_t n = (size_t)snprintf(
	    b, 65536, "[{\"type\":\"directory\",\"oid\":\"%s\",\"path\":\"sub\"}", COMMIT2);
	int first = 0, last = s->n_files;
	char link[512] = "";
	if (s->page) {
		const char *cur = strstr(target, "cursor=");
		first = cur ? atoi(cur + 7) : 0;
		last = first + s->page < s->n_files ? first + s->page : s->n_files;
		if (last < s->n_files || s->next)
			snprintf(link, sizeof(link), "Link: <%s%s%d>; rel=\"next\"\r\n",
			         s->next ? s->next : g_endpoint,
			         s->next ? ""
			                 : "/api/models/org/model/tree/main?recursive=true&cursor=",
			         last);
	}
	for (int i = first; i < last; i++)
		n += (size_t)snprintf(
		    b + n, 65536 - n,
		    ",{\"type\":\"file\",\"oid\":\"%s\",\"size\":%zu,\"path\":\"%s\","
		    "\"lfs\":{\"oid\":\"%s\",\"size\":%zu,\"pointerSize\":134}}",
		    COMMIT2, s->files[i].len, s->files[i].path, s->files[i].sha, s->files[i].len);
	n += (size_t)snprintf(b + n, 65536 - n, "]");
	reply(fd, 200, link, b, n);
	free(b);
}

static void serve_blob(int fd, const scenario *s, const srv_file *f, long long from)
{
	if (from < 0 || s->ignore_range)
		from = 0;
	size_t start = (size_t)from <= f->len ? (size_t)from : f->len;
	size_t len = f->len - start;
	char head[512];
	int h;
	if (s->huge_length)
		h = snprintf(head, sizeof(head),
		             "HTTP/1.1 200 OK\r\nContent-Length: 100000000000000\r\n\r\n");
	else if (start && !s->ignore_range)
		h = snprintf(head, sizeof(head),
		             "HTTP/1.1 206 Partial\r\nContent-Length: %zu\r\nContent-Range: bytes "
		             "%zu-%zu/%zu\r\nConnection: close\r\n\r\n",
		             len, start, f->len - 1, f->len);
	else
		h = snprintf(head, sizeof(head),
		             "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nAccept-Ranges: "
		             "bytes\r\nConnection: close\r\n\r\n",
		             len);
	send_all(fd, head, (size_t)h);
	size_t stop = f->len;
	if (s->cut_at && __atomic_fetch_add(&g_shared->cuts_done, 1, __ATOMIC_SEQ_CST) == 0)
		stop = s->cut_at > start ? s->cut_at : start;
	unsigned char *copy = malloc(f->len ? f->len : 1);
	memcpy(copy, f->data, f->len);
	if (s->corrupt && f->len)
		copy[f->len / 2] ^= 1;
	for (size_t at = start; at < stop;) {
		size_t c = stop - at < 16384 ? stop - at : 16384;
		send_all(fd, copy + at, c);
		at += c;
		if (s->slow_ms) {
			struct timespec ts = {0, s->slow_ms * 1000000L};
			nanosleep(&ts, NULL);
		}
	}
	free(copy);
}

static void serve_one(int fd, const scenario *s)
{
	char req[8192];
	size_t n = 0;
	while (n < sizeof(req) - 1) {
		ssize_t r = recv(fd, req + n, sizeof(req) - 1 - n, 0);
		if (r <= 0)
			break;
		n += (size_t)r;
		req[n] = 0;
		if (strstr(req, "\r\n\r\n"))
			break;
	}
	req[n] = 0;
	char method[16], target[4096];
	if (sscanf(req, "%15s %4095s", method, target) != 2)
		return;
	long long from = -1;
	const char *rg = strcasestr(req, "\r\nRange: bytes=");
	if (rg)
		from = atoll(rg + 15);
	char want[600] = "";
	if (s->token)
		snprintf(want, sizeof(want), "\r\nAuthorization: Bearer %s\r\n", s->token);
	int authed = s->token && strstr(req, want);
	int has_auth = strcasestr(req, "\r\nAuthorization:") != NULL;
	log_line("%s %s%s%s", method, target, rg ? " range" : "", has_auth ? " auth" : "");
	if (s->token && !authed && strncmp(target, "/cdn/", 5)) {
		reply(fd, 401, NULL, "", 0);
		return;
	}
	url_decode(target);
	const char *api = "/api/models/org/model/tree/";
	if (!strcmp(method, "GET") && !strncmp(target, api, strlen(api))) {
		serve_listing(fd, s, target);
		return;
	}
	const char *res = "/org/model/resolve/";
	if (!strncmp(target, res, strlen(res))) {
		const char *rest = target + strlen(res), *slash = strchr(rest, '/');
		const char *path = slash ? slash + 1 : "";
		for (int i = 0; i < s->n_files; i++) {
			if (strcmp(path, s->files[i].path))
				continue;
			if (s->head_status) {
				reply(fd, s->head_status, NULL, "", 0);
				return;
			}
			char extra[1024], len[32];
			snprintf(len, sizeof(len), "%zu", s->files[i].len);
			snprintf(extra, sizeof(extra),
			         "Location: /cdn/%d\r\nX-Repo-Commit: %s\r\nX-Linked-Etag: "
			         "\"%s\"\r\nX-Linked-Size: %s\r\nETag: \"%s\"\r\n",
			         i, s->commit ? s->commit : COMMIT,
			         s->etag ? s->etag : s->files[i].sha, s->size ? s->size : len,
			         COMMIT2);
			const char *body = "Found. Redirecting";
			reply(fd, 302, extra, body, strlen(body));
			return;
		}
		reply(fd, 404, "X-Error-Code: EntryNotFound\r\n", "", 0);
		return;
	}
	if (!strncmp(target, "/cdn/", 5)) {
		int i = atoi(target + 5);
		if (i >= 0 && i < s->n_files) {
			serve_blob(fd, s, &s->files[i], from);
			return;
		}
	}
	reply(fd, 404, NULL, "", 0);
}

static pid_t g_server;

static int g_listen = -1; /* one socket for every server, so the port stays */

static void server_start(const scenario *s)
{
	if (g_listen < 0) {
		struct sockaddr_in a = {0};
		a.sin_family = AF_INET;
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		g_listen = socket(AF_INET, SOCK_STREAM, 0);
		socklen_t al = sizeof(a);
		if (g_listen < 0 || bind(g_listen, (struct sockaddr *)&a, sizeof(a)) ||
		    listen(g_listen, 16) || getsockname(g_listen, (struct sockaddr *)&a, &al)) {
			perror("test server");
			exit(99);
		}
		snprintf(g_endpoint, sizeof(g_endpoint), "http://127.0.0.1:%d", ntohs(a.sin_port));
	}
	int ls = g_listen;
	memset(g_shared, 0, sizeof(*g_shared));
	unlink(g_log);
	g_server = fork();
	if (g_server == 0) {
		/* never outlive the test, even one that crashed */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		alarm(600);
		signal(SIGCHLD, SIG_IGN); /* connection children reap themselves */
		for (;;) {
			int c = accept(ls, NULL, NULL);
			if (c < 0)
				continue;
			if (fork() == 0) {
				alarm(60);
				close(ls);
				serve_one(c, s);
				shutdown(c, SHUT_RDWR);
				close(c);
				_exit(0);
			}
			close(c);
		}
	}
}

static void server_stop(void)
{
	if (g_server > 0) {
		kill(g_server, SIGTERM);
		waitpid(g_server, NULL, 0);
	}
	g_server = 0;
}

/* Lines of the request log that contain pat. */
static int log_count(const char *pat)
{
	size_t n;
	char *t = tu_read_file(g_log, &n);
	int k = 0;
	for (char *p = t; p && (p = strstr(p, pat)); p++)
		k++;
	free(t);
	return k;
}

static void scenario_free(scenario *s)
{
	for (int i = 0; i < s->n_files; i++)
		free(s->files[i].data);
	memset(s, 0, sizeof(*s));
}

#endif /* HAVE_CURL */

/* ---- helpers ------------------------------------------------------------ */

static char g_tmp[256];

static void env_for(hub_env *e, const char *cache)
{
	memset(e, 0, sizeof(*e));
	snprintf(e->cache, sizeof(e->cache), "%s/%s", g_tmp, cache);
	snprintf(e->endpoint, sizeof(e->endpoint), "%s", g_endpoint);
	e->max_tries = 3;
	e->retry_delay_ms = 1;
	e->stall_seconds = 10;
}

#ifdef HAVE_CURL
static int file_equals(const char *path, const srv_file *f)
{
	size_t n;
	char *d = tu_read_file(path, &n);
	int ok = d && n == f->len && !memcmp(d, f->data, n);
	free(d);
	return ok;
}
#endif

static int fetch(const hub_env *e, const char *quant, int want_mmproj, hub_paths *p, char *err)
{
	hub_request r = {"org/model", quant, NULL, NULL, NULL, want_mmproj};
	return hub_fetch(e, &r, p, err, 1024);
}

#ifdef HAVE_CURL
static int exists(const char *fmt, const char *a, const char *b)
{
	char p[PATH_MAX + 256];
	struct stat st;
	snprintf(p, sizeof(p), fmt, a, b);
	return lstat(p, &st) == 0;
}
#endif

static void rm_rf(const char *dir)
{
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd))
		fprintf(stderr, "cannot remove %s\n", dir);
}

/* ---- the checks --------------------------------------------------------- */

static void test_choose(void)
{
	const char *l1[] = {"README.md",
	                    "model-F16.gguf",
	                    "model-Q4_0.gguf",
	                    "model-Q8_0.gguf",
	                    "model-Q4_K_M.gguf",
	                    "mmproj-model-Q8_0.gguf",
	                    "mmproj-model-f16.gguf",
	                    "big/model-Q4_K_M-00002-of-00002.gguf",
	                    "big/model-Q4_K_M-00001-of-00002.gguf",
	                    "model.imatrix.gguf"};
	int n1 = (int)(sizeof(l1) / sizeof(l1[0]));
	CHECK(hub_choose_model(l1, n1, NULL) == 4, "default Q4_K_M: %d",
	      hub_choose_model(l1, n1, NULL));
	CHECK(hub_choose_model(l1, n1, "q8_0") == 3, "Q8_0 any case");
	CHECK(hub_choose_model(l1, n1, "F16") == 1, "F16");
	CHECK(hub_choose_model(l1, n1, "Q5_K_M") == -1, "an absent quant has no fallback");
	CHECK(hub_choose_mmproj(l1, n1, 4) == 6, "mmproj: F16 preferred over Q8_0");
	/* without Q4_K_M: Q8_0; without either: the first text GGUF */
	const char *l2[] = {"mmproj-F16.gguf", "x-Q4_0.gguf", "x-Q8_0.gguf"};
	CHECK(hub_choose_model(l2, 3, NULL) == 2, "Q8_0 next");
	CHECK(hub_choose_model(l2, 2, NULL) == 1, "then the first text GGUF");
	CHECK(hub_choose_model(l2, 1, NULL) == -1, "an mmproj is not a model");
	/* split sets: the first part is chosen, whatever the listing order */
	const char *l3[] = {"big/model-Q4_K_M-00002-of-00002.gguf",
	                    "big/model-Q4_K_M-00001-of-00002.gguf", "big/mmproj-F32.gguf",
	                    "mmproj-BF16.gguf", "other/mmproj-F16.gguf"};
	CHECK(hub_choose_model(l3, 5, NULL) == 1, "split: part 1");
	CHECK(hub_choose_mmproj(l3, 5, 1) == 2, "mmproj: the model's own folder first (%d)",
	      hub_choose_mmproj(l3, 5, 1));
	CHECK(hub_choose_mmproj(l3, 5, 0) == 2, "mmproj of part 2 likewise");
	const char *l4[] = {"model-Q4_K_M.gguf", "sub/mmproj-F16.gguf", "mmproj-Q8_0.gguf"};
	CHECK(hub_choose_mmproj(l4, 3, 0) == 2, "an mmproj in a subfolder is not the model's");
	char tag[32];
	hub_quant_tag("d/Model-7B-Q4_K_M-00001-of-00003.gguf", tag, sizeof(tag));
	CHECK(!strcmp(tag, "Q4_K_M"), "tag of a split part: %s", tag);
	hub_quant_tag("llama.q8_0.gguf", tag, sizeof(tag));
	CHECK(!strcmp(tag, "Q8_0"), "tag after a dot: %s", tag);
	hub_quant_tag("model.bin", tag, sizeof(tag));
	CHECK(!tag[0], "no tag off GGUFs");

	char repo[256], quant[64], err[256];
	CHECK(hub_parse_spec("ggml-org/SmolVLM-500M-Instruct-GGUF:Q8_0", repo, sizeof(repo), quant,
	                     sizeof(quant), err, sizeof(err)) == HUB_OK &&
	          !strcmp(repo, "ggml-org/SmolVLM-500M-Instruct-GGUF") && !strcmp(quant, "Q8_0"),
	      "spec");
	static const char *const bad_specs[] = {"../x",   "a/b/c", "a//b",     "a/..",
	                                        "a--b/c", "/a",    "a/b:",     "a/b:Q4/x",
	                                        "a/b:.",  "a b/c", "a/b:Q4 K", ""};
	for (size_t i = 0; i < sizeof(bad_specs) / sizeof(bad_specs[0]); i++)
		CHECK(hub_parse_spec(bad_specs[i], repo, sizeof(repo), quant, sizeof(quant), err,
		                     sizeof(err)) == HUB_ERR_USAGE,
		      "spec '%s' refused", bad_specs[i]);
}

static void test_env(void)
{
	static const char *const vars[] = {
	    "HF_HUB_CACHE",           "HUGGINGFACE_HUB_CACHE", "HF_HOME",
	    "XDG_CACHE_HOME",         "HF_ENDPOINT",           "HF_TOKEN",
	    "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH",         "HF_HUB_OFFLINE",
	    "TRANSFORMERS_OFFLINE"};
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
	hub_env e;
	char err[256], home[512], p[600];
	snprintf(home, sizeof(home), "%s/hfhome", g_tmp);
	mkdir(home, 0755);
	setenv("HOME", g_tmp, 1);
	CHECK(hub_env_init(&e, err, sizeof(err)) == HUB_OK, "%s", err);
	snprintf(p, sizeof(p), "%s/.cache/huggingface/hub", g_tmp);
	CHECK(!strcmp(e.cache, p), "default cache: %s", e.cache);
	CHECK(!strcmp(e.endpoint, "https://huggingface.co"), "default endpoint");
	CHECK(!e.offline && !e.token[0], "online, anonymous");
	setenv("XDG_CACHE_HOME", "/xdg", 1);
	hub_env_init(&e, err, sizeof(err));
	CHECK(!strcmp(e.cache, "/xdg/huggingface/hub"), "XDG_CACHE_HOME: %s", e.cache);
	setenv("HF_HOME", home, 1);
	snprintf(p, sizeof(p), "%s/token", home);
	FILE *f = fopen(p, "w");
	fputs("hf_fromfile\n", f);
	fclose(f);
	setenv("HF_ENDPOINT", "http://mirror.example//", 1);
	setenv("HF_HUB_OFFLINE", "yes", 1);
	hub_env_init(&e, err, sizeof(err));
	snprintf(p, sizeof(p), "%s/hub", home);
	CHECK(!strcmp(e.cache, p), "HF_HOME/hub: %s", e.cache);
	CHECK(!strcmp(e.token, "hf_fromfile"), "token file: '%s'", e.token);
	CHECK(!strcmp(e.endpoint, "http://mirror.example"), "endpoint: %s", e.endpoint);
	CHECK(e.offline, "HF_HUB_OFFLINE=yes");
	setenv("HF_HUB_OFFLINE", "0", 1);
	setenv("TRANSFORMERS_OFFLINE", "TRUE", 1);
	setenv("HF_TOKEN", " hf_env ", 1);
	setenv("HF_HUB_CACHE", "~/c", 1);
	hub_env_init(&e, err, sizeof(err));
	snprintf(p, sizeof(p), "%s/c", g_tmp);
	CHECK(e.offline, "TRANSFORMERS_OFFLINE=TRUE");
	CHECK(!strcmp(e.token, "hf_env"), "HF_TOKEN first: '%s'", e.token);
	CHECK(!strcmp(e.cache, p), "HF_HUB_CACHE with ~: %s", e.cache);
	setenv("HF_TOKEN", "hf_a\r\nX-Evil: 1", 1);
	CHECK(hub_env_init(&e, err, sizeof(err)) == HUB_ERR_USAGE, "a token with CR LF refused");
	setenv("HF_ENDPOINT", "file:///etc", 1);
	unsetenv("HF_TOKEN");
	CHECK(hub_env_init(&e, err, sizeof(err)) == HUB_ERR_USAGE, "a file:// endpoint refused");
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
}

#ifdef HAVE_CURL
static void test_fetch_and_reuse(void)
{
	scenario s = {0};
	add_file(&s, "model-Q8_0.gguf", 70001, 1);
	add_file(&s, "model-Q4_K_M.gguf", 50000, 2);
	add_file(&s, "mmproj-model-f16.gguf", 30000, 3);
	add_file(&s, "README.md", 10, 4);
	server_start(&s);
	hub_env e;
	hub_paths p;
	char err[1024], rdir[PATH_MAX + 64], want[PATH_MAX + 512];
	env_for(&e, "c1");
	int st = fetch(&e, NULL, 1, &p, err);
	CHECK(st == HUB_OK, "first fetch: %s", err);
	snprintf(rdir, sizeof(rdir), "%s/models--org--model", e.cache);
	snprintf(want, sizeof(want), "%s/snapshots/%s/model-Q4_K_M.gguf", rdir, COMMIT);
	CHECK(!strcmp(p.model, want), "model path %s", p.model);
	CHECK(p.n_parts == 1, "one part");
	CHECK(file_equals(p.model, &s.files[1]) && file_equals(p.mmproj, &s.files[2]),
	      "the bytes served");
	/* the layout huggingface_hub writes */
	char link[PATH_MAX + 256], target[PATH_MAX + 512];
	ssize_t n = readlink(p.model, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	snprintf(target, sizeof(target), "../../blobs/%s", s.files[1].sha);
	CHECK(!strcmp(link, target), "relative link: %s", link);
	CHECK(exists("%s/blobs/%s", rdir, s.files[2].sha), "mmproj blob");
	CHECK(!exists("%s/blobs/%s", rdir, s.files[0].sha), "Q8_0 not fetched");
	CHECK(!exists("%s/blobs/%s.incomplete", rdir, s.files[1].sha), "no .incomplete left");
	snprintf(target, sizeof(target), "%s/refs/main", rdir);
	size_t rl;
	char *ref = tu_read_file(target, &rl);
	CHECK(ref && rl == 40 && !memcmp(ref, COMMIT, 40),
	      "refs/main holds the commit, no newline");
	free(ref);
	CHECK(exists("%s/.locks/models--org--model/%s.lock", e.cache, s.files[1].sha), "lock file");
	CHECK(log_count("GET /cdn/") == 2, "two blobs downloaded");
	CHECK(log_count("HEAD /org/model/resolve/main/model-Q4_K_M.gguf") == 1, "HEAD at main");

	/* again, online: HEADs, no blob */
	CHECK(fetch(&e, NULL, 1, &p, err) == HUB_OK, "second fetch: %s", err);
	CHECK(log_count("GET /cdn/") == 2, "nothing downloaded again");
	/* a text prompt: no projector fetched */
	CHECK(fetch(&e, "Q8_0", 0, &p, err) == HUB_OK && !p.mmproj[0], "Q8_0, no mmproj: %s", err);
	CHECK(file_equals(p.model, &s.files[0]), "Q8_0 bytes");
	CHECK(log_count("GET /cdn/") == 3, "one more blob");

	/* offline: the cache only, not one request */
	int before = log_count("\n");
	e.offline = 1;
	CHECK(fetch(&e, NULL, 1, &p, err) == HUB_OK, "offline: %s", err);
	CHECK(file_equals(p.model, &s.files[1]), "offline model");
	CHECK(log_count("\n") == before, "offline made a request");
	CHECK(fetch(&e, "F16", 0, &p, err) == HUB_ERR_NO_FILE && strstr(err, "Q4_K_M") &&
	          strstr(err, "Q8_0"),
	      "offline, a quant not cached lists what is: %s", err);
	e.offline = 0;

	/* the network is down: the cache answers */
	server_stop();
	snprintf(e.endpoint, sizeof(e.endpoint), "http://127.0.0.1:1");
	CHECK(fetch(&e, NULL, 1, &p, err) == HUB_OK, "network down: %s", err);
	CHECK(file_equals(p.model, &s.files[1]) && file_equals(p.mmproj, &s.files[2]),
	      "network down: cached bytes");
	env_for(&e, "empty");
	snprintf(e.endpoint, sizeof(e.endpoint), "http://127.0.0.1:1");
	CHECK(fetch(&e, NULL, 1, &p, err) == HUB_ERR_NETWORK && strstr(err, "cannot reach"),
	      "network down, nothing cached: %s", err);
	scenario_free(&s);
}

/* A cache written the way huggingface_hub writes it (from its documented
 * layout), byte for byte: used offline with no request, and online with
 * HEADs only. */
static void test_hf_layout(void)
{
	scenario s = {0};
	add_file(&s, "gguf/tiny-Q4_K_M.gguf", 4096, 7);
	add_file(&s, "gguf/mmproj-tiny-F16.gguf", 2048, 8);
	char rdir[PATH_MAX + 64], p[PATH_MAX + 256];
	snprintf(rdir, sizeof(rdir), "%s/hfcache/models--org--model", g_tmp);
	const char *dirs[] = {"",
	                      "/blobs",
	                      "/refs",
	                      "/snapshots",
	                      "/snapshots/" COMMIT,
	                      "/snapshots/" COMMIT "/gguf"};
	char top[PATH_MAX + 256];
	snprintf(top, sizeof(top), "%s/hfcache", g_tmp);
	mkdir(top, 0755);
	for (int i = 0; i < 6; i++) {
		snprintf(p, sizeof(p), "%s%s", rdir, dirs[i]);
		mkdir(p, 0755);
	}
	for (int i = 0; i < 2; i++) {
		snprintf(p, sizeof(p), "%s/blobs/%s", rdir, s.files[i].sha);
		FILE *f = fopen(p, "wb");
		fwrite(s.files[i].data, 1, s.files[i].len, f);
		fclose(f);
		char target[200];
		snprintf(target, sizeof(target), "../../../blobs/%s", s.files[i].sha);
		snprintf(p, sizeof(p), "%s/snapshots/%s/%s", rdir, COMMIT, s.files[i].path);
		CHECK(symlink(target, p) == 0, "symlink %s", p);
	}
	snprintf(p, sizeof(p), "%s/refs/main", rdir);
	FILE *f = fopen(p, "w");
	fputs(COMMIT, f);
	fclose(f);

	server_start(&s);
	hub_env e;
	hub_paths hp;
	char err[1024];
	env_for(&e, "hfcache");
	e.offline = 1;
	CHECK(fetch(&e, NULL, 1, &hp, err) == HUB_OK, "hf layout, offline: %s", err);
	CHECK(file_equals(hp.model, &s.files[0]) && file_equals(hp.mmproj, &s.files[1]),
	      "hf layout files");
	CHECK(log_count("\n") == 0, "offline: no request");
	e.offline = 0;
	CHECK(fetch(&e, NULL, 1, &hp, err) == HUB_OK, "hf layout, online: %s", err);
	CHECK(log_count("GET /cdn/") == 0 && log_count("HEAD ") == 2, "online: HEADs, no download");
	/* a pinned commit, offline, without refs */
	snprintf(p, sizeof(p), "%s/refs/main", rdir);
	unlink(p);
	e.offline = 1;
	hub_request r = {"org/model", NULL, "gguf/tiny-Q4_K_M.gguf", NULL, COMMIT, 0};
	CHECK(hub_fetch(&e, &r, &hp, err, sizeof(err)) == HUB_OK,
	      "--hf-revision COMMIT --hf-file: %s", err);
	hub_request r2 = {"org/model", NULL, NULL, NULL, "v1.0", 0};
	CHECK(hub_fetch(&e, &r2, &hp, err, sizeof(err)) == HUB_ERR_NETWORK,
	      "an unknown revision offline: %s", err);

	/* --hf-cache lists it */
	char lp[PATH_MAX + 256];
	snprintf(lp, sizeof(lp), "%s/cache-list.txt", g_tmp);
	FILE *out = fopen(lp, "w");
	CHECK(hub_cache_list(&e, out, err, sizeof(err)) == HUB_OK, "cache list");
	fclose(out);
	size_t ln;
	char *txt = tu_read_file(lp, &ln);
	CHECK(txt && strstr(txt, "org/model\t0123456789ab\tgguf/tiny-Q4_K_M.gguf\t4096"),
	      "cache list: %s", txt);
	free(txt);

	/* symlink games: a snapshot entry pointing out of blobs/ */
	snprintf(p, sizeof(p), "%s/snapshots/%s/%s", rdir, COMMIT, s.files[0].path);
	unlink(p);
	CHECK(symlink("/etc/passwd", p) == 0, "evil link");
	hub_request r3 = {"org/model", NULL, NULL, NULL, COMMIT, 0};
	CHECK(hub_fetch(&e, &r3, &hp, err, sizeof(err)) == HUB_ERR_REFUSED &&
	          strstr(err, "outside"),
	      "a link to /etc/passwd refused: %s", err);
	unlink(p);
	CHECK(symlink("../../../blobs/../../../x", p) == 0, "evil link 2");
	CHECK(hub_fetch(&e, &r3, &hp, err, sizeof(err)) == HUB_ERR_REFUSED,
	      "a link climbing out refused: %s", err);
	/* online, the bad link is replaced by the right one */
	e.offline = 0;
	CHECK(hub_fetch(&e, &r3, &hp, err, sizeof(err)) == HUB_OK &&
	          file_equals(hp.model, &s.files[0]),
	      "online repairs the link: %s", err);
	server_stop();
	scenario_free(&s);
}

static void test_resume(void)
{
	scenario s = {0};
	add_file(&s, "model-Q4_K_M.gguf", 300000, 11);
	s.cut_at = 123457;
	server_start(&s);
	hub_env e;
	hub_paths p;
	char err[1024];
	/* cut once, resumed within the same run */
	env_for(&e, "resume1");
	CHECK(fetch(&e, NULL, 0, &p, err) == HUB_OK, "cut + resume: %s", err);
	CHECK(file_equals(p.model, &s.files[0]), "resumed file bit-identical");
	CHECK(log_count("GET /cdn/0 range") == 1 && log_count("GET /cdn/0\n") == 1,
	      "one GET, then one with a Range");
	server_stop();

	/* cut, the run gives up, the next run resumes the .incomplete */
	server_start(&s);
	env_for(&e, "resume2");
	e.max_tries = 1;
	CHECK(fetch(&e, NULL, 0, &p, err) == HUB_ERR_NETWORK && strstr(err, "resume"),
	      "a cut with no retry fails: %s", err);
	char inc[PATH_MAX + 256];
	snprintf(inc, sizeof(inc), "%s/models--org--model/blobs/%s.incomplete", e.cache,
	         s.files[0].sha);
	struct stat st;
	CHECK(stat(inc, &st) == 0 && st.st_size == (off_t)s.cut_at, ".incomplete of %zu bytes kept",
	      s.cut_at);
	CHECK(fetch(&e, NULL, 0, &p, err) == HUB_OK, "resume in a new run: %s", err);
	CHECK(file_equals(p.model, &s.files[0]), "bit-identical after a second run");
	CHECK(log_count("GET /cdn/0 range") == 1, "the second run asked for a Range");
	server_stop();

	/* a server that ignores Range: restarts from 0, still right */
	s.ignore_range = 1;
	server_start(&s);
	env_for(&e, "resume3");
	e.max_tries = 1;
	CHECK(fetch(&e, NULL, 0, &p, err) == HUB_ERR_NETWORK, "cut: %s", err);
	CHECK(fetch(&e, NULL, 0, &p, err) == HUB_OK && file_equals(p.model, &s.files[0]),
	      "Range ignored: whole file again: %s", err);
	server_stop();
	scenario_free(&s);
}

static void test_refused(void)
{
	hub_env e;
	hub_paths p;
	char err[1024];
	scenario s = {0};
	add_file(&s, "model-Q4_K_M.gguf", 40000, 21);
	add_file(&s, "mmproj-F16.gguf", 1000, 22);

	/* sha256 mismatch: refused, nothing left behind */
	s.corrupt = 1;
	server_start(&s);
	env_for(&e, "bad1");
	CHECK(fetch(&e, NULL, 0, &p, err) == HUB_ERR_REFUSED && strstr(err, "sha256"),
	      "sha256 mismatch: %s", err);
	CHECK(!exists("%s/models--org--model/blobs/%s", e.cache, s.files[0].sha) &&
	          !exists("%s/models--org--model/blobs/%s.incomplete", e.cache, s.files[0].sha),
	      "no blob, no .incomplete after a mismatch");
	CHECK(!exists("%s/models--org--model/snapshots/%s", e.cache, COMMIT), "no snapshot");
	server_stop();
	s.corrupt = 0;

	/* a Content-Length beyond the listed size: refused before writing */
	s.huge_length = 1;
	server_start(&s);
	CHECK(fetch(&e, NULL, 0, &p, err) == HUB_ERR_REFUSED && strstr(err, "more than"),
	      "huge Content-Length: %s", err);
	server_stop();
	s.huge_length = 0;

	/* answers that are not what the Hub sends */
	static const struct {
		const char *listing, *why;
	} bad[] = {
	    {"[{\"type\":\"file\",\"path\":\"../../x-Q4_K_M.gguf\",\"size\":1}]", "unsafe path"},
	    {"[{\"type\":\"file\",\"path\":\"/etc/x-Q4_K_M.gguf\",\"size\":1}]", "unsafe path"},
	    {"[{\"type\":\"file\",\"path\":\"a/./x-Q4_K_M.gguf\",\"size\":1}]", "unsafe path"},
	    {"[{\"type\":\"file\",\"path\":\"a\\\\..\\\\x-Q4_K_M.gguf\",\"size\":1}]",
	     "unsafe path"},
	    {"[{\"type\":\"file\",\"path\":\"x\\u0000-Q4_K_M.gguf\",\"size\":1}]", "malformed"},
	    {"[{\"type\":\"file\",\"path\":\"x\\u00g1-Q4_K_M.gguf\",\"size\":1}]", "malformed"},
	    {"[{\"type\":\"file\",\"path\":\"x\\u00", "malformed"},
	    {"[{\"type\":\"file\",\"path\":\"x-Q4_K_M.gguf\",\"size\":-1}]", "malformed"},
	    {"[{\"type\":\"file\",\"path\":\"x-Q4_K_M.gguf\",\"size\":1e9}]", "malformed"},
	    {"[{\"type\":\"file\",\"path\":\"x-Q4_K_M.gguf\",\"size\":99999999999999999999999}]",
	     "malformed"},
	    {"[{\"type\":\"file\",\"path\":\"x-Q4_K_M.gguf\",\"size\":1,\"lfs\":{\"oid\":\"zz\"}}]",
	     "bad sha256"},
	    {"[{\"type\":\"file\",\"path\":\"x-Q4_K_M.gguf\"", "malformed"},
	    {"{\"error\":\"x\"}", "not a JSON array"},
	    {"[1,2]", "malformed"},
	    {"", "not a JSON array"},
	    {"[{\"type\":\"file\",\"x\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]"
	     "]]]]"
	     "]]]]]]]]}]",
	     "malformed"},
	    {"[{\"type\":\"file\",\"path\":\"x-Q4_K_M.gguf\",\"size\":1}] trailing", "malformed"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		s.listing = bad[i].listing;
		server_start(&s);
		int st = fetch(&e, NULL, 0, &p, err);
		CHECK(st == HUB_ERR_REFUSED && strstr(err, bad[i].why), "listing %zu (%s): %d %s",
		      i, bad[i].listing, st, err);
		server_stop();
	}
	/* a listing deeper than any real one: 100000 '[' */
	char *deep = malloc(100001);
	memset(deep, '[', 100000);
	deep[100000] = 0;
	s.listing = deep;
	server_start(&s);
	CHECK(fetch(&e, NULL, 0, &p, err) == HUB_ERR_REFUSED, "deep nesting: %s", err);
	server_stop();
	free(deep);
	/* an endless listing: cut off at the bound */
	s.listing = "[]";
	s.listing_pad = 9u << 20;
	server_start(&s);
	CHECK(fetch(&e, NULL, 0, &p, err) == HUB_ERR_REFUSED && strstr(err, "larger than"),
	      "oversized listing: %s", err);
	server_stop();
	s.listing_pad = 0;
	/* more than the disk holds: refused before a byte is asked for */
	s.listing = "[{\"type\":\"file\",\"path\":\"model-Q4_K_M.gguf\",\"size\":"
	            "1000000000000000000,\"lfs\":{\"oid\":\"00000000000000000000000000000000000"
	            "00000000000000000000000000000\"}}]";
	s.etag = "0000000000000000000000000000000000000000000000000000000000000000";
	s.size = "1000000000000000000";
	server_start(&s);
	CHECK(fetch(&e, NULL, 0, &p, err) == HUB_ERR_IO && strstr(err, "free"), "a 1 EB file: %s",
	      err);
	CHECK(log_count("GET /cdn/") == 0, "no download started");
	server_stop();
	s.listing = NULL;
	s.etag = NULL;
	s.size = NULL;

	/* headers that do not fit */
	s.commit = "../../../../tmp/evil";
	server_start(&s);
	CHECK(fetch(&e, NULL, 0, &p, err) == HUB_ERR_REFUSED && strstr(err, "X-Repo-Commit"),
	      "bad commit: %s", err);
	server_stop();
	s.commit = NULL;
	s.etag = "../../x";
	server_start(&s);
	CHECK(fetch(&e, NULL, 0, &p, err) == HUB_ERR_REFUSED && strstr(err, "etag"),
	      "etag not the sha256: %s", err);
	server_stop();
	s.etag = NULL;
	struct stat st;
	char evil[PATH_MAX + 256];
	snprintf(evil, sizeof(evil), "%s/tmp/evil", g_tmp);
	CHECK(stat(evil, &st) != 0, "nothing written outside the cache");
	scenario_free(&s);
}

static void test_errors(void)
{
	hub_env e;
	hub_paths p;
	char err[1024];
	scenario s = {0};
	add_file(&s, "model-Q4_0.gguf", 1000, 31);
	add_file(&s, "model-Q8_0.gguf", 1000, 32);
	env_for(&e, "err");

	s.listing_status = 401;
	server_start(&s);
	CHECK(fetch(&e, NULL, 0, &p, err) == HUB_ERR_AUTH && strstr(err, "HF_TOKEN"), "401: %s",
	      err);
	server_stop();
	s.listing_status = 404;
	server_start(&s);
	CHECK(fetch(&e, NULL, 0, &p, err) == HUB_ERR_NOT_FOUND && strstr(err, "not found"),
	      "404: %s", err);
	server_stop();
	s.listing_status = 500;
	server_start(&s);
	CHECK(fetch(&e, NULL, 0, &p, err) == HUB_ERR_NETWORK && strstr(err, "500"), "500: %s", err);
	CHECK(log_count("GET /api/") == e.max_tries, "retried %d times", e.max_tries);
	server_stop();
	s.listing_status = 0;
	s.listing_fails = 2;
	server_start(&s);
	CHECK(fetch(&e, NULL, 0, &p, err) == HUB_OK, "500 twice, then fine: %s", err);
	CHECK(file_equals(p.model, &s.files[1]), "Q8_0 when there is no Q4_K_M");
	server_stop();
	s.listing_fails = 0;
	s.head_status = 403;
	server_start(&s);
	env_for(&e, "err2");
	CHECK(fetch(&e, NULL, 0, &p, err) == HUB_ERR_AUTH, "403 on the file: %s", err);
	server_stop();
	s.head_status = 0;

	server_start(&s);
	CHECK(fetch(&e, "Q5_K_M", 0, &p, err) == HUB_ERR_NO_FILE && strstr(err, "Q4_0 Q8_0"),
	      "no such quant lists the quants: %s", err);
	CHECK(fetch(&e, NULL, 1, &p, err) == HUB_ERR_NO_FILE && strstr(err, "mmproj"),
	      "no mmproj for an image: %s", err);
	hub_request r = {"org/model", NULL, "nothere.gguf", NULL, NULL, 0};
	CHECK(hub_fetch(&e, &r, &p, err, sizeof(err)) == HUB_ERR_NO_FILE, "--hf-file absent: %s",
	      err);
	hub_request r2 = {"org/model", NULL, "../x.gguf", NULL, NULL, 0};
	CHECK(hub_fetch(&e, &r2, &p, err, sizeof(err)) == HUB_ERR_USAGE, "--hf-file ../: %s", err);
	hub_request r3 = {"org/model", NULL, NULL, NULL, "../../etc", 0};
	CHECK(hub_fetch(&e, &r3, &p, err, sizeof(err)) == HUB_ERR_USAGE, "revision ../: %s", err);
	/* --hf-list */
	char lp[PATH_MAX + 256];
	snprintf(lp, sizeof(lp), "%s/list.txt", g_tmp);
	FILE *out = fopen(lp, "w");
	CHECK(hub_list(&e, "org/model", NULL, out, err, sizeof(err)) == HUB_OK, "list: %s", err);
	fclose(out);
	size_t n;
	char *txt = tu_read_file(lp, &n);
	CHECK(txt && strstr(txt, "Q4_0") && strstr(txt, "model-Q8_0.gguf  [default]"), "list: %s",
	      txt);
	free(txt);
	server_stop();

	/* a token: sent to the Hub, not to the CDN it redirects to... here
	 * the same host, so only that it is sent at all */
	s.token = "hf_secret";
	server_start(&s);
	env_for(&e, "tok");
	CHECK(fetch(&e, NULL, 0, &p, err) == HUB_ERR_AUTH, "no token: %s", err);
	snprintf(e.token, sizeof(e.token), "hf_secret");
	CHECK(fetch(&e, NULL, 0, &p, err) == HUB_OK, "with the token: %s", err);
	server_stop();
	scenario_free(&s);
}

/* A listing in pages linked by Link headers is read whole; a next page
 * off the endpoint is refused. */
static void test_pages(void)
{
	scenario s = {0};
	char names[7][32];
	for (int i = 0; i < 7; i++) {
		snprintf(names[i], sizeof(names[i]), "m%d-Q%d_0.gguf", i, i + 2);
		add_file(&s, names[i], 100, 60u + (unsigned)i);
	}
	s.page = 3;
	server_start(&s);
	hub_env e;
	hub_paths p;
	char err[1024];
	env_for(&e, "pages");
	CHECK(fetch(&e, "Q8_0", 0, &p, err) == HUB_OK && file_equals(p.model, &s.files[6]),
	      "a file on the third page: %s", err);
	CHECK(log_count("GET /api/") == 3, "three pages read (%d)", log_count("GET /api/"));
	server_stop();
	s.next = "http://evil.example/steal";
	server_start(&s);
	CHECK(fetch(&e, "Q8_0", 0, &p, err) == HUB_ERR_REFUSED && strstr(err, "next page"),
	      "a next page elsewhere: %s", err);
	CHECK(log_count("GET /api/") == 1, "not followed");
	server_stop();
	scenario_free(&s);
}

/* A split GGUF comes as a set, links one folder deeper. */
static void test_split(void)
{
	scenario s = {0};
	add_file(&s, "big/model-Q4_K_M-00002-of-00002.gguf", 5000, 51);
	add_file(&s, "big/model-Q4_K_M-00001-of-00002.gguf", 6000, 52);
	add_file(&s, "big/mmproj-F16.gguf", 700, 53);
	add_file(&s, "mmproj-F32.gguf", 800, 54);
	server_start(&s);
	hub_env e;
	hub_paths p;
	char err[1024], part2[PATH_MAX + 256], link[256], want[256];
	env_for(&e, "split");
	CHECK(fetch(&e, NULL, 1, &p, err) == HUB_OK, "split set: %s", err);
	CHECK(p.n_parts == 2 && strstr(p.model, "/big/model-Q4_K_M-00001-of-00002.gguf"),
	      "part 1 is the model path: %s", p.model);
	CHECK(file_equals(p.model, &s.files[1]) && file_equals(p.mmproj, &s.files[2]),
	      "part 1 and the folder's mmproj");
	snprintf(part2, sizeof(part2), "%s/models--org--model/snapshots/%s/%s", e.cache, COMMIT,
	         s.files[0].path);
	CHECK(file_equals(part2, &s.files[0]), "part 2 fetched with it");
	ssize_t n = readlink(part2, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	snprintf(want, sizeof(want), "../../../blobs/%s", s.files[0].sha);
	CHECK(!strcmp(link, want), "link from a subfolder: %s", link);
	server_stop();
	scenario_free(&s);

	add_file(&s, "m-Q8_0-00001-of-00003.gguf", 100, 55);
	add_file(&s, "m-Q8_0-00003-of-00003.gguf", 100, 56);
	server_start(&s);
	env_for(&e, "split2");
	CHECK(fetch(&e, NULL, 0, &p, err) == HUB_ERR_NO_FILE && strstr(err, "lacks parts"),
	      "a split set with a part missing: %s", err);
	CHECK(log_count("GET /cdn/") == 0, "nothing of it downloaded");
	server_stop();
	scenario_free(&s);
}

/* Two processes fetch one blob at once: the lock makes the second wait,
 * and it then finds the blob: one download, one good file. */
static void test_concurrent(void)
{
	scenario s = {0};
	add_file(&s, "model-Q4_K_M.gguf", 200000, 41);
	s.slow_ms = 20;
	server_start(&s);
	hub_env e;
	env_for(&e, "conc");
	pid_t kids[2];
	for (int k = 0; k < 2; k++) {
		kids[k] = fork();
		if (kids[k] == 0) {
			hub_paths p;
			char err[1024];
			int st = fetch(&e, NULL, 0, &p, err);
			if (st != HUB_OK)
				fprintf(stderr, "child %d: %s\n", k, err);
			_exit(st == HUB_OK && file_equals(p.model, &s.files[0]) ? 0 : 1);
		}
	}
	int ok = 1;
	for (int k = 0; k < 2; k++) {
		int ws;
		waitpid(kids[k], &ws, 0);
		ok &= WIFEXITED(ws) && WEXITSTATUS(ws) == 0;
	}
	CHECK(ok, "both fetches end with the right file");
	CHECK(log_count("GET /cdn/0") == 1, "downloaded once (%d)", log_count("GET /cdn/0"));
	server_stop();
	scenario_free(&s);
}

/* Runs a shell command; out gets its standard output. Returns its exit
 * status (-1 when it did not exit). */
static int sh(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int sh(char *out, size_t cap, const char *fmt, ...)
{
	char cmd[3 * PATH_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	FILE *f = popen(cmd, "r");
	size_t k = f ? fread(out, 1, cap - 1, f) : 0;
	out[k] = 0;
	int rc = f ? pclose(f) : -1;
	return rc != -1 && WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* rlaifv-infer --hf against the test Hub: the shipped tiny model as a
 * repository's Q8_0 file answers the greedy story. */
static void test_cli(void)
{
	const char *top = getenv("top_builddir");
	char bin[PATH_MAX + 256];
	snprintf(bin, sizeof(bin), "%s/rlaifv-infer", top ? top : ".");
	if (access(bin, X_OK)) {
		printf("test_hub: %s not built, CLI checks skipped\n", bin);
		return;
	}
	size_t n;
	char *model = tu_read_file(tu_data("stories260K.gguf"), &n);
	CHECK(model != NULL, "stories260K.gguf");
	if (!model)
		return;
	scenario s = {0};
	add_file_data(&s, "stories260K-Q8_0.gguf", model, n);
	free(model);
	server_start(&s);
	char cache[PATH_MAX + 256], out[4096];
	snprintf(cache, sizeof(cache), "%s/cli", g_tmp);
	/* stdout only: the story must be exactly the text */
	int rc =
	    sh(out, sizeof(out),
	       "HF_ENDPOINT=%s HF_HUB_CACHE=%s XDG_CACHE_HOME=%s/x HF_TOKEN= %s --hf org/model "
	       "-p 'Once upon a time' -n 12 --temp 0 -c 64 -t 1 2>%s/cli.err",
	       g_endpoint, cache, g_tmp, bin, g_tmp);
	CHECK(rc == 0 && !strncmp(out, ", there was a little girl", 25), "--hf story: %d '%s'", rc,
	      out);
	rc = sh(out, sizeof(out), "HF_ENDPOINT=%s HF_HUB_CACHE=%s %s --hf org/model:Q4_0 -p x 2>&1",
	        g_endpoint, cache, bin);
	CHECK(rc == 7 && strstr(out, "quants there: Q8_0"), "--hf :Q4_0: %d '%s'", rc, out);
	rc = sh(out, sizeof(out), "HF_ENDPOINT=%s HF_HUB_CACHE=%s %s --hf org/model %s x 2>&1",
	        g_endpoint, cache, bin, tu_data("shapes_64x48.png"));
	CHECK(rc == 7 && strstr(out, "mmproj"), "--hf with an image, no projector: %d '%s'", rc,
	      out);
	rc = sh(out, sizeof(out), "HF_ENDPOINT=%s HF_HUB_CACHE=%s %s --hf org/other -p x 2>&1",
	        g_endpoint, cache, bin);
	CHECK(rc == 5 && strstr(out, "not found"), "--hf of a missing repository: %d '%s'", rc,
	      out);
	rc = sh(out, sizeof(out), "HF_ENDPOINT=%s HF_HUB_CACHE=%s %s --hf-list org/model 2>&1",
	        g_endpoint, cache, bin);
	CHECK(rc == 0 && strstr(out, "Q8_0") && strstr(out, "stories260K-Q8_0.gguf  [default]"),
	      "--hf-list: %d '%s'", rc, out);
	rc = sh(out, sizeof(out), "HF_HUB_CACHE=%s %s --hf-cache 2>&1", cache, bin);
	CHECK(rc == 0 && strstr(out, "org/model\t0123456789ab\tstories260K-Q8_0.gguf"),
	      "--hf-cache: %d '%s'", rc, out);
	rc = sh(out, sizeof(out), "%s --hf-file x.gguf -p x 2>&1", bin);
	CHECK(rc == 2 && strstr(out, "--hf"), "--hf-file without --hf: %d '%s'", rc, out);
	server_stop();
	/* offline, from the cache the runs above filled; and with an empty one */
	rc = sh(out, sizeof(out),
	        "HF_HUB_OFFLINE=1 HF_ENDPOINT=http://127.0.0.1:1 HF_HUB_CACHE=%s "
	        "XDG_CACHE_HOME=%s/x %s --hf org/model -p 'Once upon a time' -n 12 --temp 0 -c 64 "
	        "-t 1 2>/dev/null",
	        cache, g_tmp, bin);
	CHECK(rc == 0 && !strncmp(out, ", there was a little girl", 25), "--hf offline: %d '%s'",
	      rc, out);
	rc = sh(out, sizeof(out),
	        "HF_HUB_OFFLINE=1 HF_HUB_CACHE=%s/none %s --hf org/model -p x 2>&1", g_tmp, bin);
	CHECK(rc == 8 && strstr(out, "HF_HUB_OFFLINE"), "offline, nothing cached: %d '%s'", rc,
	      out);
	scenario_free(&s);
}
#endif /* HAVE_CURL */

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	snprintf(g_tmp, sizeof(g_tmp), "%s/rlaifv-hub-XXXXXX",
	         getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(g_tmp)) {
		perror("mkdtemp");
		return 99;
	}
	test_choose();
	test_env();
#ifdef HAVE_CURL
	snprintf(g_log, sizeof(g_log), "%s/requests.log", g_tmp);
	g_shared =
	    mmap(NULL, sizeof(shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	test_fetch_and_reuse();
	test_hf_layout();
	test_resume();
	test_refused();
	test_errors();
	test_split();
	test_pages();
	test_concurrent();
	test_cli();
	server_stop();
#else
	{
		hub_env e;
		hub_paths p;
		char err[1024];
		env_for(&e, "nocurl");
		CHECK(fetch(&e, NULL, 0, &p, err) == HUB_ERR_NO_CURL &&
		          strstr(err, "without libcurl"),
		      "--without-curl says so: %s", err);
		hub_request r = {"org/../x", NULL, NULL, NULL, NULL, 0};
		CHECK(hub_fetch(&e, &r, &p, err, sizeof(err)) == HUB_ERR_USAGE, "bad name first");
		printf("test_hub: built --without-curl: network checks skipped\n");
	}
#endif
	rm_rf(g_tmp);
	return tu_finish("test_hub");
}
