"""The plugin API, the one import a plugin needs: `from ofa_core.plugin import hookimpl, TaskSpec, ...`.

Its modules are private (`_hooks`, `_specs`, ...): every public name is here, so each has one import path.
A plugin implements some of the hooks (docs/plugin-hooks.md) and registers spec classes; its readers use
the record helpers (image fields, per-split files, JSON lines, TSVs with an index, answer lists, the
bad-record policy) and raise `OFAError` for anything a user can fix. Tasks that read or write boxes use the
location-token helpers (`box_to_text`, `text_to_box`, `bin_token`, loaded with numpy on first use).
Importing this module imports neither torch nor transformers, so listing plugins and validating recipes
stay fast. The test kit that builds tiny models and runs recipes is `ofa_core.testing` (torch).
"""

from ofa_core._errors import OFAError
from ofa_core.model.lazy import lazy_exports as _lazy_exports
from ofa_core.plugin._answer_lists import read_answer_list
from ofa_core.plugin._components import DEFAULT_LOSS, TASK_HOOKS, Components, Metrics, Readers, Task
from ofa_core.plugin._hooks import PROJECT, Register, hookimpl, hookspec
from ofa_core.plugin._records import (
    BAD_RECORD_POLICIES,
    BadRecordError,
    BadRows,
    PerSplitFiles,
    SplitFilesOptions,
    SplitRow,
    UnusableRow,
    columns_option,
    decode_image,
    image_reference,
    jsonl_records,
    jsonl_rows,
    tsv_records,
    tsv_rows,
    verified_image,
    verified_image_file,
)
from ofa_core.plugin._specs import (
    CLOSED_SET_FIELDS,
    IGNORE_INDEX,
    ClosedSet,
    ClosedSetOptions,
    LossContext,
    LossOutput,
    LossSpec,
    Metric,
    MetricSpec,
    NoOptions,
    PromptTemplate,
    ReaderSpec,
    TaskSpec,
    closed_set_fields_last,
    is_options_class,
    path_option,
)
from ofa_core.plugin._summed_metric import SummedMetric
from ofa_core.plugin._tsv import TsvError, TsvIndex

__all__ = [
    "BAD_RECORD_POLICIES",
    "CLOSED_SET_FIELDS",
    "DEFAULT_LOSS",
    "IGNORE_INDEX",
    "PROJECT",
    "TASK_HOOKS",
    "BadRecordError",
    "BadRows",
    "ClosedSet",
    "ClosedSetOptions",
    "Components",
    "LossContext",
    "LossOutput",
    "LossSpec",
    "Metric",
    "MetricSpec",
    "Metrics",
    "NoOptions",
    "OFAError",
    "PerSplitFiles",
    "PromptTemplate",
    "ReaderSpec",
    "Readers",
    "Register",
    "SplitFilesOptions",
    "SplitRow",
    "SummedMetric",
    "Task",
    "TaskSpec",
    "TsvError",
    "TsvIndex",
    "UnusableRow",
    "closed_set_fields_last",
    "columns_option",
    "decode_image",
    "hookimpl",
    "hookspec",
    "image_reference",
    "is_options_class",
    "jsonl_records",
    "jsonl_rows",
    "path_option",
    "read_answer_list",
    "tsv_records",
    "tsv_rows",
    "verified_image",
    "verified_image_file",
]

# numpy only for the plugins that handle boxes: the location-token helpers load on first use.
_BOX_HELPERS, __getattr__, __dir__ = _lazy_exports(
    __name__,
    {"ofa_core.model.boxes": ("bin_token", "bins_to_box", "box_to_bins", "box_to_text", "text_to_box", "text_to_bins")},
    globals(),
)
__all__ += _BOX_HELPERS
