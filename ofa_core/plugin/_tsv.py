"""Random access to big image TSVs through a byte-offset index cached beside them.

MUGE ships 55k images as one `image_id<TAB>base64` TSV; reading it whole into memory (as
the older ports do) costs gigabytes.  The index maps each key to the byte offset and line
number of its row, is built once in a streaming pass, and is rebuilt when the TSV's size or
modification time changes.  Memory then grows with the number of rows, not with their bytes.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import orjson

from ofa_core._errors import OFAError

logger = logging.getLogger(__name__)
INDEX_SUFFIX = ".ofaidx"
_VERSION = 1


class TsvError(OFAError):
    """A TSV file is missing or unreadable."""


class TsvIndex:
    """`index[key] -> list of column strings` for a TSV keyed by one column; opened lazily per process."""

    def __init__(self, path: str | os.PathLike, key_column: int = 0) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise TsvError(f"{self.path}: no such file; check the path in the recipe's data section")
        self.key_column = key_column
        self.duplicates = 0
        self._offsets: dict[str, tuple[int, int]] = self._load_or_build()
        self._handle = None

    @property
    def cache_path(self) -> Path:
        return self.path.with_name(self.path.name + INDEX_SUFFIX)

    def _signature(self) -> dict:
        stat = self.path.stat()
        return {"version": _VERSION, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "key_column": self.key_column}

    def _load_or_build(self) -> dict[str, tuple[int, int]]:
        signature = self._signature()
        try:
            cached = orjson.loads(self.cache_path.read_bytes())
            if cached.get("signature") == signature:
                return {key: tuple(value) for key, value in cached["offsets"].items()}
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError):
            pass
        offsets = self._build()
        payload = orjson.dumps({"signature": signature, "offsets": offsets})
        temporary = self.cache_path.with_name(self.cache_path.name + f".tmp{os.getpid()}")
        try:
            temporary.write_bytes(payload)
            os.replace(temporary, self.cache_path)
        except OSError as error:  # a read-only data folder still works, just without the cache
            logger.warning("%s: could not cache the row index (%s); it will be rebuilt next time", self.path, error)
            temporary.unlink(missing_ok=True)
        return offsets

    def _build(self) -> dict[str, tuple[int, int]]:
        offsets: dict[str, tuple[int, int]] = {}
        position = 0
        with self.path.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                fields = line.rstrip(b"\r\n").split(b"\t", self.key_column + 1)
                if len(fields) > self.key_column and fields[self.key_column]:
                    key = fields[self.key_column].decode("utf-8", errors="replace")
                    if key in offsets:
                        self.duplicates += 1
                    else:
                        offsets[key] = (position, number)
                position += len(line)
        if self.duplicates:
            logger.warning("%s: %d duplicate keys; the first row of each is used", self.path, self.duplicates)
        return offsets

    def __len__(self) -> int:
        return len(self._offsets)

    def __contains__(self, key: str) -> bool:
        return key in self._offsets

    def keys(self):
        return self._offsets.keys()

    def line_number(self, key: str) -> int:
        return self._offsets[key][1]

    def __getitem__(self, key: str) -> list[str]:
        offset, _ = self._offsets[key]
        if self._handle is None:
            self._handle = self.path.open("rb")
        self._handle.seek(offset)
        return self._handle.readline().rstrip(b"\r\n").decode("utf-8", errors="replace").split("\t")

    def __getstate__(self) -> dict:
        # DataLoader workers get their own file handle.
        return {**self.__dict__, "_handle": None}

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
