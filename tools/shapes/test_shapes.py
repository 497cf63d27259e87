#!/usr/bin/env python3
"""test_shapes.py: the Python of tools/shapes where it decides results: the
world (scenes), the claim splitter and checker, the preference-pair rule,
the metrics, the evaluator's rankings and the tokenizer against the
runtime's (when rlaifv-infer is built: $RLAIFV_INFER, else build/).

  /usr/bin/python3 tools/shapes/test_shapes.py   (tests/shapes-python.test runs it)
"""
import json
import os
import random
import subprocess
import sys
import unittest

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import eval as ev  # noqa: E402
import labeler  # noqa: E402
import scenes  # noqa: E402
import tok  # noqa: E402
from scenes import Obj, Scene  # noqa: E402

VOCAB = os.path.join(HERE, "..", "..", "tests", "data", "stories260K.gguf")
INFER = os.environ.get("RLAIFV_INFER") or os.path.join(HERE, "..", "..", "build", "rlaifv-infer")
WHITE = (255, 255, 255)
RC, BS, GT = ("red", "circle"), ("blue", "square"), ("green", "triangle")


class Claims(unittest.TestCase):
    def test_pairs_in_order(self):
        self.assertEqual(labeler.claims("There is a red circle, a blue square and a green triangle."),
                         [RC, BS, GT])

    def test_an_orange(self):
        self.assertEqual(labeler.claims("There is an orange triangle."), [("orange", "triangle")])

    def test_plural_and_capitals(self):
        self.assertEqual(labeler.claims("Two Red Circles and BLUE SQUARES"), [RC, BS])

    def test_repeats_kept(self):
        self.assertEqual(labeler.claims("a red circle, a red circle"), [RC, RC])

    def test_words_that_are_not_pairs(self):
        for a in ["There is a reddish circle.", "a red ball", "circle red", "a blue.",
                  "redcircle", "a red circled", "bored squares", "Yes.", "No.", ""]:
            self.assertEqual(labeler.claims(a), [], a)

    def test_label_and_score(self):
        truth = {RC, BS}
        self.assertEqual(labeler.label("There is a red circle and a green triangle.", truth), (1, 1))
        self.assertEqual(labeler.score("There is a red circle and a blue square.", truth), 2)
        self.assertEqual(labeler.score("There is a green triangle.", truth), -1)
        self.assertEqual(labeler.score("Yes.", truth), 0)

    def test_repeat_is_false(self):
        # no pair is twice in a scene: the second red circle does not exist
        self.assertEqual(labeler.label("a red circle and a red circle", {RC}), (1, 1))
        self.assertEqual(labeler.label("a green triangle and a green triangle", {RC}), (0, 2))

    def test_yes_no(self):
        for a, v in [("Yes.", True), (" yes", True), ("No.", False), ("NO", False),
                     ("None.", None), ("Not sure.", None), ("yesterday", None), ("", None),
                     ("There is a red circle.", None)]:
            self.assertIs(labeler.yes_no(a), v, a)


class PreferencePairs(unittest.TestCase):
    truth = {RC, BS}

    def test_best_vs_worst_within_counts(self):
        c = ["There is a red circle and a blue square.",    # 2 claims, +2
             "There is a red circle and a green square.",   # 2, 0
             "There is a red circle.",                      # 1, +1
             "There is a green circle.",                    # 1, -1
             "There is a red circle and a blue square.",    # 2, +2 (best again: later index)
             "There is a green circle and a red square.",   # 2, -2 (the worst)
             "There is a purple triangle, a red circle and a blue square."]  # alone in its count
        self.assertEqual(labeler.preference_pairs(c, self.truth), [(2, 3), (0, 5)])

    def test_never_across_counts(self):
        # the one-object answer is better but names fewer objects: no pair
        c = ["There is a red circle.", "There is a green circle and a yellow square."]
        self.assertEqual(labeler.preference_pairs(c, self.truth), [])

    def test_ties_skipped(self):
        c = ["There is a red circle and a green square.", "There is a blue square and a green square."]
        self.assertEqual(labeler.preference_pairs(c, self.truth), [])

    def test_single_and_claimless(self):
        self.assertEqual(labeler.preference_pairs(["There is a green circle."], self.truth), [])
        self.assertEqual(labeler.preference_pairs(["Yes.", "No.", "blah"], self.truth), [])
        self.assertEqual(labeler.preference_pairs([], self.truth), [])


class Chair(unittest.TestCase):
    def test_known_values(self):
        answers = ["There is a red circle and a blue square.",   # right
                   "There is a red circle and a green triangle.",  # 1 of 2 false
                   "There is a red circle.",                     # 1 of 3 objects
                   "There is a red circle and a red circle."]    # a repeat
        truths = [{RC, BS}, {RC, ("yellow", "square")}, {RC, BS, GT}, {RC, BS}]
        targets = ["There is a red circle and a blue square."] * 4
        m = labeler.chair(answers, truths, targets)
        # mentions 2+2+1+2, one not in its image; answers with one: 1 of 4;
        # recalled 2+1+1+1 of 2+2+3+2 present; right counts: the first two
        self.assertAlmostEqual(m["chair_i"], 1 / 7)
        self.assertAlmostEqual(m["chair_s"], 1 / 4)
        self.assertAlmostEqual(m["recall"], 5 / 9)
        self.assertAlmostEqual(m["count"], 2 / 4)
        self.assertAlmostEqual(m["exact"], 1 / 4)

    def test_leading_space(self):
        # the runtime's texts start with the space of the first piece
        m = labeler.chair([" There is a red circle."], [{RC}], ["There is a red circle."])
        self.assertEqual((m["exact"], m["recall"]), (1, 1))

    def test_count_needs_distinct_objects(self):
        # two mentions for a one-object scene: not the right count
        self.assertEqual(labeler.chair(["There is a red circle and a red circle."], [{RC}])["count"], 0)

    def test_empty(self):
        self.assertEqual(labeler.chair([], []), dict(chair_i=0, chair_s=0, recall=0, count=0))
        self.assertEqual(labeler.chair(["Nothing."], [{RC}])["chair_i"], 0)


class World(unittest.TestCase):
    def test_exactly_the_issue(self):
        self.assertEqual(scenes.BACKGROUNDS, [(255, 255, 255), (215, 215, 215), (240, 230, 200),
                                              (200, 225, 245)])
        self.assertEqual(scenes.COLOURS, {"red": (220, 40, 40), "green": (40, 170, 60),
                                          "blue": (40, 80, 220), "yellow": (240, 210, 40),
                                          "purple": (140, 60, 180), "orange": (250, 140, 30)})
        self.assertEqual(sorted(scenes.SHAPES), ["circle", "square", "triangle"])

    def test_scenes_in_range(self):
        rng = random.Random(20)
        seen_n, seen_bg, non_square = set(), set(), 0
        for _ in range(400):
            sc = scenes.make_scene(rng)
            self.assertTrue(64 <= sc.w <= 128 and 64 <= sc.h <= 128)
            self.assertIn(sc.background, scenes.BACKGROUNDS)
            self.assertTrue(1 <= len(sc.objects) <= 4)
            self.assertEqual(len(sc.pairs()), len(sc.objects))  # no pair twice
            for o in sc.objects:
                self.assertTrue(16 <= o.s <= 32)
                self.assertIn((o.colour, o.shape), scenes.PAIRS)
                self.assertTrue(0 <= o.x and o.x + o.s <= sc.w and 0 <= o.y and o.y + o.s <= sc.h)
            for i, a in enumerate(sc.objects):
                for b in sc.objects[:i]:
                    # the empty pixels between the boxes, along x or along y
                    gap = max(b.x - (a.x + a.s), a.x - (b.x + b.s), b.y - (a.y + a.s), a.y - (b.y + b.s))
                    self.assertGreaterEqual(gap, 2)
            seen_n.add(len(sc.objects))
            seen_bg.add(sc.background)
            non_square += sc.w != sc.h
        self.assertEqual(seen_n, {1, 2, 3, 4})
        self.assertEqual(len(seen_bg), 4)
        self.assertGreater(non_square, 300)

    def test_seeded(self):
        self.assertEqual(scenes.make_scene(random.Random(7)), scenes.make_scene(random.Random(7)))

    def test_render_exact_colours(self):
        rng = random.Random(3)
        for _ in range(40):
            sc = scenes.make_scene(rng)
            img = scenes.render(sc)
            self.assertEqual((img.mode, img.size), ("RGB", (sc.w, sc.h)))
            a = np.asarray(img)
            outside = np.ones((sc.h, sc.w), bool)
            for o in sc.objects:
                box = a[o.y:o.y + o.s, o.x:o.x + o.s].reshape(-1, 3)
                mine = (box == scenes.COLOURS[o.colour]).all(1)
                # inside the box only the object's colour and the background
                self.assertTrue((mine | (box == sc.background).all(1)).all())
                self.assertTrue(self.shape_ok(o, mine.reshape(o.s, o.s)), o)
                outside[o.y:o.y + o.s, o.x:o.x + o.s] = False
            self.assertTrue((a[outside] == sc.background).all())

    @staticmethod
    def shape_ok(o, m):
        """m: the object's pixels in its s x s box. Each shape spans the box
        (a triangle's apex row is its narrowest) and fills its share of it."""
        rows, cols = m.any(1), m.any(0)
        if not (rows.all() and cols.all()):
            return False
        fill = m.mean()
        if o.shape == "square":
            return m.all()
        if o.shape == "circle":
            return abs(fill - np.pi / 4) < 0.08 and not m[0, 0] and not m[-1, -1]
        widths = m.sum(1)
        return m[-1].all() and widths[0] <= 2 and (np.diff(widths) >= 0).all() and abs(fill - 0.5) < 0.12

    def test_render_shapes(self):
        # one of each shape at every size, on a known background
        for s in range(16, 33):
            for shape in scenes.SHAPES:
                sc = Scene(40, 40, WHITE, [Obj("blue", shape, 3, 4, s)])
                m = (np.asarray(scenes.render(sc))[4:4 + s, 3:3 + s] == scenes.COLOURS["blue"]).all(2)
                self.assertTrue(self.shape_ok(sc.objects[0], m), (shape, s))

    def test_answer_order_and_joining(self):
        # left to right by centre x; the blue square's left edge (10) is left of
        # the triangle's (12), its centre (26) is not (20)
        ordered = [Obj("orange", "triangle", 12, 50, 16), Obj("blue", "square", 10, 5, 32),
                   Obj("red", "circle", 60, 5, 20), Obj("green", "circle", 95, 40, 16)]
        want = ["There is an orange triangle.",
                "There is an orange triangle and a blue square.",
                "There is an orange triangle, a blue square and a red circle.",
                "There is an orange triangle, a blue square, a red circle and a green circle."]
        for n, w in enumerate(want, 1):
            sc = Scene(128, 128, WHITE, ordered[:n][::-1])  # stored right to left
            self.assertEqual(scenes.describe_answer(sc), w)

    def test_articles(self):
        for c in scenes.COLOURS:
            self.assertEqual(scenes.phrase(c, "square"), ("an " if c == "orange" else "a ") + c + " square")
        self.assertEqual(scenes.yesno_question("orange", "circle"), "Is there an orange circle?")

    def test_tasks(self):
        rng = random.Random(4)
        yes = no = 0
        for _ in range(400):
            sc = scenes.make_scene(rng)
            q, a = scenes.make_task(rng, sc, p_describe=0)
            pair = tuple(q[len("Is there "):-1].split()[-2:])
            self.assertEqual(a, "Yes." if pair in sc.pairs() else "No.")
            yes, no = yes + (a == "Yes."), no + (a == "No.")
        self.assertTrue(150 < yes < 250 and yes + no == 400)


class Eval(unittest.TestCase):
    @staticmethod
    def result(cands):
        """A --json result: candidates as (text, logprobs, finish_reason)."""
        return {"candidates": [dict(text=t, logprobs=lp, finish_reason=f) for t, lp, f in cands]}

    def test_self_choice(self):
        r = self.result([("a", [-0.1], "length"),        # best mean, but cut off
                         ("b", [-1.0, -0.5], "eos"),     # mean -0.75
                         ("c", [-0.5, -0.5, -1.0], "eos"),  # mean -0.667: chosen
                         ("d", [-0.5, -1.0, -0.5], "eos")])  # the same mean, later
        self.assertEqual(ev.self_choice(r), 2)
        self.assertEqual(ev.self_choice(self.result([("", [], "eos"), ("x", [-9.0], "eos")])), 1)

    def test_oracle_choice(self):
        truth = {RC, BS}
        r = self.result([("There is a green circle.", [], "eos"),
                         ("There is a red circle.", [], "eos"),
                         ("There is a blue square.", [], "eos")])
        self.assertEqual(ev.oracle_choice(r, "describe", "", truth), 1)  # ties: the first
        r = self.result([("No.", [], "eos"), ("Yes.", [], "eos")])
        self.assertEqual(ev.oracle_choice(r, "yesno", "Yes.", truth), 1)
        self.assertEqual(ev.oracle_choice(r, "yesno", "No.", truth), 0)

    def test_tasks_and_metrics(self):
        rng = random.Random(9)
        sset = [(f"s{k}.png", scenes.make_scene(rng)) for k in range(30)]
        tasks, meta = ev.make_tasks(sset, 5, 80)
        self.assertEqual(tasks, ev.make_tasks(sset, 5, 80)[0])  # seeded
        self.assertNotEqual(tasks, ev.make_tasks(sset, 6, 80)[0])
        self.assertEqual(len({t["seed"] for t in tasks}), len(tasks))
        self.assertEqual([m[0] for m in meta], ["describe", "yesno", "yesno"] * 30)
        for t, (kind, target, truth) in zip(tasks, meta):
            if kind == "yesno":  # one present and one absent pair per scene
                pair = tuple(t["prompt"][:-1].split()[-2:])
                self.assertEqual(target, "Yes." if pair in truth else "No.")
        # the targets score perfectly; always "Yes." is right half the time
        m = ev.metrics([tg for _, tg, _ in meta], meta)
        self.assertEqual(m, dict(chair_i=0, chair_s=0, recall=1, count=1, exact=1, yesno=1))
        m = ev.metrics(["Yes."] * len(meta), meta)
        self.assertEqual((m["yesno"], m["recall"], m["chair_s"]), (0.5, 0, 0))


FAKE_INFER = r"""
# A stand-in for rlaifv-infer --batch with known answers: the SFT file says
# a red circle and "No.", the aligned one a blue square and "Yes."; of 8
# candidates, candidate i names (i % 4) + 1 pairs from PAIRS[2 * i] on, the
# self score prefers candidate 3, the reference (when given) candidate 5.
# FAKE=disagree: without a reference the program chooses candidate 0;
# FAKE=change: the reference changes the candidates' tokens. Texts start
# with a space, as SentencePiece answers from the runtime do.
import json, os, sys
sys.path.insert(0, os.environ["SHAPES_DIR"])
import scenes
a, fake = sys.argv, os.environ.get("FAKE")
model, tasks, out = a[a.index("-m") + 1], a[a.index("--batch") + 1], a[a.index("--output") + 1]
ref = "--ref-model" in a
with open(tasks) as f, open(out, "w") as o:
    for line in f:
        t = json.loads(line)
        yn = t["prompt"].startswith("Is there")
        if t["n"] == 1:
            sft = "sft" in os.path.basename(model)
            texts = ["No." if sft else "Yes."] if yn else [
                "There is %s." % scenes.phrase(*(("red", "circle") if sft else ("blue", "square")))]
        else:
            texts = [("Yes." if i % 2 else "No.") if yn else "There is %s." % " and ".join(
                scenes.phrase(*p) for p in scenes.PAIRS[2 * i:2 * i + i % 4 + 1]) for i in range(8)]
        cands = [dict(text=" " + x, tokens=[i + 100 * (ref and fake == "change")],
                      logprobs=[-0.1 * (1 + abs(i - 3))], finish_reason="eos",
                      score=-0.1 * (1 + abs(i - 3) - 9 * (fake == "disagree" and i == 0)))
                 for i, x in enumerate(texts)]
        if ref:
            for i, c in enumerate(cands):
                c.update(score=-abs(i - 5), ref_score=-1.0, ref_logprobs=[-1.0])
        ch = max(range(len(cands)), key=lambda i: (cands[i]["score"], -i))
        o.write(json.dumps(dict(id=t["id"], text=cands[ch]["text"], chosen=ch, candidates=cands,
                                timings=dict(scoring_ms=1.0 if ref else 0.0))) + "\n")
"""


class EvalEndToEnd(unittest.TestCase):
    """eval.py's rows come from the right runs and choices, and its check of
    the shared run fails when it should (with a fake rlaifv-infer)."""

    def run_eval(self, fake=""):
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            prog = os.path.join(d, "fake-infer")
            with open(prog, "w") as f:
                f.write(f"#!{sys.executable}\n" + FAKE_INFER)
            os.chmod(prog, 0o755)
            out = os.path.join(d, "table.md")
            p = subprocess.run([sys.executable, os.path.join(HERE, "eval.py"), "--model", "aligned.gguf",
                                "--ref-model", "sft.gguf", "--mmproj", "mm.gguf", "-n", "12",
                                "--seed", "5", "--infer", prog, "--workdir", d, "--out", out],
                               env=dict(os.environ, SHAPES_DIR=HERE, FAKE=fake),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if p.returncode:
                return p.stderr
            return {ln.split("|")[1].strip(): ln.split("|")[2:-2] for ln in open(out)
                    if ln.startswith("| ") and "CHAIR" not in ln}

    def test_rows(self):
        rows = self.run_eval()
        rng = random.Random(5)
        _, meta = ev.make_tasks([(f"{k}", scenes.make_scene(rng)) for k in range(12)], 5, 80)
        desc = lambda c, s: "There is %s." % scenes.phrase(c, s)  # noqa: E731

        def cand(kind, i):
            if kind == "yesno":
                return "Yes." if i % 2 else "No."
            named = scenes.PAIRS[2 * i:2 * i + i % 4 + 1]
            return "There is %s." % " and ".join(scenes.phrase(*p) for p in named)

        def want(answers):
            m = ev.metrics(answers, meta)
            cols = ("chair_s", "chair_i", "recall", "count", "exact", "yesno")
            return [f" {100 * m[k]:.1f} " for k in cols]
        oracle = want([cand(k, max(range(8), key=lambda i: (ev.correct(cand(k, i), k, t, tr), -i)))
                       for k, t, tr in meta])
        bo_self, bo_ref = want([cand(k, 3) for k, _, _ in meta]), want([cand(k, 5) for k, _, _ in meta])
        self.assertEqual(len({tuple(oracle), tuple(bo_self), tuple(bo_ref)}), 3)  # the test can tell
        self.assertEqual(rows["SFT greedy"],
                         want(["No." if k == "yesno" else desc("red", "circle") for k, _, _ in meta]))
        self.assertEqual(rows["aligned greedy"],
                         want(["Yes." if k == "yesno" else desc("blue", "square") for k, _, _ in meta]))
        self.assertEqual(rows["aligned best-of-8, self (mean log-prob)"], bo_self)
        self.assertEqual(rows["aligned best-of-8, RLAIF-V (log-ratio vs SFT)"], bo_ref)
        self.assertEqual(rows["aligned best-of-8, oracle"], oracle)

    def test_check_of_the_shared_run(self):
        self.assertIn("self ranking", self.run_eval("disagree"))
        self.assertIn("changed the candidates", self.run_eval("change"))


@unittest.skipUnless(os.path.exists(VOCAB), "tests/data/stories260K.gguf not found")
class Tokenizer(unittest.TestCase):
    TEXTS = ["There is an orange triangle.", "describe", "Yes.",
             "\nIs there a purple square? ASSISTANT:",
             "A chat between a curious human and an artificial intelligence assistant. "
             "The assistant gives helpful, detailed, and polite answers to the human's questions. USER: ",
             "  two  spaces, héllo wörld ☺"]

    def test_round_trip(self):
        T = tok.Tokenizer(VOCAB)
        for s in self.TEXTS:
            self.assertEqual(T.decode(T.encode(s)), " " + s)  # the dummy prefix's space

    @unittest.skipUnless(os.access(INFER, os.X_OK), f"{INFER} not built")
    def test_as_the_runtime(self):
        T = tok.Tokenizer(VOCAB)
        for s in self.TEXTS:
            out = subprocess.run([INFER, "-m", VOCAB, "--tokenize", "-p", s], check=True,
                                 capture_output=True, text=True).stdout
            self.assertEqual(T.encode(s), json.loads(out), repr(s))


if __name__ == "__main__":
    unittest.main()
