"""runner.py: scenes through rlaifv-infer --batch (the runtime, not torch),
for the RLAIF-V loop and the evaluator.

make_set(dir, seed, n) renders n scenes (seeded) as PNGs and returns them;
run_batch(...) writes one task per (scene, question), runs the model once
over the file and returns the parsed result lines in task order.
"""
import json
import os
import random
import subprocess

import scenes

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_INFER = os.path.join(HERE, "..", "..", "build", "rlaifv-infer")

# Seed ranges: training draws (seed * 1e7 + step); these never meet it.
LOOP_SEED = 1_000_000_000  # fresh scenes for the RLAIF-V loop
TEST_SEED = 3_000_000_000  # held-out scenes for the evaluator and the README table


def make_set(directory, seed, n):
    """n scenes from Random(seed), saved as DIR/scene-K.png; returns
    [(path, scene)]."""
    os.makedirs(directory, exist_ok=True)
    rng = random.Random(seed)
    out = []
    for k in range(n):
        sc = scenes.make_scene(rng)
        path = os.path.join(directory, f"scene-{k:05d}.png")
        if not os.path.exists(path):
            scenes.render(sc).save(path)
        out.append((path, sc))
    return out


def run_batch(tasks, workdir, model, mmproj, infer=DEFAULT_INFER, ref_model=None,
              extra=(), threads=2, parallel=8):
    """tasks: dicts with id, prompt, image and optionally n, seed, temp,
    n_predict. Returns the result objects in task order; raises when a task
    failed."""
    os.makedirs(workdir, exist_ok=True)
    tf = os.path.join(workdir, "tasks.jsonl")
    of = os.path.join(workdir, "results.jsonl")
    with open(tf, "w") as f:
        for t in tasks:
            if t.get("image"):  # rlaifv-infer reads a relative one from tf's folder
                t = dict(t, image=os.path.abspath(t["image"]))
            f.write(json.dumps(t) + "\n")
    if os.path.exists(of):  # a run that fails early must not leave an old run's results
        os.remove(of)
    cmd = [infer, "-m", model, "--mmproj", mmproj, "--batch", tf, "--output", of,
           "-t", str(threads), "--parallel", str(parallel), "--no-cache"]
    if ref_model:
        cmd += ["--ref-model", ref_model]
    cmd += list(extra)
    rc = subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL).returncode
    if rc not in (0, 11):  # 11: some task failed, raised below with its message
        raise RuntimeError(f"{' '.join(cmd)}: exit status {rc}")
    res = {}
    with open(of) as f:
        for line in f:
            r = json.loads(line)
            if "error" in r:
                raise RuntimeError(f"task {r.get('id')}: {r['error']}")
            res[r["id"]] = r
    return [res[t["id"]] for t in tasks]
