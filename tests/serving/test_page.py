"""The web page at / of `ofa serve`, in a real browser against the real server.

Starts `python -m ofa_core serve` on a tiny model in a subprocess, drives Debian's headless Chromium
with selenium: caption an uploaded image, rank labels for classification, show a server error,
and draw a box (from a stubbed answer handed to the page's render function) over the preview.
Skipped when Chromium or its driver is missing (`.ci/run` installs them).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

selenium = pytest.importorskip("selenium", reason="selenium is not installed: pip install -e '.[dev]'")

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

from ofa_core.testing import fake_image, tiny_checkpoint  # noqa: E402

REPO = Path(__file__).parents[2]
NO_CHROMIUM = "no Chromium: install Debian's chromium and chromium-driver (.ci/run does)"
SERVER_START_S = 180
PREDICT_S = 120


def _executable(name: str, *candidates: str) -> str | None:
    for candidate in candidates:
        if Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which(name)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"`ofa serve` exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.25)
    pytest.fail(f"`ofa serve` did not answer /health within {SERVER_START_S} s:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="module")
def browser_paths():
    chromium = _executable("chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser")
    driver = _executable("chromedriver", "/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")
    if chromium is None or driver is None:
        pytest.skip(NO_CHROMIUM)
    return chromium, driver


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`python -m ofa_core serve` on a tiny model; yields its base URL."""
    directory = tmp_path_factory.mktemp("page-server")
    model = tiny_checkpoint(directory / "model")
    port = _free_port()
    log = directory / "server.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "ofa_core", "serve", "--model", str(model), "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def driver(browser_paths, tmp_path_factory):
    chromium, chromedriver = browser_paths
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console, read by the tests
    os.environ.setdefault("SE_AVOID_STATS", "true")  # selenium-manager: no usage statistics
    service = Service(executable_path=chromedriver, log_output=str(tmp_path_factory.mktemp("chromedriver") / "log"))
    try:
        browser = webdriver.Chrome(options=options, service=service)
    except Exception as error:  # a broken install: say why instead of an opaque traceback later
        pytest.skip(f"{NO_CHROMIUM} (starting it failed: {str(error).splitlines()[0]})")
    browser.set_page_load_timeout(60)
    yield browser
    browser.quit()


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("page-image") / "image.png"
    fake_image(3, (48, 32)).save(path)
    return path


def _open(driver, server: str):
    try:
        with urllib.request.urlopen(f"{server}/", timeout=10) as response:
            assert "text/html" in response.headers.get("content-type", "")
    except urllib.error.HTTPError as error:
        pytest.fail(f"GET / answered {error.code}: `ofa serve` does not serve ofa_core/serving/page/index.html")
    driver.get(f"{server}/")
    wait = WebDriverWait(driver, 30)
    wait.until(lambda d: d.find_element(By.ID, "task").is_enabled())
    return wait


def _choose(driver, task: str, image: Path) -> None:
    Select(driver.find_element(By.ID, "task")).select_by_value(task)
    driver.find_element(By.ID, "image").send_keys(str(image))
    WebDriverWait(driver, 10).until(
        lambda d: d.execute_script(
            "const img = document.getElementById('preview'); return img.complete && img.naturalWidth > 0;"
        )
    )


def _send_and_wait(driver) -> None:
    """Press Send; wait for the request to finish (the button is enabled again) with no error shown."""
    driver.execute_script("document.getElementById('latency').textContent = '';")
    driver.find_element(By.ID, "send").click()
    WebDriverWait(driver, PREDICT_S).until(
        lambda d: d.find_element(By.ID, "latency").text or d.find_element(By.ID, "error").is_displayed()
    )


def _error(driver) -> str:
    element = driver.find_element(By.ID, "error")
    return element.text if element.is_displayed() else ""


def _console_errors(driver) -> list[dict]:
    return [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]


def test_page_has_an_icon_no_console_error_and_the_models_language(driver, server):
    driver.get_log("browser")  # drop what earlier pages logged
    _open(driver, server)
    icon = driver.execute_script("return document.querySelector('link[rel~=icon]').href;")
    with urllib.request.urlopen(icon, timeout=10) as response:
        assert response.status == 200 and "image/" in response.headers.get("content-type", "")
    with urllib.request.urlopen(f"{server}/v1/tasks", timeout=10) as response:
        language = json.load(response)["language"]
    assert language == "zh"  # the tiny model's tokenizer is Chinese
    Select(driver.find_element(By.ID, "task")).select_by_value("caption")
    assert Select(driver.find_element(By.ID, "lang")).first_selected_option.get_attribute("value") == language
    time.sleep(0.5)  # a favicon request would be logged after the load
    assert _console_errors(driver) == []


def test_page_captions_ranks_labels_and_draws_a_box(driver, server, image, tmp_path):
    _open(driver, server)
    assert driver.title == "OFA inference"
    names = [option.get_attribute("value") for option in Select(driver.find_element(By.ID, "task")).options]
    assert {"caption", "vqa", "classification"} <= set(names), names
    # Every form control has a label (or an accessible name).
    unlabeled = driver.execute_script("""
        return Array.from(document.querySelectorAll('input, select, textarea, button'))
          .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.textContent.trim())
          .map(el => el.id || el.outerHTML);""")
    assert unlabeled == []

    # Caption: the prediction text and the latency appear.
    _choose(driver, "caption", image)
    assert not driver.find_element(By.ID, "closed-set-field").is_displayed()
    _send_and_wait(driver)
    assert _error(driver) == ""
    prediction = driver.find_element(By.ID, "prediction")
    assert prediction.is_displayed() and prediction.text.strip(), "no caption shown"
    assert "ms" in driver.find_element(By.ID, "latency").text

    # VQA: the task's `fields` give a question box.
    Select(driver.find_element(By.ID, "task")).select_by_value("vqa")
    question = driver.find_element(By.ID, "field-question")
    assert question.is_displayed()
    assert driver.find_element(By.ID, "closed-set-field").is_displayed()
    assert "Answers" in driver.find_element(By.ID, "closed-set-label").text

    # Classification: labels typed one per line, ranked with softmax bars and raw log-probs.
    Select(driver.find_element(By.ID, "task")).select_by_value("classification")
    assert "Labels" in driver.find_element(By.ID, "closed-set-label").text
    labels = driver.find_element(By.ID, "closed-set")
    labels.clear()
    labels.send_keys("cat\ndog\nred car")
    if driver.find_element(By.ID, "top-k-field").is_displayed():
        top_k = driver.find_element(By.ID, "top-k")
        top_k.clear()
        top_k.send_keys("3")
    _send_and_wait(driver)
    assert _error(driver) == ""
    assert driver.find_element(By.ID, "prediction").text in {"cat", "dog", "red car"}
    rows = driver.find_elements(By.CSS_SELECTOR, "#ranking li")
    assert len(rows) >= 1
    widths = driver.execute_script(
        "return Array.from(document.querySelectorAll('#ranking .fill')).map(el => parseFloat(el.style.width));"
    )
    if len(rows) == 3:  # the server honoured top_k: the bars are a softmax over the three labels
        assert sum(widths) == pytest.approx(100, abs=0.5)
    assert "log-prob" in rows[0].text

    driver.save_screenshot(str(tmp_path / "page-classification.png"))

    # A server error (classification without labels) is shown as a visible message.
    driver.find_element(By.ID, "closed-set").clear()
    _send_and_wait(driver)
    assert _error(driver), "no error message shown for classification without labels"

    # A box: a stubbed answer rendered by the page's render function, drawn over the preview.
    Select(driver.find_element(By.ID, "task")).select_by_value("caption")
    stub = {
        "id": "stub",
        "task": "grounding",
        "prediction": [12.0, 8.0, 36.0, 24.0],
        "box": [12, 8, 36, 24],
        "latency_ms": 5.0,
    }  # as the API answers grounding: the box as numbers, in pixels of the image sent
    driver.execute_script("window.OFAPage.render(arguments[0]);", stub)
    assert driver.find_element(By.ID, "box-block").is_displayed()
    assert driver.find_element(By.ID, "prediction").text == "[12,8,36,24]"
    assert _error(driver) == ""
    pixels = driver.execute_script("""
        const img = document.getElementById('preview'), canvas = document.getElementById('overlay');
        const context = canvas.getContext('2d');
        const sx = canvas.width / img.naturalWidth, sy = canvas.height / img.naturalHeight;
        const alpha = (x, y) => context.getImageData(Math.floor(x * sx), Math.floor(y * sy), 1, 1).data[3];
        return {inside: alpha(24, 16), edge: alpha(12, 16), outside: alpha(4, 4), size: [canvas.width, canvas.height],
                shown: [img.clientWidth, img.clientHeight], canvasCss: [canvas.clientWidth, canvas.clientHeight]};""")
    assert pixels["inside"] > 0 and pixels["edge"] > 0, pixels
    assert pixels["outside"] == 0, pixels
    assert pixels["canvasCss"] == pixels["shown"], pixels  # the overlay covers the preview exactly

    screenshot = tmp_path / "page.png"
    assert driver.save_screenshot(str(screenshot))
    artifacts = os.environ.get("OFA_TEST_ARTIFACTS")
    if artifacts:
        target = Path(artifacts)
        if target.is_dir() or not target.suffix:
            target.mkdir(parents=True, exist_ok=True)
            target = target / "page.png"
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(screenshot, target)
    print(f"screenshot: {screenshot}")


def test_page_is_served_with_its_assets(server):
    """`/` is the page and its scripts and styles come from /static/, with nothing from the network."""
    with urllib.request.urlopen(f"{server}/", timeout=10) as response:
        html = response.read().decode()
    assert "static/app.js" in html and "static/style.css" in html
    for name in ("app.js", "style.css"):
        with urllib.request.urlopen(f"{server}/static/{name}", timeout=10) as response:
            assert response.status == 200
            body = response.read().decode()
        assert "http://" not in body and "https://" not in body, name
    assert "http://" not in html and "https://" not in html
    with urllib.request.urlopen(f"{server}/v1/tasks", timeout=10) as response:
        tasks = json.load(response)["tasks"]
    assert all({"name", "fields", "options", "closed_set"} <= set(task) for task in tasks), tasks
