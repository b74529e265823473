"""The HTTP API (FastAPI): ``GET /v1/models``, ``GET /v1/models/{name}``,
``POST /v1/models/{name}/predict``, ``/healthz``, ``/readyz``, the web page at ``/`` and the
OpenAPI schema at ``/docs``. Every model is loaded once, when the app is created; predictions go
through one micro-batcher per model. Bad input is a 4xx naming what is wrong."""
from __future__ import annotations

import hmac
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any, AsyncIterator, Union

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from headstart.serving.batcher import MicroBatcher
from headstart.serving.inputs import AUDIO_FORMATS, form_inputs, json_inputs
from headstart.serving.limits import InputError, Limits
from headstart.serving.models import ServedModel, load_models

Scalar = Union[str, int, float]


class Prediction(BaseModel):
    """One input's prediction; which fields appear depends on the model's task."""

    model_config = ConfigDict(extra="forbid")
    label: Scalar | None = None
    labels: list[Scalar] | None = None
    value: float | None = None
    outputs: dict[str, Any] | None = None
    probabilities: dict[str, float] | None = None


class PredictResponse(BaseModel):
    model: str
    predictions: list[Prediction]


class ModelInfo(BaseModel):
    name: str
    task: str
    modality: str
    labels: list[str]
    backbone: str | None
    licence: str
    strategy: str | None
    metrics: dict[str, dict[str, float]]
    card: str | None = None


class ModelList(BaseModel):
    models: list[ModelInfo]


class Error(BaseModel):
    detail: str


ERRORS = {s: {"model": Error} for s in (400, 401, 404, 413, 415, 422, 503)}

def predict_body(modality: str, limits: Limits) -> dict[str, Any]:
    """The request body a model accepts, as exactly as JSON Schema can say it (per model, so
    the docs show each model's input and a fuzzer's schema-valid requests are valid)."""
    many = {"minItems": 1, "maxItems": limits.max_items}
    if modality == "text":
        item = {"type": "string", "minLength": 1, "maxLength": limits.max_text_chars, "pattern": "\\S"}
        doc = {"type": "object", "required": ["texts"], "properties": {"texts": {"type": "array", "items": item, **many}},
               "example": {"texts": ["a text to classify"]}}
    else:
        key, what = ("audio", f"base64-encoded sound files ({AUDIO_FORMATS}, at most {limits.max_audio_seconds} s each)"
                     ) if modality == "audio" else ("images", "base64-encoded image files")
        doc = {"type": "object", "required": [key], "description": what,
               "properties": {key: {"type": "array", "items": {"type": "string", "format": "byte"}, **many}}}
    form = {"type": "object", "required": ["files"],
            "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"}, **many}}}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": doc},
                                                          "multipart/form-data": {"schema": form}}}}


class Guard:
    """ASGI middleware: a request body over ``limit`` bytes gets 413 before the app reads it (the
    body is buffered, bounded, then replayed), and ``/v1/`` routes need the API key when one is
    set (``Authorization: Bearer KEY`` or ``X-API-Key: KEY``)."""

    def __init__(self, app: Any, limit: int, api_key: str | None) -> None:
        self.app, self.limit, self.key = app, limit, api_key

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.key and scope["path"].startswith("/v1/") and not self._authorised(headers):
            return await _reply(send, 401, "missing or wrong API key (Authorization: Bearer KEY, or X-API-Key)")
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            return await _reply(send, 413, f"request body of {declared} bytes, over the limit of {self.limit}")
        chunks, size = [], 0
        while True:
            msg = await receive()
            if msg["type"] != "http.request":
                break
            size += len(msg.get("body", b""))
            if size > self.limit:
                return await _reply(send, 413, f"request body over the limit of {self.limit} bytes")
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body", False):
                break
        body, sent = b"".join(chunks), False

        async def replay() -> dict:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _authorised(self, headers: dict[str, str]) -> bool:
        given = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ").strip()
        return bool(given) and hmac.compare_digest(given.encode(), self.key.encode())  # type: ignore[union-attr]


async def _reply(send: Any, status: int, detail: str) -> None:
    await JSONResponse({"detail": detail}, status_code=status)({"type": "http"}, None, send)


def _page() -> str:
    return resources.files("headstart.serving").joinpath("static/index.html").read_text(encoding="utf-8")


def create_app(bundles: dict[str, str | Path] | dict[str, ServedModel], *, limits: Limits | None = None,
               api_key: str | None = None, max_batch: int = 32, max_wait_ms: float = 5.0,
               device: str | None = None) -> FastAPI:
    """The app serving ``bundles`` (name -> bundle folder, or already loaded ServedModels)."""
    limits = limits or Limits()
    if not bundles:
        raise ValueError("no bundles to serve")
    paths = {k: v for k, v in bundles.items() if not isinstance(v, ServedModel)}
    models: dict[str, ServedModel] = {**{k: v for k, v in bundles.items() if isinstance(v, ServedModel)},
                                      **load_models(paths, device=device)}
    for m in models.values():
        m.batcher = MicroBatcher(m.predict, max_batch=max_batch, max_wait_ms=max_wait_ms)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for m in models.values():
            m.batcher.start()
        yield
        for m in models.values():  # graceful: what is queued is answered first
            await m.batcher.stop()

    app = FastAPI(title="headstart", version=_version(), lifespan=lifespan,
                  description="Predictions from headstart bundles. Image and audio models take multipart uploads "
                              "(field `files`) or base64 JSON (`images`, `audio`); text models take JSON "
                              "`{\"texts\": [...]}`.")
    app.add_middleware(Guard, limit=limits.max_request_bytes, api_key=api_key)
    app.state.models = models

    @app.exception_handler(InputError)
    async def _input_error(request: Request, exc: InputError) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=exc.status)

    _info_routes(app, models)
    _predict_routes(app, models, limits)
    return app


def _lookup(models: dict[str, ServedModel], name: str) -> ServedModel:
    if name not in models:
        raise InputError(404, f"no model named {name!r}; served: {', '.join(sorted(models))}")
    return models[name]


def _info_routes(app: FastAPI, models: dict[str, ServedModel]) -> None:
    """The page, health, readiness and the model descriptions."""
    page = _page()
    names = {"parameters": [{"name": "name", "in": "path", "required": True, "description": "a served model",
                             "schema": {"type": "string", "enum": sorted(models)}}]}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> str:
        return page

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", responses={503: {"model": Error}})
    async def readyz() -> Any:
        """Every model is loaded and its batcher is running."""
        down = [n for n, m in models.items() if not m.batcher.running]
        if down:
            return JSONResponse({"detail": f"not ready: {', '.join(down)}"}, status_code=503)
        return {"status": "ready", "models": sorted(models)}

    @app.get("/v1/models", response_model=ModelList, response_model_exclude_none=True,
             responses={401: {"model": Error}})
    async def list_models() -> dict[str, Any]:
        """Name, task, labels, backbone, metrics and licence of every served model."""
        return {"models": [m.info() for m in models.values()]}

    @app.get("/v1/models/{name}", response_model=ModelInfo, response_model_exclude_none=True,
             responses={401: {"model": Error}, 404: {"model": Error}}, openapi_extra=names)
    async def model_info(request: Request) -> dict[str, Any]:  # {name} is declared in ``names``
        """One model's description, with its model card (Markdown)."""
        m = _lookup(models, request.path_params["name"])
        return {**m.info(), "card": m.card()}


async def _predict(m: ServedModel, request: Request, limits: Limits) -> dict[str, Any]:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    with m.batcher.arrival():  # the batch being gathered waits for this request's decoding
        if kind == "multipart/form-data":
            try:
                form = await request.form(max_files=limits.max_items + 1, max_fields=limits.max_items + 1)
            except Exception as e:  # malformed multipart: starlette/python-multipart raise several types
                raise InputError(400, f"malformed multipart body ({getattr(e, 'detail', e)})") from None
            items = await form_inputs(form, m.modality, limits, m.sampling_rate)
        elif kind in ("application/json", ""):
            items = await run_in_threadpool(json_inputs, await request.body(), m.modality, limits, m.sampling_rate)
        else:
            raise InputError(415, f"content type {kind!r}: send application/json or multipart/form-data")
        future = m.batcher.submit(items)
    return {"model": m.name, "predictions": await future}


def _predict_routes(app: FastAPI, models: dict[str, ServedModel], limits: Limits) -> None:
    """One documented predict route per model (its own request body), and a 404 for other names."""
    def endpoint(m: ServedModel) -> Any:
        async def predict(request: Request) -> dict[str, Any]:
            return await _predict(m, request, limits)
        predict.__doc__ = (f"{m.name}: {m.info()['task']} of {m.modality} inputs. Labels and class probabilities "
                           "(or the task's outputs) for each input, in order.")
        return predict

    for m in models.values():
        app.add_api_route(f"/v1/models/{m.name}/predict", endpoint(m), methods=["POST"], response_model=PredictResponse,
                          response_model_exclude_none=True, responses=ERRORS, name=f"predict_{m.name}",
                          summary=f"Predict with {m.name}", openapi_extra=predict_body(m.modality, limits))

    @app.post("/v1/models/{name}/predict", include_in_schema=False)
    async def unknown_model(name: str) -> None:
        _lookup(models, name)  # raises 404 naming the served models


def _version() -> str:
    from headstart._version import __version__

    return __version__
