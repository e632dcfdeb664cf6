"""The FastAPI application of `adf serve`.

    POST /v1/detect   audio (multipart field `file`, or the raw request body) -> scores
    GET  /v1/model    what is loaded: name, parameters, checkpoint sha256, input policy, limits
    GET  /healthz     liveness and queue depth
    GET  /            the web page (upload or record, verdict, timeline of window scores)
    GET  /docs        OpenAPI documentation

Status codes: 413 upload or audio over a limit, 400 unreadable, empty or
too-short audio (the reason in `detail`), 503 with Retry-After when the queue
is full, 500 when the model fails on one request's audio (the others go on).
"""
from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
import uuid
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from importlib import resources
from typing import Literal, Optional

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from swagger_ui_bundle import swagger_ui_path

from adf.audio import AudioError
from adf.serve.batching import BatchQueue, QueueFull, ScoringFailed
from adf.serve.upload import ServeLimits, TooLarge, decode_upload

log = logging.getLogger("adf.serve")
MULTIPART_SLACK = 64 * 1024  # multipart headers and boundaries on top of the file itself
DECISIONS = ("fake", "real")


@dataclass(frozen=True)
class ServeConfig:
    """Service settings: `threshold` on prob_real for the decision (>= threshold:
    real), the batching (`max_batch` inputs per forward pass, `max_wait_ms`,
    `max_queue` waiting requests), the default `window` in seconds when windows
    are asked for without one, and the per-request `limits`."""

    threshold: float = 0.5
    max_batch: int = 8
    max_wait_ms: float = 10.0
    max_queue: int = 64
    window: float = 4.0
    limits: ServeLimits = field(default_factory=ServeLimits)


class Logits(BaseModel):
    fake: float
    real: float


class WindowResult(BaseModel):
    start: float
    end: float
    logit_fake: float
    logit_real: float
    prob_real: float


class Detection(BaseModel):
    id: str
    filename: Optional[str]
    duration: float
    sample_rate: int
    channels: int
    format: str
    logits: Logits
    prob_real: float
    threshold: float
    decision: Literal["fake", "real"]
    aggregate: Literal["whole", "mean", "min"]
    windows: Optional[list[WindowResult]] = None


_BODY_DOC = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                       "properties": {"file": {"type": "string", "format": "binary"}}}},
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
}, "description": "The audio file (any format libsndfile reads: WAV, FLAC, OGG/Vorbis/Opus, MP3, AIFF ...), "
                  "as the multipart field `file` or as the whole request body."}}


class _BodyTooLarge(Exception):
    pass


def _limited(receive, limit):
    """`receive` that raises _BodyTooLarge once more than `limit` body bytes came:
    an upload without (or with a false) Content-Length is cut off as it streams."""
    seen = 0

    async def wrapped():
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _BodyTooLarge
        return message

    return wrapped


def _too_large(limit):
    return TooLarge(f"the upload is over the limit of {limit} bytes")


async def _read_body(request, limit):
    """(bytes or a file object, client's file name or None) of the upload in `request`."""
    multipart = request.headers.get("content-type", "").split(";")[0].strip().lower() == "multipart/form-data"
    allowed = limit + (MULTIPART_SLACK if multipart else 0)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > allowed:
        raise _too_large(limit)
    body = Request(request.scope, _limited(request.receive, allowed))
    try:
        if not multipart:
            return b"".join([chunk async for chunk in body.stream()]), request.headers.get("x-filename")
        form = await body.form(max_files=1, max_fields=16)
    except _BodyTooLarge:
        raise _too_large(limit) from None
    files = [v for _, v in form.multi_items() if not isinstance(v, str)]
    if not files:
        raise AudioError("upload", "the multipart body holds no file; send the audio in the field 'file'")
    upload = files[0]
    if upload.size is not None and upload.size > limit:
        raise _too_large(limit)
    return upload.file, upload.filename


def _decode(data, name, limits, min_samples, window, hop, whole, tmp_dir):
    """Save the upload to a temporary file (adf.audio reads files) and decode it."""
    suffix = os.path.splitext(name or "")[1][:16]
    with tempfile.NamedTemporaryFile(suffix=suffix, dir=tmp_dir) as tmp:
        if isinstance(data, bytes):
            tmp.write(data)
        else:  # a multipart file, spooled by Starlette
            with data:
                data.seek(0)
                shutil.copyfileobj(data, tmp)
        tmp.flush()
        try:
            return decode_upload(tmp.name, limits, min_samples, window, hop, whole)
        except AudioError as err:  # name the client's file, not the temporary one
            raise AudioError(name or "upload", err.problem.replace(tmp.name, name or "upload")) from None


def create_app(adapter, config=None, tmp_dir=None):
    """The application serving `adapter` (adf.serve.adapter.ModelAdapter) with
    `config` (ServeConfig); uploads are spooled in `tmp_dir` (default: the system's)."""
    from adf import __version__
    from adf.inference import Item, WindowScore, score_from_windows
    from adf.scorefile import prob_real

    config = config or ServeConfig()
    limits = config.limits
    batcher = BatchQueue(adapter.score_waveforms, config.max_batch, config.max_wait_ms, config.max_queue)
    page = resources.files("adf.serve").joinpath("static/index.html").read_text(encoding="utf-8")

    @asynccontextmanager
    async def lifespan(app):
        batcher.start()
        try:
            yield
        finally:
            await asyncio.to_thread(batcher.stop)

    app = FastAPI(title="adf serve", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Deepfake speech detection: upload audio, get the probability that it is real "
                              "(bona fide) speech. Scores equal those of `adf detect` with the same checkpoint.")
    app.state.batcher, app.state.adapter, app.state.config = batcher, adapter, config

    # The API docs' scripts come from a PyPI package, not a CDN: they work offline.
    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return get_swagger_ui_html(openapi_url="openapi.json", title="adf serve: API",
                                   swagger_js_url="docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="docs-assets/swagger-ui.css",
                                   swagger_favicon_url="docs-assets/favicon-32x32.png")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index():
        return page

    @app.get("/healthz")
    async def healthz():
        """Liveness, the requests waiting for the model, and batches run so far."""
        return {"status": "ok", "waiting": batcher.waiting, "batches": batcher.batches,
                "inputs_scored": batcher.inputs_scored}

    @app.get("/v1/model")
    async def model_info():
        """The loaded detector (name, parameter count, checkpoint sha256, input policy,
        precision), the decision threshold, the limits and the batching settings."""
        return {**adapter.info, "threshold": config.threshold, "limits": asdict(limits),
                "batching": {"max_batch": config.max_batch, "max_wait_ms": config.max_wait_ms,
                             "max_queue": config.max_queue}, "default_window": config.window}

    @app.post("/v1/detect", response_model=Detection, openapi_extra=_BODY_DOC,
              responses={400: {"description": "unreadable, empty or too short audio"},
                         413: {"description": "upload or audio duration over the limit"},
                         503: {"description": "queue full; see Retry-After"}})
    async def detect(request: Request,
                     windows: bool = Query(False, description="also return the scores of windows"),
                     window: Optional[float] = Query(None, gt=0, description="window length in seconds "
                                                     "(implies windows; default from the server)"),
                     hop: Optional[float] = Query(None, gt=0, description="window hop in seconds "
                                                  "(default: the window length)"),
                     aggregate: Literal["whole", "mean", "min"] = Query(
                         "whole", description="utterance score: the whole file in one pass (as `adf detect`), "
                                              "or the mean / most fake of the windows (as `adf detect --window`)"),
                     threshold: Optional[float] = Query(None, ge=0, le=1, description="decision threshold "
                                                        "on prob_real (default from the server)")):
        """Score one audio file: logits [fake, real], prob_real and the decision."""
        threshold = config.threshold if threshold is None else threshold
        if window is not None or hop is not None or aggregate != "whole":
            windows = True
        if windows:
            window = window or config.window
            hop = hop or window
            if hop > window:
                raise HTTPException(422, f"hop {hop:g} is longer than window {window:g}: audio between "
                                         "windows would never be scored")
        else:
            window = hop = None
        name = None
        try:
            data, name = await _read_body(request, limits.max_upload_bytes)
            decoded = await run_in_threadpool(_decode, data, name, limits, adapter.min_samples, window, hop,
                                              aggregate == "whole", tmp_dir)
            logits = await batcher.submit(decoded.pieces)
        except TooLarge as err:
            raise HTTPException(413, str(err)) from None
        except AudioError as err:
            raise HTTPException(400, f"{name or 'upload'}: {err.problem}") from None
        except QueueFull as err:
            raise HTTPException(503, str(err), headers={"Retry-After": str(err.retry_after)}) from None
        except ScoringFailed as err:
            raise HTTPException(500, f"{name or 'upload'}: {err}") from None
        scored = [WindowScore(a, b, *logits[k + decoded.whole]) for k, (a, b) in enumerate(decoded.spans)]
        if decoded.whole:
            fake, real = logits[0]
        else:
            total = score_from_windows(Item("upload", "upload"), list(scored), window, aggregate)
            fake, real = total.logit_fake, total.logit_real
        prob = prob_real(fake, real)
        return Detection(
            id=uuid.uuid4().hex, filename=name, duration=decoded.duration, sample_rate=decoded.sample_rate,
            channels=decoded.channels, format=decoded.format, logits=Logits(fake=fake, real=real),
            prob_real=prob, threshold=threshold, decision=DECISIONS[prob >= threshold], aggregate=aggregate,
            windows=[WindowResult(start=w.start, end=w.end, logit_fake=w.logit_fake, logit_real=w.logit_real,
                                  prob_real=prob_real(w.logit_fake, w.logit_real)) for w in scored]
            if windows else None)

    @app.exception_handler(Exception)
    async def unexpected(request, err):  # the service stays up; the client learns what happened
        log.exception("request %s %s failed", request.method, request.url.path)
        return JSONResponse({"detail": f"internal error: {type(err).__name__}: {err}"}, status_code=500)

    return app
