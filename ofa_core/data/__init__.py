"""The generic data path: reader records -> tokenized examples -> groups -> padded batches."""

from ofa_core.data.collate import Collator, GroupDataset
from ofa_core.data.encode import Example, RecordEncoder, encode_records
from ofa_core.data.grouping import epoch_batches, group_examples

__all__ = ["Collator", "Example", "GroupDataset", "RecordEncoder", "encode_records", "epoch_batches", "group_examples"]
