"""The OpenAPI description of `POST /v1/predict`: its hand-parsed request bodies and its answers.

The endpoint reads its body itself (`body.read_values`), so these models only document it at /docs.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class PredictBody(BaseModel):
    """JSON body of POST /v1/predict; a task's fields (e.g. `question`) come on top, as text."""

    model_config = {"extra": "allow"}
    task: str = Field(description="a served task (GET /v1/tasks)")
    image: str = Field(description="the image file's bytes, base64 (a data: URL prefix is allowed)")
    id: str | None = Field(None, description="echoed in the answer; a random one when absent")
    lang: str | None = Field(None, description="prompt language (default: the task's first)")
    options: dict[str, Any] | None = Field(None, description='task options, e.g. {"labels": ["cat", "dog"]}')
    generation: dict[str, Any] | None = Field(None, description="generation settings over the task's search")


class RankedAnswer(BaseModel):
    answer: str
    score: float


class PredictAnswer(BaseModel):
    id: str
    task: str
    prediction: str | list[float] | None = Field(
        description="the task's answer: text, or a box [x0, y0, x1, y1] "
        "in pixels of the image sent (grounding); null when there is none"
    )
    ranking: list[RankedAnswer] | None = Field(
        None, description="closed-set tasks: the best answers with log-probabilities"
    )
    box: list[float] | None = Field(
        None, description="[x0, y0, x1, y1] in pixels of the image sent, when the text holds 4 location tokens"
    )
    latency_ms: float


class ErrorAnswer(BaseModel):
    error: str


ERRORS = {
    status: {"model": ErrorAnswer, "description": text}
    for status, text in {
        400: "bad JSON, base64, image, field values, options or generation",
        404: "unknown task",
        413: "body over --max-upload-mb or image over --max-pixels",
        415: "not JSON or multipart/form-data",
        422: "unknown or missing fields",
        503: "queue full or shutting down (see Retry-After)",
        504: "no answer within --timeout-s",
    }.items()
}

FORM_SCHEMA = {
    "type": "object",
    "required": ["task", "image"],
    "properties": {
        "task": {"type": "string"},
        "image": {"type": "string", "format": "binary"},
        "id": {"type": "string"},
        "lang": {"type": "string"},
        "options": {"type": "string", "description": "JSON object"},
        "generation": {"type": "string", "description": "JSON object"},
    },
    "additionalProperties": {"type": "string"},
}

REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": PredictBody.model_json_schema()},
            "multipart/form-data": {"schema": FORM_SCHEMA},
        },
    }
}
"""`openapi_extra` of the predict route: both body forms it accepts."""
