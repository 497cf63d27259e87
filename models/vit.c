/* vit.c: the pieces ViT-style vision encoders share (see vit.h). */
#include "models/vit.h"

#include <math.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* Element-wise loops below this many elements stay on the calling thread. */
#define MIN_PARALLEL_ELEMS (1 << 14)

/* y (n, d) = LayerNorm(x) * w + b, row by row; y may be x. Mean and
 * (biased, as PyTorch) variance in double: cheap next to the matmuls, and
 * it keeps us on the float64 reference. */
void rvi_vit_layer_norm(float *y, const float *x, const float *w, const float *b, int64_t n,
                        int64_t d, float eps, int nt)
{
	(void)nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && n * d >= MIN_PARALLEL_ELEMS)
#endif
	for (int64_t t = 0; t < n; t++) {
		const float *xr = x + t * d;
		float *yr = y + t * d;
		double mean = 0, var = 0;
		for (int64_t i = 0; i < d; i++)
			mean += xr[i];
		mean /= (double)d;
		for (int64_t i = 0; i < d; i++)
			var += ((double)xr[i] - mean) * ((double)xr[i] - mean);
		const double inv = 1.0 / sqrt(var / (double)d + (double)eps);
		for (int64_t i = 0; i < d; i++)
			yr[i] = (float)(((double)xr[i] - mean) * inv) * w[i] + b[i];
	}
}

/* x (n) = act(x): erf GELU 0.5 x (1 + erf(x / sqrt 2)), or OpenAI CLIP's
 * quick-GELU x * sigmoid(1.702 x). Each element on its own, so any split
 * over threads gives the same bits. */
void rvi_vit_activate(float *x, int64_t n, bool erf_gelu, int nt)
{
	(void)nt;
	if (erf_gelu) {
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && n >= MIN_PARALLEL_ELEMS)
#endif
		for (int64_t i = 0; i < n; i++)
			x[i] = (float)(0.5 * x[i] * (1.0 + erf(x[i] * 0.70710678118654752440)));
	} else {
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && n >= MIN_PARALLEL_ELEMS)
#endif
		for (int64_t i = 0; i < n; i++)
			x[i] = x[i] / (1.0f + expf(-1.702f * x[i]));
	}
}

/* y (n, n_out) = x (n, n_in) @ W^T + b: a torch nn.Linear. */
int rvi_vit_linear(const rvi_weight *W, const float *b, const float *x, int64_t n, float *y, int nt,
                   rvi_buf *scratch)
{
	int rc = rvi_matmul(W, x, n, y, nt, scratch);
	if (rc != RV_OK)
		return rc;
	if (b)
		for (int64_t t = 0; t < n; t++)
			for (int64_t o = 0; o < W->n_out; o++)
				y[t * W->n_out + o] += b[o];
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
