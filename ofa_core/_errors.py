"""User-facing errors.

Anything a user can fix (a bad path, a corrupt checkpoint, a missing file) raises
`OFAError`; the CLI prints its message as one line and exits with status 2, so the
message itself must name the file or field and say what to do.
"""

from __future__ import annotations


class OFAError(Exception):
    """Base class of errors caused by user input; `str()` is one line naming the culprit and the fix."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))
