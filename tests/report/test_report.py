"""The evaluation report: `ofa report` on a grounding file written without scores, `ofa eval --report` on a tiny
closed-set model, the page's parts (boxes, answers, curves, sections) and one-line errors."""

from __future__ import annotations

import os
import re
import shutil
from types import SimpleNamespace

import orjson
import pytest
from PIL import Image

from ofa_core.cli import main
from ofa_core.cli.report import task_files
from ofa_core.report import build
from ofa_core.report.cards import probabilities
from ofa_core.report.curves import read_curves
from ofa_core.testing import fake_image, tiny_checkpoint
from tests.report.conftest import BOXES, report_command
from tests.report.pages import assert_complete_and_worst_first, read_sections


def _cards(html: str) -> list[dict[str, str]]:
    return [dict(re.findall(r'data-(id|score)="([^"]*)"', match)) for match in re.findall(r"<article [^>]*>", html)]


def test_ofa_report_scores_rows_draws_boxes_and_curves(grounding, tmp_path, capsys) -> None:
    out = tmp_path / "report.html"
    code = main(report_command(grounding, out, "--run", str(grounding["run"])))
    assert code == 0 and capsys.readouterr().out.strip() == str(out)
    html = out.read_text()
    cards = _cards(html)
    assert sorted(card["id"] for card in cards) == sorted(BOXES)
    scores = [float(card["score"]) for card in cards]
    assert scores == sorted(scores), "worst first"
    assert cards[0]["id"] == "g3" and scores[0] == 0.0 and cards[-1]["id"] == "g0"
    assert html.count("data:image/jpeg;base64,") == len(BOXES)
    assert html.count('class="predicted"') == len(BOXES) and html.count('class="reference"') == len(BOXES)
    assert 'viewBox="0 0 64 48"' in html  # boxes drawn in the original image's pixels
    assert "the grey block" in html and "incorrect" in html and "correct" in html
    assert "acc@0.5 <b>50.00</b>" in html  # the metric computed from the rows: 2 hits of 4
    assert html.count('<svg class="curve"') == 4  # train loss, train lr, eval acc@0.5, eval miou
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "") and "https://" not in html


def test_report_limit_keeps_the_worst_and_states_the_counts(grounding, tmp_path, capsys) -> None:
    out = tmp_path / "two.html"
    assert main(report_command(grounding, out, "--report-limit", "2")) == 0
    html = out.read_text()
    assert [card["id"] for card in _cards(html)] == ["g3", "g1"]
    assert "2 of 4 examples shown" in html and "the other 2 are in the predictions file" in html
    assert '<svg class="curve"' not in html  # no --run


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["missing.jsonl"], "missing.jsonl: PREDICTIONS: no such file"),
        (["PREDICTIONS", "--report-limit", "0"], "--report-limit: 0 shows no example"),
        (["PREDICTIONS", "--run", "nowhere"], "nowhere: --run: no log.jsonl"),
        (["BROKEN"], "line 2 is not JSON"),
        (["UNKNOWN"], "1 of the 4 ids to show (e.g. 'g9') are not in the valid split"),
    ],
)
def test_bad_input_is_one_line_with_exit_2(grounding, tmp_path, capsys, arguments, expected) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "g0", "prediction": [1, 2, 3, 4], "references": []}\nnot json\n')
    unknown = tmp_path / "unknown.jsonl"  # predictions of another split or data file: no image to show
    unknown.write_bytes(grounding["predictions"].read_bytes().replace(b'"g2"', b'"g9"'))
    files = {"PREDICTIONS": str(grounding["predictions"]), "BROKEN": str(broken), "UNKNOWN": str(unknown)}
    arguments = [files.get(argument, argument) for argument in arguments]
    code = main(["report", *arguments, "--recipe", str(grounding["recipe"]), "--out", str(tmp_path / "r.html")])
    err = capsys.readouterr().err
    assert code == 2 and expected in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_ofa_eval_report_shows_every_example_with_its_top_answers(tmp_path, capsys) -> None:
    labels = ["red", "cat", "golden retriever"]
    for index, label in enumerate(labels):
        folder = tmp_path / "squares" / "val" / label
        folder.mkdir(parents=True)
        Image.new("RGB", (24, 24), (80 * index, 40, 200 - 60 * index)).save(folder / "0.png")
    tiny_checkpoint(tmp_path / "model")
    recipe = {
        "model": {"checkpoint": "model"},
        "task": {"name": "classification", "lang": "en", "options": {"labels": labels}},
        "data": {"reader": {"name": "image_folder", "root": "squares"}},
        "training": {"output_dir": "run", "report_to": "none", "per_device_eval_batch_size": 4},
    }
    (tmp_path / "recipe.json").write_bytes(orjson.dumps(recipe))
    out, predictions = tmp_path / "report.html", tmp_path / "predictions.jsonl"
    code = main(
        [
            "eval",
            str(tmp_path / "recipe.json"),
            "--checkpoint",
            str(tmp_path / "model"),
            "--predictions",
            str(predictions),
            "--report",
            str(out),
        ]
    )
    result = orjson.loads(capsys.readouterr().out)
    assert code == 0 and result["report"] == str(out)
    rows = [orjson.loads(line) for line in predictions.read_bytes().splitlines()]
    assert sum(row["score"] for row in rows) / len(rows) == pytest.approx(result["accuracy"])
    assert all(row["correct"] == (row["prediction"] == row["references"][0]) for row in rows)
    meta = orjson.loads(predictions.with_name(predictions.name + ".meta.json").read_bytes())
    assert meta["score"] == {"metric": "classification", "key": "accuracy"}
    assert meta["scores"]["accuracy"] == pytest.approx(result["accuracy"]) and meta["machine"]["cores"] >= 1
    html = out.read_text()
    assert len(_cards(html)) == 3 and html.count("data:image/jpeg;base64,") == 3
    assert html.count('<ol class="answers">') == 3 and html.count("%</span>") == 9  # every label with its probability
    assert meta["machine"]["cpu"] in html


def test_probabilities_are_a_softmax_over_every_answer() -> None:
    ranking = [{"answer": "a", "score": -0.1}, {"answer": "b", "score": -2.0}, {"answer": "c", "score": -9.0}]
    top = probabilities(ranking, top=2)
    assert [answer for answer, _ in top] == ["a", "b"]
    assert sum(p for _, p in probabilities(ranking)) == pytest.approx(1.0) and top[0][1] > 0.85


def test_a_mixture_gets_one_section_per_task_and_text_only_rows_show_their_text(tmp_path) -> None:
    image = fake_image(1, (40, 30))
    caption = build.Section(
        label="caption",
        task="caption",
        prompt=" what does the image describe?",
        rows=[{"id": 1, "prediction": "a cat", "references": ["a cat"], "score": 80.0}],
        records={"1": {"id": 1, "image": image}},
        scores={"cider": 80.0},
        score_name="caption: cider",
    )
    summary = build.Section(
        label="summary",
        task="summarization",
        prompt=' what is the summary of article " {source} "?',
        rows=[{"id": "s", "prediction": "storm hits", "references": ["rain"], "score": 0.0}],
        records={"s": {"id": "s", "source": "a storm hit the coast", "image": None}},
        scores={"rougeL": 0.0},
        score_name="rouge: rougeL",
    )
    html = build.write([caption, summary], tmp_path / "mixture.html").read_text()
    assert html.count('<section class="task"') == 2 and "summarization" in html
    assert "a storm hit the coast" in html and html.count("data:image/jpeg;base64,") == 1


def test_curves_skip_bookkeeping_and_cut_lines(tmp_path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_bytes(
        b'{"step": 1, "split": "train", "loss": 2.0, "lr": 0.1, "samples_per_s": 9.0}\n'
        b'{"step": 2, "split": "eval", "cider": 10.0, "class/x/f1": 3.0, "precision": "fp32"}\n{"step": 3, "spl'
    )
    assert [curve.title for curve in read_curves(log)] == ["train loss", "train lr", "eval cider"]


def test_ofa_report_on_a_mixture_gives_each_task_its_section(mixture, capsys) -> None:
    out = mixture["root"] / "limited.html"
    arguments = ["report", *map(str, mixture["files"]), "--recipe", str(mixture["recipe"]), "--out", str(out)]
    assert main([*arguments, "--report-limit", "3"]) == 0
    boxes, summary = read_sections(out.read_text())
    assert (boxes["title"], summary["title"]) == ("boxes", "summary")
    assert boxes["counts"].startswith("3 of 4 examples shown")
    assert "the other 1 are in the predictions file (--report-limit 3)" in boxes["counts"]
    assert summary["counts"].startswith("3 of 3 examples shown, worst first by per-example score (rouge: rougeL)")
    assert_complete_and_worst_first(boxes)
    assert_complete_and_worst_first(summary, images=False)  # text only: the article is the card's text
    assert [card["id"] for card in boxes["cards"]] == ["g3", "g1", "g2"]
    assert all(card["boxes"] == (1, 1) for card in boxes["cards"])
    assert [card["id"] for card in summary["cards"]] == ["s:3", "s:2", "s:1"]
    assert summary["cards"][0]["prompt"] == 'what is the summary of article " the cat slept on a warm mat "?'
    assert [card["score"] for card in summary["cards"]] == [0.0, pytest.approx(50.0), 100.0]
    capsys.readouterr()


def test_ofa_eval_report_of_a_run_s_checkpoint_shows_its_curves(grounding, tmp_path, capsys) -> None:
    folder = tmp_path / "work"
    shutil.copytree(grounding["root"], folder)
    tiny_checkpoint(folder / "run" / "checkpoint-40")
    out = folder / "report.html"
    checkpoint = str(folder / "run" / "checkpoint-40")
    arguments = ["eval", str(folder / "recipe.json"), "--checkpoint", checkpoint, "--report", str(out)]
    assert main(arguments) == 0
    result = orjson.loads(capsys.readouterr().out)
    page = out.read_text()
    titles = re.findall(r'<svg class="curve"[^>]* aria-label="([^"]*)"', page)
    assert titles == ["train loss", "train lr", "eval acc@0.5", "eval miou"], titles
    assert f"from run {folder / 'run'}" in page
    (section,) = read_sections(page)
    assert_complete_and_worst_first(section)
    assert all(card["boxes"] == (1, 1) for card in section["cards"])  # the model's box and the reference, drawn
    assert result["report"] == str(out) and len(section["cards"]) == len(BOXES)


def test_ofa_report_on_a_run_directory_takes_its_newest_predictions_and_curves(grounding, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    shutil.copytree(grounding["run"], run)
    older = run / "predictions-valid-checkpoint-20.jsonl"
    older.write_bytes(grounding["predictions"].read_bytes().replace(b'"g3"', b'"g9"'))  # would be refused
    final = run / "predictions-valid-checkpoint-40.jsonl"
    final.write_bytes(grounding["predictions"].read_bytes())
    os.utime(older, ns=(1, 1))
    assert main(["report", str(run), "--recipe", str(grounding["recipe"])]) == 0
    out = run / "predictions-valid-checkpoint-40.html"
    assert capsys.readouterr().out.strip() == str(out)
    page = out.read_text()
    assert page.count('<svg class="curve"') == 4 and f"from run {run}" in page  # the folder's log, without --run
    (section,) = read_sections(page)
    assert [card["id"] for card in section["cards"]][0] == "g3"


def test_ofa_report_on_a_mixture_s_run_directory_and_a_stray_file(mixture, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    run.mkdir()
    for path in mixture["files"]:  # as ofa eval names a mixture's files
        shutil.copy(path, run / f"predictions-valid-checkpoint-40-{path.stem.split('-')[-1]}.jsonl")
    assert main(["report", str(run), "--recipe", str(mixture["recipe"]), "--out", str(tmp_path / "r.html")]) == 0
    assert [section["title"] for section in read_sections((tmp_path / "r.html").read_text())] == ["boxes", "summary"]
    stray = tmp_path / "predictions.jsonl"
    stray.write_bytes(mixture["files"][0].read_bytes())
    code = main(["report", str(mixture["files"][0]), str(stray), "--recipe", str(mixture["recipe"])])
    err = capsys.readouterr().err
    assert code == 2 and f"{stray}: PREDICTIONS: not named after a task of the mixture" in err
    assert len(err.strip().splitlines()) == 1


def test_a_mixture_file_fitting_two_labels_goes_to_the_longer(tmp_path) -> None:
    tasks = [SimpleNamespace(label="zh-vqa"), SimpleNamespace(label="vqa")]
    paths = [tmp_path / "p-zh-vqa.jsonl", tmp_path / "p-vqa.jsonl"]
    for path in paths:
        path.touch()
    assert task_files(tasks, paths) == {"zh-vqa": paths[0], "vqa": paths[1]}
    assert task_files(tasks, paths[::-1]) == {"zh-vqa": paths[0], "vqa": paths[1]}


def test_a_box_given_right_corner_first_is_drawn_with_positive_size(tmp_path) -> None:
    boxes = build.Section(
        label="",
        task="grounding",
        prompt="which region?",
        rows=[{"id": "r", "prediction": [40.0, 30.0, 8.0, 6.0], "references": [[8, 8, 40, 40]], "score": 0.0}],
        records={"r": {"id": "r", "image": fake_image(2, (64, 48))}},
        scores={"miou": 0.0},
        score_name="grounding: miou",
    )
    page = build.write([boxes], tmp_path / "reversed.html").read_text()
    assert '<rect class="predicted" x="8.0" y="6.0" width="32.0" height="24.0"/>' in page  # the browser draws it
    assert "[40, 30, 8, 6]" in page  # the prediction as the model gave it
