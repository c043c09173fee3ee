"""The `summarization` task: a one-sentence summary of an article, text only, as OFA's Gigaword fine-tune.

Records have no image: the core feeds a blank one with its patch mask off, as the official text-only
datasets do. The article is cleaned and put in the official prompt; the recipe's
`data.max_source_length` cuts its BPE tokens (514 keeps the official 512 plus BOS and EOS).
"""

from __future__ import annotations

import attrs

from ofa_core import plugin
from ofa_tasks.summarization.metrics import METRICS
from ofa_tasks.summarization.readers import READERS
from ofa_tasks.summarization.text import OFFICIAL_SOURCE_WORDS, OFFICIAL_TARGET_WORDS, clean, official_hypothesis

PROMPTS = {
    "en": plugin.PromptTemplate(
        name="summarization.en", lang="en", source=' what is the summary of article " {article} "?', target="{target}"
    )
}

_positive = [attrs.validators.instance_of(int), attrs.validators.gt(0)]


@attrs.frozen
class SummarizationOptions:
    """`task.options` of `summarization`: word limits of the clean-up, and whether to score as the official
    evaluation."""

    max_source_words: int = attrs.field(default=OFFICIAL_SOURCE_WORDS, validator=_positive)
    """Words of the article kept after clean-up (the official `--max-src-length`, 512)."""
    max_target_words: int = attrs.field(default=OFFICIAL_TARGET_WORDS, validator=_positive)
    """Words of the training summary kept after clean-up (the official `--max-tgt-length`, 64)."""
    official_postprocess: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    """Rewrite predictions to Gigaword's tokenisation (lower case, PTB brackets and quotes, '1' as '#') before
    scoring, as the official evaluation; off for other data, whose references are plain text."""


TASK = plugin.Task(
    "summarization", "summarise an article in one sentence (Gigaword), text only; ROUGE", generation="summarization"
)


@TASK.hook
def preprocess(record: dict, split: str, options: SummarizationOptions) -> dict:
    """The cleaned `article`, the cleaned training `target`, and the lower-cased summary as the reference."""
    where = f"record {record.get('id')!r}"
    if not isinstance(record.get("source"), str):
        raise plugin.OFAError(
            f"{where}: summarization needs the field 'source' (the article); with ofa predict pass "
            f"--field source='...' or a 'source' TSV column, else give it in the reader"
        )
    summary = record.get("summary")
    if not isinstance(summary, str) and split != "test":
        raise plugin.OFAError(f"{where}: no summary; every {split} record needs one as 'summary'")
    prepared = {**record, "article": clean(record["source"], options.max_source_words)}
    if not isinstance(summary, str):
        return {**prepared, "target": "", "references": []}
    return {**prepared, "target": clean(summary, options.max_target_words), "references": [summary.lower()]}


@TASK.hook
def postprocess(text: str, record: dict, options: SummarizationOptions) -> str:
    return official_hypothesis(text) if options.official_postprocess else text.strip()


COMPONENTS = plugin.Components(prompts=PROMPTS.values(), readers=READERS, metrics=METRICS, task=TASK)
COMPONENTS.install(globals())
