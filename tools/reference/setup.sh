#!/usr/bin/env bash
# Sets up the official OFA code (OFA-Sys/OFA, branch main, with its bundled fairseq) to run on the CPU under
# Python 3.11, for making the parity suite's goldens by hand. Not used by CI or by the project.
#   bash tools/reference/setup.sh [OFA_DIR] [VENV_DIR]        (defaults /work/ref/OFA and /work/ref/venv)
# OFA_DIR is a work tree of OFA's main branch (its images are not needed). The script patches that copy in place
# (dataclass defaults Python 3.11 refuses), builds fairseq's Cython helpers, and writes stubs for optional imports
# the evaluated tasks never use into OFA_DIR/../stubs. It prints the line that activates the environment.
set -euo pipefail
ofa=$(realpath "${1:-/work/ref/OFA}")
venv=$(realpath -m "${2:-/work/ref/venv}")
stubs=$(realpath -m "$ofa/../stubs")
[ -f "$ofa/evaluate.py" ] && [ -d "$ofa/fairseq/fairseq" ] || { echo "error: $ofa is not an OFA work tree (no evaluate.py or fairseq/fairseq)" >&2; exit 2; }

[ -x "$venv/bin/python" ] || python3.11 -m venv "$venv"
"$venv/bin/pip" install -q torch==2.14.1 numpy==1.23.5 hydra-core==1.3.2 omegaconf==2.3.0 transformers==4.25.1 \
    tokenizers==0.13.3 pillow regex sacrebleu bitarray cython torchvision "setuptools>=77,<81" scikit-image==0.24.0 zhconv==1.4.3 rouge-score==0.1.2 levenshtein==0.27.5

# Python 3.11 refuses mutable dataclass defaults such as `common: CommonConfig = CommonConfig()`. FairseqConfig's
# fields default to the class itself (fairseq's hydra_init stores each field's `.default` as a config node, which a
# default_factory would leave MISSING); transformer_config.py's get a default_factory.
sed -i -E 's/^( +[a-z_]+): ([A-Za-z]+) = \2\(\)$/\1: \2 = field(default=\2)/' \
    "$ofa/fairseq/fairseq/dataclass/configs.py" "$ofa/fairseq/fairseq/models/transformer/transformer_config.py"
sed -i -E 's/field\(default=([A-Za-z]+)\(\)\)/field(default_factory=\1)/' \
    "$ofa/fairseq/fairseq/models/transformer/transformer_config.py"
grep -q "^from dataclasses import .*field" "$ofa/fairseq/fairseq/models/transformer/transformer_config.py" \
    || sed -i '1i from dataclasses import field' "$ofa/fairseq/fairseq/models/transformer/transformer_config.py"

# OFA's Chinese OCR task lives on branch feature/add_text_recognition (main has its evaluate scripts and eval_ocr):
# with that branch's tasks/mm_tasks/ocr.py and data/mm_data/ocr_dataset.py copied into the tree, register it.
if [ -f "$ofa/tasks/mm_tasks/ocr.py" ] && ! grep -q "from .ocr import" "$ofa/tasks/mm_tasks/__init__.py"; then
    printf "\nfrom .ocr import OcrTask\n" >> "$ofa/tasks/mm_tasks/__init__.py"
fi

# fairseq's batching helpers are Cython extensions.
(cd "$ofa/fairseq" && "$venv/bin/python" - <<'PY'
from Cython.Build import cythonize
from setuptools import Extension
from setuptools.dist import Distribution
import numpy
extensions = cythonize([Extension(f"fairseq.data.{name}", [f"fairseq/data/{name}.pyx"], include_dirs=[numpy.get_include()], language="c++")
                        for name in ("data_utils_fast", "token_block_utils_fast")], language_level=3, quiet=True)
dist = Distribution({"ext_modules": extensions})
command = dist.get_command_obj("build_ext"); command.inplace = True
dist.run_command("build_ext")
PY
) >/dev/null

# Optional imports of OFA's modules that the evaluated tasks never call (speech, training-time augmentation,
# COCO tooling): sitecustomize answers them, submodules included, with placeholder modules whose attributes are
# inert objects (calling one gives another), so the imports and module-level set-up succeed. evaluate.py allocates its score sums with
# .cuda(); on the CPU that is a no-op.
mkdir -p "$stubs"
cat > "$stubs/sitecustomize.py" <<'PY'
import importlib.abc
import importlib.machinery
import os
import sys
import types

# OFA's code was written for torch.load's full unpickling (torch < 2.6), which checkpoints with an argparse
# namespace in their cfg need; the files loaded here are the ones this project made.
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")

import torch

torch.Tensor.cuda = lambda self, *args, **kwargs: self

# fairseq swaps omegaconf's primitive-type check (its 2.0 name, is_primitive_type) to store argparse namespaces
# in a config; omegaconf 2.3 calls the check is_primitive_type_annotation. Both names route to one switch.
import omegaconf.basecontainer
from omegaconf import _utils as _omegaconf_utils

if not hasattr(_omegaconf_utils, "is_primitive_type"):
    _omegaconf_utils.is_primitive_type = _omegaconf_utils.is_primitive_type_annotation

    def _is_primitive(value):
        return _omegaconf_utils.is_primitive_type(value)

    _omegaconf_utils.is_primitive_type_annotation = _is_primitive
    omegaconf.basecontainer.is_primitive_type_annotation = _is_primitive

STUBBED = {"torchaudio", "librosa", "soundfile", "g2p_en", "pypinyin", "pytorch_lightning", "datasets", "timm", "cv2",
           "editdistance", "tensorboardX", "ftfy", "pycocotools", "pycocoevalcap", "einops", "nltk"}


class _Inert:
    def __init__(self, name):
        self._name = name

    def __call__(self, *args, **kwargs):
        return _Inert(f"{self._name}()")

    def __getattr__(self, attribute):
        return _Inert(f"{self._name}.{attribute}")

    def __mro_entries__(self, bases):
        return (object,)


class _StubModule(types.ModuleType):
    __path__: list = []

    def __getattr__(self, attribute):
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        return _Inert(f"{self.__name__}.{attribute}")


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in STUBBED:
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        return _StubModule(spec.name)

    def exec_module(self, module):
        module.__path__ = []


sys.meta_path.insert(0, _StubFinder())
PY
echo ". $venv/bin/activate && export PYTHONPATH=$stubs:$ofa:$ofa/fairseq"
