"""labeler.py: RLAIF-V's divide-and-conquer labels and the CHAIR metrics on
the shapes world, where the truth of every claim is known.

A claim is one mentioned object, a (colour, shape) pair found in the
answer; it is true when the scene holds that pair. A candidate's score is
true claims minus false claims. Preference pairs are only made between
candidates naming the same number of objects, so that a pair never rewards
saying less (what DPO on fewer-false-claims alone learned before filing).
"""
import re

from scenes import COLOURS, SHAPES

_CLAIM = re.compile(r"\b(%s)\s+(%s)s?\b" % ("|".join(COLOURS), "|".join(SHAPES)), re.I)
_YES_NO = re.compile(r"\s*(yes|no)\b", re.I)


def claims(answer):
    """The (colour, shape) pairs an answer mentions, in order, repeats kept."""
    return [(c.lower(), s.lower()) for c, s in _CLAIM.findall(answer)]


def label(answer, truth):
    """(true claims, false claims) of an answer against the scene's pairs.
    A pair mentioned again claims a second such object, which no scene has
    (no pair twice in an image): the repeat is false, else repeating a true
    object would score like seeing another one."""
    cl = claims(answer)
    right = sum(1 for i, p in enumerate(cl) if p in truth and p not in cl[:i])
    return right, len(cl) - right


def score(answer, truth):
    right, wrong = label(answer, truth)
    return right - wrong


def yes_no(answer):
    """True / False for an answer starting with yes / no, else None."""
    m = _YES_NO.match(answer)  # a whole word: "None" or "Not sure" is no answer
    return None if m is None else m.group(1).lower() == "yes"


def preference_pairs(candidates, truth):
    """candidates: answers to one question. Returns (chosen, rejected) index
    pairs: within each group naming the same number of objects, the best
    scored against the worst; groups whose best and worst tie give none."""
    groups = {}
    for i, a in enumerate(candidates):
        groups.setdefault(len(claims(a)), []).append(i)
    pairs = []
    for n, idx in sorted(groups.items()):
        if n == 0 or len(idx) < 2:
            continue
        sc = [score(candidates[i], truth) for i in idx]
        best = idx[max(range(len(idx)), key=lambda j: (sc[j], -j))]
        worst = idx[min(range(len(idx)), key=lambda j: (sc[j], j))]
        if score(candidates[best], truth) > score(candidates[worst], truth):
            pairs.append((best, worst))
    return pairs


def chair(answers, truths, targets=None):
    """CHAIR-style metrics over description answers: dict with chair_i,
    chair_s, recall, count (naming as many objects as there are) and, when
    targets are given, exact (answer equals the target)."""
    mentioned = false = with_false = present = recalled = counted = exact = 0
    for i, (a, t) in enumerate(zip(answers, truths)):
        cl = claims(a)
        uniq = set(cl)
        f = sum(1 for p in cl if p not in t)
        mentioned += len(cl)
        false += f
        with_false += f > 0
        present += len(t)
        recalled += len(uniq & t)
        counted += len(uniq) == len(t) and len(cl) == len(uniq)
        if targets is not None:
            exact += a.strip() == targets[i].strip()
    n = max(len(answers), 1)
    out = dict(chair_i=false / max(mentioned, 1), chair_s=with_false / n,
               recall=recalled / max(present, 1), count=counted / n)
    if targets is not None:
        out["exact"] = exact / n
    return out
