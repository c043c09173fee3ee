"""Collects each benchmark's headline figures and prints them as one table at the end of the run."""

from __future__ import annotations

import pytest

FIGURES: list[str] = []


@pytest.fixture
def report():
    """`report("text")` adds a line to the end-of-run summary."""
    return FIGURES.append


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.section("figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
