"""The demo's starting point: a small OFA with random weights and a tokenizer for the demo's words.

Training from scratch needs no download: the vocabulary holds the BERT specials, printable ASCII
and every Chinese character the demo texts (and the given prompt texts) use, so nothing the demo
feeds the model becomes [UNK].
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch
from transformers.utils import logging as hf_logging

from ofa_core.demo.texts import all_text
from ofa_core.model.configuration import OFAConfig
from ofa_core.model.image_processing import OFAImageProcessor
from ofa_core.model.modeling import OFAForConditionalGeneration
from ofa_core.model.processing import OFAProcessor
from ofa_core.model.tokenization import OFATokenizer

PRESET = "ofa-demo"
CODE_DICT_SIZE = 16
"""The demo never uses image codes; a small codebook keeps the output layer small."""
_PLACEHOLDER = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")
_BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def vocabulary(extra_text: Iterable[str] = ()) -> list[str]:
    """BERT-style vocabulary: specials, printable ASCII (with `##` pieces, so English words spell out), then the
    non-ASCII characters of the demo and `extra_text`."""
    text = _PLACEHOLDER.sub("", all_text() + "".join(extra_text))
    ascii_characters = [chr(code) for code in range(33, 127)]
    others = sorted({char for char in text if ord(char) > 126 and not char.isspace()})
    return [*_BERT_SPECIALS, *ascii_characters, *(f"##{char}" for char in ascii_characters if char.isalnum()), *others]


def _processor(tokens: list[str], config: OFAConfig) -> OFAProcessor:
    with tempfile.TemporaryDirectory() as directory:
        vocab = Path(directory) / "vocab.txt"
        vocab.write_text("\n".join(tokens) + "\n", encoding="utf-8")
        tokenizer = OFATokenizer.from_bert_vocab(vocab, code_dict_size=config.code_dict_size, num_bins=config.num_bins)
    return OFAProcessor(OFAImageProcessor.from_config(config), tokenizer)


def write_initial_model(directory: Path, seed: int, extra_text: Iterable[str] = ()) -> None:
    """Save random weights of the `ofa-demo` preset with its processor: a `model.checkpoint` to train from scratch."""
    tokens = vocabulary(extra_text)
    config = OFAConfig.from_preset(PRESET, code_dict_size=CODE_DICT_SIZE)
    processor = _processor(tokens, config)
    config.vocab_size = len(processor.tokenizer)
    with torch.random.fork_rng():  # seeded weights without touching the caller's random state
        torch.manual_seed(seed)
        model = OFAForConditionalGeneration(config)
    with _no_transformers_bars():  # the demo prints its own progress; a shard bar would land in logs
        model.save_pretrained(directory)
        processor.save_pretrained(directory)


@contextlib.contextmanager
def _no_transformers_bars() -> Iterator[None]:
    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if shown:
            hf_logging.enable_progress_bar()
