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

#define N_ISA (sizeof(isa_entries) / sizeof(isa_entries[0]))
static const char *const known_isas[] = {"avx512", "avx2", "neon-dotprod", "neon", "scalar"};

/* Built once by build_tables(); read-only afterwards. */
static rvk_table tables[N_ISA];
static bool table_usable[N_ISA];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;
static _Atomic(const rvk_table *) active_table;

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
		for (size_t i = 0; i < N_ISA; i++)
			if (table_usable[i])
				return &tables[i];
	}
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
	t = rvk_table_for(rvk_env_isa(), NULL, 0);
	if (t == NULL)
		t = rvk_table_for("scalar", NULL, 0);
	const rvk_table *expected = NULL;
	if (!atomic_compare_exchange_strong_explicit(&active_table, &expected, t,
	                                             memory_order_acq_rel, memory_order_acquire))
		return expected;
	return t;
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
	const rvk_table *t = rvk_table_for(isa ? isa : rvk_env_isa(), msg, msg_size);
	if (t == NULL)
		return false;
	atomic_store_explicit(&active_table, t, memory_order_release);
	return true;
}
