"""Text classification (the GLUE tasks OFA fine-tunes) as a built-in, text-only task plugin."""
