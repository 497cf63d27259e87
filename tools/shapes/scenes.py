"""scenes.py: the synthetic world of issue #20, seeded.

A scene is W x H (each uniform in [64, 128]) on one of four backgrounds with
1-4 filled, non-overlapping objects, each a distinct (colour, shape) pair of
size s in [16, 32], drawn by PIL without anti-aliasing. Everything a test or
metric needs (the truth) is in the Scene; render() makes the RGB image.
"""
import random
from dataclasses import dataclass, field

from PIL import Image, ImageDraw

BACKGROUNDS = [(255, 255, 255), (215, 215, 215), (240, 230, 200), (200, 225, 245)]
COLOURS = {
    "red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220),
    "yellow": (240, 210, 40), "purple": (140, 60, 180), "orange": (250, 140, 30),
}
SHAPES = ["circle", "square", "triangle"]
PAIRS = [(c, s) for c in COLOURS for s in SHAPES]
DESCRIBE_QUESTIONS = ["describe", "Describe the image.", "What is in the picture?"]
GAP = 2  # bounding boxes at least this many pixels apart


@dataclass
class Obj:
    colour: str
    shape: str
    x: int  # left of the bounding box
    y: int  # top
    s: int  # side / diameter / base and height

    @property
    def cx(self):
        return self.x + self.s / 2


@dataclass
class Scene:
    w: int
    h: int
    background: tuple
    objects: list = field(default_factory=list)

    def pairs(self):
        return {(o.colour, o.shape) for o in self.objects}


def _apart(a, b):
    return (a.x + a.s + GAP <= b.x or b.x + b.s + GAP <= a.x or
            a.y + a.s + GAP <= b.y or b.y + b.s + GAP <= a.y)


def make_scene(rng):
    """One scene from rng (a random.Random). Placement retries until every
    object fits; a scene that cannot place its objects is drawn again."""
    while True:
        w, h = rng.randint(64, 128), rng.randint(64, 128)
        bg = rng.choice(BACKGROUNDS)
        n = rng.randint(1, 4)
        pairs = rng.sample(PAIRS, n)
        objs = []
        for colour, shape in pairs:
            s = rng.randint(16, 32)
            for _ in range(200):
                o = Obj(colour, shape, rng.randint(0, w - s), rng.randint(0, h - s), s)
                if all(_apart(o, p) for p in objs):
                    objs.append(o)
                    break
            else:
                break
        if len(objs) == n:
            return Scene(w, h, bg, objs)


def render(scene):
    img = Image.new("RGB", (scene.w, scene.h), scene.background)
    d = ImageDraw.Draw(img)
    for o in scene.objects:
        c = COLOURS[o.colour]
        box = [o.x, o.y, o.x + o.s - 1, o.y + o.s - 1]
        if o.shape == "circle":
            d.ellipse(box, fill=c)
        elif o.shape == "square":
            d.rectangle(box, fill=c)
        else:
            d.polygon([(o.x, o.y + o.s - 1), (o.x + o.s - 1, o.y + o.s - 1),
                       (o.x + (o.s - 1) / 2, o.y)], fill=c)
    return img


def article(colour):
    return "an" if colour[0] in "aeiou" else "a"


def phrase(colour, shape):
    return f"{article(colour)} {colour} {shape}"


def describe_answer(scene):
    """Objects left to right by centre x (top first when two centres share
    an x, which the image shows, unlike the order they were placed in):
    'There is a, b and c.'"""
    order = sorted(scene.objects, key=lambda o: (o.cx, o.y + o.s / 2))
    ps = [phrase(o.colour, o.shape) for o in order]
    body = ps[0] if len(ps) == 1 else ", ".join(ps[:-1]) + " and " + ps[-1]
    return f"There is {body}."


def yesno_question(colour, shape):
    return f"Is there {phrase(colour, shape)}?"


def make_task(rng, scene, p_describe=0.5):
    """(question, target answer) for a scene: a description, or a yes/no
    question that is about an absent pair half of the time."""
    if rng.random() < p_describe:
        return rng.choice(DESCRIBE_QUESTIONS), describe_answer(scene)
    present = scene.pairs()
    if rng.random() < 0.5:
        c, s = rng.choice(sorted(present))
        return yesno_question(c, s), "Yes."
    c, s = rng.choice([p for p in PAIRS if p not in present])
    return yesno_question(c, s), "No."
