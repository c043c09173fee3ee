"""CIDEr-D per caption, as the reward of self-critical training (the `scst` loss) and as a metric.

The official SCST criterion scores each candidate with CIDEr-D whose document frequencies come from the
training references (not from the batch), with an end token appended to every sentence, so that the reward
of a caption does not depend on what else is in the batch and ending a caption where references end pays.
The frequencies are computed once and cached beside the training reference file in JSON, keyed by the
file's SHA-256: a changed file rebuilds them, and loading never runs code (unlike the official pickles).
"""

from __future__ import annotations

import hashlib
import math
import os
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs
import orjson

from ofa_core import plugin
from ofa_tasks.caption.metrics import CollectedCaptions
from ofa_tasks.caption.text import TOKENIZERS, is_chinese

END = "<eos>"
"""Appended to every tokenised sentence, as the official reward does (its cached frequencies count it)."""
MAX_N = 4
SIGMA = 6.0
CACHE_FORMAT = "ofa-cider-d-document-frequency/1"

METRICS = plugin.Metrics()
"""The metrics this module declares, each on its class."""


Vector = tuple[list[dict[str, float]], list[float], int]


@attrs.frozen
class CiderDOptions:
    """How captions are split into tokens before scoring."""

    tokenize: str = attrs.field(default="auto", validator=attrs.validators.in_(["auto", *sorted(TOKENIZERS)]))
    """'zh' (one token per CJK character), 'en' (lower case, no punctuation), or 'auto': 'zh' for
    references containing Chinese, else 'en'."""


def ngram_counts(tokens: Sequence[str]) -> list[Counter]:
    """Counts of the 1..4-grams of `tokens`, one Counter per n, each n-gram as its tokens joined by spaces
    (tokens never hold whitespace, so the join is unambiguous and fits a JSON key)."""
    return [Counter(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)) for n in range(1, MAX_N + 1)]


@attrs.frozen
class DocumentFrequency:
    """In how many documents (reference sets of one input) each n-gram occurs, and how many documents there are."""

    documents: int
    counts: dict[str, int]

    @classmethod
    def of(cls, reference_token_sets: Sequence[Sequence[Sequence[str]]]) -> DocumentFrequency:
        """From tokenised references, one sequence of sentences per document."""
        counts: Counter = Counter()
        for sentences in reference_token_sets:
            counts.update({gram for tokens in sentences for per_n in ngram_counts(tokens) for gram in per_n})
        return cls(len(reference_token_sets), dict(counts))

    def weight(self, gram: str) -> float:
        """The n-gram's idf: log(documents) - log(max(1, df)); an unseen n-gram counts as seen once."""
        return math.log(float(max(self.documents, 1))) - math.log(max(1.0, float(self.counts.get(gram, 0))))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_path(beside: Path, tokenize: str) -> Path:
    """Where the frequencies of the references in `beside` are cached: next to it, named after it."""
    return beside.with_name(f"{beside.name}.cider-d-{tokenize}.json")


def cached_document_frequency(
    beside: Path, tokenize: str, compute: Callable[[], DocumentFrequency]
) -> DocumentFrequency:
    """The cached frequencies when the cache's fingerprint matches `beside`'s contents, else `compute()`'s,
    written to the cache (through a temporary file and a rename, so concurrent processes never see half a file)."""
    path = cache_path(beside, tokenize)
    fingerprint = {"file": beside.name, "sha256": file_sha256(beside), "tokenize": tokenize}
    if path.is_file():
        try:
            data = orjson.loads(path.read_bytes())
            if data.get("format") == CACHE_FORMAT and data.get("fingerprint") == fingerprint:
                return DocumentFrequency(int(data["documents"]), {str(k): int(v) for k, v in data["counts"].items()})
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            pass  # unreadable or foreign: rebuilt below
    frequency = compute()
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_bytes(
            orjson.dumps(
                {
                    "format": CACHE_FORMAT,
                    "fingerprint": fingerprint,
                    "documents": frequency.documents,
                    "counts": frequency.counts,
                }
            )
        )
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise plugin.OFAError(
            f"loss.references: cannot write the CIDEr-D cache {path} ({error}); make its folder writable"
        ) from None
    return frequency


@METRICS.add(
    "cider_d", "CIDEr-D per caption with training-set document frequencies: the scst reward", example_score="cider_d"
)
class CiderD(CollectedCaptions):
    """CIDEr-D with document frequencies from `fit` (the training references) or, unfitted, from the
    references scored; `compute()` reports the mean x100 as `cider_d`, `rewards()` each caption's raw score."""

    def __init__(self, options: CiderDOptions) -> None:
        super().__init__(options.tokenize)
        self.frequency: DocumentFrequency | None = None

    def _tokens(self, text: str, language: str) -> list[str]:
        return [*TOKENIZERS[language](text), END]

    def _language(self, references: Sequence[str]) -> str:
        return self.tokenize if self.tokenize != "auto" else ("zh" if is_chinese(list(references)) else "en")

    def _tokenised(self, references: Sequence[Sequence[str]]) -> list[list[list[str]]]:
        return [[self._tokens(ref, self._language(refs)) for ref in refs] for refs in references]

    def fit(self, references: Sequence[Sequence[str]], beside: str | Path | None = None) -> None:
        """Document frequencies from the training references (one list per input); cached beside the file
        `beside` (the training references' source, fingerprinted) when given."""

        def compute() -> DocumentFrequency:
            return DocumentFrequency.of(self._tokenised(references))

        self.frequency = (
            compute() if beside is None else cached_document_frequency(Path(beside), self.tokenize, compute)
        )

    def _vector(self, tokens: Sequence[str], frequency: DocumentFrequency) -> Vector:
        weights = [
            {gram: count * frequency.weight(gram) for gram, count in per_n.items()} for per_n in ngram_counts(tokens)
        ]
        norms = [math.sqrt(sum(w * w for w in per_n.values())) for per_n in weights]
        return weights, norms, len(tokens)

    def _score(self, candidate: Vector, references: Sequence[Vector]) -> float:
        weights, norms, length = candidate
        total = 0.0
        for ref_weights, ref_norms, ref_length in references:
            penalty = math.exp(-((length - ref_length) ** 2) / (2 * SIGMA**2))
            for n in range(MAX_N):
                overlap = sum(
                    min(w, ref_weights[n].get(gram, 0.0)) * ref_weights[n].get(gram, 0.0)
                    for gram, w in weights[n].items()
                )
                if norms[n] and ref_norms[n]:
                    overlap /= norms[n] * ref_norms[n]
                total += overlap * penalty
        return 10.0 * total / MAX_N / max(len(references), 1)

    def rewards(self, candidates: Sequence[str], references: Sequence[Sequence[str]]) -> list[float]:
        """CIDEr-D of each candidate against its own references (not x100), as the official reward."""
        if len(candidates) != len(references):
            raise ValueError(f"{len(candidates)} candidates but {len(references)} reference lists")
        distinct = list(dict.fromkeys(tuple(refs) for refs in references))
        frequency = self.frequency or DocumentFrequency.of(self._tokenised(distinct))
        vectors = {
            refs: [self._vector(tokens, frequency) for tokens in self._tokenised([refs])[0]] for refs in distinct
        }
        return [
            self._score(self._vector(self._tokens(text, self._language(refs)), frequency), vectors[tuple(refs)])
            for text, refs in zip(candidates, references)
        ]

    def example_scores(self) -> list[dict[str, float]]:
        """Each collected caption's CIDEr-D x100 (frequencies as `compute()` uses them); their mean is `cider_d`."""
        if not self.predictions:
            return []
        return [{"score": 100.0 * score} for score in self.rewards(self.predictions, self.references)]

    def compute(self) -> dict[str, float]:
        if not self.predictions:
            return {"cider_d": 0.0}
        scores = self.rewards(self.predictions, self.references)
        return {"cider_d": 100.0 * sum(scores) / len(scores)}
