"""How big a demo to generate; light to import, so `ofa demo-data --help` shows the defaults without torch."""

from __future__ import annotations

import attrs

from ofa_core.demo import texts


@attrs.frozen
class DemoSizes:
    """How much to generate. Training photos carry `train_captions` captions and `train_questions` questions
    (rotating through the phrasings); validation photos carry every phrasing as references.

    Many photos with one caption each teach the image side faster than few photos with many captions."""

    train_images: int = attrs.field(default=3000, validator=attrs.validators.gt(0))
    valid_images: int = attrs.field(default=60, validator=attrs.validators.gt(0))
    train_captions: int = attrs.field(
        default=1, validator=[attrs.validators.gt(0), attrs.validators.le(len(texts.CAPTION_TEMPLATES))]
    )
    train_questions: int = attrs.field(
        default=2, validator=[attrs.validators.gt(0), attrs.validators.le(len(texts.QUESTION_TEMPLATES))]
    )
    seed: int = 0
