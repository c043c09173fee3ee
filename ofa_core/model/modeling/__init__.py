"""The OFA model family as transformers models."""

from ofa_core.model.modeling.model import OFAForConditionalGeneration, OFAModel, OFAPreTrainedModel
from ofa_core.model.modeling.outputs import OFAEncoderOutput

__all__ = ["OFAEncoderOutput", "OFAForConditionalGeneration", "OFAModel", "OFAPreTrainedModel"]
