"""The demo page in a real browser: headless Chromium driven by Selenium.

Upload an image and ask for a caption, ask for an image and see it rendered, ask for speech
and get a player, then send a corrupt file, see the message in the page, and ask again. Screenshots go to ``test-artifacts/`` (ignored by
git) for a person to look at.
"""

import os
import shutil
import socket
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

import omni  # noqa: E402
from app.backend import Settings  # noqa: E402
from app.demo import build_demo, launch  # noqa: E402
from app.examples import SCENE  # noqa: E402
from training.evaluate import parse_caption  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
# A patience bound for a page on a shared CPU, not a speed requirement.
PATIENCE_S = 300
THUMBNAIL = "[aria-label='File thumbnail']"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def url():
    # A 2-step image decoder keeps the page quick on a CPU.
    demo = build_demo(omni.load(), "default model", Settings(max_new_tokens=96, steps=2))
    yield launch(demo, port=free_port(), block=False)
    demo.close()


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        "--window-size=1400,1100",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    ARTIFACTS.mkdir(exist_ok=True)
    yield driver
    driver.quit()


def wait_for(driver, condition):
    return WebDriverWait(driver, PATIENCE_S, poll_frequency=0.5).until(lambda d: condition(d))


def send(driver, text, files=()):
    """Attach files to the chat box (waiting for each upload), type the text, press Enter."""
    box = driver.find_element(By.ID, "chat-box")
    for count, path in enumerate(files, start=1):
        picker = box.find_element(By.CSS_SELECTOR, "input[type=file]")
        # chromedriver adds to what a `multiple` input already holds: start it empty.
        driver.execute_script("arguments[0].value = ''", picker)
        picker.send_keys(str(path))
        wait_for(driver, lambda d, n=count: len(box.find_elements(By.CSS_SELECTOR, THUMBNAIL)) == n)
    area = box.find_element(By.TAG_NAME, "textarea")
    area.send_keys(text)
    area.send_keys(Keys.ENTER)


def answers(driver):
    return driver.find_elements(By.CSS_SELECTOR, "#chat .bot-row")


def downloaded_names(driver):
    links = driver.find_elements(By.CSS_SELECTOR, "#downloads a[data-testid='download-link']")
    return [link.get_attribute("download") for link in links]


def finished(driver, count, download):
    """The ``count``-th answer is complete: ``download`` is offered for it."""
    return len(answers(driver)) >= count and download in downloaded_names(driver)


def choose_output(driver, modality):
    for label in driver.find_elements(By.CSS_SELECTOR, "#mode label"):
        if label.text.strip() == modality:
            label.click()
            return
    raise AssertionError(f"no {modality!r} choice in the page")


def test_caption_drawing_speech_bad_file_and_recovery(url, browser):
    browser.get(url)
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#chat-box textarea"))

    send(browser, "Describe the image.", [SCENE])
    wait_for(browser, lambda d: finished(d, 1, "answer.txt"))
    user_turn = browser.find_element(By.CSS_SELECTOR, "#chat .user-row")
    assert user_turn.find_elements(By.TAG_NAME, "img"), "the uploaded image is not in the chat"
    assert "Describe the image." in user_turn.text
    caption = answers(browser)[0].text
    # The shipped micro model often gets attributes wrong (its card), so the page is held to a
    # caption in the world's language: the caption parser reads objects out of it.
    assert parse_caption(caption), f"the caption {caption!r} names no object"
    browser.save_screenshot(str(ARTIFACTS / "demo-1-caption.png"))

    choose_output(browser, "image")
    send(browser, "Draw this: a big red circle on the left")
    wait_for(browser, lambda d: finished(d, 2, "answer-0.png"))
    picture = wait_for(
        browser, lambda d: answers(d)[-1].find_elements(By.CSS_SELECTOR, "img[src]")
    )[0]
    wait_for(browser, lambda d: d.execute_script("return arguments[0].complete", picture))
    size = browser.execute_script(
        "return [arguments[0].naturalWidth, arguments[0].naturalHeight]", picture
    )
    assert max(size) == 64 and min(size) >= 16, f"the drawn image is {size}"
    browser.save_screenshot(str(ARTIFACTS / "demo-2-drawing.png"))

    choose_output(browser, "audio")
    send(browser, "Say this aloud: the blue square is on the right")
    wait_for(browser, lambda d: finished(d, 3, "answer-0.wav"))
    assert answers(browser)[-1].find_elements(By.CSS_SELECTOR, "[data-testid='waveform-Audio']")
    browser.save_screenshot(str(ARTIFACTS / "demo-3-speech.png"))

    corrupt = ARTIFACTS / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a picture")
    send(browser, "what is this?", [corrupt])
    toast = wait_for(
        browser, lambda d: d.find_elements(By.CSS_SELECTOR, "[data-testid='toast-body']")
    )
    assert "cannot read corrupt.png as an image" in toast[0].text
    assert len(answers(browser)) == 3, "the failed turn must not stay in the conversation"
    browser.save_screenshot(str(ARTIFACTS / "demo-4-bad-file.png"))

    # The message came back into the box: drop the bad file and ask again, in text.
    browser.find_element(By.CSS_SELECTOR, "#chat-box button[aria-label='Remove file']").click()
    choose_output(browser, "text")
    send(browser, " again")
    wait_for(browser, lambda d: finished(d, 4, "answer.txt"))
    assert (
        "what is this? again" in browser.find_elements(By.CSS_SELECTOR, "#chat .user-row")[-1].text
    )
