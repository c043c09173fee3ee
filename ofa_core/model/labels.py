"""The label value that takes no loss: -100, as transformers and `torch.nn.functional.cross_entropy` use it.

Defined once, here at the bottom layer, for the model's own loss, the batches the framework builds and
every plugin loss (`ofa_core.plugin.IGNORE_INDEX`).
"""

IGNORE_INDEX = -100
