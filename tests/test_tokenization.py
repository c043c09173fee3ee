"""OFATokenizer: fairseq id layout (Chinese and English), decoding, persistence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from ofa_core.model.auto import register_auto_classes
from ofa_core.model.configuration import OFAConfig
from ofa_core.model.tokenization import OFATokenizer, VocabularyError, bin_token, code_token

SPEC = Path(__file__).resolve().parents[1].parent / "shared/spec"
BERT_CN_VOCAB = SPEC / "BERT_CN_vocab.txt"
BPE_EN = SPEC / "BPE_EN"

TINY_VOCAB = [
    "[PAD]", "[unused1]", "[unused2]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
    "!", ",", ".", "?", "0", "1", "2", "a", "b", "iphone", "phone", "##s", "##2",
    "图", "片", "描", "述", "了", "什", "么", "内", "容", "你", "好", "，",
]  # fmt: skip


def tiny_id(token: str) -> int:
    """fairseq id of a tiny-vocab token: its line number + 4."""
    return TINY_VOCAB.index(token) + 4


@pytest.fixture
def tiny_vocab(tmp_path: Path) -> Path:
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(TINY_VOCAB) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def zh(tiny_vocab: Path) -> OFATokenizer:
    return OFATokenizer.from_bert_vocab(tiny_vocab)


@pytest.fixture(scope="module")
def zh_official() -> OFATokenizer:
    if not BERT_CN_VOCAB.is_file():
        pytest.skip(f"{BERT_CN_VOCAB} not present")
    return OFATokenizer.from_bert_vocab(BERT_CN_VOCAB)


@pytest.fixture(scope="module")
def en() -> OFATokenizer:
    if not all((BPE_EN / name).is_file() for name in ("encoder.json", "vocab.bpe", "dict.txt")):
        pytest.skip(f"{BPE_EN} not present")
    return OFATokenizer.from_gpt2_bpe(BPE_EN / "encoder.json", BPE_EN / "vocab.bpe", BPE_EN / "dict.txt")


def save_for_auto(tokenizer: OFATokenizer, directory: Path) -> Path:
    """A directory AutoTokenizer can resolve: config.json with model_type "ofa" + the tokenizer."""
    register_auto_classes()
    OFAConfig.from_preset("tiny-test").save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


# --- Chinese, generated vocabulary -------------------------------------------------------------


def test_zh_layout_on_tiny_vocab(zh: OFATokenizer) -> None:
    n = len(TINY_VOCAB)
    assert [zh.convert_tokens_to_ids(t) for t in ("<s>", "<pad>", "</s>", "<unk>")] == [0, 1, 2, 3]
    assert (zh.bos_token_id, zh.pad_token_id, zh.eos_token_id, zh.unk_token_id) == (0, 1, 2, 3)
    assert zh.convert_tokens_to_ids("[PAD]") == 4
    assert zh.convert_tokens_to_ids("[UNK]") == tiny_id("[UNK]")
    assert zh.mask_token_id == n + 4
    assert zh.code_start_id == n + 5 == zh.convert_tokens_to_ids(code_token(0))
    assert zh.code_token_id(8191) == n + 5 + 8191
    assert zh.bin_start_id == n + 5 + 8192 == zh.convert_tokens_to_ids(bin_token(0))
    assert zh.bin_token_id(999) == n + 4 + 8192 + 1000
    assert len(zh) == n + 5 + 8192 + 1000


def test_zh_custom_code_and_bin_counts(tiny_vocab: Path) -> None:
    tok = OFATokenizer.from_bert_vocab(tiny_vocab, code_dict_size=16, num_bins=10)
    n = len(TINY_VOCAB)
    assert len(tok) == n + 5 + 16 + 10
    assert tok.bin_start_id == n + 5 + 16
    with pytest.raises(ValueError, match="bin index 10"):
        tok.bin_token_id(10)
    with pytest.raises(ValueError, match="code index -1"):
        tok.code_token_id(-1)


def test_zh_encode_splits_characters_and_adds_bos_eos(zh: OFATokenizer) -> None:
    ids = zh("图片描述了什么?")["input_ids"]
    assert ids == [0] + [tiny_id(c) for c in "图片描述了什么?"] + [2]


def test_zh_unknown_piece_is_bert_unk_not_fairseq_unk(zh: OFATokenizer) -> None:
    ids = zh("猫好")["input_ids"]
    assert ids == [0, tiny_id("[UNK]"), tiny_id("好"), 2]
    assert 3 not in ids


def test_zh_lowercase_accents_and_wordpiece(zh: OFATokenizer) -> None:
    tokens = zh.convert_ids_to_tokens(zh("IPhone phones 12 Á")["input_ids"])
    assert tokens == ["<s>", "iphone", "phone", "##s", "1", "##2", "a", "</s>"]


def test_zh_decode_without_spaces(zh: OFATokenizer) -> None:
    text = "你好，iphone 12图片"
    ids = zh(text)["input_ids"]
    assert zh.decode(ids, skip_special_tokens=True) == text
    assert zh.decode(ids) == f"<s>{text}</s>"
    assert zh.batch_decode([ids, zh("phones")["input_ids"]], skip_special_tokens=True) == [text, "phones"]


def test_zh_location_tokens_match_whole(zh: OFATokenizer) -> None:
    ids = zh("图 <bin_5> <bin_7><code_3>")["input_ids"]
    assert ids == [0, tiny_id("图"), zh.bin_token_id(5), zh.bin_token_id(7), zh.code_token_id(3), 2]
    assert zh.decode(ids[2:4]) == "<bin_5> <bin_7>"


def test_zh_pair_padding_truncation(zh: OFATokenizer) -> None:
    assert zh("a", "b")["input_ids"] == [0, tiny_id("a"), 2, tiny_id("b"), 2]
    batch = zh(["图", "图片描述"], padding=True)
    assert batch["input_ids"][0] == [0, tiny_id("图"), 2, 1, 1, 1]
    assert batch["attention_mask"][0] == [1, 1, 1, 0, 0, 0]
    assert "token_type_ids" not in batch
    truncated = zh("图片描述了什么", truncation=True, max_length=4)["input_ids"]
    assert truncated == [0, tiny_id("图"), tiny_id("片"), 2]
    tensors = zh(["图", "图片"], padding=True, return_tensors="pt")
    assert tuple(tensors["input_ids"].shape) == (2, 4)


def test_zh_save_load_through_auto_tokenizer(zh: OFATokenizer, tmp_path: Path) -> None:
    directory = save_for_auto(zh, tmp_path / "tok")
    loaded = AutoTokenizer.from_pretrained(directory)
    assert type(loaded) is OFATokenizer
    text = "你好，iphone 12图片 <bin_3> 猫"
    assert loaded(text)["input_ids"] == zh(text)["input_ids"]
    assert loaded.get_vocab() == zh.get_vocab()
    assert loaded.decode(zh(text)["input_ids"], skip_special_tokens=True) == "你好，iphone 12图片<bin_3> [UNK]"
    assert (loaded.language, loaded.code_dict_size, loaded.num_bins) == ("zh", 8192, 1000)
    assert loaded.bin_start_id == zh.bin_start_id
    assert loaded("a", "b")["input_ids"] == zh("a", "b")["input_ids"]
    assert OFATokenizer.from_pretrained(directory)(text)["input_ids"] == zh(text)["input_ids"]


def test_vocab_errors_name_the_file(tmp_path: Path) -> None:
    no_unk = tmp_path / "no_unk.txt"
    no_unk.write_text("[PAD]\na\n", encoding="utf-8")
    with pytest.raises(VocabularyError, match=r"no_unk\.txt.*\[UNK\]"):
        OFATokenizer.from_bert_vocab(no_unk)
    duplicate = tmp_path / "dup.txt"
    duplicate.write_text("[UNK]\na\na\n", encoding="utf-8")
    with pytest.raises(VocabularyError, match=r"dup\.txt.*'a' appears twice"):
        OFATokenizer.from_bert_vocab(duplicate)
    with pytest.raises(VocabularyError, match="missing.txt"):
        OFATokenizer.from_bert_vocab(tmp_path / "missing.txt")


# --- Chinese, official vocabulary --------------------------------------------------------------


def test_zh_official_layout(zh_official: OFATokenizer) -> None:
    assert len(zh_official) == 30325
    assert zh_official.mask_token_id == 21132
    assert (zh_official.code_start_id, zh_official.code_token_id(8191)) == (21133, 29324)
    assert (zh_official.bin_start_id, zh_official.bin_token_id(999)) == (29325, 30324)
    assert [zh_official.convert_tokens_to_ids(t) for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")] == [
        4, 104, 105, 106, 107,
    ]  # fmt: skip


def test_zh_official_test_vectors(zh_official: OFATokenizer) -> None:
    expected = [0, 1749, 4279, 2993, 6839, 753, 788, 724, 1083, 2163, 140, 2]
    assert zh_official("图片描述了什么内容?")["input_ids"] == expected
    assert zh_official("图片描述了什么?")["input_ids"] == [0, 1749, 4279, 2993, 6839, 753, 788, 724, 140, 2]
    assert zh_official("😀")["input_ids"] == [0, 104, 2]


def test_zh_official_decode(zh_official: OFATokenizer) -> None:
    text = "一个穿着红色连衣裙的女孩在iphone 12上玩游戏"
    assert zh_official.decode(zh_official(text)["input_ids"], skip_special_tokens=True) == text


# --- English -----------------------------------------------------------------------------------


def test_en_layout(en: OFATokenizer) -> None:
    assert len(en) == 59457
    assert en.mask_token_id == 50264
    assert en.code_start_id == 50265
    assert en.bin_start_id == 58457
    assert en.bin_token_id(999) == en.convert_tokens_to_ids("<bin_999>") == 59456
    assert [en.convert_tokens_to_ids(t) for t in ("<s>", "<pad>", "</s>", "<unk>")] == [0, 1, 2, 3]


def test_en_ids_are_dict_mapped_gpt2_ids(en: OFATokenizer) -> None:
    encoder = json.loads((BPE_EN / "encoder.json").read_text(encoding="utf-8"))
    dict_words = [line.split(" ")[0] for line in (BPE_EN / "dict.txt").read_text(encoding="utf-8").splitlines()]
    fairseq_id = {int(word): line + 4 for line, word in enumerate(dict_words) if word.isdigit()}
    for word in (" the", " image", " what", "?"):
        gpt2_id = encoder[word.replace(" ", "\u0120")]
        assert en(word)["input_ids"] == [0, fairseq_id[gpt2_id], 2]
    prompt = en(" what does the image describe?")["input_ids"]
    assert prompt == [0, 99, 473, 5, 2274, 6190, 116, 2]
    assert prompt[1:-1] == [fairseq_id[encoder[t]] for t in en.convert_ids_to_tokens(prompt[1:-1])]


@pytest.mark.parametrize(
    "text",
    [" what does the image describe?", "A man riding a horse.", "  two  spaces ", " naïve café 😀", " 1234, x=5"],
)
def test_en_round_trip(en: OFATokenizer, text: str) -> None:
    assert en.decode(en(text)["input_ids"], skip_special_tokens=True) == text


def test_en_location_tokens_absorb_separating_spaces(en: OFATokenizer) -> None:
    ids = en(" region:<bin_1> <bin_2> <bin_3> <bin_4>")["input_ids"]
    assert ids[-5:] == [58458, 58459, 58460, 58461, 2]


def test_en_save_load_through_auto_tokenizer(en: OFATokenizer, tmp_path: Path) -> None:
    loaded = AutoTokenizer.from_pretrained(save_for_auto(en, tmp_path / "tok"))
    text = ' which region does the text " a man " describe? <bin_12>'
    assert loaded(text)["input_ids"] == en(text)["input_ids"]
    assert loaded.language == "en"
    assert len(loaded) == 59457


def test_bpe_errors_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "encoder.json").write_text('{"a": 0, "b": 1, "ab": 2}', encoding="utf-8")
    (tmp_path / "vocab.bpe").write_text("#version: 0.2\na b\n", encoding="utf-8")
    (tmp_path / "dict.txt").write_text("2 10\n7 5\n", encoding="utf-8")
    with pytest.raises(VocabularyError, match=r"dict\.txt:2: GPT-2 id 7"):
        OFATokenizer.from_gpt2_bpe(tmp_path / "encoder.json", tmp_path / "vocab.bpe", tmp_path / "dict.txt")
    (tmp_path / "dict.txt").write_text("2 10\n0 5\n1 5\nmadeupword0000 0\n", encoding="utf-8")
    tok = OFATokenizer.from_gpt2_bpe(
        tmp_path / "encoder.json", tmp_path / "vocab.bpe", tmp_path / "dict.txt", code_dict_size=2, num_bins=3
    )
    assert tok.convert_tokens_to_ids(["ab", "a", "b", "madeupword0000", "<mask>"]) == [4, 5, 6, 7, 8]
    assert tok("ab")["input_ids"] == [0, 4, 2]
    assert len(tok) == 14
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    with pytest.raises(VocabularyError, match=r"bad\.json"):
        OFATokenizer.from_gpt2_bpe(tmp_path / "bad.json", tmp_path / "vocab.bpe", tmp_path / "dict.txt")
