/* dispatch.c: chooses the kernel table once per process.
 *
 * The candidates are listed best first. Each ISA file that configure
 * compiles for this architecture is listed with a CPU check; its table is a
 * copy of the scalar one with the entries that ISA accelerates overridden.
 * The tables are built once (pthread_once) and never change afterwards;
 * the one global that does is the atomic pointer to the table in use, set
 * by the first rvk_active() (from $RLAIFV_ISA) or by rvk_select(). */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include "simd/kernels.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#endif

#if defined(RV_HAVE_X86_KERNELS)
#include <cpuid.h>

/* F16C is CPUID leaf 1, ECX bit 29. Read directly: clang (14 at least)
 * rejects "f16c" in __builtin_cpu_supports, which broke clang builds. */
static bool cpu_has_f16c(void)
{
	unsigned a, b, c, d;
	return __get_cpuid(1, &a, &b, &c, &d) && (c >> 29 & 1u);
}

/* AVX2 + FMA + F16C: Intel Haswell (2013) and later, AMD Zen and later. */
static bool cpu_has_avx2(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
}

/* AVX-512 F/BW/VL + VNNI: Intel Ice Lake, Sapphire Rapids and later server
 * parts, AMD Zen 4 and later. (Skylake-X has F/BW/VL but no VNNI: it takes
 * the AVX2 path.) The libgcc check also requires the OS to save ZMM state. */
static bool cpu_has_avx512(void)
{
	__builtin_cpu_init();
	return cpu_has_avx2() && __builtin_cpu_supports("avx512f") &&
	       __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
	       __builtin_cpu_supports("avx512vnni");
}
#endif

#if defined(RV_HAVE_ARM64_KERNELS)
/* Advanced SIMD is part of every AArch64 CPU. */
static bool cpu_has_neon(void)
{
	return true;
}

/* SDOT/UDOT (Armv8.2 dotprod): Cortex-A55/A75 and later, Apple M1 and
 * later, Neoverse N1 and later. */
static bool cpu_has_neon_dotprod(void)
{
	return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
}
#endif

typedef struct isa_entry {
	const char *name;
	void (*fill)(rvk_table *t); /* NULL: the scalar table as it is */
	bool (*cpu_has)(void);      /* NULL: runs everywhere */
} isa_entry;

/* Best first; "auto" takes the first usable one. */
static const isa_entry isa_entries[] = {
#if defined(RV_HAVE_X86_KERNELS)
    {"avx512", rvk_avx512_fill, cpu_has_avx512},
    {"avx2", rvk_avx2_fill, cpu_has_avx2},
#endif
#if defined(RV_HAVE_ARM64_KERNELS)
    {"neon-dotprod", rvk_neon_dotprod_fill, cpu_has_neon_dotprod},
    {"neon", rvk_neon_fill, cpu_has_neon},
#endif
    {"scalar", NULL, NULL},
};

#define N_ISA       (sizeof(isa_entries) / sizeof(isa_entries[0]))
#define RVK_STR2(x) #x
#define RVK_STR(x)  RVK_STR2(x)
static const char *const known_isas[] = {"avx512", "avx2", "neon-dotprod", "neon", "scalar"};

/* Built once by build_tables(); read-only afterwards. */
static rvk_table tables[N_ISA];
static bool table_usable[N_ISA];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;
static _Atomic(const rvk_table *) active_table;
/* true while the active table is the one "auto" gave (so that the measured
 * table, once made, replaces it; an explicit choice stays) */
static atomic_bool active_is_auto;

/* The measured "auto" table: built once by rvk_set_auto (under its mutex),
 * then read-only; NULL until then. */
static rvk_table auto_table;
static char auto_name[512];
static rvk_choice auto_choice;
static _Atomic(const rvk_table *) auto_measured;
static pthread_mutex_t auto_mutex = PTHREAD_MUTEX_INITIALIZER;

static void build_tables(void)
{
	for (size_t i = 0; i < N_ISA; i++) {
		const isa_entry *e = &isa_entries[i];
		table_usable[i] = e->cpu_has == NULL || e->cpu_has();
		tables[i] = rvk_scalar_table;
		if (table_usable[i] && e->fill)
			e->fill(&tables[i]);
	}
}

/* Writes the message of a refused isa, when the caller wants one; NULL. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static const rvk_table *
refuse(char *msg, size_t msg_size, const char *fmt, ...)
{
	if (msg && msg_size) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(msg, msg_size, fmt, ap);
		va_end(ap);
	}
	return NULL;
}

const rvk_table *rvk_table_for(const char *isa, char *msg, size_t msg_size)
{
	pthread_once(&tables_once, build_tables);
	if (isa == NULL || isa[0] == '\0' || strcmp(isa, "auto") == 0) {
		const rvk_table *m = atomic_load_explicit(&auto_measured, memory_order_acquire);
		if (m)
			return m;
		for (size_t i = 0; i < N_ISA; i++)
			if (table_usable[i])
				return &tables[i];
	}
	/* the measured table by its name too, so a caller can restore it */
	const rvk_table *m = atomic_load_explicit(&auto_measured, memory_order_acquire);
	if (m && strcmp(isa, m->name) == 0)
		return m;
	for (size_t i = 0; i < N_ISA; i++) {
		if (strcmp(isa, isa_entries[i].name) != 0)
			continue;
		if (!table_usable[i])
			return refuse(msg, msg_size, "RLAIFV_ISA=%s: this CPU does not support %s",
			              isa, isa);
		return &tables[i];
	}
	for (size_t i = 0; i < sizeof(known_isas) / sizeof(known_isas[0]); i++) {
		if (strcmp(isa, known_isas[i]) == 0)
			return refuse(
			    msg, msg_size,
			    "RLAIFV_ISA=%s: this build has no %s kernels (built for another "
			    "architecture)",
			    isa, isa);
	}
	return refuse(
	    msg, msg_size,
	    "RLAIFV_ISA=%s: unknown instruction set (expected auto, scalar, avx2, avx512, "
	    "neon or neon-dotprod)",
	    isa);
}

int rvk_usable_isas(const char **names, int max)
{
	pthread_once(&tables_once, build_tables);
	int n = 0;
	for (size_t i = 0; i < N_ISA; i++) {
		if (!table_usable[i])
			continue;
		if (n < max)
			names[n] = isa_entries[i].name;
		n++;
	}
	return n;
}

const rvk_table *rvk_active(void)
{
	const rvk_table *t = atomic_load_explicit(&active_table, memory_order_acquire);
	if (t != NULL)
		return t;
	/* First use. An unusable $RLAIFV_ISA falls back to the scalar table
	 * here, where nobody can be told; the API checks the variable first
	 * where it can return an error (rvk_check_env). Concurrent first callers
	 * compute the same answer and the compare-exchange keeps one. */
	const char *env = rvk_env_isa();
	t = rvk_table_for(env, NULL, 0);
	if (t == NULL)
		t = rvk_table_for("scalar", NULL, 0);
	const rvk_table *expected = NULL;
	if (!atomic_compare_exchange_strong_explicit(&active_table, &expected, t,
	                                             memory_order_acq_rel, memory_order_acquire))
		return expected;
	atomic_store(&active_is_auto, env == NULL || strcmp(env, "auto") == 0);
	return t;
}

const rvk_table *rvk_peek(void)
{
	return atomic_load_explicit(&active_table, memory_order_acquire);
}

void rvk_use(const rvk_table *t)
{
	atomic_store(&active_is_auto, false);
	atomic_store_explicit(&active_table, t, memory_order_release);
}

/* The one place $RLAIFV_ISA is read: "" and unset mean auto. */
const char *rvk_env_isa(void)
{
	const char *isa = getenv("RLAIFV_ISA");
	return isa && *isa ? isa : NULL;
}

bool rvk_check_env(char *msg, size_t msg_size)
{
	return rvk_table_for(rvk_env_isa(), msg, msg_size) != NULL;
}

bool rvk_select(const char *isa, char *msg, size_t msg_size)
{
	const char *name = isa ? isa : rvk_env_isa();
	const rvk_table *t = rvk_table_for(name, msg, msg_size);
	if (t == NULL)
		return false;
	atomic_store(&active_is_auto, name == NULL || name[0] == '\0' || strcmp(name, "auto") == 0);
	atomic_store_explicit(&active_table, t, memory_order_release);
	return true;
}

/* ---- measured tables ------------------------------------------------------ */

const enum rvi_type rvk_choice_types[RVK_N_CHOICE_TYPES] = {
    RVI_TYPE_F32,  RVI_TYPE_F16,  RVI_TYPE_BF16, RVI_TYPE_Q8_0,
    RVI_TYPE_Q4_0, RVI_TYPE_Q4_K, RVI_TYPE_Q5_K, RVI_TYPE_Q6_K};

void rvk_choice_default(rvk_choice *c)
{
	memset(c, 0, sizeof(*c));
	c->n_sets = rvk_usable_isas(c->sets, RVK_MAX_SETS);
	if (c->n_sets > RVK_MAX_SETS)
		c->n_sets = RVK_MAX_SETS;
	for (int i = 0; i < RVK_N_CHOICE_TYPES; i++)
		c->exact[i] = c->wide[i] = c->sets[0];
	c->attn_fused = true;
	c->gemm_own = true;
}

/* The usable table named isa, or NULL (never the measured "auto"). */
static const rvk_table *usable_table(const char *isa)
{
	pthread_once(&tables_once, build_tables);
	for (size_t i = 0; isa && i < N_ISA; i++)
		if (table_usable[i] && strcmp(isa, isa_entries[i].name) == 0)
			return &tables[i];
	return NULL;
}

static const char *type_label(enum rvi_type t)
{
	switch (t) {
	case RVI_TYPE_F32:
		return "F32";
	case RVI_TYPE_F16:
		return "F16";
	case RVI_TYPE_BF16:
		return "BF16";
	case RVI_TYPE_Q8_0:
		return "Q8_0";
	case RVI_TYPE_Q4_0:
		return "Q4_0";
	case RVI_TYPE_Q4_K:
		return "Q4_K";
	case RVI_TYPE_Q5_K:
		return "Q5_K";
	case RVI_TYPE_Q6_K:
		return "Q6_K";
	default:
		return "?";
	}
}

bool rvk_compose(rvk_table *t, char *name_buf, size_t name_size, const rvk_choice *c, char *msg,
                 size_t msg_size)
{
	/* the helpers (the same bits or within tolerance in every set) of
	 * the first set by feature */
	const rvk_table *base = usable_table(c->n_sets > 0 ? c->sets[0] : NULL);
	if (base == NULL) {
		refuse(msg, msg_size, "kernel choice: no usable first set");
		return false;
	}
	const rvk_table *ex[RVK_N_CHOICE_TYPES], *wi[RVK_N_CHOICE_TYPES];
	for (int i = 0; i < RVK_N_CHOICE_TYPES; i++) {
		ex[i] = usable_table(c->exact[i]);
		wi[i] = usable_table(c->wide[i]);
		if (!ex[i] || !wi[i]) {
			refuse(msg, msg_size, "kernel choice for %s: no usable set '%s'",
			       type_label(rvk_choice_types[i]), ex[i] ? c->wide[i] : c->exact[i]);
			return false;
		}
	}
	*t = *base;
	if (!c->attn_fused) {
		t->attn_kv_pack = NULL;
		t->attn_rows = NULL;
	}
	if (!c->gemm_own) {
		t->gemm_pack = NULL;
		t->gemm_rows = NULL;
	}
	size_t used = (size_t)snprintf(name_buf, name_size, "auto:");
	for (int i = 0; i < RVK_N_CHOICE_TYPES; i++) {
		const enum rvi_type ty = rvk_choice_types[i];
		/* the exact products of ty: all from one set (see kernels.h) */
		t->vec_dot[ty] = ex[i]->vec_dot[ty];
		t->vec_dot_rows[ty] = ex[i]->vec_dot_rows[ty];
		t->prep_size[ty] = ex[i]->prep_size[ty];
		t->prep[ty] = ex[i]->prep[ty];
		t->vec_dot_prep[ty] = ex[i]->vec_dot_prep[ty];
		t->wide[ty] = wi[i];
		if (used < name_size) {
			const bool same = ex[i] == wi[i];
			used += (size_t)snprintf(name_buf + used, name_size - used, "%s %s %s%s%s",
			                         i ? "," : "", type_label(ty), ex[i]->name,
			                         same ? "" : "+", same ? "" : wi[i]->name);
		}
	}
	t->name = name_buf;
	return true;
}

bool rvk_set_auto(const rvk_choice *c, char *msg, size_t msg_size)
{
	pthread_mutex_lock(&auto_mutex);
	bool ok = true;
	const rvk_table *m = atomic_load(&auto_measured);
	if (m == NULL) {
		ok = rvk_compose(&auto_table, auto_name, sizeof(auto_name), c, msg, msg_size);
		if (ok) {
			auto_choice = *c;
			atomic_store_explicit(&auto_measured, &auto_table, memory_order_release);
			m = &auto_table;
		}
	} else {
		for (int i = 0; i < RVK_N_CHOICE_TYPES; i++)
			ok = ok && !strcmp(c->exact[i], auto_choice.exact[i]) &&
			     !strcmp(c->wide[i], auto_choice.wide[i]);
		ok = ok && c->attn_fused == auto_choice.attn_fused &&
		     c->gemm_own == auto_choice.gemm_own;
	}
	/* "auto" in force (or nothing chosen yet) now means the measured table */
	if (m && (rvk_peek() == NULL || atomic_load(&active_is_auto))) {
		atomic_store_explicit(&active_table, m, memory_order_release);
		atomic_store(&active_is_auto, true);
	}
	pthread_mutex_unlock(&auto_mutex);
	return ok;
}

bool rvk_auto_choice(rvk_choice *c)
{
	pthread_mutex_lock(&auto_mutex);
	const bool set = atomic_load(&auto_measured) != NULL;
	if (set)
		*c = auto_choice;
	pthread_mutex_unlock(&auto_mutex);
	return set;
}

const char *rvk_build_id(void)
{
	static const char id[] =
	    PACKAGE_VERSION " rev " RVK_STR(RVK_KERNELS_REVISION) " sets"
#if defined(RV_HAVE_X86_KERNELS)
	                                                          " avx512 avx2"
#endif
#if defined(RV_HAVE_ARM64_KERNELS)
	                                                          " neon-dotprod neon"
#endif
	                                                          " scalar";
	return id;
}

/* ---- the CPU ------------------------------------------------------------- */

/* The value of the first /proc/cpuinfo line starting with key, or "". */
static void cpuinfo_value(const char *key, char *out, size_t size)
{
	out[0] = 0;
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[512];
	const size_t n = strlen(key);
	while (f && fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');
		if (strncmp(line, key, n) != 0 || !colon)
			continue;
		colon += 1 + (colon[1] == ' ');
		colon[strcspn(colon, "\n")] = 0;
		snprintf(out, size, "%s", colon);
		break;
	}
	if (f)
		fclose(f);
}

void rvk_cpu_info(rvk_cpu *cpu)
{
	memset(cpu, 0, sizeof(*cpu));
	snprintf(cpu->vendor, sizeof(cpu->vendor), "unknown");
	snprintf(cpu->name, sizeof(cpu->name), "unknown");
#if defined(RV_HAVE_X86_KERNELS)
	unsigned a, b, c, d;
	if (__get_cpuid(0, &a, &b, &c, &d)) {
		memcpy(cpu->vendor, &b, 4);
		memcpy(cpu->vendor + 4, &d, 4);
		memcpy(cpu->vendor + 8, &c, 4);
		cpu->vendor[12] = 0;
	}
	if (__get_cpuid(1, &a, &b, &c, &d)) {
		/* the displayed family and model (the extended fields count
		 * for family 15 and, for the model, family 6 too) */
		const unsigned fam = a >> 8 & 0xf, model = a >> 4 & 0xf;
		cpu->family = (int)(fam == 0xf ? fam + (a >> 20 & 0xff) : fam);
		cpu->model = (int)(fam == 0xf || fam == 6 ? (a >> 16 & 0xf) << 4 | model : model);
	}
	unsigned brand[12];
	if (__get_cpuid(0x80000000u, &a, &b, &c, &d) && a >= 0x80000004u) {
		for (unsigned i = 0; i < 3; i++)
			__get_cpuid(0x80000002u + i, &brand[4 * i], &brand[4 * i + 1],
			            &brand[4 * i + 2], &brand[4 * i + 3]);
		char s[49];
		memcpy(s, brand, 48);
		s[48] = 0;
		const char *p = s;
		while (*p == ' ')
			p++;
		size_t len = strlen(p);
		while (len && p[len - 1] == ' ')
			len--;
		snprintf(cpu->name, sizeof(cpu->name), "%.*s", (int)len, p);
	}
#else
	/* Linux on Arm: the implementer and part of the first CPU */
	char v[64];
	cpuinfo_value("CPU implementer", v, sizeof(v));
	if (v[0]) {
		snprintf(cpu->vendor, sizeof(cpu->vendor), "arm %s", v);
		cpu->family = (int)strtol(v, NULL, 0);
		cpuinfo_value("CPU part", v, sizeof(v));
		cpu->model = (int)strtol(v, NULL, 0);
	}
#endif
	char v2[64];
	if (strcmp(cpu->name, "unknown") == 0) {
		cpuinfo_value("model name", v2, sizeof(v2));
		if (v2[0])
			snprintf(cpu->name, sizeof(cpu->name), "%s", v2);
	}
}
