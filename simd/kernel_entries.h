/* kernel_entries.h: which function fills which kernel-table entry, for every
 * ISA: the one list the tables are made from. Each line is
 * RVK_<isa>(entry, function): the table built for that ISA gets
 * t->entry = function. A new kernel is one line per ISA that has it.
 *
 * Included with no guard, once per table, by the file that builds it
 * after defining the macro of its ISA (the others default to nothing here
 * and are all undefined at the end):
 *   scalar.c        the rvk_scalar_table initializer (.entry = function,)
 *   avx2.c, neon.c, neon_dotprod.c
 *                   the ISA's fill function, on a copy of the scalar table
 *                   (dispatch.c makes the copy; neon-dotprod's fill starts
 *                   from the NEON one), so an entry an ISA does not list
 *                   keeps the scalar reference
 *   avx512.c        the same; its kernels live in three files, so they are
 *                   external, named rvk_avx512_ + function, and
 *                   avx512_common.h declares them from this list
 * The functions of the other ISAs are static in their files. */
#ifndef RVK_scalar
#define RVK_scalar(entry, function)
#endif
#ifndef RVK_avx2
#define RVK_avx2(entry, function)
#endif
#ifndef RVK_avx512
#define RVK_avx512(entry, function)
#endif
#ifndef RVK_neon
#define RVK_neon(entry, function)
#endif
#ifndef RVK_neon_dotprod
#define RVK_neon_dotprod(entry, function)
#endif

// clang-format off
/* vec_dot: one weight row . one activation row */
RVK_scalar(vec_dot[RVI_TYPE_F32], vec_dot_f32)
RVK_avx2(vec_dot[RVI_TYPE_F32], vec_dot_f32)
RVK_avx512(vec_dot[RVI_TYPE_F32], vec_dot_f32)
RVK_neon(vec_dot[RVI_TYPE_F32], vec_dot_f32)
RVK_scalar(vec_dot[RVI_TYPE_F16], vec_dot_f16)
RVK_avx2(vec_dot[RVI_TYPE_F16], vec_dot_f16)
RVK_avx512(vec_dot[RVI_TYPE_F16], vec_dot_f16)
RVK_neon(vec_dot[RVI_TYPE_F16], vec_dot_f16)
RVK_scalar(vec_dot[RVI_TYPE_BF16], vec_dot_bf16)
RVK_avx2(vec_dot[RVI_TYPE_BF16], vec_dot_bf16)
RVK_avx512(vec_dot[RVI_TYPE_BF16], vec_dot_bf16)
RVK_neon(vec_dot[RVI_TYPE_BF16], vec_dot_bf16)
RVK_scalar(vec_dot[RVI_TYPE_Q8_0], vec_dot_q8_0)
RVK_avx2(vec_dot[RVI_TYPE_Q8_0], vec_dot_q8_0)
RVK_avx512(vec_dot[RVI_TYPE_Q8_0], vec_dot_q8_0)
RVK_neon(vec_dot[RVI_TYPE_Q8_0], nq_vec_dot_q8_0)
RVK_neon_dotprod(vec_dot[RVI_TYPE_Q8_0], nq_vec_dot_q8_0)
RVK_scalar(vec_dot[RVI_TYPE_Q4_0], vec_dot_q4_0)
RVK_avx2(vec_dot[RVI_TYPE_Q4_0], vec_dot_q4_0)
RVK_avx512(vec_dot[RVI_TYPE_Q4_0], vec_dot_q4_0)
RVK_neon(vec_dot[RVI_TYPE_Q4_0], nq_vec_dot_q4_0)
RVK_neon_dotprod(vec_dot[RVI_TYPE_Q4_0], nq_vec_dot_q4_0)
RVK_scalar(vec_dot[RVI_TYPE_Q4_K], vec_dot_q4_K)
RVK_avx2(vec_dot[RVI_TYPE_Q4_K], vec_dot_q4_K)
RVK_avx512(vec_dot[RVI_TYPE_Q4_K], vec_dot_q4_K)
RVK_neon(vec_dot[RVI_TYPE_Q4_K], nq_vec_dot_q4_K)
RVK_neon_dotprod(vec_dot[RVI_TYPE_Q4_K], nq_vec_dot_q4_K)
RVK_scalar(vec_dot[RVI_TYPE_Q5_K], vec_dot_q5_K)
RVK_avx2(vec_dot[RVI_TYPE_Q5_K], vec_dot_q5_K)
RVK_avx512(vec_dot[RVI_TYPE_Q5_K], vec_dot_q5_K)
RVK_neon(vec_dot[RVI_TYPE_Q5_K], nq_vec_dot_q5_K)
RVK_neon_dotprod(vec_dot[RVI_TYPE_Q5_K], nq_vec_dot_q5_K)
RVK_scalar(vec_dot[RVI_TYPE_Q6_K], vec_dot_q6_K)
RVK_avx2(vec_dot[RVI_TYPE_Q6_K], vec_dot_q6_K)
RVK_avx512(vec_dot[RVI_TYPE_Q6_K], vec_dot_q6_K)
RVK_neon(vec_dot[RVI_TYPE_Q6_K], nq_vec_dot_q6_K)
RVK_neon_dotprod(vec_dot[RVI_TYPE_Q6_K], nq_vec_dot_q6_K)

/* vec_dot_rows: one weight row . several activation rows (NULL: vec_dot per row) */
RVK_avx2(vec_dot_rows[RVI_TYPE_F32], vec_dot_rows_f32)
RVK_avx512(vec_dot_rows[RVI_TYPE_F32], vec_dot_rows_f32)
RVK_neon(vec_dot_rows[RVI_TYPE_F32], vec_dot_rows_f32)
RVK_avx2(vec_dot_rows[RVI_TYPE_F16], vec_dot_rows_f16)
RVK_avx512(vec_dot_rows[RVI_TYPE_F16], vec_dot_rows_f16)
RVK_neon(vec_dot_rows[RVI_TYPE_F16], vec_dot_rows_f16)
RVK_avx2(vec_dot_rows[RVI_TYPE_BF16], vec_dot_rows_bf16)
RVK_avx512(vec_dot_rows[RVI_TYPE_BF16], vec_dot_rows_bf16)
RVK_neon(vec_dot_rows[RVI_TYPE_BF16], vec_dot_rows_bf16)
RVK_avx2(vec_dot_rows[RVI_TYPE_Q8_0], vec_dot_rows_q8_0)
RVK_avx512(vec_dot_rows[RVI_TYPE_Q8_0], vec_dot_rows_q8_0)
RVK_neon(vec_dot_rows[RVI_TYPE_Q8_0], nq_vec_dot_rows_q8_0)
RVK_neon_dotprod(vec_dot_rows[RVI_TYPE_Q8_0], nq_vec_dot_rows_q8_0)
RVK_avx2(vec_dot_rows[RVI_TYPE_Q4_0], vec_dot_rows_q4_0)
RVK_avx512(vec_dot_rows[RVI_TYPE_Q4_0], vec_dot_rows_q4_0)
RVK_neon(vec_dot_rows[RVI_TYPE_Q4_0], nq_vec_dot_rows_q4_0)
RVK_neon_dotprod(vec_dot_rows[RVI_TYPE_Q4_0], nq_vec_dot_rows_q4_0)
RVK_avx2(vec_dot_rows[RVI_TYPE_Q4_K], vec_dot_rows_q4_K)
RVK_avx512(vec_dot_rows[RVI_TYPE_Q4_K], vec_dot_rows_q4_K)
RVK_neon(vec_dot_rows[RVI_TYPE_Q4_K], nq_vec_dot_rows_q4_K)
RVK_neon_dotprod(vec_dot_rows[RVI_TYPE_Q4_K], nq_vec_dot_rows_q4_K)
RVK_avx2(vec_dot_rows[RVI_TYPE_Q5_K], vec_dot_rows_q5_K)
RVK_avx512(vec_dot_rows[RVI_TYPE_Q5_K], vec_dot_rows_q5_K)
RVK_neon(vec_dot_rows[RVI_TYPE_Q5_K], nq_vec_dot_rows_q5_K)
RVK_neon_dotprod(vec_dot_rows[RVI_TYPE_Q5_K], nq_vec_dot_rows_q5_K)
RVK_avx2(vec_dot_rows[RVI_TYPE_Q6_K], vec_dot_rows_q6_K)
RVK_avx512(vec_dot_rows[RVI_TYPE_Q6_K], vec_dot_rows_q6_K)
RVK_neon(vec_dot_rows[RVI_TYPE_Q6_K], nq_vec_dot_rows_q6_K)
RVK_neon_dotprod(vec_dot_rows[RVI_TYPE_Q6_K], nq_vec_dot_rows_q6_K)

/* prepared activations: prep_size, prep and vec_dot_prep, all three or none */
RVK_avx512(prep_size[RVI_TYPE_F16], prep_size_f16)
RVK_avx512(prep_size[RVI_TYPE_Q8_0], prep_size_q8_0)
RVK_avx512(prep_size[RVI_TYPE_Q4_K], prep_size_q4_K)
RVK_avx512(prep_size[RVI_TYPE_Q5_K], prep_size_kq)
RVK_avx512(prep_size[RVI_TYPE_Q4_0], prep_size_q4_0)
RVK_avx512(prep_size[RVI_TYPE_Q6_K], prep_size_q6_K)

RVK_avx512(prep[RVI_TYPE_F16], prep_f16)
RVK_avx512(prep[RVI_TYPE_Q8_0], prep_q8_0)
RVK_avx512(prep[RVI_TYPE_Q4_K], prep_q4_K)
RVK_avx512(prep[RVI_TYPE_Q5_K], prep_kq)
RVK_avx512(prep[RVI_TYPE_Q4_0], prep_q4_0)
RVK_avx512(prep[RVI_TYPE_Q6_K], prep_q6_K)

RVK_avx512(vec_dot_prep[RVI_TYPE_F16], vec_dot_prep_f16)
RVK_avx512(vec_dot_prep[RVI_TYPE_Q8_0], vec_dot_prep_q8_0)
RVK_avx512(vec_dot_prep[RVI_TYPE_Q4_K], vec_dot_prep_q4_K)
RVK_avx512(vec_dot_prep[RVI_TYPE_Q5_K], vec_dot_prep_q5_K)
RVK_avx512(vec_dot_prep[RVI_TYPE_Q4_0], vec_dot_prep_q4_0)
RVK_avx512(vec_dot_prep[RVI_TYPE_Q6_K], vec_dot_prep_q6_K)

/* dequantization to f32 */
RVK_scalar(dequant[RVI_TYPE_F32], dequant_f32)
RVK_avx2(dequant[RVI_TYPE_F32], dequant_f32)
RVK_avx512(dequant[RVI_TYPE_F32], dequant_f32)
RVK_neon(dequant[RVI_TYPE_F32], dequant_f32)
RVK_scalar(dequant[RVI_TYPE_F16], dequant_f16)
RVK_avx2(dequant[RVI_TYPE_F16], dequant_f16)
RVK_avx512(dequant[RVI_TYPE_F16], dequant_f16)
RVK_neon(dequant[RVI_TYPE_F16], dequant_f16)
RVK_scalar(dequant[RVI_TYPE_BF16], dequant_bf16)
RVK_avx2(dequant[RVI_TYPE_BF16], dequant_bf16)
RVK_avx512(dequant[RVI_TYPE_BF16], dequant_bf16)
RVK_neon(dequant[RVI_TYPE_BF16], dequant_bf16)
RVK_scalar(dequant[RVI_TYPE_Q8_0], dequant_q8_0)
RVK_avx2(dequant[RVI_TYPE_Q8_0], dequant_q8_0)
RVK_avx512(dequant[RVI_TYPE_Q8_0], dequant_q8_0)
RVK_neon(dequant[RVI_TYPE_Q8_0], dequant_q8_0)
RVK_scalar(dequant[RVI_TYPE_Q4_0], dequant_q4_0)
RVK_avx2(dequant[RVI_TYPE_Q4_0], dequant_q4_0)
RVK_avx512(dequant[RVI_TYPE_Q4_0], dequant_q4_0)
RVK_neon(dequant[RVI_TYPE_Q4_0], dequant_q4_0)
RVK_scalar(dequant[RVI_TYPE_Q4_K], dequant_q4_K)
RVK_avx2(dequant[RVI_TYPE_Q4_K], dequant_q4_K)
RVK_avx512(dequant[RVI_TYPE_Q4_K], dequant_q4_K)
RVK_neon(dequant[RVI_TYPE_Q4_K], dequant_q4_K)
RVK_scalar(dequant[RVI_TYPE_Q5_K], dequant_q5_K)
RVK_avx2(dequant[RVI_TYPE_Q5_K], dequant_q5_K)
RVK_avx512(dequant[RVI_TYPE_Q5_K], dequant_q5_K)
RVK_neon(dequant[RVI_TYPE_Q5_K], dequant_q5_K)
RVK_scalar(dequant[RVI_TYPE_Q6_K], dequant_q6_K)
RVK_avx2(dequant[RVI_TYPE_Q6_K], dequant_q6_K)
RVK_avx512(dequant[RVI_TYPE_Q6_K], dequant_q6_K)
RVK_neon(dequant[RVI_TYPE_Q6_K], dequant_q6_K)
RVK_scalar(dequant[RVI_TYPE_Q8_K], dequant_q8_K)
RVK_avx2(dequant[RVI_TYPE_Q8_K], dequant_q8_K)
RVK_avx512(dequant[RVI_TYPE_Q8_K], dequant_q8_K)
RVK_neon(dequant[RVI_TYPE_Q8_K], dequant_q8_K)

/* quantization of activations */
RVK_scalar(quant[RVI_TYPE_Q8_0], quant_q8_0)
RVK_avx2(quant[RVI_TYPE_Q8_0], quant_q8_0)
RVK_avx512(quant[RVI_TYPE_Q8_0], quant_q8_0)
RVK_neon(quant[RVI_TYPE_Q8_0], quant_q8_0)
RVK_scalar(quant[RVI_TYPE_Q8_K], quant_q8_K)
RVK_avx2(quant[RVI_TYPE_Q8_K], quant_q8_K)
RVK_avx512(quant[RVI_TYPE_Q8_K], quant_q8_K)
RVK_neon(quant[RVI_TYPE_Q8_K], quant_q8_K)

/* f32 helpers of the forward passes */
RVK_scalar(rmsnorm, rmsnorm)
RVK_avx2(rmsnorm, rmsnorm)
RVK_avx512(rmsnorm, rmsnorm)
RVK_neon(rmsnorm, rmsnorm)
RVK_scalar(softmax, softmax)
RVK_avx2(softmax, softmax)
RVK_avx512(softmax, softmax)
RVK_neon(softmax, softmax)
RVK_scalar(swiglu, swiglu)
RVK_avx2(swiglu, swiglu)
RVK_avx512(swiglu, swiglu)
RVK_neon(swiglu, swiglu)
RVK_scalar(axpy, axpy)
RVK_avx2(axpy, axpy)
RVK_avx512(axpy, axpy)
RVK_neon(axpy, axpy)
RVK_scalar(dot_f32, dot_f32)
RVK_avx2(dot_f32, dot_f32)
RVK_avx512(dot_f32, dot_f32)
RVK_neon(dot_f32, dot_f32)
RVK_scalar(attn_scores, attn_scores_loop)
RVK_avx2(attn_scores, attn_scores_loop)
RVK_avx512(attn_scores, attn_scores)
RVK_neon(attn_scores, attn_scores_loop)
RVK_scalar(attn_values, attn_values_loop)
RVK_avx2(attn_values, attn_values_loop)
RVK_avx512(attn_values, attn_values)
RVK_neon(attn_values, attn_values_loop)
RVK_avx512(attn_kv_pack, attn_kv_pack)
RVK_avx512(attn_rows, attn_rows)
RVK_avx512(gemm_pack, gemm_pack)
RVK_avx512(gemm_rows, gemm_rows)

/* norms, activations, bias and RoPE of the model recipes */
RVK_scalar(layernorm, layernorm)
RVK_avx2(layernorm, layernorm)
RVK_avx512(layernorm, layernorm)
RVK_scalar(rmsnorm_1p, rmsnorm_1p)
RVK_avx2(rmsnorm_1p, rmsnorm_1p)
RVK_avx512(rmsnorm_1p, rmsnorm_1p)
RVK_scalar(gelu_erf, gelu_erf)
RVK_avx2(gelu_erf, gelu_erf)
RVK_avx512(gelu_erf, gelu_erf)
RVK_scalar(gelu_tanh, gelu_tanh)
RVK_avx2(gelu_tanh, gelu_tanh)
RVK_avx512(gelu_tanh, gelu_tanh)
RVK_neon(gelu_tanh, gelu_tanh)
RVK_scalar(gelu_quick, gelu_quick)
RVK_avx2(gelu_quick, gelu_quick)
RVK_avx512(gelu_quick, gelu_quick)
RVK_neon(gelu_quick, gelu_quick)
RVK_scalar(silu, silu)
RVK_avx2(silu, silu)
RVK_avx512(silu, silu)
RVK_neon(silu, silu)
RVK_scalar(add_bias, add_bias)
RVK_avx2(add_bias, add_bias)
RVK_avx512(add_bias, add_bias)
RVK_neon(add_bias, add_bias)
RVK_scalar(rope, rope)
RVK_avx2(rope, rope)
RVK_avx512(rope, rope)
RVK_neon(rope, rope)
RVK_scalar(rope_neox, rope_neox)
RVK_avx2(rope_neox, rope_neox)
RVK_avx512(rope_neox, rope_neox)
RVK_neon(rope_neox, rope_neox)
// clang-format on

#undef RVK_scalar
#undef RVK_avx2
#undef RVK_avx512
#undef RVK_neon
#undef RVK_neon_dotprod
