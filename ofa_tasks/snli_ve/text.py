"""OFA's caption clean-up (`pre_caption`) and SNLI-VE's label words."""

from __future__ import annotations

import re

LABEL_WORDS = {"contradiction": "no", "entailment": "yes", "neutral": "maybe"}
"""SNLI-VE labels -> the words OFA's fine-tunes answer with."""

ANSWERS = ("no", "yes", "maybe")
"""The candidates in OFA's `ans2label_dict` order (`{"no": 0, "yes": 1, "maybe": 2}`)."""

OFFICIAL_MAX_WORDS = 80
"""Words kept of the premise and the hypothesis (`--max-src-length` of the official scripts)."""


def clean_caption(text: str, max_words: int = OFFICIAL_MAX_WORDS) -> str:
    """Lower case, no leading punctuation, '-' and '/' as spaces, '<person>' as 'person', spaces collapsed, cut to
    `max_words`."""
    text = text.lower().lstrip(",.!?*#:;~").replace("-", " ").replace("/", " ").replace("<person>", "person")
    text = re.sub(r"\s{2,}", " ", text).rstrip("\n").strip(" ")
    return " ".join(text.split(" ")[:max_words])
