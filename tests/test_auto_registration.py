"""`import ofa_core` keeps transformers' Auto loaders working on our directories, whatever the import order,
while importing neither torch nor transformers itself."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SAVE = """
from ofa_core.model.configuration import OFAConfig
from ofa_core.model.modeling import OFAForConditionalGeneration
OFAForConditionalGeneration(OFAConfig.from_preset("tiny-test")).save_pretrained("saved")
"""

LOAD = """
from transformers import AutoConfig, AutoModelForSeq2SeqLM
assert type(AutoConfig.from_pretrained("saved")).__name__ == "OFAConfig"
assert type(AutoModelForSeq2SeqLM.from_pretrained("saved")).__name__ == "OFAForConditionalGeneration"
"""

ORDERS = {
    "ofa_core first": "import ofa_core\n" + LOAD,
    "transformers first": "import transformers.models.auto.modeling_auto\nimport ofa_core\n" + LOAD,
    "model module first": "from ofa_core.model.modeling import OFAForConditionalGeneration\n" + LOAD,
    "lazy model attribute first": "from ofa_core.model import OFAConfig\n" + LOAD,
    "plugin API first": "import ofa_core.plugin\n" + LOAD,
    "conversion first": "import ofa_core.convert.fairseq\n" + LOAD,
}


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-W", "error::RuntimeWarning", "-c", textwrap.dedent(code)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("auto")
    result = _python(SAVE, folder)
    assert result.returncode == 0, result.stderr
    return folder


@pytest.mark.parametrize("order", list(ORDERS))
def test_auto_loaders_find_ofa_whatever_was_imported_first(saved: Path, order: str) -> None:
    result = _python(ORDERS[order], saved)
    assert result.returncode == 0, result.stderr


def test_import_ofa_core_alone_is_light_and_registers_nothing_yet(tmp_path: Path) -> None:
    result = _python(
        """
        import sys, ofa_core
        assert "torch" not in sys.modules and "transformers" not in sys.modules
        assert not ofa_core.auto_registration._registered
        print(sorted(ofa_core.__all__))
    """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "OFAForConditionalGeneration" in result.stdout
