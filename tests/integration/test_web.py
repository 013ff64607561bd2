"""The web page in a real headless Chromium against a running stack: open, paint, submit,
compare; and not one request outside the page's own origin."""

import base64
import io
import shutil
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from pconv.images import grow_hole
from tests.helpers import eventually

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "web"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")


def poll(page, expression: str, timeout: float = 30) -> None:
    """Wait for a condition without wait_for_function, whose string predicates the page's
    Content-Security-Policy (no eval) refuses."""
    eventually(lambda: page.evaluate(expression), timeout, what=expression)


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def photo_png(tmp_path):
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:300, 0:420]
    arr = np.stack([x * 255 // 420, y * 255 // 300, (x + y) % 256], -1) + rng.integers(0, 12, (300, 420, 3))
    path = tmp_path / "street.png"
    Image.fromarray(arr.clip(0, 255).astype(np.uint8)).save(path)
    return path


def test_paint_submit_compare(stack, browser, photo_png):
    if stack.kind != "local":
        pytest.skip("one storage driver is enough for the page")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1100, "height": 760})
    seen = []
    page.on("request", lambda r: seen.append(r.url))
    page.goto(stack.api_url + "/")
    page.screenshot(path=str(ARTIFACTS / "1-empty.png"))
    page.set_input_files("#file", str(photo_png))
    page.wait_for_selector("#status:has-text('420×300')")
    box = page.locator("#view").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx - 80, cy - 20)
    page.mouse.down()
    for i in range(1, 21):
        page.mouse.move(cx - 80 + i * 8, cy - 20 + i * 2)
    page.mouse.up()
    page.screenshot(path=str(ARTIFACTS / "2-painted.png"))
    page.select_option("#engine", "telea")
    page.keyboard.press("Enter")
    page.wait_for_selector("#compare:not([hidden])", timeout=60_000)
    poll(page, "document.getElementById('after').complete && document.getElementById('after').naturalWidth > 0")
    page.screenshot(path=str(ARTIFACTS / "3-result.png"))
    page.fill("#slider", "25")
    page.screenshot(path=str(ROOT / "docs" / "images" / "web.png"))

    job_id = page.evaluate("document.getElementById('stage').dataset.jobId")
    shown = page.evaluate("(() => { const a = document.getElementById('after'); "
                          "return [a.naturalWidth, a.naturalHeight]; })()")
    assert shown == [420, 300]
    mask_url = page.evaluate("""(() => {
        const c = document.createElement('canvas'), m = document.getElementById('mask');
        c.width = m.width; c.height = m.height; const x = c.getContext('2d');
        x.fillStyle = '#000'; x.fillRect(0, 0, c.width, c.height); x.drawImage(m, 0, 0);
        return c.toDataURL('image/png'); })()""")
    hole = np.asarray(Image.open(io.BytesIO(base64.b64decode(mask_url.split(",")[1]))).convert("L")) >= 128
    assert hole.shape == (300, 420) and 0.005 < hole.mean() < 0.5  # drawn at the photo's full resolution
    result = np.asarray(Image.open(io.BytesIO(requests.get(f"{stack.api_url}/v1/jobs/{job_id}/result",
                                                           timeout=30).content)))
    original = np.asarray(Image.open(photo_png))
    assert result.shape == original.shape
    changed = (result != original).any(axis=2)
    job = requests.get(f"{stack.api_url}/v1/jobs/{job_id}", timeout=30).json()
    assert job["grow"] == 4  # the page's default edge around the strokes
    grown = grow_hole(hole, job["grow"])
    assert not (changed & ~grown).any()  # different inside the stroke and its edge only
    assert (changed & hole).any() and (changed & grown & ~hole).any()
    assert "Done in" in page.locator("#status").text_content()
    download = page.get_attribute("#download", "download")
    assert download == "street-clean.png"

    # a second round on the result
    page.click("#again")
    page.wait_for_selector("#compare", state="hidden")
    assert page.evaluate("document.getElementById('mask').width") == 420
    page.close()
    origin = stack.api_url
    outside = [u for u in seen if not (u.startswith(origin) or u.startswith("blob:") or u.startswith("data:"))]
    assert not outside, outside


def test_keyboard_and_errors(stack, browser, photo_png):
    if stack.kind != "local":
        pytest.skip("one storage driver is enough for the page")
    page = browser.new_page(viewport={"width": 900, "height": 700})
    page.goto(stack.api_url + "/")
    page.set_input_files("#file", str(photo_png))
    page.wait_for_selector("#status:has-text('420×300')")
    page.keyboard.press("r")
    assert page.get_attribute("#tool-rect", "aria-pressed") == "true"
    page.keyboard.press("Enter")  # nothing painted yet
    assert "mask is empty" in page.locator("#status").text_content()
    box = page.locator("#view").bounding_box()
    page.mouse.move(box["x"] + 300, box["y"] + 300)
    page.mouse.down()
    page.mouse.move(box["x"] + 380, box["y"] + 360)
    page.mouse.up()
    assert page.is_enabled("#undo")
    page.keyboard.press("Control+z")
    assert page.is_disabled("#undo") and page.is_enabled("#redo")
    page.close()
