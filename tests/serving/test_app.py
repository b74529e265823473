"""The HTTP API through FastAPI's test client: predictions equal the library's, bad input is a 4xx
that names the problem, and the server keeps serving after it."""
import base64
import io

import numpy as np
import pytest
from fastapi.testclient import TestClient

import headstart
from headstart.serving import Limits, create_app
from tests.conftest import COLOURS, make_image


def png(colour=(200, 30, 30), seed=5, size=24) -> bytes:
    buf = io.BytesIO()
    make_image(colour, seed, size).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def client(tiny_bundles):
    with TestClient(create_app(tiny_bundles, limits=Limits(max_items=4, max_pixels=100 * 100))) as c:
        yield c


def files(*blobs):
    return [("files", (f"im{i}.png", b, "image/png")) for i, b in enumerate(blobs)]


def test_model_list_names_task_labels_backbone_and_licence(client):
    models = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    assert models["img"]["labels"] == sorted(COLOURS) and models["img"]["backbone"] == "tiny:cnn"
    assert models["txt"]["modality"] == "text" and models["txt"]["licence"]
    assert "# headstart model" in client.get("/v1/models/img").json()["card"]


def test_uploaded_images_get_the_probabilities_predict_gives_their_files(client, tiny_bundles, tmp_path):
    blobs = [png(rgb, 40 + i) for i, rgb in enumerate(COLOURS.values())]
    paths = []
    for i, b in enumerate(blobs):
        (tmp_path / f"{i}.png").write_bytes(b)
        paths.append(tmp_path / f"{i}.png")
    est = headstart.load(tiny_bundles["img"])
    expected = est.predict_proba(paths)
    got = client.post("/v1/models/img/predict", files=files(*blobs)).json()["predictions"]
    assert [p["label"] for p in got] == est.predict(paths).tolist()
    np.testing.assert_allclose([[p["probabilities"][c] for c in est.classes_] for p in got], expected, atol=1e-5)


def test_base64_json_and_multipart_give_the_same_prediction(client):
    blob = png()
    a = client.post("/v1/models/img/predict", files=files(blob)).json()
    b = client.post("/v1/models/img/predict", json={"images": [base64.b64encode(blob).decode()]}).json()
    assert a == b


def test_texts_get_labels_and_probabilities(client, tiny_bundles):
    texts = ["the film was great and superb", "the film was awful and boring"]
    got = client.post("/v1/models/txt/predict", json={"texts": texts}).json()["predictions"]
    est = headstart.load(tiny_bundles["txt"])
    assert [p["label"] for p in got] == est.predict(texts).tolist()
    assert all(abs(sum(p["probabilities"].values()) - 1) < 1e-5 for p in got)


@pytest.mark.parametrize("kwargs,status,words", [
    ({"files": files(b"not an image")}, 415, "im0.png"),
    ({"files": files(b"")}, 422, "empty file"),
    ({"files": files(png(size=120))}, 413, "pixels"),
    ({"files": files(*[png()] * 5)}, 422, "over the limit of 4"),
    ({"json": {"images": ["%%%"]}}, 422, "base64"),
    ({"json": {"texts": ["x"]}}, 422, '{"images"'),
    ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 400, "not valid JSON"),
    ({"content": b"hello", "headers": {"content-type": "text/plain"}}, 415, "text/plain"),
    ({"json": {"images": []}}, 422, "no images"),
])
def test_bad_image_requests_get_a_4xx_naming_the_problem(client, kwargs, status, words):
    r = client.post("/v1/models/img/predict", **kwargs)
    assert (r.status_code, words in r.json()["detail"]) == (status, True), r.json()


@pytest.mark.parametrize("body,status,words", [
    ({"texts": ["fine", "  "]}, 422, "texts[1]: empty text"),
    ({"texts": [3]}, 422, "texts[0]: expected a string"),
    ({"texts": "one"}, 422, "must be a list"),
    ({"texts": ["x" * 20_001]}, 422, "characters"),
])
def test_bad_text_requests_get_a_4xx_naming_the_item(client, body, status, words):
    r = client.post("/v1/models/txt/predict", json=body)
    assert (r.status_code, words in r.json()["detail"]) == (status, True), r.json()


def test_unknown_model_is_404_listing_the_served_ones(client):
    r = client.post("/v1/models/nope/predict", json={"texts": ["x"]})
    assert r.status_code == 404 and "img, txt" in r.json()["detail"]


def test_the_server_keeps_serving_after_bad_requests(client):
    for _ in range(3):
        client.post("/v1/models/img/predict", files=files(b"junk"))
    assert client.post("/v1/models/img/predict", files=files(png())).status_code == 200
    assert client.get("/readyz").json()["status"] == "ready"


def test_an_oversize_body_is_refused_before_it_is_read(tiny_bundles):
    with TestClient(create_app(tiny_bundles, limits=Limits(max_request_bytes=1000))) as c:
        r = c.post("/v1/models/img/predict", files=files(png(size=64)))
    assert r.status_code == 413 and "1000" in r.json()["detail"]


def test_api_key_guards_v1_but_not_health_or_the_page(tiny_bundles):
    with TestClient(create_app(tiny_bundles, api_key="s3cret")) as c:
        assert c.get("/v1/models").status_code == 401
        assert c.get("/v1/models", headers={"X-API-Key": "wrong"}).status_code == 401
        assert c.get("/v1/models", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.get("/healthz").status_code == 200 and c.get("/").status_code == 200


def test_openapi_schema_documents_each_models_request_bodies_and_the_model_names(client):
    paths = client.get("/openapi.json").json()["paths"]
    img, txt = (paths[f"/v1/models/{n}/predict"]["post"]["requestBody"]["content"] for n in ("img", "txt"))
    assert set(img) == set(txt) == {"application/json", "multipart/form-data"}
    assert (img["application/json"]["schema"]["required"], txt["application/json"]["schema"]["required"]) == (
        ["images"], ["texts"])
    assert paths["/v1/models/{name}"]["get"]["parameters"][0]["schema"]["enum"] == ["img", "txt"]
    assert client.get("/docs").status_code == 200


def test_regression_and_multilabel_models_answer_with_their_tasks_records(tmp_path):
    from headstart.api import Headstart
    from tests.conftest import REVIEW_WORDS

    rows_r, rows_m = ["text,score"], ["text,tags"]
    rng = np.random.RandomState(0)
    for i in range(40):
        tags = [t for t in REVIEW_WORDS if rng.rand() < 0.5] or ["fun"]
        text = "the film " + " ".join(REVIEW_WORDS[t][i % 3] for t in tags)
        rows_r.append(f"{text},{len(tags) + rng.rand():.3f}")
        rows_m.append(f"{text},{'|'.join(tags)}")
    (tmp_path / "reg.csv").write_text("\n".join(rows_r) + "\n")
    (tmp_path / "tags.csv").write_text("\n".join(rows_m) + "\n")
    for name, col, task in (("reg", "score", "regression"), ("tags", "tags", "multilabel")):
        Headstart(backbone="tiny:bert", task=task, strategy="fine_tuning", strategy_params={"steps": 4}, verbose=False,
                  data={"label_column": col}, run={"out": tmp_path / name}).fit(tmp_path / f"{name}.csv")
    texts = ["the film witty tragic", "the film epic"]
    with TestClient(create_app({"reg": tmp_path / "reg", "tags": tmp_path / "tags"})) as c:
        reg = c.post("/v1/models/reg/predict", json={"texts": texts}).json()["predictions"]
        tags = c.post("/v1/models/tags/predict", json={"texts": texts}).json()["predictions"]
        listed = {m["name"]: m["task"] for m in c.get("/v1/models").json()["models"]}
    assert [p["value"] for p in reg] == pytest.approx(headstart.load(tmp_path / "reg").predict(texts).tolist(), abs=1e-5)
    assert [tuple(p["labels"]) for p in tags] == list(headstart.load(tmp_path / "tags").predict(texts))
    assert set(tags[0]["probabilities"]) == set(REVIEW_WORDS) and listed == {"reg": "regression", "tags": "multilabel"}
