"""Position ids and relative-position buckets of OFA.

OFA adds no absolute position embedding to its inputs; positions enter every
attention layer as biases.  The bucket formulas below reproduce fairseq's
`token_rp_bucket` / `image_rp_bucket` tables exactly, computed on demand so the
model carries no 67 MB of index buffers.
"""

from __future__ import annotations

import math

import torch


def text_relative_buckets(
    query_positions: torch.Tensor, key_positions: torch.Tensor, bucket_size: int, max_position: int
) -> torch.Tensor:
    """Row index into a text relative-position table for every (query, key) pair.

    Distances up to `bucket_size // 2` get their own bucket; longer ones share
    log-spaced buckets.  The float32 arithmetic mirrors the official table.
    """
    relative = query_positions[:, None] - key_positions[None, :]
    sign = torch.sign(relative)
    mid = bucket_size // 2
    abs_pos = torch.where((relative < mid) & (relative > -mid), mid - 1, relative.abs())
    log_pos = torch.ceil(torch.log(abs_pos / mid) / math.log((max_position - 1) / mid) * (mid - 1)) + mid
    bucket = torch.where(abs_pos.le(mid), relative, log_pos.int() * sign).long()
    return bucket + bucket_size - 1


def image_position_ids(height: int, width: int, bucket_size: int, device=None) -> torch.Tensor:
    """Row-major patch ids `1 + row * bucket_size + col` (id 0 is reserved)."""
    rows = torch.arange(height, device=device)[:, None] * bucket_size
    cols = torch.arange(width, device=device)[None, :]
    return (rows + cols + 1).flatten()


def image_relative_buckets(query_ids: torch.Tensor, key_ids: torch.Tensor, bucket_size: int) -> torch.Tensor:
    """Row index into an image relative-position table for every (query, key) patch pair.

    2-D offsets map to `(dr + B - 1) * (2B - 1) + (dc + B - 1)`; the reserved id 0
    gets the three extra rows at the end of the table.
    """
    span = 2 * bucket_size - 1
    num_relative = span * span + 3
    q = (query_ids - 1).clamp(min=0)
    k = (key_ids - 1).clamp(min=0)
    d_row = q[:, None] // bucket_size - k[None, :] // bucket_size
    d_col = q[:, None] % bucket_size - k[None, :] % bucket_size
    bucket = (d_row + bucket_size - 1) * span + (d_col + bucket_size - 1)
    q_special = (query_ids == 0)[:, None]
    k_special = (key_ids == 0)[None, :]
    bucket = torch.where(q_special, num_relative - 3, bucket)
    bucket = torch.where(k_special, num_relative - 2, bucket)
    return torch.where(q_special & k_special, num_relative - 1, bucket)


def num_image_relative_buckets(bucket_size: int) -> int:
    return (2 * bucket_size - 1) ** 2 + 3


def token_bucket_table(bucket_size: int, max_position: int) -> torch.Tensor:
    """The full `[max_position, max_position]` table fairseq stores as `token_rp_bucket`."""
    positions = torch.arange(max_position)
    return text_relative_buckets(positions, positions, bucket_size, max_position)


def image_bucket_table(bucket_size: int) -> torch.Tensor:
    """The full `[B*B+1, B*B+1]` table fairseq stores as `image_rp_bucket`."""
    ids = torch.arange(bucket_size * bucket_size + 1)
    return image_relative_buckets(ids, ids, bucket_size)
