// Style: the contact sheet of named styles (ListStyles; "preview on my photo" fills it with small renders),
// a job submitted and watched to its end (WatchJob as server-sent events: a progress bar, Gatys previews),
// and the result image.

import {call, image, pngUrl, stream} from "../api.js";
import {badge, busy, checkbox, errorLine, field, fill, h, imagePicker, pageHead, panel, progressBar} from "../ui.js";

const FINAL = ["SUCCEEDED", "FAILED", "CANCELLED"];
const rendered = new Map();  // style name -> a small render of the last photo previewed (kept across visits)

export async function render(main) {
  let chosen = "";
  let controller = null;
  let jobId = "";
  const cards = new Map();
  const sheet = h("div", {class: "styles", role: "group", "aria-label": "Named styles"});
  const errors = errorLine();
  const content = imagePicker({label: "Content photo"});
  const painting = imagePicker({label: "Style image (a painting)"});
  const usePainting = checkbox("Use my own style image (Gatys optimisation, slower)");
  const iterations = h("input", {type: "number", min: 10, max: 1000, value: 100});
  const paintingPart = h("div", {hidden: true}, painting.element, field("Iterations", iterations));
  usePainting.input.addEventListener("change", () => { paintingPart.hidden = !usePainting.input.checked; });
  const maxSide = h("input", {type: "number", min: 64, max: 2048, value: 512});
  const preserve = checkbox("Keep the photo's colours");
  const progress = progressBar("Job progress");
  progress.element.hidden = true;
  const state = h("div", {class: "actions", "aria-live": "polite"});
  const preview = h("img", {alt: "Preview of the optimisation", hidden: true});
  const result = h("img", {alt: "The styled result", hidden: true});
  const download = h("a", {class: "button", download: "fovea-style.png", hidden: true}, "Download PNG");
  const chosenText = h("p", {class: "hint", "aria-live": "polite"}, "Pick a style from the sheet.");
  const submit = h("button", {class: "primary", type: "button", onclick: () => busy(submit, run, errors)}, "Submit job");
  const cancel = h("button", {type: "button", hidden: true, onclick: () => busy(cancel, () => call("style", "CancelJob", {jobId}), errors)}, "Cancel job");
  const previewAll = h("button", {type: "button", onclick: () => busy(previewAll, sheetPreview, errors)}, "Preview every style on my photo");

  main.append(
    pageHead("Style", "Repaint a photo in one of the named styles (a feed-forward network, about a second) or in the style of any painting (the Gatys optimisation, a minute or more). Jobs run in the background: the bar follows them live."),
    h("div", {class: "grid-side"},
      h("div", {},
        panel("Job",
          content.element,
          chosenText,
          usePainting.element, paintingPart,
          h("div", {class: "row"}, field("Longest side (px)", maxSide)),
          preserve.element,
          h("div", {class: "actions"}, submit, cancel),
          errors.element),
        panel("Result", progress.element, state, h("div", {class: "stage"}, preview, result), h("div", {class: "actions"}, download))),
      panel("Styles", h("div", {class: "actions"}, previewAll, h("span", {class: "hint"}, "Small renders of the content photo, two at a time")), sheet)));

  function select(name) {
    chosen = name;
    for (const [n, card] of cards) card.setAttribute("aria-pressed", String(n === name));
    chosenText.textContent = `Style: ${name}`;
  }

  async function follow(id, onJob) {
    controller = new AbortController();
    let last = null;
    for await (const job of stream("style", "WatchJob", {jobId: id}, {signal: controller.signal, timeoutMs: 600000})) {
      last = job;
      onJob(job);
    }
    return last;
  }

  async function run() {
    const photo = content.photos[0];
    if (!photo) throw new Error("Pick a content photo first.");
    const body = {content: image(photo.bytes), preserveColor: preserve.input.checked};
    if (usePainting.input.checked) {
      const style = painting.photos[0];
      if (!style) throw new Error("Pick the style image.");
      body.styleImage = image(style.bytes);
      body.gatys = {iterations: Number(iterations.value) || 100, maxSide: Number(maxSide.value) || 256};
    } else {
      if (!chosen) throw new Error("Pick a style from the sheet.");
      body.styleName = chosen;
      body.maxSide = Number(maxSide.value) || 512;
    }
    result.hidden = true; preview.hidden = true; download.hidden = true;
    progress.element.hidden = false;
    progress.set(0, 0, "queued");
    const job = await call("style", "SubmitJob", body);
    jobId = job.jobId;
    cancel.hidden = false;
    fill(state, badge(job.state), h("span", {class: "small muted mono"}, `job ${jobId}`));
    try {
      const last = await follow(jobId, (j) => {
        const p = j.progress || {};
        const total = Number(p.totalIterations || 0);
        if (j.state === "SUCCEEDED") progress.set(1, 1, "done");
        else if (total) progress.set(Number(p.iteration || 0), total, `iteration ${p.iteration || 0} of ${total}`);
        else progress.set(0, 0, j.state.toLowerCase());
        fill(state, badge(j.state, j.state === "SUCCEEDED" ? "good" : FINAL.includes(j.state) ? "bad" : ""), h("span", {class: "small muted mono"}, `job ${jobId}`));
        if (p.previewPng) { preview.src = pngUrl(p.previewPng); preview.hidden = false; }
      });
      if (last?.state === "SUCCEEDED") {
        const final = last.resultPng ? last : await call("style", "GetJob", {jobId});
        result.src = pngUrl(final.resultPng);
        result.hidden = false;
        preview.hidden = true;
        download.href = result.src;
        download.hidden = false;
      } else if (last) {
        errors.show(new Error(`${last.state.toLowerCase()}: ${last.error || "no reason given"}`));
      }
    } finally {
      cancel.hidden = true;
      controller = null;
    }
  }

  async function sheetPreview() {
    const photo = content.photos[0];
    if (!photo) throw new Error("Pick a content photo first: the sheet renders it in each style.");
    const names = [...cards.keys()];
    let next = 0;
    async function worker() {
      while (next < names.length) {
        const name = names[next++];
        const swatch = cards.get(name).querySelector(".swatch");
        fill(swatch, h("span", {class: "spinner", "aria-label": "rendering"}));
        const job = await call("style", "SubmitJob", {content: image(photo.bytes), styleName: name, maxSide: 160});
        let last = job;
        for await (const j of stream("style", "WatchJob", {jobId: job.jobId}, {timeoutMs: 120000})) last = j;
        if (last.state === "SUCCEEDED") {
          const done = last.resultPng ? last : await call("style", "GetJob", {jobId: job.jobId});
          rendered.set(name, pngUrl(done.resultPng));
          fill(swatch, h("img", {src: rendered.get(name), alt: ""}));
        } else fill(swatch, last.state.toLowerCase());
      }
    }
    await Promise.all([worker(), worker()]);
  }

  const answer = await call("style", "ListStyles", {});
  for (const s of answer.styles || []) {
    const card = h("button", {type: "button", class: "style-card", "aria-pressed": "false", dataset: {style: s.name},
      onclick: () => select(s.name)},
    h("div", {class: "swatch", "aria-hidden": "true"}, rendered.has(s.name) ? h("img", {src: rendered.get(s.name), alt: ""}) : `#${s.index}`),
    h("b", {}, s.name), h("span", {class: "desc"}, s.description));
    cards.set(s.name, card);
    sheet.append(card);
  }
  if (answer.styles?.length) select(answer.styles[0].name);
  return () => { controller?.abort(); content.stop(); painting.stop(); };
}
