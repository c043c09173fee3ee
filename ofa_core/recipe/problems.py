"""Several mistakes of one recipe reported together, so a user fixes them in one pass instead of one per run."""

from __future__ import annotations

from collections.abc import Sequence

from ofa_core._errors import OFAError


class RecipeProblems(OFAError):
    """Every mistake found in a recipe; `problems` holds one one-line `OFAError` each, in the order found.

    `str()` joins them with '; ' for callers that print one line; `ofa recipe validate` and `ofa run` print
    one line per problem."""

    def __init__(self, problems: Sequence[OFAError]) -> None:
        super().__init__("; ".join(map(str, problems)))
        self.problems = tuple(problems)


def raise_problems(problems: Sequence[OFAError]) -> None:
    """Nothing when there are none; one problem as itself (its own type, e.g. `MissingRecipePath`); else all."""
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise RecipeProblems(problems)


def problems_of(error: OFAError) -> tuple[OFAError, ...]:
    """The single problems inside `error`."""
    return error.problems if isinstance(error, RecipeProblems) else (error,)
