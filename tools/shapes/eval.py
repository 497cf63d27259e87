#!/usr/bin/env python3
"""eval.py: the hallucination table of issue #20 on held-out shapes scenes.

  tools/shapes/eval.py --model ALIGNED.gguf --ref-model SFT.gguf --mmproj MMPROJ.gguf
                       [-n 500] [--seed S] [--infer PATH] [--threads T] [--out table.md]

Every scene gets the question "describe" and two yes/no questions, one
about a pair it holds and one about a pair it does not (AMBER's
discriminative half-and-half), all through rlaifv-infer --batch. Rows:

  SFT greedy          the --ref-model file as the model, temperature 0
  aligned greedy      the --model file, temperature 0
  best-of-8 self      8 samples (temperature 0.7), the highest mean log-prob
  best-of-8 RLAIF-V   the same 8, the highest log-ratio against the SFT model
  best-of-8 oracle    the same 8, the best against the truth (the headroom)

The three best-of-8 rows come from ONE run with --ref-model: the reference
model scores the candidates after they are sampled, so they (tokens and
model log-probs) are those of a run without it, and the JSON result carries each
candidate's log-probs (for the self ranking) next to the program's own
RLAIF-V choice. That halves the sampling time; the first --check tasks are
run again without --ref-model to confirm it on every evaluation.
"""
import argparse
import datetime
import hashlib
import os
import random
import shlex
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import labeler  # noqa: E402
import runner  # noqa: E402
import scenes  # noqa: E402

N_CAND = 8
TEMP = 0.7


def make_tasks(scene_set, seed, n_predict):
    """The tasks of every scene and, in the same order, what each is
    checked against: (kind, target answer, scene pairs). The questions and
    sampling seeds come from their own generator, seeded by the eval seed,
    so that the scenes stay those of runner.make_set(seed)."""
    rng = random.Random(f"shapes-eval/{seed}")
    tasks, meta = [], []
    for k, (path, sc) in enumerate(scene_set):
        truth = sc.pairs()
        absent = [p for p in scenes.PAIRS if p not in truth]
        qs = [("describe", scenes.describe_answer(sc), "describe"),
              (scenes.yesno_question(*rng.choice(sorted(truth))), "Yes.", "yesno"),
              (scenes.yesno_question(*rng.choice(absent)), "No.", "yesno")]
        for j, (q, target, kind) in enumerate(qs):
            tasks.append(dict(id=f"{k}.{j}", prompt=q, image=path,
                              seed=rng.randrange(2**63), n_predict=n_predict))
            meta.append((kind, target, truth))
    return tasks, meta


def greedy(tasks):
    return [dict(t, n=1, temp=0) for t in tasks]


def sampled(tasks):
    return [dict(t, n=N_CAND, temp=TEMP) for t in tasks]


def self_choice(result):
    """The candidate rlaifv-infer would choose without a reference model
    (REWARD in the man page): finished (eos) candidates first, then the
    higher mean log-prob, ties to the lower index."""
    def key(i):
        c = result["candidates"][i]
        lp = c["logprobs"]
        mean = sum(lp) / len(lp) if lp else float("-inf")
        return (c["finish_reason"] == "eos", mean, -i)
    return max(range(len(result["candidates"])), key=key)


def correct(answer, kind, target, truth):
    """The oracle's score: true minus false claims for a description,
    1 for a right yes/no answer (labeler.score sees no claim in "Yes.")."""
    if kind == "describe":
        return labeler.score(answer, truth)
    return int(labeler.yes_no(answer) == (target == "Yes."))


def oracle_choice(result, kind, target, truth):
    texts = [c["text"] for c in result["candidates"]]
    return max(range(len(texts)), key=lambda i: (correct(texts[i], kind, target, truth), -i))


def metrics(answers, meta):
    d = [(a, t, tr) for a, (k, t, tr) in zip(answers, meta) if k == "describe"]
    out = labeler.chair([a for a, _, _ in d], [tr for _, _, tr in d], [t for _, t, _ in d])
    yn = [labeler.yes_no(a) == (t == "Yes.") for a, (k, t, _) in zip(answers, meta) if k == "yesno"]
    out["yesno"] = sum(yn) / max(len(yn), 1)
    return out


def run(name, tasks, args, model, ref_model=None):
    """One batch run in its own folder; returns (results, wall seconds).
    The wall time covers the whole process: loading the model(s), encoding
    every task's image (the embedding cache is off), prefill, decoding,
    ranking and the reference model's scoring when there is one."""
    t0 = time.perf_counter()
    res = runner.run_batch(tasks, os.path.join(args.workdir, name), model, args.mmproj,
                           infer=args.infer, ref_model=ref_model, threads=args.threads,
                           parallel=args.parallel)
    return res, time.perf_counter() - t0


def check_one_run(shared, tasks, args):
    """The shared best-of-8 run stands for a run without --ref-model: run
    the first tasks again without it and require the same candidates, no
    reference scores and the program's own self choice equal to
    self_choice(). rlaifv-infer has no "--ref-model none": the runner
    passes no --ref-model, and the missing ref_score shows that no default
    reference model (the issue plans one for the shipped model) was used."""
    k = min(args.check, len(tasks))
    if k == 0:
        return "not checked (--check 0)"
    alone, _ = run("check-self", sampled(tasks[:k]), args, args.model)
    for a, s in zip(alone, shared):
        if any("ref_score" in c for c in a["candidates"]):
            sys.exit("eval.py: a run without --ref-model scored with a reference model")
        if [c["tokens"] for c in a["candidates"]] != [c["tokens"] for c in s["candidates"]]:
            sys.exit(f"eval.py: task {a['id']}: --ref-model changed the candidates; "
                     "the best-of-8 rows need two runs")
        if a["chosen"] != self_choice(s):
            sys.exit(f"eval.py: task {a['id']}: self ranking {self_choice(s)} differs "
                     f"from rlaifv-infer's {a['chosen']}")
    return f"checked on the first {k} tasks"


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def files(args):
    """The files the numbers come from: name and the start of the sha256."""
    def sha(path):
        if not os.path.exists(path):  # test_shapes.py runs a fake program on no files
            return "missing"
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()[:12] + "..."
    ver = subprocess.run([args.infer, "--version"], capture_output=True, text=True).stdout
    return (", ".join(f"{os.path.basename(p)} (sha256 {sha(p)})"
                      for p in (args.model, args.ref_model, args.mmproj)) +
            f"; {ver.splitlines()[0] if ver else args.infer}")


def table(rows):
    head = ("| | CHAIR_s | CHAIR_i | recall | count acc. | exact | yes/no acc. | s/answer |\n"
            "|---|---:|---:|---:|---:|---:|---:|---:|\n")
    pct = lambda v: f"{100 * v:.1f}"  # noqa: E731
    return head + "".join(
        f"| {name} | {pct(m['chair_s'])} | {pct(m['chair_i'])} | {pct(m['recall'])} | "
        f"{pct(m['count'])} | {pct(m['exact'])} | {pct(m['yesno'])} | {sec:.3f} |\n"
        for name, m, sec in rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="the aligned text model")
    ap.add_argument("--ref-model", required=True, help="the SFT text model")
    ap.add_argument("--mmproj", required=True)
    ap.add_argument("-n", type=int, default=500, help="scenes (3 questions each)")
    ap.add_argument("--seed", type=int, default=runner.TEST_SEED)
    ap.add_argument("--infer", default=runner.DEFAULT_INFER)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--parallel", type=int, default=8)
    ap.add_argument("--n-predict", type=int, default=80,
                    help="token cap (the longest target answer is 52 tokens)")
    ap.add_argument("--check", type=int, default=16,
                    help="tasks rerun without --ref-model to check the shared run")
    ap.add_argument("--workdir", help="keep scenes and results here (default: a temporary folder)")
    ap.add_argument("--out", help="also write the report (markdown) here")
    args = ap.parse_args()
    for a in ("model", "ref_model", "mmproj", "infer"):
        setattr(args, a, os.path.abspath(getattr(args, a)))
    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="shapes-eval-")
        args.workdir = tmp.name
    # absolute: rlaifv-infer takes relative image paths from the tasks file's folder
    args.workdir = os.path.abspath(args.workdir)

    scene_set = runner.make_set(os.path.join(args.workdir, f"scenes-{args.seed}"), args.seed, args.n)
    tasks, meta = make_tasks(scene_set, args.seed, args.n_predict)
    n = len(tasks)

    sft, t_sft = run("sft-greedy", greedy(tasks), args, args.ref_model)
    ali, t_ali = run("aligned-greedy", greedy(tasks), args, args.model)
    bo, t_bo = run("aligned-best-of-8", sampled(tasks), args, args.model, args.ref_model)
    checked = check_one_run(bo, tasks, args)
    scoring = sum(r["timings"]["scoring_ms"] for r in bo) / 1000

    pick = lambda r, i: r["candidates"][i]["text"]  # noqa: E731
    rows = [
        ("SFT greedy", metrics([r["text"] for r in sft], meta), t_sft / n),
        ("aligned greedy", metrics([r["text"] for r in ali], meta), t_ali / n),
        ("aligned best-of-8, self (mean log-prob)",
         metrics([pick(r, self_choice(r)) for r in bo], meta), t_bo / n),
        ("aligned best-of-8, RLAIF-V (log-ratio vs SFT)",
         metrics([r["text"] for r in bo], meta), t_bo / n),
        ("aligned best-of-8, oracle",
         metrics([pick(r, oracle_choice(r, *m)) for r, m in zip(bo, meta)], meta), t_bo / n),
    ]
    cmd = " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0])] + sys.argv[1:])
    report = (
        f"Command: `{cmd}`\n\nFiles: {files(args)}.\n\n"
        f"Seed {args.seed}, {args.n} held-out scenes: {args.n} descriptions (\"describe\") and "
        f"{2 * args.n} yes/no questions (half about absent pairs). "
        f"CPU: {cpu_name()}, -t {args.threads}, --parallel {args.parallel}. "
        f"Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC.\n\n"
        + table(rows) +
        f"\nCHAIR_s, CHAIR_i, recall, count and exact are over the descriptions, yes/no accuracy "
        f"over the yes/no questions, in percent. Best-of-8: temperature {TEMP}, a seed per "
        f"question; all three rows rank the same 8 candidates from one run with --ref-model "
        f"({checked} against a run without it). s/answer: wall time of the row's "
        f"rlaifv-infer --batch run (loading, image encoding without cache, prefill, decoding, "
        f"ranking) over its {n} answers; the best-of-8 run includes the SFT model's scoring "
        f"({scoring / n:.3f} s/answer of it, by the program's scoring_ms), which the self and "
        f"oracle rows would not need. A shared machine: times are noisy.\n")
    print(report, end="")
    if args.out:
        with open(args.out, "w") as f:
            f.write(report)
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
