"""The embedded demo: generated "product photos" with Chinese captions, questions and labels, and a small
model to train from scratch, so the whole pipeline runs on a laptop CPU without any download.

The demo lives in `<cache>/demo` (`ofa_core.recipe.paths`). `python -m ofa_core demo-data` writes it; when a
recipe given to the CLI names a path inside it that does not exist yet, the CLI writes it first
(`folder.create_on_first_use`).
"""
