"""The generic trainer: one loop for every task, from LiT-tuning to full fine-tuning."""

from ofa_core.trainer.config import TrainingConfig

__all__ = ["TrainingConfig"]
