"""CIDEr-D, BLEU-4 and ROUGE-L for captions, scored by pycocoevalcap on pre-tokenised text.

pycocoevalcap's scorers are the reference implementations used for COCO and MUGE results;
they run in pure Python when given text already split into tokens (its Java tokenizer is
never called).  Scores are reported x100, as papers and the MUGE leaderboard do.
"""

from __future__ import annotations

import attrs

from ofa_core import plugin
from ofa_tasks.caption.text import TOKENIZERS, is_chinese

METRICS = plugin.Metrics()
"""The metrics this module declares, each on its class."""


@attrs.frozen
class CaptionMetricOptions:
    """How captions are split into tokens before scoring."""

    tokenize: str = attrs.field(default="auto", validator=attrs.validators.in_(["auto", *sorted(TOKENIZERS)]))
    """'zh' (MUGE: one token per CJK character), 'en' (lower case, no punctuation), or 'auto':
    'zh' for an example whose references contain Chinese, else 'en'."""


class CollectedCaptions:
    """Predictions and their references, collected as they come and merged across processes by concatenation;
    `compute()` scores them all at once (CIDEr-D needs corpus statistics)."""

    def __init__(self, tokenize: str) -> None:
        self.tokenize = tokenize
        self.predictions: list[str] = []
        self.references: list[list[str]] = []

    def update(self, predictions: list[str], references: list[list[str]]) -> None:
        if len(predictions) != len(references):
            raise ValueError(f"{len(predictions)} predictions but {len(references)} reference lists")
        self.predictions += list(predictions)
        self.references += [list(refs) for refs in references]

    def state(self) -> dict:
        return {"predictions": list(self.predictions), "references": [list(r) for r in self.references]}

    def load_state(self, merged: dict) -> None:
        self.predictions = list(merged["predictions"])
        self.references = [list(r) for r in merged["references"]]


@METRICS.add("caption", "CIDEr-D, BLEU-4, ROUGE-L (x100); tokenize 'zh' (per character) or 'en'", example_score="cider")
class CaptionScores(CollectedCaptions):
    """CIDEr-D, BLEU-4 and ROUGE-L of the collected captions."""

    def __init__(self, options: CaptionMetricOptions) -> None:
        super().__init__(options.tokenize)

    def _tokenised(self) -> tuple[dict[int, list[str]], dict[int, list[str]]]:
        """pycocoevalcap's inputs: space-joined tokens of each hypothesis and of its references, by index."""
        hypotheses, references = {}, {}
        for index, (prediction, refs) in enumerate(zip(self.predictions, self.references)):
            language = self.tokenize if self.tokenize != "auto" else ("zh" if is_chinese(refs) else "en")
            tokenize = TOKENIZERS[language]
            hypotheses[index] = [" ".join(tokenize(prediction))]
            references[index] = [" ".join(tokenize(ref)) for ref in refs]
        return hypotheses, references

    def example_scores(self) -> list[dict[str, float]]:
        """Each caption's CIDEr-D (x100) against its references, with the document frequencies of all collected
        references (the split's), so that their mean is `compute()`'s `cider`."""
        from pycocoevalcap.cider.cider import Cider

        if not self.predictions:
            return []
        hypotheses, references = self._tokenised()
        _, scores = Cider().compute_score(references, hypotheses)
        return [{"score": 100 * float(score)} for score in scores]

    def compute(self) -> dict[str, float]:
        from pycocoevalcap.bleu.bleu import Bleu
        from pycocoevalcap.cider.cider import Cider
        from pycocoevalcap.rouge.rouge import Rouge

        if not self.predictions:
            return {"cider": 0.0, "bleu4": 0.0, "rouge_l": 0.0}
        hypotheses, references = self._tokenised()
        cider, _ = Cider().compute_score(references, hypotheses)
        bleu, _ = Bleu(4).compute_score(references, hypotheses, verbose=0)
        rouge, _ = Rouge().compute_score(references, hypotheses)
        return {"cider": 100 * float(cider), "bleu4": 100 * float(bleu[3]), "rouge_l": 100 * float(rouge)}
