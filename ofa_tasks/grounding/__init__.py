"""Visual grounding (RefCOCO, RefCOCO+, RefCOCOg, RefCOCO-CN) as a built-in task plugin."""
