"""The words about a scene: Chinese captions in several phrasings, questions with their answers, the class label.

Each caption template names some of the attributes, so the references of one photo agree on the
object and its colour but differ in wording, as MUGE's ten human captions of a product do.
"""

from __future__ import annotations

from ofa_core.demo.scenes import BACKGROUNDS, COLOURS, OBJECTS, PATTERNS, Scene

_PATTERN_ADJECTIVE = {"纯色": "纯色的", "条纹": "带条纹的", "圆点": "带圆点的", "格子": "格子图案的"}
_PATTERN_CLAUSE = {"纯色": "表面没有图案", "条纹": "上面有条纹", "圆点": "上面有圆点", "格子": "上面是格子图案"}

CAPTION_TEMPLATES = (
    "一个{colour}的{shape}{object}放在{background}背景上",
    "{background}背景上有一个{pattern_adjective}{colour}{object}",
    "这是一个{colour}{pattern}的{object}",
    "{colour}{object}，{pattern_clause}，{background}背景",
    "图中是一个{pattern_adjective}{colour}{object}",
)

QUESTION_TEMPLATES = {
    "colour": ("这个东西是什么颜色的?", "{colour}"),
    "object": ("图片里是什么东西?", "{object}"),
    "pattern": ("它的表面是什么图案?", "{pattern}"),
    "shape": ("这个东西是什么形状的?", "{shape}"),
    "background": ("背景是什么颜色?", "{background}"),
}


def _fields(scene: Scene) -> dict[str, str]:
    return {
        "object": scene.object,
        "shape": scene.shape,
        "colour": scene.colour,
        "pattern": scene.pattern,
        "background": scene.background,
        "pattern_adjective": _PATTERN_ADJECTIVE[scene.pattern],
        "pattern_clause": _PATTERN_CLAUSE[scene.pattern],
    }


def captions(scene: Scene) -> list[str]:
    """Every phrasing of the scene, in template order."""
    fields = _fields(scene)
    return [template.format(**fields) for template in CAPTION_TEMPLATES]


def questions(scene: Scene) -> list[tuple[str, str]]:
    """(question, answer) pairs, one per asked attribute, in template order."""
    fields = _fields(scene)
    return [(question, answer.format(**fields)) for question, answer in QUESTION_TEMPLATES.values()]


def label(scene: Scene) -> str:
    """The classification label: the product's category."""
    return scene.object


LABELS = tuple(OBJECTS)
ANSWERS = tuple(dict.fromkeys([*COLOURS, *OBJECTS, *PATTERNS, *OBJECTS.values(), *BACKGROUNDS]))
"""Every answer a demo question can have: the candidate list of closed-set VQA."""


def all_text() -> str:
    """Every character a caption, question, answer or label can contain (the demo vocabulary's source)."""
    words = [
        *OBJECTS,
        *OBJECTS.values(),
        *COLOURS,
        *PATTERNS,
        *BACKGROUNDS,
        *_PATTERN_ADJECTIVE.values(),
        *_PATTERN_CLAUSE.values(),
        *CAPTION_TEMPLATES,
        *(q for q, _ in QUESTION_TEMPLATES.values()),
    ]
    return "".join(words)
