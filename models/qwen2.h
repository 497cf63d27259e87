/* qwen2.h: the Qwen2 text decoders' tables (models/qwen2.c). */
#ifndef RLAIFV_QWEN2_H
#define RLAIFV_QWEN2_H

#include "models/arch.h"

/* "qwen2": 1-D positions; "qwen2vl": M-RoPE over (t, h, w) positions. */
extern const rvi_text_arch rvi_qwen2_arch;
extern const rvi_text_arch rvi_qwen2vl_arch;
/* "qwen3": Qwen2 without q, k, v biases, with per-head q/k RMSNorm. */
extern const rvi_text_arch rvi_qwen3_arch;

#endif
