/* dispatch.c: chooses the kernel table once per process.
 *
 * The candidates are listed best first; each ISA file, when it exists and
 * configure compiles it, adds its table and a CPU check here. Until then
 * only the scalar reference is available, and asking for another ISA is an
 * error that names it. The choice is the one piece of global state of the
 * runtime: an atomic pointer, set by the first rvk_active() call (from
 * $RLAIFV_ISA; unset means the best usable table, an unusable value the
 * scalar one) or by rvk_select(). */
#include "kernels.h"
#include "util.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct isa_entry {
	const char *name;
	const rvk_table *table; /* NULL: not compiled into this build */
	bool (*cpu_has)(void);  /* NULL: usable wherever it is compiled */
} isa_entry;

/* Best first; "auto" takes the first usable one. */
static const isa_entry isa_entries[] = {
    {"avx512", NULL, NULL},
    {"avx2", NULL, NULL},
    {"neon-dotprod", NULL, NULL},
    {"neon", NULL, NULL},
    {"scalar", &rvk_scalar_table, NULL},
};

#define N_ISA (sizeof(isa_entries) / sizeof(isa_entries[0]))

static _Atomic(const rvk_table *) active_table;

static bool usable(const isa_entry *e)
{
	return e->table != NULL && (e->cpu_has == NULL || e->cpu_has());
}

/* Sets *out to the table for isa; or returns the reason it cannot. */
static int lookup(const char *isa, const rvk_table **out, rvi_err *err)
{
	if (isa == NULL || isa[0] == '\0' || strcmp(isa, "auto") == 0) {
		for (size_t i = 0; i < N_ISA; i++) {
			if (usable(&isa_entries[i])) {
				*out = isa_entries[i].table;
				return RV_OK;
			}
		}
		/* unreachable: scalar is always usable */
		return rvi_errorf(err, RV_ERR_INTERNAL, "no kernel table available");
	}
	for (size_t i = 0; i < N_ISA; i++) {
		if (strcmp(isa, isa_entries[i].name) != 0)
			continue;
		if (!usable(&isa_entries[i]))
			return rvi_errorf(err, RV_ERR_INVALID_ARG,
			                  "RLAIFV_ISA=%s: this build/CPU has no %s kernels", isa,
			                  isa);
		*out = isa_entries[i].table;
		return RV_OK;
	}
	return rvi_errorf(err, RV_ERR_INVALID_ARG,
	                  "RLAIFV_ISA=%s: unknown ISA (expected auto, scalar, avx2, avx512, neon "
	                  "or neon-dotprod)",
	                  isa);
}

const rvk_table *rvk_active(void)
{
	const rvk_table *t = atomic_load_explicit(&active_table, memory_order_acquire);
	if (t != NULL)
		return t;
	/* First use. Several threads may get here at once: each computes the
	 * same answer, and the compare-exchange lets exactly one install it, so
	 * every caller returns the same table. An unusable $RLAIFV_ISA falls
	 * back to the scalar reference, the one table that runs everywhere
	 * (there is no one to report the error to here). */
	if (lookup(getenv("RLAIFV_ISA"), &t, NULL) != RV_OK)
		t = &rvk_scalar_table;
	const rvk_table *expected = NULL;
	if (!atomic_compare_exchange_strong_explicit(&active_table, &expected, t,
	                                             memory_order_acq_rel, memory_order_acquire))
		t = expected; /* someone else (or rvk_select) was first */
	return t;
}

int rvk_select(const char *isa, struct rvi_err *err)
{
	const rvk_table *t = NULL;
	const int status = lookup(isa, &t, err);
	if (status != RV_OK)
		return status;
	atomic_store_explicit(&active_table, t, memory_order_release);
	return RV_OK;
}
