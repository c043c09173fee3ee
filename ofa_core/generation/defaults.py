"""The official search settings per task, as transformers `GenerationConfig`s.

transformers' own defaults (max_length 20, min_length 0) silently differ from OFA's;
these reproduce the official evaluation scripts.
"""

from __future__ import annotations

from transformers import GenerationConfig

from ofa_core.generation.beam_search import SearchSettings

# fairseq `OFATask.build_generator` defaults, then the evaluation scripts' overrides.
OFFICIAL_SEARCH: dict[str, SearchSettings] = {
    "default": SearchSettings(beam=5, max_len_b=200, min_len=1),
    "caption": SearchSettings(beam=5, max_len_b=16, min_len=1, no_repeat_ngram_size=3),
    "caption-zh": SearchSettings(beam=8, max_len_b=128, min_len=1, no_repeat_ngram_size=3),
    "vqa": SearchSettings(beam=5, max_len_b=200, min_len=1, normalize_scores=False),
    "grounding": SearchSettings(beam=5, max_len_b=4, min_len=4, no_repeat_ngram_size=3),
    "ocr-zh": SearchSettings(beam=5, max_len_b=64, min_len=1),
}


# fairseq task names of the official checkpoints -> their evaluation search.
_FAIRSEQ_TASKS = {"caption": "caption", "vqa_gen": "vqa", "refcoco": "grounding", "ocr": "ocr-zh"}


def search_for_language(name: str, language: str | None) -> str:
    """`name`'s settings for `language` where the official scripts differ by language ('caption' -> 'caption-zh')."""
    specific = f"{name}-{language}"
    return specific if language and specific in OFFICIAL_SEARCH else name


def official_task_search(fairseq_task: str | None, language: str) -> str:
    """Which `OFFICIAL_SEARCH` entry a checkpoint fine-tuned for `fairseq_task` is evaluated with."""
    return search_for_language(_FAIRSEQ_TASKS.get(fairseq_task or "", "default"), language)


def to_generation_config(settings: SearchSettings, **ids) -> GenerationConfig:
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


def special_token_ids(config) -> dict[str, int]:
    """The ids a `GenerationConfig` must carry, read from a model config."""
    names = ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id")
    return {name: getattr(config, name) for name in names}


def generation_config_for(task: str, **ids) -> GenerationConfig:
    """The official search for `task` (see `OFFICIAL_SEARCH`) as a `GenerationConfig`."""
    if task not in OFFICIAL_SEARCH:
        raise KeyError(f"no official search settings for {task!r}; known: {', '.join(sorted(OFFICIAL_SEARCH))}")
    return to_generation_config(OFFICIAL_SEARCH[task], **ids)


def generation_config_from(value: str | dict, **ids) -> GenerationConfig:
    """An official search by name, or GenerationConfig keyword arguments refining the `default` search."""
    if isinstance(value, str):
        return generation_config_for(value, **ids)
    config = generation_config_for("default", **ids)
    config.update(**value)
    return config


def to_search_settings(config: GenerationConfig) -> SearchSettings:
    """Read a `GenerationConfig` (ours or a plain transformers one) as fairseq settings."""
    if config.max_new_tokens is not None:
        max_len_b = config.max_new_tokens - 1
    else:
        max_len_b = config.max_length - 2  # max_length counts the start token and the EOS
    if config.min_new_tokens is not None:
        min_len = config.min_new_tokens
    else:
        min_len = max((config.min_length or 0) - 1, 0)
    return SearchSettings(
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
