"""The official caption recipes and the official caption TSV as OFA's caption dataset reads it."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import orjson
import pytest
from PIL import Image

from ofa_core.cli import main
from ofa_core.model.generation_config import official_generation_config
from ofa_core.testing import tiny_checkpoint
from ofa_tasks.caption.readers import OfaCaptionTsvOptions, read_ofa_caption_tsv
from ofa_tasks.caption.text import official_caption

OFFICIAL = Path(__file__).resolve().parents[2] / "recipes" / "official"
# recipe -> (official checkpoint its setup names, search, beams, max new tokens, no-repeat, metric tokenizer)
RECIPES = {
    "caption_coco.json": ("caption_base_best.pt", "caption", 5, 17, 3, "en"),
    "caption_muge.json": ("caption_cn_base.pt", "caption-zh", 8, 129, 3, "zh"),
}


def png(colour: tuple[int, int, int]) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), colour).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_official_text_cleaning_drops_ascii_punctuation_only() -> None:
    assert official_caption("  A man, riding a horse!  ") == "A man riding a horse"
    assert official_caption("一双红色的鞋子，很好看。") == "一双红色的鞋子，很好看。"
    assert official_caption("<code_12> x") == "code12 x"


def test_training_rows_use_the_uniq_id_and_evaluation_rows_the_image_id(tmp_path: Path) -> None:
    """OFA reads training TSVs as cols 0,4,2 and evaluation ones as 1,4,2; captions lose ASCII punctuation."""
    path = tmp_path / "caption.tsv"
    path.write_text(
        f"17\t391895\tA man, riding a horse!\thorse&&man\t{png((200, 30, 30))}\n"
        f"18\t522418\tA woman cutting cake.&& a  cake on a table ...&&!!\t\t{png((30, 30, 200))}\n",
        encoding="utf-8",
    )
    options = OfaCaptionTsvOptions(train=str(path), valid=str(path))
    train = list(read_ofa_caption_tsv(options, "train"))
    valid = list(read_ofa_caption_tsv(options, "valid"))
    assert [r["id"] for r in train] == ["17", "18"] and [r["id"] for r in valid] == ["391895", "522418"]
    assert train[0]["caption"] == "A man riding a horse"
    assert valid[1]["references"] == ["A woman cutting cake", "a cake on a table"]


@pytest.fixture(scope="module")
def model_and_data(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("official")
    tiny_checkpoint(folder / "model")
    rows = [f"{n}\t{500 + n}\ta red square&&a red block\t\t{png((220, 20 * n, 20))}\n" for n in range(3)]
    (folder / "caption_val.tsv").write_text("".join(rows), encoding="utf-8")
    return folder / "model", folder / "caption_val.tsv"


def overrides(model: Path, tsv: Path, train: bool = True) -> list[str]:
    """The converted model and one TSV in place of the official ones (validation checks the training split too)."""
    return [
        "--set",
        f"model.checkpoint={model}",
        "--set",
        f"data.reader.valid={tsv}",
        "--set",
        f"data.reader.train={tsv if train else 'null'}",
        "--set",
        "data.reader.test=null",
        "--set",
        'training.mixed_precision="no"',
    ]


@pytest.mark.parametrize("name", list(RECIPES))
def test_recipe_shows_its_setup_until_weights_and_data_exist(name: str, model_and_data, capsys) -> None:
    checkpoint, search, beams, new_tokens, no_repeat, tokenize = RECIPES[name]
    recipe = orjson.loads((OFFICIAL / name).read_bytes())
    assert recipe["data"]["reader"]["name"] == "ofa_caption_tsv" and recipe["generation"] == search
    assert recipe["metrics"] == [{"name": "caption", "tokenize": tokenize}]
    config = official_generation_config(search)
    assert (config.num_beams, config.max_new_tokens, config.min_new_tokens, config.no_repeat_ngram_size) == (
        beams,
        new_tokens,
        1,
        no_repeat,
    )
    assert main(["recipe", "validate", str(OFFICIAL / name)]) == 2
    err = capsys.readouterr().err
    assert "To set up this recipe: download" in err and checkpoint in err
    assert main(["recipe", "validate", str(OFFICIAL / name), *overrides(*model_and_data)]) == 0


def test_coco_recipe_scores_the_validation_tsv_by_image_id(model_and_data, tmp_path: Path, capsys) -> None:
    model, valid = model_and_data
    changes = [*overrides(model, valid, train=False), "--set", f"output_dir={tmp_path / 'run'}"]
    assert main(["eval", str(OFFICIAL / "caption_coco.json"), "--checkpoint", str(model), *changes]) == 0
    scores = orjson.loads(capsys.readouterr().out)
    assert scores["examples"] == 3 and {"cider", "bleu4", "rouge_l"} <= set(scores)
    written = sorted((tmp_path / "run").glob("predictions-valid*.jsonl"))
    assert written
    rows = [orjson.loads(line) for line in written[0].read_bytes().splitlines()]
    assert sorted(row["id"] for row in rows) == ["500", "501", "502"]


def test_muge_recipe_can_read_muges_own_files_instead(model_and_data, tmp_path: Path, capsys) -> None:
    """The setup's alternative: replace the reader with `muge` on a folder (here an empty one)."""
    model, _ = model_and_data
    reader = orjson.dumps({"name": "muge", "folder": str(tmp_path)}).decode()
    assert (
        main(
            [
                "recipe",
                "validate",
                str(OFFICIAL / "caption_muge.json"),
                "--set",
                f"model.checkpoint={model}",
                "--set",
                f"data.reader={reader}",
            ]
        )
        == 2
    )
    assert f"data.reader.folder: {tmp_path / 'IC_train.jsonl'} not found" in capsys.readouterr().err
