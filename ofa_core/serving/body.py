"""Reading a prediction request's body: a JSON object or a multipart form, within the size limit.

Every failure is an `ApiError` (413 over the limit, 415 another content type, 400 a body that cannot be read).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request
from starlette.datastructures import UploadFile

from ofa_core.serving.requests import ApiError, one_line


async def _read_body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length", "")
    too_big = ApiError(413, f"body over this server's limit of {limit / 1024 / 1024:g} MB (--max-upload-mb)")
    if length.isdigit() and int(length) > limit:
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


async def read_values(request: Request, limit: int) -> dict:
    """The request's names and values: a JSON object, or a multipart form (file parts as bytes)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in ("application/json", "multipart/form-data") and not media_type.endswith("+json"):
        shown = f"'{one_line(media_type, 60)}'" if media_type else "none"
        raise ApiError(415, f"content type {shown}: send application/json or multipart/form-data")
    body = await _read_body(request, limit)
    if media_type != "multipart/form-data":
        try:
            values = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise ApiError(
                400, f"body is not valid JSON ({error})" if body.strip() else "body is empty; send a JSON object"
            ) from None
        if not isinstance(values, dict):
            raise ApiError(400, f"body: expected a JSON object, got {type(values).__name__}")
        return values

    async def replay() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=4, max_fields=64, max_part_size=limit)
    except Exception as error:
        detail = getattr(error, "detail", None) or error
        raise ApiError(400, f"multipart body could not be read ({one_line(detail, 160)})") from None
    values: dict[str, Any] = {}
    try:
        for key in form:
            parts = form.getlist(key)
            if len(parts) > 1:
                raise ApiError(400, f"{one_line(key, 40)}: given {len(parts)} times; give it once")
            part = parts[0]
            values[key] = await part.read() if isinstance(part, UploadFile) else part
    finally:
        await form.close()
    return values
