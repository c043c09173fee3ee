"""`ofa export onnx` and `--backend onnxruntime` from the command line: the folder, its checks and its errors."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import onnx
import orjson
import pytest

from ofa_core.cli.main import main
from ofa_core.exported.manifest import MANIFEST_FILE, sha256
from ofa_core.testing import fake_image

PREDICT = ["--task", "caption", "--lang", "en", "--generation", "max_new_tokens=6"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    for seed in range(3):
        fake_image(seed, (40 + 10 * seed, 36)).save(folder / f"photo{seed}.png")
    return folder


def test_export_writes_a_self_contained_checked_folder(tmp_path, cn_model, capsys):
    out = tmp_path / "exported"
    assert main(["export", "onnx", "--model", str(cn_model), "--out", str(out), "--int8"]) == 0
    err = capsys.readouterr().err
    assert "ONNX opset 17" in err and "onnx.checker passed" in err and str(out) in err
    manifest = orjson.loads((out / MANIFEST_FILE).read_bytes())
    assert set(manifest["graphs"]) == {"encoder", "decoder_step", "encoder.int8", "decoder_step.int8"}
    assert manifest["exported_by"]["ofa-framework"] and manifest["opset"] == 17
    for entry in manifest["graphs"].values():
        assert sha256(out / entry["file"]) == entry["sha256"]
        onnx.checker.check_model(str(out / entry["file"]), full_check=True)
    for name in ("config.json", "generation_config.json", "tokenizer.json", "processor_config.json"):
        assert (out / name).is_file(), name
    graph = onnx.load(str(out / "decoder_step.onnx"), load_external_data=False)
    inputs = {
        value.name: [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]
        for value in graph.graph.input
    }
    assert (
        inputs["input_ids"] == ["rows", 1] and inputs["past_key.0"][0] == "rows" and inputs["past_key.0"][2] == "past"
    )
    assert inputs["cross_key.0"][0] == "batch" and inputs["cross_key.0"][2] == "source"


def test_export_copies_the_checkpoint_task(tmp_path, cn_model):
    source = tmp_path / "model"
    shutil.copytree(cn_model, source)
    task = {"format": 1, "fairseq_task": "caption", "task": "caption", "language": "zh"}
    (source / "ofa_task.json").write_bytes(orjson.dumps(task))
    assert main(["export", "onnx", "--model", str(source), "--out", str(tmp_path / "out")]) == 0
    assert orjson.loads((tmp_path / "out" / "ofa_task.json").read_bytes()) == task


@pytest.mark.parametrize("case", ["missing model", "existing out", "exported as model"])
def test_export_errors_are_one_line(tmp_path, cn_model, cn_exported, capsys, case):
    model, out = str(cn_model), tmp_path / "out"
    if case == "missing model":
        model = str(tmp_path / "nowhere")
    elif case == "existing out":
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    else:
        model = str(cn_exported)
    assert main(["export", "onnx", "--model", model, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    expected = {
        "missing model": "no such directory",
        "existing out": "--overwrite",
        "exported as model": "already an exported folder",
    }[case]
    assert expected in err
    if case == "existing out":
        assert (out / "notes.txt").read_text() == "mine"
        assert main(["export", "onnx", "--model", str(cn_model), "--out", str(out), "--overwrite"]) == 0
        assert not (out / "notes.txt").exists() and (out / "encoder.onnx").is_file()


def test_predict_onnxruntime_matches_torch_with_the_source_gone(tmp_path, cn_model, photos):
    """The exported folder alone predicts what the PyTorch model predicts, importing none of the network's code."""
    source = tmp_path / "model"
    shutil.copytree(cn_model, source)
    exported = tmp_path / "exported"
    assert main(["export", "onnx", "--model", str(source), "--out", str(exported)]) == 0
    assert main(["predict", "--model", str(source), *PREDICT, str(photos), "-o", str(tmp_path / "torch.jsonl")]) == 0
    shutil.move(source, tmp_path / "moved-away")
    argv = [
        "predict",
        "--backend",
        "onnxruntime",
        "--model",
        str(exported),
        *PREDICT,
        str(photos),
        "-o",
        str(tmp_path / "ort.jsonl"),
    ]
    script = (
        "import json, sys\n"
        "from ofa_core.cli.main import main\n"
        f"code = main({argv!r})\n"
        "network = [name for name in sys.modules if name.startswith('ofa_core.model.modeling.')\n"
        "           and name not in ('ofa_core.model.modeling.beam_search', 'ofa_core.model.modeling.outputs')]\n"
        "print(json.dumps({'code': code, 'network': network, 'export': 'ofa_core.export' in sys.modules}))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"code": 0, "network": [], "export": False}, result.stderr
    rows = [orjson.loads(line) for line in (tmp_path / "ort.jsonl").read_bytes().splitlines()]
    expected = [orjson.loads(line) for line in (tmp_path / "torch.jsonl").read_bytes().splitlines()]
    assert [(row["id"], row["text"]) for row in rows] == [(row["id"], row["text"]) for row in expected]
    meta = orjson.loads((tmp_path / "ort.jsonl.meta.json").read_bytes())
    assert meta["backend"] == "onnxruntime" and meta["precision"] == "fp32"


def test_predict_int8_graphs(tmp_path, cn_exported, photos):
    out = tmp_path / "int8.jsonl"
    assert (
        main(
            [
                "predict",
                "--backend",
                "onnxruntime",
                "--precision",
                "int8",
                "--model",
                str(cn_exported),
                *PREDICT,
                str(photos),
                "-o",
                str(out),
            ]
        )
        == 0
    )
    assert len(out.read_bytes().splitlines()) == 3
    assert orjson.loads((tmp_path / "int8.jsonl.meta.json").read_bytes())["precision"] == "int8"


@pytest.mark.parametrize(
    "case",
    [
        "changed graph",
        "edited manifest hash",
        "missing graph",
        "other format version",
        "not exported",
        "torch on exported",
        "bf16",
        "no int8",
    ],
)
def test_backend_refusals_are_one_line(tmp_path, cn_model, cn_exported, photos, capsys, case):
    folder, extra, backend = tmp_path / "copy", [], "onnxruntime"
    shutil.copytree(cn_exported, folder)
    if case == "changed graph":
        with (folder / "decoder_step.onnx").open("ab") as stream:
            stream.write(b"\0")
    elif case in ("edited manifest hash", "other format version"):
        manifest = orjson.loads((folder / MANIFEST_FILE).read_bytes())
        if case == "other format version":
            manifest["format_version"] += 1
        else:
            manifest["graphs"]["encoder"]["sha256"] = "0" * 64
        (folder / MANIFEST_FILE).write_bytes(orjson.dumps(manifest))
    elif case == "missing graph":
        (folder / "encoder.onnx").unlink()
    elif case == "not exported":
        folder = cn_model
    elif case == "torch on exported":
        backend = "torch"
    elif case == "bf16":
        extra = ["--precision", "bf16"]
    else:
        manifest = orjson.loads((folder / MANIFEST_FILE).read_bytes())
        for name in ("encoder.int8", "decoder_step.int8"):
            (folder / manifest["graphs"].pop(name)["file"]).unlink()
        (folder / MANIFEST_FILE).write_bytes(orjson.dumps(manifest))
        extra = ["--precision", "int8"]
    assert main(["predict", "--backend", backend, "--model", str(folder), *PREDICT, *extra, str(photos)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    expected = {
        "changed graph": "sha256 does not match",
        "edited manifest hash": "sha256 does not match",
        "missing graph": "missing, but",
        "other format version": "field format_version",
        "not exported": "ofa export onnx",
        "torch on exported": "--backend onnxruntime",
        "bf16": "fp32 or int8",
        "no int8": "--int8",
    }[case]
    assert expected in err


def test_serve_onnxruntime_answers(cn_exported):
    import base64
    import io

    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ofa_core",
            "serve",
            "--backend",
            "onnxruntime",
            "--model",
            str(cn_exported),
            "--task",
            "caption",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stderr.read().decode()
            try:
                health = httpx.get(f"{url}/health", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        assert health.json()["precision"] == "fp32"
        image = io.BytesIO()
        fake_image(0).save(image, format="PNG")
        answer = httpx.post(
            f"{url}/v1/predict",
            json={"task": "caption", "lang": "en", "image": base64.b64encode(image.getvalue()).decode()},
            timeout=30,
        )
        assert answer.status_code == 200 and answer.json()["prediction"]
    finally:
        server.send_signal(signal.SIGINT)
        try:
            code = server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
    err = server.stderr.read().decode()
    assert code == 0, err
    assert "(onnxruntime)" in err


def test_pipeline_onnxruntime(cn_model, cn_exported):
    import ofa_core

    exported = ofa_core.pipeline(
        "caption", model=cn_exported, backend="onnxruntime", lang="en", generation={"max_new_tokens": 6}
    )
    reference = ofa_core.pipeline("caption", model=cn_model, device="cpu", lang="en", generation={"max_new_tokens": 6})
    images = [fake_image(seed) for seed in range(3)]
    assert exported(images) == reference(images)
    assert "precision='fp32'" in repr(exported)
    with pytest.raises(ofa_core.OFAError, match="fp32 or int8"):
        ofa_core.pipeline("caption", model=cn_exported, backend="onnxruntime", precision="bf16")


def test_eval_onnxruntime_scores_as_torch(tmp_path, cn_model, cn_exported, capsys):
    """`ofa eval --backend onnxruntime` on the exported folder: the same predictions and scores as the PyTorch model."""
    import base64
    import io

    folder = tmp_path / "muge"
    folder.mkdir()
    captions = ["a red car", "a dog", "a cat"]
    tsv, jsonl = [], []
    for index, caption in enumerate(captions):
        image = io.BytesIO()
        fake_image(index).save(image, format="PNG")
        tsv.append(f"{index}\t{base64.b64encode(image.getvalue()).decode()}")
        jsonl.append(orjson.dumps({"image_id": str(index), "text": [caption]}).decode())
    (folder / "IC_valid.tsv").write_text("\n".join(tsv) + "\n")
    (folder / "IC_valid.jsonl").write_text("\n".join(jsonl) + "\n")
    recipe = {
        "name": "eval_onnx",
        "model": {"checkpoint": str(cn_model)},
        "task": {"name": "caption", "lang": "en"},
        "data": {"reader": {"name": "muge", "folder": str(folder)}},
        "metrics": [{"name": "caption"}],
        "generation": {"num_beams": 3, "max_new_tokens": 6},
        "training": {"per_device_eval_batch_size": 2, "report_to": "none"},
        "output_dir": str(tmp_path / "run"),
    }
    (tmp_path / "recipe.json").write_bytes(orjson.dumps(recipe))
    results = {}
    for backend, model in (("torch", cn_model), ("onnxruntime", cn_exported)):
        out = tmp_path / f"{backend}.jsonl"
        assert (
            main(
                [
                    "eval",
                    str(tmp_path / "recipe.json"),
                    "--checkpoint",
                    str(model),
                    "--backend",
                    backend,
                    "--predictions",
                    str(out),
                ]
            )
            == 0
        )
        results[backend] = orjson.loads(capsys.readouterr().out)
        results[backend]["rows"] = [orjson.loads(line) for line in out.read_bytes().splitlines()]
        assert orjson.loads((tmp_path / f"{backend}.jsonl.meta.json").read_bytes())["backend"] == backend
    torch_result, ort_result = results["torch"], results["onnxruntime"]
    assert ort_result["examples"] == 3 and ort_result["rows"] == torch_result["rows"]
    assert ort_result["cider"] == pytest.approx(torch_result["cider"])
