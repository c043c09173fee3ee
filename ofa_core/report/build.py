"""The report page: sections of cards (one per task), a summary and a run's curves, rendered into one HTML file."""

from __future__ import annotations

import datetime
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import jinja2

from ofa_core.inference.machine import describe, one_line
from ofa_core.report import DEFAULT_LIMIT
from ofa_core.report.cards import Card, card
from ofa_core.report.curves import read_curves, svg
from ofa_core.report.thumbnails import thumbnail

HERE = Path(__file__).parent


@attrs.frozen
class Section:
    """One task's evaluation: its rows, the records they came from (by id, for images and prompts) and its facts."""

    label: str
    """The task's label in a mixture, '' for a single task."""
    task: str
    rows: Sequence[Mapping[str, Any]]
    records: Mapping[str, Mapping[str, Any]]
    """Each row's record (after the task's preprocess), keyed by `str(id)`."""
    prompt: str
    """The prompt template's source (`str.format` over a record), shown as each card's prompt."""
    scores: Mapping[str, float]
    """The task's metric values (unprefixed)."""
    score_name: str | None = None
    """What a row's `score` is (e.g. 'caption: cider'); None when the rows carry no score."""
    higher_is_better: bool = True
    meta: Mapping[str, Any] = attrs.field(factory=dict)
    """The predictions file's meta: checkpoint, split, precision, machine..."""


def prompt_text(template: str, record: Mapping[str, Any]) -> str:
    """The prompt a record was given; the template itself when a field is missing (an older file's record)."""
    try:
        return template.format(**record).strip()
    except (KeyError, IndexError, ValueError, AttributeError):
        return template.strip()


def worst_first(section: Section) -> list[Mapping[str, Any]]:
    """Rows ordered worst first by `score` (rows without one last), ties by position."""
    sign = 1.0 if section.higher_is_better else -1.0
    scored = [
        (sign * row["score"], index)
        for index, row in enumerate(section.rows)
        if isinstance(row.get("score"), (int, float))
    ]
    unscored = [index for index, row in enumerate(section.rows) if not isinstance(row.get("score"), (int, float))]
    return [section.rows[index] for _, index in sorted(scored)] + [section.rows[index] for index in unscored]


def cards(section: Section, limit: int) -> list[Card]:
    """The section's first `limit` rows, worst first, as cards; an image shared by rows is shrunk once."""
    made: dict[Any, Any] = {}
    result = []
    for row in worst_first(section)[:limit]:
        record = section.records.get(str(row.get("id")), {})
        image = record.get("image")
        key = (
            record.get("image_id")
            if record.get("image_id") is not None
            else (image if isinstance(image, (str, bytes)) else id(image))
        )
        if key not in made:
            made[key] = thumbnail(image)
        result.append(card(row, prompt_text(section.prompt, record), made[key], image is not None))
    return result


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "page"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["number"] = lambda value: f"{value:,.2f}" if isinstance(value, float) else str(value)
    return environment


def render(
    sections: Sequence[Section],
    *,
    run_dir: Path | None = None,
    limit: int = DEFAULT_LIMIT,
    title: str = "OFA evaluation report",
) -> str:
    """The whole page as one HTML string: styles, script, thumbnails and curves inline."""
    curves = []
    if run_dir is not None and (run_dir / "log.jsonl").is_file():
        curves = [svg(curve) for curve in read_curves(run_dir / "log.jsonl") if curve.points]
    machine = next((section.meta["machine"] for section in sections if section.meta.get("machine")), None) or describe()
    meta = sections[0].meta if sections else {}
    page = _environment().get_template("report.html")
    return page.render(
        title=title,
        sections=[
            {"section": section, "cards": cards(section, limit), "anchor": f"task-{index}"}
            for index, section in enumerate(sections)
        ],
        limit=limit,
        curves=curves,
        run_dir=str(run_dir) if run_dir else None,
        machine=one_line(machine),
        checkpoint=meta.get("checkpoint", "?"),
        split=meta.get("split", "?"),
        precision=meta.get("precision", "?"),
        built=datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        style=(HERE / "page" / "report.css").read_text(),
        script=(HERE / "page" / "report.js").read_text(),
    )


def write(sections: Sequence[Section], out: str | Path, **options: Any) -> Path:
    """Render the page and write it atomically (a half-written report never replaces a whole one)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.{os.getpid()}.partial")
    partial.write_text(render(sections, **options), encoding="utf-8")
    partial.replace(out)
    return out
