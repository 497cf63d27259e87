#!/usr/bin/env python3
"""train_sft.py: supervised training of the shapes VLM on the runtime's exact
prompt, resumable from its checkpoint.

  tools/shapes/train_sft.py --out DIR [--steps N] [--seed S] [--vocab GGUF]

Every step draws a fresh batch of scenes from a generator seeded by (seed,
step), so a resumed run sees the same data as an uninterrupted one. DIR
gets ckpt.pt (every --save-every steps, written atomically), train.log,
and at the end shapes-sft.gguf + shapes-mmproj.gguf.
"""
import argparse
import math
import os
import random
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import labeler  # noqa: E402
import model  # noqa: E402
import scenes  # noqa: E402
import tok  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
VOCAB = os.path.join(HERE, "..", "..", "tests", "data", "stories260K.gguf")
VAL_SEED = 2_000_000_000  # validation scenes; the evaluator's test scenes use another range


def batch(rng, prompt, n, size, p_describe):
    """Pixels (n,3,S,S), suffix ids (n,L) padded with EOS, and the first
    answer position and answer length of each row."""
    px, rows, spans = [], [], []
    for _ in range(n):
        sc = scenes.make_scene(rng)
        q, a = scenes.make_task(rng, sc, p_describe)
        px.append(model.pixels(scenes.render(sc), size))
        qi, ai = prompt.question(q), prompt.answer(a)
        rows.append(qi + ai)
        spans.append((len(qi), len(ai)))
    L = max(len(r) for r in rows)
    ids = torch.full((n, L), prompt.tok.eos, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(r)
    return torch.stack(px), ids, spans


def loss_of(m, prefix, px, ids, spans):
    logits = m(prefix, px, ids, last_image_row=True)
    target = torch.full(ids.shape, -100, dtype=torch.long)
    for i, (q, a) in enumerate(spans):
        target[i, q:q + a] = ids[i, q:q + a]
    # logits at row j (the last image row first) predict suffix token j
    lg = logits[:, :ids.shape[1]]
    return F.cross_entropy(lg.reshape(-1, lg.shape[-1]), target.reshape(-1))


@torch.no_grad()
def greedy(m, prompt, px, questions, max_new=56):
    """Greedy answers (text) for a batch, recomputing the whole sequence
    each token (no cache: this is for validation, not speed)."""
    prefix = torch.tensor(prompt.prefix)
    img = m.vision(px)
    seqs = [prompt.question(q) for q in questions]
    done = [False] * len(seqs)
    starts = [len(s) for s in seqs]
    for _ in range(max_new):
        L = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), L), prompt.tok.eos, dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, :len(s)] = torch.tensor(s)
        logits = m(prefix, None, ids, img=img)
        for i, s in enumerate(seqs):
            if done[i]:
                continue
            t = int(logits[i, len(s) - 1].argmax())
            if t == prompt.tok.eos:
                done[i] = True
            else:
                s.append(t)
        if all(done):
            break
    return [prompt.tok.decode(s[st:]).strip() for s, st in zip(seqs, starts)]


def validate(m, prompt, size, n=64):
    rng = random.Random(VAL_SEED)
    sc = [scenes.make_scene(rng) for _ in range(n)]
    px = torch.stack([model.pixels(scenes.render(s), size) for s in sc])
    m.eval()
    ans = greedy(m, prompt, px, ["describe"] * n)
    m.train()
    return labeler.chair(ans, [s.pairs() for s in sc], [scenes.describe_answer(s) for s in sc]), ans


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--p-describe", type=float, default=0.6)
    ap.add_argument("--save-every", type=int, default=100)
    ap.add_argument("--val-every", type=int, default=500)
    ap.add_argument("--vocab", default=VOCAB, help="GGUF whose tokenizer the model uses")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    os.makedirs(a.out, exist_ok=True)
    T = tok.Tokenizer(a.vocab)
    prompt = model.Prompt(T)
    torch.manual_seed(a.seed)
    m = model.ShapesVLM()
    opt = torch.optim.AdamW(m.parameters(), lr=a.lr, weight_decay=0.01, betas=(0.9, 0.98))
    ck = os.path.join(a.out, "ckpt.pt")
    step, spent = 0, 0.0
    if os.path.exists(ck):
        s = torch.load(ck)
        m.load_state_dict(s["model"])
        opt.load_state_dict(s["opt"])
        step, spent = s["step"], s["seconds"]
        print(f"resumed at step {step}", flush=True)
    log = open(os.path.join(a.out, "train.log"), "a")
    prefix = torch.tensor(prompt.prefix)
    size = m.c["image_size"]
    warm = 200
    t0 = time.time()
    while step < a.steps:
        lr = a.lr * min(1, (step + 1) / warm) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / a.steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        rng = random.Random(a.seed * 10_000_000 + step)
        px, ids, spans = batch(rng, prompt, a.batch, size, a.p_describe)
        loss = loss_of(m, prefix, px, ids, spans)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        step += 1
        now = spent + time.time() - t0
        if step % 20 == 0:
            print(f"step {step} loss {loss.item():.4f} lr {lr:.2e} {now:.0f}s", file=log, flush=True)
        if step % a.val_every == 0 or step == a.steps:
            met, ans = validate(m, prompt, size)
            print(f"val step {step} " + " ".join(f"{k} {v:.3f}" for k, v in met.items()) +
                  f" | {ans[0]!r}", file=log, flush=True)
        if step % a.save_every == 0 or step == a.steps:
            torch.save({"model": m.state_dict(), "opt": opt.state_dict(), "step": step,
                        "seconds": now, "config": m.c, "seed": a.seed}, ck + ".tmp")
            os.replace(ck + ".tmp", ck)
    m.export(os.path.join(a.out, "shapes-sft.gguf"), os.path.join(a.out, "shapes-mmproj.gguf"),
             T.kv, "shapes-sft")
    print(f"done: {step} steps, {spent + time.time() - t0:.0f}s", file=log, flush=True)


if __name__ == "__main__":
    main()
