"""OFA tokenizers: fairseq's OFA dictionaries as transformers fast tokenizers.

OFA checkpoints index their embedding rows with fairseq dictionary ids, so both
tokenizers reproduce fairseq's layout exactly: `<s> <pad> </s> <unk>` (ids 0-3), the
text vocabulary in `dict.txt` order, `<mask>`, `<code_0..>` and `<bin_0..>`. The
whole pipeline lives in the `tokenizers` backend (tokenizer.json), so a saved
directory reloads through `AutoTokenizer` with identical ids and decoding.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from os import PathLike
from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers.tokenization_utils_tokenizers import TokenizersBackend

from ofa_core._errors import OFAError
from ofa_core.model.boxes import bin_token

BOS, PAD, EOS, UNK, MASK = "<s>", "<pad>", "</s>", "<unk>", "<mask>"
# The BERT vocabulary's own unknown piece; fairseq maps unknown Chinese word-pieces to it.
BERT_UNK = "[UNK]"
# Longest source the released checkpoints accept (`max_source_positions`).
MODEL_MAX_LENGTH = 1024
# Chinese is written without spaces: drop every decoder-inserted space that touches a non-ASCII
# character, keep those between two ASCII words ("iphone 12").
_NO_SPACE_NEXT_TO_NON_ASCII = r"(?<=[^\x00-\x7f]) | (?=[^\x00-\x7f])"


class VocabularyError(OFAError, ValueError):
    """A vocabulary file is missing or malformed."""


def code_token(index: int) -> str:
    """Token string of image code `index` (VQGAN codebook entry)."""
    return f"<code_{index}>"


def _read_text(path: str | PathLike, what: str) -> str:
    file = Path(path)
    if not file.is_file():
        raise VocabularyError(f"{what} not found: {file}; pass the path of an existing file")
    return file.read_text(encoding="utf-8")


def _read_lines(path: str | PathLike, what: str) -> list[str]:
    """Lines split on '\\n' only: BERT vocabularies hold U+2028, which `str.splitlines` would split."""
    lines = [line.rstrip("\r") for line in _read_text(path, what).split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _fairseq_vocab(text_tokens: Iterable[str], code_dict_size: int, num_bins: int, source: str) -> dict[str, int]:
    """fairseq's dictionary order: specials, text tokens, `<mask>`, codes, bins."""
    tokens = [BOS, PAD, EOS, UNK, *text_tokens, MASK]
    tokens += [code_token(i) for i in range(code_dict_size)] + [bin_token(i) for i in range(num_bins)]
    vocab: dict[str, int] = {}
    for index, token in enumerate(tokens):
        if token in vocab:
            raise VocabularyError(
                f"{source}: token {token!r} appears twice (ids {vocab[token]} and {index}); remove the duplicate"
            )
        vocab[token] = index
    return vocab


def _gpt2_dict_tokens(encoder_json: str | PathLike, dict_txt: str | PathLike) -> list[str]:
    """Byte-level BPE token strings in `dict.txt` order (its lines name GPT-2 ids; fillers stay literal)."""
    try:
        encoder = json.loads(_read_text(encoder_json, "GPT-2 encoder.json"))
    except json.JSONDecodeError as err:
        raise VocabularyError(f"{encoder_json} is not valid JSON ({err}); use GPT-2's encoder.json") from None
    gpt2_tokens = {index: token for token, index in encoder.items()}
    tokens = []
    for lineno, line in enumerate(_read_lines(dict_txt, "fairseq dict.txt"), 1):
        field = line.rsplit(" ", 1)[0] if " " in line else line
        if field.isdigit():
            if int(field) not in gpt2_tokens:
                raise VocabularyError(
                    f"{dict_txt}:{lineno}: GPT-2 id {field} is not in {encoder_json}; use matching files"
                )
            tokens.append(gpt2_tokens[int(field)])
        else:
            tokens.append(field)
    return tokens


def _gpt2_merges(vocab_bpe: str | PathLike) -> list[tuple[str, str]]:
    lines = _read_lines(vocab_bpe, "GPT-2 vocab.bpe")
    merges = []
    for lineno, line in enumerate(lines, 1):
        if not line or line.startswith("#version"):
            continue
        parts = line.split()
        if len(parts) != 2:
            raise VocabularyError(f"{vocab_bpe}:{lineno}: a merge line needs two tokens, got {line!r}")
        merges.append((parts[0], parts[1]))
    return merges


class OFATokenizer(TokenizersBackend):
    """Tokenizer of an OFA model (`language` "zh": BERT-Chinese WordPiece, "en": GPT-2 byte-level BPE).

    Build one with `from_bert_vocab` or `from_gpt2_bpe`; reload a saved one with `from_pretrained`
    or `AutoTokenizer`. Encoding gives `[<s>] + ids + [</s>]` with fairseq ids.
    """

    model_input_names = ["input_ids", "attention_mask"]

    def __init__(self, *args, language: str = "zh", code_dict_size: int = 8192, num_bins: int = 1000, **kwargs):
        super().__init__(*args, language=language, code_dict_size=code_dict_size, num_bins=num_bins, **kwargs)
        self.language = language
        self.code_dict_size = code_dict_size
        self.num_bins = num_bins

    @classmethod
    def convert_to_native_format(cls, trust_remote_code: bool = False, **kwargs):
        """tokenizer.json fully describes the pipeline: load it as is instead of re-deriving a default one."""
        return kwargs

    @classmethod
    def from_bert_vocab(
        cls, vocab_path: str | PathLike, code_dict_size: int = 8192, num_bins: int = 1000, **kwargs
    ) -> OFATokenizer:
        """Chinese tokenizer from a BERT `vocab.txt`; fairseq id = BERT id + 4, as in `utils/BERT_CN_dict`."""
        text_tokens = _read_lines(vocab_path, "BERT vocab.txt")
        if BERT_UNK not in text_tokens:
            raise VocabularyError(
                f"{vocab_path}: no {BERT_UNK} line; a BERT vocab.txt needs one for unknown characters"
            )
        vocab = _fairseq_vocab(text_tokens, code_dict_size, num_bins, str(vocab_path))
        backend = Tokenizer(
            models.WordPiece(vocab, unk_token=BERT_UNK, continuing_subword_prefix="##", max_input_chars_per_word=100)
        )
        backend.normalizer = normalizers.BertNormalizer(
            clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True
        )
        backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        backend.decoder = decoders.Sequence(
            [
                decoders.WordPiece(prefix="##", cleanup=True),
                decoders.Fuse(),
                decoders.Replace(Regex(_NO_SPACE_NEXT_TO_NON_ASCII), ""),
            ]
        )
        return cls._wrap(backend, "zh", code_dict_size, num_bins, **kwargs)

    @classmethod
    def from_gpt2_bpe(
        cls,
        encoder_json: str | PathLike,
        vocab_bpe: str | PathLike,
        dict_txt: str | PathLike,
        code_dict_size: int = 8192,
        num_bins: int = 1000,
        **kwargs,
    ) -> OFATokenizer:
        """English tokenizer from GPT-2's `encoder.json` + `vocab.bpe` and fairseq's `dict.txt` (fairseq ids)."""
        vocab = _fairseq_vocab(_gpt2_dict_tokens(encoder_json, dict_txt), code_dict_size, num_bins, str(dict_txt))
        backend = Tokenizer(models.BPE(vocab, _gpt2_merges(vocab_bpe)))
        # fairseq prompts carry their own leading space, so none is added.
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        backend.decoder = decoders.ByteLevel()
        return cls._wrap(backend, "en", code_dict_size, num_bins, **kwargs)

    @classmethod
    def _wrap(cls, backend: Tokenizer, language: str, code_dict_size: int, num_bins: int, **kwargs) -> OFATokenizer:
        """Match `<code_*>`/`<bin_*>` whole, absorbing the space before each (fairseq encodes them unsplit)."""
        backend.add_tokens(
            [
                AddedToken(token, lstrip=True, normalized=False, special=False)
                for token in [code_token(i) for i in range(code_dict_size)] + [bin_token(i) for i in range(num_bins)]
            ]
        )
        vocab = backend.get_vocab()
        backend.post_processor = processors.TemplateProcessing(
            single=f"{BOS} $A {EOS}",
            pair=f"{BOS} $A {EOS} $B:1 {EOS}:1",
            special_tokens=[(BOS, vocab[BOS]), (EOS, vocab[EOS])],
        )
        defaults = {
            "bos_token": BOS,
            "cls_token": BOS,
            "eos_token": EOS,
            "sep_token": EOS,
            "pad_token": PAD,
            "unk_token": UNK,
            "mask_token": MASK,
            "model_max_length": MODEL_MAX_LENGTH,
            "clean_up_tokenization_spaces": False,
        }
        return cls(
            tokenizer_object=backend,
            language=language,
            code_dict_size=code_dict_size,
            num_bins=num_bins,
            **{**defaults, **kwargs},
        )

    @property
    def code_start_id(self) -> int:
        """Id of `<code_0>`; image codes are contiguous from here."""
        return self.convert_tokens_to_ids(code_token(0))

    @property
    def bin_start_id(self) -> int:
        """Id of `<bin_0>`; location bins are contiguous from here."""
        return self.convert_tokens_to_ids(bin_token(0))

    def code_token_id(self, index: int) -> int:
        """Id of `<code_{index}>`."""
        if not 0 <= index < self.code_dict_size:
            raise ValueError(f"code index {index} is outside 0..{self.code_dict_size - 1}")
        return self.code_start_id + index

    def bin_token_id(self, index: int) -> int:
        """Id of `<bin_{index}>`."""
        if not 0 <= index < self.num_bins:
            raise ValueError(f"bin index {index} is outside 0..{self.num_bins - 1}")
        return self.bin_start_id + index
