"""Request bodies to model inputs: images and audio clips from multipart parts or base64 JSON,
texts from JSON, each checked against the limits before anything reaches the model."""
from __future__ import annotations

import base64
import binascii
import io
import json
from typing import Any

import numpy as np
from PIL import Image

from headstart.data.audio import load_audio
from headstart.data.images import BadSampleError, load_image
from headstart.serving.limits import InputError, Limits


def decode_image(data: bytes, name: str, limits: Limits) -> Image.Image:
    """An RGB image as ``headstart predict`` reads the same file (EXIF orientation applied), or an
    InputError that names ``name``: empty, not an image, corrupt, or over the pixel limit."""
    if not data:
        raise InputError(422, f"{name}: empty file")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            w, h = probe.size
    except Exception as e:  # PIL raises many types for what is not an image
        raise InputError(415, f"{name}: not a readable image ({type(e).__name__})") from None
    if w * h > limits.max_pixels:
        raise InputError(413, f"{name}: {w}x{h} = {w * h} pixels, over the limit of {limits.max_pixels}")
    try:
        return load_image(io.BytesIO(data), name)
    except BadSampleError as e:
        raise InputError(422, str(e)) from None


AUDIO_FORMATS = "WAV, FLAC, OGG or MP3"


def decode_audio(data: bytes, name: str, limits: Limits, sampling_rate: int) -> np.ndarray:
    """Samples (T,) float32, mono, at the model's ``sampling_rate`` (decoded and resampled as
    ``headstart predict`` reads the same file), or an InputError that names ``name``: empty, not
    audio, over the duration limit (read from the header, before decoding), or corrupt."""
    import soundfile as sf

    if not data:
        raise InputError(422, f"{name}: empty file")
    try:
        info = sf.info(io.BytesIO(data))
    except Exception as e:  # libsndfile raises several types for what is not audio
        raise InputError(415, f"{name}: not a readable audio file ({AUDIO_FORMATS}; {type(e).__name__})") from None
    if info.samplerate <= 0 or info.frames <= 0:
        raise InputError(422, f"{name}: the audio header gives {info.frames} samples at {info.samplerate} Hz")
    seconds = info.frames / info.samplerate
    if seconds > limits.max_audio_seconds:
        raise InputError(413, f"{name}: {seconds:.1f} s of audio, over the limit of {limits.max_audio_seconds} s")
    try:
        return load_audio(io.BytesIO(data), name, sampling_rate)
    except BadSampleError as e:
        raise InputError(422, str(e)) from None


def _count(items: list[Any], what: str, limits: Limits) -> None:
    if not items:
        raise InputError(422, f"no {what} in the request")
    if len(items) > limits.max_items:
        raise InputError(422, f"{len(items)} {what} in one request, over the limit of {limits.max_items}")


JSON_KEYS = {"text": "texts", "image": "images", "audio": "audio"}


def json_inputs(body: bytes, modality: str, limits: Limits, sampling_rate: int = 16000) -> list[Any]:
    """``{"texts": [...]}`` for a text model, ``{"images": [base64, ...]}`` for an image model,
    ``{"audio": [base64, ...]}`` (sound files) for an audio model."""
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(400, f"the body is not valid JSON ({e})") from None
    key = JSON_KEYS.get(modality, "images")
    if not isinstance(doc, dict) or key not in doc:
        raise InputError(422, f'this {modality} model expects a JSON object {{"{key}": [...]}}')
    items = doc[key]
    if not isinstance(items, list):
        raise InputError(422, f'"{key}" must be a list, got {type(items).__name__}')
    _count(items, key, limits)
    if modality == "text":
        return [_text(t, f"texts[{i}]", limits) for i, t in enumerate(items)]
    out = []
    for i, s in enumerate(items):
        name = f"{key}[{i}]"
        if not isinstance(s, str):
            raise InputError(422, f"{name}: expected a base64 string, got {type(s).__name__}")
        try:
            data = base64.b64decode(s.split(",", 1)[1] if s.startswith("data:") else s, validate=True)
        except (binascii.Error, ValueError):
            raise InputError(422, f"{name}: not valid base64") from None
        out.append(decode_audio(data, name, limits, sampling_rate) if modality == "audio"
                   else decode_image(data, name, limits))
    return out


def _text(t: Any, name: str, limits: Limits) -> str:
    if not isinstance(t, str):
        raise InputError(422, f"{name}: expected a string, got {type(t).__name__}")
    if not t.strip():
        raise InputError(422, f"{name}: empty text")
    if len(t) > limits.max_text_chars:
        raise InputError(422, f"{name}: {len(t)} characters, over the limit of {limits.max_text_chars}")
    return t


async def form_inputs(form: Any, modality: str, limits: Limits, sampling_rate: int = 16000) -> list[Any]:
    """Multipart: uploaded files in the field ``files`` (images, sound files resampled to the
    model's ``sampling_rate``, or UTF-8 text files for a text model); a plain field there is
    refused. Decoding runs off the event loop."""
    from starlette.concurrency import run_in_threadpool
    from starlette.datastructures import UploadFile

    parts = form.getlist("files")
    _count(parts, "files", limits)
    raw = []
    for i, part in enumerate(parts):
        if not isinstance(part, UploadFile):
            raise InputError(422, f"files[{i}]: expected an uploaded file, got a plain form field")
        name = f"files[{i}]" + (f" ({part.filename})" if part.filename else "")
        raw.append((name, await part.read()))
    return await run_in_threadpool(_decode_parts, raw, modality, limits, sampling_rate)


def _decode_parts(raw: list[tuple[str, bytes]], modality: str, limits: Limits, sampling_rate: int) -> list[Any]:
    if modality == "image":
        return [decode_image(data, name, limits) for name, data in raw]
    if modality == "audio":
        return [decode_audio(data, name, limits, sampling_rate) for name, data in raw]
    out = []
    for name, data in raw:
        try:
            out.append(_text(data.decode("utf-8"), name, limits))
        except UnicodeDecodeError:
            raise InputError(422, f"{name}: not UTF-8 text") from None
    return out
