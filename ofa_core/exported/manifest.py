"""The manifest of an exported folder: what was exported, by which version, and each graph's sha256.

Plain JSON and hashlib, so the writer and the runtime agree on one format without importing onnx.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import attrs
import orjson

from ofa_core._errors import OFAError

MANIFEST_FILE = "manifest.json"
FORMAT = "ofa-onnx"
FORMAT_VERSION = 1
"""Bumped when a graph's inputs or outputs change meaning; the runtime refuses other versions."""
GRAPHS = {"fp32": ("encoder", "decoder_step"), "int8": ("encoder.int8", "decoder_step.int8")}
"""The graphs each precision runs, by manifest name; the file is `<name>.onnx`."""


class ExportedFolderError(OFAError):
    """An exported folder that cannot be used as it is."""


def is_exported(directory: str | Path) -> bool:
    """Whether `directory` holds an exported model (its manifest), rather than a PyTorch model or run."""
    return (Path(directory) / MANIFEST_FILE).is_file()


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


@attrs.frozen
class Manifest:
    """The fields the runtime reads; the file holds more for people (source, versions, opset)."""

    directory: Path
    data: dict

    @property
    def precisions(self) -> tuple[str, ...]:
        return tuple(name for name, graphs in GRAPHS.items() if all(g in self.data["graphs"] for g in graphs))

    def graph_path(self, name: str) -> Path:
        """The graph `name`, after checking its file against the recorded sha256."""
        entry = self.data["graphs"][name]
        path = self.directory / entry["file"]
        manifest = self.directory / MANIFEST_FILE
        if not path.is_file():
            raise ExportedFolderError(
                f"{path}: missing, but {manifest} lists it; export again with `ofa export onnx --overwrite`"
            )
        if sha256(path) != entry["sha256"]:
            raise ExportedFolderError(
                f"{path}: its sha256 does not match graphs.{name}.sha256 in {manifest} (the "
                f"file changed after export); export again with `ofa export onnx --overwrite`"
            )
        return path


def read_manifest(directory: str | Path) -> Manifest:
    directory = Path(directory)
    path = directory / MANIFEST_FILE
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise ExportedFolderError(
            f"{directory}: no {MANIFEST_FILE}; not a folder written by `ofa export onnx`"
        ) from None
    except orjson.JSONDecodeError as error:
        raise ExportedFolderError(
            f"{path}: not valid JSON ({error}); export again with `ofa export onnx --overwrite`"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("graphs"), dict):
        raise ExportedFolderError(
            f"{path}: field format: expected {FORMAT!r} with a graphs object; not a manifest "
            f"written by `ofa export onnx`"
        )
    if data.get("format_version") != FORMAT_VERSION:
        raise ExportedFolderError(
            f"{path}: field format_version: {data.get('format_version')!r}, this version reads "
            f"{FORMAT_VERSION}; export again with this version's `ofa export onnx`"
        )
    return Manifest(directory, data)
