"""Chinese text recognition (OFA-OCR) as a built-in task plugin."""
