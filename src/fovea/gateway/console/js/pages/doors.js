// Doors: what each door's records show of its policy, a burst sent to a door (with its challenge when the
// door asks for one), the live event feed (WatchEvents as server-sent events, resumed after each deadline)
// and the audit log with filters.

import {call, image, stream} from "../api.js";
import {badge, busy, checkbox, errorLine, field, fill, h, imagePicker, options, pageHead, panel, table, time} from "../ui.js";

// The passive check's part of a decision ("" when the door ran none): check, burst score against threshold.
function passiveText(p) {
  if (!p || !p.check) return "";
  return `passive ${p.check}: ${Number(p.score).toFixed(3)} ${p.attack ? "<" : ">="} ${Number(p.threshold).toFixed(2)}`;
}

const KINDS = ["access_granted", "access_denied", "pad_failed", "unknown_face", "enrolled", "identity_deleted", "template_deleted"];

function decisionBadge(decision) {
  if (decision === "GRANT") return badge("GRANT", "good");
  if (decision === "DENY") return badge("DENY", "bad");
  return badge("—");
}

export async function render(main) {
  const doorsBox = h("div", {});
  const auditBox = h("div", {});
  const feed = h("ul", {class: "feed", "aria-label": "Live events", "aria-live": "polite"});
  const feedState = h("span", {class: "small muted"});
  let controller = null;
  let lastEventId = "";

  // ----------------------------------------------------------------------------- try a door
  const door = h("input", {type: "text", list: "door-ids", autocomplete: "off", placeholder: "front"});
  const doorIds = h("datalist", {id: "door-ids"});
  const gallery = h("select", {});
  const identity = h("input", {type: "text", autocomplete: "off", placeholder: "alice"});
  const frames = imagePicker({label: "Frames of the burst", multiple: true});
  const tryErrors = errorLine();
  const challengeBox = h("div", {"aria-live": "polite"});
  const decisionBox = h("div", {"aria-live": "polite"});
  let challenge = null;
  const begin = h("button", {type: "button", onclick: () => busy(begin, beginAccess, tryErrors)}, "Begin a challenge");
  const send = h("button", {type: "button", class: "primary", onclick: () => busy(send, verifyAccess, tryErrors)}, "Send the burst");

  async function beginAccess() {
    const answer = await call("faces", "BeginAccess", {doorId: door.value.trim()});
    challenge = answer;
    fill(challengeBox, h("div", {class: "verdict"}, h("strong", {}, answer.instruction),
      h("span", {class: "small"}, `challenge ${answer.kind}, valid until ${new Date(Number(answer.expiresUnixMs)).toLocaleTimeString()}: capture the burst now`)));
  }

  async function verifyAccess() {
    if (!frames.photos.length) throw new Error("Add the burst's frames (photos or camera captures).");
    const body = {doorId: door.value.trim(), galleryId: gallery.value, claimedIdentityId: identity.value.trim(),
      frames: frames.photos.map((p) => image(p.bytes))};
    if (challenge && challenge.doorId === body.doorId) body.challenge = {challengeId: challenge.challengeId, token: challenge.token};
    const answer = await call("faces", "VerifyAccess", body);
    challenge = null;
    fill(challengeBox);
    const ok = answer.decision === "GRANT";
    const pad = answer.pad && answer.pad.verdict !== "PAD_NOT_CHECKED" ? `PAD ${answer.pad.check}: ${answer.pad.verdict.replace("PAD_", "")}` : "";
    const passive = passiveText(answer.passive);
    fill(decisionBox, h("div", {class: `verdict ${ok ? "good" : "bad"}`},
      h("strong", {}, ok ? "GRANT" : "DENY"),
      h("span", {}, answer.reason),
      h("div", {class: "small muted"}, [`reason: ${answer.reasonKind}`, pad, passive, answer.challenge?.challengeId ? `challenge ${answer.challenge.kind}: ${answer.challenge.met ? "met" : "not met"}` : "", `audit ${answer.auditId}`].filter(Boolean).join(" · "))));
    await Promise.all([loadDoors(), loadAudit()]);
  }

  // ----------------------------------------------------------------------------- audit log
  const auditDoor = h("select", {});
  const auditDecision = options(h("select", {}), [["", "Any"], ["GRANT", "GRANT"], ["DENY", "DENY"]]);
  const auditKind = h("input", {type: "text", placeholder: "no_match, pad ...", autocomplete: "off"});
  const auditLimit = h("input", {type: "number", min: 1, max: 1000, value: 50});
  const auditErrors = errorLine();
  const auditButton = h("button", {type: "button", onclick: () => busy(auditButton, loadAudit, auditErrors)}, "Apply");
  for (const control of [auditDoor, auditDecision]) control.addEventListener("change", () => loadAudit().catch((e) => auditErrors.show(e)));

  async function loadAudit() {
    const answer = await call("faces", "ListAuditRecords", {doorId: auditDoor.value, limit: Number(auditLimit.value) || 50});
    const kinds = auditKind.value.split(",").map((k) => k.trim()).filter(Boolean);
    const records = (answer.records || []).filter((r) =>
      (!auditDecision.value || r.decision === auditDecision.value) && (!kinds.length || kinds.includes(r.reasonKind)));
    fill(auditBox, table(["Time", "Door", "Identity", "Decision", "Why", "Distance", "PAD", "Frames"], records.map((r) => [
      time(r.unixMs), h("strong", {}, r.doorId), r.claimedIdentityId, decisionBadge(r.decision),
      h("span", {title: r.reason}, badge(r.reasonKind || "—", r.decision === "GRANT" ? "good" : ""), " ", h("span", {class: "small"}, r.reason)),
      Number(r.distance) >= 0 ? Number(r.distance).toFixed(3) : "",
      [r.pad && r.pad.verdict && r.pad.verdict !== "PAD_NOT_CHECKED" ? `${r.pad.check} ${r.pad.verdict.replace("PAD_", "")}` : "",
        passiveText(r.passive)].filter(Boolean).join(" · "),
      `${r.matchingFrames}/${r.frameCount}`,
    ]), {empty: "No audit record matches."}));
  }

  // ----------------------------------------------------------------------------- doors seen
  async function loadDoors() {
    const answer = await call("faces", "ListAuditRecords", {limit: 1000});
    const doors = new Map();
    for (const r of answer.records || []) {  // newest first
      const d = doors.get(r.doorId) || {id: r.doorId, last: r, grant: 0, deny: 0, pad: new Set(), challenge: new Set(), gallery: new Set()};
      if (r.decision === "GRANT") d.grant += 1; else d.deny += 1;
      if (r.pad?.check && r.pad.verdict !== "PAD_NOT_CHECKED") d.pad.add(r.pad.check);
      if (r.passive?.check) d.pad.add(`passive ${r.passive.check}`);
      if (r.challenge?.kind) d.challenge.add(r.challenge.kind);
      if (r.reasonKind?.startsWith("challenge_")) d.challenge.add("required");
      if (r.reasonKind === "closed_hours") d.closed = true;
      if (r.galleryId) d.gallery.add(r.galleryId);
      doors.set(r.doorId, d);
    }
    const list = [...doors.values()].filter((d) => d.id !== "-");
    fill(doorIds, list.map((d) => h("option", {value: d.id})));
    const current = auditDoor.value;
    options(auditDoor, [["", "Every door"], ...list.map((d) => [d.id, d.id])], current);
    fill(doorsBox, table(["Door", "Last decision", "When", "Granted / denied", "What its records show"], list.map((d) => [
      h("strong", {}, d.id), decisionBadge(d.last.decision), time(d.last.unixMs), `${d.grant} / ${d.deny}`,
      [d.pad.size ? `PAD ${[...d.pad].join("+")}` : "", d.challenge.size ? `challenge ${[...d.challenge].join(", ")}` : "",
        d.closed ? "closed hours" : "", d.gallery.size ? `gallery ${[...d.gallery].join(", ")}` : ""].filter(Boolean).join(" · ") || "match only",
    ]), {caption: "From the last 1,000 audit records", empty: "No door has been used yet: send a burst below."}));
  }

  // ----------------------------------------------------------------------------- live events
  const feedDoor = h("input", {type: "text", list: "door-ids", autocomplete: "off", placeholder: "every door"});
  const kindBoxes = KINDS.map((k) => ({kind: k, ...checkbox(k, k.startsWith("access") || k === "pad_failed" || k === "unknown_face")}));
  const toggle = h("button", {type: "button", onclick: () => (controller ? stop() : watch())}, "Pause");

  function event(e) {
    const kind = e.kind;
    const tone = kind === "access_granted" || kind === "enrolled" ? "good" : kind === "access_denied" || kind === "pad_failed" ? "bad" : "warn";
    const where = e.doorId ? `door ${e.doorId}` : `gallery ${e.galleryId}`;
    const item = h("li", {class: "new"}, badge(kind, tone),
      h("div", {}, h("strong", {}, `${where}${e.identityId ? ` · ${e.identityId}` : ""}`),
        h("div", {class: "small muted"}, e.reason || e.reasonKind || "")),
      h("span", {class: "small muted"}, new Date(Number(e.unixMs)).toLocaleTimeString()));
    feed.prepend(item);
    while (feed.children.length > 200) feed.lastChild.remove();
    feed.querySelector(".empty")?.remove();
  }

  async function watch() {
    controller = new AbortController();
    const signal = controller.signal;
    toggle.textContent = "Pause";
    const body = {
      doorIds: feedDoor.value.trim() ? [feedDoor.value.trim()] : [],
      kinds: kindBoxes.filter((k) => k.input.checked).map((k) => k.kind),
      afterEventId: lastEventId,
    };
    feedState.textContent = "live";
    while (!signal.aborted) {
      try {
        for await (const e of stream("faces", "WatchEvents", {...body, afterEventId: lastEventId}, {signal, timeoutMs: 300000})) {
          lastEventId = e.eventId;
          event(e);
          if (e.doorId && ["access_granted", "access_denied"].includes(e.kind)) loadDoors().catch(() => {});
        }
      } catch (error) {
        if (signal.aborted) break;
        if (error.code === "unauthenticated") return;
        if (error.code !== "deadline_exceeded") {
          feedState.textContent = `reconnecting: ${error.message}`;
          await new Promise((r) => setTimeout(r, 2000));
        }
      }
    }
  }
  function stop() {
    controller?.abort();
    controller = null;
    toggle.textContent = "Resume";
    feedState.textContent = "paused";
  }
  const restart = () => { stop(); lastEventId = ""; watch(); };
  feedDoor.addEventListener("change", restart);
  kindBoxes.forEach((k) => k.input.addEventListener("change", restart));

  main.append(
    pageHead("Doors", "Door access decisions as the faces service records them. Policies live in the service's policy file (FOVEA_FACES_DOOR_POLICIES_FILE); the service exposes them through what each decision records: the PAD check, the challenge, the opening hours, the door's gallery."),
    panel("Doors", doorsBox),
    h("div", {class: "grid2"},
      panel("Send a burst to a door",
        h("div", {class: "row"}, field("Door", door), field("Gallery", gallery)), doorIds,
        field("Claimed identity", identity),
        frames.element,
        h("div", {class: "actions"}, begin, send),
        challengeBox, decisionBox, tryErrors.element),
      panel("Live events",
        h("div", {class: "row"}, field("Door", feedDoor)),
        h("fieldset", {class: "row"}, h("legend", {class: "label"}, "Kinds"), kindBoxes.map((k) => k.element)),
        h("div", {class: "actions"}, toggle, feedState),
        feed)),
    panel("Audit log",
      h("div", {class: "row"}, field("Door", auditDoor), field("Decision", auditDecision), field("Reason kinds", auditKind), field("Newest", auditLimit),
        h("div", {class: "field"}, auditButton)),
      auditErrors.element,
      auditBox));

  feed.append(h("li", {class: "empty"}, "Waiting for events…"));
  const galleries = await call("faces", "ListGalleries", {});
  options(gallery, [["", "The door's own"], ...(galleries.galleries || []).map((g) => [g.galleryId, g.galleryId])]);
  await Promise.all([loadDoors(), loadAudit()]);
  watch();
  return () => { stop(); frames.stop(); };
}
