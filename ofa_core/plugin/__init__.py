"""Everything a plugin author needs, in one import: `from ofa_core.plugin import hookimpl, TaskSpec, ...`.

A plugin implements some of the hooks in `ofa_core.plugin.hooks` and registers the spec classes of
`ofa_core.plugin.specs`; its readers use the record helpers (image fields, per-split files, JSON lines,
TSVs with an index, answer lists, the bad-record policy) and raise `OFAError` for anything a user can
fix. Tasks that read or write boxes use the location-token helpers (`box_to_text`, `text_to_box`,
`bin_token`, loaded with numpy on first use). Importing this module imports neither torch nor
transformers, so listing plugins and validating recipes stay fast. Test helpers that build tiny models
live in `ofa_core.plugin.testing` (torch).
"""

import importlib
from typing import Any

from ofa_core.model.errors import OFAError
from ofa_core.plugin.answer_lists import read_answer_list
from ofa_core.plugin.hooks import PROJECT, Register, hookimpl, hookspec
from ofa_core.plugin.records import (
    BAD_RECORD_POLICIES,
    BadRecordError,
    BadRows,
    PerSplitFiles,
    SplitFilesOptions,
    decode_image,
    image_reference,
    jsonl_rows,
    tsv_rows,
    verified_image,
    verified_image_file,
)
from ofa_core.plugin.specs import (
    CLOSED_SET_FIELDS,
    IGNORE_INDEX,
    ClosedSet,
    ClosedSetOptions,
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
from ofa_core.plugin.tsv import TsvError, TsvIndex

__all__ = [
    "BAD_RECORD_POLICIES", "CLOSED_SET_FIELDS", "IGNORE_INDEX", "PROJECT", "BadRecordError", "BadRows", "ClosedSet",
    "ClosedSetOptions", "LossOutput", "LossSpec", "Metric", "MetricSpec", "NoOptions", "OFAError", "PerSplitFiles",
    "PromptTemplate", "ReaderSpec", "Register", "SplitFilesOptions", "TaskSpec", "TsvError", "TsvIndex",
    "closed_set_fields_last", "decode_image", "hookimpl", "hookspec", "image_reference", "is_options_class",
    "jsonl_rows", "path_option", "read_answer_list", "tsv_rows", "verified_image", "verified_image_file",
]

_BOX_HELPERS = ("bin_token", "bins_to_box", "box_to_bins", "box_to_text", "text_to_box", "text_to_bins")
__all__ += _BOX_HELPERS


def __getattr__(name: str) -> Any:
    # numpy only for the plugins that handle boxes.
    if name not in _BOX_HELPERS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module("ofa_core.model.boxes"), name)
