"""Built-in OFA tasks."""
