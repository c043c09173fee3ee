"""ofa_core: the OFA unified vision-language Seq2Seq models on transformers, and the framework around them.

Importing the package registers the OFA classes with transformers' Auto* loaders, so
`AutoModelForSeq2SeqLM.from_pretrained(dir)` works on any directory this project writes.
"""

from ofa_core.auto import register_auto_classes
from ofa_core.configuration import OFAConfig
from ofa_core.modeling import OFAForConditionalGeneration, OFAModel

register_auto_classes()

__all__ = ["OFAConfig", "OFAForConditionalGeneration", "OFAModel", "register_auto_classes"]
