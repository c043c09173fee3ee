"""Writing the demo folder: MUGE caption files, VQA and classification JSONL, and the model to start from.

Layout (all JSON lines; photos as `id<TAB>base64 JPEG`):

    demo.json                  what was generated: seed, sizes, counts, the files of each task
    muge/IC_{train,valid}.jsonl + .tsv    captions (`{"image_id", "text": [...]}`) and photos, as MUGE ships them
    images.tsv                 every photo once, for the readers that take one image TSV (VQA, classification)
    vqa/{train,valid}.jsonl + answers.txt    `{"id", "image", "question", "answers"}`, `image` an id in images.tsv
    classification/{train,valid}.jsonl + labels.txt    `{"id", "image", "label"}`
    model/                     random `ofa-demo` weights + processor: `model.checkpoint` for training from scratch

The folder is built under a temporary name and renamed into place, so it is either complete or absent.
The same seed and sizes give byte-identical files.
"""

from __future__ import annotations

import base64
import os
import random
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path

import attrs
import orjson
from tqdm.auto import tqdm

from ofa_core.demo import texts
from ofa_core.demo.images import draw_scene, jpeg_bytes
from ofa_core.demo.model import write_initial_model
from ofa_core.demo.scenes import Scene, sample_scene
from ofa_core.demo.sizes import DemoSizes

SPLITS = ("train", "valid")

MANIFEST = "demo.json"
"""Written last: a demo folder without it is incomplete."""


DEMO_TASKS = ("caption", "vqa", "classification")
"""The built-in tasks the demo recipes train; their prompts' characters join the demo vocabulary."""


def builtin_prompt_texts() -> list[str]:
    """The prompts of the demo's tasks: the demo tokenizer must cover their characters too.

    Only these tasks, so that a new built-in task's prompt does not change the vocabulary, hence the size of the
    embedding drawn first from the seeded generator, hence every initial weight and the demo's measured scores."""
    from ofa_core.registry.discovery import PluginLoader

    loader = PluginLoader(
        environ={"OFA_LOAD_PLUGINS": ""}
    )  # this project's own plugins only: same vocabulary everywhere
    loader.load_entry_points()
    registry = loader.registry()
    names = {registry.tasks.get(task).prompts[lang] for task in DEMO_TASKS for lang in registry.tasks.get(task).prompts}
    return [entry.spec.source + entry.spec.target for entry in registry.prompts.entries() if entry.name in names]


def _rotating(items: list, index: int, count: int) -> list:
    """`count` consecutive items starting at `index` (cyclically), so every phrasing gets used."""
    return [items[(index + offset) % len(items)] for offset in range(count)]


def _jsonl(path: Path, rows: Iterable[dict]) -> int:
    lines = [orjson.dumps(row) + b"\n" for row in rows]
    path.write_bytes(b"".join(lines))
    return len(lines)


def _split(scenes: list[Scene], split: str, sizes: DemoSizes) -> dict[str, list[dict]]:
    """The caption, VQA and classification rows of one split."""
    train = split == "train"
    captions, questions, labels = [], [], []
    for index, scene in enumerate(scenes):
        image_id = f"{split}-{index:05d}"
        phrasings = texts.captions(scene)
        captions.append(
            {"image_id": image_id, "text": _rotating(phrasings, index, sizes.train_captions) if train else phrasings}
        )
        asked = texts.questions(scene)
        for number, (question, answer) in enumerate(_rotating(asked, index, sizes.train_questions) if train else asked):
            questions.append(
                {"id": f"{image_id}-q{number}", "image": image_id, "question": question, "answers": [answer]}
            )
        labels.append({"id": image_id, "image": image_id, "label": texts.label(scene)})
    return {"captions": captions, "questions": questions, "labels": labels}


def generate(root: Path, sizes: DemoSizes = DemoSizes()) -> dict:
    """Write the demo folder at `root` (replacing it); returns the manifest."""
    root = Path(root)
    tmp = root.parent / f".{root.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        manifest = _write(tmp, sizes)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if root.exists():
        shutil.rmtree(root)
    os.replace(tmp, root)
    return manifest


def _write(folder: Path, sizes: DemoSizes) -> dict:
    for part in ("muge", "vqa", "classification"):
        (folder / part).mkdir(parents=True)
    rng = random.Random(sizes.seed)
    counts: dict[str, int] = {"train_images": sizes.train_images, "valid_images": sizes.valid_images}
    bar = tqdm(
        total=sizes.train_images + sizes.valid_images, desc="demo photos", unit="photo", disable=not sys.stderr.isatty()
    )
    with open(folder / "images.tsv", "wb") as all_images:
        for split in SPLITS:
            scenes = [sample_scene(rng) for _ in range(getattr(sizes, f"{split}_images"))]
            rows = _split(scenes, split, sizes)
            with open(folder / "muge" / f"IC_{split}.tsv", "wb") as split_images:
                for row, scene in zip(rows["captions"], scenes):
                    line = row["image_id"].encode() + b"\t" + base64.b64encode(jpeg_bytes(draw_scene(scene))) + b"\n"
                    split_images.write(line)
                    all_images.write(line)
                    bar.update(1)
            _jsonl(folder / "muge" / f"IC_{split}.jsonl", rows["captions"])
            counts[f"{split}_captions"] = sum(len(row["text"]) for row in rows["captions"])
            counts[f"{split}_questions"] = _jsonl(folder / "vqa" / f"{split}.jsonl", rows["questions"])
            _jsonl(folder / "classification" / f"{split}.jsonl", rows["labels"])
    bar.close()
    (folder / "classification" / "labels.txt").write_text(
        "".join(f"{label}\n" for label in texts.LABELS), encoding="utf-8"
    )
    (folder / "vqa" / "answers.txt").write_text("".join(f"{answer}\n" for answer in texts.ANSWERS), encoding="utf-8")
    write_initial_model(folder / "model", sizes.seed, builtin_prompt_texts())
    manifest = {
        "sizes": attrs.asdict(sizes),
        "counts": counts,
        "model": "model",
        "caption": "muge",
        "vqa": "vqa",
        "classification": "classification",
        "images": "images.tsv",
    }
    (folder / MANIFEST).write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    return manifest
