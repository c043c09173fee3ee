"""OFA models, tokenizers and processors."""
