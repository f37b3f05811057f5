// Classifiers: the built-in and trained ones with their versions (rollback, delete); training a new one from a
// folder or a .zip of photos (one sub-folder per class) followed live (WatchTrainingJob); classify a photo and
// see where the network looks (Grad-CAM from Explain).

import {call, image, pngUrl, stream} from "../api.js";
import {unzip} from "../zip.js";
import {badge, busy, errorLine, field, fill, h, imagePicker, options, pageHead, panel, percent, progressBar, table, time, toast} from "../ui.js";

const IMAGE = /\.(jpe?g|png|webp|bmp|gif)$/i;

/** The class of a photo at `path` (a/b/open/1.jpg -> open): its folder's name; '' when it has none. */
function classOf(path) {
  const parts = path.split("/").filter(Boolean);
  if (parts.some((p) => p.startsWith(".") || p === "__MACOSX") || !IMAGE.test(path)) return "";
  return parts.length >= 2 ? parts[parts.length - 2] : "";
}

export async function render(main) {
  let classifiers = [];
  let selected = "";
  let training = [];  // [{label, bytes}]
  let controller = null;
  const listBox = h("div", {});
  const detailBox = h("div", {});

  // ----------------------------------------------------------------------------- train
  const name = h("input", {type: "text", autocomplete: "off", placeholder: "garage", pattern: "[a-z0-9][a-z0-9_-]{0,47}"});
  const folder = h("input", {type: "file", webkitdirectory: true, multiple: true});
  const zipFile = h("input", {type: "file", accept: ".zip,application/zip"});
  const epochs = h("input", {type: "number", min: 1, max: 500, value: 30});
  const summary = h("div", {"aria-live": "polite"});
  const trainErrors = errorLine();
  const progress = progressBar("Training");
  progress.element.hidden = true;
  const trainState = h("div", {"aria-live": "polite"});
  const trainResult = h("div", {});
  const train = h("button", {type: "button", class: "primary", onclick: () => busy(train, runTraining, trainErrors)}, "Train");

  function showSet() {
    const counts = {};
    for (const t of training) counts[t.label] = (counts[t.label] || 0) + 1;
    const labels = Object.keys(counts).sort();
    fill(summary, labels.length
      ? h("p", {}, `${training.length} photos in ${labels.length} classes: `, labels.map((l, i) => [i ? ", " : "", h("strong", {}, l), ` ${counts[l]}`]))
      : h("p", {class: "hint"}, "One sub-folder per class, at least 10 photos each (photos/open/*.jpg, photos/closed/*.jpg)."));
  }
  folder.addEventListener("change", async () => {
    training = [];
    for (const file of folder.files) {
      const label = classOf(file.webkitRelativePath || file.name);
      if (label) training.push({label, bytes: new Uint8Array(await file.arrayBuffer())});
    }
    showSet();
  });
  zipFile.addEventListener("change", async () => {
    trainErrors.clear();
    try {
      const files = await unzip(await zipFile.files[0].arrayBuffer());
      training = files.map((f) => ({label: classOf(f.name), bytes: f.bytes})).filter((t) => t.label);
    } catch (error) {
      training = [];
      trainErrors.show(error);
    }
    showSet();
  });

  async function runTraining() {
    const wanted = name.value.trim();
    if (!wanted) throw new Error("Name the classifier (lowercase letters, digits, _ and -).");
    if (!training.length) throw new Error("Choose a folder or a zip of photos first.");
    fill(trainResult);
    progress.element.hidden = false;
    progress.set(0, 0, "uploading");
    const job = await call("classify", "TrainClassifier", {
      name: wanted, images: training.map((t) => ({label: t.label, image: image(t.bytes)})),
      options: {epochs: Number(epochs.value) || 0},
    });
    controller = new AbortController();
    let last = job;
    for await (const j of stream("classify", "WatchTrainingJob", {jobId: job.jobId}, {signal: controller.signal, timeoutMs: 1800000})) {
      last = j;
      const state = j.state.replace("TRAINING_", "");
      if (state === "SUCCEEDED") progress.set(1, 1, "done");
      else if (j.epochs) progress.set(j.epoch, j.epochs, `${j.stage} · loss ${Number(j.loss).toFixed(4)} · validation ${percent(j.validationAccuracy)}`);
      else progress.set(0, 0, j.stage || state.toLowerCase());
      fill(trainState, badge(state, state === "SUCCEEDED" ? "good" : state === "FAILED" ? "bad" : ""), " ",
        h("span", {class: "small muted"}, j.stage && j.stage.toLowerCase() !== state.toLowerCase() ? j.stage : ""));
    }
    controller = null;
    if (last.state === "TRAINING_FAILED") throw new Error(`training failed: ${last.error}`);
    if (last.result) showResult(last.result);
    selected = wanted;
    await refresh();
  }

  function showResult(r) {
    const n = r.labels.length;
    const matrix = h("table", {class: "confusion"},
      h("caption", {class: "small muted"}, "Validation confusion matrix: rows are the true class, columns the predicted one"),
      h("thead", {}, h("tr", {}, h("th", {}, ""), r.labels.map((l) => h("th", {scope: "col"}, l)))),
      h("tbody", {}, r.labels.map((l, i) => h("tr", {}, h("th", {scope: "row"}, l),
        r.labels.map((_, j) => h("td", {}, String(r.confusion[i * n + j] ?? 0)))))));
    fill(trainResult,
      h("div", {class: "verdict good"}, h("strong", {}, `Version ${r.version}: ${percent(r.validationAccuracy)} on the validation photos`),
        h("span", {class: "small"}, `training ${percent(r.trainAccuracy)} · features ${Number(r.featureSeconds).toFixed(1)} s (${r.featuresCached} cached) · head ${Number(r.trainSeconds).toFixed(2)} s`)),
      table(["Class", "Train", "Validation", "Accuracy", "Precision"], r.classes.map((c) => [
        c.label, String(c.trainImages), String(c.validationImages), percent(c.accuracy), percent(c.precision)])),
      h("div", {class: "table-wrap"}, matrix));
  }

  // ----------------------------------------------------------------------------- try
  const model = h("select", {});
  const version = h("select", {});
  const photo = imagePicker({label: "Photo to classify", onchange: () => fill(tryResult)});
  const tryErrors = errorLine();
  const tryResult = h("div", {"aria-live": "polite"});
  const classify = h("button", {type: "button", class: "primary", onclick: () => busy(classify, runClassify, tryErrors)}, "Classify");
  const explain = h("button", {type: "button", onclick: () => busy(explain, runExplain, tryErrors)}, "Where does it look?");
  const explainLabel = h("input", {type: "text", autocomplete: "off", placeholder: "the most probable class"});

  function chosenPhoto() {
    const p = photo.photos[0];
    if (!p) throw new Error("Pick a photo first.");
    return p;
  }
  async function runClassify() {
    const answer = await call("classify", "Classify", {image: image(chosenPhoto().bytes), model: model.value, topK: 5, version: Number(version.value) || 0});
    fill(tryResult, h("p", {class: "small muted"}, `${answer.model}${answer.version ? ` version ${answer.version}` : ""}`),
      answer.classifications.map((c) => {
        const bar = h("div", {class: "bar"}, h("div", {}));
        bar.firstChild.style.width = `${Math.max(1, 100 * c.probability)}%`;
        return h("div", {class: "field"}, h("div", {class: "row"}, h("strong", {}, c.label), h("span", {class: "small muted"}, percent(c.probability))), bar);
      }));
  }
  async function runExplain() {
    const info = classifiers.find((c) => c.name === model.value);
    if (info?.trained) throw new Error("Grad-CAM works on the built-in classifiers: pick one of them.");
    const answer = await call("classify", "Explain", {image: image(chosenPhoto().bytes), model: model.value, label: explainLabel.value.trim(), render: true});
    fill(tryResult,
      h("p", {}, "Explained: ", h("strong", {}, answer.explained.label), ` (${percent(answer.explained.probability)})`,
        answer.top.label !== answer.explained.label ? ` · most probable: ${answer.top.label}` : ""),
      h("div", {class: "stage"}, h("img", {src: pngUrl(answer.png), alt: `Grad-CAM map of ${answer.explained.label} over the photo`})));
  }
  model.addEventListener("change", () => showVersions());
  function showVersions() {
    const info = classifiers.find((c) => c.name === model.value);
    const versions = info?.trained ? info.versions.map((v) => [String(v.version), `version ${v.version}${v.version === info.activeVersion ? " (active)" : ""}`]) : [];
    options(version, [["0", info?.trained ? "the active version" : "built-in"], ...versions]);
    version.disabled = !info?.trained;
    explain.disabled = Boolean(info?.trained);
  }

  // ----------------------------------------------------------------------------- list and versions
  async function refresh() {
    const answer = await call("classify", "ListClassifiers", {});
    classifiers = answer.classifiers || [];
    if (!classifiers.some((c) => c.name === selected)) selected = (classifiers.find((c) => c.trained) || classifiers[0])?.name || "";
    fill(listBox, table(["Classifier", "Classes", "Kind", "Serving"], classifiers.map((c) => {
      const title = c.trained
        ? h("button", {type: "button", class: "link", "aria-label": `Versions of ${c.name}`, onclick: () => { selected = c.name; refresh(); }}, c.name)
        : h("strong", {}, c.name);
      return h("tr", {class: c.name === selected ? "selected" : ""},
        h("td", {}, title, c.isDefault ? " " : "", c.isDefault ? badge("default") : ""),
        h("td", {}, c.labels.length > 8 ? String(c.labels.length) : c.labels.join(", ")), h("td", {}, c.trained ? "trained" : "built-in"),
        h("td", {}, c.trained ? `version ${c.activeVersion} of ${c.versions.length}` : `${c.inputSize}×${c.inputSize} crop`));
    })));
    const current = model.value;
    options(model, classifiers.map((c) => [c.name, c.name]), current || selected);
    showVersions();
    showDetail(classifiers.find((c) => c.name === selected));
  }

  function showDetail(info) {
    if (!info || !info.trained) { fill(detailBox); return; }
    const del = h("button", {type: "button", class: "danger", onclick: () => busy(del, async () => {
      if (!confirm(`Delete ${info.name} and every version of it?`)) return;
      await call("classify", "DeleteClassifier", {name: info.name});
      toast(`${info.name} deleted`);
      selected = "";
      await refresh();
    })}, "Delete classifier");
    fill(detailBox, panel(`Versions of ${info.name}`,
      table(["Version", "Trained", "Photos", "Validation", "Classes", ""], [...info.versions].reverse().map((v) => {
        const active = v.version === info.activeVersion;
        const roll = h("button", {type: "button", class: "small", "aria-label": `Serve version ${v.version}`, onclick: () => busy(roll, async () => {
          await call("classify", "RollbackClassifier", {name: info.name, version: v.version});
          toast(`${info.name}: version ${v.version} is served`, "good");
          await refresh();
        })}, "Serve this one");
        return [h("strong", {}, String(v.version)), time(Number(v.created) * 1000), String(v.trainImages), percent(v.validationAccuracy),
          v.labels.join(", "), active ? badge("active", "good") : roll];
      })),
      h("div", {class: "actions"}, del)));
  }

  main.append(
    pageHead("Classifiers", "Teach Fovea your own classes: a frozen ImageNet network and a new last layer trained on your photos, deployed as the next version without a restart. Roll back to any kept version."),
    panel("Classifiers", listBox),
    detailBox,
    h("div", {class: "grid2"},
      panel("Train a classifier",
        field("Name", name, "A new name, or an existing trained classifier for its next version"),
        h("div", {class: "row"},
          field("A folder of photos", folder),
          field("…or a .zip of it", zipFile)),
        summary,
        field("Epochs", epochs),
        h("div", {class: "actions"}, train),
        progress.element, trainState, trainErrors.element, trainResult),
      panel("Try a classifier",
        h("div", {class: "row"}, field("Classifier", model), field("Version", version)), photo.element,
        field("Class to explain", explainLabel, "Grad-CAM of this class (built-in classifiers); empty: the most probable"),
        h("div", {class: "actions"}, classify, explain), tryErrors.element,
        tryResult)));
  showSet();
  await refresh();
  return () => { controller?.abort(); photo.stop(); };
}
