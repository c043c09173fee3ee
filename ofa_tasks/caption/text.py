"""Caption text as the metrics see it: MUGE's Chinese tokenisation and the English convention.

Chinese: generated text is joined without spaces, then every CJK character is one token, a run
of ASCII letters/digits is one token and full-width punctuation is kept as its own token
(whitespace-splitting Chinese would make each caption a single "word").  English: lower case,
ASCII punctuation removed, split on whitespace, as OFA's caption evaluation does.
"""

from __future__ import annotations

import re
import string

_ZH_TOKEN = re.compile(r"[A-Za-z0-9]+|[^\sA-Za-z0-9]")
_ASCII_PUNCTUATION = str.maketrans("", "", string.punctuation)


def tokenize_zh(text: str) -> list[str]:
    """'iPhone12 手机壳，红色' -> ['iPhone12', '手', '机', '壳', '，', '红', '色']. ASCII punctuation is removed from
    the
    text first, as OFA's eval_caption removes it before its predictions are scored: '<code_12>' is one token
    'code12'."""
    return _ZH_TOKEN.findall("".join(text.translate(_ASCII_PUNCTUATION).split()))


def official_caption(text: str) -> str:
    """A caption as OFA's caption dataset keeps it for training and as a reference: ASCII punctuation removed,
    whitespace collapsed; case and full-width punctuation kept."""
    return " ".join(text.translate(_ASCII_PUNCTUATION).split())


def tokenize_en(text: str) -> list[str]:
    """'A dog, running!' -> ['a', 'dog', 'running']."""
    return text.lower().translate(_ASCII_PUNCTUATION).split()


_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef]")


def is_chinese(texts: list[str]) -> bool:
    """True when any of `texts` has a CJK character or full-width punctuation."""
    return any(_CJK.search(text) for text in texts)


TOKENIZERS = {"zh": tokenize_zh, "en": tokenize_en}
