"""``/docs``: a page to read and try every method, built in the browser from ``/openapi.json``.

Self-contained (no CDN, no vendored bundle, works offline): pick a method, fill in the JSON body (an example
is drafted from the schema; a file can be put into any bytes field as base64), send it with your API key,
read the answer; server streams print each event as it arrives.
"""

DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Fovea HTTP API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:1em;color:#222}
h1{font-size:1.3em}label{display:block;margin:.6em 0 .2em;font-weight:600}
input,select,textarea{font:13px ui-monospace,monospace;width:100%;box-sizing:border-box;padding:.3em}
textarea{height:16em}pre{background:#f4f4f4;padding:.6em;overflow:auto;max-height:30em;white-space:pre-wrap}
button{margin:.6em .4em 0 0;padding:.4em 1.2em}.row{display:flex;gap:1em}.row>*{flex:1}
#desc{white-space:pre-wrap;color:#444}.muted{color:#777}
</style></head><body>
<h1>Fovea HTTP API</h1>
<p class="muted">Every gRPC method as <code>POST /&lt;package&gt;.&lt;Service&gt;/&lt;Method&gt;</code> with a JSON body
(the Connect protocol). Schema: <a href="/openapi.json">/openapi.json</a>.</p>
<div class="row"><div><label for="key">API key (Authorization: Bearer)</label><input id="key" type="password" autocomplete="off"></div>
<div><label for="timeout">Connect-Timeout-Ms (optional)</label><input id="timeout" placeholder="60000"></div></div>
<label for="method">Method</label><select id="method"></select>
<p id="desc"></p>
<label for="body">Request body (JSON)</label><textarea id="body" spellcheck="false"></textarea>
<div class="row"><div><label for="field">Bytes field</label><select id="field"></select></div>
<div><label for="file">File into that field (base64)</label><input id="file" type="file"></div></div>
<button id="send">Send</button><button id="stop" disabled>Stop</button>
<label>Response</label><pre id="out"></pre>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let spec = null, controller = null;
const keyBox = $("key");
keyBox.value = sessionStorage.getItem("fovea-key") || "";
keyBox.onchange = () => sessionStorage.setItem("fovea-key", keyBox.value);
function resolve(s) {
  while (s && s.$ref) s = spec.components.schemas[s.$ref.split("/").pop()];
  if (s && s.allOf) return resolve(s.allOf[0]);
  return s || {};
}
function draft(schema, path, bytes, depth) {
  const s = resolve(schema);
  if (s.format === "byte") { bytes.push(path); return ""; }
  if (s.enum) return s.enum[0];
  if (s.type === "array") { const item = draft(s.items, path.concat([0]), bytes, depth + 1); return item === "" || depth > 3 ? [] : [item]; }
  if (s.type === "object" && s.properties) {
    if (depth > 3) return {};
    const out = {}, oneofs = new Set();
    for (const [k, v] of Object.entries(s.properties)) {
      // a draft leaves out proto3 optionals, all but the first of a oneof, and messages without an image
      if (v["x-optional"] || oneofs.has(v["x-oneof"])) continue;
      if (v["x-oneof"]) oneofs.add(v["x-oneof"]);
      const before = bytes.length, value = draft(v, path.concat([k]), bytes, depth + 1);
      const inner = resolve(v);
      if (inner.type === "object" && inner.properties && bytes.length === before) continue;
      out[k] = value;
    }
    return out;
  }
  if (s.type === "object") return {};
  if (s.type === "integer" || s.type === "number") return 0;
  if (s.type === "boolean") return false;
  return "";
}
function show(path) {
  const op = spec.paths[path].post;
  $("desc").textContent = op.description || "";
  const bytes = [];
  const schema = op.requestBody.content["application/json"].schema;
  $("body").value = JSON.stringify(draft(schema, [], bytes, 0), null, 2);
  $("field").replaceChildren(...bytes.map((p) => new Option(p.join("."), JSON.stringify(p))));
}
$("file").onchange = async () => {
  const file = $("file").files[0];
  if (!file || !$("field").value) return;
  const data = new Uint8Array(await file.arrayBuffer());
  let text = "";
  for (let i = 0; i < data.length; i += 0x8000) text += String.fromCharCode.apply(null, data.subarray(i, i + 0x8000));
  const body = JSON.parse($("body").value || "{}");
  const path = JSON.parse($("field").value);
  let node = body;
  for (const step of path.slice(0, -1)) { if (node[step] === undefined) node[step] = typeof step === "number" ? [] : {}; node = node[step]; }
  node[path[path.length - 1]] = btoa(text);
  $("body").value = JSON.stringify(body, null, 2);
};
$("send").onclick = async () => {
  const path = $("method").value, op = spec.paths[path].post;
  const streaming = "text/event-stream" in (op.responses["200"].content || {});
  const headers = {"content-type": "application/json"};
  if (keyBox.value) headers.authorization = "Bearer " + keyBox.value;
  if ($("timeout").value) headers["connect-timeout-ms"] = $("timeout").value;
  if (streaming) headers.accept = "text/event-stream";
  controller = new AbortController();
  $("stop").disabled = false;
  const out = $("out");
  out.textContent = "…";
  try {
    const response = await fetch(path, {method: "POST", headers, body: $("body").value, signal: controller.signal});
    const id = response.headers.get("x-request-id");
    out.textContent = "HTTP " + response.status + (id ? "  x-request-id: " + id : "") + "\\n\\n";
    if (!streaming) {
      const text = await response.text();
      try { out.textContent += JSON.stringify(JSON.parse(text), null, 2); } catch (e) { out.textContent += text; }
      return;
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    for (;;) { const {value, done} = await reader.read(); if (done) break; out.textContent += value; }
  } catch (e) {
    out.textContent += "\\n" + e;
  } finally {
    $("stop").disabled = true;
  }
};
$("stop").onclick = () => controller && controller.abort();
$("method").onchange = () => show($("method").value);
fetch("/openapi.json").then((r) => r.json()).then((s) => {
  spec = s;
  for (const [path, item] of Object.entries(s.paths)) {
    const op = item.post;
    $("method").add(new Option(op.tags[0] + " / " + path.split("/").pop() + " — " + op.summary, path));
  }
  show($("method").value);
});
</script></body></html>
"""
