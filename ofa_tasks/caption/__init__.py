"""Image captioning (MUGE in Chinese, COCO in English) as a built-in task plugin."""
