// The chat page: the OpenAI API of the server that serves it (or of ?api=URL), streamed as
// server-sent events; a RAG service's indexes and source nodes when /indexes answers.
// No framework, no build step. Model output is only ever set through textContent.
"use strict";

const params = new URLSearchParams(location.search);
const API = (params.get("api") || "").replace(/\/+$/, "");
const $ = (id) => document.getElementById(id);
const history = [];  // {role, content} of the conversation so far
let controller = null;  // the AbortController of the answer being streamed

$("api_key").value = sessionStorage.getItem("kaito-api-key") || "";
$("api_key").addEventListener("change", () => sessionStorage.setItem("kaito-api-key", $("api_key").value));

function headers() {
  const h = { "Content-Type": "application/json" };
  if ($("api_key").value) h.Authorization = "Bearer " + $("api_key").value;
  return h;
}

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text != null) node.textContent = text;
  return node;
}

async function loadModels() {
  const select = $("model");
  try {
    const resp = await fetch(API + "/v1/models", { headers: headers() });
    if (!resp.ok) throw new Error("HTTP " + resp.status);
    const models = (await resp.json()).data || [];
    select.replaceChildren(...models.map((m) => {
      const option = el("option", null, m.parent ? `${m.id} (adapter of ${m.parent})` : m.id);
      option.value = m.id;
      return option;
    }));
    $("server").textContent = (API || location.origin) + " · " + models.length + " model(s)";
  } catch (err) {
    const option = el("option", null, "the service's default model");
    option.value = "";
    select.replaceChildren(option);
    $("server").textContent = (API || location.origin) + " (no model list: " + err.message + ")";
  }
}

async function loadIndexes() {
  try {
    const resp = await fetch(API + "/indexes", { headers: headers() });
    if (!resp.ok) return;  // a model server: no RAG here
    const names = await resp.json();
    if (!Array.isArray(names)) return;
    for (const name of names) {
      const option = el("option", null, name);
      option.value = name;
      $("index").append(option);
    }
    $("index-row").hidden = false;
    if (names.length) $("index").value = params.get("index") || names[0];
  } catch (err) { /* not a RAG service */ }
}

function addMessage(role, text) {
  const box = el("div", "msg " + role);
  const who = el("div", "who");
  who.append(el("span", null, role === "user" ? "you" : ($("model").value || "assistant")));
  const body = el("div", "text", text);
  box.append(who, body);
  if (role === "assistant") {
    const copy = el("button", "copy", "copy");
    copy.type = "button";
    copy.addEventListener("click", async () => {
      await copyText(body.textContent);
      copy.textContent = "copied";
      setTimeout(() => { copy.textContent = "copy"; }, 1500);
    });
    who.append(copy);
    box.dataset.chunks = "0";
  }
  $("messages").append(box);
  box.scrollIntoView({ block: "end" });
  return box;
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
  } catch (err) {  // no clipboard permission: the old way
    const area = el("textarea", null, null);
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
}

function buildBody(stream) {
  const body = { messages: [], stream };
  if ($("model").value) body.model = $("model").value;
  if ($("system").value.trim()) body.messages.push({ role: "system", content: $("system").value.trim() });
  body.messages.push(...history);
  for (const key of ["temperature", "top_p", "max_tokens", "seed"]) {
    const value = $(key).value;
    if (value !== "") body[key] = Number(value);
  }
  if ($("index").value) body.index_name = $("index").value;
  return body;
}

function showSources(box, nodes) {
  if (!Array.isArray(nodes) || !nodes.length) return;
  const details = el("details", "sources");
  details.open = true;
  details.append(el("summary", null, `sources (${nodes.length})`));
  const list = el("ol");
  for (const n of nodes) {
    const item = el("li");
    item.append(el("span", "score", (n.score != null ? Number(n.score).toFixed(3) : "") + " "));
    item.append(el("span", null, (n.text || "").slice(0, 400)));
    if (n.doc_id) item.append(el("span", "score", " · " + n.doc_id));
    list.append(item);
  }
  details.append(list);
  box.append(details);
}

async function readStream(resp, box, text) {
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    box.dataset.reads = String(Number(box.dataset.reads || 0) + 1);  // network reads: proof of streaming
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") return;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message || "the server stopped the answer");
        const delta = (chunk.choices && chunk.choices[0] && chunk.choices[0].delta) || {};
        if (delta.content) {
          text.textContent += delta.content;
          box.dataset.chunks = String(Number(box.dataset.chunks) + 1);
          box.scrollIntoView({ block: "end" });
        }
      }
    }
  }
}

async function send(prompt) {
  history.push({ role: "user", content: prompt });
  addMessage("user", prompt);
  const box = addMessage("assistant", "");
  const text = box.querySelector(".text");
  const stream = !$("index").value;  // KAITO's RAG answers with an index as one JSON document
  box.dataset.state = "streaming";
  controller = new AbortController();
  $("send").disabled = true;
  $("stop").hidden = false;
  try {
    const resp = await fetch(API + "/v1/chat/completions", {
      method: "POST", headers: headers(), body: JSON.stringify(buildBody(stream)), signal: controller.signal });
    if (!resp.ok) {
      const err = await resp.json().catch(() => ({}));
      throw new Error((err.error && err.error.message) || err.detail || "HTTP " + resp.status);
    }
    if (stream) {
      await readStream(resp, box, text);
    } else {
      const answer = await resp.json();
      text.textContent = answer.choices[0].message.content;
      box.dataset.chunks = "1";
      showSources(box, answer.source_nodes);
    }
    box.dataset.state = "done";
  } catch (err) {
    if (err.name === "AbortError") {
      box.dataset.state = "stopped";
      box.append(el("div", "note", "stopped"));
    } else {
      box.dataset.state = "error";
      text.textContent = (text.textContent ? text.textContent + "\n" : "") + "error: " + err.message;
    }
  } finally {
    controller = null;
    $("send").disabled = false;
    $("stop").hidden = true;
  }
  if (box.dataset.state !== "error") history.push({ role: "assistant", content: text.textContent });
  else history.pop();  // the question stays on screen; it is not sent again
}

$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const prompt = $("prompt").value.trim();
  if (!prompt || controller) return;
  $("prompt").value = "";
  send(prompt);
});
$("prompt").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    $("composer").requestSubmit();
  }
});
$("stop").addEventListener("click", () => { if (controller) controller.abort(); });
$("clear").addEventListener("click", () => {
  if (controller) controller.abort();
  history.length = 0;
  $("messages").replaceChildren();
});

loadModels();
loadIndexes();
