// Sneaky's web page: open a photo, paint what should go, watch it vanish.
// Talks to the public API only (same origin); no external requests, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
const view = $("view"), ctx = view.getContext("2d");
// Three layers, at the view's resolution: the photo; the strokes (`marks`, drawn opaque, shown at 55 % opacity);
// the brush outline and the rectangle being drawn (`ui`). A pointer move draws its stroke segment on the full-size
// mask and on `marks`, and the outline on `ui`: nothing is copied between canvases, since a canvas drawn from
// after a change is copied whole (a 12-megapixel mask: tens of milliseconds a move). The photo and the strokes
// are drawn whole only when the view moves, zooms or the mask changes otherwise (undo, clear, a new photo).
const marks = $("marks"), kctx = marks.getContext("2d");
const ui = $("ui"), uctx = ui.getContext("2d");
const RED = "rgb(255, 60, 40)";
const mask = $("mask"), mctx = mask.getContext("2d", { willReadFrequently: true });
const stage = $("stage"), statusEl = $("status");

const state = {
  file: null, image: null, name: "photo", type: "image/png",
  tool: "brush", size: 40, scale: 1, ox: 0, oy: 0, fitted: true, busy: false,
  drawing: null, undo: [], redo: [], pointer: null, spaceHeld: false, pointers: new Map(), pinch: null,
  resultBlob: null, resultUrl: null,
  compare: null,  // comparing: { after: the result's bitmap, split: the divider's place (0–1 of the width), hold }
};
const UNDO_BYTES = 256 * 1024 * 1024;  // undo keeps the pixels each edit changed, at most this many bytes
// the mask as it was before the edit in progress: an edit's undo entry is read from it, for the region the
// edit changed only (a full-size read of a 12-megapixel mask at every stroke froze the page for 100 ms)
const before = document.createElement("canvas"), bctx = before.getContext("2d", { willReadFrequently: true });

// ---------- status and API ----------
function say(text, isError = false) {
  statusEl.textContent = text;
  statusEl.classList.toggle("error", isError);
}

function authHeaders() {
  const key = sessionStorage.getItem("sneaky-api-key");
  return key ? { Authorization: `Bearer ${key}` } : {};
}

class Unreachable extends Error {}
async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, { ...options, headers: { ...authHeaders(), ...(options.headers || {}) } });
  } catch (_) {
    throw new Unreachable("the server cannot be reached");
  }
  if (response.status === 502 || response.status === 503 || response.status === 504) {
    throw new Unreachable(`the server answered ${response.status}`);
  }
  if (!response.ok) {
    let detail = `${response.status}`;
    try { const body = await response.json(); detail = `${body.detail || body.title} (${body.code})`; } catch (_) {}
    throw new Error(detail);
  }
  return response;
}

// ---------- loading a photo ----------
async function openPhoto(file) {
  if (!file || !file.type.startsWith("image/")) { say("That is not an image.", true); return; }
  let image;
  try {
    image = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch (_) {
    say("This image cannot be read by the browser.", true);
    return;
  }
  state.file = file;
  state.image = image;
  state.name = (file.name || "photo").replace(/\.[^.]+$/, "");
  state.type = file.type;
  mask.width = before.width = image.width;   // the mask is drawn at the photo's full resolution
  mask.height = before.height = image.height;
  mctx.clearRect(0, 0, mask.width, mask.height);
  bctx.clearRect(0, 0, before.width, before.height);
  // the strokes' layer is drawn again from the new, empty mask: none of the last photo's stay on screen
  state.undo = []; state.redo = []; state.drawing = null;
  $("drop-hint").hidden = true;
  $("compare").hidden = true;
  state.compare = null;
  fit();
  updateButtons();
  say(`${image.width}×${image.height} photo. Paint over what should go, then Remove.`);
}

$("file").addEventListener("change", (e) => openPhoto(e.target.files[0]));
stage.addEventListener("dragover", (e) => { e.preventDefault(); stage.classList.add("dragging"); });
stage.addEventListener("dragleave", () => stage.classList.remove("dragging"));
stage.addEventListener("drop", (e) => {
  e.preventDefault(); stage.classList.remove("dragging");
  if (e.dataTransfer.files.length) openPhoto(e.dataTransfer.files[0]);
});
window.addEventListener("paste", (e) => {
  const item = [...(e.clipboardData || {}).items || []].find((i) => i.type.startsWith("image/"));
  if (item) openPhoto(item.getAsFile());
});

// ---------- view: fit, zoom, pan ----------
function resize() {
  const r = stage.getBoundingClientRect(), dpr = window.devicePixelRatio || 1;
  view.width = marks.width = ui.width = Math.round(r.width * dpr);
  view.height = marks.height = ui.height = Math.round(r.height * dpr);
  draw();
}
function fit() {
  state.fitted = true;
  if (!state.image) return;
  const s = Math.min(view.width / state.image.width, view.height / state.image.height) * 0.96;
  state.scale = s;
  state.ox = (view.width - state.image.width * s) / 2;
  state.oy = (view.height - state.image.height * s) / 2;
  draw();
}
function zoomAt(factor, cx = view.width / 2, cy = view.height / 2) {
  state.fitted = false;
  const s = Math.min(32, Math.max(0.02, state.scale * factor));
  state.ox = cx - (cx - state.ox) * (s / state.scale);
  state.oy = cy - (cy - state.oy) * (s / state.scale);
  state.scale = s;
  draw();
}
function toImage(clientX, clientY) {
  const r = view.getBoundingClientRect(), dpr = window.devicePixelRatio || 1;
  const x = (clientX - r.left) * dpr, y = (clientY - r.top) * dpr;
  return { x: (x - state.ox) / state.scale, y: (y - state.oy) / state.scale, vx: x, vy: y };
}

// ---------- drawing ----------
function region(x0, y0, x1, y1, pad = 0) {  // whole pixels of the mask, clamped to it
  const x = Math.max(0, Math.floor(Math.min(x0, x1) - pad)), y = Math.max(0, Math.floor(Math.min(y0, y1) - pad));
  const xe = Math.min(mask.width, Math.ceil(Math.max(x0, x1) + pad)), ye = Math.min(mask.height, Math.ceil(Math.max(y0, y1) + pad));
  return { x, y, w: Math.max(0, xe - x), h: Math.max(0, ye - y) };
}
function union(a, b) { return a ? region(Math.min(a.x, b.x), Math.min(a.y, b.y), Math.max(a.x + a.w, b.x + b.w), Math.max(a.y + a.h, b.y + b.h)) : b; }
// pointer moves come faster than frames: the outline is drawn once a frame; the photo and the strokes whole
// only when asked (draw())
let frame = 0, whole = true, lastMarks = null;
function draw() { whole = true; schedule(); }
function schedule() { if (!frame) frame = requestAnimationFrame(() => { frame = 0; render(); }); }
function render() {
  if (whole) {
    whole = false;
    for (const c of [ctx, kctx]) { c.setTransform(1, 0, 0, 1, 0, 0); c.clearRect(0, 0, view.width, view.height); }
    const c = state.compare;
    if (state.image && c) {  // the photo left of the divider, the result right of it (the photo alone on hold)
      ctx.setTransform(state.scale, 0, 0, state.scale, state.ox, state.oy);
      ctx.imageSmoothingEnabled = state.scale < 1;
      ctx.drawImage(state.image, 0, 0);
      if (!c.hold) {
        const x = c.split * state.image.width;
        ctx.drawImage(c.after, x, 0, state.image.width - x, state.image.height, x, 0, state.image.width - x,
                      state.image.height);
      }
    } else if (state.image) {
      ctx.setTransform(state.scale, 0, 0, state.scale, state.ox, state.oy);
      ctx.imageSmoothingEnabled = state.scale < 1;
      ctx.drawImage(state.image, 0, 0);
      kctx.setTransform(state.scale, 0, 0, state.scale, state.ox, state.oy);
      kctx.imageSmoothingEnabled = state.scale < 1;
      kctx.drawImage(mask, 0, 0);
      kctx.setTransform(1, 0, 0, 1, 0, 0);
      kctx.globalCompositeOperation = "source-in";
      kctx.fillStyle = RED; kctx.fillRect(0, 0, marks.width, marks.height);
      kctx.globalCompositeOperation = "source-over";
    }
  }
  // the outline and the rectangle: the last frame's cleared, this one's drawn
  if (lastMarks) uctx.clearRect(lastMarks.x, lastMarks.y, lastMarks.w, lastMarks.h);
  lastMarks = null;
  if (state.compare && state.image) {  // the divider and its handle
    uctx.clearRect(0, 0, ui.width, ui.height);
    if (state.compare.hold) return;
    const x = dividerX(), top = Math.max(0, state.oy), bottom = Math.min(ui.height, state.oy + state.image.height * state.scale);
    uctx.fillStyle = "#fff"; uctx.fillRect(x - 1, top, 2, bottom - top);
    const y = (top + bottom) / 2, dpr = window.devicePixelRatio || 1;
    uctx.beginPath(); uctx.arc(x, y, 14 * dpr, 0, Math.PI * 2);
    uctx.fillStyle = "#fff"; uctx.fill(); uctx.lineWidth = 2; uctx.strokeStyle = "#20232b"; uctx.stroke();
    uctx.fillStyle = "#20232b"; uctx.font = `${12 * dpr}px system-ui`; uctx.textAlign = "center"; uctx.textBaseline = "middle";
    uctx.fillText("◀ ▶", x, y);
    return;
  }
  const d = state.drawing;
  if (d && d.tool === "rect") {
    const x = Math.min(d.x0, d.x1) * state.scale + state.ox, y = Math.min(d.y0, d.y1) * state.scale + state.oy;
    const w = Math.abs(d.x1 - d.x0) * state.scale, h = Math.abs(d.y1 - d.y0) * state.scale;
    uctx.fillStyle = d.erase ? "rgba(0,0,0,0.35)" : "rgba(255,60,40,0.45)";
    uctx.fillRect(x, y, w, h);
    lastMarks = { x: Math.floor(x) - 2, y: Math.floor(y) - 2, w: Math.ceil(w) + 4, h: Math.ceil(h) + 4 };
  }
  let p = state.pointer;  // the brush as a circle of its real size
  if (!p && state.preview) {
    if (performance.now() < state.preview) { p = { vx: ui.width / 2, vy: ui.height / 2 }; schedule(); }
    else state.preview = 0;
  }
  if (p && (state.tool === "brush" || state.tool === "erase") && !state.spaceHeld) {
    const radius = (state.size / 2) * state.scale;
    uctx.beginPath();
    uctx.arc(p.vx, p.vy, radius, 0, Math.PI * 2);
    uctx.lineWidth = 1.5; uctx.strokeStyle = "#fff"; uctx.stroke();
    uctx.lineWidth = 1; uctx.strokeStyle = "#000"; uctx.stroke();
    const box = { x: Math.floor(p.vx - radius) - 3, y: Math.floor(p.vy - radius) - 3, w: Math.ceil(2 * radius) + 6,
                  h: Math.ceil(2 * radius) + 6 };
    if (lastMarks) {
      const x = Math.min(lastMarks.x, box.x), y = Math.min(lastMarks.y, box.y);
      lastMarks = { x, y, w: Math.max(lastMarks.x + lastMarks.w, box.x + box.w) - x,
                    h: Math.max(lastMarks.y + lastMarks.h, box.y + box.h) - y };
    } else {
      lastMarks = box;
    }
  }
}
function dividerX() { return state.ox + state.compare.split * state.image.width * state.scale; }

function committed(r) {  // an edit of the mask ended: what it changed can be undone
  if (!r || !r.w || !r.h) return;
  state.undo.push({ ...r, data: bctx.getImageData(r.x, r.y, r.w, r.h) });
  bctx.putImageData(mctx.getImageData(r.x, r.y, r.w, r.h), r.x, r.y);  // pixels, not a copy of the whole canvas
  let bytes = state.undo.reduce((n, e) => n + e.w * e.h * 4, 0);
  while (state.undo.length > 1 && (bytes > UNDO_BYTES || state.undo.length > 100)) {
    const gone = state.undo.shift(); bytes -= gone.w * gone.h * 4;
  }
  state.redo = [];
}
function stroke(from, to, erase) {  // on the mask and on the strokes' layer alike; returns the region it painted
  for (const [c, colour, transform] of [[mctx, "#fff", [1, 0, 0, 1, 0, 0]],
                                        [kctx, RED, [state.scale, 0, 0, state.scale, state.ox, state.oy]]]) {
    c.setTransform(...transform);
    c.globalCompositeOperation = erase ? "destination-out" : "source-over";
    c.strokeStyle = colour;
    c.lineWidth = state.size; c.lineCap = "round"; c.lineJoin = "round";
    c.beginPath(); c.moveTo(from.x, from.y); c.lineTo(to.x, to.y); c.stroke();
    c.globalCompositeOperation = "source-over";
    c.setTransform(1, 0, 0, 1, 0, 0);
  }
  return region(from.x, from.y, to.x, to.y, state.size / 2 + 2);
}
function activeTool() { return state.spaceHeld ? "pan" : state.tool; }

view.addEventListener("pointerdown", (e) => {
  if (!state.image) return;
  try { view.setPointerCapture(e.pointerId); } catch (_) { /* a pointer already gone: paint without capture */ }
  state.pointers.set(e.pointerId, toImage(e.clientX, e.clientY));
  if (state.pointers.size === 2) {  // two fingers: pinch to zoom and pan, no painting
    if (state.drawing && state.drawing.tool === "brush") committed(state.drawing.region);  // the first finger's dot
    state.drawing = null;
    const [a, b] = [...state.pointers.values()];
    state.pinch = { dist: Math.hypot(a.vx - b.vx, a.vy - b.vy), cx: (a.vx + b.vx) / 2, cy: (a.vy + b.vy) / 2 };
    return;
  }
  const p = toImage(e.clientX, e.clientY), tool = activeTool();
  if (state.compare) {  // comparing: drag the divider, or hold the photo to see it as it was (and pan)
    const near = Math.abs(p.vx - dividerX()) < 24 * (window.devicePixelRatio || 1);
    state.drawing = near ? { tool: "split" } : { tool: "pan", vx: p.vx, vy: p.vy };
    if (!near) { state.compare.hold = true; draw(); }
    return;
  }
  if (tool === "pan" || e.button === 1) {
    state.drawing = { tool: "pan", vx: p.vx, vy: p.vy };
  } else if (tool === "rect") {
    state.drawing = { tool: "rect", x0: p.x, y0: p.y, x1: p.x, y1: p.y, erase: e.altKey };
  } else {
    const erase = tool === "erase" || e.button === 2;
    const painted = stroke(p, p, erase);
    state.drawing = { tool: "brush", last: p, erase, region: painted };
  }
  schedule();
});
view.addEventListener("pointermove", (e) => {
  const p = toImage(e.clientX, e.clientY);
  state.pointer = e.pointerType === "mouse" ? p : null;
  if (state.pointers.has(e.pointerId)) state.pointers.set(e.pointerId, p);
  if (state.pinch && state.pointers.size === 2) {
    const [a, b] = [...state.pointers.values()];
    const dist = Math.hypot(a.vx - b.vx, a.vy - b.vy), cx = (a.vx + b.vx) / 2, cy = (a.vy + b.vy) / 2;
    state.ox += cx - state.pinch.cx; state.oy += cy - state.pinch.cy;
    zoomAt(dist / state.pinch.dist, cx, cy);
    state.pinch = { dist, cx, cy };
    return;
  }
  const d = state.drawing;
  if (d && d.tool === "split") {
    state.compare.split = Math.min(1, Math.max(0, (p.vx - state.ox) / (state.image.width * state.scale)));
    draw();
  } else if (d && d.tool === "pan") {
    state.ox += p.vx - d.vx; state.oy += p.vy - d.vy; d.vx = p.vx; d.vy = p.vy; state.fitted = false;
    draw();
  } else if (d && d.tool === "rect") {
    d.x1 = p.x; d.y1 = p.y; schedule();
  } else if (d && d.tool === "brush") {
    const painted = stroke(d.last, p, d.erase);
    d.last = p; d.region = union(d.region, painted); schedule();
  } else {
    schedule();  // the brush outline follows the pointer
  }
});
function endPointer(e) {
  state.pointers.delete(e.pointerId);
  if (state.pointers.size < 2) state.pinch = null;
  const d = state.drawing;
  if (d && d.tool === "rect") {
    for (const [c, colour, transform] of [[mctx, "#fff", [1, 0, 0, 1, 0, 0]],
                                          [kctx, RED, [state.scale, 0, 0, state.scale, state.ox, state.oy]]]) {
      c.setTransform(...transform);
      c.globalCompositeOperation = d.erase ? "destination-out" : "source-over";
      c.fillStyle = colour;
      c.fillRect(Math.min(d.x0, d.x1), Math.min(d.y0, d.y1), Math.abs(d.x1 - d.x0), Math.abs(d.y1 - d.y0));
      c.globalCompositeOperation = "source-over";
      c.setTransform(1, 0, 0, 1, 0, 0);
    }
    committed(region(d.x0, d.y0, d.x1, d.y1, 1));
  } else if (d && d.tool === "brush") {
    committed(d.region);
  }
  state.drawing = null;
  if (state.compare && state.compare.hold) { state.compare.hold = false; draw(); }
  updateButtons(); schedule();
}
view.addEventListener("pointerup", endPointer);
view.addEventListener("pointercancel", endPointer);
view.addEventListener("pointerleave", () => { state.pointer = null; schedule(); });
view.addEventListener("contextmenu", (e) => e.preventDefault());
view.addEventListener("wheel", (e) => {
  e.preventDefault();
  const p = toImage(e.clientX, e.clientY);
  zoomAt(e.deltaY < 0 ? 1.15 : 1 / 1.15, p.vx, p.vy);
}, { passive: false });

// ---------- tools, undo, keyboard ----------
function setTool(tool) {
  state.tool = tool;
  document.querySelectorAll("[data-tool]").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.tool === tool)));
  view.style.cursor = tool === "pan" ? "grab" : tool === "rect" ? "crosshair" : "none";
}
document.querySelectorAll("[data-tool]").forEach((b) => b.addEventListener("click", () => setTool(b.dataset.tool)));
// a new size shows as the brush's circle in the middle of the photo for a moment: with a finger there is no
// pointer to draw it at
$("size").addEventListener("input", (e) => {
  state.size = Number(e.target.value);
  state.preview = performance.now() + 900;
  schedule();
});
function restore(from, to) {  // undo or redo one edit: its region goes back, and what it held goes the other way
  if (!from.length) return;
  const e = from.pop();
  to.push({ x: e.x, y: e.y, w: e.w, h: e.h, data: mctx.getImageData(e.x, e.y, e.w, e.h) });
  mctx.putImageData(e.data, e.x, e.y);
  bctx.putImageData(e.data, e.x, e.y);
  updateButtons(); draw();
}
$("undo").addEventListener("click", () => restore(state.undo, state.redo));
$("redo").addEventListener("click", () => restore(state.redo, state.undo));
$("clear").addEventListener("click", () => {
  mctx.clearRect(0, 0, mask.width, mask.height); committed(region(0, 0, mask.width, mask.height));
  updateButtons(); draw();
});
$("zoom-in").addEventListener("click", () => zoomAt(1.25));
$("zoom-out").addEventListener("click", () => zoomAt(0.8));
$("zoom-fit").addEventListener("click", fit);
function maskIsEmpty() {
  if (!state.image) return true;
  const data = mctx.getImageData(0, 0, mask.width, mask.height).data;
  for (let i = 3; i < data.length; i += 4) if (data[i] >= 128) return false;
  return true;
}
function updateButtons() {
  const comparing = Boolean(state.compare);  // the tools wait while the result is compared
  $("undo").disabled = !state.undo.length || comparing;
  $("redo").disabled = !state.redo.length || comparing;
  $("clear").disabled = !state.image || comparing;
  $("submit").disabled = !state.image || state.busy || comparing;  // one job at a time: no duplicate from a second click
  document.querySelectorAll("[data-tool]").forEach((b) => { b.disabled = comparing; });
  $("size").disabled = comparing;
}
window.addEventListener("keydown", (e) => {
  const t = e.target;
  // typing goes to text fields and menus; a slider keeps its arrows, every other shortcut still works
  if (t instanceof HTMLSelectElement || (t instanceof HTMLInputElement && t.type !== "range")) return;
  if (t instanceof HTMLInputElement && e.key.startsWith("Arrow")) return;
  const k = e.key.toLowerCase();
  // on a focused button, Enter and Space press that button: no Remove, no panning
  if ((k === "enter" || k === " ") && (t instanceof HTMLButtonElement || t instanceof HTMLAnchorElement)) return;
  if ((e.ctrlKey || e.metaKey) && k === "z") { e.preventDefault(); e.shiftKey ? $("redo").click() : $("undo").click(); }
  else if ((e.ctrlKey || e.metaKey) && k === "y") { e.preventDefault(); $("redo").click(); }
  else if (state.compare && (k === "arrowleft" || k === "arrowright")) {
    state.compare.split = Math.min(1, Math.max(0, state.compare.split + (k === "arrowright" ? 0.05 : -0.05)));
    draw();
  }
  else if (state.compare && ["b", "e", "r", "[", "]"].includes(k)) return;  // no painting while comparing
  else if (k === "b") setTool("brush");
  else if (k === "e") setTool("erase");
  else if (k === "r") setTool("rect");
  else if (k === "h") setTool("pan");
  else if (k === "[" || k === "]") { const s = $("size"); s.value = Number(s.value) + (k === "]" ? 5 : -5); s.dispatchEvent(new Event("input")); }
  else if (k === "+" || k === "=") zoomAt(1.25);
  else if (k === "-") zoomAt(0.8);
  else if (k === "0") fit();
  else if (k === "enter" && !$("submit").disabled && $("compare").hidden) $("submit").click();
  else if (k === " ") { state.spaceHeld = true; view.style.cursor = "grab"; e.preventDefault(); }
  else if (k === "escape" && state.busy) $("cancel").click();
  else if (k === "escape" && state.compare) $("back").click();
});
window.addEventListener("keyup", (e) => { if (e.key === " ") { state.spaceHeld = false; setTool(state.tool); } });

// ---------- submit, watch, compare ----------
function maskBlob() {
  // white (remove) on black, at the photo's size: the service's mask convention
  const out = document.createElement("canvas");
  out.width = mask.width; out.height = mask.height;
  const o = out.getContext("2d");
  o.fillStyle = "#000"; o.fillRect(0, 0, out.width, out.height);
  o.drawImage(mask, 0, 0);
  return new Promise((resolve) => out.toBlob(resolve, "image/png"));
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A request that cannot reach the server is tried again, for as long as it takes: the job goes on on the
// server, and the page shows its outcome once the server answers again. The upload carries an
// Idempotency-Key, so sending it again never makes a second job.
async function persist(what, request) {
  for (let attempt = 0; ; attempt++) {
    try {
      const answer = await request();
      if (attempt) { statusEl.classList.remove("error"); progress(what); }
      return answer;
    } catch (err) {
      if (!(err instanceof Unreachable)) throw err;
      phase = ""; say("Server unreachable, retrying…", true);
      await sleep(Math.min(5000, 500 * 2 ** Math.min(attempt, 4)));
    }
  }
}

// while a job runs: how long it has been, and a way to stop it
let ticker = 0, phase = "";
function progress(text) {
  phase = text;
  const seconds = Math.round((performance.now() - state.started) / 1000);
  say(seconds >= 1 ? `${text} ${seconds} s` : text);
}
$("cancel").addEventListener("click", async () => {
  const id = stage.dataset.jobId;
  if (!id || !state.busy) return;
  $("cancel").disabled = true;
  try { await persist("Canceling…", () => api(`v1/jobs/${id}/cancel`, { method: "POST" })); }
  catch (err) { say(`Could not cancel: ${err.message}`, true); $("cancel").disabled = false; }
});

$("submit").addEventListener("click", async () => {
  if (state.busy) return;
  if (maskIsEmpty()) { say("Paint over something first: the mask is empty.", true); return; }
  state.busy = true; updateButtons();
  state.started = performance.now();
  delete stage.dataset.jobId;
  $("cancel").hidden = false; $("cancel").disabled = false;
  ticker = setInterval(() => { if (phase && !statusEl.classList.contains("error")) progress(phase); }, 1000);
  try {
    const form = new FormData();
    form.append("image", state.file, state.file.name || `${state.name}.png`);
    form.append("mask", await maskBlob(), "mask.png");
    form.append("engine", $("engine").value);
    form.append("grow", String(Math.max(0, Math.min(64, Math.round(Number($("grow").value) || 0)))));
    const key = crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`;
    progress("Uploading…");
    let job = await persist("Uploading…", async () => (await api("v1/jobs", {
      method: "POST", body: form, headers: { "Idempotency-Key": key } })).json());
    stage.dataset.jobId = job.id;
    while (!["succeeded", "failed", "canceled"].includes(job.status)) {
      progress(job.status === "queued" ? "Queued…" : "Running…");
      await sleep(250);
      job = await persist("Running…", async () => (await api(`v1/jobs/${job.id}`)).json());
    }
    if (job.status === "canceled") { phase = ""; say("Canceled: the photo is as it was; the mask is still here."); return; }
    if (job.status !== "succeeded") {
      throw new Error(job.error ? `${job.error.message} (${job.error.code})` : job.status);
    }
    const blob = await persist("Downloading…", async () => (await api(`v1/jobs/${job.id}/result`)).blob());
    showResult(blob, job);
  } catch (err) {
    say(`Failed: ${err.message}`, true);
  } finally {
    clearInterval(ticker); phase = "";
    $("cancel").hidden = true;
    state.busy = false;
    updateButtons();
  }
});

async function showResult(blob, job) {
  if (state.resultUrl) URL.revokeObjectURL(state.resultUrl);
  state.resultBlob = blob;
  state.resultUrl = URL.createObjectURL(blob);
  // upright, as the photo is shown: a JPEG comes back in its stored layout with its orientation tag
  const after = await createImageBitmap(blob, { imageOrientation: "from-image" });
  const ext = { "image/jpeg": "jpg", "image/png": "png", "image/webp": "webp" }[blob.type] || "png";
  $("download").href = state.resultUrl;
  $("download").download = `${state.name}-clean.${ext}`;
  stage.dataset.result = `${after.width}x${after.height}`;
  state.compare = { after, split: 0.5, hold: false };
  state.pointer = null;
  $("compare").hidden = false;
  updateButtons(); draw();
  say(`Done in ${((Date.parse(job.finished_at) - Date.parse(job.created_at)) / 1000).toFixed(1)} s with ${job.engine}. ` +
      "Drag the line to compare; hold the photo to see it as it was.");
}
function endCompare() {
  state.compare = null;
  $("compare").hidden = true;
  uctx.clearRect(0, 0, ui.width, ui.height);
  updateButtons(); draw();
}
$("back").addEventListener("click", () => { endCompare(); say("Back to the mask: paint more, or Remove again."); });
$("again").addEventListener("click", () => {
  const file = new File([state.resultBlob], `${state.name}.${state.resultBlob.type.split("/")[1] || "png"}`,
                        { type: state.resultBlob.type });
  endCompare();
  openPhoto(file).then(() => { state.name = state.name.replace(/-clean$/, ""); });
});

// ---------- API key, kept in this tab only ----------
$("api-key").value = sessionStorage.getItem("sneaky-api-key") || "";
$("api-key").addEventListener("change", (e) => {
  const v = e.target.value.trim();
  v ? sessionStorage.setItem("sneaky-api-key", v) : sessionStorage.removeItem("sneaky-api-key");
});

// the canvas follows its box, whatever changed it (a window resize, a rotated phone, the status line wrapping,
// the API key field opening): its bitmap matches the box, and a photo not zoomed or panned by hand is fitted again
function layout() {
  const r = stage.getBoundingClientRect(), dpr = window.devicePixelRatio || 1;
  if (view.width === Math.round(r.width * dpr) && view.height === Math.round(r.height * dpr)) return;
  const cx = (view.width / 2 - state.ox) / state.scale, cy = (view.height / 2 - state.oy) / state.scale;
  resize();
  if (state.fitted) { fit(); return; }
  state.ox = view.width / 2 - cx * state.scale; state.oy = view.height / 2 - cy * state.scale;  // same centre
  draw();
}
new ResizeObserver(layout).observe(stage);
window.addEventListener("resize", layout);
resize();
setTool("brush");
