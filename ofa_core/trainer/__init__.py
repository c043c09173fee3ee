"""The trainer: one loop for every task, from LiT-tuning to full fine-tuning.

`Trainer` (in `loop`) trains and evaluates on tokenized examples and knows nothing of recipes;
`from_recipe` builds one from a resolved recipe. `plugin` registers the default loss as the core's own
plugin. Importing this package imports nothing heavy; its modules import torch.
"""
