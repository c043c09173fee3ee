"""Decoding for the framework: a task's generation settings, closed answer sets and the batch decoder.

The official search itself belongs to the model (`ofa_core.model.search`, `ofa_core.model.modeling.beam_search`).
"""
