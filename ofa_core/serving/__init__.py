"""`ofa serve`: an HTTP API over one loaded model (FastAPI), with dynamic batching and Prometheus metrics.

- `requests`: the served tasks and what a prediction request may say (checked before batching);
- `batcher`: groups requests that can share a forward pass and runs them in one worker thread;
- `metrics`: the Prometheus metrics of one app;
- `body`: reading a request's body (JSON or multipart) within the size limit;
- `answering`: a request's predictor (an LRU of them), its place in a batch, and its answer;
- `openapi`: the documented shapes of the predict request and its answers;
- `app`: `create_app(model, processor, tasks, settings)`: the routes and error handlers.

Importing this package is light: FastAPI and torch load with `ofa_core.serving.app`. See docs/serving.md.
"""
