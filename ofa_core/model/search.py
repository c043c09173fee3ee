"""The official search settings: fairseq's knobs under fairseq's names, and each task's values.

Plain data with no torch or transformers import, so recipes can check a search name cheaply;
`ofa_core.model.generation_config` turns settings into transformers `GenerationConfig`s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SearchSettings:
    """fairseq's generation knobs, under fairseq's names.

    max_len_b: tokens before the forced EOS (the output holds at most max_len_b + 1 tokens).
    min_len: EOS is banned for the first min_len steps.
    """

    beam: int = 5
    max_len_a: float = 0.0
    max_len_b: int = 200
    min_len: int = 1
    lenpen: float = 1.0
    normalize_scores: bool = True
    no_repeat_ngram_size: int = 0
    unk_penalty: float = 0.0
    num_return_sequences: int = 1

    @classmethod
    def from_generation_config(cls, config: Any) -> SearchSettings:
        """Read a `GenerationConfig` (ours or a plain transformers one) as fairseq settings."""
        if config.max_new_tokens is not None:
            max_len_b = config.max_new_tokens - 1
        else:
            max_len_b = config.max_length - 2  # max_length counts the start token and the EOS
        if config.min_new_tokens is not None:
            min_len = config.min_new_tokens
        else:
            min_len = max((config.min_length or 0) - 1, 0)
        return cls(
            beam=config.num_beams or 1,
            max_len_a=getattr(config, "max_len_a", 0.0),
            max_len_b=max(max_len_b, 0),
            min_len=min_len,
            lenpen=config.length_penalty if config.length_penalty is not None else 1.0,
            normalize_scores=getattr(config, "normalize_scores", True),
            no_repeat_ngram_size=config.no_repeat_ngram_size or 0,
            unk_penalty=getattr(config, "unk_penalty", 0.0),
            num_return_sequences=config.num_return_sequences or 1,
        )


# fairseq `OFATask.build_generator` defaults, then the evaluation scripts' overrides.
OFFICIAL_SEARCH: dict[str, SearchSettings] = {
    "default": SearchSettings(beam=5, max_len_b=200, min_len=1),
    "caption": SearchSettings(beam=5, max_len_b=16, min_len=1, no_repeat_ngram_size=3),
    "caption-huge": SearchSettings(beam=10, max_len_b=16, min_len=1, lenpen=0.98, no_repeat_ngram_size=3),
    "caption-zh": SearchSettings(beam=8, max_len_b=128, min_len=1, no_repeat_ngram_size=3),
    "vqa": SearchSettings(beam=5, max_len_b=200, min_len=1, normalize_scores=False),
    "grounding": SearchSettings(beam=5, max_len_b=4, min_len=4, no_repeat_ngram_size=3),
    "ocr-zh": SearchSettings(beam=5, max_len_b=64, min_len=1),
    "summarization": SearchSettings(beam=6, max_len_b=32, min_len=1, lenpen=0.7, no_repeat_ngram_size=3),
}

# fairseq task names of the official checkpoints -> their evaluation search. The evaluate scripts of snli_ve and
# image_classify set no search flags (they score every candidate answer), and GLUE has no evaluate script (its
# prediction is an arg-max over label tokens), so those tasks keep the `default` entry.
_FAIRSEQ_TASKS = {
    "caption": "caption",
    "vqa_gen": "vqa",
    "refcoco": "grounding",
    "ocr": "ocr-zh",
    "gigaword": "summarization",
}


def search_for_language(name: str, language: str | None) -> str:
    """`name`'s settings for `language` where the official scripts differ by language ('caption' -> 'caption-zh')."""
    specific = f"{name}-{language}"
    return specific if language and specific in OFFICIAL_SEARCH else name


def official_task_search(fairseq_task: str | None, language: str, arch: str | None = None) -> str:
    """Which `OFFICIAL_SEARCH` entry a checkpoint fine-tuned for `fairseq_task` is evaluated with.

    `arch` (fairseq's `ofa_huge`, ...) picks a size's own entry where its script differs ('caption-huge').
    """
    name = search_for_language(_FAIRSEQ_TASKS.get(fairseq_task or "", "default"), language)
    sized = f"{name}-{(arch or '').removeprefix('ofa_')}"
    return sized if arch and sized in OFFICIAL_SEARCH else name


def special_token_ids(config: Any) -> dict[str, int]:
    """The ids a `GenerationConfig` must carry, read from a model config."""
    names = ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id")
    return {name: getattr(config, name) for name in names}
