// The Nova console: a page of the gateway that talks to the gateway's own API.
//
// Safety rules this file keeps (and the page's Content-Security-Policy enforces):
// - every piece of data reaches the page as text (textContent, text nodes, attribute values
//   of fixed names); nothing is ever parsed as HTML: the policy requires Trusted Types and
//   allows no policy, so an innerHTML assignment would throw;
// - the token lives in this module's memory only: no cookie, no storage, never in a URL.

const TOPICS = ["pipeline.start", "lane.complete", "pipeline.complete", "checkpoint.created",
  "checkpoint.decided", "budget.warning", "budget.exceeded", "provider.health"];
const LANES = ["A", "B", "C", "D", "E", "F", "G"];
const MAX_ROWS = 50;
const SEEN_MAX = 5000;

const state = {
  token: null, me: null, ws: null, position: null, since: null, retry: 0,
  seen: new Set(), seenOrder: [], threads: new Map(), rows: new Map(), expiry: null,
  inboxTimer: null,
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else node.setAttribute(name, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

function when(value) {
  if (value === null || value === undefined) return "";
  const date = typeof value === "number" ? new Date(value) : new Date(String(value));
  if (Number.isNaN(date.getTime())) return String(value);
  return date.toISOString().replace("T", " ").slice(0, 19) + " UTC";
}

function money(value) {
  return value === null || value === undefined ? "" : `$${Number(value).toFixed(4)}`;
}

// -- the API ----------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

async function api(path, options = {}) {
  const headers = { Accept: "application/json" };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method: options.method || "GET", headers, credentials: "omit", cache: "no-store",
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = null; }
  if (!response.ok) {
    const detail = body && (body.detail || body.title) ? (body.detail || body.title)
      : `HTTP ${response.status}`;
    if (response.status === 401 && state.token) signOut("Your session has ended; sign in again.");
    throw new ApiError(response.status, detail);
  }
  return body;
}

// -- signing in and out -----------------------------------------------------------------
async function signIn(event) {
  event.preventDefault();
  const input = $("api-key");
  const key = input.value.trim();
  input.value = "";
  $("sign-in-error").textContent = "";
  if (!key) {
    $("sign-in-error").textContent = "Enter an API key.";
    input.focus();
    return;
  }
  try {
    const issued = await api("/api/v2/auth/token", { method: "POST", body: { api_key: key } });
    state.token = issued.access_token;
    state.me = await api("/api/v2/auth/me");
    state.expiry = setTimeout(() => signOut("Your session has expired; sign in again."),
      issued.expires_in * 1000);
  } catch (error) {
    state.token = null;
    $("sign-in-error").textContent = `Sign-in failed: ${error.message}`;
    input.focus();
    return;
  }
  $("who").textContent = `${state.me.sub} · ${state.me.identity} · ${state.me.roles.join(", ")}`;
  $("sign-in").hidden = true;
  $("app").hidden = false;
  $("sign-out").hidden = false;
  connect();
  loadInbox();
  $("tab-approvals").focus();
}

function signOut(message = "") {
  state.token = null;
  state.me = null;
  clearTimeout(state.expiry);
  if (state.ws) state.ws.close(1000, "signed out");
  state.ws = null;
  state.position = null;
  state.since = null;
  state.rows.clear();
  state.threads.clear();
  clear($("inbox"));
  clear($("decided"));
  clear(document.querySelector("#pipeline tbody"));
  clear($("costs"));
  clear($("providers"));
  $("who").textContent = "";
  $("app").hidden = true;
  $("sign-out").hidden = true;
  $("sign-in").hidden = false;
  $("sign-in-error").textContent = message;
  $("api-key").focus();
}

// -- live events ------------------------------------------------------------------------
function connect() {
  if (!state.token) return;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}/api/v2/ws`, ["nova.live.v1"]);
  state.ws = ws;
  $("live-status").textContent = "Connecting to live events…";
  ws.addEventListener("open", () => ws.send(JSON.stringify({ type: "auth", token: state.token })));
  ws.addEventListener("message", (message) => {
    let frame;
    try { frame = JSON.parse(message.data); } catch { return; }
    if (frame.type === "ready") {
      ws.send(JSON.stringify({ type: "subscribe", topics: TOPICS, after: state.position,
        since: state.since }));
    } else if (frame.type === "subscribed") {
      state.retry = 0;
      $("live-status").textContent = "Live: updates appear as they happen.";
      if (frame.resume === "gap") { loadInbox(); }
    } else if (frame.type === "event") {
      onEvent(frame);
    } else if (frame.type === "error" && frame.problem) {
      $("notice").textContent = `Live events: ${frame.problem.detail}`;
    }
  });
  ws.addEventListener("close", (event) => {
    if (state.ws !== ws || !state.token) return;
    if (event.code === 4401) { signOut("Your session has ended; sign in again."); return; }
    state.retry = Math.min(state.retry + 1, 5);
    const delay = 500 * 2 ** state.retry;
    $("live-status").textContent = `Live events interrupted; reconnecting in ${delay / 1000} s.`;
    setTimeout(() => { if (state.ws === ws) connect(); }, delay);
  });
}

function onEvent(event) {
  if (state.seen.has(event.id)) return;  // replayed after a resume at another gateway
  state.seen.add(event.id);
  state.seenOrder.push(event.id);
  if (state.seenOrder.length > SEEN_MAX) state.seen.delete(state.seenOrder.shift());
  state.position = event.position;
  state.since = event.ts;
  const data = event.data || {};
  switch (event.topic) {
    case "pipeline.start": row(event.request_id, data.submitted_at || event.ts); break;
    case "lane.complete": lane(event.request_id, data); break;
    case "pipeline.complete": finished(event.request_id, data); break;
    case "checkpoint.created":
    case "checkpoint.decided": scheduleInbox(); break;
    case "budget.warning":
    case "budget.exceeded":
      $("notice").textContent = `Budget ${data.budget}: ${data.message}`;
      break;
    case "provider.health":
      $("notice").textContent = `Provider ${data.provider} is ${data.status}.`;
      if (!$("panel-providers").hidden) loadProviders();
      break;
    default: break;
  }
}

// -- live pipeline ----------------------------------------------------------------------
function row(requestId, at) {
  let tr = state.rows.get(requestId);
  if (tr) return tr;
  const status = el("td", { class: "status", "data-status": "in_flight" }, "in flight");
  tr = el("tr", { "data-request-id": requestId },
    el("th", { scope: "row", title: requestId }, el("code", {}, requestId.slice(-12)),
      el("span", { class: "when" }, ` ${when(at)}`)),
    status, ...LANES.map((code) => el("td", { "data-lane": code, class: "lane" }, "·")));
  const body = document.querySelector("#pipeline tbody");
  body.prepend(tr);
  state.rows.set(requestId, tr);
  while (body.rows.length > MAX_ROWS) {
    const last = body.rows[body.rows.length - 1];
    state.rows.delete(last.getAttribute("data-request-id"));
    last.remove();
  }
  return tr;
}

function lane(requestId, data) {
  const cell = row(requestId, null).querySelector(`td[data-lane="${data.lane}"]`);
  if (!cell) return;
  cell.textContent = `${data.status} ${Number(data.duration_ms).toFixed(1)} ms`;
  cell.setAttribute("data-status", data.status);
  cell.title = `lane ${data.lane} (${data.name}): ${data.status}`;
  if (data.status === "held") setStatus(requestId, "held", "held");
}

function setStatus(requestId, status, text) {
  const cell = row(requestId, null).querySelector("td.status");
  cell.textContent = text;
  cell.setAttribute("data-status", status);
}

function finished(requestId, data) {
  const cost = data.cost_usd ? ` · ${money(data.cost_usd)}` : "";
  const by = data.provider ? ` · ${data.provider}` : "";
  setStatus(requestId, data.status, `${data.status}${by}${cost}`);
  $("notice").textContent = `Request ${requestId.slice(-12)} ${data.status}.`;
}

// -- approvals --------------------------------------------------------------------------
function scheduleInbox() {
  clearTimeout(state.inboxTimer);
  state.inboxTimer = setTimeout(loadInbox, 150);
}

async function threadTitle(threadId) {
  if (!state.threads.has(threadId)) {
    state.threads.set(threadId, api(`/api/v2/threads/${encodeURIComponent(threadId)}`)
      .then((thread) => thread.title, () => "(not readable)"));
  }
  return state.threads.get(threadId);
}

function field(list, name, value) {
  if (value === null || value === undefined || value === "") return;
  list.append(el("dt", {}, name), el("dd", {}, value));
}

// An agent's tool call held during a run: what the agent asks to do, then the request.
function toolCallFacts(facts, call) {
  field(facts, "Agent", el("span", { class: "agent" }, call.agent_id));
  field(facts, "Step", el("span", { class: "step" }, call.step));
  field(facts, "Arguments", el("pre", { class: "arguments" },
    JSON.stringify(call.arguments ?? {}, null, 2)));
}

function cardTitle(cp) {
  const call = cp.agent_tool_call;
  if (call) return `${call.tool} (${call.action || "an action"}) held for approval`;
  return `${cp.action || "A request"} held for approval`;
}

async function card(cp) {
  const facts = el("dl");
  if (cp.agent_tool_call) toolCallFacts(facts, cp.agent_tool_call);
  field(facts, "Request", el("q", { class: "prompt" }, cp.prompt));
  if (cp.thread_id) field(facts, "Thread", el("span", { class: "thread" }, await threadTitle(cp.thread_id)));
  field(facts, "Reason", cp.reason);
  field(facts, "Rules that fired", (cp.fired_rules || []).join(", ") || "none named");
  field(facts, "Submitted by", cp.user_id);
  field(facts, "Expires", when(cp.expires_at));
  if (cp.approvals_required > 1) {
    field(facts, "Approvals", `${cp.approved_by.length} of ${cp.approvals_required}`);
  }
  const reasonId = `reason-${cp.checkpoint_id}`;
  const error = el("p", { class: "error", role: "alert" });
  const reason = el("input", { id: reasonId, type: "text", maxlength: "2000", autocomplete: "off" });
  const decide = async (decision) => {
    error.textContent = "";
    try {
      await api(`/api/v2/governance/checkpoints/${encodeURIComponent(cp.checkpoint_id)}/${decision}`,
        { method: "POST", body: reason.value ? { reason: reason.value } : {} });
      $("notice").textContent = `${decision === "approve" ? "Approved" : "Rejected"}.`;
      loadInbox();
    } catch (e) {
      error.textContent = `${decision === "approve" ? "Approval" : "Rejection"} refused: ${e.message}`;
    }
  };
  const approve = el("button", { type: "button", class: "approve" }, "Approve");
  const reject = el("button", { type: "button", class: "reject" }, "Reject");
  approve.addEventListener("click", () => decide("approve"));
  reject.addEventListener("click", () => decide("reject"));
  return el("li", { class: "card", "data-checkpoint-id": cp.checkpoint_id,
    "data-request-id": cp.request_id, "aria-labelledby": `title-${cp.checkpoint_id}` },
  el("h3", { id: `title-${cp.checkpoint_id}` }, cardTitle(cp)),
  facts,
  el("div", { class: "decide" }, el("label", { for: reasonId }, "Reason for your decision"),
    reason, approve, reject),
  error);
}

async function loadInbox() {
  if (!state.token) return;
  let listed;
  try {
    listed = await api("/api/v2/governance/checkpoints");
  } catch (e) {
    $("notice").textContent = `Checkpoints could not be read: ${e.message}`;
    return;
  }
  const all = listed.checkpoints;
  const pending = all.filter((cp) => cp.status === "pending");
  const decided = all.filter((cp) => cp.status !== "pending")
    .sort((a, b) => String(b.decided_at || b.expires_at).localeCompare(String(a.decided_at || a.expires_at)))
    .slice(0, 10);
  const cards = await Promise.all(pending.map(card));
  const inbox = $("inbox");
  clear(inbox);
  cards.forEach((c) => inbox.append(c));
  $("inbox-empty").hidden = pending.length > 0;
  $("inbox-count").textContent = pending.length ? `(${pending.length})` : "";
  const list = $("decided");
  clear(list);
  for (const cp of decided) {
    const who = cp.decided_by ? ` by ${cp.decided_by}` : "";
    list.append(el("li", { "data-checkpoint-id": cp.checkpoint_id, "data-status": cp.status },
      el("strong", {}, cp.status), `${who} · ${when(cp.decided_at)} · `,
      el("q", { class: "prompt" }, cp.prompt),
      cp.decision_reason ? el("span", { class: "decision-reason" }, ` — ${cp.decision_reason}`) : null));
  }
}

// -- charts -----------------------------------------------------------------------------
const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, text = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== null) node.textContent = text;
  return node;
}

function bars(title, rows, label, value, format) {
  const figure = el("figure", { class: "chart" });
  figure.append(el("figcaption", {}, title));
  if (!rows.length) {
    figure.append(el("p", {}, "No data in this window."));
    return figure;
  }
  const width = 560;
  const barHeight = 22;
  const height = rows.length * barHeight + 8;
  const max = Math.max(...rows.map((r) => Number(r[value]) || 0), 1e-12);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
    "aria-label": title });
  rows.forEach((r, i) => {
    const v = Number(r[value]) || 0;
    const y = 4 + i * barHeight;
    const w = Math.max(1, (v / max) * (width - 260));
    chart.append(svg("text", { x: 0, y: y + 15, class: "label" }, String(label(r)).slice(0, 28)));
    chart.append(svg("rect", { x: 190, y, width: w, height: barHeight - 6, class: "bar" }));
    chart.append(svg("text", { x: 196 + w, y: y + 15, class: "value" }, format(v)));
  });
  figure.append(chart);
  return figure;
}

function table(caption, columns, rows) {
  const t = el("table", {}, el("caption", {}, caption));
  t.append(el("thead", {}, el("tr", {}, ...columns.map(([name]) => el("th", { scope: "col" }, name)))));
  const body = el("tbody");
  for (const r of rows) {
    body.append(el("tr", {}, ...columns.map(([, get]) => el("td", {}, get(r) ?? ""))));
  }
  t.append(body);
  return t;
}

const ms = (v) => (v === null || v === undefined ? "" : `${Number(v).toFixed(1)} ms`);

async function loadCosts(event) {
  if (event) event.preventDefault();
  const hours = $("costs-hours").value;
  const out = $("costs");
  clear(out);
  out.append(el("p", {}, "Loading…"));
  let costs, daily, dash;
  try {
    [costs, daily, dash] = await Promise.all([
      api(`/api/v2/llm/monitoring/costs?hours=${hours}`),
      api(`/api/v2/nova/monitoring/costs?hours=${hours}`),
      api(`/api/v2/nova/monitoring/dashboard?hours=${hours}`),
    ]);
  } catch (e) {
    clear(out);
    out.append(el("p", { class: "error", role: "alert" }, `Figures could not be read: ${e.message}`));
    return;
  }
  clear(out);
  out.append(el("p", {}, `Total ${money(costs.total_usd)} over the window.`));
  const usd = (v) => money(v);
  out.append(bars("Cost by provider", costs.by_provider, (r) => r.provider, "cost_usd", usd));
  out.append(bars("Cost by model", costs.by_model, (r) => `${r.provider}/${r.model}`, "cost_usd", usd));
  out.append(bars("Cost by identity", costs.by_identity, (r) => r.identity_id, "cost_usd", usd));
  out.append(bars("Cost by day", daily.by_day, (r) => r.day, "cost_usd", usd));
  out.append(table("Lane latency", [["Lane", (r) => r.lane], ["Events", (r) => r.events],
    ["Errors", (r) => r.errors], ["p50", (r) => ms(r.p50_ms)], ["p99", (r) => ms(r.p99_ms)]],
  dash.lanes));
  out.append(table("Provider latency", [["Provider", (r) => r.provider], ["Calls", (r) => r.calls],
    ["p50", (r) => ms(r.p50_ms)], ["p95", (r) => ms(r.p95_ms)], ["p99", (r) => ms(r.p99_ms)]],
  costs.by_provider));
}

async function loadProviders() {
  const out = $("providers");
  let health, limits, budgets;
  try {
    [health, limits, budgets] = await Promise.all([
      api("/api/v2/llm/monitoring/health"),
      api("/api/v2/llm/monitoring/rate-limits"),
      api("/api/v2/llm/monitoring/budgets"),
    ]);
  } catch (e) {
    clear(out);
    out.append(el("p", { class: "error", role: "alert" }, `Providers could not be read: ${e.message}`));
    return;
  }
  clear(out);
  const pct = (v) => `${(Number(v) * 100).toFixed(1)} %`;
  out.append(table("Health and circuit state", [["Provider", (r) => r.provider],
    ["Status", (r) => el("span", { "data-status": r.status }, r.status)],
    ["Last probe", (r) => r.probe_status], ["Calls", (r) => r.calls],
    ["Error rate", (r) => pct(r.error_rate)], ["p50", (r) => ms(r.p50_latency_ms)]],
  health.providers));
  out.append(table("Rate-limit use (last minute, all workers)", [["Provider", (r) => r.provider],
    ["Requests", (r) => `${r.calls_last_minute} / ${r.rpm}`], ["rpm used", (r) => pct(r.rpm_used)],
    ["tpm used", (r) => pct(r.tpm_used)], ["429s (1 h)", (r) => r.http_429_last_hour]],
  limits.providers));
  out.append(table("Budgets", [["Name", (r) => r.name], ["Scope", (r) => `${r.scope} ${r.subject}`],
    ["Period", (r) => r.period], ["Spent", (r) => money(r.spent_usd)],
    ["Soft / hard", (r) => `${money(r.soft_usd)} / ${money(r.hard_usd)}`],
    ["Status", (r) => r.status]], budgets.budgets));
}

// -- tabs (WAI-ARIA tabs pattern: arrows move, Home/End jump) ---------------------------
const LOADERS = { "tab-costs": loadCosts, "tab-providers": loadProviders, "tab-approvals": loadInbox };

function select(tab) {
  for (const t of document.querySelectorAll('[role="tab"]')) {
    const on = t === tab;
    t.setAttribute("aria-selected", String(on));
    t.tabIndex = on ? 0 : -1;
    $(t.getAttribute("aria-controls")).hidden = !on;
  }
  tab.focus();
  const load = LOADERS[tab.id];
  if (load) load();
}

function tabKeys(event) {
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  const at = tabs.indexOf(document.activeElement);
  if (at < 0) return;
  const next = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: tabs.length - 1 }[event.key];
  if (next === undefined) return;
  event.preventDefault();
  select(tabs[(next + tabs.length) % tabs.length]);
}

document.addEventListener("DOMContentLoaded", () => {
  $("sign-in-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", () => signOut("Signed out."));
  for (const tab of document.querySelectorAll('[role="tab"]')) {
    tab.addEventListener("click", () => select(tab));
  }
  $("tabs").addEventListener("keydown", tabKeys);
  $("costs-form").addEventListener("submit", loadCosts);
  $("providers-refresh").addEventListener("click", loadProviders);
  $("api-key").focus();
});
