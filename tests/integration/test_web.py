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
    page.screenshot(path=str(ARTIFACTS / "3-result.png"))
    for _ in range(5):
        page.keyboard.press("ArrowLeft")  # the divider to a quarter of the photo
    page.evaluate("new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")
    page.screenshot(path=str(ROOT / "docs" / "images" / "web.jpg"), type="jpeg", quality=85)

    job_id = page.evaluate("document.getElementById('stage').dataset.jobId")
    assert page.evaluate("document.getElementById('stage').dataset.result") == "420x300"
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


RED_PIXELS = """(() => { const v = document.getElementById('marks');  /* the strokes' layer, above the photo */
  const d = v.getContext('2d').getImageData(0, 0, v.width, v.height).data; let n = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && d[i] > 160 && d[i + 1] < 110 && d[i + 2] < 110) n++;
  return n; })()"""

BITMAP_MATCHES_BOX = """(() => { const v = document.getElementById('view'), r = v.getBoundingClientRect();
  const dpr = window.devicePixelRatio || 1;
  return v.width === Math.round(r.width * dpr) && v.height === Math.round(r.height * dpr); })()"""

PHOTO_EXTENT = """(() => { const v = document.getElementById('view');
  const d = v.getContext('2d').getImageData(0, 0, v.width, v.height).data;
  let x0 = v.width, y0 = v.height, x1 = -1, y1 = -1;
  for (let y = 0; y < v.height; y += 2) for (let x = 0; x < v.width; x += 2) {
    if (d[(y * v.width + x) * 4 + 3] === 0) continue;
    x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y);
  }
  return [x0, y0, x1, y1, v.width, v.height]; })()"""


def opened(browser, url: str, photo, width: int = 1000, height: int = 700):
    """A new page at ``url`` with ``photo`` (420×300) open in it."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(url + "/")
    page.set_input_files("#file", str(photo))
    page.wait_for_selector("#status:has-text('420×300')")
    return page


def paint(page, dx=0, dy=0):
    box = page.locator("#view").bounding_box()
    cx, cy = box["x"] + box["width"] / 2 + dx, box["y"] + box["height"] / 2 + dy
    page.mouse.move(cx - 40, cy)
    page.mouse.down()
    for i in range(1, 11):
        page.mouse.move(cx - 40 + i * 8, cy + i)
    page.mouse.up()


def test_a_new_photo_starts_without_the_last_ones_strokes(stack, browser, photo_png, tmp_path):
    if stack.kind != "local":
        pytest.skip("one storage driver is enough for the page")
    grey = tmp_path / "grey.png"
    Image.new("RGB", (420, 300), (128, 128, 128)).save(grey)
    page = browser.new_page(viewport={"width": 1000, "height": 700})
    page.goto(stack.api_url + "/")
    page.set_input_files("#file", str(grey))
    page.wait_for_selector("#status:has-text('420×300')")
    paint(page)
    poll(page, RED_PIXELS + " > 100")  # the stroke shows
    page.set_input_files("#file", str(photo_png.rename(tmp_path / "second.png")))
    page.wait_for_selector("#status:has-text('Paint over')")
    page.set_input_files("#file", str(grey))  # and back to a grey photo, where any red is a leftover
    page.wait_for_selector("#status:has-text('420×300')")
    page.evaluate("new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")
    assert page.evaluate(RED_PIXELS) == 0
    assert page.is_disabled("#undo")
    page.keyboard.press("Enter")
    assert "mask is empty" in page.locator("#status").text_content()
    page.close()


def test_the_canvas_follows_its_box_and_refits_the_photo(stack, browser, photo_png):
    if stack.kind != "local":
        pytest.skip("one storage driver is enough for the page")
    page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, has_touch=True)
    page.goto(stack.api_url + "/")
    page.set_input_files("#file", str(photo_png))
    page.wait_for_selector("#status:has-text('420×300')")
    assert page.evaluate(BITMAP_MATCHES_BOX)
    before = page.evaluate("document.getElementById('view').height")
    # the layout changes with no window resize (the status line wrapping to more lines): the stage shrinks
    page.evaluate("document.querySelector('footer').style.minHeight = '90px'")
    poll(page, BITMAP_MATCHES_BOX)
    assert page.evaluate("document.getElementById('view').height") < before
    page.set_viewport_size({"width": 844, "height": 390})  # the phone turned
    poll(page, BITMAP_MATCHES_BOX)
    x0, y0, x1, y1, width, height = page.evaluate(PHOTO_EXTENT)
    assert 0 <= x0 and x1 < width and 0 <= y0 and y1 < height  # the whole photo in view ...
    assert (x1 - x0) > 0.9 * width or (y1 - y0) > 0.9 * height  # ... fitted to the new box
    page.close()


def test_keys_reach_the_tools_and_a_focused_button_keeps_enter(stack, browser, photo_png):
    if stack.kind != "local":
        pytest.skip("one storage driver is enough for the page")
    page = opened(browser, stack.api_url, photo_png)
    page.click("#size")  # after the slider ...
    page.keyboard.press("e")  # ... the shortcuts still work
    assert page.get_attribute("#tool-erase", "aria-pressed") == "true"
    page.keyboard.press("b")
    paint(page)
    page.focus("#undo")
    page.keyboard.press("Enter")  # presses Undo, and nothing else
    assert page.is_disabled("#undo")
    assert page.evaluate("document.getElementById('stage').dataset.jobId") is None
    assert "Uploading" not in page.locator("#status").text_content()
    page.close()


def test_a_lost_server_is_waited_for_and_the_job_shown_when_it_is_back(lone_env, log_dir, browser, photo_png):
    from tests.helpers import frozen_workers
    from tests.servers import ServiceStack

    lone = ServiceStack(log_dir, lone_env(9))
    try:
        api = lone.start_api()
        lone.start_worker()
        port = int(lone.api_url.rsplit(":", 1)[1])
        page = browser.new_page(viewport={"width": 1000, "height": 700})
        page.goto(lone.api_url + "/")
        page.set_input_files("#file", str(photo_png))
        page.wait_for_selector("#status:has-text('420×300')")
        paint(page)
        page.select_option("#engine", "telea")
        with frozen_workers(lone):
            page.click("#submit")
            page.wait_for_selector("#status:has-text('Queued')", timeout=30_000)
            api.stop()
            lone.servers.remove(api)
            page.wait_for_selector("#status:has-text('Server unreachable, retrying')", timeout=30_000)
            assert page.is_disabled("#submit")  # no second job from an impatient click
            lone.start_api(port=port)
        page.wait_for_selector("#compare:not([hidden])", timeout=90_000)
        assert "Done" in page.locator("#status").text_content()
        job_id = page.evaluate("document.getElementById('stage').dataset.jobId")
        assert len(lone.redis().keys("sneaky:job:*")) == 1 and job_id
        page.close()
    finally:
        lone.stop()


# Each pointer move timed as the person sees it: the handler, then the frame that shows it (the app's drawing in
# that frame, the overlay's pending work included, up to this callback, which the page registered after the app's)
POINTER_COST = """(async () => {
  const v = document.getElementById('view'), r = v.getBoundingClientRect();
  const at = (i) => ({ clientX: r.left + r.width * (0.3 + i * 0.004), clientY: r.top + r.height * (0.5 + i * 0.001),
                       pointerId: 1, pointerType: 'mouse', button: 0, buttons: 1, bubbles: true });
  const frame = () => new Promise((done) => requestAnimationFrame((stamp) => done(performance.now() - stamp)));
  const timed = async (type, i) => {
    const t = performance.now();
    v.dispatchEvent(new PointerEvent(type, at(i)));
    const handler = performance.now() - t;
    return handler + await frame();
  };
  await frame();
  const down = await timed('pointerdown', 0);
  const moves = [];
  for (let i = 1; i <= 60; i++) moves.push(await timed('pointermove', i));
  v.dispatchEvent(new PointerEvent('pointerup', at(60)));
  moves.sort((a, b) => a - b);
  return { down, median: moves[30], p95: moves[57], max: moves[59] };
})()"""


def test_painting_a_large_photo_costs_little_per_pointer_move(stack, browser, tmp_path):
    if stack.kind != "local":
        pytest.skip("one storage driver is enough for the page")
    big = tmp_path / "big.jpg"
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (189, 252, 3), dtype=np.uint8)).resize((4032, 3024)).save(big, quality=80)
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    page.goto(stack.api_url + "/")
    page.set_input_files("#file", str(big))
    page.wait_for_selector("#status:has-text('4032×3024')", timeout=60_000)
    cost = page.evaluate(POINTER_COST)
    print("pointer cost on a 4032×3024 photo (ms):", cost)
    assert cost["median"] < 16 and cost["p95"] < 33, cost  # was 71 and 149 ms: the whole overlay re-tinted per move
    assert cost["down"] < 16, cost  # no full-size snapshot or re-tint when a stroke starts
    assert page.is_enabled("#undo")
    page.click("#undo")  # the stroke's region comes back as it was
    poll(page, RED_PIXELS + " === 0")
    page.close()


def test_a_running_job_shows_its_time_and_can_be_canceled(stack, browser, photo_png):
    if stack.kind != "local":
        pytest.skip("one storage driver is enough for the page")
    from tests.helpers import frozen_workers

    page = opened(browser, stack.api_url, photo_png)
    paint(page)
    page.select_option("#engine", "telea")
    assert page.is_hidden("#cancel")
    with frozen_workers(stack):  # it waits in the queue for as long as the test likes
        page.click("#submit")
        page.wait_for_selector("#status:has-text('Queued… 2 s')", timeout=30_000)  # the time it has waited
        assert page.is_visible("#cancel")
        page.keyboard.press("Escape")
        page.wait_for_selector("#status:has-text('Canceled')", timeout=30_000)
    job_id = page.evaluate("document.getElementById('stage').dataset.jobId")
    assert requests.get(f"{stack.api_url}/v1/jobs/{job_id}", timeout=10).json()["status"] == "canceled"
    assert page.is_hidden("#cancel") and page.is_enabled("#submit")
    page.close()


VIEW_PIXEL = """(([fx, fy]) => { const v = document.getElementById('view'), r = v.getBoundingClientRect();
  const dpr = window.devicePixelRatio || 1;
  return [...v.getContext('2d').getImageData(Math.round(fx * dpr), Math.round(fy * dpr), 1, 1).data]; })"""


def test_compare_on_the_photo_with_a_divider_and_a_hold(stack, browser, tmp_path):
    if stack.kind != "local":
        pytest.skip("one storage driver is enough for the page")
    flat = tmp_path / "flat.png"  # one colour, with a black bar the fill removes: before and after differ there
    pixels = np.full((300, 420, 3), (40, 160, 220), np.uint8)
    pixels[120:180, :] = 0
    Image.fromarray(pixels).save(flat)
    page = browser.new_page(viewport={"width": 1000, "height": 700})
    page.goto(stack.api_url + "/")
    page.set_input_files("#file", str(flat))
    page.wait_for_selector("#status:has-text('420×300')")
    page.keyboard.press("r")
    box = page.locator("#view").bounding_box()
    page.mouse.move(box["x"] + 5, box["y"] + box["height"] / 2 - 60)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] - 5, box["y"] + box["height"] / 2 + 60)
    page.mouse.up()
    page.select_option("#engine", "telea")
    page.click("#submit")
    page.wait_for_selector("#compare:not([hidden])", timeout=60_000)
    frame = "new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))"
    page.evaluate(frame)
    mid_y = box["height"] / 2
    left, right = (page.evaluate(VIEW_PIXEL, [box["width"] * fx, mid_y]) for fx in (0.3, 0.7))
    assert max(left[:3]) < 40  # left of the divider: the photo as it was (the black bar)
    assert right[2] > 150  # right of it: the result, the bar filled with the colour around it
    assert page.is_disabled("#tool-brush") and page.is_disabled("#submit") and page.is_disabled("#clear")
    # drag the divider (at the middle) to the left edge: the result everywhere
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + mid_y)
    page.mouse.down()
    page.mouse.move(box["x"] + 2, box["y"] + mid_y, steps=5)
    page.mouse.up()
    page.evaluate(frame)
    assert page.evaluate(VIEW_PIXEL, [box["width"] * 0.3, mid_y])[2] > 150
    # hold the photo away from the divider: the original while held
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + mid_y)
    page.mouse.down()
    page.evaluate(frame)
    assert max(page.evaluate(VIEW_PIXEL, [box["width"] * 0.6, mid_y])[:3]) < 40
    page.mouse.up()
    page.evaluate(frame)
    assert page.evaluate(VIEW_PIXEL, [box["width"] * 0.6, mid_y])[2] > 150
    page.keyboard.press("Escape")  # back to the mask: tools again, and the status says so
    page.wait_for_selector("#compare", state="hidden")
    assert page.is_enabled("#tool-brush") and "Back to the mask" in page.locator("#status").text_content()
    page.close()


UI_PIXELS_NEAR_CENTRE = """(() => { const u = document.getElementById('ui');
  const d = u.getContext('2d').getImageData(0, 0, u.width, u.height).data; let n = 0;
  for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
  return n; })()"""


def test_on_a_phone_the_photo_gets_the_screen_and_the_tools_fit_a_finger(stack, browser, photo_png):
    if stack.kind != "local":
        pytest.skip("one storage driver is enough for the page")
    page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, has_touch=True,
                            is_mobile=True)
    page.goto(stack.api_url + "/")
    page.set_input_files("#file", str(photo_png))
    page.wait_for_selector("#status:has-text('420×300')")
    stage = page.locator("#stage").bounding_box()
    assert stage["height"] >= 0.7 * 844, stage  # the photo gets most of the screen
    tools = page.locator(".tools").bounding_box()
    assert tools["y"] > stage["y"] + stage["height"] - 1  # one bar, below the photo
    small = page.evaluate("""[...document.querySelectorAll('button, select, summary, label.file')]
        .filter((e) => e.offsetParent !== null)
        .map((e) => [e.id || e.textContent.trim(), e.getBoundingClientRect().height, e.getBoundingClientRect().width])
        .filter(([, h, w]) => h < 44 || w < 44)""")
    assert small == [], small  # touch targets of 44 px and more
    titles = page.evaluate("[...document.querySelectorAll('.tools button')].map((b) => b.title)")
    assert all("(" in t for t in titles if t != "Clear the mask"), titles  # each names its shortcut
    assert page.evaluate(UI_PIXELS_NEAR_CENTRE) == 0
    page.evaluate("(() => { const s = document.getElementById('size'); s.value = 120; "
                  "s.dispatchEvent(new Event('input')); })()")
    poll(page, UI_PIXELS_NEAR_CENTRE + " > 0")  # the new size, shown where a finger can see it
    page.screenshot(path=str(ROOT / "docs" / "images" / "web-phone.jpg"), type="jpeg", quality=85)
    poll(page, UI_PIXELS_NEAR_CENTRE + " === 0", timeout=5)  # and gone again
    page.close()
