// Small DOM helpers shared by the pages: an element builder, messages, tables, the image picker (upload, drop
// or camera) and boxes drawn on a canvas. No framework: each page builds its DOM with `h` and keeps its state.

/** `h("button", {class: "primary", onclick: fn}, "Send")`: attributes, properties (on*, value, checked...) and
 * children (strings, nodes, arrays, null). */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else if (["value", "checked", "disabled", "selected", "hidden", "indeterminate"].includes(name)) node[name] = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace `node`'s children. */
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

let ids = 0;
/** A unique id for label / aria wiring. */
export function uid(prefix = "f") { ids += 1; return `${prefix}-${ids}`; }

/** A labelled field: `field("Gallery id", input, "hint")`. */
export function field(label, control, hint = "") {
  if (!control.id) control.id = uid("field");
  const hintNode = hint ? h("span", {class: "hint", id: `${control.id}-hint`}, hint) : null;
  if (hintNode) control.setAttribute("aria-describedby", hintNode.id);
  return h("div", {class: "field"}, h("label", {class: "label", for: control.id}, label), control, hintNode);
}

export function checkbox(label, checked = false) {
  const input = h("input", {type: "checkbox", checked});
  return {input, element: h("label", {class: "check"}, input, label)};
}

export function options(select, items, selected = "") {
  fill(select, items.map(([value, text]) => h("option", {value, selected: value === selected}, text)));
  return select;
}

export function pageHead(title, text) {
  return h("header", {class: "page-head"}, h("h1", {}, title), text ? h("p", {}, text) : null);
}

export function panel(title, ...children) {
  const id = uid("panel");
  return h("section", {class: "panel", "aria-labelledby": id}, h("h2", {id}, title), ...children);
}

export function toast(message, kind = "") {
  const node = h("div", {class: `toast ${kind}`}, message);
  document.getElementById("toasts").append(node);
  setTimeout(() => node.remove(), kind === "bad" ? 8000 : 4000);
}

/** The message of an error a person can act on. */
export function describe(error) {
  if (!error) return "";
  if (error.code === "permission_denied") return `This key may not do that: ${error.message}`;
  return error.message || String(error);
}

/** An element that shows an error (role=alert) or nothing. */
export function errorLine() {
  const node = h("p", {class: "error", role: "alert"});
  return {element: node, show(error) { node.textContent = describe(error); }, clear() { node.textContent = ""; }};
}

/** Run `work()` with `button` disabled and a spinner; errors go to `errors` (an errorLine) or a toast. */
export async function busy(button, work, errors = null) {
  const before = [...button.childNodes];
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  button.prepend(h("span", {class: "spinner", "aria-hidden": "true"}), " ");
  errors?.clear();
  try {
    return await work();
  } catch (error) {
    if (error.name === "AbortError") return undefined;
    if (errors) errors.show(error); else toast(describe(error), "bad");
    return undefined;
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
    button.replaceChildren(...before);
  }
}

export function badge(text, kind = "") { return h("span", {class: `badge ${kind}`}, text); }

/** A table: `columns` are header strings, `rows` arrays of cells (strings or nodes). */
export function table(columns, rows, {caption = "", empty = "Nothing yet."} = {}) {
  if (!rows.length) return h("p", {class: "empty"}, empty);
  return h("div", {class: "table-wrap"}, h("table", {},
    caption ? h("caption", {class: "muted small"}, caption) : null,
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", {scope: "col"}, c)))),
    h("tbody", {}, rows.map((cells) => (cells instanceof Node ? cells : h("tr", {}, cells.map((c) => h("td", {}, c))))))));
}

/** A labelled progress bar: `set(value, max, text)`; `max` 0 = indeterminate. */
export function progressBar(label) {
  const id = uid("progress");
  const bar = h("progress", {id, max: 1});
  const text = h("span", {class: "small muted"}, "");
  const element = h("div", {class: "progress"}, h("label", {class: "label", for: id}, label), bar, text);
  return {
    element,
    set(value, max, note = "") {
      if (max > 0) { bar.max = max; bar.value = Math.min(value, max); } else bar.removeAttribute("value");
      text.textContent = note;
    },
  };
}

export function time(unixMs) {
  const ms = Number(unixMs);
  return ms ? new Date(ms).toLocaleString() : "";
}

export function percent(x, digits = 1) { return `${(100 * Number(x || 0)).toFixed(digits)}%`; }

export async function bytesOf(blob) { return new Uint8Array(await blob.arrayBuffer()); }

export function loadImage(url) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("the image could not be shown"));
    img.src = url;
  });
}

const COLORS = ["#4f5bff", "#e5484d", "#12a594", "#f76b15", "#8e4ec6", "#0090ff", "#d6409f", "#46a758"];
export function colorOf(key) {
  let hash = 0;
  for (const ch of String(key)) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  return COLORS[hash % COLORS.length];
}

/** Draw `img` on `canvas` at its size and each box {x1, y1, x2, y2, label, color} (pixels of the image). */
export function drawBoxes(canvas, img, boxes) {
  canvas.width = img.naturalWidth || img.videoWidth || img.width;
  canvas.height = img.naturalHeight || img.videoHeight || img.height;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
  const scale = Math.max(1, Math.max(canvas.width, canvas.height) / 700);  // labels stay readable once shrunk to fit
  ctx.lineWidth = 2.5 * scale;
  ctx.font = `600 ${Math.round(13 * scale)}px system-ui, sans-serif`;
  ctx.textBaseline = "top";
  // boxes first, then their labels, the best-scored last (on top where labels overlap)
  const ordered = [...boxes].sort((a, b) => (a.score ?? 0) - (b.score ?? 0));
  for (const box of ordered) {
    ctx.strokeStyle = box.color || colorOf(box.label);
    ctx.strokeRect(box.x1, box.y1, box.x2 - box.x1, box.y2 - box.y1);
  }
  for (const box of ordered) {
    const color = box.color || colorOf(box.label);
    if (box.label) {
      const pad = 4 * scale, text = box.label, tw = ctx.measureText(text).width + 2 * pad, th = 18 * scale;
      const y = box.y1 - th >= 0 ? box.y1 - th : box.y1;
      ctx.fillStyle = color;
      ctx.fillRect(box.x1 - ctx.lineWidth / 2, y, tw, th);
      ctx.fillStyle = "#fff";
      ctx.fillText(text, box.x1 + pad - ctx.lineWidth / 2, y + 2 * scale);
    }
  }
}

/** The image picker: a drop zone / file input (several files with `multiple`) and the camera (getUserMedia),
 * whose captures are JPEGs. `onchange(photos)` gets every photo picked so far: [{bytes, url, name}]. */
export function imagePicker({label = "Photo", multiple = false, onchange = () => {}} = {}) {
  let photos = [];
  let stream = null;
  const input = h("input", {type: "file", accept: "image/*", multiple, "aria-label": multiple ? `${label}: choose files` : `${label}: choose a file`});
  const thumbs = h("div", {class: "thumbs", "aria-live": "polite"});
  const video = h("video", {autoplay: true, muted: true, playsinline: true, "aria-label": "Camera preview"});
  const camera = h("div", {class: "camera", hidden: true}, video,
    h("div", {class: "actions"},
      h("button", {type: "button", class: "primary", onclick: () => capture()}, "Capture"),
      h("button", {type: "button", onclick: () => stop()}, "Close camera")));
  const drop = h("label", {class: "drop"}, input,
    h("strong", {}, multiple ? "Choose photos" : "Choose a photo"), " or drop ", multiple ? "them" : "it", " here");

  function changed() {
    fill(thumbs, photos.map((p, i) => h("div", {class: "thumb", dataset: {index: i}},
      h("img", {src: p.url, alt: p.name}))));
    if (!multiple) thumbs.hidden = true;
    onchange(photos);
  }
  async function add(files) {
    const picked = [];
    for (const file of files) {
      if (!file.type.startsWith("image/")) continue;
      picked.push({bytes: await bytesOf(file), url: URL.createObjectURL(file), name: file.name});
    }
    if (!picked.length) return;
    photos = multiple ? photos.concat(picked) : picked.slice(0, 1);
    changed();
  }
  input.addEventListener("change", () => add([...input.files]));
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); add([...e.dataTransfer.files]); });

  async function start() {
    if (!navigator.mediaDevices?.getUserMedia) {
      toast("The camera needs HTTPS (or this page on localhost / 127.0.0.1).", "bad");
      return;
    }
    try {
      stream = await navigator.mediaDevices.getUserMedia({video: {width: {ideal: 1280}}, audio: false});
    } catch (error) {
      toast(`No camera: ${error.message}`, "bad");
      return;
    }
    video.srcObject = stream;
    camera.hidden = false;
    cameraButton.hidden = true;
  }
  function stop() {
    stream?.getTracks().forEach((t) => t.stop());
    stream = null;
    video.srcObject = null;
    camera.hidden = true;
    cameraButton.hidden = false;
  }
  /** A JPEG of the camera's current frame (null without a camera). */
  async function grab() {
    if (!stream || !video.videoWidth) return null;
    const canvas = h("canvas", {width: video.videoWidth, height: video.videoHeight});
    canvas.getContext("2d").drawImage(video, 0, 0);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.9));
    return {bytes: await bytesOf(blob), url: URL.createObjectURL(blob), name: `camera-${new Date().toISOString()}.jpg`};
  }
  async function capture() {
    const shot = await grab();
    if (!shot) return;
    photos = multiple ? photos.concat([shot]) : [shot];
    changed();
  }
  const cameraButton = h("button", {type: "button", onclick: start}, "Use the camera");
  const clear = h("button", {type: "button", class: "small", onclick: () => { photos = []; changed(); }}, "Clear");
  const element = h("div", {class: "picker", role: "group", "aria-label": label},
    drop, h("div", {class: "actions"}, cameraButton, multiple ? clear : null), camera, thumbs);
  return {
    element,
    get photos() { return photos; },
    get live() { return stream !== null; },
    grab,
    stop,
    thumb(index) { return thumbs.children[index]; },
    reset() { photos = []; changed(); },
  };
}
