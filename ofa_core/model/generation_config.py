"""Official search settings as transformers `GenerationConfig`s.

transformers' own defaults (max_length 20, min_length 0) silently differ from OFA's; these
reproduce the official evaluation scripts.
"""

from __future__ import annotations

from transformers import GenerationConfig

from ofa_core.model.search import OFFICIAL_SEARCH, SearchSettings


def as_generation_config(settings: SearchSettings, **ids: int) -> GenerationConfig:
    """transformers counts the EOS among new tokens, fairseq's `max_len_b` does not: hence the +1."""
    return GenerationConfig(
        num_beams=settings.beam,
        max_new_tokens=settings.max_len_b + 1,
        min_new_tokens=settings.min_len,
        length_penalty=settings.lenpen,
        no_repeat_ngram_size=settings.no_repeat_ngram_size,
        num_return_sequences=settings.num_return_sequences,
        normalize_scores=settings.normalize_scores,
        max_len_a=settings.max_len_a,
        unk_penalty=settings.unk_penalty,
        early_stopping=True,
        **ids,
    )


def official_generation_config(name: str, **ids: int) -> GenerationConfig:
    """The official search `name` (a key of `OFFICIAL_SEARCH`) as a `GenerationConfig`."""
    if name not in OFFICIAL_SEARCH:
        raise KeyError(f"no official search settings for {name!r}; known: {', '.join(sorted(OFFICIAL_SEARCH))}")
    return as_generation_config(OFFICIAL_SEARCH[name], **ids)
