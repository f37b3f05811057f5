// The console's shell: sign-in with an API key (kept in sessionStorage), the sidebar of pages, a hash router
// (#/detect ...). Each page module exports `render(main)`, which may return a function that stops what the
// page started (camera, event streams) when another page opens.

import {ApiError, call, onSignedOut, session} from "./api.js";
import {h, toast} from "./ui.js";
import * as classifiers from "./pages/classifiers.js";
import * as detect from "./pages/detect.js";
import * as doors from "./pages/doors.js";
import * as galleries from "./pages/galleries.js";
import * as models from "./pages/models.js";
import * as style from "./pages/style.js";
import * as verify from "./pages/verify.js";

const ICONS = {
  detect: "M3 7V4h3M17 4h3v3M21 17v3h-3M7 20H4v-3M8 8h8v8H8z",
  galleries: "M4 5h16v14H4zM8 14l3-3 3 3 2-2 3 3M9 9.5a1 1 0 1 0 0-.01",
  verify: "M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8zM4 21c0-4 4-6 8-6M15 19l2 2 4-4",
  doors: "M6 21V4h12v17M3 21h18M14 12h.01",
  style: "M12 3a9 9 0 1 0 0 18c1 0 1.5-.8 1.5-1.5 0-1-1-1.2-1-2.2 0-.8.7-1.3 1.5-1.3H16a5 5 0 0 0 5-5c0-4.4-4-8-9-8zM7.5 11h.01M10 7h.01M15 7h.01",
  classifiers: "M4 6h16M4 12h10M4 18h6M17 15l2 2 3-4",
  models: "M12 3l8 4.5v9L12 21l-8-4.5v-9zM12 12l8-4.5M12 12v9M12 12L4 7.5",
};

export const PAGES = [
  ["detect", "Detection", detect],
  ["galleries", "Galleries", galleries],
  ["verify", "Verify & identify", verify],
  ["doors", "Doors", doors],
  ["style", "Style", style],
  ["classifiers", "Classifiers", classifiers],
  ["models", "Models", models],
];

const $ = (id) => document.getElementById(id);
let stopPage = null;

function icon(name) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
  path.setAttribute("d", ICONS[name]);
  path.setAttribute("fill", "none");
  path.setAttribute("stroke", "currentColor");
  path.setAttribute("stroke-width", "1.8");
  path.setAttribute("stroke-linecap", "round");
  path.setAttribute("stroke-linejoin", "round");
  svg.append(path);
  return svg;
}

function buildNav() {
  $("nav").replaceChildren(...PAGES.map(([id, title]) =>
    h("li", {}, h("a", {href: `#/${id}`, dataset: {page: id}}, icon(id), h("span", {}, title)))));
}

function showSignIn(message = "") {
  stopPage?.();
  stopPage = null;
  $("shell").hidden = true;
  $("signin").hidden = false;
  $("signin-error").textContent = message;
  $("signin-key").focus();
}

async function route() {
  if (!session.key) { showSignIn(); return; }
  const id = (location.hash.match(/^#\/([a-z]+)/) || [])[1] || PAGES[0][0];
  const page = PAGES.find((p) => p[0] === id) || PAGES[0];
  stopPage?.();
  stopPage = null;
  $("signin").hidden = true;
  $("shell").hidden = false;
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.page === page[0]) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${page[1]} · Fovea console`;
  const main = $("main");
  main.replaceChildren();
  try {
    stopPage = (await page[2].render(main)) || null;
  } catch (error) {
    if (!(error instanceof ApiError && error.code === "unauthenticated")) {
      main.append(h("p", {class: "error", role: "alert"}, error.message || String(error)));
    }
  }
  main.focus({preventScroll: true});
}

async function signIn(event) {
  event.preventDefault();
  const key = $("signin-key").value.trim();
  if (!key) return;
  session.set(key);
  const button = event.target.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    // Any call tells a valid key from a refused one: 401 is a bad key, 403 a valid key without this scope.
    await call("models", "ListModels", {});
  } catch (error) {
    if (error.code === "unauthenticated" || error.code === "unavailable") {
      session.clear();
      $("signin-error").textContent = error.message;
      return;
    }
  } finally {
    button.disabled = false;
  }
  $("signin-key").value = "";
  if (!location.hash) location.hash = `#/${PAGES[0][0]}`;
  route();
}

onSignedOut((error) => {
  session.clear();
  showSignIn(`Signed out: ${error.message}`);
  toast("The gateway refused the API key: sign in again.", "bad");
});

buildNav();
$("signin-form").addEventListener("submit", signIn);
$("signout").addEventListener("click", () => { session.clear(); showSignIn(); });
window.addEventListener("hashchange", route);
route();
