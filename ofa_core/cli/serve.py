"""`ofa serve --model DIR [--task T ...]`: an HTTP API for a model (FastAPI + uvicorn); see docs/serving.md.

The model loads once and answers every served task. FastAPI, uvicorn and torch are imported inside `run`,
so `ofa --help` stays light.
"""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path
from typing import Any

from ofa_core import auto_registration
from ofa_core._errors import OFAError
from ofa_core.cli.options import add_engine_options, add_model_option
from ofa_core.inference.loading import model_directory

HELP = "serve a model over HTTP: a JSON prediction API with dynamic batching and metrics (docs/serving.md)"


def add_arguments(parser: argparse.ArgumentParser, parents: list[argparse.ArgumentParser]) -> None:
    add_model_option(parser)
    parser.add_argument(
        "--task",
        action="append",
        default=[],
        metavar="NAME",
        help="serve only this task (repeatable; default: every registered task)",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)"
    )
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    add_engine_options(parser, "torch device for the model, e.g. cpu, cuda, cuda:1 (default: cpu)", device="cpu")
    batching = parser.add_argument_group("batching")
    batching.add_argument("--max-batch", type=int, default=8, help="most requests in one forward pass (default: 8)")
    batching.add_argument(
        "--max-wait-ms",
        type=float,
        default=10.0,
        help="how long the first request of a batch waits for others (default: 10)",
    )
    batching.add_argument(
        "--max-queue", type=int, default=64, help="requests waiting for the model before new ones get 503 (default: 64)"
    )
    limits = parser.add_argument_group("limits")
    limits.add_argument(
        "--timeout-s", type=float, default=60.0, help="answer 504 after this many seconds (default: 60)"
    )
    limits.add_argument("--max-upload-mb", type=float, default=20.0, help="largest request body in MB (default: 20)")
    limits.add_argument(
        "--max-pixels",
        type=float,
        default=40e6,
        help="largest image, width x height, checked before decoding (default: 40e6)",
    )
    limits.add_argument(
        "--max-new-tokens",
        type=int,
        default=64,
        help="largest max_new_tokens / max_length a request may ask for (default: 64)",
    )
    limits.add_argument("--max-beams", type=int, default=8, help="largest num_beams a request may ask for (default: 8)")
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn's log level (default: info)",
    )


def _check_port(host: str, port: int) -> None:
    """A one-line error now, rather than uvicorn's log line after the model has loaded."""
    if not 0 <= port <= 65535:
        raise OFAError(f"--port {port}: must be 0..65535")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise OFAError(f"--host {host}: {error.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            raise OFAError(f"--host {host} --port {port}: cannot listen there ({error.strerror})") from None


def _device(name: str, backend: str, precision: str) -> Any:
    """The torch device `--device` names, checked to exist and to run `--precision` with the torch backend."""
    import torch

    from ofa_core.model.precision import check

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as error:
        raise OFAError(f"--device {name}: {error}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise OFAError(f"--device {name}: CUDA is not available here; use --device cpu")
    if backend == "torch":
        check(precision, device)
    return device


def run(args: argparse.Namespace) -> int:
    from ofa_core.serving.requests import served_tasks

    model_dir = Path(args.model)
    if not model_dir.is_dir():
        raise OFAError(f"{model_dir}: --model: no such directory")
    model_dir = model_directory(model_dir)
    tasks = served_tasks(args.loader.registry(), args.task)
    _check_port(args.host, args.port)

    if args.backend == "onnxruntime":
        auto_registration.suspend()  # exported graphs only: no model class is imported to register it
    import uvicorn  # heavy imports: only once there is something to serve

    from ofa_core.cli.common import quiet_transformers
    from ofa_core.inference.loading import load_for_inference
    from ofa_core.model.task_config import read_checkpoint_task
    from ofa_core.serving.app import ServeSettings, create_app

    settings = ServeSettings(
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        max_queue=args.max_queue,
        timeout_s=args.timeout_s,
        max_upload_mb=args.max_upload_mb,
        max_pixels=int(args.max_pixels),
        max_new_tokens=args.max_new_tokens,
        max_beams=args.max_beams,
    ).check()
    device = _device(args.device, args.backend, args.precision)
    quiet_transformers()
    loaded = load_for_inference(model_dir, args.precision, device, backend=args.backend)
    if loaded.precision.notice:
        print(loaded.precision.notice, file=sys.stderr)
    recorded = read_checkpoint_task(model_dir)
    app = create_app(
        loaded.model,
        loaded.processor,
        tasks,
        settings,
        model_name=str(model_dir),
        precision=loaded.precision.precision,
        language=recorded.language if recorded else None,
    )
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(
        f"serving {model_dir} on {device} in {loaded.precision.precision} ({args.backend}) for {', '.join(tasks)}: "
        f"http://{shown}:{args.port} "
        f"(API docs at /docs; Ctrl-C stops after the queued requests)",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        timeout_graceful_shutdown=max(1, int(settings.timeout_s)),
    )
    return 0
