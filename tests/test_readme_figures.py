"""benchmarks/readme_figures.py: the commands it runs for each seed, and a table in the README's format with the
machine and the min–max spread (the runs themselves are replaced by a stub: the real ones take minutes)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]
SPEC = importlib.util.spec_from_file_location("readme_figures", REPO / "benchmarks" / "readme_figures.py")
figures = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(figures)

FINAL = {
    "demo_caption.json": {"cider": 451.0, "bleu4": 93.5, "rouge_l": 95.5},
    "demo_vqa.json": {"vqa_acc": 91.0},
    "demo_classification.json": {"accuracy": 98.3},
    "demo_multitask.json": {"caption/cider": 382.7, "vqa/vqa_acc": 85.0, "classification/accuracy": 98.3},
}


class Stub:
    """Answers each command as `ofa run` / `ofa eval` would, a little better per seed; takes 10 s per seed step."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], str]] = []
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def __call__(self, argv: list[str], environ) -> dict:
        self.calls.append((argv, environ["OFA_CACHE_DIR"]))
        recipe = Path(argv[1]).name
        if argv[0] == "eval":
            return {"cider": 0.0, "vqa_acc": 3.0, "accuracy": 15.0}
        seed = int(next(part for part in argv if part.startswith("training.seed=")).split("=")[1])
        self.now += 60 + 10 * seed
        return {"final_eval": {key: value + seed for key, value in FINAL[recipe].items()}}


def test_each_seed_runs_every_recipe_from_a_fresh_demo_folder(tmp_path) -> None:
    stub = Stub()
    figures.measure([0, 1], tmp_path, 5, stub, stub.clock)
    runs = [(argv, cache) for argv, cache in stub.calls if argv[0] == "run"]
    assert [Path(argv[1]).name for argv, _ in runs] == [row.recipe for row in figures.ROWS] * 2
    for argv, cache in runs:
        seed = 0 if "training.seed=0" in argv else 1
        assert cache == str(tmp_path / f"seed-{seed}" / "cache")
        assert "training.max_steps=5" in argv and "training.eval_steps=5" in argv
        if Path(argv[1]).name in ("demo_vqa.json", "demo_classification.json"):
            assert f'model.checkpoint="{tmp_path / f"seed-{seed}" / "demo_caption"}"' in argv
    evals = [argv for argv, _ in stub.calls if argv[0] == "eval"]
    assert len(evals) == 3 and all(str(tmp_path / "seed-0" / "cache" / "demo" / "model") in argv for argv in evals)


def test_the_table_has_the_readme_s_format_machine_and_spread(tmp_path, capsys) -> None:
    stub = Stub()
    assert (
        figures.main(
            ["--seeds", "0", "1", "2", "--max-steps", "2", "--work", str(tmp_path)], runner=stub, clock=stub.clock
        )
        == 0
    )
    printed = capsys.readouterr().out.strip().splitlines()
    from ofa_core.inference.machine import cpu_model

    assert cpu_model() in printed[0] and " cores " in printed[0] and "seeds 0, 1, 2: median (min–max)" in printed[0]
    readme = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    start = readme.index(printed[2])  # the README's table starts with the same header
    assert readme[start + 1] == printed[3]
    ours, theirs = printed[4:8], readme[start + 2 : start + 6]
    assert [line.split(" | ")[0] for line in ours] == [line.split(" | ")[0] for line in theirs]  # the same recipes
    assert ours[0] == (
        "| `demo_caption.json` (data generation included) | 1 min 10 s (1 min 0 s – 1 min 20 s) | "
        "CIDEr-D 452.0 (451.0–453.0), BLEU-4 94.5 (93.5–95.5), ROUGE-L 96.5 (95.5–97.5) | CIDEr-D 0.0 |"
    )
    assert ours[1].endswith("| VQA accuracy 92.0 (91.0–93.0) | 3.0 |")
    assert ours[3].endswith("accuracy 99.3 (98.3–100.3) | as above |")
    for line in ours:
        assert re.fullmatch(r"\| .+ \| (\d+ min )?\d+ s \(.+–.+\) \| .+ \| .+ \|", line), line


@pytest.mark.parametrize(("seconds", "shown"), [(29.4, "29 s"), (76.0, "1 min 16 s"), (253.0, "4 min 13 s")])
def test_wall_time_as_the_readme_writes_it(seconds, shown) -> None:
    assert figures.wall_time(seconds) == shown
