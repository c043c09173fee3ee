"""Decoding restricted to a closed set of answers, through a token trie.

OFA's closed-set tasks (VQA with an answer list, classification over labels) only let the
decoder continue a known candidate: each candidate is stored as `[bos] + ids + [eos]`, and at
every step the allowed tokens are the children of the trie node the prefix reaches.  Used with
`generate(prefix_allowed_tokens_fn=...)`, which masks the rest before normalisation, as OFA does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch


class CandidateTrie:
    """Token trie over candidate sequences; `allowed(prefix)` lists the tokens that keep the prefix a candidate."""

    def __init__(self, candidates: Iterable[Sequence[int]], bos: int, eos: int) -> None:
        self.bos, self.eos = bos, eos
        self.root: dict[int, dict] = {}
        self.count = 0
        for tokens in candidates:
            node = self.root
            for token in (bos, *tokens, eos):
                node = node.setdefault(int(token), {})
            self.count += 1
        if not self.count:
            raise ValueError("a closed set needs at least one candidate")

    def allowed(self, prefix: Sequence[int]) -> list[int]:
        """Children of the node `prefix` reaches; `[eos]` once the prefix has left the trie (it then ends)."""
        node = self.root
        for token in prefix:
            node = node.get(int(token))
            if node is None:
                return [self.eos]
        return list(node) or [self.eos]

    def __call__(self, batch_id: int, prefix: torch.Tensor) -> list[int]:
        return self.allowed(prefix.tolist())
