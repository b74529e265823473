"""Audio models over HTTP: an uploaded WAV/FLAC/OGG gets the prediction ``predict`` gives the
same file; bad audio is a 4xx naming the file and the problem."""
import base64
import io

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

import headstart
from headstart.serving import Limits, create_app


@pytest.fixture(scope="module")
def client(audio_bundle):
    with TestClient(create_app({"tones": audio_bundle}, limits=Limits(max_items=4, max_audio_seconds=2))) as c:
        yield c


def clip(path, fmt, seconds=0.5, rate=8000, freq=300.0, subtype=None):
    t = np.arange(int(rate * seconds)) / rate
    sf.write(str(path), (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32), rate, format=fmt, subtype=subtype)
    return path


def test_uploaded_wav_flac_and_ogg_get_the_probabilities_predict_gives_their_files(client, audio_bundle, tmp_path):
    paths = [clip(tmp_path / "a.wav", "WAV", freq=300), clip(tmp_path / "b.flac", "FLAC", freq=1800),
             clip(tmp_path / "c.ogg", "OGG", freq=1700, subtype="VORBIS")]
    est = headstart.load(audio_bundle)
    expected = est.predict_proba([str(p) for p in paths])
    parts = [("files", (p.name, p.read_bytes(), "application/octet-stream")) for p in paths]
    got = client.post("/v1/models/tones/predict", files=parts).json()["predictions"]
    assert [p["label"] for p in got] == est.predict([str(p) for p in paths]).tolist()
    np.testing.assert_allclose([[p["probabilities"][c] for c in est.classes_] for p in got], expected, atol=1e-5)


def test_base64_json_and_multipart_give_the_same_audio_prediction(client, tmp_path):
    blob = clip(tmp_path / "a.wav", "WAV").read_bytes()
    a = client.post("/v1/models/tones/predict", files=[("files", ("a.wav", blob, "audio/wav"))]).json()
    b = client.post("/v1/models/tones/predict", json={"audio": [base64.b64encode(blob).decode()]}).json()
    assert a == b


def _nan_wav() -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.array([0.1, np.nan, 0.2] * 100, np.float32), 8000, format="WAV", subtype="FLOAT")
    return buf.getvalue()


@pytest.mark.parametrize("blob,status,words", [
    (b"RIFF\x00\x00not audio at all", 415, "x.wav): not a readable audio file"),
    (b"", 422, "empty file"),
    (None, 413, "3.0 s of audio, over the limit of 2 s"),
    (_nan_wav(), 422, "NaN"),
])
def test_bad_audio_gets_a_4xx_naming_the_file_and_the_problem(client, tmp_path, blob, status, words):
    if blob is None:
        blob = clip(tmp_path / "long.wav", "WAV", seconds=3.0).read_bytes()
    r = client.post("/v1/models/tones/predict", files=[("files", ("x.wav", blob, "audio/wav"))])
    assert (r.status_code, words in r.json()["detail"]) == (status, True), r.json()


def test_the_openapi_schema_says_an_audio_model_takes_sound_files(client):
    body = client.get("/openapi.json").json()["paths"]["/v1/models/tones/predict"]["post"]["requestBody"]
    doc = body["content"]["application/json"]["schema"]
    assert doc["required"] == ["audio"] and "at most 2 s" in doc["description"]
