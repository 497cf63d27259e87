/* hub.c: the Hugging Face Hub client of rlaifv-infer (see hub.h). It owns
 * the huggingface_hub cache layout (what it reads and writes there), the
 * choice of files in a repository, the Hub API calls it makes (a tree
 * listing, a HEAD per file, a GET per missing blob) and the checks on every
 * answer: everything from the network is bounded (sizes, lengths, depth)
 * and every name that becomes a path is checked before it is used.
 *
 * Cache layout (huggingface_hub's, so `hf download`, transformers and this
 * program share files):
 *   <cache>/models--OWNER--REPO/blobs/<etag>              the bytes; the etag of
 *                                                          an LFS file is its sha256
 *   <cache>/models--OWNER--REPO/blobs/<etag>.incomplete   a download in progress
 *   <cache>/models--OWNER--REPO/snapshots/<commit>/<path> -> ../../blobs/<etag>
 *   <cache>/models--OWNER--REPO/refs/<revision>           the commit, no newline
 *   <cache>/.locks/models--OWNER--REPO/<etag>.lock        flock()ed while a blob
 *                                                          is downloaded */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_CURL
#include <curl/curl.h>
#endif

#include "programs/rlaifv-infer/cli_json.h"
#include "programs/rlaifv-infer/hub.h"
#include "src/sha256.h"

/* Bounds on what the network and the cache may hand us. */
#define MAX_LISTING_BYTES (8u << 20) /* a tree listing; the Hub pages at 1000 entries */
#define MAX_FILES         10000      /* entries of a listing or a snapshot */
#define MAX_NAME          1024       /* a path inside a repository */
#define MAX_JSON_DEPTH    16
#define MAX_SPLIT         256 /* parts of a split GGUF */

static int fail(char *err, size_t n, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t n, int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (err && n)
		vsnprintf(err, n, fmt, ap);
	va_end(ap);
	return status;
}

/* snprintf that reports truncation as an error instead of a cut path. */
static int path_fmt(char *out, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int path_fmt(char *out, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(out, n, fmt, ap);
	va_end(ap);
	return k < 0 || (size_t)k >= n ? -1 : 0;
}

static int is_hex(const char *s, size_t len)
{
	if (strlen(s) != len)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
			return 0;
	return 1;
}

/* ---- names that become paths ------------------------------------------- */

/* OWNER/REPO as the Hub allows it: [A-Za-z0-9_.-], one '/', no "--" or
 * ".." (the cache folder joins the two parts with "--"), no leading or
 * trailing '.' or '-'. */
static int valid_repo(const char *r)
{
	size_t n = strlen(r);
	if (n == 0 || n > 200 || strstr(r, "--") || strstr(r, ".."))
		return 0;
	int slashes = 0;
	for (size_t i = 0; i < n; i++) {
		char c = r[i];
		int special = c == '/' || c == '.' || c == '-';
		if (!isalnum((unsigned char)c) && c != '_' && !special)
			return 0;
		if (c == '/')
			slashes++;
		if (special && (i == 0 || i == n - 1 || r[i - 1] == '/' ||
		                (c == '/' && !isalnum((unsigned char)r[i - 1]) && r[i - 1] != '_')))
			return 0;
	}
	return slashes == 1;
}

/* A relative path made of non-empty components other than "." and "..",
 * without control characters or backslashes: safe to join under a folder. */
static int valid_rel_path(const char *p)
{
	size_t n = strlen(p);
	if (n == 0 || n > MAX_NAME || p[0] == '/')
		return 0;
	const char *c = p;
	while (*c) {
		const char *e = strchr(c, '/');
		size_t len = e ? (size_t)(e - c) : strlen(c);
		if (len == 0 || len > 255 || (len == 1 && c[0] == '.') ||
		    (len == 2 && c[0] == '.' && c[1] == '.'))
			return 0;
		for (size_t i = 0; i < len; i++)
			if ((unsigned char)c[i] < 0x20 || c[i] == 0x7f || c[i] == '\\')
				return 0;
		c += len + (e != NULL);
		if (e && !*c)
			return 0; /* trailing '/' */
	}
	return 1;
}

/* A branch or tag name (refs/<revision> is a file) or a commit. */
static int valid_revision(const char *r)
{
	if (!valid_rel_path(r) || strlen(r) > 200)
		return 0;
	for (const char *c = r; *c; c++)
		if (!isalnum((unsigned char)*c) && !strchr("._-/", *c))
			return 0;
	return 1;
}

int hub_parse_spec(const char *spec, char *repo, size_t repo_len, char *quant, size_t quant_len,
                   char *err, size_t err_len)
{
	const char *colon = strchr(spec, ':');
	size_t rn = colon ? (size_t)(colon - spec) : strlen(spec);
	const char *q = colon ? colon + 1 : "";
	if (rn >= repo_len || strlen(q) >= quant_len)
		return fail(err, err_len, HUB_ERR_USAGE, "'%s' is too long for OWNER/REPO[:QUANT]",
		            spec);
	memcpy(repo, spec, rn);
	repo[rn] = 0;
	strcpy(quant, q);
	if (!valid_repo(repo))
		return fail(err, err_len, HUB_ERR_USAGE,
		            "'%s' is not a Hub repository name OWNER/REPO[:QUANT]", spec);
	for (const char *c = quant; *c; c++)
		if (!isalnum((unsigned char)*c) && *c != '_')
			return fail(err, err_len, HUB_ERR_USAGE,
			            "'%s': a quant is letters, digits and '_' (like Q4_K_M)", q);
	if (colon && !*quant)
		return fail(err, err_len, HUB_ERR_USAGE, "'%s': empty quant after ':'", spec);
	return HUB_OK;
}

/* ---- environment (huggingface_hub/constants.py's rules) ---------------- */

/* huggingface_hub's _is_true: "1", "ON", "YES", "TRUE" in any case. */
static int env_true(const char *name)
{
	const char *v = getenv(name);
	return v && (!strcasecmp(v, "1") || !strcasecmp(v, "on") || !strcasecmp(v, "yes") ||
	             !strcasecmp(v, "true"));
}

static const char *env_nonempty(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

/* A path from the environment with a leading "~/" expanded, as
 * os.path.expanduser does. */
static int expand_home(char *out, size_t n, const char *v)
{
	const char *home = getenv("HOME");
	if (v[0] == '~' && (v[1] == '/' || !v[1]) && home)
		return path_fmt(out, n, "%s%s", home, v + 1);
	return path_fmt(out, n, "%s", v);
}

/* The token file's first line, whitespace trimmed (huggingface_hub strips
 * the whole file). */
static void read_token_file(const char *path, char *tok, size_t n)
{
	tok[0] = 0;
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	size_t k = fread(tok, 1, n - 1, f);
	fclose(f);
	tok[k] = 0;
}

static void trim(char *s)
{
	size_t n = strlen(s), a = 0;
	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = 0;
	while (isspace((unsigned char)s[a]))
		a++;
	memmove(s, s + a, n - a + 1);
}

int hub_env_init(hub_env *e, char *err, size_t err_len)
{
	memset(e, 0, sizeof(*e));
	char home[PATH_MAX];
	const char *v;
	int bad = 0;
	/* HF_HOME = $HF_HOME or $XDG_CACHE_HOME/huggingface or ~/.cache/huggingface */
	if ((v = env_nonempty("HF_HOME")))
		bad |= expand_home(home, sizeof(home), v);
	else if ((v = env_nonempty("XDG_CACHE_HOME")))
		bad |= path_fmt(home, sizeof(home), "%s/huggingface", v);
	else
		bad |= expand_home(home, sizeof(home), "~/.cache/huggingface");
	/* HF_HUB_CACHE, else the legacy HUGGINGFACE_HUB_CACHE, else HF_HOME/hub */
	if ((v = env_nonempty("HF_HUB_CACHE")) || (v = env_nonempty("HUGGINGFACE_HUB_CACHE")))
		bad |= expand_home(e->cache, sizeof(e->cache), v);
	else
		bad |= path_fmt(e->cache, sizeof(e->cache), "%s/hub", home);
	v = env_nonempty("HF_ENDPOINT");
	bad |= path_fmt(e->endpoint, sizeof(e->endpoint), "%s", v ? v : "https://huggingface.co");
	size_t n = strlen(e->endpoint);
	while (n && e->endpoint[n - 1] == '/')
		e->endpoint[--n] = 0;
	if (bad)
		return fail(err, err_len, HUB_ERR_USAGE, "the Hugging Face cache path is too long");
	if (strncmp(e->endpoint, "http://", 7) && strncmp(e->endpoint, "https://", 8))
		return fail(err, err_len, HUB_ERR_USAGE,
		            "HF_ENDPOINT '%s' is not an http:// or https:// URL", e->endpoint);
	/* HF_TOKEN, else HUGGING_FACE_HUB_TOKEN, else the file `hf auth login`
	 * writes ($HF_TOKEN_PATH or HF_HOME/token) */
	if ((v = env_nonempty("HF_TOKEN")) || (v = env_nonempty("HUGGING_FACE_HUB_TOKEN"))) {
		snprintf(e->token, sizeof(e->token), "%s", v);
	} else {
		char tp[PATH_MAX];
		if ((v = env_nonempty("HF_TOKEN_PATH"))
		        ? !expand_home(tp, sizeof(tp), v)
		        : !path_fmt(tp, sizeof(tp), "%s/token", home))
			read_token_file(tp, e->token, sizeof(e->token));
	}
	trim(e->token);
	for (const char *c = e->token; *c; c++)
		if ((unsigned char)*c <= 0x20 || *c == 0x7f)
			return fail(err, err_len, HUB_ERR_USAGE,
			            "the Hugging Face token contains a space or control character");
	e->offline = env_true("HF_HUB_OFFLINE") || env_true("TRANSFORMERS_OFFLINE");
	e->max_tries = 4;
	e->retry_delay_ms = 1000;
	e->stall_seconds = 60;
	return HUB_OK;
}

/* ---- choosing files (llama.cpp's rules; see man/rlaifv-infer.1) -------- */

static int ends_with_gguf(const char *p)
{
	size_t n = strlen(p);
	return n > 5 && !strcmp(p + n - 5, ".gguf");
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

/* Split name "<prefix>-00001-of-00003.gguf": prefix length, index, count;
 * a plain file is part 1 of 1 with the whole name before ".gguf". */
static void split_info(const char *p, size_t *prefix_len, int *index, int *count)
{
	size_t n = strlen(p) - 5; /* without ".gguf" */
	*prefix_len = n;
	*index = *count = 1;
	/* "-NNNNN-of-NNNNN" is 15 characters */
	if (n > 15 && p[n - 15] == '-' && !strncmp(p + n - 9, "-of-", 4)) {
		int ok = 1;
		for (int i = 0; i < 5; i++)
			ok &= isdigit((unsigned char)p[n - 14 + i]) &&
			      isdigit((unsigned char)p[n - 5 + i]);
		if (ok) {
			*index = atoi(p + n - 14);
			*count = atoi(p + n - 5);
			*prefix_len = n - 15;
		}
	}
}

void hub_quant_tag(const char *path, char *tag, size_t tag_len)
{
	tag[0] = 0;
	if (!ends_with_gguf(path) || tag_len == 0)
		return;
	size_t plen;
	int idx, cnt;
	split_info(path, &plen, &idx, &cnt);
	/* the run of [A-Za-z0-9_] after the last '-' or '.' of the prefix */
	size_t s = plen;
	while (s > 0 && (isalnum((unsigned char)path[s - 1]) || path[s - 1] == '_'))
		s--;
	if (s == 0 || s == plen || (path[s - 1] != '-' && path[s - 1] != '.'))
		return;
	size_t k = 0;
	for (size_t i = s; i < plen && k + 1 < tag_len; i++)
		tag[k++] = (char)toupper((unsigned char)path[i]);
	tag[k] = 0;
}

/* Bits of a quant tag: its first number (Q4_K_M 4, F16 16, BF16 16). */
static int tag_bits(const char *tag)
{
	while (*tag && !isdigit((unsigned char)*tag))
		tag++;
	return *tag ? atoi(tag) : 0;
}

static int is_text_model(const char *p)
{
	const char *b = base_name(p);
	return ends_with_gguf(p) && !strstr(b, "mmproj") && !strstr(b, "imatrix");
}

/* llama.cpp matches the tag case-insensitively anywhere in the path,
 * followed by '.' or '-'. */
static int path_has_tag(const char *p, const char *tag)
{
	size_t t = strlen(tag);
	for (const char *c = p; *c; c++)
		if (!strncasecmp(c, tag, t) && (c[t] == '.' || c[t] == '-'))
			return 1;
	return 0;
}

int hub_choose_model(const char *const *paths, int n, const char *quant)
{
	static const char *const defaults[] = {"Q4_K_M", "Q8_0"};
	const char *const *tags = quant && *quant ? &quant : defaults;
	int n_tags = quant && *quant ? 1 : 2;
	for (int pass = 0; pass <= n_tags; pass++) {
		if (pass == n_tags && quant && *quant)
			break; /* an asked-for quant has no fallback */
		for (int i = 0; i < n; i++) {
			size_t pl;
			int idx, cnt;
			if (!is_text_model(paths[i]))
				continue;
			split_info(paths[i], &pl, &idx, &cnt);
			if (idx != 1)
				continue;
			if (pass == n_tags || path_has_tag(paths[i], tags[pass]))
				return i;
		}
	}
	return -1;
}

/* Folder depth of p ("a/b/c.gguf" 2) and whether q's folder contains p's
 * folder, i.e. q sits in p's folder or above it. */
static int dir_len(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? (int)(s - p) : 0;
}

int hub_choose_mmproj(const char *const *paths, int n, int model)
{
	const char *m = paths[model];
	int best = -1, best_dl = -1, best_f16 = 0, best_diff = 0;
	for (int i = 0; i < n; i++) {
		const char *p = paths[i];
		if (!ends_with_gguf(p) || !strstr(base_name(p), "mmproj"))
			continue;
		int dl = dir_len(p);
		if (dl > 0 && (dl > dir_len(m) || strncmp(p, m, (size_t)dl) || m[dl] != '/'))
			continue; /* not in the model's folder or above */
		char tag[32];
		hub_quant_tag(p, tag, sizeof(tag));
		int f16 = !strcmp(tag, "F16");
		int diff = abs(tag_bits(tag) - 16);
		if (best < 0 || dl > best_dl || (dl == best_dl && f16 && !best_f16) ||
		    (dl == best_dl && f16 == best_f16 && diff < best_diff)) {
			best = i;
			best_dl = dl;
			best_f16 = f16;
			best_diff = diff;
		}
	}
	return best;
}

/* ---- a repository's file list ------------------------------------------ */

typedef struct hub_file {
	char *path;
	uint64_t size;
	char sha256[65];      /* the LFS oid; "" when the file is not in LFS */
	char local[PATH_MAX]; /* from the cache: the file's path there */
	int unsafe;           /* from the cache: a link that leaves blobs/ */
} hub_file;

typedef struct hub_files {
	hub_file *v;
	int n, cap;
} hub_files;

static void files_free(hub_files *f)
{
	for (int i = 0; i < f->n; i++)
		free(f->v[i].path);
	free(f->v);
	memset(f, 0, sizeof(*f));
}

static hub_file *files_add(hub_files *f, const char *path)
{
	if (f->n == MAX_FILES)
		return NULL;
	if (f->n == f->cap) {
		int cap = f->cap ? 2 * f->cap : 64;
		hub_file *v = realloc(f->v, (size_t)cap * sizeof(*v));
		if (!v)
			return NULL;
		f->v = v;
		f->cap = cap;
	}
	hub_file *h = &f->v[f->n];
	memset(h, 0, sizeof(*h));
	if (!(h->path = strdup(path)))
		return NULL;
	f->n++;
	return h;
}

static const char **files_paths(const hub_files *f)
{
	const char **p = malloc((size_t)(f->n ? f->n : 1) * sizeof(*p));
	for (int i = 0; p && i < f->n; i++)
		p[i] = f->v[i].path;
	return p;
}

/* The parts of the split set whose first part is files[first], in order
 * (parts[0] = first). Returns the count, or -1 when a part is missing. */
static int split_set(const hub_files *f, int first, int *parts)
{
	size_t pl;
	int idx, cnt;
	const char *p = f->v[first].path;
	split_info(p, &pl, &idx, &cnt);
	if (cnt < 1 || cnt > MAX_SPLIT)
		return -1;
	for (int k = 0; k < cnt; k++)
		parts[k] = -1;
	for (int i = 0; i < f->n; i++) {
		const char *q = f->v[i].path;
		size_t ql;
		int qi, qc;
		if (!ends_with_gguf(q))
			continue;
		split_info(q, &ql, &qi, &qc);
		if (qc == cnt && ql == pl && !strncmp(p, q, pl) && qi >= 1 && qi <= cnt)
			parts[qi - 1] = i;
	}
	for (int k = 0; k < cnt; k++)
		if (parts[k] < 0)
			return -1;
	return cnt;
}

/* The quants a listing offers, for "no GGUF matching QUANT" messages. */
static void list_quants(const hub_files *f, char *out, size_t n)
{
	size_t k = 0;
	out[0] = 0;
	for (int i = 0; i < f->n; i++) {
		size_t pl;
		int idx, cnt;
		char tag[32];
		if (!is_text_model(f->v[i].path))
			continue;
		split_info(f->v[i].path, &pl, &idx, &cnt);
		hub_quant_tag(f->v[i].path, tag, sizeof(tag));
		if (idx != 1 || !tag[0] || strstr(out, tag))
			continue;
		int w = snprintf(out + k, n - k, "%s%s", k ? " " : "", tag);
		if (w < 0 || (size_t)w >= n - k)
			break;
		k += (size_t)w;
	}
	if (!k)
		snprintf(out, n, "(no text GGUF)");
}

#ifdef HAVE_CURL
/* ---- JSON: just enough for the tree listing, bounded ------------------- */

typedef struct json {
	const char *p, *end;
	int depth;
	int bad;
} json;

static void js_ws(json *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static int js_lit(json *j, char c)
{
	js_ws(j);
	if (j->p < j->end && *j->p == c) {
		j->p++;
		return 1;
	}
	return 0;
}

static void put_utf8(char *out, size_t *k, size_t cap, unsigned cp, json *j)
{
	char b[4];
	int n;
	if (cp < 0x80) {
		b[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xc0 | cp >> 6);
		b[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xe0 | cp >> 12);
		b[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (char)(0xf0 | cp >> 18);
		b[1] = (char)(0x80 | (cp >> 12 & 0x3f));
		b[2] = (char)(0x80 | (cp >> 6 & 0x3f));
		b[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	if (*k + (size_t)n >= cap) {
		j->bad = 1;
		return;
	}
	memcpy(out + *k, b, (size_t)n);
	*k += (size_t)n;
}

static unsigned js_hex4(json *j)
{
	unsigned v = 0;
	if (j->end - j->p < 4 || cj_hex4(j->p, &v)) {
		j->bad = 1;
		return 0;
	}
	j->p += 4;
	return v;
}

/* A string into out (cap bytes with the NUL; out may be NULL to skip it).
 * Too long, a NUL, a raw control character or a bad escape: j->bad. */
static void js_string(json *j, char *out, size_t cap)
{
	char skip[8];
	size_t k = 0;
	if (!out) {
		out = skip;
		cap = 0;
	}
	if (!js_lit(j, '"')) {
		j->bad = 1;
		return;
	}
	while (!j->bad) {
		if (j->p >= j->end) {
			j->bad = 1;
			break;
		}
		unsigned char c = (unsigned char)*j->p++;
		if (c == '"')
			break;
		if (c < 0x20) {
			j->bad = 1;
			break;
		}
		unsigned cp = c;
		if (c == '\\') {
			if (j->p >= j->end) {
				j->bad = 1;
				break;
			}
			char e = *j->p++;
			const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
			const char *w = strchr(from, e);
			if (e == 'u') {
				cp = js_hex4(j);
				if (cp >= 0xd800 && cp < 0xdc00) {
					if (j->end - j->p < 6 || j->p[0] != '\\' ||
					    j->p[1] != 'u') {
						j->bad = 1;
						break;
					}
					j->p += 2;
					unsigned lo = js_hex4(j);
					if (lo < 0xdc00 || lo > 0xdfff)
						j->bad = 1;
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				} else if (cp >= 0xdc00 && cp < 0xe000) {
					j->bad = 1;
				}
				if (cp == 0)
					j->bad = 1;
			} else if (w && e) {
				cp = (unsigned char)to[w - from];
			} else {
				j->bad = 1;
				break;
			}
		}
		if (cap)
			put_utf8(out, &k, cap, cp, j);
	}
	if (cap)
		out[k < cap ? k : cap - 1] = 0;
}

/* A non-negative integer (sizes); anything else: bad. */
static uint64_t js_uint(json *j)
{
	js_ws(j);
	uint64_t v = 0;
	const char *s = j->p;
	while (j->p < j->end && isdigit((unsigned char)*j->p)) {
		if (v > (UINT64_MAX - 9) / 10) {
			j->bad = 1;
			return 0;
		}
		v = v * 10 + (uint64_t)(*j->p++ - '0');
	}
	if (j->p == s || (j->p < j->end && strchr(".eE", *j->p)))
		j->bad = 1;
	return v;
}

static void js_skip(json *j);

/* Skips an array or object's members after its opening bracket. */
static void js_skip_container(json *j, char close, int object)
{
	if (++j->depth > MAX_JSON_DEPTH) {
		j->bad = 1;
		return;
	}
	if (js_lit(j, close)) {
		j->depth--;
		return;
	}
	do {
		if (object) {
			js_string(j, NULL, 0);
			if (!js_lit(j, ':'))
				j->bad = 1;
		}
		js_skip(j);
	} while (!j->bad && js_lit(j, ','));
	if (!js_lit(j, close))
		j->bad = 1;
	j->depth--;
}

static void js_skip(json *j)
{
	js_ws(j);
	if (j->bad || j->p >= j->end) {
		j->bad = 1;
		return;
	}
	char c = *j->p;
	if (c == '"') {
		js_string(j, NULL, 0);
	} else if (c == '{' || c == '[') {
		j->p++;
		js_skip_container(j, c == '{' ? '}' : ']', c == '{');
	} else if (c == '-' || isdigit((unsigned char)c)) {
		j->p++;
		while (j->p < j->end && strchr("0123456789+-.eE", *j->p))
			j->p++;
	} else {
		static const char *const words[] = {"true", "false", "null"};
		for (int i = 0; i < 3; i++) {
			size_t n = strlen(words[i]);
			if ((size_t)(j->end - j->p) >= n && !memcmp(j->p, words[i], n)) {
				j->p += n;
				return;
			}
		}
		j->bad = 1;
	}
}

/* One entry of the listing: {"type":"file","path":...,"size":N,
 * "lfs":{"oid":sha256,...},...}. */
static void js_entry(json *j, char *type, char *path, uint64_t *size, char *sha, int *has_size)
{
	if (!js_lit(j, '{')) {
		j->bad = 1;
		return;
	}
	if (js_lit(j, '}'))
		return;
	do {
		char key[32];
		js_string(j, key, sizeof(key));
		if (j->bad || !js_lit(j, ':')) {
			j->bad = 1;
			return;
		}
		if (!strcmp(key, "type")) {
			js_string(j, type, 16);
		} else if (!strcmp(key, "path")) {
			js_string(j, path, MAX_NAME + 1);
		} else if (!strcmp(key, "size")) {
			*size = js_uint(j);
			*has_size = 1;
		} else if (!strcmp(key, "lfs")) {
			js_ws(j);
			if (j->p < j->end && *j->p == 'n') {
				js_skip(j); /* "lfs": null */
				continue;
			}
			if (!js_lit(j, '{')) {
				j->bad = 1;
				return;
			}
			if (js_lit(j, '}'))
				continue;
			do {
				char k2[32];
				js_string(j, k2, sizeof(k2));
				if (j->bad || !js_lit(j, ':')) {
					j->bad = 1;
					return;
				}
				if (!strcmp(k2, "oid"))
					js_string(j, sha, 65);
				else
					js_skip(j);
			} while (!j->bad && js_lit(j, ','));
			if (!js_lit(j, '}'))
				j->bad = 1;
		} else {
			js_skip(j);
		}
	} while (!j->bad && js_lit(j, ','));
	if (!js_lit(j, '}'))
		j->bad = 1;
}

/* Parses a tree listing (a JSON array) into f, checking every name. */
static int parse_listing(const char *body, size_t len, const char *repo, hub_files *f, char *err,
                         size_t err_len)
{
	json j = {body, body + len, 1, 0};
	if (!js_lit(&j, '['))
		return fail(err, err_len, HUB_ERR_REFUSED,
		            "the Hub's file list for %s is not a JSON array", repo);
	if (!js_lit(&j, ']')) {
		do {
			char type[16] = "", path[MAX_NAME + 1] = "", sha[65] = "";
			uint64_t size = 0;
			int has_size = 0;
			js_entry(&j, type, path, &size, sha, &has_size);
			if (j.bad)
				break;
			if (strcmp(type, "file"))
				continue; /* directories are listed with their files */
			if (!valid_rel_path(path))
				return fail(
				    err, err_len, HUB_ERR_REFUSED,
				    "the Hub's file list for %s names an unsafe path '%.200s'",
				    repo, path);
			if (!has_size || (sha[0] && !is_hex(sha, 64)))
				return fail(
				    err, err_len, HUB_ERR_REFUSED,
				    "the Hub's file list for %s gives '%s' no size or a bad "
				    "sha256",
				    repo, path);
			hub_file *h = files_add(f, path);
			if (!h)
				return fail(err, err_len, HUB_ERR_REFUSED,
				            "the Hub's file list for %s has more than %d files",
				            repo, MAX_FILES);
			h->size = size;
			strcpy(h->sha256, sha);
		} while (js_lit(&j, ','));
		if (!j.bad && !js_lit(&j, ']'))
			j.bad = 1;
	}
	js_ws(&j);
	if (j.bad || j.p != j.end)
		return fail(err, err_len, HUB_ERR_REFUSED,
		            "the Hub's file list for %s is malformed JSON (at byte %ld)", repo,
		            (long)(j.p - body));
	return HUB_OK;
}
#endif /* HAVE_CURL */

/* ---- the cache ---------------------------------------------------------- */

static int repo_dir(const hub_env *e, const char *repo, char *out, size_t n)
{
	const char *slash = strchr(repo, '/');
	return path_fmt(out, n, "%s/models--%.*s--%s", e->cache, (int)(slash - repo), repo,
	                slash + 1);
}

#ifdef HAVE_CURL
/* mkdir -p for the folders of a path below the cache (not the last part). */
static int make_parents(const char *path)
{
	char tmp[PATH_MAX];
	if (path_fmt(tmp, sizeof(tmp), "%s", path))
		return -1;
	for (char *c = tmp + 1; *c; c++) {
		if (*c != '/')
			continue;
		*c = 0;
		if (mkdir(tmp, 0777) && errno != EEXIST)
			return -1;
		*c = '/';
	}
	return 0;
}
#endif

/* The commit a revision names in the cache: the revision itself when it is
 * one, else refs/<revision> (40 hex digits, maybe a newline). */
static int cached_commit(const char *rdir, const char *revision, char commit[41])
{
	if (is_hex(revision, 40)) {
		strcpy(commit, revision);
		return 0;
	}
	char p[PATH_MAX], buf[64];
	if (path_fmt(p, sizeof(p), "%s/refs/%s", rdir, revision))
		return -1;
	FILE *f = fopen(p, "r");
	if (!f)
		return -1;
	size_t k = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[k] = 0;
	trim(buf);
	if (!is_hex(buf, 40))
		return -1;
	strcpy(commit, buf);
	return 0;
}

/* Adds the files under snapshots/<commit>/<sub> to f. A link is followed
 * only into the repository's blobs/; one pointing elsewhere is listed as
 * unsafe, so choosing it is an error rather than a silent skip. */
static void scan_snapshot(const char *snap, const char *blobs_real, const char *sub, int depth,
                          hub_files *f)
{
	char dpath[PATH_MAX];
	if (depth > 8 || path_fmt(dpath, sizeof(dpath), "%s%s%s", snap, *sub ? "/" : "", sub))
		return;
	DIR *d = opendir(dpath);
	if (!d)
		return;
	for (struct dirent *de; (de = readdir(d));) {
		if (de->d_name[0] == '.' || f->n == MAX_FILES)
			continue;
		char rel[MAX_NAME + 1], full[PATH_MAX];
		struct stat ls, st;
		if (path_fmt(rel, sizeof(rel), "%s%s%s", sub, *sub ? "/" : "", de->d_name) ||
		    path_fmt(full, sizeof(full), "%s/%s", snap, rel) || lstat(full, &ls))
			continue;
		if (S_ISDIR(ls.st_mode)) {
			scan_snapshot(snap, blobs_real, rel, depth + 1, f);
			continue;
		}
		if (!S_ISREG(ls.st_mode) && !S_ISLNK(ls.st_mode))
			continue;
		hub_file *h = files_add(f, rel);
		if (!h)
			break;
		snprintf(h->local, sizeof(h->local), "%s", full);
		if (S_ISLNK(ls.st_mode)) {
			char *real = realpath(full, NULL);
			size_t bl = strlen(blobs_real);
			h->unsafe = !real || strncmp(real, blobs_real, bl) || real[bl] != '/' ||
			            strchr(real + bl + 1, '/') || stat(real, &st) ||
			            !S_ISREG(st.st_mode);
			/* the blob's name is its etag: the sha256 for LFS files */
			if (!h->unsafe && is_hex(real + bl + 1, 64))
				strcpy(h->sha256, real + bl + 1);
			h->size = h->unsafe ? 0 : (uint64_t)st.st_size;
			free(real);
		} else {
			h->size =
			    (uint64_t)ls.st_size; /* a copy: huggingface_hub without symlinks */
		}
	}
	closedir(d);
}

/* The files the cache holds for repo at revision; *commit gets the commit. */
static int cache_files(const hub_env *e, const char *repo, const char *revision, hub_files *f,
                       char commit[41])
{
	char rdir[PATH_MAX], snap[PATH_MAX], blobs[PATH_MAX];
	if (repo_dir(e, repo, rdir, sizeof(rdir)) || cached_commit(rdir, revision, commit) ||
	    path_fmt(snap, sizeof(snap), "%s/snapshots/%s", rdir, commit) ||
	    path_fmt(blobs, sizeof(blobs), "%s/blobs", rdir))
		return -1;
	char *blobs_real = realpath(blobs, NULL);
	scan_snapshot(snap, blobs_real ? blobs_real : "/nonexistent/", "", 0, f);
	free(blobs_real);
	return f->n ? 0 : -1;
}

/* What the request needs: indices into f of the model's parts and of the
 * projector (-1 when not wanted). */
typedef struct plan {
	int parts[MAX_SPLIT];
	int n_parts;
	int mmproj;
} plan;

static int find_exact(const hub_files *f, const char *name)
{
	for (int i = 0; i < f->n; i++)
		if (!strcasecmp(f->v[i].path, name))
			return i;
	return -1;
}

static int make_plan(const hub_files *f, const hub_request *r, plan *pl, const char *where,
                     char *err, size_t err_len)
{
	const char **paths = files_paths(f);
	if (!paths)
		return fail(err, err_len, HUB_ERR_IO, "out of memory");
	int m = r->file ? find_exact(f, r->file) : hub_choose_model(paths, f->n, r->quant);
	pl->mmproj = -1;
	if (m < 0) {
		char q[512];
		list_quants(f, q, sizeof(q));
		free(paths);
		if (r->file)
			return fail(err, err_len, HUB_ERR_NO_FILE, "%s has no file '%s' %s",
			            r->repo, r->file, where);
		return fail(err, err_len, HUB_ERR_NO_FILE,
		            "%s has no GGUF for %s %s; quants there: %s", r->repo,
		            r->quant && *r->quant ? r->quant : "any quant", where, q);
	}
	pl->n_parts = ends_with_gguf(f->v[m].path) ? split_set(f, m, pl->parts) : 1;
	if (pl->n_parts == 1)
		pl->parts[0] = m;
	if (pl->n_parts < 0) {
		free(paths);
		return fail(err, err_len, HUB_ERR_NO_FILE, "%s: the split GGUF %s lacks parts %s",
		            r->repo, f->v[m].path, where);
	}
	if (r->want_mmproj || r->mmproj) {
		pl->mmproj =
		    r->mmproj ? find_exact(f, r->mmproj) : hub_choose_mmproj(paths, f->n, m);
		if (pl->mmproj < 0) {
			free(paths);
			if (r->mmproj)
				return fail(err, err_len, HUB_ERR_NO_FILE, "%s has no file '%s' %s",
				            r->repo, r->mmproj, where);
			return fail(err, err_len, HUB_ERR_NO_FILE,
			            "%s has no projector (a GGUF named mmproj) for %s %s: an image "
			            "needs one",
			            r->repo, f->v[m].path, where);
		}
	}
	free(paths);
	return HUB_OK;
}

/* Answers the request from the cache alone. */
static int fetch_cached(const hub_env *e, const hub_request *r, const char *revision,
                        hub_paths *out, const char *why, char *err, size_t err_len)
{
	hub_files f = {0};
	char commit[41];
	if (cache_files(e, r->repo, revision, &f, commit)) {
		files_free(&f);
		return fail(err, err_len, HUB_ERR_NETWORK,
		            "%s, and %s (revision %s) is not in the cache %s", why, r->repo,
		            revision, e->cache);
	}
	plan pl;
	char where[300];
	snprintf(where, sizeof(where), "in the cache (%s)", why);
	int st = make_plan(&f, r, &pl, where, err, err_len);
	for (int k = 0; st == HUB_OK && k < pl.n_parts + 1; k++) {
		int i = k < pl.n_parts ? pl.parts[k] : pl.mmproj;
		if (i >= 0 && f.v[i].unsafe)
			st = fail(err, err_len, HUB_ERR_REFUSED,
			          "the cached %s of %s links outside the cache's blobs/ folder",
			          f.v[i].path, r->repo);
	}
	if (st == HUB_OK) {
		snprintf(out->model, sizeof(out->model), "%s", f.v[pl.parts[0]].local);
		out->n_parts = pl.n_parts;
		out->mmproj[0] = 0;
		if (pl.mmproj >= 0)
			snprintf(out->mmproj, sizeof(out->mmproj), "%s", f.v[pl.mmproj].local);
		if (e->log)
			fprintf(e->log, "rlaifv-infer: %s: using %s from the cache (%s)\n", r->repo,
			        f.v[pl.parts[0]].path, why);
	}
	files_free(&f);
	return st;
}

/* Files of one model repository in the cache, one line each. */
int hub_cache_list(const hub_env *e, FILE *out, char *err, size_t err_len)
{
	DIR *d = opendir(e->cache);
	if (!d) {
		fprintf(out, "# %s: no Hugging Face cache yet\n", e->cache);
		return HUB_OK;
	}
	fprintf(out, "# %s\n", e->cache);
	for (struct dirent *de; (de = readdir(d));) {
		if (strncmp(de->d_name, "models--", 8))
			continue;
		char repo[256];
		const char *rest = de->d_name + 8, *sep = strstr(rest, "--");
		if (!sep ||
		    path_fmt(repo, sizeof(repo), "%.*s/%s", (int)(sep - rest), rest, sep + 2) ||
		    !valid_repo(repo))
			continue;
		char rdir[PATH_MAX], sdir[PATH_MAX];
		if (repo_dir(e, repo, rdir, sizeof(rdir)) ||
		    path_fmt(sdir, sizeof(sdir), "%s/snapshots", rdir))
			continue;
		DIR *s = opendir(sdir);
		for (struct dirent *sn; s && (sn = readdir(s));) {
			if (!is_hex(sn->d_name, 40))
				continue;
			hub_files f = {0};
			char commit[41];
			if (!cache_files(e, repo, sn->d_name, &f, commit))
				for (int i = 0; i < f.n; i++)
					if (ends_with_gguf(f.v[i].path) && !f.v[i].unsafe)
						fprintf(out, "%s\t%.12s\t%s\t%llu\n", repo, commit,
						        f.v[i].path,
						        (unsigned long long)f.v[i].size);
			files_free(&f);
		}
		if (s)
			closedir(s);
	}
	closedir(d);
	(void)err;
	(void)err_len;
	return HUB_OK;
}

#ifndef HAVE_CURL

int hub_fetch(const hub_env *e, const hub_request *r, hub_paths *out, char *err, size_t err_len)
{
	(void)e, (void)out;
	(void)fetch_cached;
	if (r &&
	    (!valid_repo(r->repo) || (r->revision && !valid_revision(r->revision)) ||
	     (r->file && !valid_rel_path(r->file)) || (r->mmproj && !valid_rel_path(r->mmproj))))
		return fail(err, err_len, HUB_ERR_USAGE,
		            "'%s': a bad repository, revision or file name", r->repo);
	return fail(err, err_len, HUB_ERR_NO_CURL,
	            "this rlaifv-infer was built without libcurl (configure --without-curl): "
	            "it cannot fetch from the Hugging Face Hub; download the GGUF files and "
	            "give -m and --mmproj");
}

int hub_list(const hub_env *e, const char *repo, const char *revision, FILE *out, char *err,
             size_t err_len)
{
	return hub_fetch(e, NULL, NULL, err, err_len);
}

#else /* HAVE_CURL */

/* ---- HTTP --------------------------------------------------------------- */

/* The headers of one answer that matter to us, bounded. */
typedef struct http_head {
	long status;
	char commit[48]; /* X-Repo-Commit */
	char etag[136];  /* X-Linked-Etag, else ETag */
	int linked_etag; /* etag came from X-Linked-Etag */
	uint64_t size;   /* X-Linked-Size, else Content-Length */
	int linked_size;
	uint64_t length;   /* Content-Length of this answer; UINT64_MAX unknown */
	uint64_t range_at; /* Content-Range: bytes <range_at>- */
	int has_range;
	char next[2048]; /* Link: <next>; rel="next" (a listing's next page) */
} http_head;

typedef struct http_call {
	http_head h;
	/* body to memory (API answers) */
	char *buf;
	size_t len, cap, limit;
	int too_big;
	/* body to a file (blobs) */
	int fd;
	uint64_t at, expect; /* bytes in the file, its final size */
	rvi_sha256_ctx *sha;
	int refused, io_error;
	/* progress */
	const hub_env *env;
	const char *name;
	double t0, t_last;
	uint64_t at0;
} http_call;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int parse_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	size_t i = 0;
	while (i < n && s[i] == ' ')
		i++;
	if (i == n || !isdigit((unsigned char)s[i]))
		return -1;
	for (; i < n && isdigit((unsigned char)s[i]); i++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

/* Copies a header's value, quotes and a weak "W/" taken off (huggingface_hub
 * normalizes etags the same way); too long leaves dst empty. */
static void header_value(char *dst, size_t cap, const char *v, size_t n)
{
	if (n >= 2 && v[0] == 'W' && v[1] == '/')
		v += 2, n -= 2;
	if (n >= 2 && v[0] == '"' && v[n - 1] == '"')
		v++, n -= 2;
	if (n >= cap) {
		dst[0] = 0;
		return;
	}
	memcpy(dst, v, n);
	dst[n] = 0;
}

static int check_blob_answer(http_call *c);

/* The URL of rel="next" in a Link header (RFC 8288), as the Hub pages its
 * listings; dst stays "" when there is none or it is too long. */
static void link_next(char *dst, size_t cap, const char *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (v[i] != '<')
			continue;
		const char *end = memchr(v + i, '>', n - i);
		if (!end)
			return;
		size_t ul = (size_t)(end - v) - i - 1;
		const char *rest = end + 1, *stop = memchr(rest, ',', n - (size_t)(rest - v));
		size_t rl = stop ? (size_t)(stop - rest) : n - (size_t)(rest - v);
		for (size_t k = 0; k + 10 <= rl; k++)
			if (!strncmp(rest + k, "rel=\"next\"", 10)) {
				if (ul < cap) {
					memcpy(dst, v + i + 1, ul);
					dst[ul] = 0;
				}
				return;
			}
		i = (size_t)(end - v);
	}
}

static size_t on_header(char *line, size_t size, size_t nitems, void *user)
{
	http_call *c = user;
	size_t n = size * nitems;
	if (n >= 5 && !strncmp(line, "HTTP/", 5)) {
		/* a new answer (after a redirect): forget the previous one's
		 * length, keep what the Hub put on the first (X-Linked-*,
		 * X-Repo-Commit) */
		const char *sp = memchr(line, ' ', n);
		uint64_t code = 0;
		c->h.status =
		    sp && !parse_u64(sp + 1, n - (size_t)(sp + 1 - line), &code) && code < 1000
		        ? (long)code
		        : 0;
		c->h.length = UINT64_MAX;
		c->h.has_range = 0;
		c->h.next[0] = 0;
		return n;
	}
	if ((n == 2 && line[0] == '\r') || (n == 1 && line[0] == '\n')) {
		/* the end of an answer's headers: a blob's is checked before a
		 * byte of its body is written */
		if (c->fd >= 0 && check_blob_answer(c)) {
			c->refused = 1;
			return 0;
		}
		return n;
	}
	const char *colon = memchr(line, ':', n);
	if (!colon)
		return n;
	size_t kl = (size_t)(colon - line);
	const char *v = colon + 1;
	size_t vl = n - kl - 1;
	while (vl && (*v == ' ' || *v == '\t'))
		v++, vl--;
	while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
		vl--;
#define IS(name) (kl == strlen(name) && !strncasecmp(line, name, kl))
	if (IS("X-Repo-Commit") && !c->h.commit[0]) {
		header_value(c->h.commit, sizeof(c->h.commit), v, vl);
	} else if (IS("X-Linked-Etag")) {
		header_value(c->h.etag, sizeof(c->h.etag), v, vl);
		c->h.linked_etag = 1;
	} else if (IS("ETag") && !c->h.linked_etag && !c->h.etag[0]) {
		header_value(c->h.etag, sizeof(c->h.etag), v, vl);
	} else if (IS("X-Linked-Size")) {
		c->h.linked_size = !parse_u64(v, vl, &c->h.size);
	} else if (IS("Content-Length")) {
		if (parse_u64(v, vl, &c->h.length))
			c->h.length = UINT64_MAX;
		if (!c->h.linked_size && c->h.length != UINT64_MAX)
			c->h.size = c->h.length;
	} else if (IS("Link")) {
		link_next(c->h.next, sizeof(c->h.next), v, vl);
	} else if (IS("Content-Range") && vl > 6 && !strncmp(v, "bytes ", 6)) {
		c->h.has_range = !parse_u64(v + 6, vl - 6, &c->h.range_at);
	}
#undef IS
	return n;
}

static void show_progress(http_call *c, int done)
{
	const hub_env *e = c->env;
	if (!e || !e->log || !e->log_tty)
		return;
	double t = now_s();
	if (!done && t - c->t_last < 0.25)
		return;
	c->t_last = t;
	double rate = (double)(c->at - c->at0) / (t - c->t0 > 1e-3 ? t - c->t0 : 1e-3);
	double eta = rate > 0 ? (double)(c->expect - c->at) / rate : 0;
	fprintf(e->log, "\r%-40.40s %7.1f/%.1f MB %6.1f MB/s ETA %3d:%02d%s", base_name(c->name),
	        c->at / 1e6, c->expect / 1e6, rate / 1e6, (int)(eta / 60), (int)eta % 60,
	        done ? "\n" : " ");
	fflush(e->log);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *user)
{
	http_call *c = user;
	size_t n = size * nmemb;
	if (c->fd < 0) {
		if (c->len + n > c->limit) {
			c->too_big = 1;
			return 0;
		}
		if (c->len + n + 1 > c->cap) {
			size_t cap = c->cap ? c->cap : 65536;
			while (cap < c->len + n + 1)
				cap *= 2;
			char *b = realloc(c->buf, cap);
			if (!b)
				return 0;
			c->buf = b;
			c->cap = cap;
		}
		memcpy(c->buf + c->len, data, n);
		c->len += n;
		c->buf[c->len] = 0;
		return n;
	}
	/* A blob: only the bytes the listing promised, at the offset asked for. */
	if (c->h.status != 200 && c->h.status != 206)
		return n; /* an error page: read and dropped */
	if (n > c->expect - c->at) {
		c->refused = 1;
		return 0;
	}
	for (size_t k = 0; k < n;) {
		ssize_t w = write(c->fd, data + k, n - k);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			c->io_error = errno ? errno : EIO;
			return 0;
		}
		k += (size_t)w;
	}
	rvi_sha256_update(c->sha, data, n);
	c->at += n;
	show_progress(c, 0);
	return n;
}

/* A blob answer that would run past the size the listing gave, or that
 * starts elsewhere than where we asked, is refused. */
static int check_blob_answer(http_call *c)
{
	long st = c->h.status;
	if (st == 206 && (!c->h.has_range || c->h.range_at != c->at))
		return -1;
	if (st == 200 && c->at) {
		/* the server ignored the Range: start over */
		if (ftruncate(c->fd, 0) || lseek(c->fd, 0, SEEK_SET))
			return -1;
		c->at = 0;
		rvi_sha256_init(c->sha);
	}
	if ((st == 200 || st == 206) && c->h.length != UINT64_MAX &&
	    c->h.length > c->expect - c->at)
		return -1;
	return 0;
}

typedef struct url_buf {
	char s[4096];
} url_buf;

/* endpoint + "/" + parts, each path part percent-encoded but its '/'. */
static int make_url(CURL *h, url_buf *u, const hub_env *e, const char *fmt_prefix, const char *path)
{
	size_t k = (size_t)snprintf(u->s, sizeof(u->s), "%s/%s", e->endpoint, fmt_prefix);
	if (k >= sizeof(u->s))
		return -1;
	for (const char *c = path; c && *c;) {
		const char *s = strchr(c, '/');
		int len = s ? (int)(s - c) : (int)strlen(c);
		char *esc = curl_easy_escape(h, c, len);
		if (!esc)
			return -1;
		int w = snprintf(u->s + k, sizeof(u->s) - k, "%s%s", esc, s ? "/" : "");
		curl_free(esc);
		if (w < 0 || (size_t)w >= sizeof(u->s) - k)
			return -1;
		k += (size_t)w;
		c = s ? s + 1 : NULL;
	}
	return 0;
}

enum method { M_GET, M_HEAD };

/* One request. Returns the CURLcode; c->h.status has the final status. */
static CURLcode http_run(CURL *h, const hub_env *e, const char *url, enum method m, int follow,
                         http_call *c, char *curl_err)
{
	struct curl_slist *hdr = NULL;
	char auth[600], range[64];
	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "rlaifv-infer/" PACKAGE_VERSION);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_err);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	/* CURLOPT_NOSIGNAL stays off: libcurl then ignores SIGPIPE itself
	 * while it writes to a connection the peer has closed */
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
	/* a stalled transfer fails, so it can be retried and resumed */
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, e->stall_seconds);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, (long)follow);
	curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, NULL); /* identity: sizes are the file's */
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
	if (m == M_HEAD)
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	/* libcurl drops a custom Authorization header when a redirect leaves
	 * the host, so the token goes to the Hub and not to its CDN */
	if (e->token[0]) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", e->token);
		hdr = curl_slist_append(hdr, auth);
	}
	if (c->fd >= 0 && c->at > 0) {
		snprintf(range, sizeof(range), "Range: bytes=%llu-", (unsigned long long)c->at);
		hdr = curl_slist_append(hdr, range);
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	c->h.length = UINT64_MAX;
	curl_err[0] = 0;
	CURLcode rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &c->h.status);
	curl_slist_free_all(hdr);
	return rc;
}

/* How an HTTP status ends a request for repo; 0 when it is a success. */
static int status_error(long st, const char *repo, const char *what, char *err, size_t err_len)
{
	if (st == 401 || st == 403)
		return fail(err, err_len, HUB_ERR_AUTH,
		            "%s: access denied (HTTP %ld) for %s: the repository is gated, private "
		            "or absent; accept its terms on the Hub and set HF_TOKEN",
		            repo, st, what);
	if (st == 404)
		return fail(err, err_len, HUB_ERR_NOT_FOUND,
		            "%s: %s not found on the Hub (HTTP 404)", repo, what);
	if (st >= 500)
		return fail(err, err_len, HUB_ERR_NETWORK, "%s: the Hub failed (HTTP %ld) for %s",
		            repo, st, what);
	if (st < 200 || st >= 400)
		return fail(err, err_len, HUB_ERR_REFUSED, "%s: unexpected answer HTTP %ld for %s",
		            repo, st, what);
	return 0;
}

static void backoff(const hub_env *e, int attempt)
{
	long ms = (long)e->retry_delay_ms << (attempt < 10 ? attempt : 10);
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* A network failure (no answer at all) rather than an answer. */
static int is_transport_error(CURLcode rc)
{
	return rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
	       rc == CURLE_COULDNT_RESOLVE_PROXY || rc == CURLE_OPERATION_TIMEDOUT ||
	       rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR || rc == CURLE_GOT_NOTHING ||
	       rc == CURLE_PARTIAL_FILE || rc == CURLE_SSL_CONNECT_ERROR;
}

/* Worth another try: a cut or stalled connection, not a refused one (the
 * network is down: the cache is asked at once). */
static int is_retryable(CURLcode rc)
{
	return is_transport_error(rc) && rc != CURLE_COULDNT_CONNECT &&
	       rc != CURLE_COULDNT_RESOLVE_HOST && rc != CURLE_COULDNT_RESOLVE_PROXY;
}

/* GET of an API answer with retries on 5xx and on a cut connection.
 * *offline_ok is set when there was no answer at all (fall back to the
 * cache). */
static int api_get(CURL *h, const hub_env *e, const char *url, const char *repo, const char *what,
                   http_call *c, int *no_network, char *err, size_t err_len)
{
	char cerr[CURL_ERROR_SIZE];
	*no_network = 0;
	for (int attempt = 0;; attempt++) {
		free(c->buf);
		memset(c, 0, sizeof(*c));
		c->fd = -1;
		c->limit = MAX_LISTING_BYTES;
		CURLcode rc = http_run(h, e, url, M_GET, 1, c, cerr);
		if (c->too_big)
			return fail(err, err_len, HUB_ERR_REFUSED,
			            "%s: the Hub's answer for %s is larger than %u bytes", repo,
			            what, MAX_LISTING_BYTES);
		int retry = rc == CURLE_OK ? c->h.status >= 500 : is_retryable(rc);
		if (retry && attempt + 1 < e->max_tries) {
			backoff(e, attempt);
			continue;
		}
		if (rc != CURLE_OK) {
			*no_network = is_transport_error(rc);
			return fail(err, err_len, HUB_ERR_NETWORK, "%s: cannot reach %s: %s", repo,
			            e->endpoint, cerr[0] ? cerr : curl_easy_strerror(rc));
		}
		int st = status_error(c->h.status, repo, what, err, err_len);
		if (st == HUB_ERR_NETWORK)
			*no_network = 1;
		return st;
	}
}

/* HEAD of resolve/<revision>/<path> without following the redirect: the
 * Hub puts X-Repo-Commit, X-Linked-Etag and X-Linked-Size on it. */
static int head_file(CURL *h, const hub_env *e, const char *repo, const char *revision,
                     const char *path, http_head *out, int *no_network, char *err, size_t err_len)
{
	char cerr[CURL_ERROR_SIZE], prefix[600];
	url_buf u;
	http_call c;
	*no_network = 0;
	snprintf(prefix, sizeof(prefix), "%s/resolve/%s/", repo, revision);
	if (make_url(h, &u, e, prefix, path))
		return fail(err, err_len, HUB_ERR_USAGE, "%s: URL too long for %s", repo, path);
	for (int attempt = 0;; attempt++) {
		memset(&c, 0, sizeof(c));
		c.fd = -1;
		c.limit = 1 << 16;
		CURLcode rc = http_run(h, e, u.s, M_HEAD, 0, &c, cerr);
		free(c.buf);
		int retry = rc == CURLE_OK ? c.h.status >= 500 : is_retryable(rc);
		if (retry && attempt + 1 < e->max_tries) {
			backoff(e, attempt);
			continue;
		}
		if (rc != CURLE_OK) {
			*no_network = is_transport_error(rc);
			return fail(err, err_len, HUB_ERR_NETWORK, "%s: cannot reach %s: %s", repo,
			            e->endpoint, cerr[0] ? cerr : curl_easy_strerror(rc));
		}
		int st = status_error(c.h.status, repo, path, err, err_len);
		if (st)
			return st;
		*out = c.h;
		return HUB_OK;
	}
}

/* ---- downloading a blob ------------------------------------------------- */

/* Hashes the first n bytes of fd into sha (a resumed .incomplete file). */
static int hash_prefix(int fd, uint64_t n, rvi_sha256_ctx *sha)
{
	enum { CHUNK = 1 << 16 };
	char *buf = malloc(CHUNK);
	if (!buf || lseek(fd, 0, SEEK_SET)) {
		free(buf);
		return -1;
	}
	while (n) {
		ssize_t r = read(fd, buf, n < CHUNK ? (size_t)n : CHUNK);
		if (r <= 0)
			break;
		rvi_sha256_update(sha, buf, (size_t)r);
		n -= (uint64_t)r;
	}
	free(buf);
	return n ? -1 : 0;
}

static int download_blob(CURL *h, const hub_env *e, const char *repo, const char *commit,
                         const hub_file *f, const char *blob, char *err, size_t err_len)
{
	char inc[PATH_MAX], prefix[600], cerr[CURL_ERROR_SIZE];
	url_buf u;
	if (path_fmt(inc, sizeof(inc), "%s.incomplete", blob))
		return fail(err, err_len, HUB_ERR_IO, "cache path too long for %s", f->path);
	snprintf(prefix, sizeof(prefix), "%s/resolve/%s/", repo, commit);
	if (make_url(h, &u, e, prefix, f->path))
		return fail(err, err_len, HUB_ERR_USAGE, "%s: URL too long for %s", repo, f->path);
	int fd = open(inc, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return fail(err, err_len, HUB_ERR_IO, "cannot create %s: %s", inc, strerror(errno));
	struct stat st;
	uint64_t have = fstat(fd, &st) ? 0 : (uint64_t)st.st_size;
	if (have > f->size && ftruncate(fd, 0) == 0)
		have = 0;
	rvi_sha256_ctx sha;
	rvi_sha256_init(&sha);
	if (have > f->size || hash_prefix(fd, have, &sha) || lseek(fd, (off_t)have, SEEK_SET) < 0) {
		close(fd);
		return fail(err, err_len, HUB_ERR_IO, "cannot read %s: %s", inc, strerror(errno));
	}
	/* disk space for what is still to come */
	struct statvfs vfs;
	if (!fstatvfs(fd, &vfs)) {
		uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
		if (f->size - have > avail) {
			close(fd);
			return fail(err, err_len, HUB_ERR_IO,
			            "%s needs %llu more bytes in %s, %llu are free", f->path,
			            (unsigned long long)(f->size - have), e->cache,
			            (unsigned long long)avail);
		}
	}
	if (e->log && !e->log_tty)
		fprintf(e->log, "rlaifv-infer: downloading %s/%s (%llu bytes%s)\n", repo, f->path,
		        (unsigned long long)f->size, have ? ", resumed" : "");
	int status = HUB_OK;
	http_call c;
	for (int attempt = 0;; attempt++) {
		memset(&c, 0, sizeof(c));
		c.fd = fd;
		c.at = have;
		c.expect = f->size;
		c.sha = &sha;
		c.env = e;
		c.name = f->path;
		c.t0 = c.t_last = now_s();
		c.at0 = have;
		CURLcode rc = CURLE_OK;
		if (c.at < c.expect)
			rc = http_run(h, e, u.s, M_GET, 1, &c, cerr);
		else
			c.h.status = 200; /* an empty file, or a complete .incomplete */
		have = c.at;
		int got_body = c.h.status == 200 || c.h.status == 206;
		if (c.refused) {
			status = fail(
			    err, err_len, HUB_ERR_REFUSED,
			    "%s: the download of %s was refused: the server sends more than "
			    "the %llu bytes the Hub lists, or not from byte %llu",
			    repo, f->path, (unsigned long long)f->size, (unsigned long long)have);
			if (ftruncate(fd, 0))
				status = HUB_ERR_REFUSED; /* it is unlinked below anyway */
			unlink(inc);
			break;
		}
		if (c.io_error) {
			status = fail(err, err_len, HUB_ERR_IO, "cannot write %s: %s", inc,
			              strerror(c.io_error));
			break;
		}
		if (rc == CURLE_OK && got_body && have == f->size)
			break;
		/* a cut connection, a short answer or a 5xx: again from where it
		 * stopped */
		int retry = rc != CURLE_OK ? is_retryable(rc) : got_body || c.h.status >= 500;
		if (retry && attempt + 1 < e->max_tries) {
			if (e->log)
				fprintf(e->log, "%srlaifv-infer: %s: %s; resuming at byte %llu\n",
				        e->log_tty ? "\n" : "", f->path,
				        rc != CURLE_OK ? (cerr[0] ? cerr : curl_easy_strerror(rc))
				        : got_body     ? "the transfer ended early"
				                       : "the server failed",
				        (unsigned long long)have);
			backoff(e, attempt);
			continue;
		}
		if (rc != CURLE_OK || got_body)
			status = fail(
			    err, err_len, HUB_ERR_NETWORK,
			    "%s: the download of %s stopped at byte %llu of %llu: %s (run "
			    "again to resume)",
			    repo, f->path, (unsigned long long)have, (unsigned long long)f->size,
			    rc != CURLE_OK ? (cerr[0] ? cerr : curl_easy_strerror(rc))
			                   : "the transfer ended early");
		else if (!(status = status_error(c.h.status, repo, f->path, err, err_len)))
			status = fail(err, err_len, HUB_ERR_REFUSED,
			              "%s: unexpected answer HTTP %ld for %s", repo, c.h.status,
			              f->path);
		break;
	}
	if (status == HUB_OK)
		show_progress(&c, 1);
	else if (e->log && e->log_tty)
		fputc('\n', e->log);
	if (status == HUB_OK) {
		uint8_t d[RVI_SHA256_BYTES];
		char hex[65];
		rvi_sha256_final(&sha, d);
		rvi_sha256_hex(d, hex);
		if (strcmp(hex, f->sha256)) {
			close(fd);
			unlink(inc);
			return fail(
			    err, err_len, HUB_ERR_REFUSED,
			    "%s: %s downloaded with sha256 %s, but the Hub lists %s: deleted", repo,
			    f->path, hex, f->sha256);
		}
		if (fsync(fd) || rename(inc, blob))
			status = fail(err, err_len, HUB_ERR_IO, "cannot store %s: %s", blob,
			              strerror(errno));
	}
	close(fd);
	return status;
}

/* The relative link snapshots/<commit>/<path> -> ../../blobs/<etag> (one
 * more "../" per folder in path), replacing a stale one. */
static int link_snapshot(const char *rdir, const char *commit, const char *path, const char *etag,
                         char *out, size_t out_len)
{
	char target[PATH_MAX];
	size_t k = 0;
	int depth = 2;
	for (const char *c = path; *c; c++)
		depth += *c == '/';
	for (int i = 0; i < depth; i++)
		k += (size_t)snprintf(target + k, sizeof(target) - k, "../");
	if (path_fmt(target + k, sizeof(target) - k, "blobs/%s", etag) ||
	    path_fmt(out, out_len, "%s/snapshots/%s/%s", rdir, commit, path) || make_parents(out))
		return -1;
	char cur[PATH_MAX];
	ssize_t n = readlink(out, cur, sizeof(cur) - 1);
	if (n >= 0) {
		cur[n] = 0;
		if (!strcmp(cur, target))
			return 0;
	}
	char tmp[PATH_MAX];
	if (path_fmt(tmp, sizeof(tmp), "%s.tmp%ld", out, (long)getpid()))
		return -1;
	unlink(tmp);
	if (symlink(target, tmp) || rename(tmp, out)) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* refs/<revision> = commit, written atomically. */
static int write_ref(const char *rdir, const char *revision, const char *commit)
{
	char p[PATH_MAX], tmp[PATH_MAX];
	if (path_fmt(p, sizeof(p), "%s/refs/%s", rdir, revision) ||
	    path_fmt(tmp, sizeof(tmp), "%s.tmp%ld", p, (long)getpid()) || make_parents(p))
		return -1;
	FILE *f = fopen(tmp, "w");
	if (!f)
		return -1;
	int bad = fputs(commit, f) < 0;
	bad |= fclose(f) != 0;
	if (bad || rename(tmp, p)) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* Makes one file of the snapshot present: HEAD for its etag and commit,
 * then the blob unless the cache has it (under the lock, so a second
 * process waits for the first and then finds the blob). */
static int fetch_file(CURL *h, const hub_env *e, const char *repo, const char *rdir,
                      const char *revision, hub_file *f, char commit[41], char *local,
                      int *no_network, char *err, size_t err_len)
{
	http_head hd;
	int st = head_file(h, e, repo, commit[0] ? commit : revision, f->path, &hd, no_network, err,
	                   err_len);
	if (st)
		return st;
	if (!is_hex(hd.commit, 40))
		return fail(err, err_len, HUB_ERR_REFUSED,
		            "%s: the Hub's answer for %s has no valid X-Repo-Commit", repo,
		            f->path);
	if (commit[0] && strcmp(commit, hd.commit))
		return fail(err, err_len, HUB_ERR_REFUSED,
		            "%s: the Hub answered %s for %s, not commit %s", repo, hd.commit,
		            f->path, commit);
	strcpy(commit, hd.commit);
	/* GGUFs are LFS files: their etag is the sha256, which must be the
	 * listing's, and is what the download is checked against */
	if (!f->sha256[0])
		return fail(err, err_len, HUB_ERR_REFUSED,
		            "%s: %s is not stored in LFS, so it has no sha256 to check it against",
		            repo, f->path);
	if (strcmp(hd.etag, f->sha256))
		return fail(err, err_len, HUB_ERR_REFUSED,
		            "%s: the Hub's etag '%.70s' for %s is not the listed sha256 %s", repo,
		            hd.etag, f->path, f->sha256);
	if (hd.size != f->size)
		return fail(err, err_len, HUB_ERR_REFUSED,
		            "%s: the Hub gives %s %llu bytes here and %llu in its listing", repo,
		            f->path, (unsigned long long)hd.size, (unsigned long long)f->size);
	char blob[PATH_MAX], lock[PATH_MAX];
	const char *folder = strrchr(rdir, '/') + 1;
	if (path_fmt(blob, sizeof(blob), "%s/blobs/%s", rdir, f->sha256) ||
	    path_fmt(lock, sizeof(lock), "%s/.locks/%s/%s.lock", e->cache, folder, f->sha256) ||
	    make_parents(blob) || make_parents(lock))
		return fail(err, err_len, HUB_ERR_IO,
		            "cannot create the cache folders under %s: %s", e->cache,
		            strerror(errno));
	struct stat sb;
	if (lstat(blob, &sb) || !S_ISREG(sb.st_mode) || (uint64_t)sb.st_size != f->size) {
		int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (lfd < 0)
			return fail(err, err_len, HUB_ERR_IO, "cannot create %s: %s", lock,
			            strerror(errno));
		if (flock(lfd, LOCK_EX | LOCK_NB)) {
			if (e->log)
				fprintf(e->log,
				        "rlaifv-infer: waiting for another download of %s\n",
				        f->path);
			while (flock(lfd, LOCK_EX) && errno == EINTR)
				;
		}
		if (lstat(blob, &sb) || !S_ISREG(sb.st_mode) || (uint64_t)sb.st_size != f->size) {
			if (!lstat(blob, &sb))
				unlink(blob); /* a wrong-sized or non-regular blob is replaced */
			st = download_blob(h, e, repo, commit, f, blob, err, err_len);
		}
		close(lfd); /* releases the lock */
		if (st)
			return st;
	}
	if (link_snapshot(rdir, commit, f->path, f->sha256, local, PATH_MAX))
		return fail(err, err_len, HUB_ERR_IO, "cannot link %s into %s/snapshots: %s",
		            f->path, rdir, strerror(errno));
	return HUB_OK;
}

static int list_remote(CURL *h, const hub_env *e, const char *repo, const char *revision,
                       hub_files *f, int *no_network, char *err, size_t err_len)
{
	url_buf u;
	char prefix[600];
	http_call c = {0};
	snprintf(prefix, sizeof(prefix), "api/models/%s/tree/", repo);
	if (make_url(h, &u, e, prefix, revision) || strlen(u.s) + 16 >= sizeof(u.s))
		return fail(err, err_len, HUB_ERR_USAGE, "%s: URL too long", repo);
	strcat(u.s, "?recursive=true");
	char what[300];
	snprintf(what, sizeof(what), "the file list at revision %s", revision);
	size_t el = strlen(e->endpoint);
	int st = HUB_OK;
	/* page after page (the Hub links the next one); each page's URL must
	 * stay on the endpoint, where the token may go */
	for (int page = 0; st == HUB_OK; page++) {
		st = api_get(h, e, u.s, repo, what, &c, no_network, err, err_len);
		if (st == HUB_OK)
			st = parse_listing(c.buf ? c.buf : "", c.len, repo, f, err, err_len);
		if (st != HUB_OK || !c.h.next[0])
			break;
		if (strncmp(c.h.next, e->endpoint, el) || c.h.next[el] != '/' || page == 100)
			st = fail(err, err_len, HUB_ERR_REFUSED,
			          "%s: the Hub's file list links to a next page off %s or past 100 "
			          "pages: '%.200s'",
			          repo, e->endpoint, c.h.next);
		else
			snprintf(u.s, sizeof(u.s), "%s", c.h.next);
	}
	free(c.buf);
	return st;
}

static int curl_ready(char *err, size_t err_len)
{
	static int done;
	if (!done && curl_global_init(CURL_GLOBAL_DEFAULT))
		return fail(err, err_len, HUB_ERR_NETWORK, "libcurl failed to initialize");
	done = 1;
	return HUB_OK;
}

int hub_fetch(const hub_env *e, const hub_request *r, hub_paths *out, char *err, size_t err_len)
{
	const char *revision = r->revision ? r->revision : "main";
	memset(out, 0, sizeof(*out));
	if (!valid_repo(r->repo))
		return fail(err, err_len, HUB_ERR_USAGE,
		            "'%s' is not a Hub repository name OWNER/REPO", r->repo);
	if (!valid_revision(revision))
		return fail(err, err_len, HUB_ERR_USAGE, "'%s' is not a revision name", revision);
	if ((r->file && !valid_rel_path(r->file)) || (r->mmproj && !valid_rel_path(r->mmproj)))
		return fail(err, err_len, HUB_ERR_USAGE, "'%s' is not a file name in a repository",
		            r->file && !valid_rel_path(r->file) ? r->file : r->mmproj);
	if (e->offline)
		return fetch_cached(e, r, revision, out, "HF_HUB_OFFLINE is set", err, err_len);
	int st = curl_ready(err, err_len);
	CURL *h = st ? NULL : curl_easy_init();
	if (!h)
		return st ? st : fail(err, err_len, HUB_ERR_NETWORK, "libcurl: no handle");
	hub_files f = {0};
	int no_network = 0;
	char rdir[PATH_MAX], commit[41] = "";
	if (repo_dir(e, r->repo, rdir, sizeof(rdir))) {
		curl_easy_cleanup(h);
		return fail(err, err_len, HUB_ERR_USAGE, "the cache path is too long");
	}
	if (is_hex(revision, 40))
		strcpy(commit, revision);
	st = list_remote(h, e, r->repo, revision, &f, &no_network, err, err_len);
	plan pl;
	if (st == HUB_OK)
		st = make_plan(&f, r, &pl, "on the Hub", err, err_len);
	for (int k = 0; st == HUB_OK && k < pl.n_parts + 1; k++) {
		int i = k < pl.n_parts ? pl.parts[k] : pl.mmproj;
		char *local = k == 0 ? out->model : k == pl.n_parts ? out->mmproj : NULL;
		char scratch[PATH_MAX];
		if (i >= 0)
			st = fetch_file(h, e, r->repo, rdir, revision, &f.v[i], commit,
			                local ? local : scratch, &no_network, err, err_len);
	}
	if (st == HUB_OK) {
		out->n_parts = pl.n_parts;
		if (strcmp(revision, commit) && write_ref(rdir, revision, commit))
			st = fail(err, err_len, HUB_ERR_IO, "cannot write %s/refs/%s: %s", rdir,
			          revision, strerror(errno));
	}
	files_free(&f);
	curl_easy_cleanup(h);
	if (st != HUB_OK && no_network) {
		/* the network failed: what an earlier run, `hf download` or
		 * transformers left in the cache will do */
		char why[600];
		snprintf(why, sizeof(why), "%s", err);
		int cst = fetch_cached(e, r, revision, out, why, err, err_len);
		if (cst == HUB_OK || cst != HUB_ERR_NETWORK)
			return cst;
		snprintf(err, err_len, "%s (nothing usable in the cache %s)", why, e->cache);
	}
	return st;
}

int hub_list(const hub_env *e, const char *repo, const char *revision, FILE *out, char *err,
             size_t err_len)
{
	revision = revision ? revision : "main";
	if (!valid_repo(repo) || !valid_revision(revision))
		return fail(err, err_len, HUB_ERR_USAGE,
		            "'%s' (revision '%s') is not a repository name", repo, revision);
	hub_files f = {0};
	int no_network = 0, st = HUB_OK;
	char commit[41];
	const char *from = "the Hub";
	if (e->offline) {
		if (cache_files(e, repo, revision, &f, commit))
			st = fail(err, err_len, HUB_ERR_NETWORK,
			          "HF_HUB_OFFLINE is set and %s is not in the cache %s", repo,
			          e->cache);
		from = "the cache";
	} else {
		st = curl_ready(err, err_len);
		CURL *h = st ? NULL : curl_easy_init();
		if (h)
			st = list_remote(h, e, repo, revision, &f, &no_network, err, err_len);
		else if (!st)
			st = fail(err, err_len, HUB_ERR_NETWORK, "libcurl: no handle");
		curl_easy_cleanup(h);
	}
	if (st == HUB_OK) {
		const char **paths = files_paths(&f);
		int best = paths ? hub_choose_model(paths, f.n, NULL) : -1;
		free(paths);
		fprintf(out, "# %s (%s, revision %s): quant, bytes, files\n", repo, from, revision);
		for (int i = 0; i < f.n; i++) {
			size_t pl;
			int idx, cnt, parts[MAX_SPLIT];
			char tag[32];
			if (!is_text_model(f.v[i].path))
				continue;
			split_info(f.v[i].path, &pl, &idx, &cnt);
			if (idx != 1)
				continue;
			hub_quant_tag(f.v[i].path, tag, sizeof(tag));
			int n = split_set(&f, i, parts);
			uint64_t total = 0;
			for (int k = 0; k < n; k++)
				total += f.v[parts[k]].size;
			fprintf(out, "%-10s %14llu  %s%s%s\n", tag[0] ? tag : "-",
			        (unsigned long long)total, f.v[i].path,
			        n > 1   ? " (split set)"
			        : n < 0 ? " (split set, parts missing)"
			                : "",
			        i == best ? "  [default]" : "");
		}
		for (int i = 0; i < f.n; i++)
			if (ends_with_gguf(f.v[i].path) && strstr(base_name(f.v[i].path), "mmproj"))
				fprintf(out, "%-10s %14llu  %s\n", "mmproj",
				        (unsigned long long)f.v[i].size, f.v[i].path);
	}
	files_free(&f);
	return st;
}

#endif /* HAVE_CURL */
