"""ofa_core.testing helpers that plugin authors build their tests on."""

from PIL import Image

from ofa_core.testing import fake_image, tiny_dataset, tiny_processor, tiny_vocabulary


def test_tiny_dataset_writes_images_and_records(tmp_path):
    records = tiny_dataset(tmp_path / "data", count=3)
    assert [r["id"] for r in records] == ["0", "1", "2"]
    assert Image.open(records[0]["image"]).size == (40, 30) and records[0]["references"] == [records[0]["caption"]]


def test_tiny_processor_tokenizes_english_and_chinese_prompts_without_unknowns():
    processor = tiny_processor()
    assert len(tiny_vocabulary()) == len(set(tiny_vocabulary()))
    encoded = processor(text=[' which region does the text " a red car " describe?', '这段文字" a dog "描述的是哪个区域？'],
                        images=[fake_image(0), None])
    assert processor.tokenizer.unk_token_id not in encoded["input_ids"].flatten().tolist()
    assert processor.tokenizer.convert_tokens_to_ids("[UNK]") not in encoded["input_ids"].flatten().tolist()
    assert encoded["patch_masks"].tolist() == [True, False]
