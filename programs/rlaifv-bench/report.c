/* report.c: rlaifv-bench's output: a table for people and one JSON
 * object for scripts (the fields are listed in man/rlaifv-bench.1), each
 * with every figure's median, spread and ratio to this machine's limit, and
 * the targets marked met or not. Computes nothing but comparisons. */
#include "programs/rlaifv-bench/bench.h"

#include <math.h>
#include <string.h>

/* ---- targets ------------------------------------------------------------------ */

typedef struct target {
	const char *name;  /* JSON key */
	const char *what;  /* for people */
	const char *model; /* NULL: the machine / the vision encoder */
	double value, goal;
	bool at_most; /* met when value <= goal (else >=) */
} target;

#define MAX_TARGETS 64

static int bon_index(const rvb_model_result *m, int n)
{
	for (int i = 0; i < m->n_bon; i++)
		if (m->bon[i].size == n)
			return i;
	return -1;
}

/* Every target the run has figures for. Decode is judged at the first
 * (shallowest) depth, where weights dominate the bytes read; prefill at
 * the last (largest) size, the prompt-sized batch the target is about. */
static int collect_targets(const rvb_report *r, target *t)
{
	int n = 0;
	if (r->vision.ran)
		t[n++] = (target){"vision_sgemm",
		                  "vision GFLOP/s over sgemm GFLOP/s",
		                  NULL,
		                  r->vision.ratio_sgemm,
		                  RVB_TARGET_VISION_SGEMM,
		                  false};
	for (int i = 0; i < r->n_models && n + 5 <= MAX_TARGETS; i++) {
		const rvb_model_result *m = &r->models[i];
		if (m->n_decode > 0)
			t[n++] = (target){"decode_bandwidth",
			                  "decode bytes/s over read bandwidth",
			                  m->name,
			                  m->decode[0].ratio,
			                  RVB_TARGET_DECODE_BW,
			                  false};
		if (m->n_prefill > 0)
			t[n++] = (target){"prefill_sgemm",
			                  "prefill GFLOP/s over sgemm GFLOP/s",
			                  m->name,
			                  m->prefill[m->n_prefill - 1].ratio,
			                  RVB_TARGET_PREFILL_SGEMM,
			                  false};
		const int b8 = bon_index(m, 8);
		if (b8 >= 0)
			t[n++] = (target){"best_of_8_speedup",
			                  "best-of-8 aggregate over single-stream tokens/s",
			                  m->name,
			                  m->bon[b8].ratio,
			                  RVB_TARGET_BON8_SPEEDUP,
			                  false};
		t[n++] = (target){"load_resident",
		                  "fraction of the file resident after load",
		                  m->name,
		                  rvb_ratio(m->load_rss_growth, m->file_bytes),
		                  RVB_TARGET_LOAD_RESIDENT,
		                  true};
		t[n++] = (target){"peak_rss",
		                  "peak RSS over (file + KV cache)",
		                  m->name,
		                  rvb_ratio(m->peak_rss, m->file_bytes + m->kv_bytes),
		                  1.0 + RVB_TARGET_RSS_SLACK,
		                  true};
	}
	return n;
}

static bool met(const target *t)
{
	return t->at_most ? t->value <= t->goal : t->value >= t->goal;
}

/* ---- table ------------------------------------------------------------------------ */

static void stats_cell(FILE *f, const char *fmt, const rvb_stats *s, const char *unit)
{
	char v[32], lo[32], hi[32], cell[100], range[100] = "";
	snprintf(v, sizeof(v), fmt, s->median);
	snprintf(lo, sizeof(lo), fmt, s->min);
	snprintf(hi, sizeof(hi), fmt, s->max);
	snprintf(cell, sizeof(cell), "%s %s", v, unit);
	if (s->n > 1) /* one sample has no spread */
		snprintf(range, sizeof(range), "%s..%s", lo, hi);
	fprintf(f, "%-18s %-19s", cell, range);
}

static const char *mark(double value, double goal, bool at_most)
{
	if (isnan(value))
		return "";
	return (at_most ? value <= goal : value >= goal) ? "  [target: met]"
	                                                 : "  [target: NOT met]";
}

/* One of the encoders' measured choices (the set's own kernel against the
 * BLAS), when it was measured. */
static void print_path(FILE *f, const char *what, const char *set, const char *own, bool is_own,
                       double own_gflops, double blas_gflops)
{
	if (own_gflops > 0 || blas_gflops > 0)
		fprintf(f, "  %s (1 thread, GFLOP/s): %s %s %.1f, BLAS %.1f: %s\n", what, set, own,
		        own_gflops, blas_gflops, is_own ? own : "BLAS");
}

/* The measured kernel choice: per weight type and set, the calibration's
 * speeds and which products took the set. */
static void print_choice(FILE *f, const rvb_report *r)
{
	const rvk_choice *c = &r->choice;
	if (!r->have_choice)
		return;
	fprintf(f,
	        "kernel choice (1 thread, GB/s of weights)  decode: cache stream  %d cand.  "
	        "%d-token prompt\n",
	        RVK_BATCH_ROWS, RVK_PREFILL_ROWS);
	for (int ti = 0; ti < RVK_N_CHOICE_TYPES; ti++)
		for (int si = 0; si < c->n_sets; si++) {
			const double *g = c->gbps[ti][si];
			if (g[RVK_PHASE_DECODE_CACHE] <= 0)
				continue; /* not measured (scalar) */
			const bool ex = !strcmp(c->exact[ti], c->sets[si]);
			const bool wi = !strcmp(c->wide[ti], c->sets[si]);
			fprintf(f, "  %-6s %-12s %28.1f %6.1f %8.1f %10.1f   %s%s%s\n",
			        rvi_type_name((int)rvk_choice_types[ti]), c->sets[si],
			        g[RVK_PHASE_DECODE_CACHE], g[RVK_PHASE_DECODE_STREAM],
			        g[RVK_PHASE_BATCH], g[RVK_PHASE_PREFILL], ex ? "decode" : "",
			        ex && wi ? "+" : "", wi ? "prompt" : "");
		}
	print_path(f, "encoder attention", c->sets[0], "fused", c->attn_fused, c->attn_gflops_fused,
	           c->attn_gflops_blas);
	print_path(f, "wide float products", c->sets[0], "own", c->gemm_own, c->gemm_gflops_own,
	           c->gemm_gflops_blas);
	fputc('\n', f);
}

void rvb_print_table(FILE *f, const rvb_report *r)
{
	const rvb_opts *o = r->opts;
	fprintf(f, "rlaifv-bench %s, %s, %s\n", rv_version(), r->date, r->cpu);
	fprintf(f, "%d threads, kernels %s, %d repetitions: median, min..max\n", o->n_threads,
	        r->kernels, o->reps);
	fprintf(f, "BLAS: %s\n", r->blas);
	const rvb_limits *l = &r->limits;
	if (l->blas_fallback)
		fprintf(f,
		        "NOTE: OpenBLAS does not recognise this CPU and runs its generic SSE3\n"
		        "(\"Prescott\") kernels: the sgemm limit and the runtime's BLAS paths are\n"
		        "several times slower than this CPU allows (F32 weights in wide batches;\n"
		        "F16 ones too unless the kernel set has its own F16 path, as avx512\n"
		        "does). OPENBLAS_CORETYPE=SkylakeX (AVX-512) or Haswell (AVX2) selects\n"
		        "its real kernels.\n");
	fputc('\n', f);

	char label[96];
	snprintf(label, sizeof(label), "machine limits (%d samples)", l->n_samples);
	fprintf(f, "%-40s %-18s %s\n", label, "median", "min..max");
	snprintf(label, sizeof(label), "  read bandwidth (%.0f MiB array)",
	         l->stream_bytes / 1048576);
	fprintf(f, "%-40s ", label);
	stats_cell(f, "%.2f", &l->read_gbps, "GB/s");
	fputc('\n', f);
	snprintf(label, sizeof(label), "  sgemm f32 %d^3", l->sgemm_n);
	fprintf(f, "%-40s ", label);
	stats_cell(f, "%.1f", &l->sgemm_gflops, "GFLOP/s");
	fputs("\n\n", f);

	if (r->n_kern > 0) {
		fprintf(f, "%-40s %-18s %-19s %s\n", "decode mat-vec (1 token)", "median",
		        "min..max", "of read bandwidth");
		for (int i = 0; i < r->n_kern; i++) {
			const rvb_kernel_result *k = &r->kern[i];
			snprintf(label, sizeof(label), "  %-7s %-6s %lldx%lld, %.0f MiB", k->isa,
			         k->type, (long long)k->n_out, (long long)k->n_in,
			         k->bytes / 1048576);
			fprintf(f, "%-40s ", label);
			stats_cell(f, "%.2f", &k->gbps, "GB/s");
			fprintf(f, "%.2f\n", k->ratio);
		}
		fputc('\n', f);
	}

	print_choice(f, r);

	const rvb_vision_result *v = &r->vision;
	if (v->ran) {
		fprintf(f, "vision: %s (%s, %lld blocks, %lld patches), load %.0f ms%s\n", v->path,
		        v->type, (long long)v->n_layer, (long long)v->n_patches, v->load_ms,
		        v->finite ? "" : ", OUTPUT NOT FINITE");
		snprintf(label, sizeof(label), "  encode one %lldx%lld image",
		         (long long)v->image_size, (long long)v->image_size);
		fprintf(f, "%-40s ", label);
		stats_cell(f, "%.0f", &v->encode_ms, "ms");
		fprintf(f, "%.1f GFLOP/s = %.2f x sgemm%s\n\n", v->gflops, v->ratio_sgemm,
		        mark(v->ratio_sgemm, RVB_TARGET_VISION_SGEMM, false));
	}

	for (int i = 0; i < r->n_models; i++) {
		const rvb_model_result *m = &r->models[i];
		fprintf(f, "model %s: %s\n", m->name, m->path);
		fprintf(
		    f,
		    "  %.0f MB file, %.0f MB of weights read per token, context %d (KV cache %.0f "
		    "MB)%s\n",
		    m->file_bytes / 1e6, m->weight_bytes / 1e6, m->n_ctx, m->kv_bytes / 1e6,
		    m->finite ? "" : ", LOGITS NOT FINITE");
		fprintf(f, "  %-38s %.0f ms, %.0f MB made resident: %s%s\n", "load", m->load_ms,
		        m->load_rss_growth / 1e6, m->mapped ? "mapped, not read" : "READ",
		        mark(m->load_rss_growth / m->file_bytes, RVB_TARGET_LOAD_RESIDENT, true));
		for (int j = 0; j < m->n_prefill; j++) {
			const rvb_point *p = &m->prefill[j];
			snprintf(label, sizeof(label), "  prefill %d tokens", p->size);
			fprintf(f, "%-40s ", label);
			stats_cell(f, "%.1f", &p->tok_s, "tok/s");
			fprintf(f, "%.1f GFLOP/s = %.2f x sgemm%s\n", p->gflops, p->ratio,
			        j == m->n_prefill - 1
			            ? mark(p->ratio, RVB_TARGET_PREFILL_SGEMM, false)
			            : "");
		}
		for (int j = 0; j < m->n_decode; j++) {
			const rvb_point *p = &m->decode[j];
			snprintf(label, sizeof(label), "  decode at context %d", p->size);
			fprintf(f, "%-40s ", label);
			stats_cell(f, "%.2f", &p->tok_s, "tok/s");
			fprintf(f, "%.2f GB/s = %.2f x bandwidth%s\n", p->gbps, p->ratio,
			        j == 0 ? mark(p->ratio, RVB_TARGET_DECODE_BW, false) : "");
		}
		for (int j = 0; j < m->n_bon; j++) {
			const rvb_point *p = &m->bon[j];
			snprintf(label, sizeof(label), "  best-of-%d x %d tokens, wall", p->size,
			         p->size > 0 ? p->tokens / p->size : 0);
			fprintf(f, "%-40s ", label);
			stats_cell(f, "%.0f", &p->ms, "ms");
			int n_min = m->bon[0].size; /* the speed-up is over the smallest N */
			for (int k = 1; k < m->n_bon; k++)
				n_min = m->bon[k].size < n_min ? m->bon[k].size : n_min;
			fprintf(f, "%.1f tok/s = %.2f x N=%d%s\n", p->tok_s.median, p->ratio, n_min,
			        p->size == 8 ? mark(p->ratio, RVB_TARGET_BON8_SPEEDUP, false) : "");
		}
		fprintf(f, "  %-38s %.0f MB, budget (file + KV) x %.2f = %.0f MB%s\n\n", "peak RSS",
		        m->peak_rss / 1e6, 1 + RVB_TARGET_RSS_SLACK, m->rss_budget / 1e6,
		        mark(m->peak_rss, m->rss_budget, true));
	}

	target t[MAX_TARGETS];
	const int n = collect_targets(r, t);
	int n_met = 0;
	for (int i = 0; i < n; i++)
		n_met += met(&t[i]);
	if (n > 0)
		fprintf(f, "targets (%d of %d met):\n", n_met, n);
	for (int i = 0; i < n; i++) {
		snprintf(label, sizeof(label), "%s%s%s", t[i].model ? t[i].model : "",
		         t[i].model ? ": " : "", t[i].what);
		fprintf(f, "  %-62s %6.2f %s %.2f  %s\n", label, t[i].value,
		        t[i].at_most ? "<=" : ">=", t[i].goal, met(&t[i]) ? "met" : "NOT met");
	}
}

/* ---- JSON ------------------------------------------------------------------------- */

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

/* A number, or null for NaN and infinities (which JSON lacks). */
static void json_num(FILE *f, double v)
{
	if (isfinite(v))
		fprintf(f, "%.6g", v);
	else
		fputs("null", f);
}

static void json_stats(FILE *f, const rvb_stats *s)
{
	fputs("{\"median\":", f);
	json_num(f, s->median);
	fputs(",\"min\":", f);
	json_num(f, s->min);
	fputs(",\"max\":", f);
	json_num(f, s->max);
	fputs(",\"mad\":", f);
	json_num(f, s->mad);
	fprintf(f, ",\"n\":%d}", s->n);
}

static void key(FILE *f, const char *k)
{
	json_str(f, k);
	fputc(':', f);
}

static void json_choice(FILE *f, const rvb_report *r)
{
	const rvk_choice *c = &r->choice;
	fputs(",\"kernel_choice\":", f);
	if (!r->have_choice) {
		fputs("null", f);
		return;
	}
	fputc('[', f);
	for (int ti = 0; ti < RVK_N_CHOICE_TYPES; ti++) {
		fputs(ti ? ",{\"type\":" : "{\"type\":", f);
		json_str(f, rvi_type_name((int)rvk_choice_types[ti]));
		fputs(",\"decode\":", f);
		json_str(f, c->exact[ti]);
		fputs(",\"prompt\":", f);
		json_str(f, c->wide[ti]);
		fputs(",\"gbps\":{", f);
		for (int si = 0; si < c->n_sets; si++) {
			const double *g = c->gbps[ti][si];
			if (si)
				fputc(',', f);
			json_str(f, c->sets[si]);
			fprintf(f, ":[%.3f,%.3f,%.3f,%.3f]", g[0], g[1], g[2], g[3]);
		}
		fputs("}}", f);
	}
	fputc(']', f);
}

void rvb_print_json(FILE *f, const rvb_report *r)
{
	const rvb_opts *o = r->opts;
	fputs("{\"tool\":\"rlaifv-bench\",\"version\":", f);
	json_str(f, rv_version());
	fputs(",\"date\":", f);
	json_str(f, r->date);
	fputs(",\"cpu\":", f);
	json_str(f, r->cpu);
	fprintf(f, ",\"threads\":%d,\"reps\":%d,\"kernels\":", o->n_threads, o->reps);
	json_str(f, r->kernels);
	fputs(",\"blas\":", f);
	json_str(f, r->blas);
	json_choice(f, r);
	if (r->have_choice) {
		const rvk_choice *c = &r->choice;
		fprintf(f, ",\"encoder_attention\":{\"path\":\"%s\",\"own_gflops\":%.3f",
		        c->attn_fused ? "own" : "blas", c->attn_gflops_fused);
		fprintf(f, ",\"blas_gflops\":%.3f},\"wide_products\":{\"path\":\"%s\"",
		        c->attn_gflops_blas, c->gemm_own ? "own" : "blas");
		fprintf(f, ",\"own_gflops\":%.3f,\"blas_gflops\":%.3f}", c->gemm_gflops_own,
		        c->gemm_gflops_blas);
	}

	fputs(",\"limits\":{\"read_gbps\":", f);
	json_stats(f, &r->limits.read_gbps);
	fputs(",\"stream_bytes\":", f);
	json_num(f, r->limits.stream_bytes);
	fputs(",\"sgemm_gflops\":", f);
	json_stats(f, &r->limits.sgemm_gflops);
	fprintf(f, ",\"sgemm_n\":%d,\"samples\":%d,\"blas_fallback\":%s}", r->limits.sgemm_n,
	        r->limits.n_samples, r->limits.blas_fallback ? "true" : "false");

	fputs(",\"vision\":", f);
	const rvb_vision_result *v = &r->vision;
	if (!v->ran) {
		fputs("null", f);
	} else {
		fputs("{\"file\":", f);
		json_str(f, v->path);
		fputs(",\"type\":", f);
		json_str(f, v->type);
		fputs(",\"file_bytes\":", f);
		json_num(f, v->file_bytes);
		fprintf(f, ",\"image_size\":%lld,\"patches\":%lld,\"blocks\":%lld,\"load_ms\":",
		        (long long)v->image_size, (long long)v->n_patches, (long long)v->n_layer);
		json_num(f, v->load_ms);
		fputs(",\"gflop\":", f);
		json_num(f, v->flops / 1e9);
		fputs(",\"encode_ms\":", f);
		json_stats(f, &v->encode_ms);
		fputs(",\"gflops\":", f);
		json_num(f, v->gflops);
		fputs(",\"ratio_sgemm\":", f);
		json_num(f, v->ratio_sgemm);
		fprintf(f, ",\"finite\":%s}", v->finite ? "true" : "false");
	}

	fputs(",\"models\":[", f);
	for (int i = 0; i < r->n_models; i++) {
		const rvb_model_result *m = &r->models[i];
		fputs(i ? ",{" : "{", f);
		key(f, "name");
		json_str(f, m->name);
		fputs(",\"file\":", f);
		json_str(f, m->path);
		const struct {
			const char *k;
			double v;
		} nums[] = {{"file_bytes", m->file_bytes},
		            {"weight_bytes", m->weight_bytes},
		            {"n_ctx", m->n_ctx},
		            {"kv_bytes", m->kv_bytes},
		            {"load_ms", m->load_ms},
		            {"rss_before_load_bytes", m->rss_before_load},
		            {"load_rss_growth_bytes", m->load_rss_growth},
		            {"peak_rss_bytes", m->peak_rss},
		            {"rss_budget_bytes", m->rss_budget},
		            {"prompt_tokens", m->prompt_tokens}};
		for (size_t j = 0; j < sizeof(nums) / sizeof(nums[0]); j++) {
			fputc(',', f);
			key(f, nums[j].k);
			json_num(f, nums[j].v);
		}
		fprintf(f, ",\"mapped\":%s,\"finite\":%s", m->mapped ? "true" : "false",
		        m->finite ? "true" : "false");
		fputs(",\"prefill\":[", f);
		for (int j = 0; j < m->n_prefill; j++) {
			const rvb_point *p = &m->prefill[j];
			fprintf(f, "%s{\"tokens\":%d,\"ms\":", j ? "," : "", p->size);
			json_stats(f, &p->ms);
			fputs(",\"tokens_per_s\":", f);
			json_stats(f, &p->tok_s);
			fputs(",\"gflop\":", f);
			json_num(f, p->flops / 1e9);
			fputs(",\"gflops\":", f);
			json_num(f, p->gflops);
			fputs(",\"ratio_sgemm\":", f);
			json_num(f, p->ratio);
			fputc('}', f);
		}
		fputs("],\"decode\":[", f);
		for (int j = 0; j < m->n_decode; j++) {
			const rvb_point *p = &m->decode[j];
			fprintf(f, "%s{\"context\":%d,\"tokens\":%d,\"ms\":", j ? "," : "", p->size,
			        p->tokens);
			json_stats(f, &p->ms);
			fputs(",\"tokens_per_s\":", f);
			json_stats(f, &p->tok_s);
			fputs(",\"bytes_per_token\":", f);
			json_num(f, p->bytes_tok);
			fputs(",\"gbps\":", f);
			json_num(f, p->gbps);
			fputs(",\"ratio_bandwidth\":", f);
			json_num(f, p->ratio);
			fputc('}', f);
		}
		fputs("],\"best_of_n\":[", f);
		for (int j = 0; j < m->n_bon; j++) {
			const rvb_point *p = &m->bon[j];
			fprintf(f, "%s{\"n\":%d,\"tokens\":%d,\"wall_ms\":", j ? "," : "", p->size,
			        p->tokens);
			json_stats(f, &p->ms);
			fputs(",\"tokens_per_s\":", f);
			json_stats(f, &p->tok_s);
			fputs(",\"speedup\":", f);
			json_num(f, p->ratio);
			fputc('}', f);
		}
		fputs("]}", f);
	}
	fputs("],\"kernel_bench\":[", f);
	for (int i = 0; i < r->n_kern; i++) {
		const rvb_kernel_result *k = &r->kern[i];
		fputs(i ? ",{\"isa\":" : "{\"isa\":", f);
		json_str(f, k->isa);
		fputs(",\"type\":", f);
		json_str(f, k->type);
		fprintf(f, ",\"rows\":%lld,\"cols\":%lld,\"bytes\":", (long long)k->n_out,
		        (long long)k->n_in);
		json_num(f, k->bytes);
		fputs(",\"gbps\":", f);
		json_stats(f, &k->gbps);
		fputs(",\"ratio_bandwidth\":", f);
		json_num(f, k->ratio);
		fputc('}', f);
	}
	fputs("],\"targets\":[", f);
	target t[MAX_TARGETS];
	const int n = collect_targets(r, t);
	for (int i = 0; i < n; i++) {
		fputs(i ? ",{\"name\":" : "{\"name\":", f);
		json_str(f, t[i].name);
		fputs(",\"model\":", f);
		if (t[i].model)
			json_str(f, t[i].model);
		else
			fputs("null", f);
		fputs(",\"value\":", f);
		json_num(f, t[i].value);
		fputs(",\"goal\":", f);
		json_num(f, t[i].goal);
		fprintf(f, ",\"at_most\":%s,\"met\":%s}", t[i].at_most ? "true" : "false",
		        met(&t[i]) ? "true" : "false");
	}
	fputs("]}\n", f);
}
