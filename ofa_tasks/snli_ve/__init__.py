"""Visual entailment (SNLI-VE): does the image, with its premise caption, imply a hypothesis; a built-in task plugin."""
