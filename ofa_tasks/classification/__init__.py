"""Image classification over a fixed label set (ImageNet-style) as a built-in task plugin."""
