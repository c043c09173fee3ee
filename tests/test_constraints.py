"""Closed-set decoding: the official search only ever returns candidates."""

from __future__ import annotations

import torch

from ofa_core.generation.trie import CandidateTrie
from ofa_core.testing import tiny_model


def test_trie_lists_children_and_ends_outside_the_set():
    trie = CandidateTrie([[5, 6], [5, 7, 8], [9]], bos=0, eos=2)
    assert sorted(trie.allowed([0])) == [5, 9]
    assert sorted(trie.allowed([0, 5])) == [6, 7]
    assert trie.allowed([0, 5, 6]) == [2]
    assert trie.allowed([0, 4]) == [2]
    prefix_and_longer = CandidateTrie([[5], [5, 6]], bos=0, eos=2)
    assert sorted(prefix_and_longer.allowed([0, 5])) == [2, 6]


def test_constrained_beam_search_only_emits_candidates_on_random_models():
    for seed in range(6):
        model = tiny_model(seed, vocab_size=200)
        generator = torch.Generator().manual_seed(seed)
        candidates = {
            tuple(
                torch.randint(
                    4, 200, (int(torch.randint(1, 4, (1,), generator=generator)),), generator=generator
                ).tolist()
            )
            for _ in range(5)
        }
        trie = CandidateTrie(candidates, bos=0, eos=2)
        ids = torch.randint(4, 200, (3, 6), generator=generator)
        ids[:, 0], ids[:, -1] = 0, 2
        images = torch.randn(3, 3, 64, 64, generator=generator)
        out = model.generate(
            input_ids=ids,
            patch_images=images,
            num_beams=3,
            num_return_sequences=3,
            max_new_tokens=6,
            prefix_allowed_tokens_fn=trie,
        )
        for row in out.tolist():
            body = row[1 : row.index(2, 1)]
            assert tuple(body) in candidates, (seed, row, candidates)


def test_fewer_candidates_than_beams_keeps_the_output_shape():
    model = tiny_model(0, vocab_size=200)
    trie = CandidateTrie([[5, 6]], bos=0, eos=2)
    ids = torch.tensor([[0, 10, 11, 2], [0, 12, 13, 2]])
    out = model.generate(
        input_ids=ids,
        patch_images=torch.randn(2, 3, 64, 64),
        num_beams=3,
        num_return_sequences=3,
        max_new_tokens=6,
        prefix_allowed_tokens_fn=trie,
        return_dict_in_generate=True,
    )
    assert out.sequences.shape[0] == 6
    assert out.sequences[0, :4].tolist() == [0, 5, 6, 2] and out.sequences[3, :4].tolist() == [0, 5, 6, 2]
    assert out.sequences[1, :2].tolist() == [0, 2] and out.sequences_scores[1] == float("-inf")
