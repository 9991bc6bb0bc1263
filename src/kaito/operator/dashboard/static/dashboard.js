// The local dashboard: polls /api/state every second and redraws. No framework, no build step.
// Text from the cluster (names, messages) is only ever set through textContent.
"use strict";

const POLL_MS = 1000;
const CHARTS = [
  { key: "tokens_per_s", label: "tokens/s", unit: "" },
  { key: "running", label: "running", unit: "" },
  { key: "waiting", label: "waiting", unit: "" },
  { key: "ttft_ms", label: "time to first token", unit: " ms" },
];

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("data-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const child of children) {
    if (child == null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function badge(item) {
  if (item.deleting) return el("span", { class: "badge wait" }, "deleting");
  if (item.ready) return el("span", { class: "badge ok" }, "ready");
  const failed = item.conditions.some((c) => c.type === "WorkspaceSucceeded" && c.status === "False"
    && c.reason && !/Pending|Progress|Waiting/.test(c.reason));
  return el("span", { class: failed ? "badge bad" : "badge wait" }, failed ? "not ready" : "pending");
}

function format(v, unit) {
  if (v == null) return "–";
  const n = Number(v);
  return (Math.abs(n) >= 100 ? n.toFixed(0) : Number.isInteger(n) ? String(n) : n.toFixed(1)) + unit;
}

function drawChart(canvas, points, key) {
  const ratio = window.devicePixelRatio || 1;
  const w = 200, h = 48;
  canvas.width = w * ratio; canvas.height = h * ratio;
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);
  ctx.clearRect(0, 0, w, h);
  ctx.strokeStyle = "#d9dee7"; ctx.lineWidth = 1;
  ctx.beginPath(); ctx.moveTo(0, h - 0.5); ctx.lineTo(w, h - 0.5); ctx.stroke();
  const values = points.map((p) => p[key]);
  const max = Math.max(1e-9, ...values.filter((v) => v != null));
  const n = 120;  // the server keeps two minutes: the newest point sits at the right edge
  const x = (i) => w - (values.length - 1 - i) * (w / (n - 1));
  ctx.strokeStyle = "#0969da"; ctx.lineWidth = 1.5;
  ctx.beginPath();
  let pen = false;
  values.forEach((v, i) => {
    if (v == null) { pen = false; return; }
    const y = h - 3 - (v / max) * (h - 8);
    if (pen) ctx.lineTo(x(i), y); else ctx.moveTo(x(i), y);
    pen = true;
  });
  ctx.stroke();
  return max;
}

function chartsFor(pod) {
  const box = el("div", { class: "charts" });
  const last = pod.metrics.length ? pod.metrics[pod.metrics.length - 1] : {};
  for (const spec of CHARTS) {
    const canvas = el("canvas", { "data-metric": spec.key, "data-points": String(pod.metrics.length),
      "data-last": last[spec.key] == null ? "" : String(last[spec.key]) });
    const peak = drawChart(canvas, pod.metrics, spec.key);
    box.append(el("div", { class: "chart", "data-chart": spec.key },
      el("div", { class: "label" }, el("span", {}, spec.label),
        el("span", { class: "value" }, format(last[spec.key], spec.unit))),
      canvas,
      el("div", { class: "label" }, el("span", {}, "2 min"), el("span", {}, "max " + format(peak > 1e-6 ? peak : 0, spec.unit)))));
  }
  return box;
}

function table(headers, rows) {
  return el("table", {}, el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, ...rows.map((r) => el("tr", {}, ...r))));
}

function card(kind, item) {
  const head = el("div", { class: "card-head" },
    el("span", { class: "name" }, item.name), badge(item),
    el("span", { class: "meta" }, `${kind.kind.toLowerCase()} · ${item.namespace} · ${item.summary || "-"} · ${item.age}`),
    item.endpoint ? el("a", { href: item.endpoint + "/ui", target: "_blank", class: "meta" }, item.endpoint) : null);
  const conditions = table(["CONDITION", "STATUS", "REASON", "MESSAGE"], item.conditions.map((c) => [
    el("td", {}, c.type), el("td", { class: "st-" + c.status }, c.status), el("td", {}, c.reason),
    el("td", { class: "msg" }, c.message)]));
  const pods = item.pods.length ? table(["POD", "PHASE", "READY", "RESTARTS", "ENDPOINT"], item.pods.map((p) => [
    el("td", {}, p.name), el("td", {}, p.phase + (p.reason ? ` (${p.reason})` : "")),
    el("td", { class: p.ready ? "st-True" : "st-False" }, p.ready ? "yes" : "no"), el("td", {}, p.restarts),
    el("td", {}, p.endpoint || "-")])) : el("div", { class: "empty" }, "no pods yet");
  const servers = item.pods.filter((p) => p.endpoint).map((p) =>
    el("div", { "data-server": p.name }, el("div", { class: "meta" }, "model server " + p.name), chartsFor(p)));
  const events = el("details", { open: true }, el("summary", {}, `events (${item.events.length})`),
    item.events.length ? table(["TYPE", "REASON", "OBJECT", "MESSAGE"], item.events.map((e) => [
      el("td", { class: e.type === "Warning" ? "st-False" : "" }, e.type), el("td", {}, e.reason),
      el("td", {}, e.object), el("td", { class: "msg" }, e.message + (e.count > 1 ? ` (x${e.count})` : ""))]))
      : el("div", { class: "empty" }, "none"));
  return el("section", { class: "card", "data-kind": kind.kind, "data-name": item.name,
    "data-ready": String(item.ready) }, head, conditions, pods, ...servers, events);
}

function render(snapshot) {
  const root = document.getElementById("kinds");
  const open = new Set([...root.querySelectorAll("details:not([open])")].map((d) => d.closest(".card")?.dataset.name));
  root.replaceChildren(...snapshot.kinds.map((kind) => el("div", { "data-kind-list": kind.kind },
    el("h2", {}, `${kind.kind}s (${kind.items.length})`),
    ...(kind.items.length ? kind.items.map((item) => card(kind, item))
      : [el("div", { class: "empty" }, `no ${kind.plural} yet: kaito apply -f FILE`)]))));
  for (const c of root.querySelectorAll(".card")) {  // keep what the user folded folded
    if (open.has(c.dataset.name)) c.querySelector("details").open = false;
  }
}

async function poll() {
  const status = document.getElementById("status");
  try {
    const resp = await fetch("/api/state", { cache: "no-store" });
    if (!resp.ok) throw new Error("HTTP " + resp.status);
    const snapshot = await resp.json();
    if (snapshot.generated) {
      render(snapshot);
      status.textContent = "updated " + new Date().toLocaleTimeString();
      status.className = "status";
    }
  } catch (err) {
    status.textContent = "control plane unreachable (" + err.message + "): is `kaito up` running?";
    status.className = "status error";
  }
  setTimeout(poll, POLL_MS);
}

poll();
