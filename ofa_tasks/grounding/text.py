"""The referring expression as OFA's RefCOCO fine-tunes see it.

The official dataset cleans every expression, English or Chinese, with the same caption clean-up,
so a model fine-tuned there has never read upper case, '-' or '/'; feeding it raw text would be a
distribution shift at evaluation.
"""

from __future__ import annotations

import re

LEADING_PUNCTUATION = ",.!?*#:;~"
OFFICIAL_MAX_WORDS = 80
"""`--max-src-length` of the official RefCOCO scripts, which the dataset applies as a word limit."""


def clean_expression(text: str, max_words: int = OFFICIAL_MAX_WORDS) -> str:
    """Lower case, no leading punctuation, '-' and '/' as spaces, '<person>' as 'person', single spaces, at most
    `max_words` words."""
    cleaned = text.lower().lstrip(LEADING_PUNCTUATION).replace("-", " ").replace("/", " ").replace("<person>", "person")
    cleaned = re.sub(r"\s{2,}", " ", cleaned).rstrip("\n").strip(" ")
    return " ".join(cleaned.split(" ")[:max_words])
