"""Decoding: the fairseq-faithful beam search, official per-task settings, int8 fast mode."""

from ofa_core.generation.beam_search import BeamSearch, Hypothesis, SearchSettings
from ofa_core.generation.defaults import OFFICIAL_SEARCH, generation_config_for, to_search_settings

__all__ = [
    "OFFICIAL_SEARCH",
    "BeamSearch",
    "Hypothesis",
    "SearchSettings",
    "generation_config_for",
    "to_search_settings",
]
