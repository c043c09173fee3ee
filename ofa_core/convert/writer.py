"""Write a converted model directory atomically, with its tokenizer and processor files.

Everything is built in a hidden temporary directory beside the target and renamed into
place only after it is complete (and verified), so a failed or interrupted run never
leaves a half-written model where a user would load it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from ofa_core._errors import OFAError
from ofa_core.convert.keys import OFA_SHARED
from ofa_core.model.configuration import OFAConfig

BPE_FILES = ("encoder.json", "vocab.bpe", "dict.txt")


class OutputError(OFAError):
    """The output location cannot be written as asked."""


def check_output_dir(target: Path) -> None:
    """Refuse to replace an existing non-empty directory or a file, before any work is done."""
    if target.is_file() or (target.is_dir() and any(target.iterdir())):
        raise OutputError(f"{target}: already exists; choose a new --out directory (nothing was changed)")


@contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """Yield a temporary sibling of `target`; on success rename it to `target`, on failure delete it."""
    check_output_dir(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        yield staging
        _default_permissions(staging)
        if target.is_dir():
            target.rmdir()  # empty (checked above)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _default_permissions(directory: Path) -> None:
    """mkdtemp/mkstemp create owner-only entries; give the result the modes a plain mkdir/open would."""
    umask = os.umask(0)
    os.umask(umask)
    directory.chmod(0o777 & ~umask)
    for path in directory.rglob("*"):
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


def atomic_file(target: Path, write) -> None:
    """Call `write(temp_path)` and rename the result onto `target`; remove the temp file on failure."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.partial-", dir=target.parent)
    os.close(handle)
    try:
        write(Path(name))
        umask = os.umask(0)
        os.umask(umask)
        Path(name).chmod(0o666 & ~umask)
        os.replace(name, target)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def build_model(config: OFAConfig, state_dict: dict[str, torch.Tensor]):
    """The model holding exactly `state_dict`'s tensors (no random init, no copy), in eval mode."""
    from ofa_core.model.modeling import OFAForConditionalGeneration

    with torch.device("meta"):
        model = OFAForConditionalGeneration(config)
    model.load_state_dict(state_dict, strict=True, assign=True)
    model.tie_weights()
    if model.lm_head.weight is not model.get_input_embeddings().weight:
        raise AssertionError("output projection not tied to the shared embedding after loading")
    if state_dict[OFA_SHARED].data_ptr() != model.get_input_embeddings().weight.data_ptr():
        raise AssertionError("shared embedding was copied instead of assigned")
    return model.eval()


def build_tokenizer(language: str, config: OFAConfig, vocab: Path | None, bpe_dir: Path | None):
    """The OFA tokenizer from the user's vocabulary files, or None when none were given."""
    from ofa_core.model.tokenization import OFATokenizer, VocabularyError

    if vocab is not None and bpe_dir is not None:
        raise OutputError(
            "--vocab (Chinese BERT vocab.txt) and --bpe-dir (English GPT-2 BPE) exclude each other; "
            "pass the one matching the model"
        )
    if vocab is not None:
        if language != "zh":
            raise OutputError(
                f"--vocab {vocab}: the model uses the English GPT-2 BPE vocabulary; pass --bpe-dir DIR "
                f"holding {', '.join(BPE_FILES)} instead"
            )
        tokenizer = OFATokenizer.from_bert_vocab(vocab, code_dict_size=config.code_dict_size, num_bins=config.num_bins)
        source = f"--vocab {vocab}"
    elif bpe_dir is not None:
        if language != "en":
            raise OutputError(
                f"--bpe-dir {bpe_dir}: the model uses the Chinese BERT vocabulary; pass --vocab vocab.txt instead"
            )
        if not bpe_dir.is_dir():
            raise OutputError(
                f"--bpe-dir {bpe_dir}: not a directory; pass the folder holding {', '.join(BPE_FILES)} "
                "(OFA's utils/BPE)"
            )
        missing = [name for name in BPE_FILES if not (bpe_dir / name).is_file()]
        if missing:
            raise OutputError(
                f"--bpe-dir {bpe_dir}: missing {', '.join(missing)}; pass the directory holding "
                f"{', '.join(BPE_FILES)} (OFA's utils/BPE)"
            )
        try:
            tokenizer = OFATokenizer.from_gpt2_bpe(
                *(bpe_dir / name for name in BPE_FILES), code_dict_size=config.code_dict_size, num_bins=config.num_bins
            )
        except (VocabularyError, UnicodeDecodeError) as error:
            raise OutputError(f"--bpe-dir {bpe_dir}: {error}; these are not OFA's utils/BPE files") from None
        source = f"--bpe-dir {bpe_dir}"
    else:
        return None
    if len(tokenizer) != config.vocab_size:
        raise OutputError(
            f"{source}: gives {len(tokenizer)} tokens but the model has {config.vocab_size} embedding "
            "rows; pass the vocabulary the checkpoint was trained with"
        )
    return tokenizer


def missing_vocabulary(checkpoint: Path, config: OFAConfig) -> str:
    """The error for a conversion without vocabulary files: which option this checkpoint's language needs."""
    if config.language == "en":
        need = (
            f"English (GPT-2 BPE, {config.vocab_size} tokens): pass --bpe-dir DIR holding {', '.join(BPE_FILES)} "
            "(OFA's utils/BPE)"
        )
    else:
        need = f"Chinese (BERT, {config.vocab_size} tokens): pass --vocab PATH to OFA's utils/BERT_CN_dict/vocab.txt"
    return f"{checkpoint}: the model is {need}, or --no-tokenizer to write it without a tokenizer"


def write_preprocessing(directory: Path, config: OFAConfig, tokenizer) -> list[str]:
    """Save the processor (tokenizer + image processor) or, without a tokenizer, the image processor alone."""
    from ofa_core.model.image_processing import OFAImageProcessor
    from ofa_core.model.processing import OFAProcessor

    image_processor = OFAImageProcessor.from_config(config)
    if tokenizer is None:
        image_processor.save_pretrained(directory)
    else:
        OFAProcessor(image_processor, tokenizer).save_pretrained(directory)
    return sorted(path.name for path in directory.iterdir())
