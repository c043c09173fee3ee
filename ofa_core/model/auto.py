"""Registration of the OFA classes with transformers' Auto* loaders."""

from __future__ import annotations

from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoModelForSeq2SeqLM, AutoProcessor, AutoTokenizer

from ofa_core.model.configuration import OFAConfig
from ofa_core.model.image_processing import OFAImageProcessor
from ofa_core.model.modeling import OFAForConditionalGeneration, OFAModel
from ofa_core.model.processing import OFAProcessor
from ofa_core.model.tokenization import OFATokenizer


def register_auto_classes() -> None:
    """Make `Auto*.from_pretrained(dir)` build OFA objects; safe to call any number of times."""
    # exist_ok=True re-registers the same classes instead of raising on a second call.
    AutoConfig.register(OFAConfig.model_type, OFAConfig, exist_ok=True)
    AutoTokenizer.register(OFAConfig, tokenizer_class=OFATokenizer, exist_ok=True)
    AutoImageProcessor.register(
        OFAConfig, image_processor_classes={"pil": OFAImageProcessor, "torchvision": OFAImageProcessor}, exist_ok=True
    )
    AutoProcessor.register(OFAConfig, OFAProcessor, exist_ok=True)
    AutoModel.register(OFAConfig, OFAModel, exist_ok=True)
    AutoModelForSeq2SeqLM.register(OFAConfig, OFAForConditionalGeneration, exist_ok=True)
