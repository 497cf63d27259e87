/* cli_batch.c: rlaifv-infer --batch TASKS.jsonl: every task of the file
 * (one JSON object a line) answered with the model loaded once, one result
 * line each, in the file's order, each written whole and flushed as it
 * finishes, so that a killed run leaves at most one partial last line,
 * which --resume drops and redoes. A task that cannot run gets an error
 * record and the batch goes on; the exit status then says so. */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "programs/rlaifv-infer/cli.h"
#include "programs/rlaifv-infer/cli_json.h"

#define MAX_TASK_IMAGES 64

/* One non-blank line of the tasks file. */
typedef struct task {
	const char *line; /* in the file's buffer, NUL-terminated */
	size_t len;
	int line_no; /* 1-based, for messages */
	char *id;    /* the id as JSON text (a string literal or an integer), NULL if none */
} task;

/* What a task line asks for, pointing into its parsed document. */
typedef struct task_spec {
	const char *prompt, *system, *chat_template;
	const char *images[MAX_TASK_IMAGES];
	int n_images;
	int n_candidates, n_predict;
	float temp;
	uint64_t seed;
} task_spec;

/* Reads the whole file (at most 1 GiB: 10^6 tasks of a kilobyte). */
static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "rlaifv-infer: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);
	for (size_t got = 1; buf && got;) {
		if (cap - n < 2) {
			char *b = cap >= ((size_t)1 << 30) ? NULL : realloc(buf, cap * 2);
			if (!b) {
				fprintf(stderr,
				        "rlaifv-infer: %s: larger than 1 GiB or out of memory\n",
				        path);
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = b;
			cap *= 2;
		}
		got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
	}
	int bad = !buf || ferror(f);
	fclose(f);
	if (bad) {
		fprintf(stderr, "rlaifv-infer: %s: %s\n", path,
		        buf ? "read error" : "out of memory");
		free(buf);
		return NULL;
	}
	buf[n] = 0;
	*len = n;
	return buf;
}

/* The id node as the JSON text it is written with: a string literal or an
 * integer. NULL if the line has no usable id (err says why). */
static char *id_text(const cj_doc *d, char *err, size_t errlen)
{
	const cj_node *id = cj_get(d, &d->nodes[0], "id");
	long long v;
	char *text = NULL;
	size_t size = 0;
	if (!id) {
		snprintf(err, errlen, "no \"id\"");
		return NULL;
	}
	if (id->type == CJ_STRING) {
		FILE *f = open_memstream(&text, &size);
		if (!f)
			return NULL;
		cli_json_string(f, id->str);
		fclose(f);
		return text;
	}
	if (cj_integer(id, -(1LL << 53), 1LL << 53, &v) && (text = malloc(24)))
		snprintf(text, 24, "%lld", v);
	else if (!text)
		snprintf(err, errlen, "\"id\" is not a string or an integer");
	return text;
}

/* Splits buf into lines (blank ones skipped) and finds each task's id. */
static task *split_tasks(char *buf, size_t len, int *n_tasks)
{
	int cap = 64, n = 0, line_no = 0;
	task *t = malloc((size_t)cap * sizeof(*t));
	for (char *p = buf; t && p < buf + len;) {
		char *end = memchr(p, '\n', (size_t)(buf + len - p));
		if (!end)
			end = buf + len;
		*end = 0;
		line_no++;
		size_t k = (size_t)(end - p);
		if (k && p[k - 1] == '\r')
			p[--k] = 0;
		if (strspn(p, " \t") != k) {
			if (n == cap) {
				task *b = realloc(t, (size_t)cap * 2 * sizeof(*t));
				if (!b) {
					free(t);
					return NULL;
				}
				t = b;
				cap *= 2;
			}
			cj_doc d;
			char err[256];
			t[n] = (task){p, k, line_no, NULL};
			if (cj_parse(p, k, &d, err, sizeof(err)) == 0 &&
			    d.nodes[0].type == CJ_OBJECT)
				t[n].id = id_text(&d, err, sizeof(err));
			cj_free(&d);
			n++;
		}
		p = end + 1;
	}
	*n_tasks = n;
	return t;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The ids sorted (for bsearch); refuses a duplicate. NULL after a message. */
static char **sorted_ids(const task *t, int n, const char *path, int *n_ids)
{
	char **ids = malloc(((size_t)n + 1) * sizeof(*ids));
	int k = 0;
	for (int i = 0; ids && i < n; i++)
		if (t[i].id)
			ids[k++] = t[i].id;
	if (!ids)
		return NULL;
	qsort(ids, (size_t)k, sizeof(*ids), cmp_str);
	for (int i = 1; i < k; i++)
		if (!strcmp(ids[i - 1], ids[i])) {
			int first = 0, second = 0;
			for (int j = 0; j < n; j++)
				if (t[j].id && !strcmp(t[j].id, ids[i]))
					*(first ? &second : &first) = t[j].line_no;
			fprintf(stderr, "rlaifv-infer: %s: duplicate id %s (lines %d and %d)\n",
			        path, ids[i], first, second);
			free(ids);
			return NULL;
		}
	*n_ids = k;
	return ids;
}

/* --resume: the ids already in OUT. A partial last line (no newline: the
 * run was killed while writing it) is cut off the file and redone. */
static char **done_ids(const char *path, int *n_done)
{
	*n_done = 0;
	char **ids = malloc(sizeof(*ids));
	if (access(path, F_OK) != 0)
		return ids;
	size_t len;
	char *buf = read_file(path, &len);
	if (!buf) {
		free(ids);
		return NULL;
	}
	size_t whole = len;
	while (whole > 0 && buf[whole - 1] != '\n')
		whole--;
	if (whole < len && truncate(path, (off_t)whole) != 0) {
		fprintf(stderr, "rlaifv-infer: %s: cannot drop the partial last line: %s\n", path,
		        strerror(errno));
		free(buf);
		free(ids);
		return NULL;
	}
	int n;
	task *t = split_tasks(buf, whole, &n);
	char **out = t ? realloc(ids, ((size_t)n + 1) * sizeof(*ids)) : NULL;
	if (!out) {
		free(ids);
	} else {
		for (int i = 0; i < n; i++)
			if (t[i].id)
				out[(*n_done)++] = t[i].id;
		qsort(out, (size_t)*n_done, sizeof(*out), cmp_str);
	}
	free(t);
	free(buf);
	return out;
}

/* --resume with --pairs: keeps the whole lines of PAIRS whose id is done
 * (a pair written just before a kill belongs to a task that runs again). */
static int keep_pairs(const char *path, char **done, int n_done)
{
	if (access(path, F_OK) != 0)
		return 0;
	size_t len;
	char *buf = read_file(path, &len);
	if (!buf)
		return -1;
	while (len > 0 && buf[len - 1] != '\n')
		len--;
	int n, r = -1;
	task *t = split_tasks(buf, len, &n);
	FILE *f = t ? fopen(path, "w") : NULL;
	for (int i = 0; f && i < n; i++)
		if (t[i].id && n_done > 0 &&
		    bsearch(&t[i].id, done, (size_t)n_done, sizeof(*done), cmp_str))
			fprintf(f, "%s\n", t[i].line);
	if (f && fclose(f) == 0)
		r = 0;
	else
		fprintf(stderr, "rlaifv-infer: %s: %s\n", path,
		        t ? strerror(errno) : "out of memory");
	for (int i = 0; t && i < n; i++)
		free(t[i].id);
	free(t);
	free(buf);
	return r;
}

/* The error record of a task: {"id":...,"error":{"code":...,"message":...}},
 * a malloc'ed line (NULL when out of memory). */
static char *error_record(const task *t, const char *code, const char *message)
{
	char *text = NULL;
	size_t size = 0;
	FILE *m = open_memstream(&text, &size);
	if (!m)
		return NULL;
	fprintf(m, "{\"id\":%s,\"line\":%d,\"error\":{\"code\":\"%s\",\"message\":",
	        t->id ? t->id : "null", t->line_no, code);
	cli_json_string(m, message);
	fputs("}}\n", m);
	fclose(m);
	return text;
}

static const char *opt_string(const cj_doc *d, const char *key, int *bad)
{
	const cj_node *v = cj_get(d, &d->nodes[0], key);
	if (!v || v->type == CJ_NULL)
		return NULL;
	if (v->type != CJ_STRING)
		*bad = 1;
	return v->type == CJ_STRING ? v->str : NULL;
}

/* Fills s from the task's document with the options as defaults, the same
 * rules as the command line (a temperature of 0 is one greedy answer;
 * without one, 0.7 for several candidates and 0.8 for one). 0, or -1 with
 * the reason in err. images point into paths (MAX_TASK_IMAGES x PATH_MAX). */
static int read_spec(const cli_opts *o, const cj_doc *d, const char *dir, task_spec *s,
                     char (*paths)[4096], char *err, size_t errlen)
{
	static const char *const known[] = {"id",     "image",        "images", "prompt",
	                                    "n",      "seed",         "temp",   "n_predict",
	                                    "system", "chat_template"};
	const cj_node *root = &d->nodes[0];
	for (int c = root->child; c >= 0; c = d->nodes[c].next) {
		size_t k = 0;
		while (k < sizeof(known) / sizeof(*known) && strcmp(known[k], d->nodes[c].key))
			k++;
		if (k == sizeof(known) / sizeof(*known)) {
			snprintf(err, errlen, "unknown member \"%s\"", d->nodes[c].key);
			return -1;
		}
	}
	int bad = 0;
	memset(s, 0, sizeof(*s));
	s->prompt = opt_string(d, "prompt", &bad);
	s->system = opt_string(d, "system", &bad);
	s->chat_template = opt_string(d, "chat_template", &bad);
	if (bad || !s->prompt) {
		snprintf(err, errlen,
		         "\"prompt\" (required), \"system\" and \"chat_template\" are "
		         "strings");
		return -1;
	}
	s->system = s->system ? s->system : o->system;
	s->chat_template = s->chat_template ? s->chat_template : o->chat_template;

	const char *names[MAX_TASK_IMAGES + 1];
	int n = 0;
	const cj_node *img = cj_get(d, root, "image"), *imgs = cj_get(d, root, "images");
	if (img && img->type == CJ_STRING)
		names[n++] = img->str;
	else if (img && img->type != CJ_NULL)
		bad = 1;
	if (imgs && imgs->type == CJ_ARRAY) {
		for (int c = imgs->child; c >= 0 && !bad; c = d->nodes[c].next) {
			if (d->nodes[c].type != CJ_STRING || n == MAX_TASK_IMAGES)
				bad = 1;
			else
				names[n++] = d->nodes[c].str;
		}
	} else if (imgs && imgs->type != CJ_NULL) {
		bad = 1;
	}
	if (bad) {
		snprintf(err, errlen,
		         "\"image\" is a path or null, \"images\" an array of at most "
		         "%d paths",
		         MAX_TASK_IMAGES);
		return -1;
	}
	/* relative paths are the tasks file's folder's */
	for (int i = 0; i < n; i++) {
		int w = names[i][0] == '/' ? snprintf(paths[i], 4096, "%s", names[i])
		                           : snprintf(paths[i], 4096, "%s/%s", dir, names[i]);
		if (w < 0 || w >= 4096) {
			snprintf(err, errlen, "image path too long");
			return -1;
		}
		s->images[i] = paths[i];
	}
	s->n_images = n;

	long long v;
	const cj_node *nv = cj_get(d, root, "n"), *tv = cj_get(d, root, "temp");
	const cj_node *pv = cj_get(d, root, "n_predict"), *sv = cj_get(d, root, "seed");
	s->n_candidates = o->n_candidates;
	s->n_predict = o->n_predict;
	s->seed = o->seed;
	if (nv && !cj_integer(nv, 1, RV_MAX_CANDIDATES, &v)) {
		snprintf(err, errlen, "\"n\" is not an integer in [1, %d]", RV_MAX_CANDIDATES);
		return -1;
	}
	if (nv)
		s->n_candidates = (int)v;
	if (pv && !cj_integer(pv, -1, 1 << 24, &v)) {
		snprintf(err, errlen, "\"n_predict\" is not an integer in [-1, %d]", 1 << 24);
		return -1;
	}
	if (pv)
		s->n_predict = (int)v;
	if (sv) {
		char *end;
		errno = 0;
		unsigned long long u = sv->type == CJ_NUMBER ? strtoull(sv->str, &end, 10) : 0;
		if (sv->type != CJ_NUMBER || sv->str[0] == '-' || strpbrk(sv->str, ".eE") ||
		    errno || *end) {
			snprintf(err, errlen, "\"seed\" is not a non-negative 64-bit integer");
			return -1;
		}
		s->seed = u;
	}
	if (tv) {
		char *end;
		float t = tv->type == CJ_NUMBER ? strtof(tv->str, &end) : -1;
		if (!(t >= 0 && t <= RV_MAX_TEMP)) {
			snprintf(err, errlen, "\"temp\" is not a number in [0, %g]",
			         (double)RV_MAX_TEMP);
			return -1;
		}
		s->temp = t;
	} else {
		s->temp = o->temp_given ? o->temp : s->n_candidates > 1 ? 0.7f : 0.8f;
	}
	if (s->temp == 0 && s->n_candidates > 1) {
		if (nv || o->candidates_given) {
			snprintf(err, errlen, "%d candidates at temperature 0 would be identical",
			         s->n_candidates);
			return -1;
		}
		s->n_candidates = 1;
	}
	return 0;
}

static const char *status_code(rv_status st)
{
	switch (st) {
	case RV_ERR_IMAGE:
		return "image";
	case RV_ERR_CONTEXT:
		return "context";
	case RV_ERR_INVALID_ARG:
		return "invalid";
	default:
		return "runtime";
	}
}

typedef struct batch {
	const cli_opts *o;
	rv_context *ctx, *ref_ctx;
	int have_mmproj;
	const char *dir; /* the tasks file's folder */
	FILE *out;
	FILE *pairs; /* --pairs, or NULL */
	char (*paths)[4096];
} batch;

/* A task of the window being run: what it asks, then its lines. */
typedef struct pending {
	const task *t;
	cj_doc d;
	int parsed; /* d holds the line's document */
	task_spec s;
	char *paths[MAX_TASK_IMAGES]; /* s.images: copies of b->paths' */
	char *line;                   /* the result or error record, once known */
	char *pair;                   /* its --pairs line, or NULL */
	int done, failed;
} pending;

/* Reads task t into p; on a bad line p gets its error record. */
static void read_task(batch *b, const task *t, pending *p)
{
	char err[1024];
	memset(p, 0, sizeof(*p));
	p->t = t;
	int r = -1;
	if (cj_parse(t->line, t->len, &p->d, err, sizeof(err)) != 0)
		goto bad;
	p->parsed = 1;
	if (p->d.nodes[0].type != CJ_OBJECT)
		snprintf(err, sizeof(err), "not a JSON object");
	else if (!t->id)
		free(id_text(&p->d, err, sizeof(err)));
	else if (read_spec(b->o, &p->d, b->dir, &p->s, b->paths, err, sizeof(err)) == 0)
		r = 0;
	if (r == 0 && p->s.n_images > 0 && !b->have_mmproj) {
		snprintf(err, sizeof(err), "an image needs the model's projector: give --mmproj");
		r = -1;
	}
	for (int i = 0; r == 0 && i < p->s.n_images; i++) {
		p->s.images[i] = p->paths[i] = strdup(b->paths[i]);
		if (!p->paths[i]) {
			snprintf(err, sizeof(err), "out of memory");
			r = -1;
		}
	}
	if (r == 0)
		return;
bad:
	p->line = error_record(t, "bad-task", err);
	p->done = p->failed = 1;
}

static void pending_free(pending *p)
{
	if (p->parsed)
		cj_free(&p->d);
	for (int i = 0; i < MAX_TASK_IMAGES; i++)
		free(p->paths[i]);
	free(p->line);
	free(p->pair);
	memset(p, 0, sizeof(*p));
}

/* The --json object of res with the id first, as one line. */
static char *result_line(const char *id, const rv_result *res)
{
	char *text = NULL;
	size_t size = 0;
	FILE *m = open_memstream(&text, &size);
	if (!m)
		return NULL;
	fprintf(m, "{\"id\":%s,", id);
	cli_print_json(m, res);
	fclose(m);
	/* drop the object's own '{' after the id */
	char *brace = text + strlen("{\"id\":,") + strlen(id);
	memmove(brace, brace + 1, size - (size_t)(brace - text));
	return text;
}

/* The tasks of one rv_generate_batch call, written in their order as soon
 * as all before them are. */
typedef struct window {
	batch *b;
	pending *p;
	int n, next_write; /* tasks; the first not written yet */
	int *run;          /* (n) the pending of each task handed to the library */
	int n_failed, n_done, total_done, total;
	double t0;
} window;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* On a terminal: one live line of tasks done, failures, rate and ETA. */
static void show_progress(int done, int total, int failed, double t0)
{
	double s = now_s() - t0, per_min = s > 0 ? done * 60.0 / s : 0;
	double eta = done > 0 ? (total - done) * s / done : 0;
	fprintf(stderr, "\r%d/%d tasks, %d failed, %.1f tasks/min, ETA %dm%02ds ", done, total,
	        failed, per_min, (int)eta / 60, (int)eta % 60);
}

/* Writes p's lines: the pair before the result (a kill between the two
 * leaves a pair whose task --resume runs again, and keep_pairs drops it). */
static void write_task(batch *b, pending *p)
{
	if (p->pair && b->pairs) {
		fputs(p->pair, b->pairs);
		fflush(b->pairs);
	}
	if (p->line) {
		fputs(p->line, b->out);
		fflush(b->out);
	}
}

/* Writes the finished tasks no unfinished one precedes. */
static void write_ready(window *w)
{
	for (; w->next_write < w->n && w->p[w->next_write].done; w->next_write++)
		write_task(w->b, &w->p[w->next_write]);
}

static void on_task(int index, rv_status st, const char *message, rv_result *res, void *user)
{
	window *w = user;
	pending *p = &w->p[w->run[index]];
	if (st == RV_ERR_INTERRUPTED)
		return; /* not written: --resume runs it again */
	if (st == RV_OK) {
		if (w->b->pairs) {
			char *text = NULL;
			size_t size = 0;
			FILE *m = open_memstream(&text, &size);
			if (m) {
				cli_write_pair(m, w->b->o, p->t->id, p->s.images, p->s.n_images,
				               p->s.prompt, res);
				fclose(m);
			}
			p->pair = text;
		}
		p->line = result_line(p->t->id, res);
	} else {
		p->line = error_record(p->t, status_code(st), message);
		p->failed = 1;
	}
	p->done = 1;
	w->n_done++;
	w->n_failed += p->failed;
	write_ready(w);
	if (isatty(STDERR_FILENO))
		show_progress(w->total_done + w->n_done, w->total, w->n_failed, w->t0);
}

/* Runs tasks t[todo[0..n)] as one rv_generate_batch call of --parallel K;
 * 0, or the exit code that ends the batch. */
static int run_window(batch *b, window *w, const task *t, const int *todo, int n)
{
	const cli_opts *o = b->o;
	w->p = calloc((size_t)n, sizeof(*w->p));
	w->run = malloc((size_t)n * sizeof(*w->run));
	rv_prompt *prompts = malloc((size_t)n * sizeof(*prompts));
	rv_gen_params *params = malloc((size_t)n * sizeof(*params));
	int code = 0, n_run = 0;
	if (!w->p || !w->run || !prompts || !params) {
		fprintf(stderr, "rlaifv-infer: out of memory\n");
		code = EXIT_RUNTIME;
		goto out;
	}
	w->n = n;
	w->next_write = 0;
	w->n_done = 0;
	for (int i = 0; i < n; i++) {
		pending *p = &w->p[i];
		read_task(b, &t[todo[i]], p);
		if (p->done) {
			w->n_done++;
			w->n_failed++;
			continue;
		}
		rv_gen_params gp = cli_gen_params(o);
		gp.reference = b->ref_ctx;
		gp.should_stop = cli_should_stop;
		gp.n_candidates = p->s.n_candidates;
		gp.n_predict = p->s.n_predict;
		gp.temp = p->s.temp;
		gp.seed = p->s.seed;
		prompts[n_run] = (rv_prompt){p->s.prompt,          p->s.images, p->s.n_images,
		                             p->s.chat_template,   p->s.system, o->no_parse_special,
		                             o->parse_special_user};
		params[n_run] = gp;
		w->run[n_run++] = i;
	}
	write_ready(w);
	rv_status st = rv_generate_batch(b->ctx, n_run, prompts, params,
	                                 o->parallel > 0 ? o->parallel : 1, on_task, w);
	if (st != RV_OK && st != RV_ERR_INTERRUPTED) {
		/* the whole batch failed (its cache, its arguments) */
		fprintf(stderr, "rlaifv-infer: %s\n", rv_context_error(b->ctx));
		code = EXIT_RUNTIME;
	}
	/* after an interruption: what finished, the unfinished left out */
	for (; w->next_write < n; w->next_write++)
		if (w->p[w->next_write].done)
			write_task(b, &w->p[w->next_write]);
	w->total_done += w->n_done;
out:
	for (int i = 0; w->p && i < n; i++)
		pending_free(&w->p[i]);
	free(w->p);
	free(w->run);
	free(prompts);
	free(params);
	w->p = NULL;
	w->run = NULL;
	return code;
}

/* Whether any task to run names an image (the projector is loaded only then). */
static int any_image(const task *t, int n, const cli_opts *o)
{
	for (int i = 0; i < n; i++) {
		if (o->shard_n && i % o->shard_n != o->shard_i)
			continue;
		cj_doc d;
		char err[8];
		if (cj_parse(t[i].line, t[i].len, &d, err, sizeof(err)) != 0)
			continue;
		const cj_node *img = cj_get(&d, &d.nodes[0], "image");
		const cj_node *imgs = cj_get(&d, &d.nodes[0], "images");
		int yes = (img && img->type == CJ_STRING) || (imgs && imgs->type == CJ_ARRAY);
		cj_free(&d);
		if (yes)
			return 1;
	}
	return 0;
}

/* Tasks per rv_generate_batch call: enough to keep K slots busy, few
 * enough that a window's parsed lines stay small. */
#define WINDOW_TASKS(k) ((k)*16 > 256 ? (k)*16 : 256)

static int run_all(batch *b, task *t, int n_tasks, char **done, int n_done)
{
	const cli_opts *o = b->o;
	int *todo = malloc(((size_t)n_tasks + 1) * sizeof(*todo)), n_todo = 0, i, code = 0;
	if (!todo)
		return EXIT_RUNTIME;
	for (i = 0; i < n_tasks; i++)
		if ((!o->shard_n || i % o->shard_n == o->shard_i) &&
		    !(t[i].id && n_done > 0 &&
		      bsearch(&t[i].id, done, (size_t)n_done, sizeof(*done), cmp_str)))
			todo[n_todo++] = i;
	/* SIGINT: the tasks under way stop at the next step and are not
	 * written (--resume redoes them); the finished ones are all in OUT */
	cli_catch_sigint();
	const int progress = isatty(STDERR_FILENO);
	window w = {b, NULL, 0, 0, NULL, 0, 0, 0, n_todo, now_s()};
	const int per = WINDOW_TASKS(o->parallel > 0 ? o->parallel : 1);
	if (progress)
		show_progress(0, n_todo, 0, w.t0);
	for (i = 0; i < n_todo && !code && !cli_should_stop(NULL); i += per) {
		code = run_window(b, &w, t, todo + i, n_todo - i < per ? n_todo - i : per);
		if (!code && (ferror(b->out) || (b->pairs && ferror(b->pairs)))) {
			fprintf(stderr, "rlaifv-infer: cannot write the results to %s: %s\n",
			        ferror(b->out) ? o->output ? o->output : "standard output"
			                       : o->pairs,
			        strerror(errno));
			code = EXIT_RUNTIME;
		}
	}
	if (progress)
		fputc('\n', stderr);
	free(todo);
	if (code)
		return code;
	if (cli_should_stop(NULL)) {
		fprintf(stderr, "rlaifv-infer: interrupted: the finished tasks are written "
		                "(--resume runs the others)\n");
		return EXIT_INTERRUPTED;
	}
	return w.n_failed ? EXIT_BATCH_FAILED : EXIT_OK;
}

int cli_run_batch(const cli_opts *o)
{
	char err[1024];
	if (rv_select_kernels(NULL, err, sizeof(err)) != RV_OK) { /* $RLAIFV_ISA */
		fprintf(stderr, "rlaifv-infer: %s\n", err);
		return EXIT_USAGE;
	}
	size_t len;
	char *buf = read_file(o->batch, &len);
	if (!buf)
		return EXIT_RUNTIME;
	int n_tasks = 0, n_ids = 0, n_done = 0, code = EXIT_RUNTIME;
	task *t = split_tasks(buf, len, &n_tasks);
	char **ids = t ? sorted_ids(t, n_tasks, o->batch, &n_ids) : NULL;
	char **done = NULL;
	char *dir = strdup(o->batch);
	batch b = {o, NULL, NULL, 0, NULL, NULL, NULL, malloc(MAX_TASK_IMAGES * sizeof(*b.paths))};
	rv_model *model = NULL, *ref_model = NULL;
	if (!ids || !dir || !b.paths) {
		code = t && dir && b.paths ? EXIT_USAGE : EXIT_RUNTIME;
		goto out;
	}
	char *slash = strrchr(dir, '/');
	b.dir = slash ? (slash == dir ? "/" : (*slash = 0, dir)) : ".";
	if (o->resume && !(done = done_ids(o->output, &n_done)))
		goto out;
	if (o->pairs && o->resume && keep_pairs(o->pairs, done, n_done) != 0)
		goto out;
	if (o->pairs && !(b.pairs = fopen(o->pairs, o->resume ? "a" : "w"))) {
		fprintf(stderr, "rlaifv-infer: %s: %s\n", o->pairs, strerror(errno));
		goto out;
	}
	b.out = o->output ? fopen(o->output, o->resume ? "a" : "w") : stdout;
	if (!b.out) {
		fprintf(stderr, "rlaifv-infer: %s: %s\n", o->output, strerror(errno));
		goto out;
	}
	b.have_mmproj = o->mmproj && any_image(t, n_tasks, o);
	if (o->verbose)
		cli_print_files(stderr, o, b.have_mmproj);
	code = cli_open_model(o, o->model, b.have_mmproj ? o->mmproj : NULL, 0, &model, &b.ctx);
	if (code == EXIT_OK && o->ref_model)
		code = cli_open_model(o, o->ref_model,
		                      !b.have_mmproj  ? NULL
		                      : o->ref_mmproj ? o->ref_mmproj
		                                      : o->mmproj,
		                      !o->ref_mmproj, &ref_model, &b.ref_ctx);
	if (code == EXIT_OK)
		code = run_all(&b, t, n_tasks, done, n_done);
out:
	if (b.out && b.out != stdout && fclose(b.out) != 0 && code != EXIT_RUNTIME) {
		fprintf(stderr, "rlaifv-infer: %s: %s\n", o->output, strerror(errno));
		code = EXIT_RUNTIME;
	}
	if (b.pairs && fclose(b.pairs) != 0 && code != EXIT_RUNTIME) {
		fprintf(stderr, "rlaifv-infer: %s: %s\n", o->pairs, strerror(errno));
		code = EXIT_RUNTIME;
	}
	rv_context_free(b.ref_ctx);
	rv_context_free(b.ctx);
	rv_model_free(ref_model);
	rv_model_free(model);
	for (int i = 0; t && i < n_tasks; i++)
		free(t[i].id);
	for (int i = 0; i < n_done; i++)
		free(done[i]);
	free(done);
	free(b.paths);
	free(dir);
	free(ids);
	free(t);
	free(buf);
	return code;
}
