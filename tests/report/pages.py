"""A written report read back as the held-out check reads it: each task's section with its cards and what each
card shows, so tests assert on the page's parts rather than on counts of markup."""

from __future__ import annotations

import html as markup
import re

SECTION = re.compile(r'<section class="task"[^>]*>\s*<h2>(.*?)</h2>\s*<p class="counts">(.*?)</p>(.*?)</section>', re.S)
CARD = re.compile(r"<article ([^>]*)>(.*?)</article>", re.S)


def _text(pattern: str, body: str) -> str | None:
    found = re.search(pattern, body, re.S)
    return markup.unescape(found.group(1)) if found else None


def _references(card: str) -> str:
    found = re.search(r'<ul class="references">(.*?)</ul>', card, re.S)
    return found.group(1) if found else ""


def read_sections(page: str) -> list[dict]:
    """[{title, counts, cards: [{id, score, image, prompt, prediction, references, score_shown, boxes}]}]."""
    sections = []
    for title, counts, body in SECTION.findall(page):
        cards = []
        for attributes, card in CARD.findall(body):
            data = dict(re.findall(r'data-(id|score)="([^"]*)"', attributes))
            cards.append(
                {
                    "id": markup.unescape(data["id"]),
                    "score": float(data["score"]) if data["score"] else None,
                    "image": "data:image/jpeg;base64," in card,
                    "prompt": _text(r'<dd class="prompt">(.*?)</dd>', card),
                    "prediction": _text(r'<dd class="prediction">(.*?)</dd>', card),
                    "references": [markup.unescape(item) for item in re.findall(r"<li>(.*?)</li>", _references(card))],
                    "score_shown": _text(r'<dd class="score">([\d.]+)', card),
                    "boxes": (card.count('class="predicted"'), card.count('class="reference"')),
                }
            )
        sections.append({"title": markup.unescape(title), "counts": " ".join(counts.split()), "cards": cards})
    return sections


def assert_complete_and_worst_first(section: dict, images: bool = True) -> None:
    """Every card shows its image (or none, for a text-only task), prediction, references and score, and the
    first card has the section's lowest score, the rest in order."""
    for card in section["cards"]:
        assert card["image"] is images, card
        assert card["prediction"] and card["references"] and card["score_shown"] is not None, card
    scores = [card["score"] for card in section["cards"]]
    assert scores == sorted(scores) and scores[0] == min(scores), (section["title"], scores)
