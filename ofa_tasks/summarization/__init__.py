"""Abstractive summarization (Gigaword) as a built-in, text-only task plugin."""
