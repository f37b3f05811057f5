// Every call of the console: Connect JSON over HTTP, `POST /<package>.<Service>/<Method>` with the API key as
// `Authorization: Bearer <key>` (the gateway's HTTP port serves this page, so the origin is the same). Server
// streams come as server-sent events, read from fetch (EventSource cannot POST). A 401 signs out.

export const SERVICES = {
  detection: "fovea.detection.v1.DetectionService",
  faces: "fovea.faces.v1.FacesService",
  style: "fovea.style.v1.StyleService",
  classify: "fovea.classify.v1.ClassifyService",
  models: "fovea.models.v1.ModelsService",
};

const KEY = "fovea-console-key";

export const session = {
  get key() { return sessionStorage.getItem(KEY) || ""; },
  set(key) { sessionStorage.setItem(KEY, key); },
  clear() { sessionStorage.removeItem(KEY); },
};

/** A failed call: `code` is the Connect code (unauthenticated, permission_denied, invalid_argument, ...). */
export class ApiError extends Error {
  constructor(code, message, status = 0) {
    super(message || code);
    this.code = code;
    this.status = status;
  }
}

let signedOut = () => {};
/** `fn(error)` runs when the gateway refuses the key (401): the console goes back to sign-in. */
export function onSignedOut(fn) { signedOut = fn; }

function headers(extra = {}) {
  return {"content-type": "application/json", authorization: `Bearer ${session.key}`, ...extra};
}

function refused(code, message, status) {
  const error = new ApiError(code, message, status);
  if (code === "unauthenticated") signedOut(error);
  return error;
}

async function failure(response) {
  const text = await response.text();
  let body = {};
  try { body = JSON.parse(text); } catch { body = {message: text.slice(0, 300)}; }
  return refused(body.code || `http_${response.status}`, body.message || response.statusText, response.status);
}

/** One unary call: the answer as JSON, or an ApiError. */
export async function call(service, method, body = {}, {signal} = {}) {
  let response;
  try {
    response = await fetch(`/${SERVICES[service]}/${method}`, {
      method: "POST", headers: headers(), body: JSON.stringify(body), signal,
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError("unavailable", `the gateway did not answer: ${error.message}`);
  }
  if (!response.ok) throw await failure(response);
  return response.json();
}

/** A server stream as server-sent events: yields each message; ends at `event: end`, throws at `event: error`.
 * `timeoutMs` asks the gateway for that deadline (Connect-Timeout-Ms). */
export async function* stream(service, method, body = {}, {signal, timeoutMs} = {}) {
  const extra = {accept: "text/event-stream"};
  if (timeoutMs) extra["connect-timeout-ms"] = String(timeoutMs);
  const response = await fetch(`/${SERVICES[service]}/${method}`, {
    method: "POST", headers: headers(extra), body: JSON.stringify(body), signal,
  });
  if (!response.ok) throw await failure(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const {value, done} = await reader.read();
      if (done) return;
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let event = "message", data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data += line.slice(5).trim();
        }
        if (event === "end") return;
        const parsed = data ? JSON.parse(data) : {};
        if (event === "error") throw refused(parsed.code || "unknown", parsed.message || "stream failed", 200);
        yield parsed;
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

/** Bytes (Uint8Array) as standard base64, in chunks (a photo is larger than one call's argument limit). */
export function toBase64(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

/** An image message of the API: `{data: <base64>}`. */
export function image(bytes) { return {data: toBase64(bytes)}; }

/** A PNG or JPEG field of an answer (base64) as a URL an <img> can show. */
export function pngUrl(base64, mime = "image/png") { return base64 ? `data:${mime};base64,${base64}` : ""; }
