#!/usr/bin/env python3
"""make_minicpmv45_fixture.py: a tiny random MiniCPM-V 4.5 (a
clip.minicpmv_version 6 "resampler" mmproj and a Qwen3 text model) in the
layout llama.cpp's converters write, and float64 numpy references of its
image embeddings and of the text model's log-probs over HF's prompt.

Usage: tools/make_minicpmv45_fixture.py OUT_DIR MINICPMV26_DIR

MINICPMV26_DIR is the MiniCPM-V 2.6 fixture set (../shared/fixtures/minicpmv):
4.5's image processor slices and normalises exactly as 2.6's, so its
pixels (ref-npy/*-pixels.npy), slice sizes and bucketed SigLIP position
ids (the ref-hf-minicpmv-f32.*.json) are this reference's input, and its
text model lends the mini Qwen2 BPE vocabulary (ids 0..955) and merges.

The maths follow openbmb/MiniCPM-V-4_5's remote code (read for the facts
only; not an HF run, no torch on the machine that wrote it):
- SigLIP (modeling_navit_siglip.py, as in 2.6): patch conv with bias,
  learned positions at the bucketed ids, pre-LN blocks (MHA with biases,
  fc1, gelu tanh, fc2), post-LN; eps 1e-6;
- resampler.py: x = ln_kv(feats @ kv^T); q = ln_q(query); keys x + 2-D
  sin/cos (float32 numpy, w first) of the slice's patch grid, values x;
  torch MultiheadAttention with embed_dim // 128 heads; ln_post; x @ proj.
  4.5's temporal position is added to the keys of video frames only: an
  image or slice has temporal id -1 (the image processor's [[-1]] per
  slice), a zero vector, and each attends alone;
- Qwen3ForCausalLM (as tools/make_qwen3_fixture.py), the image rows
  replacing the <unk> placeholders, plain positions 0..n-1, causal;
- the prompt: chat() with enable_thinking=False and no system prompt, the
  Qwen3 template from its tokenizer_config.json, then the processor's
  placeholder "<image_id>0</image_id><image>" <unk>*64 "</image>" and
  per slice "<slice>" <unk>*64 "</slice>", rows joined by "\\n".
The mmproj is an F16 file as the converter writes by default (4-D and 2-D
.weight tensors F16, the rest F32) but without resampler.pos_embed_k: the
converter's 70 x 70 sin/cos table is unused by HF's maths, optional to our
loader, and would be 5 MB at this width. The text model is F16 for its 2-D
weights, as convert_hf_to_gguf.py --outtype f16. The references run on the
stored weights. Needs only numpy. Deterministic (seeds 45 and 48)."""
import json
import re
import struct
import sys
from pathlib import Path

import numpy as np

# vision tower as the 2.6 fixture's; resampler and text width D = 256:
# two 128-channel resampler heads (4.5 has 4096 wide: 32)
W, HEADS, F, LAYERS, PATCH, S, Q, D, EPS = 64, 4, 96, 3, 14, 112, 64, 256, 1e-6
T_LAYERS, T_HEADS, T_KV, T_HD, T_FF, T_CTX, THETA = 2, 4, 2, 32, 128, 4096, 1000000.0
N_BASE = 956  # the mini Qwen2 BPE of the 2.6 fixture
IMAGES = {"shapes_64x48": "shapes_64x48.png", "grid_200x150": "grid_200x150.png"}
QUESTION = "describe"
CANDIDATES = ["The image shows a red square.", "A blue circle on white.", "Nothing."]
N_GREEDY = 16

# MiniCPM-V-4_5's added tokens in their id order (151643...), without the
# 63 <|reserved_k|> after </unit>; <unk> (real id 128244) goes first. Type
# as llama.cpp's converter gives them: CONTROL (3) when special or
# <|...|>-shaped, else USER_DEFINED (4).
ADDED = ["<unk>", "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>",
         "<|object_ref_end|>", "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>",
         "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
         "<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>",
         "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>", "<tool_response>", "</tool_response>",
         "<think>", "</think>", "<image>", "</image>", "<ref>", "</ref>", "<box>", "</box>",
         "<quad>", "</quad>", "<point>", "</point>", "<slice>", "</slice>", "<image_id>",
         "</image_id>", "<unit>", "</unit>"]
PLAIN_ADDED = {"<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<think>",
               "</think>"}


# ---- GGUF ----------------------------------------------------------------

def read_kv(path):
    """The key/value pairs of a GGUF file."""
    d = Path(path).read_bytes()
    off = 24
    n_kv = struct.unpack_from("<Q", d, 16)[0]
    fmt = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q",
           12: "d"}

    def value(t):
        nonlocal off
        if t == 8:
            n = struct.unpack_from("<Q", d, off)[0]
            off += 8 + n
            return d[off - n:off].decode()
        if t == 9:
            at, n = struct.unpack_from("<IQ", d, off)
            off += 12
            return [value(at) for _ in range(n)]
        v = struct.unpack_from("<" + fmt[t], d, off)[0]
        off += struct.calcsize(fmt[t])
        return v

    kv = {}
    for _ in range(n_kv):
        key = value(8)
        t = struct.unpack_from("<I", d, off)[0]
        off += 4
        kv[key] = value(t)
    return kv


def write_gguf(path, kv, tensors):
    """GGUF v3. kv: (key, type, value) with type a GGUF value type or
    ("arr", type); tensors: (name, array, ggml type 0 F32 / 1 F16), ne
    reversed from numpy's shape."""

    def s(x):
        b = x.encode()
        return struct.pack("<Q", len(b)) + b

    pack = {4: "<I", 5: "<i", 6: "<f", 7: "<?"}

    def val(t, v):
        if t == 8:
            return s(v)
        if isinstance(t, tuple):
            return struct.pack("<IQ", t[1], len(v)) + b"".join(val(t[1], x) for x in v)
        return struct.pack(pack[t], v)

    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv))
    for key, t, v in kv:
        head += s(key) + struct.pack("<I", 9 if isinstance(t, tuple) else t) + val(t, v)
    data = b""
    for name, a, ty in tensors:
        a = np.ascontiguousarray(a, dtype="<f2" if ty == 1 else "<f4")
        data += b"\0" * (-len(data) % 32)
        ne = a.shape[::-1]
        head += s(name) + struct.pack(f"<I{len(ne)}QIQ", len(ne), *ne, ty, len(data))
        data += a.tobytes()
    head += b"\0" * (-len(head) % 32)
    Path(path).write_bytes(head + data)


def stored(tensors):
    """The values a runtime reads back: float64 of the stored type."""
    return {n: np.asarray(a, np.float16 if ty == 1 else np.float32).astype(np.float64)
            for n, a, ty in tensors}


# ---- weights ---------------------------------------------------------------

def mmproj_tensors(rng):
    """The converter's order: the resampler (state-dict order), then the
    tower. F16 file: 4-D and 2-D *.weight F16, others F32."""
    n = lambda *shape, s=0.1: rng.normal(0, s, shape)
    t = []
    t.append(("resampler.query", n(Q, D, s=0.5), 0))
    t.append(("resampler.kv.weight", n(D, W, s=0.15), 1))
    in_w, in_b = n(3 * D, D, s=0.08), n(3 * D)
    for i, c in enumerate("qkv"):
        t.append((f"resampler.attn.{c}.weight", in_w[i * D:(i + 1) * D], 1))
    for i, c in enumerate("qkv"):
        t.append((f"resampler.attn.{c}.bias", in_b[i * D:(i + 1) * D], 0))
    t.append(("resampler.attn.out.weight", n(D, D, s=0.08), 1))
    t.append(("resampler.attn.out.bias", n(D), 0))
    for ln in ("ln_q", "ln_kv", "ln_post"):
        t.append((f"resampler.{ln}.weight", 1 + n(D), 0))
        t.append((f"resampler.{ln}.bias", n(D), 0))
    # HF's proj is (D, D) used as x @ proj; the converter stores its transpose
    proj = n(D, D, s=D ** -0.5)
    t.append(("resampler.proj.weight", proj.T, 1))
    t.append(("v.patch_embd.weight", n(W, 3, PATCH, PATCH, s=0.05), 1))
    t.append(("v.patch_embd.bias", n(W), 0))
    t.append(("v.position_embd.weight", n(70 * 70, W, s=0.3), 1))
    for i in range(LAYERS):
        b = f"v.blk.{i}."
        for p in ("attn_k", "attn_v", "attn_q", "attn_out"):
            t.append((b + p + ".weight", n(W, W, s=0.15), 1))
            t.append((b + p + ".bias", n(W), 0))
        t.append((b + "ln1.weight", 1 + n(W), 0))
        t.append((b + "ln1.bias", n(W), 0))
        # the converter's swapped names: ffn_down is fc1 (W -> F)
        t.append((b + "ffn_down.weight", n(F, W, s=0.15), 1))
        t.append((b + "ffn_down.bias", n(F), 0))
        t.append((b + "ffn_up.weight", n(W, F, s=0.15), 1))
        t.append((b + "ffn_up.bias", n(W), 0))
        t.append((b + "ln2.weight", 1 + n(W), 0))
        t.append((b + "ln2.bias", n(W), 0))
    t.append(("v.post_ln.weight", 1 + n(W), 0))
    t.append(("v.post_ln.bias", n(W), 0))
    return t


def mmproj_kv():
    return [("general.architecture", 8, "clip"), ("clip.has_text_encoder", 7, False),
            ("clip.has_vision_encoder", 7, True), ("clip.has_minicpmv_projector", 7, True),
            ("general.file_type", 4, 1), ("general.description", 8, "image encoder for MiniCPM-V"),
            ("clip.projector_type", 8, "resampler"), ("clip.minicpmv_version", 5, 6),
            ("clip.vision.image_size", 4, S), ("clip.vision.patch_size", 4, PATCH),
            ("clip.vision.embedding_length", 4, W), ("clip.vision.feed_forward_length", 4, F),
            ("clip.vision.projection_dim", 4, 0), ("clip.vision.attention.head_count", 4, HEADS),
            ("clip.vision.attention.layer_norm_epsilon", 6, EPS),
            ("clip.vision.block_count", 4, LAYERS), ("clip.minicpmv_query_num", 4, Q),
            ("clip.vision.image_mean", ("arr", 6), [0.5] * 3),
            ("clip.vision.image_std", ("arr", 6), [0.5] * 3), ("clip.use_gelu", 7, True)]


def text_tensors(rng, n_vocab):
    n = lambda *shape, s=0.15: rng.normal(0, s, shape)
    t = [("token_embd.weight", n(n_vocab, D, s=0.5), 1)]
    for i in range(T_LAYERS):
        b = f"blk.{i}."
        t += [(b + "attn_norm.weight", 1 + n(D, s=0.1), 0),
              (b + "attn_q.weight", n(T_HEADS * T_HD, D, s=0.2), 1),
              (b + "attn_k.weight", n(T_KV * T_HD, D, s=0.2), 1),
              (b + "attn_v.weight", n(T_KV * T_HD, D, s=0.2), 1),
              # far from 1, as in the released Qwen3 models
              (b + "attn_q_norm.weight", 1 + n(T_HD, s=0.5), 0),
              (b + "attn_k_norm.weight", 1 + n(T_HD, s=0.5), 0),
              (b + "attn_output.weight", n(D, T_HEADS * T_HD, s=0.2), 1),
              (b + "ffn_norm.weight", 1 + n(D, s=0.1), 0),
              (b + "ffn_gate.weight", n(T_FF, D, s=0.2), 1),
              (b + "ffn_up.weight", n(T_FF, D, s=0.2), 1),
              (b + "ffn_down.weight", n(D, T_FF, s=0.2), 1)]
    t += [("output_norm.weight", 1 + n(D, s=0.1), 0), ("output.weight", n(n_vocab, D, s=0.3), 1)]
    return t


def text_kv(tokens, types, merges):
    ids = {tok: i for i, tok in enumerate(tokens)}
    a = "qwen3."
    return [("general.architecture", 8, "qwen3"), ("general.file_type", 4, 1),
            (a + "context_length", 4, T_CTX), (a + "embedding_length", 4, D),
            (a + "block_count", 4, T_LAYERS), (a + "feed_forward_length", 4, T_FF),
            (a + "attention.head_count", 4, T_HEADS), (a + "attention.head_count_kv", 4, T_KV),
            (a + "attention.key_length", 4, T_HD), (a + "attention.value_length", 4, T_HD),
            (a + "attention.layer_norm_rms_epsilon", 6, EPS), (a + "rope.freq_base", 6, THETA),
            ("tokenizer.ggml.model", 8, "gpt2"), ("tokenizer.ggml.pre", 8, "qwen2"),
            ("tokenizer.ggml.tokens", ("arr", 8), tokens),
            ("tokenizer.ggml.token_type", ("arr", 5), types),
            ("tokenizer.ggml.merges", ("arr", 8), merges),
            # tokenizer_config.json: bos <|im_start|>, eos <|im_end|>, pad
            # <|endoftext|>, unk <unk>, add_bos_token false
            ("tokenizer.ggml.eos_token_id", 4, ids["<|im_end|>"]),
            ("tokenizer.ggml.padding_token_id", 4, ids["<|endoftext|>"]),
            ("tokenizer.ggml.bos_token_id", 4, ids["<|im_start|>"]),
            ("tokenizer.ggml.unknown_token_id", 4, ids["<unk>"]),
            ("tokenizer.ggml.add_bos_token", 7, False)]


# ---- tokenizer: byte-level BPE, the Qwen2 pre-tokenizer on ASCII text -----

def byte_chars():
    keep = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    out, extra = {}, 0
    for b in range(256):
        if b in keep:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + extra)
            extra += 1
    return out


# Qwen2's split regex with \p{L} and \p{N} narrowed to ASCII (the prompts
# here are ASCII; tokenize() refuses anything else)
SPLIT = re.compile(r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\nA-Za-z0-9]?[A-Za-z]+|[0-9]"
                   r"| ?[^\sA-Za-z0-9]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


class Tokenizer:
    def __init__(self, tokens, merges):
        self.ids = {t: i for i, t in enumerate(tokens)}
        self.rank = {tuple(m.split(" ")): r for r, m in enumerate(merges)}
        self.bc = byte_chars()
        self.added = sorted(ADDED, key=len, reverse=True)

    def bpe(self, word):
        parts = list(word)
        while len(parts) > 1:
            pairs = [(self.rank.get((a, b), 1 << 30), i)
                     for i, (a, b) in enumerate(zip(parts, parts[1:]))]
            r, i = min(pairs)
            if r == 1 << 30:
                break
            parts[i:i + 2] = [parts[i] + parts[i + 1]]
        return [self.ids[p] for p in parts]

    def tokenize(self, text):
        """HF: every added token (special or not) is cut out first,
        leftmost-longest; the rest is split and merged."""
        assert text.isascii(), text
        out, i = [], 0
        while i < len(text):
            j = min((k for k in (text.find(a, i) for a in self.added) if k >= 0),
                    default=len(text))
            for piece in SPLIT.findall(text[i:j]):
                out += self.bpe("".join(self.bc[b] for b in piece.encode()))
            if j < len(text):
                a = next(a for a in self.added if text.startswith(a, j))
                out.append(self.ids[a])
                j += len(a)
            i = j
        return out


# ---- the reference maths (float64) ----------------------------------------

def layer_norm(x, w, b):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + EPS) * w + b


def rms_norm(x, w):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + EPS) * w


def softmax(s):
    s = np.exp(s - s.max(-1, keepdims=True))
    return s / s.sum(-1, keepdims=True)


def siglip(t, px, pos_ids):
    _, h, w = px.shape
    nh, nw = h // PATCH, w // PATCH
    p = px.reshape(3, nh, PATCH, nw, PATCH).transpose(1, 3, 0, 2, 4).reshape(nh * nw, -1)
    x = p @ t["v.patch_embd.weight"].reshape(W, -1).T + t["v.patch_embd.bias"]
    x = x + t["v.position_embd.weight"][np.asarray(pos_ids)]
    hd = W // HEADS
    for i in range(LAYERS):
        b = f"v.blk.{i}."
        lin = lambda y, n: y @ t[b + n + ".weight"].T + t[b + n + ".bias"]
        h1 = layer_norm(x, t[b + "ln1.weight"], t[b + "ln1.bias"])
        q, k, v = (lin(h1, n).reshape(-1, HEADS, hd) for n in ("attn_q", "attn_k", "attn_v"))
        a = softmax(np.einsum("qhd,khd->hqk", q, k) / np.sqrt(hd))
        x = x + lin(np.einsum("hqk,khd->qhd", a, v).reshape(-1, W), "attn_out")
        h2 = lin(layer_norm(x, t[b + "ln2.weight"], t[b + "ln2.bias"]), "ffn_down")  # fc1
        h2 = 0.5 * h2 * (1 + np.tanh(np.sqrt(2 / np.pi) * (h2 + 0.044715 * h2 ** 3)))
        x = x + lin(h2, "ffn_up")  # fc2
    return layer_norm(x, t["v.post_ln.weight"], t["v.post_ln.bias"])


def sincos_2d(nh, nw):
    """resampler.py's get_2d_sincos_pos_embed(D, (nh, nw)) in float32:
    channels [sin(x w), cos(x w), sin(y w), cos(y w)], x the column."""
    om = np.arange(D // 4, dtype=np.float32)
    om /= D / 4.0
    om = (1.0 / 10000 ** om).astype(np.float32)
    gx, gy = np.meshgrid(np.arange(nw, dtype=np.float32), np.arange(nh, dtype=np.float32))
    ax, ay = np.einsum("hw,d->hwd", gx, om), np.einsum("hw,d->hwd", gy, om)
    e = np.concatenate([np.sin(ax), np.cos(ax), np.sin(ay), np.cos(ay)], -1)
    return e.astype(np.float32).reshape(nh * nw, D).astype(np.float64)


def resample(t, feats, nh, nw):
    r = "resampler."
    x = layer_norm(feats @ t[r + "kv.weight"].T, t[r + "ln_kv.weight"], t[r + "ln_kv.bias"])
    q = layer_norm(t[r + "query"], t[r + "ln_q.weight"], t[r + "ln_q.bias"])
    temporal = np.zeros(D)  # temporal id -1: an image, not a video frame
    k = x + sincos_2d(nh, nw) + temporal
    lin = lambda y, n: y @ t[r + n + ".weight"].T + t[r + n + ".bias"]
    heads = D // 128
    Qh = lin(q, "attn.q").reshape(Q, heads, 128)
    Kh = lin(k, "attn.k").reshape(-1, heads, 128)
    Vh = lin(x, "attn.v").reshape(-1, heads, 128)
    a = softmax(np.einsum("qhd,khd->hqk", Qh, Kh) / np.sqrt(128))
    o = lin(np.einsum("hqk,khd->qhd", a, Vh).reshape(Q, D), "attn.out")
    o = layer_norm(o, t[r + "ln_post.weight"], t[r + "ln_post.bias"])
    proj = t[r + "proj.weight"].T  # HF's proj: the stored tensor transposed back
    return o @ proj


def rotate_half(x):
    h = x.shape[-1] // 2
    return np.concatenate([-x[..., h:], x[..., :h]], -1)


def decoder(t, x):
    """Qwen3 over the embedding rows x: logits of every position."""
    n = len(x)
    inv = 1.0 / THETA ** (np.arange(0, T_HD, 2, dtype=np.float64) / T_HD)
    ang = np.outer(np.arange(n), inv)
    emb = np.concatenate([ang, ang], -1)
    cos, sin = np.cos(emb)[:, None, :], np.sin(emb)[:, None, :]
    mask = np.triu(np.full((n, n), -np.inf), 1)
    for i in range(T_LAYERS):
        b = f"blk.{i}."
        h = rms_norm(x, t[b + "attn_norm.weight"])
        q = rms_norm((h @ t[b + "attn_q.weight"].T).reshape(n, T_HEADS, T_HD),
                     t[b + "attn_q_norm.weight"])
        k = rms_norm((h @ t[b + "attn_k.weight"].T).reshape(n, T_KV, T_HD),
                     t[b + "attn_k_norm.weight"])
        v = (h @ t[b + "attn_v.weight"].T).reshape(n, T_KV, T_HD)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        g = T_HEADS // T_KV
        k, v = np.repeat(k, g, 1), np.repeat(v, g, 1)
        a = softmax(np.einsum("qhd,khd->hqk", q, k) / np.sqrt(T_HD) + mask)
        x = x + np.einsum("hqk,khd->qhd", a, v).reshape(n, -1) @ t[b + "attn_output.weight"].T
        h = rms_norm(x, t[b + "ffn_norm.weight"])
        gt = h @ t[b + "ffn_gate.weight"].T
        x = x + (gt / (1 + np.exp(-gt)) * (h @ t[b + "ffn_up.weight"].T)) @ t[
            b + "ffn_down.weight"].T
    return rms_norm(x, t["output_norm.weight"]) @ t["output.weight"].T


def log_softmax(z):
    z = z - z.max()
    return z - np.log(np.exp(z).sum())


# ---- prompts and references ---------------------------------------------------

def placeholder(grid):
    unk = "<unk>" * Q
    s = f"<image_id>0</image_id><image>{unk}</image>"
    if grid:
        cols, rows = grid
        s += "\n".join(f"<slice>{unk}</slice>" * cols for _ in range(rows))
    return s


def chat_prompt(content, system=None):
    """Qwen3's template (tokenizer_config.json) with add_generation_prompt
    and enable_thinking=False."""
    s = f"<|im_start|>system\n{system}<|im_end|>\n" if system else ""
    return (s + f"<|im_start|>user\n{content}<|im_end|>\n"
            "<|im_start|>assistant\n<think>\n\n</think>\n\n")


def text_reference(tt, tok, ids, image_rows):
    """Log-probs of ids (image_rows replacing the <unk> runs, in order)."""
    def embed(seq):
        x = tt["token_embd.weight"][seq].copy()
        unk = [i for i, v in enumerate(seq) if v == tok.ids["<unk>"]]
        if image_rows is not None:
            assert len(unk) == len(image_rows)
            x[unk] = image_rows
        return x

    lp0 = log_softmax(decoder(tt, embed(ids))[-1])
    top = np.argsort(-lp0, kind="stable")[:10]
    seq, lps, margins = list(ids), [], []
    for _ in range(N_GREEDY):
        lp = log_softmax(decoder(tt, embed(seq))[-1])
        best = np.argsort(-lp, kind="stable")[:2]
        margins.append(float(lp[best[0]] - lp[best[1]]))
        seq.append(int(best[0]))
        lps.append(float(lp[best[0]]))
    cands = []
    for text in CANDIDATES:
        c = tok.tokenize(text)
        lp = decoder(tt, embed(list(ids) + c))
        cl = [float(log_softmax(lp[len(ids) - 1 + j])[c[j]]) for j in range(len(c))]
        cands.append({"text": text, "ids": c, "logprobs": cl, "mean_logprob": float(np.mean(cl))})
    return {
        "tokens": {"ids": [int(i) for i in ids], "n_tokens": len(ids)},
        "first_position_top10": [{"id": int(i), "logprob": float(lp0[i])} for i in top],
        "greedy": {"ids": seq[len(ids):], "logprobs": lps, "min_margin": min(margins)},
        "scored_candidates": {
            "candidates": cands,
            "best_by_mean_logprob": int(np.argmax([c["mean_logprob"] for c in cands]))},
    }


def main():
    out, src = Path(sys.argv[1]), Path(sys.argv[2])
    kv26 = read_kv(src / "tiny-minicpmv-text-f32.gguf")
    base = kv26["tokenizer.ggml.tokens"][:N_BASE]
    assert set(kv26["tokenizer.ggml.token_type"][:N_BASE]) == {1}
    tokens = base + ADDED
    types = [1] * N_BASE + [4 if a in PLAIN_ADDED else 3 for a in ADDED]
    merges = kv26["tokenizer.ggml.merges"]
    tok = Tokenizer(tokens, merges)

    mm = mmproj_tensors(np.random.default_rng(45))
    write_gguf(out / "tiny-minicpmv45-mmproj-f16.gguf", mmproj_kv(), mm)
    tx = text_tensors(np.random.default_rng(48), len(tokens))
    write_gguf(out / "tiny-minicpmv45-text-f16.gguf", text_kv(tokens, types, merges), tx)
    mt, tt = stored(mm), stored(tx)

    for stem, png in IMAGES.items():
        r26 = json.loads((src / f"ref-hf-minicpmv-f32.{stem}.describe.json").read_text())
        pre = r26["preprocess"]
        rows = []
        for k, sl in enumerate(pre["slices"]):
            px = np.load(src / f"ref-npy/mmproj-f32.{stem}-s{k}-pixels.npy").astype(np.float64)
            nh, nw = sl["tgt_size_hw_patches"]
            assert px.shape == (3, nh * PATCH, nw * PATCH)
            rows.append(resample(mt, siglip(mt, px, sl["position_ids"]), nh, nw))
        embd = np.concatenate(rows)
        np.save(out / f"ref-minicpmv45-{stem}-embd.npy", embd.astype("<f4"))
        grid = pre["grid_cols_rows"]
        content = "(<image>./</image>)\n" + QUESTION
        prompt = chat_prompt(content).replace("(<image>./</image>)", placeholder(grid))
        ref = {"tool": "make_minicpmv45_fixture.py (MiniCPM-V 4.5 remote-code semantics)",
               "image": png, "grid_cols_rows": grid,
               "slices_wh": [s["size_wh"] for s in pre["slices"]],
               "chat_content": content, "prompt": prompt,
               "image_embedding": {"npy": f"ref-minicpmv45-{stem}-embd.npy",
                                   "shape": list(embd.shape)}}
        ref.update(text_reference(tt, tok, tok.tokenize(prompt), embd))
        (out / f"ref-minicpmv45.{stem}.describe.json").write_text(json.dumps(ref, indent=1) + "\n")

    # text only, with a system sentence
    content, system = "Once upon a time", "Be brief."
    prompt = chat_prompt(content, system)
    ref = {"tool": "make_minicpmv45_fixture.py", "chat_content": content, "system": system,
           "prompt": prompt}
    ref.update(text_reference(tt, tok, tok.tokenize(prompt), None))
    (out / "ref-minicpmv45.text.once_upon_a_time.json").write_text(json.dumps(ref, indent=1) + "\n")


if __name__ == "__main__":
    main()
