"""Read fairseq / PyTorch checkpoints without running code from the file.

A `.pt` file is a pickle, and a pickle may name any importable callable. Official
OFA checkpoints only need tensors, containers, `argparse.Namespace`, numpy scalars
and a few fairseq/OmegaConf objects outside the weights. `load_checkpoint` passes
torch a restricted unpickler: the containers and tensor rebuilders it needs are
allowed by exact name, fairseq/OmegaConf classes become inert `Stub` records (so
fairseq need not be installed and nothing of theirs runs), and every other name
is refused before anything is called.
"""

from __future__ import annotations

import _compat_pickle
import argparse
import builtins
import collections
import importlib
import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from ofa_core._errors import OFAError


class CheckpointError(OFAError):
    """A checkpoint file is missing, unreadable or not what the command expects."""


class UnsafeCheckpointError(CheckpointError):
    """The pickle asks for a global outside the allowlist; nothing of it was executed."""


class Stub:
    """Inert stand-in for a fairseq / OmegaConf object: records its arguments and state, runs nothing."""

    qualname = "Stub"

    def __new__(cls, *args: Any, **kwargs: Any) -> Stub:
        obj = super().__new__(cls)
        obj.args = args
        obj.state = None
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<{self.qualname} (not loaded)>"


# Module prefixes whose classes are recorded as stubs: fairseq's meters/configs/enums, OmegaConf
# containers, and the OFA repository's own packages that its dataclass configs live in.
_STUB_PREFIXES = ("fairseq.", "fairseq_cli.", "omegaconf.", "tasks.", "models.", "criterions.")

# Types that pickles name as globals (sets, or `type` values such as OmegaConf's `object_type=dict`).
_BUILTINS = {
    "set",
    "frozenset",
    "bytearray",
    "complex",
    "slice",
    "list",
    "dict",
    "tuple",
    "int",
    "float",
    "str",
    "bool",
    "bytes",
}

_TORCH_REBUILDERS = {
    ("torch._utils", "_rebuild_tensor"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"),
    ("torch", "Size"),
    ("torch", "device"),
}

_NUMPY = {
    ("numpy", "dtype"): ("numpy", "dtype"),
    ("numpy", "ndarray"): ("numpy", "ndarray"),
    ("numpy.core.multiarray", "scalar"): ("numpy._core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"): ("numpy._core.multiarray", "scalar"),
    ("numpy.core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
}

_stub_classes: dict[str, type[Stub]] = {}


def _stub_class(module: str, name: str) -> type[Stub]:
    qualname = f"{module}.{name}"
    if qualname not in _stub_classes:
        _stub_classes[qualname] = type(name, (Stub,), {"qualname": qualname})
    return _stub_classes[qualname]


def resolve_global(module: str, name: str) -> Any:
    """The object an allowed pickle global stands for; raises `pickle.UnpicklingError` for anything else."""
    # Protocol <= 2 pickles use Python 2 names (`__builtin__.long` for int); translate as pickle itself does.
    if (module, name) in _compat_pickle.NAME_MAPPING:
        module, name = _compat_pickle.NAME_MAPPING[(module, name)]
    module = _compat_pickle.IMPORT_MAPPING.get(module, module)
    if (module, name) == ("argparse", "Namespace"):
        return argparse.Namespace
    if module == "collections" and name in ("OrderedDict", "defaultdict"):
        # A defaultdict's factory is itself a pickled global, so it passes through this allowlist too.
        return getattr(collections, name)
    if module == "builtins" and name in _BUILTINS:
        return getattr(builtins, name)
    if (module, name) == ("_codecs", "encode"):
        # Protocol-2 pickles spell bytes as _codecs.encode(text, "latin1").
        return _latin1_encode
    if (module, name) in _TORCH_REBUILDERS:
        return getattr(importlib.import_module(module), name)
    if module == "torch" and isinstance(vars(torch).get(name), torch.dtype):
        return vars(torch)[name]
    if (module, name) in _NUMPY:
        target_module, target_name = _NUMPY[(module, name)]
        return getattr(importlib.import_module(target_module), target_name)
    if module == "numpy.dtypes" and name.endswith("DType"):
        return getattr(importlib.import_module("numpy.dtypes"), name)
    if module.startswith(_STUB_PREFIXES) or (module, name) == ("typing", "Any"):
        return _stub_class(module, name)
    raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed")


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r} is not allowed")
    return text.encode("latin1")


class RestrictedUnpickler(pickle.Unpickler):
    """`pickle.Unpickler` whose globals come only from `resolve_global`."""

    def find_class(self, module: str, name: str) -> Any:
        return resolve_global(module, name)


class _RestrictedPickleModule:
    """The subset of the `pickle` module interface `torch.load` uses."""

    Unpickler = RestrictedUnpickler
    __name__ = "ofa_core.convert.safe_load"

    @staticmethod
    def load(file: Any, **kwargs: Any) -> Any:
        return RestrictedUnpickler(file, **kwargs).load()


def load_checkpoint(path: str | Path) -> Any:
    """Unpickle a `torch.save` file (zip or legacy format) on the CPU through the allowlist.

    Raises `UnsafeCheckpointError` when the file names a disallowed global, `CheckpointError`
    when it is missing, truncated or not a checkpoint at all.
    """
    file = Path(path)
    if not file.is_file():
        raise CheckpointError(f"{file}: no such file; pass the path of a .pt checkpoint")
    try:
        with open(file, "rb") as handle:
            mmap = zipfile.is_zipfile(handle)
            handle.seek(0)
        # The pickle stream is interpreted by our unpickler only, so weights_only's own filter is off.
        return torch.load(
            file, map_location="cpu", pickle_module=_RestrictedPickleModule, weights_only=False, mmap=mmap
        )
    except pickle.UnpicklingError as error:
        if "is not allowed" in str(error):
            raise UnsafeCheckpointError(
                f"{file}: refused to load: the pickle asks for {str(error).split(' is not')[0]}, which OFA "
                "checkpoints never contain; nothing from it was run. Only load files from sources you trust"
            ) from error
        raise _unreadable(file, error) from error
    except OFAError:
        raise
    except (
        RuntimeError,
        EOFError,
        ValueError,
        TypeError,
        KeyError,
        AttributeError,
        IndexError,
        OSError,
        zipfile.BadZipFile,
        io.UnsupportedOperation,
    ) as error:
        raise _unreadable(file, error) from error


def _unreadable(file: Path, error: BaseException) -> CheckpointError:
    detail = (str(error).strip().splitlines() or [type(error).__name__])[0].split(". ")[0][:200]
    return CheckpointError(
        f"{file}: not a readable PyTorch checkpoint ({type(error).__name__}: {detail}); the file is truncated or "
        "corrupt: download it again"
    )


def plain(value: Any) -> Any:
    """Turn Namespaces, OmegaConf stubs and enum stubs into plain dicts / lists / scalars for config reading."""
    if isinstance(value, argparse.Namespace):
        return {key: plain(item) for key, item in vars(value).items()}
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, Stub):
        state = value.state
        if isinstance(state, dict) and "_content" in state:  # OmegaConf DictConfig / ListConfig
            return plain(state["_content"])
        if isinstance(state, dict) and "_val" in state:  # OmegaConf value node
            return plain(state["_val"])
        if value.args and len(value.args) == 1 and state is None:  # Enum member: Cls(value)
            return plain(value.args[0])
        return plain(state) if state is not None else None
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        return value.tolist()
    return value
