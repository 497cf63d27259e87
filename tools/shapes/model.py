"""model.py: the shapes VLM in torch, in the LLaVA-1.5 layout the runtime
loads (models/clip.c + models/llama.c), and its GGUF export.

Vision: CLIP ViT (patch conv without bias, class token first, learned
positions, pre-LN, pre-norm blocks with quick-GELU, no post-LN; every block
runs, as the runtime runs every stored one), class row dropped, then the MLP
projector mm.2(gelu_erf(mm.0(x))). Text: LLaMA (RMSNorm, SwiGLU, grouped
KV heads, rotary on adjacent pairs as GGUF's llama layout stores Q and K).

Prompt (the runtime's default llava template, each segment tokenized on
its own): BOS + "<system> USER: " + image + "\\n<question> ASSISTANT:" and
the answer with its leading space, then EOS. The constant first segment is
computed once per batch and its keys and values shared by every sample.
"""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import gguf

SYSTEM = ("A chat between a curious human and an artificial intelligence assistant. "
          "The assistant gives helpful, detailed, and polite answers to the human's questions.")
IMAGE_MEAN = (0.48145466, 0.4578275, 0.40821073)
IMAGE_STD = (0.26862954, 0.26130258, 0.27577711)
PAD_COLOUR = tuple(int(m * 255) for m in IMAGE_MEAN)  # (122, 116, 104)

CONFIG = dict(image_size=96, patch=8, v_dim=96, v_heads=4, v_ff=384, v_blocks=4,
              dim=128, heads=4, kv_heads=2, ff=320, layers=4, vocab=512, ctx=512,
              eps=1e-5, v_eps=1e-5, rope_base=10000.0)


def pixels(img, size):
    """PIL image -> (3, size, size) float32 as the runtime's LLaVA path: pad
    to a square with the mean colour, PIL bicubic, rescale, normalize."""
    from PIL import Image
    img = img.convert("RGB")
    w, h = img.size
    side = max(w, h)
    sq = Image.new("RGB", (side, side), PAD_COLOUR)
    sq.paste(img, ((side - w) // 2, (side - h) // 2))
    sq = sq.resize((size, size), Image.BICUBIC)
    a = np.asarray(sq, dtype=np.float32) * np.float32(1 / 255)
    a = (a - np.array(IMAGE_MEAN, np.float32)) / np.array(IMAGE_STD, np.float32)
    return torch.from_numpy(a.transpose(2, 0, 1).copy())


class Block(nn.Module):
    def __init__(self, d, heads, ff, eps):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d, eps=eps), nn.LayerNorm(d, eps=eps)
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.up, self.down = nn.Linear(d, ff), nn.Linear(ff, d)

    def forward(self, x):
        B, T, D = x.shape
        h = self.ln1(x)
        sp = lambda t: t.view(B, T, self.heads, D // self.heads).transpose(1, 2)
        q, k, v = sp(self.q(h)), sp(self.k(h)), sp(self.v(h))
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(D // self.heads), -1) @ v
        x = x + self.o(a.transpose(1, 2).reshape(B, T, D))
        u = self.up(self.ln2(x))
        return x + self.down(u * torch.sigmoid(1.702 * u))


class Vision(nn.Module):
    def __init__(self, c):
        super().__init__()
        n = (c["image_size"] // c["patch"]) ** 2
        d = c["v_dim"]
        self.patch = nn.Conv2d(3, d, c["patch"], c["patch"], bias=False)
        self.cls = nn.Parameter(torch.randn(d) * 0.02)
        self.pos = nn.Parameter(torch.randn(n + 1, d) * 0.02)
        self.pre_ln = nn.LayerNorm(d, eps=c["v_eps"])
        self.blocks = nn.ModuleList(Block(d, c["v_heads"], c["v_ff"], c["v_eps"])
                                    for _ in range(c["v_blocks"]))
        self.mm0, self.mm2 = nn.Linear(d, c["dim"]), nn.Linear(c["dim"], c["dim"])

    def forward(self, px):  # (B,3,S,S) -> (B, n, dim)
        x = self.patch(px).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], 1, -1), x], 1) + self.pos
        x = self.pre_ln(x)
        for b in self.blocks:
            x = b(x)
        return self.mm2(F.gelu(self.mm0(x[:, 1:])))


def rms(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope(x, pos, base):  # x (B,H,T,hd), adjacent pairs rotated
    hd = x.shape[-1]
    f = base ** (-torch.arange(0, hd, 2, dtype=torch.float32) / hd)
    ang = pos[:, None].float() * f[None]
    cos, sin = ang.cos(), ang.sin()
    x0, x1 = x[..., 0::2], x[..., 1::2]
    return torch.stack([x0 * cos - x1 * sin, x0 * sin + x1 * cos], -1).flatten(-2)


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, hd = c["dim"], c["dim"] // c["heads"]
        self.c = c
        self.attn_norm = nn.Parameter(torch.ones(d))
        self.ffn_norm = nn.Parameter(torch.ones(d))
        self.q = nn.Linear(d, d, bias=False)
        self.k = nn.Linear(d, c["kv_heads"] * hd, bias=False)
        self.v = nn.Linear(d, c["kv_heads"] * hd, bias=False)
        self.o = nn.Linear(d, d, bias=False)
        self.gate = nn.Linear(d, c["ff"], bias=False)
        self.up = nn.Linear(d, c["ff"], bias=False)
        self.down = nn.Linear(c["ff"], d, bias=False)

    def forward(self, x, pos, past=None):
        """x (B,T,D) at positions pos (T,); past: (k, v) of earlier positions
        (batch 1 or B) that every row attends to. Returns x and this call's (k, v)."""
        c = self.c
        B, T, D = x.shape
        H, KV, hd = c["heads"], c["kv_heads"], D // c["heads"]
        h = rms(x, self.attn_norm, c["eps"])
        q = rope(self.q(h).view(B, T, H, hd).transpose(1, 2), pos, c["rope_base"])
        k = rope(self.k(h).view(B, T, KV, hd).transpose(1, 2), pos, c["rope_base"])
        v = self.v(h).view(B, T, KV, hd).transpose(1, 2)
        kk, vv = k, v
        mask = torch.ones(T, T, dtype=torch.bool).tril()
        if past is not None:
            pk, pv = past[0].expand(B, -1, -1, -1), past[1].expand(B, -1, -1, -1)
            kk, vv = torch.cat([pk, k], 2), torch.cat([pv, v], 2)
            mask = torch.cat([torch.ones(T, pk.shape[2], dtype=torch.bool), mask], 1)
        kk = kk.repeat_interleave(H // KV, 1)
        vv = vv.repeat_interleave(H // KV, 1)
        s = (q @ kk.transpose(-1, -2)) / math.sqrt(hd)
        a = torch.softmax(s.masked_fill(~mask, float("-inf")), -1) @ vv
        x = x + self.o(a.transpose(1, 2).reshape(B, T, D))
        h = rms(x, self.ffn_norm, c["eps"])
        x = x + self.down(F.silu(self.gate(h)) * self.up(h))
        return x, (k, v)


class ShapesVLM(nn.Module):
    def __init__(self, c=CONFIG):
        super().__init__()
        self.c = dict(c)
        self.vision = Vision(c)
        self.embed = nn.Embedding(c["vocab"], c["dim"])
        self.layers = nn.ModuleList(Layer(c) for _ in range(c["layers"]))
        self.norm = nn.Parameter(torch.ones(c["dim"]))
        self.out = nn.Linear(c["dim"], c["vocab"], bias=False)
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)

    def forward(self, prefix_ids, px, suffix_ids, img=None, last_image_row=False):
        """Logits for the suffix (question, answer) after the shared text
        prefix prefix_ids (P,) and the image: (B, L, vocab), or (B, 1 + L,
        vocab) with the last image row first when last_image_row. img: the
        projected image rows when already computed (then px is unused)."""
        P = prefix_ids.shape[0]
        xp = self.embed(prefix_ids)[None]
        img = self.vision(px) if img is None else img
        n_img = img.shape[1]
        x = torch.cat([img, self.embed(suffix_ids)], 1)
        pos_p = torch.arange(P)
        pos = torch.arange(P, P + x.shape[1])
        for layer in self.layers:
            xp, past = layer(xp, pos_p)
            x, _ = layer(x, pos, past)
        x = x[:, n_img - 1:] if last_image_row else x[:, n_img:]
        return self.out(rms(x, self.norm, self.c["eps"]))

    # ---- GGUF export -----------------------------------------------------
    def export(self, text_path, mmproj_path, tokenizer_kv, name, q8=True):
        c = self.c
        sd = {k: v.detach().float().numpy() for k, v in self.state_dict().items()}
        t = {"token_embd.weight": sd["embed.weight"]}
        for i in range(c["layers"]):
            p, b = f"layers.{i}.", f"blk.{i}."
            t[b + "attn_norm.weight"] = sd[p + "attn_norm"]
            for src, dst in [("q", "attn_q"), ("k", "attn_k"), ("v", "attn_v"), ("o", "attn_output")]:
                t[b + dst + ".weight"] = sd[p + src + ".weight"]
            t[b + "ffn_norm.weight"] = sd[p + "ffn_norm"]
            for m in ("gate", "up", "down"):
                t[b + f"ffn_{m}.weight"] = sd[p + m + ".weight"]
        t["output_norm.weight"] = sd["norm"]
        t["output.weight"] = sd["out.weight"]
        U32, F32, STR, BOOL = gguf.U32, gguf.F32, gguf.STR, gguf.BOOL
        kv = {"general.architecture": (STR, "llama"), "general.type": (STR, "model"),
              "general.name": (STR, name),
              "general.description": (STR, "shapes world VLM text model (tools/shapes)"),
              "general.file_type": (U32, 7 if q8 else 0),
              "llama.context_length": (U32, c["ctx"]),
              "llama.embedding_length": (U32, c["dim"]),
              "llama.block_count": (U32, c["layers"]),
              "llama.feed_forward_length": (U32, c["ff"]),
              "llama.attention.head_count": (U32, c["heads"]),
              "llama.attention.head_count_kv": (U32, c["kv_heads"]),
              "llama.rope.dimension_count": (U32, c["dim"] // c["heads"]),
              "llama.rope.freq_base": (F32, c["rope_base"]),
              "llama.attention.layer_norm_rms_epsilon": (F32, c["eps"]),
              "llama.vocab_size": (U32, c["vocab"])}
        kv.update(tokenizer_kv)
        big = [n for n, a in t.items() if a.ndim == 2] if q8 else []
        gguf.write(text_path, kv, t, q8_names=big)

        v = {"v.patch_embd.weight": sd["vision.patch.weight"], "v.class_embd": sd["vision.cls"],
             "v.position_embd.weight": sd["vision.pos"],
             "v.pre_ln.weight": sd["vision.pre_ln.weight"], "v.pre_ln.bias": sd["vision.pre_ln.bias"]}
        for i in range(c["v_blocks"]):
            p, b = f"vision.blocks.{i}.", f"v.blk.{i}."
            for src, dst in [("ln1", "ln1"), ("q", "attn_q"), ("k", "attn_k"), ("v", "attn_v"),
                             ("o", "attn_out"), ("ln2", "ln2"), ("up", "ffn_up"), ("down", "ffn_down")]:
                v[b + dst + ".weight"] = sd[p + src + ".weight"]
                v[b + dst + ".bias"] = sd[p + src + ".bias"]
        for m in ("mm0", "mm2"):
            v[f"mm.{m[2]}.weight"] = sd[f"vision.{m}.weight"]
            v[f"mm.{m[2]}.bias"] = sd[f"vision.{m}.bias"]
        A = (gguf.ARR, gguf.F32)
        vkv = {"general.architecture": (STR, "clip"), "general.type": (STR, "mmproj"),
               "general.name": (STR, "shapes-mmproj"),
               "general.description": (STR, "shapes world VLM image encoder (tools/shapes)"),
               "general.file_type": (U32, 0),
               "clip.has_text_encoder": (BOOL, False), "clip.has_vision_encoder": (BOOL, True),
               "clip.has_llava_projector": (BOOL, True), "clip.projector_type": (STR, "mlp"),
               "clip.use_gelu": (BOOL, False),
               "clip.vision.image_size": (U32, c["image_size"]),
               "clip.vision.patch_size": (U32, c["patch"]),
               "clip.vision.embedding_length": (U32, c["v_dim"]),
               "clip.vision.feed_forward_length": (U32, c["v_ff"]),
               "clip.vision.projection_dim": (U32, c["dim"]),
               "clip.vision.attention.head_count": (U32, c["v_heads"]),
               "clip.vision.attention.layer_norm_epsilon": (F32, c["v_eps"]),
               "clip.vision.block_count": (U32, c["v_blocks"]),
               "clip.vision.image_mean": (A, list(IMAGE_MEAN)),
               "clip.vision.image_std": (A, list(IMAGE_STD))}
        gguf.write(mmproj_path, vkv, v)


class Prompt:
    """Token ids of the runtime's default LLaVA prompt around the image."""

    def __init__(self, tokenizer):
        self.tok = tokenizer
        self.prefix = [tokenizer.bos] + tokenizer.encode(SYSTEM + " USER: ")

    def question(self, q):
        return self.tok.encode("\n" + q + " ASSISTANT:")

    def answer(self, a):
        return self.tok.encode(a) + [self.tok.eos]
