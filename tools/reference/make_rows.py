"""Write the parity suite's rows (tests/official/data/*.tsv): real photos in the official TSV layouts.

Run by hand, in any Python with scikit-image and Pillow (not a project dependency):
    python tools/reference/make_rows.py [NAME ...]
The photos are those scikit-image ships (skimage.data), shrunk to at most 192 pixels a side and stored as JPEG
(base64), so that the committed files stay small; the captions are written by hand for each photo. Existing
files are replaced; the goldens made from them must then be made again (tools/reference/make_goldens.py).

A model with random weights says nothing a person would, so against the photos' own captions every metric is 0
and a wrong metric would pass unseen. Once a golden exists, give its first rows an "echo" reference (the official
prediction less its last word, or last two characters for Chinese) so that the metric lies strictly between its
extremes; references do not reach the model, so the predictions stay the same:
    python tools/reference/make_rows.py --echo tests/official/goldens/caption_coco.json caption_en
then make the goldens of that row set again.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
from collections.abc import Callable
from pathlib import Path

from PIL import Image

DATA = Path(__file__).resolve().parents[2] / "tests/official/data"
MAX_SIDE = 192


def photo(name: str, crop: tuple[int, int, int, int] | None = None) -> str:
    """skimage.data's photo `name` (cut to `crop`, left, upper, right, lower, when given) as base64 JPEG (grey
    photos stay grey: the official reader converts them)."""
    import skimage.data

    image = Image.fromarray(getattr(skimage.data, name)())
    if crop is not None:
        image = image.crop(crop)
    image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=75)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


# (photo, image id, English captions, Chinese captions, object labels)
CAPTIONS = [
    (
        "astronaut",
        "391895",
        [
            "an astronaut in a white space suit holding a helmet",
            "a woman astronaut posing in front of an american flag",
            "a smiling astronaut in a spacesuit",
        ],
        ["身穿白色宇航服的宇航员站在国旗前", "一位女宇航员手拿头盔微笑"],
        "person&&flag&&helmet",
    ),
    (
        "chelsea",
        "522418",
        ["a tabby cat sitting and looking to the side", "an orange and brown cat on a grey floor"],
        ["一只橘色的虎斑猫坐在地上", "虎斑猫侧着头看向一旁"],
        "cat",
    ),
    (
        "coffee",
        "184613",
        ["a cup of coffee on a saucer with a spoon", "a white coffee cup on a red table"],
        ["红色桌子上放着一杯咖啡", "白色咖啡杯和勺子"],
        "cup&&spoon&&dining table",
    ),
    (
        "camera",
        "318219",
        ["a black and white photo of a man with a camera on a tripod", "a photographer standing in a field"],
        ["黑白照片里一个男人在草地上用相机拍照"],
        "",
    ),
]


def caption_rows(language: str) -> list[list[str]]:
    """OFA's caption TSV: uniq-id, image-id, captions joined by '&&', object labels, image."""
    rows = []
    for index, (name, image_id, english, chinese, objects) in enumerate(CAPTIONS):
        captions = english if language == "en" else chinese
        rows.append([str(index), image_id, "&&".join(captions), objects, photo(name)])
    return rows


# GLUE rows: (texts, label as the official file writes it), per task; the texts are written by hand.
GLUE = {
    "sst2": [
        (["a gripping , beautifully acted film"], "1"),
        (["the plot is thin and the jokes fall flat"], "0"),
        (["an utterly forgettable sequel"], "0"),
        (["warm , funny and surprisingly wise"], "1"),
        (["it never finds its footing"], "0"),
    ],
    "cola": [
        (["the cat sat on the mat ."], "1"),
        (["the cat sat mat the on ."], "0"),
        (["she has been reading all morning ."], "1"),
        (["him went to the store yesterday ."], "0"),
    ],
    "rte": [
        (["a man is playing a guitar on stage .", "a person plays music ."], "entailment"),
        (["the company reported record profits this year .", "the company lost money ."], "not_entailment"),
        (["two dogs run across a snowy field .", "animals are outside ."], "entailment"),
        (["the museum opens at nine .", "the museum is closed all week ."], "not_entailment"),
    ],
    "mrpc": [
        (["the storm knocked out power to thousands of homes .", "thousands of homes lost power in the storm ."], "1"),
        (["shares rose two percent on monday .", "the minister resigned on monday ."], "0"),
        (["he was born in a small village .", "his birthplace was a small village ."], "1"),
        (["the bridge will reopen next spring .", "the school hired ten new teachers ."], "0"),
    ],
    "qnli": [
        (["what colour is the sky ?", "on a clear day the sky looks blue ."], "entailment"),
        (["who wrote the novel ?", "the film was shot in three months ."], "not_entailment"),
        (["how tall is the tower ?", "the tower rises 300 metres above the city ."], "entailment"),
        (["when did the war end ?", "the river floods every spring ."], "not_entailment"),
    ],
    "qqp": [
        (["how do i learn to cook ?", "what is the best way to learn cooking ?"], "1"),
        (["why is the sea salty ?", "how do airplanes fly ?"], "0"),
        (["what is a good laptop for students ?", "which laptop should a student buy ?"], "1"),
        (["where can i watch old movies ?", "how do i fix a flat tyre ?"], "0"),
    ],
    "mnli": [
        (["a woman is slicing tomatoes in a kitchen .", "someone is preparing food ."], "1"),
        (["the children are asleep .", "the children are playing football ."], "2"),
        (["a man is reading a newspaper on a bench .", "the man is waiting for a friend ."], "0"),
        (["the shop sells fresh bread every morning .", "bread is sold at the shop ."], "1"),
    ],
}

# Where the official selected_cols put each task's texts and label (run_scripts/glue/train_<task>.sh).
GLUE_COLUMNS = {
    "sst2": (0, 1),
    "cola": (1, 2),
    "rte": (1, 2, 3),
    "mrpc": (0, 1, 2),
    "qnli": (1, 2, 3),
    "qqp": (3, 4, 5),
    "mnli": (0, 1, 2),
}


def glue_rows(task: str) -> list[list[str]]:
    """The task's rows with its texts and label at its selected columns; other columns hold a row number."""
    columns = GLUE_COLUMNS[task]
    rows = []
    for index, (texts, label) in enumerate(GLUE[task]):
        row = [str(index)] * (max(columns) + 1)
        for column, value in zip(columns, [*texts, label]):
            row[column] = value
        rows.append(row)
    return rows


# Gigaword rows (article, headline), written by hand in the dataset's lower-cased, tokenized style.
GIGAWORD = [
    (
        "the city council approved a new budget on tuesday that raises spending on schools and roads by ## percent .",
        "council approves budget with more for schools and roads",
    ),
    (
        "heavy rain caused flooding in several northern towns , forcing hundreds of residents to leave their homes .",
        "floods force hundreds from homes in north",
    ),
    (
        "the national football team beat its rivals #-# in a friendly match played in front of a full stadium .",
        "national team wins friendly match",
    ),
    (
        "oil prices fell sharply on monday after reports that production would increase next month .",
        "oil prices fall on production reports",
    ),
]


# RefCOCO rows per photo: (photo, image id, [(English expression, Chinese expression, box x0,y0,x1,y1 in pixels of
# the stored photo)]); the boxes were drawn by hand on the 192-pixel photos. Each row repeats its image, as the official
# files do, so six rows keep the files near 55 KB.
REGIONS = [
    (
        "astronaut",
        "391895",
        [
            ("the woman in the orange space suit", "穿橙色宇航服的女人", "8,5,138,192"),
            ("the black helmet on the right", "右边的黑色头盔", "110,128,192,192"),
        ],
    ),
    ("chelsea", "522418", [("the cat's left eye", "猫的左眼", "57,35,90,62")]),
    ("coffee", "184613", [("the spoon next to the cup", "杯子旁边的勺子", "100,20,128,105")]),
    (
        "camera",
        "318219",
        [("the man with the camera", "拿着相机的男人", "0,25,125,192"), ("the tripod", "三脚架", "85,70,150,192")],
    ),
]


def refcoco_rows(language: str) -> list[list[str]]:
    """OFA's RefCOCO TSV (uniq-id, image-id, text, box, image; selected_cols 0,4,2,3) or the RefCOCO-CN layout of
    evaluate_refcoco_cn.sh (uniq-id, text, box, image; selected_cols 0,3,1,2)."""
    rows = []
    for name, image_id, regions in REGIONS:
        image = photo(name)
        for number, (english, chinese, box) in enumerate(regions):
            uniq_id = f"{image_id}_{number}"
            rows.append(
                [uniq_id, image_id, english, box, image] if language == "en" else [uniq_id, chinese, box, image]
            )
    return rows


# OCR rows: (photo, crop or None, label). The labels are Chinese shop-sign texts written by hand; one is in traditional
# characters and one has full-width letters and digits, which the official dataset normalises. The photos are square
# (no padding), landscape (padded above and below) and portrait crops (padded left and right).
SIGNS = [
    ("astronaut", None, "宇航员与国旗"),
    ("coffee", None, "營業時間早上八點"),
    ("chelsea", None, "宠物医院ＡＢＣ１２３"),
    ("text", None, "文字识别"),
    ("rocket", (200, 0, 460, 427), "火箭发射中心"),
    ("camera", (40, 0, 300, 512), "摄影器材专卖店"),
]


def ocr_rows() -> list[list[str]]:
    """OFA-OCR's TSV (uniq-id, image, text; selected_cols 0,1,2)."""
    return [[f"ocr_{index}", photo(name, crop), label] for index, (name, crop, label) in enumerate(SIGNS)]


# VQA rows: (photo, image id, question, answers as "confidence|!+answer" joined by "&&", object labels joined by
# "&&"), in OFA's vqa_val.tsv layout. The questions test OFA's cleaning (upper case, "-" and "/", a missing "?");
# one row has no objects (the prompt still gets " object: "). The answers list (data/vqa_ans2label.json, in the
# form docs/tasks/vqa.md exports trainval_ans2label.pkl to, written by hand) has 28 answers, so that the official
# all-candidate evaluation scores them in two batches of valid_batch_size 20, and answers that share first tokens.
# The second question was picked among a few so that the random model's answer is one of its answers with
# confidence 0.3: the VQA score then counts a confidence that is neither 0 nor 1.
VQA = [
    ("astronaut", "391895", "What is the woman holding?", "1.0|!+helmet&&0.3|!+flag", "person&&flag&&helmet"),
    ("astronaut", "391895", "What is next to the woman?", "1.0|!+flag&&0.3|!+helmet", "person&&flag&&helmet"),
    ("chelsea", "522418", "What animal is this?", "1.0|!+cat&&0.6|!+tabby cat", "cat"),
    ("coffee", "184613", "What is in the cup?", "1.0|!+coffee&&0.3|!+coffee cup", "cup&&spoon&&dining table"),
    ("camera", "318219", "Is this a black-and-white photo/picture", "1.0|!+yes&&0.3|!+black and white", ""),
]


def vqa_rows() -> list[list[str]]:
    """OFA's VQA TSV: question-id, image-id, question, answers, objects, image (selected_cols 0,5,2,3,4)."""
    return [
        [f"{image_id}{index:03d}", image_id, question, answers, objects, photo(name)]
        for index, (name, image_id, question, answers, objects) in enumerate(VQA)
    ]


# SNLI-VE rows: (photo, image id, hypothesis, premise caption, label), in OFA's snli_ve_dev.tsv layout; the texts
# carry the punctuation and hyphens OFA's pre_caption removes. The labels are the true ones.
SNLI_VE = [
    (
        "chelsea",
        "522418",
        "A cat is sitting on the floor.",
        "A tabby cat sitting and looking to the side.",
        "entailment",
    ),
    (
        "coffee",
        "184613",
        "Someone is drinking tea, in a garden!",
        "A cup of coffee on a saucer with a spoon.",
        "contradiction",
    ),
    (
        "astronaut",
        "391895",
        "The astronaut is about to fly to the moon.",
        "A smiling astronaut in a space-suit.",
        "neutral",
    ),
    (
        "camera",
        "318219",
        "A man is taking a photograph.",
        "A black and white photo of a man with a camera on a tripod.",
        "entailment",
    ),
]


def snli_ve_rows() -> list[list[str]]:
    """OFA's SNLI-VE TSV: uniq-id, image-id, image, hypothesis, caption, label (selected_cols 0,2,3,4,5)."""
    return [
        [str(index), image_id, photo(name), hypothesis, caption, label]
        for index, (name, image_id, hypothesis, caption, label) in enumerate(SNLI_VE)
    ]


# ImageNet rows: (photo, label words) in OFA's imagenet_1k_val.tsv layout. The labels file (data/imagenet_labels.json,
# in the form docs/tasks/classification.md exports class2label_new.pkl to) holds 25 ImageNet class names, some
# sharing first tokens, in two batches of valid_batch_size 20. With a constant prompt only the photo moves the
# random model's scores, by a few tenths, less than most labels' scores lie apart; the names were picked from 72 so
# that the photo decides between the three best (cheetah, coffeepot, loggerhead: 0.047 to 0.19 apart) and every
# other name scores lower on every photo. The rows' labels fit their photos.
IMAGENET = [
    ("chelsea", "tabby cat"),
    ("coffee", "coffeepot"),
    ("astronaut", "military uniform"),
    ("camera", "tripod"),
    ("rocket", "missile"),
]


def imagenet_rows() -> list[list[str]]:
    """OFA's ImageNet TSV: image, label index, label words (selected_cols 0,2)."""
    labels = list(json.loads((DATA / "imagenet_labels.json").read_text(encoding="utf-8")))
    return [[photo(name), str(labels.index(label)), label] for name, label in IMAGENET]


ROW_SETS: dict[str, Callable[[], list[list[str]]]] = {
    "gigaword": lambda: [[article, headline] for article, headline in GIGAWORD],
    "caption_en": lambda: caption_rows("en"),
    "caption_zh": lambda: caption_rows("zh"),
    **{f"glue_{task}": (lambda task=task: glue_rows(task)) for task in GLUE},
    "refcoco_en": lambda: refcoco_rows("en"),
    "refcoco_zh": lambda: refcoco_rows("zh"),
    "ocr_zh": ocr_rows,
    "vqa": vqa_rows,
    "snli_ve": snli_ve_rows,
    "imagenet": imagenet_rows,
}


def echo(prediction: str) -> str:
    """A reference that shares all but the end of the official prediction: partial n-gram matches."""
    words = prediction.split()
    if len(words) > 1 and not any("\u4e00" <= character <= "\u9fff" for character in prediction):
        return " ".join(words[:-1])
    joined = "".join(words)
    return joined[:-2] if len(joined) > 2 else joined


def echo_box(box: list[float]) -> str | None:
    """A reference box around the official one, 5% of its size wider on every side (IoU 1/1.21, a hit at 0.5);
    None for a box without area, which no reference can hit."""
    x0, y0, x1, y1 = box
    if x1 <= x0 or y1 <= y0:
        return None
    dx, dy = 0.05 * (x1 - x0), 0.05 * (y1 - y0)
    return ",".join(f"{value:.2f}" for value in (x0 - dx, y0 - dy, x1 + dx, y1 + dy))


def add_echoes(name: str, rows: list[list[str]], golden: Path) -> list[list[str]]:
    """Echo references for the first half of the rows: appended to the captions (image id in column 1); for
    Gigaword's single headline (rows numbered as its reader does), in place of it; for RefCOCO, a box around the
    official one in place of the row's box (kept where the official box has no area). OCR's metric is an exact match:
    every row whose official text fits a label (30 characters, the recipe's max_chars) gets it as its label."""
    predictions = {
        row["id"]: row["prediction"] for row in json.loads(golden.read_text(encoding="utf-8"))["predictions"]
    }
    if name == "ocr_zh":
        for row in rows:
            row[2] = predictions[row[0]] if len(predictions[row[0]]) <= 30 else row[2]
        return rows
    for number, row in enumerate(rows[: (len(rows) + 1) // 2], 1):
        if name.startswith("refcoco"):
            column = 3 if name == "refcoco_en" else 2
            row[column] = echo_box(predictions[row[0]]) or row[column]
        elif name == "gigaword":
            row[1] = echo(predictions[f"{name}:{number}"])
        else:
            row[2] = "&&".join([*row[2].split("&&"), echo(predictions[row[1]])])
    return rows


def write(path: Path, rows: list[list[str]]) -> None:
    path.write_text("".join("\t".join(row) + "\n" for row in rows), encoding="utf-8")
    print(f"wrote {path}: {len(rows)} rows, {path.stat().st_size} bytes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"row sets to write (default: all): {', '.join(ROW_SETS)}"
    )
    parser.add_argument(
        "--echo",
        type=Path,
        metavar="GOLDEN",
        help="write the row set again with echo references from this golden's predictions",
    )
    args = parser.parse_args()
    names = args.names or list(ROW_SETS)
    unknown = sorted(set(names) - set(ROW_SETS))
    if unknown:
        parser.error(f"unknown row set {', '.join(unknown)}; choose from {', '.join(ROW_SETS)}")
    if args.echo and len(names) != 1:
        parser.error("--echo takes exactly one row set")
    DATA.mkdir(parents=True, exist_ok=True)
    for name in names:
        rows = ROW_SETS[name]()
        write(DATA / f"{name}.tsv", add_echoes(name, rows, args.echo) if args.echo else rows)


if __name__ == "__main__":
    main()
