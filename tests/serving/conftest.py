"""Fixtures for the serving tests: one tiny model for the session, apps over it, request helpers."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io

import pytest

FAST = {"max_new_tokens": 6, "num_beams": 2}
"""Generation settings that keep the tiny model's open-ended answers short."""


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    from ofa_core.testing import tiny_checkpoint

    return tiny_checkpoint(tmp_path_factory.mktemp("serving") / "model")


@pytest.fixture(scope="session")
def loaded(model_dir):
    from ofa_core.inference.loading import load_model

    model, processor = load_model(model_dir)
    return model.eval(), processor


@pytest.fixture(scope="session")
def tasks():
    from ofa_core.registry import load_plugins
    from ofa_core.serving.requests import served_tasks

    return served_tasks(load_plugins().registry(), ["caption", "vqa", "classification"])


@pytest.fixture(scope="session")
def make_app(loaded, tasks):
    from ofa_core.serving.app import ServeSettings, create_app

    def make(predictor_factory=None, **settings):
        return create_app(
            *loaded, tasks, ServeSettings(**settings), model_name="tiny", predictor_factory=predictor_factory
        )

    return make


def png_bytes(seed: int = 0, size: tuple[int, int] = (40, 30), fmt: str = "PNG") -> bytes:
    from ofa_core.testing import fake_image

    buffer = io.BytesIO()
    fake_image(seed, size).save(buffer, format=fmt)
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def metric(text: str, name: str, **labels) -> float:
    """The value of one sample in Prometheus text, found by name and labels in any order (0 when absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    wanted = {key: str(value) for key, value in labels.items()}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == wanted:
                return float(sample.value)
    return 0.0


@contextlib.asynccontextmanager
async def async_client(app):
    """An httpx.AsyncClient on the app, with its lifespan (startup and shutdown) run around it."""
    import httpx

    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test", timeout=60) as client,
    ):
        yield client


def run_async(coroutine):
    return asyncio.run(coroutine)
