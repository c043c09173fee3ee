"""Caption readers on generated MUGE and OFA TSV files, including broken rows."""

from __future__ import annotations

import base64
import io
import logging
import os

import orjson
import pytest
from PIL import Image

from ofa_core.plugin import BadRecordError, TsvIndex
from ofa_core.plugin._tsv import INDEX_SUFFIX
from ofa_tasks.caption.readers import MugeOptions, OfaCaptionTsvOptions, read_muge, read_ofa_caption_tsv


def encoded(mode: str = "RGB", fmt: str = "JPEG", urlsafe: bool = False) -> str:
    image = Image.new(mode, (24, 16), (200, 30, 40, 128)[: len(mode)] if mode != "P" else 3)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    return encode(buffer.getvalue()).decode()


@pytest.fixture
def muge(tmp_path):
    tsv = tmp_path / "IC_train.tsv"
    rows = [
        ("a1", encoded()),
        ("a2", encoded("RGBA", "PNG")),
        ("a3", encoded("RGB", "WEBP", urlsafe=True)),
        ("bad64", "!!!not-base64!!!"),
        ("notimg", base64.b64encode(b"hello world, not an image").decode()),
    ]
    tsv.write_text("".join(f"{key}\t{value}\n" for key, value in rows), encoding="utf-8")
    captions = tmp_path / "IC_train.jsonl"
    lines = [
        orjson.dumps({"image_id": "a1", "text": ["红色的鞋子", "一双红鞋"]}),
        b'{"image_id": "a2", "text": ["truncated',
        orjson.dumps({"image_id": "a2", "text": ["蓝色帽子"]}),
        orjson.dumps({"image_id": "missing", "text": ["没有图片"]}),
        orjson.dumps({"image_id": "bad64", "text": ["坏的"]}),
        orjson.dumps({"image_id": "notimg", "text": ["不是图片"]}),
        orjson.dumps({"image_id": "a3", "text": ["webp 图片"]}),
    ]
    captions.write_bytes(b"\n".join(lines) + b"\n")
    for name in ("IC_train.jsonl", "IC_train.tsv"):  # the same rows serve as the valid split
        (tmp_path / name.replace("train", "valid")).write_bytes((tmp_path / name).read_bytes())
    return MugeOptions(folder=str(tmp_path))


def test_muge_training_records_keep_an_images_captions_together(muge, caplog):
    with caplog.at_level(logging.WARNING):
        records = list(read_muge(muge, "train"))
    assert [r["id"] for r in records] == ["a1#0", "a1#1", "a2#0", "a3#0"]
    assert records[0]["caption"] == "红色的鞋子" and records[0]["references"] == ["红色的鞋子", "一双红鞋"]
    assert all(Image.open(io.BytesIO(r["image"])).size == (24, 16) for r in records)
    text = caplog.text
    assert "IC_train.jsonl:2" in text and "not a MUGE caption line" in text
    assert "IC_train.jsonl:4" in text and "image id missing has no row" in text
    assert "IC_train.tsv:4" in text and "IC_train.tsv:5" in text
    assert "skipped 4 bad records" in text


def test_muge_eval_records_are_one_per_image(muge):
    records = list(read_muge(muge, "valid"))
    assert [r["id"] for r in records] == ["a1", "a2", "a3"]
    assert records[0]["references"] == ["红色的鞋子", "一双红鞋"]


def test_bad_record_policy_error_names_file_and_line(muge):
    strict = MugeOptions(folder=muge.folder, bad_records="error")
    with pytest.raises(BadRecordError, match=r"IC_train\.jsonl:2: not a MUGE caption line.*bad_records"):
        list(read_muge(strict, "train"))


def test_index_is_cached_and_rebuilt_when_the_tsv_changes(muge):
    images = muge.files("train")[1]
    index = TsvIndex(images)
    cache = index.cache_path
    assert cache.name.endswith(INDEX_SUFFIX) and cache.exists()
    assert index["a2"][0] == "a2" and index.line_number("a3") == 3
    first = cache.stat().st_mtime_ns
    TsvIndex(images)
    assert cache.stat().st_mtime_ns == first  # reused, not rebuilt
    with open(images, "a", encoding="utf-8") as handle:
        handle.write(f"a9\t{encoded()}\n")
    os.utime(images, ns=(first + 10**9, first + 10**9))
    assert "a9" in TsvIndex(images)


def test_missing_files_are_one_line_errors(tmp_path):
    from ofa_core import OFAError

    with pytest.raises(OFAError, match="no such file"):
        TsvIndex(tmp_path / "nope.tsv")
    with pytest.raises(OFAError, match=r"data\.reader\.folder: .*IC_valid\.jsonl not found"):
        list(read_muge(MugeOptions(folder=str(tmp_path)), "valid"))


def test_official_caption_tsv_reader(tmp_path):
    path = tmp_path / "caption_val.tsv"
    path.write_text(
        f"1\timg1\ta dog runs&&a running dog\tdog\t{encoded()}\n"
        "2\timg2\tshort row\n"
        f"3\timg3\ta cat\tcat\t{encoded('L', 'PNG')}\n",
        encoding="utf-8",
    )
    records = list(read_ofa_caption_tsv(OfaCaptionTsvOptions(valid=str(path)), "valid"))
    assert [r["id"] for r in records] == ["img1", "img3"]
    assert records[0]["references"] == ["a dog runs", "a running dog"]


def test_official_caption_tsv_reads_the_file_of_each_split_and_muge_accepts_one_text(tmp_path):
    from ofa_core import OFAError

    with pytest.raises(OFAError, match=r"data\.reader\.train: no file for the train split"):
        list(read_ofa_caption_tsv(OfaCaptionTsvOptions(valid=str(tmp_path / "v.tsv")), "train"))
    (tmp_path / "IC_valid.jsonl").write_text('{"image_id": "a", "text": "一只猫"}\n', encoding="utf-8")
    (tmp_path / "IC_valid.tsv").write_text(f"a\t{encoded()}\n", encoding="utf-8")
    assert next(read_muge(MugeOptions(folder=str(tmp_path)), "valid"))["references"] == ["一只猫"]
