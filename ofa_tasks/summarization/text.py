"""Gigaword text as OFA's fine-tune reads and scores it.

Sources and targets get the caption clean-up of OFA's datasets; `<unk>` (Gigaword's unknown word)
becomes `unk`, so the BPE sees a word, not markup. Generated summaries are mapped back onto the
references' tokenisation (PTB brackets, `` '' quotes, split clitics, `#` for digits) before
ROUGE, as the official evaluation does, or every bracket and digit would count as a miss.
"""

from __future__ import annotations

import re
import string

LEADING_PUNCTUATION = ",.!?*#:;~"
OFFICIAL_SOURCE_WORDS = 512
"""`--max-src-length` of the official Gigaword script, applied to the article as a word limit (then to its BPE
tokens)."""
OFFICIAL_TARGET_WORDS = 64
"""`--max-tgt-length` of the official Gigaword script, a word limit on the training summary."""

PTB_TOKENS = {
    "(": "-lrb-",
    ")": "-rrb-",
    "[": "-lsb-",
    "]": "-rsb-",
    "{": "-lcb-",
    "}": "-rcb-",
    "[UNK]": "UNK",
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
}
CLITICS = ("s", "d", "ll")


def clean(text: str, max_words: int) -> str:
    """Lower case, no leading `,.!?*#:;~`, '-' and '/' as spaces, '<person>' as 'person', single spaces,
    at most `max_words` words, then `<unk>` as `unk`."""
    cleaned = text.lower().lstrip(LEADING_PUNCTUATION).replace("-", " ").replace("/", " ").replace("<person>", "person")
    cleaned = re.sub(r"\s{2,}", " ", cleaned).rstrip("\n").strip(" ")
    return " ".join(cleaned.split(" ")[:max_words]).replace("<unk>", "unk")


def _number(token: str) -> bool:
    return all(character.isdigit() or character == "," for character in token)


def _punctuation(text: str) -> bool:
    """Python's `in` on `string.punctuation`: true for any run of it (the official test, kept for its outputs)."""
    return text in string.punctuation


def _capital(token: str) -> bool:
    return len(token) == 1 and token.isupper()


def _abbreviation_end(tokens: list[str], i: int) -> int:
    """Where the capital letters and dots of "U . N ." that start one token before `i` end."""
    end = i + 3
    while end + 2 < len(tokens) and _capital(tokens[end + 1]) and tokens[end + 2] == ".":
        end += 2
    return end


def _hyphen(out: list[str], after: str | None, first: bool) -> tuple[int, bool]:
    """A lone '-': '--' with a second one, else it joins the words around it as the official rule does.

    Returns (tokens consumed, whether the next token joins the last one)."""
    if after == "-":
        out.append("--")
        return 2, False
    if after is None or first:
        out.append("-")
        return 1, False
    if not _punctuation(out[-1]) and after[0] not in string.punctuation:
        out[-1] += "-"
        return 1, True
    out.append("-")
    return 1, False


def ptb_tokens(text: str) -> str:
    """Whitespace tokens rewritten to the PTB conventions of Gigaword's references (the official
    `fix_tokenization`: brackets as -lrb- etc., "..." as `` / '', n't / 's / 'd / 'll rejoined, ". . ." as
    "...", 3 , 000 as 3,000, 3 . 5 as 3.5, U . N . joined, and words around a '-' joined)."""
    tokens = text.split()
    out: list[str] = []
    double_open = single_open = joining = False
    i = 0
    while i < len(tokens):
        token, rest = tokens[i], tokens[i + 1 :]
        after = rest[0] if rest else None
        join_next = False
        step = 1
        if token in PTB_TOKENS:
            out.append(PTB_TOKENS[token])
        elif token == '"':
            out.append("''" if double_open else "``")
            double_open = not double_open
        elif token == "'" and out and out[-1].endswith("n") and after == "t":
            out[-1] = out[-1][:-1]
            out.append("n't")
            step = 2
        elif token == "'" and after in CLITICS:
            out.append("'" + after)
            step = 2
        elif token == "'":
            out.append("'" if single_open else "`")
            single_open = not single_open
        elif token == "." and rest[:2] == [".", "."]:
            out.append("...")
            step = 3
        elif token == "," and out and _number(out[-1]) and after is not None and _number(after):
            out[-1] += "," + after
            step = 2
        elif token == "." and out and out[-1].isdigit() and after is not None and after.isdigit():
            out[-1] += "." + after
            step = 2
        elif token == "." and out and _capital(out[-1]) and len(rest) >= 2 and _capital(rest[0]) and rest[1] == ".":
            out[-1] += "".join(tokens[i : _abbreviation_end(tokens, i)])
            step = 2  # the official loop moves on by two whatever it joined, so later letters repeat
        elif token == "-":
            step, join_next = _hyphen(out, after, i == 0)
        elif joining and out and token[0] not in string.punctuation:
            out[-1] += token
        else:
            out.append(token)
        joining = join_next
        i += step
    return " ".join(out)


def official_hypothesis(text: str) -> str:
    """A decoded summary as the official Gigaword evaluation scores it: lower case, stripped, PTB tokens, '1' as '#'."""
    return ptb_tokens(text.lower().strip()).replace("1", "#")
