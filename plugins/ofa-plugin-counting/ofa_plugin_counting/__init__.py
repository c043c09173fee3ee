"""ofa plugin: object counting, "how many cars are there?" answered with a number from 0 to `max_count`.

Registers the `counting` task with its prompts, a JSONL reader and an accuracy metric; the loss is
the core's `label_smoothed_cross_entropy`. The answers form a closed set, so decoding never leaves
0..max_count. Importing this module does not import torch.
"""

from __future__ import annotations

import attrs

from ofa_core import plugin
from ofa_plugin_counting.metric import METRICS
from ofa_plugin_counting.reader import READERS

__version__ = "0.1.0"


@attrs.frozen(field_transformer=plugin.closed_set_fields_last)
class CountingOptions(plugin.ClosedSetOptions):
    """`task.options` of `counting`; `inference`, `top_k` and `restrict_loss` as for any closed set."""

    max_count: int = attrs.field(default=10, validator=[attrs.validators.instance_of(int), attrs.validators.ge(1)])
    """The largest count the model may answer; answers are 0..max_count."""


TASK = plugin.Task("counting", "count the objects of a kind in an image (0..max_count)", generation="vqa")


@TASK.hook
def closed_set(options: CountingOptions) -> plugin.ClosedSet:
    return options.closed_set([str(count) for count in range(options.max_count + 1)])


@TASK.hook
def preprocess(record: dict, split: str, options: CountingOptions) -> dict:
    """The count as target text; a count the closed set cannot answer is a data error, not a silent miss."""
    count = record.get("count")
    if count is None:
        if split != "test":
            raise plugin.OFAError(f"record {record.get('id')!r}: no count; every {split} record needs one")
        return {**record, "count": "", "references": []}
    if count > options.max_count:
        raise plugin.OFAError(
            f"record {record.get('id')!r}: count {count} is above task.options.max_count "
            f"({options.max_count}); raise max_count or drop the record"
        )
    return {**record, "count": str(count), "references": [str(count)]}


PROMPTS = (
    plugin.PromptTemplate(name="counting.en", lang="en", source=" how many {object} are there?", target="{count}"),
    plugin.PromptTemplate(name="counting.zh", lang="zh", source="图片中有几个{object}？", target="{count}"),
)

COMPONENTS = plugin.Components(prompts=PROMPTS, readers=READERS, metrics=METRICS, task=TASK)
COMPONENTS.install(globals())  # the ofa_register_* hooks pluggy calls, each registering its part
