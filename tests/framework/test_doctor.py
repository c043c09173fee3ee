"""`ofa doctor`: versions, device, cache folder, demo data and plugins for bug reports; exit 1 on a failed plugin."""

import json
import platform

from ofa_core.cli.main import main


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_doctor_reports_versions_device_cache_and_plugins(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("OFA_CACHE_DIR", str(tmp_path / "cache"))
    code, out, _ = run(capsys, "doctor", "--json")
    report = json.loads(out)
    assert code == 0
    versions = report["versions"]
    assert versions["python"] == platform.python_version()
    assert all(versions[name] for name in ("ofa-framework", "torch", "transformers", "tokenizers", "pluggy"))
    device = report["device"]
    assert isinstance(device["cuda"], bool) and isinstance(device["mps"], bool) and device["torch_threads"] >= 1
    assert device["cuda"] or device["devices"] == []
    assert report["cache_dir"] == str(tmp_path / "cache")
    assert report["demo"] == {"folder": str(tmp_path / "cache" / "demo"), "exists": False}
    assert {"name": "core", "version": "0.1.0", "origin": "builtin"} in report["plugins"]
    assert report["failures"] == []

    (tmp_path / "cache" / "demo").mkdir(parents=True)
    (tmp_path / "cache" / "demo" / "demo.json").write_text("{}")
    code, out, _ = run(capsys, "doctor")
    assert code == 0
    assert f"torch:          {versions['torch']}" in out
    assert "cuda:" in out and "mps:" in out and "torch threads:" in out
    assert f"cache folder:   {tmp_path / 'cache'}" in out
    assert f"demo data:      present ({tmp_path / 'cache' / 'demo'})" in out
    assert "  core 0.1.0 (builtin)" in out


def test_doctor_exits_1_and_names_a_failed_plugin(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("OFA_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "broken.py").write_text("raise RuntimeError('half-written plugin')\n")
    code, out, _ = run(capsys, "--plugins-dir", str(tmp_path), "doctor")
    assert code == 1
    assert "demo data:      not generated yet" in out
    assert "  FAILED broken (plugins-dir): RuntimeError: half-written plugin" in out
    code, out, _ = run(capsys, "doctor", "--json", "--plugins-dir", str(tmp_path))
    assert code == 1
    assert json.loads(out)["failures"] == [
        {"name": "broken", "origin": "plugins-dir", "error": "RuntimeError: half-written plugin"}
    ]
