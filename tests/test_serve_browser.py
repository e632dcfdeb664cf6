"""The page of `adf serve` in a real headless browser (Chromium via Selenium):
start the service on a free local port, upload a WAV with the page's file
input, read the verdict, prob_real and timeline from the page and compare them
with the API's answer for the same file; record from Chromium's fake microphone
and check the service read the page's WAV. Skips when Chromium or its driver is
not installed (tools/run_tests.sh installs them as root on Debian)."""
import os
import queue
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from tests.test_detect import noise

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (requirements-dev.txt)")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER),
                                reason="no chromium/chromedriver (apt-get install chromium chromium-driver)")


@pytest.fixture
def server(ckpt):
    """`adf serve --port 0` in a subprocess; yields its base URL."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "adf", "serve", "--ckpt", ckpt, "--port", "0",
                             "--precision", "fp32", "--log-level", "warning"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    try:
        first = lines.get(timeout=120)
        assert "listening on http://127.0.0.1:" in first, first
        yield first.split("listening on ")[1].split()[0]
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.fixture
def browser():
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    # a fake microphone (a beeping tone) that needs no permission prompt, for the Record button
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1000,900", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_page_uploads_a_file_and_shows_the_api_result(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    clip = noise(tmp_path / "clip.wav", 3.2, 16000, seed=7)
    browser.get(server + "/")
    WebDriverWait(browser, 60).until(lambda d: "parameters" in d.find_element(By.ID, "model").text)
    window = browser.find_element(By.ID, "window").get_attribute("value")
    hop = browser.find_element(By.ID, "hop").get_attribute("value")
    browser.find_element(By.ID, "file").send_keys(clip)
    WebDriverWait(browser, 120).until(
        lambda d: d.find_element(By.ID, "prob-real").get_attribute("data-value")
        or "error" in d.find_element(By.ID, "status").get_attribute("class"))
    assert browser.find_element(By.ID, "status").text == "done: clip.wav"
    shown = float(browser.find_element(By.ID, "prob-real").get_attribute("data-value"))
    verdict = browser.find_element(By.ID, "verdict")
    dots = browser.find_elements(By.CSS_SELECTOR, "#timeline circle.window")
    screenshot = os.environ.get("ADF_SCREENSHOT")
    browser.save_screenshot(screenshot or str(tmp_path / "page.png"))

    with open(clip, "rb") as fh:
        api = httpx.post(server + "/v1/detect", params={"windows": 1, "window": window, "hop": hop},
                         files={"file": ("clip.wav", fh)}, timeout=120).json()
    assert shown == api["prob_real"]  # JavaScript prints a double as Python's repr does: exact
    assert verdict.get_attribute("data-decision") == api["decision"]
    assert verdict.text == api["decision"].upper()
    assert len(dots) == len(api["windows"]) == 3  # 3.2 s in 2 s windows every 1 s: 0-2, 1-3, 2-3.2
    tips = [d.find_element(By.TAG_NAME, "title").get_attribute("textContent") for d in dots]
    assert [t.split("prob_real ")[1] for t in tips] == [f"{w['prob_real']:.4f}" for w in api["windows"]]


def test_page_records_the_microphone_as_wav(server, browser):
    """Record (WebAudio -> 16-bit WAV in the page) -> the service reads the upload."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server + "/")
    button = browser.find_element(By.ID, "record")
    button.click()
    WebDriverWait(browser, 60).until(lambda d: "recording" in d.find_element(By.ID, "status").text
                                     or "cannot record" in d.find_element(By.ID, "status").text)
    assert "recording" in browser.find_element(By.ID, "status").text, browser.find_element(By.ID, "status").text
    # record until the page holds at least a second of samples, then stop
    WebDriverWait(browser, 60).until(lambda d: d.execute_script(
        "return recorder && recorder.chunks.reduce((a, c) => a + c.length, 0) >= recorder.context.sampleRate"))
    button.click()
    WebDriverWait(browser, 120).until(
        lambda d: d.find_element(By.ID, "prob-real").get_attribute("data-value")
        or "error" in d.find_element(By.ID, "status").get_attribute("class"))
    assert browser.find_element(By.ID, "status").text == "done: recording.wav"
    facts = browser.find_element(By.ID, "audio-facts").text  # e.g. "1.02 s, 48000 Hz, 1 ch, WAV/PCM_16"
    assert float(facts.split(" s,")[0]) >= 1.0 and "1 ch, WAV/PCM_16" in facts
    assert 0 <= float(browser.find_element(By.ID, "prob-real").get_attribute("data-value")) <= 1
