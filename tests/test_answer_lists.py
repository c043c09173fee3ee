"""Answer-list files: text or JSON in, answers in file order out, one-line errors naming file and line."""

from __future__ import annotations

import re

import pytest

from ofa_core import OFAError
from ofa_core.plugin import read_answer_list


def test_text_and_json_forms(tmp_path):
    text = tmp_path / "labels.txt"
    text.write_text("\ufeff猫\n\n 狗 \nred car\n", encoding="utf-8")
    assert read_answer_list(text, "labels_file") == ("猫", "狗", "red car")
    as_list, as_map = tmp_path / "a.json", tmp_path / "b.json"
    as_list.write_text('["yes", "no"]', encoding="utf-8")
    as_map.write_text('{"yes": 0, "no": 1, "2": 2}', encoding="utf-8")
    assert read_answer_list(as_list, "answers_file") == ("yes", "no")
    assert read_answer_list(as_map, "answers_file") == ("yes", "no", "2")


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("dup.txt", "猫\n狗\n猫\n", "line 3 repeats '猫' (line 1)"),
        ("empty.txt", "\n \n", "no answers"),
        ("bad.json", "[1, 2]", "list of strings"),
        ("broken.json", '["a"', "not valid JSON"),
        ("blank.json", '["a", " "]', "entry 2 is empty"),
    ],
)
def test_bad_files_name_the_file_field_and_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(OFAError, match=re.escape(message)) as info:
        read_answer_list(path, "task.options.labels_file")
    assert str(path) in str(info.value) and "task.options.labels_file" in str(info.value)


def test_missing_and_non_utf8_files(tmp_path):
    with pytest.raises(OFAError, match="cannot read"):
        read_answer_list(tmp_path / "nope.txt", "answers_file")
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(OFAError, match="not UTF-8"):
        read_answer_list(latin, "answers_file")
