#!/usr/bin/env python3
"""make_qwen2vl_fixture.py: a tiny random Qwen2-VL vision tower + merger
(clip.projector_type "qwen2vl_merger") in the layout llama.cpp's converter
writes, and float64 numpy references of its image embeddings.

Usage: tools/make_qwen2vl_fixture.py OUT_DIR PATCHES.npy...

The maths follow Hugging Face's Qwen2VisionTransformerPretrainedModel
(transformers' modeling_qwen2_vl.py), read for the facts only:
- patch embedding: the Conv3d (W, 3, 2, 14, 14) without bias as a matrix
  on the processor's flattened patches (c, t, y, x), rows in 2x2 merge order;
- 2-D rotary positions: per patch its row h and column w (merge order),
  inv_freq = 1 / 10000^(arange(0, d, 2) / d) with d = head_dim / 2; the
  angles are [h * inv_freq, w * inv_freq] (head_dim / 2 of them), doubled
  and applied with rotate_half to q and k;
- blocks (every one with full attention over the image): x += proj(attn(
  norm1(x))), x += fc2(quick_gelu(fc1(norm2(x)))), norm = LayerNorm eps 1e-6;
- merger: ln_q = LayerNorm eps 1e-6, 4 consecutive rows side by side,
  Linear, GELU (erf), Linear.
The PATCHES are the processor's output (Qwen2VLImageProcessor, the same
for Qwen2-VL and Qwen2.5-VL): the Qwen2.5-VL fixture's *-patches.npy, whose
grid is in the name's image (see GRIDS). Writes tiny-qwen2vl-mmproj-f32.gguf
and ref-qwen2vl-<stem>-embd.npy (float32 of the float64 result).
Needs only numpy. Deterministic (seed 27)."""
import struct
import sys
from pathlib import Path

import numpy as np

W, HEADS, F, LAYERS, OUT, PATCH, EPS = 64, 4, 172, 3, 128, 14, 1e-6
# patch grids (rows, cols) of the Qwen2.5-VL fixture images (smart_resize)
GRIDS = {"shapes_64x48": (4, 4), "wide_294x84": (6, 20), "tall_140x170": (12, 10)}


def weights(rng):
    s = 0.05
    t = {}
    t["v.patch_embd.weight"] = rng.normal(0, s, (W, 3, 2, PATCH, PATCH))
    for i in range(LAYERS):
        b = f"v.blk.{i}."
        t[b + "ln1.weight"] = 1 + rng.normal(0, 0.1, W)
        t[b + "ln1.bias"] = rng.normal(0, 0.1, W)
        for p in ("attn_q", "attn_k", "attn_v", "attn_out"):
            t[b + p + ".weight"] = rng.normal(0, s * 2, (W, W))
            t[b + p + ".bias"] = rng.normal(0, 0.1, W)
        t[b + "ln2.weight"] = 1 + rng.normal(0, 0.1, W)
        t[b + "ln2.bias"] = rng.normal(0, 0.1, W)
        t[b + "ffn_up.weight"] = rng.normal(0, s * 2, (F, W))  # fc1
        t[b + "ffn_up.bias"] = rng.normal(0, 0.1, F)
        t[b + "ffn_down.weight"] = rng.normal(0, s * 2, (W, F))  # fc2
        t[b + "ffn_down.bias"] = rng.normal(0, 0.1, W)
    t["v.post_ln.weight"] = 1 + rng.normal(0, 0.1, W)
    t["v.post_ln.bias"] = rng.normal(0, 0.1, W)
    t["mm.0.weight"] = rng.normal(0, s, (4 * W, 4 * W))
    t["mm.0.bias"] = rng.normal(0, 0.1, 4 * W)
    t["mm.2.weight"] = rng.normal(0, s, (OUT, 4 * W))
    t["mm.2.bias"] = rng.normal(0, 0.1, OUT)
    return t


def layer_norm(x, w, b):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + EPS) * w + b


def rotate_half(x):
    h = x.shape[-1] // 2
    return np.concatenate([-x[..., h:], x[..., :h]], -1)


def forward(t, patches, gh, gw):
    n = gh * gw
    conv = t["v.patch_embd.weight"].reshape(W, -1)  # (W, 3*2*14*14) in (c, t, y, x)
    x = patches.astype(np.float64) @ conv.T
    # positions in merge order: blocks of 2x2 patches, row-major over blocks
    hpos = np.arange(gh)[:, None].repeat(gw, 1)
    wpos = np.arange(gw)[None, :].repeat(gh, 0)
    merge = lambda a: a.reshape(gh // 2, 2, gw // 2, 2).transpose(0, 2, 1, 3).reshape(-1)
    hpos, wpos = merge(hpos), merge(wpos)
    hd = W // HEADS
    d = hd // 2
    inv = 1.0 / 10000 ** (np.arange(0, d, 2, dtype=np.float64) / d)
    ang = np.concatenate([np.outer(hpos, inv), np.outer(wpos, inv)], -1)  # (n, hd/2)
    emb = np.concatenate([ang, ang], -1)
    cos, sin = np.cos(emb)[:, None, :], np.sin(emb)[:, None, :]
    for i in range(LAYERS):
        b = f"v.blk.{i}."
        lin = lambda y, p: y @ t[b + p + ".weight"].T + t[b + p + ".bias"]
        h = layer_norm(x, t[b + "ln1.weight"], t[b + "ln1.bias"])
        q = lin(h, "attn_q").reshape(n, HEADS, hd)
        k = lin(h, "attn_k").reshape(n, HEADS, hd)
        v = lin(h, "attn_v").reshape(n, HEADS, hd)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        s = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(hd)
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        a = np.einsum("hqk,khd->qhd", s, v).reshape(n, W)
        x = x + lin(a, "attn_out")
        h = layer_norm(x, t[b + "ln2.weight"], t[b + "ln2.bias"])
        h = lin(h, "ffn_up")
        h = h / (1 + np.exp(-1.702 * h))  # quick_gelu
        x = x + lin(h, "ffn_down")
    h = layer_norm(x, t["v.post_ln.weight"], t["v.post_ln.bias"]).reshape(n // 4, 4 * W)
    h = h @ t["mm.0.weight"].T + t["mm.0.bias"]
    from math import erf, sqrt

    h = 0.5 * h * (1 + np.vectorize(erf)(h / sqrt(2)))
    return h @ t["mm.2.weight"].T + t["mm.2.bias"]


def gguf(path, t):
    """GGUF v3, every tensor F32 (ne reversed from numpy's shape)."""
    kv = []

    def s(x):
        b = x.encode()
        return struct.pack("<Q", len(b)) + b

    def add(key, typ, payload):
        kv.append(s(key) + struct.pack("<I", typ) + payload)

    add("general.architecture", 8, s("clip"))
    add("clip.projector_type", 8, s("qwen2vl_merger"))
    add("clip.has_vision_encoder", 7, b"\x01")
    add("clip.vision.image_size", 4, struct.pack("<I", 560))
    add("clip.vision.patch_size", 4, struct.pack("<I", PATCH))
    add("clip.vision.embedding_length", 4, struct.pack("<I", W))
    add("clip.vision.feed_forward_length", 4, struct.pack("<I", F))
    add("clip.vision.block_count", 4, struct.pack("<I", LAYERS))
    add("clip.vision.attention.head_count", 4, struct.pack("<I", HEADS))
    add("clip.vision.attention.layer_norm_epsilon", 6, struct.pack("<f", EPS))
    add("clip.vision.projection_dim", 4, struct.pack("<I", OUT))
    for key, vals in (("clip.vision.image_mean", [0.48145466, 0.4578275, 0.40821073]),
                      ("clip.vision.image_std", [0.26862954, 0.26130258, 0.27577711])):
        add(key, 9, struct.pack("<IQ", 6, 3) + struct.pack("<3f", *vals))
    # the converter splits the Conv3d in time: .weight frame 0, .weight.1 frame 1
    conv = t["v.patch_embd.weight"]
    arrays = [("v.patch_embd.weight", conv[:, :, 0]), ("v.patch_embd.weight.1", conv[:, :, 1])]
    arrays += [(k, v) for k, v in t.items() if k != "v.patch_embd.weight"]
    infos, data = [], b""
    for name, a in arrays:
        a = np.ascontiguousarray(a, dtype="<f4")
        data += b"\0" * (-len(data) % 32)
        ne = list(reversed(a.shape))
        infos.append(s(name) + struct.pack("<I", len(ne)) + struct.pack(f"<{len(ne)}Q", *ne) +
                     struct.pack("<IQ", 0, len(data)))
        data += a.tobytes()
    head = b"GGUF" + struct.pack("<IQQ", 3, len(arrays), len(kv)) + b"".join(kv) + b"".join(infos)
    head += b"\0" * (-len(head) % 32)
    Path(path).write_bytes(head + data)


def npy(path, a):
    a = np.ascontiguousarray(a, dtype="<f4")
    np.save(path, a)


def main():
    out = Path(sys.argv[1])
    t = weights(np.random.default_rng(27))
    gguf(out / "tiny-qwen2vl-mmproj-f32.gguf", t)
    # the reference runs on the weights as stored (F32)
    t = {k: v.astype(np.float32).astype(np.float64) for k, v in t.items()}
    for p in sys.argv[2:]:
        stem = Path(p).name.replace("-patches.npy", "")
        gh, gw = GRIDS[stem]
        patches = np.load(p)
        assert patches.shape == (gh * gw, 3 * 2 * PATCH * PATCH), patches.shape
        npy(out / f"ref-qwen2vl-{stem}-embd.npy", forward(t, patches, gh, gw))


if __name__ == "__main__":
    main()
