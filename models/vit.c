/* vit.c: the pieces ViT-style vision encoders share (see vit.h). */
#include "models/vit.h"

#include <math.h>

#include "simd/kernels.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* Element-wise loops below this many elements stay on the calling thread. */
#define MIN_PARALLEL_ELEMS (1 << 14)

/* y (n, d) = LayerNorm(x) * w + b, row by row (the kernel table's
 * layernorm: mean and biased variance in double); y may be x. */
void rvi_vit_layer_norm(float *y, const float *x, const float *w, const float *b, int64_t n,
                        int64_t d, float eps, int nt)
{
	const rvk_table *K = rvk_active();
	(void)nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && n * d >= MIN_PARALLEL_ELEMS)
#endif
	for (int64_t t = 0; t < n; t++)
		K->layernorm(y + t * d, x + t * d, w, b, d, eps);
}

/* x (n) = act(x): erf GELU, or OpenAI CLIP's quick-GELU x * sigmoid(1.702
 * x) (the kernel table's gelu_erf, gelu_quick). Each element on its own, so
 * any split over threads gives the same bits. */
void rvi_vit_activate(float *x, int64_t n, bool erf_gelu, int nt)
{
	void (*const act)(float *, int64_t) =
	    erf_gelu ? rvk_active()->gelu_erf : rvk_active()->gelu_quick;
	const int64_t chunk = MIN_PARALLEL_ELEMS / 4;
	(void)nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && n >= MIN_PARALLEL_ELEMS)
#endif
	for (int64_t c = 0; c < n; c += chunk)
		act(x + c, n - c < chunk ? n - c : chunk);
}

/* y (n, n_out) = x (n, n_in) @ W^T + b: a torch nn.Linear. */
int rvi_vit_linear(const rvi_weight *W, const float *b, const float *x, int64_t n, float *y, int nt,
                   rvi_buf *scratch)
{
	int rc = rvi_matmul(W, x, n, y, nt, scratch);
	if (rc != RV_OK)
		return rc;
	if (b)
		rvk_active()->add_bias(y, b, n, W->n_out);
	return RV_OK;
}

/* y (n, d) = x / sqrt(mean(x^2) + eps) * w, row by row; y may be x. The
 * mean square in double, as layer_norm. */
void rvi_vit_rms_norm(float *y, const float *x, const float *w, int64_t n, int64_t d, float eps,
                      int nt)
{
	(void)nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && n * d >= MIN_PARALLEL_ELEMS)
#endif
	for (int64_t t = 0; t < n; t++) {
		const float *xr = x + t * d;
		float *yr = y + t * d;
		double ss = 0;
		for (int64_t i = 0; i < d; i++)
			ss += (double)xr[i] * (double)xr[i];
		const double inv = 1.0 / sqrt(ss / (double)d + (double)eps);
		for (int64_t i = 0; i < d; i++)
			yr[i] = (float)((double)xr[i] * inv) * w[i];
	}
}
