// Detection playground: any detector ListDetectors names (imported ones included), a photo or the camera,
// the boxes drawn on a canvas and listed.

import {call, image} from "../api.js";
import {badge, busy, checkbox, colorOf, drawBoxes, errorLine, field, fill, h, imagePicker, loadImage, options, pageHead, panel, percent, table} from "../ui.js";

export async function render(main) {
  const model = h("select", {});
  const minScore = h("input", {type: "range", min: 0.05, max: 0.95, step: 0.05, value: 0.35, "aria-label": "Minimum score"});
  const minScoreText = h("output", {}, "0.35");
  minScore.addEventListener("input", () => { minScoreText.textContent = Number(minScore.value).toFixed(2); });
  const classes = h("input", {type: "text", placeholder: "person, dog (empty: every class)"});
  const info = h("p", {class: "hint"});
  const errors = errorLine();
  const canvas = h("canvas", {role: "img", "aria-label": "The photo with the detections drawn on it"});
  const stage = h("div", {class: "stage", hidden: true}, canvas);
  const empty = h("p", {class: "empty"}, "Pick a photo or use the camera, then Detect.");
  const summary = h("div", {class: "actions result-meta", "aria-live": "polite"});
  const list = h("div", {});
  const live = checkbox("Detect continuously from the camera");
  let detectors = [];
  let running = false;

  const picker = imagePicker({label: "Photo to run the detector on", onchange: () => preview()});
  const go = h("button", {class: "primary", type: "button", onclick: () => busy(go, () => detect(), errors)}, "Detect");

  main.append(
    pageHead("Detection", "Run any detector the platform serves on a photo or the camera: the boxes come back in the photo's own pixels."),
    h("div", {class: "grid-side"},
      panel("Input",
        field("Detector", model),
        info,
        field("Minimum score", h("div", {class: "slider"}, minScore, minScoreText)),
        field("Classes", classes, "Comma-separated labels to keep"),
        picker.element,
        live.element,
        h("div", {class: "actions"}, go),
        errors.element),
      panel("Result", empty, stage, summary, list)));

  async function preview() {
    const photo = picker.photos[0];
    if (!photo) return;
    const img = await loadImage(photo.url);
    drawBoxes(canvas, img, []);
    stage.hidden = false;
    empty.hidden = true;
    fill(summary);
    fill(list);
  }

  async function detect(frame = null) {
    const photo = frame || (picker.live ? await picker.grab() : picker.photos[0]);
    if (!photo) { errors.show(new Error("Pick a photo first (or open the camera).")); return; }
    const wanted = classes.value.split(",").map((c) => c.trim()).filter(Boolean);
    const answer = await call("detection", "Detect", {
      image: image(photo.bytes), model: model.value, minScore: Number(minScore.value), classes: wanted,
    });
    const img = await loadImage(photo.url);
    const boxes = answer.detections.map((d) => ({...d.box, score: d.score, color: colorOf(d.label), label: `${d.label} ${percent(d.score, 0)}`}));
    drawBoxes(canvas, img, boxes);
    if (frame || picker.live) URL.revokeObjectURL(photo.url);
    stage.hidden = false;
    empty.hidden = true;
    fill(summary,
      badge(`${answer.detections.length} detection${answer.detections.length === 1 ? "" : "s"}`, answer.detections.length ? "good" : ""),
      h("span", {class: "small muted"}, `${answer.model} · ${answer.imageSize.width}×${answer.imageSize.height} · ${(answer.inferenceSeconds * 1000).toFixed(0)} ms in the model`));
    fill(list, table(["Label", "Score", "Box (x1, y1, x2, y2)"], answer.detections.map((d) => [
      d.label, percent(d.score), h("span", {class: "mono"}, [d.box.x1, d.box.y1, d.box.x2, d.box.y2].map((v) => Math.round(v)).join(", ")),
    ]), {empty: "Nothing found above the minimum score."}));
  }

  async function loop() {
    while (running && live.input.checked && picker.live) {
      try {
        await detect(await picker.grab());
      } catch (error) {
        errors.show(error);
        break;
      }
      await new Promise((r) => setTimeout(r, 150));
    }
  }
  live.input.addEventListener("change", () => { running = live.input.checked; if (running) loop(); });

  const answer = await call("detection", "ListDetectors", {});
  detectors = answer.detectors || [];
  const byName = Object.fromEntries(detectors.map((d) => [d.name, d]));
  const chosen = (detectors.find((d) => d.isDefault) || detectors[0] || {}).name || "";
  options(model, detectors.map((d) => [d.name, `${d.name}${d.isDefault ? " (default)" : ""}`]), chosen);
  const describe = () => {
    const d = byName[model.value];
    info.textContent = d ? `${d.family} head · ${d.inputSize.width}×${d.inputSize.height} input · ${d.labels.length} classes` : "";
  };
  model.addEventListener("change", describe);
  describe();
  return () => { running = false; picker.stop(); };
}
