"""OFA-OCR's label normalisation and the comparison its evaluation makes.

Labels of the Chinese OCR sets mix traditional and simplified characters and full-width forms;
the official dataset maps them onto the forms the model is trained to write, and scoring ignores
spaces, which the Chinese tokenizer does not keep.
"""

from __future__ import annotations

import unicodedata

import zhconv

OFFICIAL_MAX_CHARS = 30
"""`--max-tgt-length` default of the official task config, applied to labels as a character count."""


def normalise_label(text: str, max_chars: int = OFFICIAL_MAX_CHARS) -> str:
    """Traditional -> simplified (zhconv 'zh-hans'), NFKC, the first `max_chars` characters, lower case (that order)."""
    simplified = unicodedata.normalize("NFKC", zhconv.convert(text, "zh-hans"))
    return simplified[:max_chars].lower()


def without_spaces(text: str) -> str:
    """What OFA's OCR evaluation compares: the text with every space removed (and no surrounding blanks)."""
    return text.strip().replace(" ", "")
