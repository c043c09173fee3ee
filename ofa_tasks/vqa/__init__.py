"""VQA-style prompting (a question about an image, a short answer) as a built-in task plugin."""
