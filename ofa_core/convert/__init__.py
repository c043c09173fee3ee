"""Checkpoint conversion: official fairseq `.pt` files and the published transformers ports to
ofa_core model directories, and ofa_core directories back to the fairseq layout."""
