#!/usr/bin/env python3
"""loop.py: one round of RLAIF-V on the shapes world, as the paper runs it.

  tools/shapes/loop.py --sft-dir DIR --out DIR2 [--scenes 1500] [--n 8]

1. candidates: for fresh scenes (runner.LOOP_SEED), rlaifv-infer samples N
   answers per description question from the SFT model (temperature 0.7,
   a seed per task; --batch, the model loaded once);
2. divide-and-conquer labels: each candidate is split into claims (one per
   mentioned object), each checked against the scene's truth (labeler.py);
3. preference pairs: best vs worst among candidates naming the same number
   of objects, ties skipped (labeler.preference_pairs);
4. DPO from the SFT weights, the SFT model as the frozen reference, beta
   0.1; the image encoder and projector stay frozen, so one shapes-mmproj
   serves both text models;
5. writes DIR2/shapes-rlaifv.gguf (and ckpt-rlaifv.pt for another round:
   pass --sft-dir DIR2 --init ckpt-rlaifv.pt).

The candidates' token ids come from the runtime's JSON, so the DPO sees
exactly the sequences the runtime sampled.
"""
import argparse
import json
import os
import random
import sys
import time

import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import labeler  # noqa: E402
import model  # noqa: E402
import runner  # noqa: E402
import scenes  # noqa: E402
import tok  # noqa: E402
from train_sft import VOCAB  # noqa: E402


def generate(a, sft_gguf, mmproj, work):
    """Scenes, questions and the N candidates of each (runtime results)."""
    rng = random.Random(a.seed)
    sc = runner.make_set(os.path.join(work, "scenes"), runner.LOOP_SEED + a.seed, a.scenes)
    tasks = [dict(id=k, image=os.path.abspath(p), prompt=rng.choice(scenes.DESCRIBE_QUESTIONS),
                  n=a.n, temp=0.7, seed=rng.randrange(1 << 31), n_predict=48)
             for k, (p, _) in enumerate(sc)]
    t0 = time.time()
    # -m is always given, so no built-in reference model applies
    res = runner.run_batch(tasks, work, sft_gguf, mmproj, infer=a.infer, threads=a.threads)
    print(f"generated {a.scenes} x {a.n} candidates in {time.time() - t0:.0f}s", flush=True)
    return sc, tasks, res


def make_pairs(sc, tasks, res):
    pairs = []
    for (path, scene), t, r in zip(sc, tasks, res):
        cands = r["candidates"]
        texts = [c["text"] for c in cands]
        for best, worst in labeler.preference_pairs(texts, scene.pairs()):
            pairs.append(dict(image=path, question=t["prompt"],
                              chosen=cands[best]["tokens"], rejected=cands[worst]["tokens"]))
    return pairs


def seq_logprob(m, prefix, px, qs, answers, img=None):
    """Summed log-prob of each answer (token ids, EOS included) after its
    question, rows padded; returns (B,)."""
    rows = [q + a for q, a in zip(qs, answers)]
    L = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), L, dtype=torch.long)
    mask = torch.zeros(len(rows), L)
    for i, (q, a) in enumerate(zip(qs, answers)):
        ids[i, :len(q) + len(a)] = torch.tensor(q + a)
        mask[i, len(q):len(q) + len(a)] = 1
    logits = m(prefix, px, ids, img=img, last_image_row=True)[:, :L]
    lp = torch.log_softmax(logits, -1).gather(-1, ids[..., None])[..., 0]
    return (lp * mask).sum(-1)


def dpo(a, pairs, prompt, sft_state):
    torch.manual_seed(a.seed)
    policy, ref = model.ShapesVLM(), model.ShapesVLM()
    policy.load_state_dict(sft_state)
    ref.load_state_dict(sft_state)
    ref.eval()
    for p in list(ref.parameters()) + list(policy.vision.parameters()):
        p.requires_grad_(False)
    policy.vision.eval()
    prefix = torch.tensor(prompt.prefix)
    size = policy.c["image_size"]
    px_all = {p["image"]: None for p in pairs}
    for k in px_all:
        px_all[k] = model.pixels(Image.open(k), size)
    # the reference's log-probs once, in batches
    with torch.no_grad():
        for i in range(0, len(pairs), 64):
            chunk = pairs[i:i + 64]
            px = torch.stack([px_all[p["image"]] for p in chunk])
            img = ref.vision(px)
            qs = [prompt.question(p["question"]) for p in chunk]
            rc = seq_logprob(ref, prefix, None, qs, [p["chosen"] for p in chunk], img)
            rr = seq_logprob(ref, prefix, None, qs, [p["rejected"] for p in chunk], img)
            for p, c, r in zip(chunk, rc.tolist(), rr.tolist()):
                p["ref_chosen"], p["ref_rejected"] = c, r
    opt = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=a.lr,
                            weight_decay=0.0)
    rng = random.Random(a.seed)
    steps = a.epochs * ((len(pairs) + a.batch - 1) // a.batch)
    step = 0
    for ep in range(a.epochs):
        order = list(range(len(pairs)))
        rng.shuffle(order)
        for i in range(0, len(order), a.batch):
            chunk = [pairs[j] for j in order[i:i + a.batch]]
            px = torch.stack([px_all[p["image"]] for p in chunk])
            with torch.no_grad():
                img = policy.vision(px)
            qs = [prompt.question(p["question"]) for p in chunk]
            n = len(chunk)
            lp = seq_logprob(policy, prefix, None, qs + qs,
                             [p["chosen"] for p in chunk] + [p["rejected"] for p in chunk],
                             torch.cat([img, img]))
            refc = torch.tensor([p["ref_chosen"] for p in chunk])
            refr = torch.tensor([p["ref_rejected"] for p in chunk])
            margin = (lp[:n] - refc) - (lp[n:] - refr)
            loss = -F.logsigmoid(a.beta * margin).mean()
            for g in opt.param_groups:
                g["lr"] = a.lr * min(1.0, (step + 1) / 10)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
            opt.step()
            step += 1
            if step % 10 == 0 or step == steps:
                acc = (margin > 0).float().mean().item()
                print(f"dpo step {step}/{steps} loss {loss.item():.4f} margin "
                      f"{margin.mean().item():.3f} acc {acc:.2f}", flush=True)
    return policy


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sft-dir", required=True, help="train_sft.py's output directory")
    ap.add_argument("--init", default="ckpt.pt", help="checkpoint in --sft-dir to start from")
    ap.add_argument("--out", required=True)
    ap.add_argument("--scenes", type=int, default=1500)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--beta", type=float, default=0.1)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--infer", default=runner.DEFAULT_INFER)
    ap.add_argument("--vocab", default=VOCAB)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    os.makedirs(a.out, exist_ok=True)
    t0 = time.time()
    T = tok.Tokenizer(a.vocab)
    prompt = model.Prompt(T)
    state = torch.load(os.path.join(a.sft_dir, a.init))
    sft_state = state["model"] if "model" in state else state
    src = model.ShapesVLM()
    src.load_state_dict(sft_state)
    sft_gguf = os.path.join(a.out, "round-start.gguf")
    mmproj = os.path.join(a.out, "shapes-mmproj.gguf")
    src.export(sft_gguf, mmproj, T.kv, "shapes-round-start")
    sc, tasks, res = generate(a, sft_gguf, mmproj, os.path.join(a.out, "gen"))
    pairs = make_pairs(sc, tasks, res)
    print(f"{len(pairs)} preference pairs from {len(tasks)} questions", flush=True)
    with open(os.path.join(a.out, "pairs.jsonl"), "w") as f:
        for p in pairs:
            f.write(json.dumps(p) + "\n")
    policy = dpo(a, pairs, prompt, sft_state)
    torch.save({"model": policy.state_dict(), "config": policy.c}, os.path.join(a.out, "ckpt-rlaifv.pt"))
    policy.export(os.path.join(a.out, "shapes-rlaifv.gguf"), os.path.join(a.out, "mmproj-check.gguf"),
                  T.kv, "shapes-rlaifv")
    same = open(mmproj, "rb").read() == open(os.path.join(a.out, "mmproj-check.gguf"), "rb").read()
    os.remove(os.path.join(a.out, "mmproj-check.gguf"))
    assert same, "DPO changed the image encoder"
    print(f"loop done in {time.time() - t0:.0f}s (without SFT)", flush=True)


if __name__ == "__main__":
    main()
