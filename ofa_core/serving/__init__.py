"""`ofa serve`: an HTTP API over one loaded model (FastAPI), with dynamic batching and Prometheus metrics.

- `requests`: the served tasks and what a prediction request may say (checked before batching);
- `batcher`: groups requests that can share a forward pass and runs them in one worker thread;
- `metrics`: the Prometheus metrics of one app;
- `app`: `create_app(model, processor, tasks, settings)` and the endpoints.

Importing this package is light: FastAPI and torch load with `ofa_core.serving.app`. See docs/serving.md.
"""
