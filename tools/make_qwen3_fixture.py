#!/usr/bin/env python3
"""make_qwen3_fixture.py: a tiny random Qwen3 text decoder
(general.architecture "qwen3") in the layout llama.cpp's converter writes,
and float64 numpy references of its logits and greedy continuation.

Usage: tools/make_qwen3_fixture.py OUT_DIR

The maths follow Hugging Face's Qwen3ForCausalLM (transformers'
modeling_qwen3.py), read for the facts only; this is not an HF run (no
torch on the machine that wrote it):
- x = embed_tokens[ids]; per layer h = rmsnorm(x) * input_layernorm;
  q, k, v = h @ Wq^T, Wk^T, Wv^T without biases (attention_bias False),
  viewed as heads of head_dim (which need not be hidden / heads);
- q_norm, k_norm: RMSNorm over each head (weight of size head_dim, the
  model's eps) BEFORE the rotary embedding;
- RoPE with rotate_half, inv_freq = 1 / theta^(arange(0, hd, 2) / hd);
- causal softmax(q k^T / sqrt(head_dim)) v, kv head j serving query heads
  j * group .. (j + 1) * group - 1 (repeat_kv); x += o_proj(attn);
- x += down(silu(gate(rmsnorm(x) * post_attention_layernorm)) * up(...));
- logits = (rmsnorm(x) * norm) @ lm_head^T (untied here, as Qwen3-8B).
RMSNorm: x / sqrt(mean(x^2) + eps) * w. Writes tiny-qwen3-f32.gguf and
ref-qwen3.json (prompt ids, every position's logits, greedy ids).
Needs only numpy. Deterministic (seed 33)."""
import json
import struct
import sys
from pathlib import Path

import numpy as np

VOCAB, D, HEADS, KV_HEADS, HD, FF, LAYERS, CTX = 96, 48, 4, 2, 16, 80, 2, 64
EPS, THETA = 1e-6, 1000000.0
PROMPT = [3, 17, 42, 5, 88, 60, 11]
N_GEN = 6


def weights(rng):
    t = {"token_embd.weight": rng.normal(0, 0.5, (VOCAB, D))}
    for i in range(LAYERS):
        b = f"blk.{i}."
        t[b + "attn_norm.weight"] = 1 + rng.normal(0, 0.1, D)
        t[b + "attn_q.weight"] = rng.normal(0, 0.15, (HEADS * HD, D))
        t[b + "attn_k.weight"] = rng.normal(0, 0.15, (KV_HEADS * HD, D))
        t[b + "attn_v.weight"] = rng.normal(0, 0.15, (KV_HEADS * HD, D))
        # Qwen3's head norms are far from 1 in the released models
        t[b + "attn_q_norm.weight"] = 1 + rng.normal(0, 0.5, HD)
        t[b + "attn_k_norm.weight"] = 1 + rng.normal(0, 0.5, HD)
        t[b + "attn_output.weight"] = rng.normal(0, 0.15, (D, HEADS * HD))
        t[b + "ffn_norm.weight"] = 1 + rng.normal(0, 0.1, D)
        t[b + "ffn_gate.weight"] = rng.normal(0, 0.15, (FF, D))
        t[b + "ffn_up.weight"] = rng.normal(0, 0.15, (FF, D))
        t[b + "ffn_down.weight"] = rng.normal(0, 0.15, (D, FF))
    t["output_norm.weight"] = 1 + rng.normal(0, 0.1, D)
    t["output.weight"] = rng.normal(0, 0.3, (VOCAB, D))
    return t


def rmsnorm(x, w):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + EPS) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return np.concatenate([-x[..., h:], x[..., :h]], -1)


def forward(t, ids):
    n = len(ids)
    x = t["token_embd.weight"][ids]
    inv = 1.0 / THETA ** (np.arange(0, HD, 2, dtype=np.float64) / HD)
    ang = np.outer(np.arange(n), inv)
    emb = np.concatenate([ang, ang], -1)
    cos, sin = np.cos(emb)[:, None, :], np.sin(emb)[:, None, :]
    mask = np.triu(np.full((n, n), -np.inf), 1)
    group = HEADS // KV_HEADS
    for i in range(LAYERS):
        b = f"blk.{i}."
        h = rmsnorm(x, t[b + "attn_norm.weight"])
        q = (h @ t[b + "attn_q.weight"].T).reshape(n, HEADS, HD)
        k = (h @ t[b + "attn_k.weight"].T).reshape(n, KV_HEADS, HD)
        v = (h @ t[b + "attn_v.weight"].T).reshape(n, KV_HEADS, HD)
        q = rmsnorm(q, t[b + "attn_q_norm.weight"])
        k = rmsnorm(k, t[b + "attn_k_norm.weight"])
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k, v = np.repeat(k, group, 1), np.repeat(v, group, 1)
        s = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(HD) + mask
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        a = np.einsum("hqk,khd->qhd", s, v).reshape(n, HEADS * HD)
        x = x + a @ t[b + "attn_output.weight"].T
        h = rmsnorm(x, t[b + "ffn_norm.weight"])
        g = h @ t[b + "ffn_gate.weight"].T
        u = h @ t[b + "ffn_up.weight"].T
        x = x + (g / (1 + np.exp(-g)) * u) @ t[b + "ffn_down.weight"].T
    return rmsnorm(x, t["output_norm.weight"]) @ t["output.weight"].T


def write_gguf(path, t):
    """GGUF v3, every tensor F32 (ne reversed from numpy's shape)."""

    def s(x):
        b = x.encode()
        return struct.pack("<Q", len(b)) + b

    u32 = lambda v: struct.pack("<I", 4) + struct.pack("<I", v)
    f32 = lambda v: struct.pack("<I", 6) + struct.pack("<f", v)
    kv = {
        "general.architecture": struct.pack("<I", 8) + s("qwen3"),
        "qwen3.context_length": u32(CTX),
        "qwen3.embedding_length": u32(D),
        "qwen3.block_count": u32(LAYERS),
        "qwen3.feed_forward_length": u32(FF),
        "qwen3.attention.head_count": u32(HEADS),
        "qwen3.attention.head_count_kv": u32(KV_HEADS),
        "qwen3.attention.key_length": u32(HD),
        "qwen3.attention.value_length": u32(HD),
        "qwen3.attention.layer_norm_rms_epsilon": f32(EPS),
        "qwen3.rope.freq_base": f32(THETA),
    }
    head = b"GGUF" + struct.pack("<IQQ", 3, len(t), len(kv))
    head += b"".join(s(k) + v for k, v in kv.items())
    data = b""
    for name, a in t.items():
        a = np.ascontiguousarray(a, dtype="<f4")
        data += b"\0" * (-len(data) % 32)
        ne = a.shape[::-1]
        head += s(name) + struct.pack(f"<I{len(ne)}QIQ", len(ne), *ne, 0, len(data))
        data += a.tobytes()
    head += b"\0" * (-len(head) % 32)
    Path(path).write_bytes(head + data)


def main():
    out = Path(sys.argv[1])
    t = weights(np.random.default_rng(33))
    write_gguf(out / "tiny-qwen3-f32.gguf", t)
    # the reference runs on the weights as stored (F32)
    t = {k: v.astype(np.float32).astype(np.float64) for k, v in t.items()}
    logits = forward(t, PROMPT)
    ids = list(PROMPT)
    for _ in range(N_GEN):
        ids.append(int(np.argmax(forward(t, ids)[-1])))
    ref = {"prompt_ids": PROMPT, "n_vocab": VOCAB,
           "logits": [[round(float(v), 7) for v in row] for row in logits],
           "greedy_ids": ids[len(PROMPT):]}
    (out / "ref-qwen3.json").write_text(json.dumps(ref) + "\n")


if __name__ == "__main__":
    main()
