// Galleries: create, open, delete; enrol identities from photos or the camera, one Enroll per photo so each
// shows the quality check's verdict (the face found, or why the photo was refused); identities and deletion.

import {call, image} from "../api.js";
import {badge, busy, errorLine, field, fill, h, imagePicker, pageHead, panel, table, time, toast} from "../ui.js";

export async function render(main) {
  let selected = new URLSearchParams(location.hash.split("?")[1] || "").get("gallery") || "";
  const listBox = h("div", {});
  const detail = h("div", {});
  const newId = h("input", {type: "text", placeholder: "office", autocomplete: "off", pattern: "[A-Za-z0-9][A-Za-z0-9._-]{0,63}"});
  const newThreshold = h("input", {type: "number", min: 0, max: 4, step: 0.01, placeholder: "0.6"});
  const createErrors = errorLine();
  const create = h("button", {class: "primary", type: "submit"}, "Create gallery");
  const form = h("form", {onsubmit: (e) => { e.preventDefault(); busy(create, createGallery, createErrors); }},
    h("div", {class: "row"}, field("Gallery id", newId), field("Threshold", newThreshold, "Empty: the model's default")),
    h("div", {class: "actions"}, create), createErrors.element);

  main.append(
    pageHead("Galleries", "Each gallery is a namespace of enrolled people with its own match threshold. Enrol from photos or the camera: every photo goes through the quality check (one face, large and sharp enough)."),
    h("div", {class: "grid-side"},
      h("div", {}, panel("New gallery", form), panel("Galleries", listBox)),
      detail));

  async function createGallery() {
    const id = newId.value.trim();
    const body = {galleryId: id};
    if (newThreshold.value) body.threshold = Number(newThreshold.value);
    await call("faces", "CreateGallery", body);
    toast(`Gallery ${id} created`, "good");
    newId.value = "";
    newThreshold.value = "";
    selected = id;
    await refresh();
  }

  async function refresh() {
    const answer = await call("faces", "ListGalleries", {});
    const galleries = answer.galleries || [];
    if (!galleries.some((g) => g.galleryId === selected)) selected = galleries[0]?.galleryId || "";
    fill(listBox, table(["Gallery", "People", "Threshold"], galleries.map((g) => {
      const open = h("button", {type: "button", class: "link", "aria-current": g.galleryId === selected ? "true" : null,
        onclick: () => { selected = g.galleryId; refresh(); }}, g.galleryId);
      return h("tr", {class: g.galleryId === selected ? "selected" : ""},
        h("td", {}, open), h("td", {}, String(g.identityCount)), h("td", {}, Number(g.threshold).toFixed(2)));
    }), {empty: "No gallery yet: create one."}));
    await showGallery(galleries.find((g) => g.galleryId === selected));
  }

  async function showGallery(gallery) {
    if (!gallery) { fill(detail, panel("Gallery", h("p", {class: "empty"}, "Create a gallery to enrol people."))); return; }
    const identity = h("input", {type: "text", autocomplete: "off", placeholder: "alice"});
    const name = h("input", {type: "text", autocomplete: "off", placeholder: "Alice Example"});
    const verdicts = h("ul", {class: "list-plain", "aria-live": "polite", "aria-label": "Quality check verdicts"});
    const enrolErrors = errorLine();
    const picker = imagePicker({label: "Photos of the person", multiple: true, onchange: () => fill(verdicts)});
    const enrol = h("button", {class: "primary", type: "button", onclick: () => busy(enrol, () => enrolAll(), enrolErrors)}, "Enrol");
    const identities = h("div", {});
    const remove = h("button", {type: "button", class: "danger", onclick: () => busy(remove, deleteGallery)}, "Delete gallery");

    fill(detail,
      panel(`Gallery ${gallery.galleryId}`,
        h("dl", {class: "kv"},
          h("dt", {}, "Threshold"), h("dd", {}, `${Number(gallery.threshold).toFixed(2)} (a match is a distance below it)`),
          h("dt", {}, "Embedding model"), h("dd", {}, h("span", {class: "mono"}, gallery.embeddingModel)),
          h("dt", {}, "People"), h("dd", {}, String(gallery.identityCount))),
        h("div", {class: "actions"}, remove)),
      panel("Enrol a person",
        h("div", {class: "row"}, field("Identity id", identity), field("Name", name, "Kept as the identity's metadata")),
        picker.element,
        h("div", {class: "actions"}, enrol),
        verdicts,
        enrolErrors.element),
      panel("People", identities));

    async function enrolAll() {
      const id = identity.value.trim();
      if (!id) throw new Error("Give the person an identity id.");
      if (!picker.photos.length) throw new Error("Add at least one photo (or capture one).");
      fill(verdicts);
      let accepted = 0;
      for (const [i, photo] of picker.photos.entries()) {
        const thumb = picker.thumb(i);
        const body = {galleryId: gallery.galleryId, identityId: id, photos: [image(photo.bytes)]};
        if (name.value.trim()) body.metadata = {name: name.value.trim()};
        try {
          const answer = await call("faces", "Enroll", body);
          const face = answer.faces[0];
          accepted += 1;
          thumb?.classList.add("ok");
          thumb?.append(h("span", {class: "tag"}, "accepted"));
          verdicts.append(h("li", {}, badge("accepted", "good"), ` ${photo.name}: face ${(100 * face.score).toFixed(1)}%, ${Math.round(face.box.x2 - face.box.x1)} px wide`));
        } catch (error) {
          if (error.code === "unauthenticated") throw error;
          thumb?.classList.add("bad");
          thumb?.append(h("span", {class: "tag"}, "refused"));
          verdicts.append(h("li", {}, badge("refused", "bad"), ` ${photo.name}: ${error.message}`));
        }
      }
      if (accepted) toast(`${accepted} photo${accepted > 1 ? "s" : ""} enrolled for ${id}`, "good");
      await listIdentities();
    }

    async function deleteGallery() {
      if (!confirm(`Delete gallery ${gallery.galleryId} and everyone enrolled in it?`)) return;
      await call("faces", "DeleteGallery", {galleryId: gallery.galleryId});
      toast(`Gallery ${gallery.galleryId} deleted`);
      selected = "";
      await refresh();
    }

    async function listIdentities(token = "", rows = []) {
      const answer = await call("faces", "ListIdentities", {galleryId: gallery.galleryId, pageSize: 100, pageToken: token});
      rows = rows.concat(answer.identities || []);
      const more = answer.nextPageToken
        ? h("button", {type: "button", onclick: () => listIdentities(answer.nextPageToken, rows)}, "More") : null;
      fill(identities, table(["Identity", "Name", "Photos", "Enrolled", ""], rows.map((p) => {
        const del = h("button", {type: "button", class: "small danger", "aria-label": `Delete ${p.identityId}`,
          onclick: () => busy(del, async () => {
            if (!confirm(`Delete ${p.identityId} from ${gallery.galleryId}?`)) return;
            await call("faces", "DeleteIdentity", {galleryId: gallery.galleryId, identityId: p.identityId});
            toast(`${p.identityId} deleted`);
            await refresh();
          })}, "Delete");
        const first = Math.min(...p.templates.map((t) => Number(t.createdUnixMs)));
        return [h("strong", {}, p.identityId), p.metadata?.name || "", String(p.templates.length), time(first), del];
      }), {empty: "Nobody enrolled yet."}), more);
    }
    await listIdentities();
  }

  await refresh();
}
