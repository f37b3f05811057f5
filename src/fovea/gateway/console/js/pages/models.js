// Models: what Triton serves (ListModels: state and why a model is not ready) and the detectors the detection
// service can run (ListDetectors), imported ones with their import's state.

import {call} from "../api.js";
import {badge, busy, errorLine, fill, h, pageHead, panel, table} from "../ui.js";

function stateBadge(state) {
  const s = state || "UNKNOWN";
  return badge(s, s === "READY" ? "good" : s === "LOADING" ? "warn" : "bad");
}

export async function render(main) {
  const modelsBox = h("div", {});
  const detectorsBox = h("div", {});
  const errors = errorLine();
  const reload = h("button", {type: "button", onclick: () => busy(reload, refresh, errors)}, "Refresh");
  let timer = null;

  main.append(
    pageHead("Models", "Every model in the Triton Inference Server with its state, and the detectors built from them. Bring your own detector with fovea models import-onnx, then fovea models load NAME: it shows here and on the Detection page."),
    h("div", {class: "actions"}, reload, errors.element),
    panel("Detectors", detectorsBox),
    panel("Triton models", modelsBox));

  async function refresh() {
    const [models, detectors] = await Promise.all([
      call("models", "ListModels", {}),
      call("detection", "ListDetectors", {}).catch((error) => ({error})),
    ]);
    const list = models.models || [];
    const byName = new Map(list.map((m) => [m.name, m]));
    fill(modelsBox, table(["Model", "Version", "State", "Why not ready"], list.map((m) => [
      h("strong", {}, m.name), m.version || "", stateBadge(m.state), h("span", {class: "small"}, m.reason || ""),
    ]), {empty: "Triton lists no model."}));
    if (detectors.error) {
      fill(detectorsBox, h("p", {class: "error"}, detectors.error.message));
    } else {
      fill(detectorsBox, table(["Detector", "Head", "Input", "Classes", "Triton", ""], (detectors.detectors || []).map((d) => {
        const model = byName.get(d.name);
        return [h("strong", {}, d.name), d.family, `${d.inputSize.width}×${d.inputSize.height}`,
          h("span", {title: d.labels.slice(0, 40).join(", ")}, String(d.labels.length)),
          model ? stateBadge(model.state) : badge("not loaded", "warn"), d.isDefault ? badge("default") : ""];
      })));
    }
    clearTimeout(timer);
    if (list.some((m) => m.state === "LOADING")) timer = setTimeout(() => refresh().catch((e) => errors.show(e)), 3000);
  }

  await refresh();
  return () => clearTimeout(timer);
}
