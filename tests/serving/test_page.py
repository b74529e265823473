"""The web page at / in headless Chromium (driven by Playwright over the system's browser): pick
a model, upload an image or a sound file through the file input, read the rendered top class;
type a text."""
import shutil
import threading
import time

import numpy as np
import pytest

import headstart
from headstart.serving import create_app
from tests.conftest import free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def server(tiny_bundles, audio_bundle):
    import uvicorn

    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app({**tiny_bundles, "tones": audio_bundle}), host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    deadline = time.time() + 60
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    assert srv.started, "the server did not start"
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    t.join(timeout=30)


@pytest.fixture(scope="module")
def page(server):
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install chromium; .ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        pg = browser.new_page()
        errors: list[str] = []
        pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.goto(server + "/")
        pg.wait_for_selector("#model option", state="attached")
        pg.errors = errors
        yield pg
        browser.close()


def test_uploading_an_image_through_the_page_shows_the_models_top_class(page, tiny_bundles, tmp_path):
    from tests.conftest import make_image

    path = tmp_path / "red.png"
    make_image((200, 30, 30), 77).save(path)
    page.select_option("#model", "img")
    page.set_input_files("#file", str(path))
    page.click("#predict")
    page.wait_for_selector("#top")
    expected = headstart.load(tiny_bundles["img"]).predict([path])[0]
    bars = page.query_selector_all("#results .row")
    assert (page.inner_text("#top"), len(bars)) == (expected, 3)
    assert page.errors == []


def test_typing_a_text_shows_its_top_class_and_the_model_card(page, tiny_bundles):
    text = "the film was awful and dreadful"
    page.select_option("#model", "txt")
    page.wait_for_function("document.querySelector('#card').textContent.includes('tiny:bert')")
    page.fill("#text", text)
    page.click("#predict")
    page.wait_for_selector("#top")
    assert page.inner_text("#top") == headstart.load(tiny_bundles["txt"]).predict([text])[0]
    assert page.errors == []


def test_uploading_a_sound_file_through_the_page_shows_the_models_top_class(page, audio_bundle, tmp_path):
    from headstart.testing.audio import write_wav

    t = np.arange(4000) / 8000
    path = write_wav(tmp_path / "tone.wav", (0.5 * np.sin(2 * np.pi * 1800 * t)).astype(np.float32), 8000)
    page.select_option("#model", "tones")
    assert "audio" in page.get_attribute("#file", "accept") and page.inner_text("#filelabel").startswith("Audio")
    page.set_input_files("#file", str(path))
    assert page.is_visible("#player")
    page.click("#predict")
    page.wait_for_selector("#top")
    assert page.inner_text("#top") == headstart.load(audio_bundle).predict([str(path)])[0]
    assert page.errors == []
