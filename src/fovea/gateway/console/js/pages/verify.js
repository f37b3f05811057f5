// Verify (1:1, is this the claimed person?) and identify (1:N, who are the people in the photo?) against a
// gallery, from a photo or the camera.

import {call, image} from "../api.js";
import {badge, busy, drawBoxes, errorLine, field, fill, h, imagePicker, loadImage, options, pageHead, panel, table} from "../ui.js";

export async function render(main) {
  const gallery = h("select", {});
  const identity = h("input", {type: "text", list: "verify-identities", autocomplete: "off", placeholder: "alice"});
  const known = h("datalist", {id: "verify-identities"});
  const topK = h("input", {type: "number", min: 1, max: 20, value: 3});
  const errors = errorLine();
  const canvas = h("canvas", {role: "img", "aria-label": "The photo with the faces found"});
  const stage = h("div", {class: "stage", hidden: true}, canvas);
  const result = h("div", {"aria-live": "polite"});
  const picker = imagePicker({label: "Photo of the person", onchange: () => { fill(result); stage.hidden = true; }});
  const verifyButton = h("button", {class: "primary", type: "button", onclick: () => busy(verifyButton, verify, errors)}, "Verify");
  const identifyButton = h("button", {class: "primary", type: "button", onclick: () => busy(identifyButton, identify, errors)}, "Identify");
  const verifyPart = h("div", {}, field("Claimed identity", identity), known, h("div", {class: "actions"}, verifyButton));
  const identifyPart = h("div", {hidden: true}, field("Candidates per face", topK), h("div", {class: "actions"}, identifyButton));
  const tabVerify = h("button", {type: "button", role: "tab", "aria-selected": "true", onclick: () => tab("verify")}, "Verify 1:1");
  const tabIdentify = h("button", {type: "button", role: "tab", "aria-selected": "false", onclick: () => tab("identify")}, "Identify 1:N");

  function tab(which) {
    tabVerify.setAttribute("aria-selected", String(which === "verify"));
    tabIdentify.setAttribute("aria-selected", String(which === "identify"));
    verifyPart.hidden = which !== "verify";
    identifyPart.hidden = which !== "identify";
    fill(result);
  }

  main.append(
    pageHead("Verify & identify", "Verify compares a photo with one enrolled person; identify searches the whole gallery for each face in the photo."),
    h("div", {class: "grid-side"},
      panel("Input",
        h("div", {class: "tabs", role: "tablist", "aria-label": "Mode"}, tabVerify, tabIdentify),
        field("Gallery", gallery),
        picker.element,
        verifyPart, identifyPart,
        errors.element),
      panel("Result", stage, result)));

  async function show(photo, boxes) {
    drawBoxes(canvas, await loadImage(photo.url), boxes);
    stage.hidden = false;
  }

  function photo() {
    const p = picker.photos[0];
    if (!p) throw new Error("Pick a photo first (or capture one).");
    return p;
  }

  async function verify() {
    const p = photo();
    const answer = await call("faces", "Verify", {galleryId: gallery.value, identityId: identity.value.trim(), photo: image(p.bytes)});
    const ok = answer.match;
    const distance = Number(answer.distance);
    const threshold = Number(answer.threshold);
    const face = answer.face?.box;
    await show(p, face ? [{...face, label: ok ? identity.value.trim() : "no match", color: ok ? "#11845b" : "#c2263c"}] : []);
    const bar = h("div", {class: "bar", role: "img", "aria-label": `distance ${distance.toFixed(3)} of threshold ${threshold.toFixed(3)}`}, h("div", {}));
    bar.firstChild.style.width = `${Math.min(100, Math.max(2, (100 * Math.max(distance, 0)) / (2 * threshold)))}%`;
    fill(result,
      h("div", {class: `verdict ${ok ? "good" : "bad"}`},
        h("strong", {}, ok ? `Match: ${identity.value.trim()}` : "No match"),
        distance >= 0
          ? h("span", {}, `distance ${distance.toFixed(3)}, threshold ${threshold.toFixed(3)} (smaller is closer)`)
          : h("span", {}, "no distance told (a key without faces:admin learns only match or not)")),
      distance >= 0 ? bar : null);
  }

  async function identify() {
    const p = photo();
    const answer = await call("faces", "Identify", {galleryId: gallery.value, photo: image(p.bytes), topK: Number(topK.value) || 1});
    const faces = answer.faces || [];
    await show(p, faces.map((f) => ({...f.face.box, label: f.identityId || "unknown", color: f.identityId ? "#11845b" : "#9a6100"})));
    fill(result,
      h("p", {}, badge(`${faces.length} face${faces.length === 1 ? "" : "s"}`), " ",
        h("span", {class: "small muted"}, `threshold ${Number(answer.threshold).toFixed(2)}`)),
      table(["Face", "Identity", "Distance", "Candidates"], faces.map((f, i) => [
        String(i + 1),
        f.identityId ? badge(f.identityId, "good") : badge("unknown", "warn"),
        Number(f.distance) >= 0 ? Number(f.distance).toFixed(3) : "",
        (f.candidates || []).map((c) => `${c.identityId} (${Number(c.distance).toFixed(3)})`).join(", "),
      ]), {empty: "No face found in the photo."}));
  }

  async function loadIdentities() {
    if (!gallery.value) return;
    try {
      const answer = await call("faces", "ListIdentities", {galleryId: gallery.value, pageSize: 1000});
      fill(known, (answer.identities || []).map((p) => h("option", {value: p.identityId})));
    } catch {
      fill(known); // a key without faces:admin cannot list: the id is typed
    }
  }
  gallery.addEventListener("change", loadIdentities);

  const answer = await call("faces", "ListGalleries", {});
  const wanted = new URLSearchParams(location.hash.split("?")[1] || "").get("gallery") || "";
  options(gallery, (answer.galleries || []).map((g) => [g.galleryId, `${g.galleryId} (${g.identityCount} people)`]), wanted);
  if (!gallery.value) errors.show(new Error("No gallery yet: create one on the Galleries page."));
  await loadIdentities();
  return () => picker.stop();
}
