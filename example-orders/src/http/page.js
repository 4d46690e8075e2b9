"use strict";
// The orders page: one WebSocket per tab for live notices, commands retried with the same
// Idempotency-Key, the user's orders with their items, and for admins the fulfilment
// queue and sales.

const $ = (id) => document.getElementById(id);
const page = {
  token: "",
  claims: null,
  socket: null, // the tab's one socket, or null
  retry: 0, // reconnect attempts since the last welcome
  reconnect: null, // the pending reconnect timer
  expiry: null, // the timer that fires when the token expires
  adminTimer: null,
  details: new Map(), // order id -> { version, lines }
  refreshes: 0,
};
// Counters for tests and the curious.
window.ordersPage = { socketsOpened: 0 };

function toast(text, kind) {
  const el = document.createElement("div");
  el.className = "toast " + (kind || "");
  el.dataset.kind = kind || "success";
  el.textContent = text;
  $("toasts").appendChild(el);
  setTimeout(() => el.remove(), 5000);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const auth = () => ({ authorization: "Bearer " + page.token });

// Minor units to text, with as many decimals as the currency has (EUR 2, JPY 0, BHD 3).
function money(minor, currency) {
  if (!currency) return String(minor);
  let digits = 2;
  try {
    digits = new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits;
  } catch (e) { /* not a currency the browser knows: two decimals */ }
  return (minor / 10 ** digits).toFixed(digits) + " " + currency;
}

// ---- session ---------------------------------------------------------------------------

function claimsOf(token) {
  try {
    const part = token.split(".")[0].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(part + "=".repeat((4 - (part.length % 4)) % 4)));
    return typeof claims.sub === "string" && typeof claims.exp === "number" ? claims : null;
  } catch (e) {
    return null;
  }
}

function useToken(value) {
  closeSocket();
  clearTimeout(page.expiry);
  page.token = value.trim();
  page.claims = claimsOf(page.token);
  page.details.clear();
  localStorage.setItem("orders-token", page.token);
  $("token").value = page.token;
  $("auth-problem").hidden = true;
  if (!page.claims) return signedOut("This token is not one this app issues. Log in again.");
  if (!watchExpiry()) return;
  showAdmin(page.claims.adm === true);
  connect();
}

// Signs out when the token's `exp` passes; false when it has passed already. (A timer
// waits at most 2^31 - 1 ms, about 24 days: a longer wait is taken in steps.)
function watchExpiry() {
  clearTimeout(page.expiry);
  const left = page.claims.exp * 1000 - Date.now();
  if (left <= 0) {
    signedOut("Your session has expired. Log in again.");
    return false;
  }
  page.expiry = setTimeout(watchExpiry, Math.min(left, 2 ** 31 - 1));
  return true;
}

// The token is expired or refused: stop using it, say so, and offer to log in again.
function signedOut(reason) {
  closeSocket();
  clearTimeout(page.expiry);
  showAdmin(false);
  page.token = "";
  localStorage.removeItem("orders-token");
  $("status").textContent = "not connected";
  $("auth-problem-text").textContent = reason;
  $("auth-problem").hidden = false;
}

// Answers that say the token is no good sign the page out; true when that happened.
async function refusedToken(response) {
  if (response.status !== 401) return false;
  const answer = await response.json().catch(() => ({}));
  signedOut(`The server refused your token (${answer.detail || "unauthorized"}). Log in again.`);
  return true;
}

$("log-in-again").onclick = () => {
  $("auth-problem").hidden = true;
  $("orders").replaceChildren();
  $("token").value = "";
  $("login-box").scrollIntoView();
  $("user").focus();
};

// ---- the socket ------------------------------------------------------------------------

// Closes the tab's socket without it scheduling a reconnect, and cancels a pending one.
function closeSocket() {
  clearTimeout(page.reconnect);
  page.reconnect = null;
  const socket = page.socket;
  page.socket = null;
  if (socket) {
    socket.onclose = socket.onmessage = null;
    socket.close();
  }
}

function connect() {
  closeSocket();
  if (!page.token) return;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const token = page.token;
  const socket = new WebSocket(`${scheme}://${location.host}/ws?token=${encodeURIComponent(token)}`);
  window.ordersPage.socketsOpened++;
  page.socket = socket;
  let welcomed = false;
  socket.onmessage = (event) => {
    const m = JSON.parse(event.data);
    if (m.type === "welcome") {
      welcomed = true;
      page.retry = 0;
      $("status").textContent = `connected as ${m.user} (socket ${m.socket_id})`;
      refresh();
    }
    if (m.type === "command" && m.status === "succeeded") toast(`command ${m.command_id.slice(0, 8)} succeeded (version ${m.version})`);
    if (m.type === "command" && m.status === "failed") toast(`command ${m.command_id.slice(0, 8)} failed: ${m.error.detail}`, "failed");
    if (m.type === "order_changed") caughtUp(m.order_id, m.version);
  };
  socket.onclose = async () => {
    if (page.socket !== socket) return;
    page.socket = null;
    // Closed before the welcome: the upgrade may have been refused for the token.
    if (!welcomed && !(await tokenStillGood(token))) return;
    if (page.token !== token || page.socket || page.reconnect) return;
    const delay = Math.random() * Math.min(10000, 500 * 2 ** page.retry++);
    $("status").textContent = `disconnected; reconnecting in ${(delay / 1000).toFixed(1)} s`;
    page.reconnect = setTimeout(connect, delay);
  };
}

// Asks the server whether `token` is still accepted; a network error counts as yes.
async function tokenStillGood(token) {
  try {
    const response = await fetch("/orders?limit=1", { headers: { authorization: "Bearer " + token } });
    if (page.token !== token) return false;
    return !(await refusedToken(response));
  } catch (e) {
    return true;
  }
}

// ---- commands and queries --------------------------------------------------------------

// Sends a command; retries 5xx and network failures with exponential backoff and full
// jitter, always with the same Idempotency-Key, so a retry never places a second order.
async function command(method, path, body) {
  const key = crypto.randomUUID();
  for (let attempt = 0; ; attempt++) {
    let response = null;
    try {
      response = await fetch(path, {
        method,
        headers: { ...auth(), "content-type": "application/json", "idempotency-key": key },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) { /* network error: retry */ }
    if (response && (await refusedToken(response))) return null;
    if (response && response.status < 500) {
      const answer = await response.json().catch(() => ({}));
      if (!response.ok) toast(answer.detail || response.statusText, "failed");
      return answer;
    }
    if (attempt >= 6) { toast("gave up after " + (attempt + 1) + " attempts", "failed"); return null; }
    const retryAfter = response && Number(response.headers.get("retry-after"));
    const cap = Math.min(8000, 200 * 2 ** attempt);
    const delay = retryAfter ? retryAfter * 1000 : Math.random() * cap;
    toast(`retrying in ${Math.round(delay)} ms (${response ? response.status : "network error"})`, "info");
    await sleep(delay);
  }
}

async function query(path) {
  const response = await fetch(path, { headers: auth() });
  if (await refusedToken(response)) throw new Error("signed out");
  if (!response.ok) throw new Error(response.status + " " + response.statusText);
  return response.json();
}

// The order's lines, fetched again only when its version moved.
async function linesOf(order) {
  const known = page.details.get(order.order_id);
  if (known && known.version >= order.version) return known.lines;
  const view = await query(`/orders/${order.order_id}`).catch(() => null);
  if (!view) return known ? known.lines : [];
  page.details.set(order.order_id, { version: view.version, lines: view.lines || [] });
  return view.lines || [];
}

function cell(tr, field, text) {
  const td = document.createElement("td");
  td.dataset.field = field;
  td.textContent = text;
  tr.appendChild(td);
  return td;
}

function button(parent, label, run) {
  const b = document.createElement("button");
  b.textContent = label;
  b.dataset.action = label;
  b.onclick = run;
  parent.appendChild(b);
}

const itemsText = (lines, currency) =>
  lines.map((l) => `${l.quantity} × ${l.product} @ ${money(l.unit_price_minor, currency)}`).join("; ");

async function refresh() {
  if (!page.token) return;
  const mine = ++page.refreshes;
  const orders = await query("/orders").catch((e) => { if (page.token) toast(e.message, "failed"); return []; });
  const lines = await Promise.all(orders.map(linesOf));
  if (mine !== page.refreshes) return; // a later refresh renders
  const rows = $("orders");
  rows.replaceChildren();
  orders.forEach((o, i) => {
    const tr = document.createElement("tr");
    tr.dataset.orderId = o.order_id;
    cell(tr, "order", o.order_id.slice(0, 8));
    cell(tr, "status", o.status);
    cell(tr, "total", money(o.total_minor, o.currency));
    cell(tr, "lines", o.lines);
    cell(tr, "items", itemsText(lines[i], o.currency));
    cell(tr, "version", o.version);
    const actions = cell(tr, "actions", "");
    if (o.status === "placed") button(actions, "confirm", () => command("POST", `/orders/${o.order_id}/confirm`, {}));
    if (o.status === "confirmed") button(actions, "pay", () => command("POST", `/orders/${o.order_id}/pay`,
      { payment_id: "pay-" + crypto.randomUUID().slice(0, 8), amount_minor: o.total_minor }));
    if (["placed", "confirmed", "paid"].includes(o.status)) button(actions, "cancel", () => command("POST", `/orders/${o.order_id}/cancel`, { reason: "changed my mind" }));
    rows.appendChild(tr);
  });
}

// Reads an order once its read model has the version a notice names (read-your-writes).
async function caughtUp(orderId, version) {
  await query(`/orders/${orderId}?version=${version}&wait_ms=3000`).catch(() => null);
  await refresh();
}

// ---- admin -----------------------------------------------------------------------------

function showAdmin(on) {
  $("admin-view").hidden = !on;
  clearTimeout(page.adminTimer);
  page.adminTimer = null;
  if (on) refreshAdmin();
}

async function refreshAdmin() {
  clearTimeout(page.adminTimer);
  if (!page.token || !page.claims || !page.claims.adm) return;
  const [queue, sales] = await Promise.all([query("/fulfilments"), query("/sales")]).catch((e) => {
    if (page.token) toast(e.message, "failed");
    return [null, null];
  });
  if (queue) renderQueue(queue);
  if (sales) renderSales(sales);
  if (page.token && page.claims.adm) page.adminTimer = setTimeout(refreshAdmin, 3000);
}

function renderQueue(queue) {
  const rows = $("queue");
  rows.replaceChildren();
  for (const f of queue) {
    const tr = document.createElement("tr");
    tr.dataset.orderId = f.order_id;
    cell(tr, "order", f.order_id.slice(0, 8));
    cell(tr, "items", f.lines.map((l) => `${l.quantity} × ${l.product}`).join("; "));
    cell(tr, "requested", new Date(f.requested_at).toLocaleString());
    const td = cell(tr, "dispatch", "");
    const tracking = document.createElement("input");
    tracking.placeholder = "tracking";
    tracking.size = 12;
    tracking.value = "TRK-" + f.order_id.slice(0, 6).toUpperCase();
    td.appendChild(tracking);
    button(td, "dispatch", async () => {
      await command("POST", `/fulfilments/${f.order_id}/dispatch`, { tracking: tracking.value });
      refreshAdmin();
    });
    rows.appendChild(tr);
  }
}

function renderSales(sales) {
  const rows = $("sales");
  rows.replaceChildren();
  for (const s of sales) {
    const tr = document.createElement("tr");
    tr.dataset.product = s.product;
    cell(tr, "product", s.product);
    cell(tr, "day", s.day);
    cell(tr, "units", s.quantity);
    cell(tr, "orders", s.orders);
    cell(tr, "revenue", Object.entries(s.revenue_minor).map(([c, minor]) => money(minor, c)).join(", "));
    rows.appendChild(tr);
  }
}

// ---- the forms -------------------------------------------------------------------------

$("use-token").onclick = () => useToken($("token").value);
$("admin-refresh").onclick = () => refreshAdmin();
$("login").onclick = async () => {
  const response = await fetch("/dev/login", { method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ user: $("user").value, admin: $("admin").checked }) });
  const answer = await response.json().catch(() => ({}));
  if (response.ok) useToken(answer.token); else toast(answer.detail || "dev login is off", "failed");
};
$("place").onclick = () => command("POST", "/orders", {
  currency: $("currency").value,
  lines: [{ product: $("product").value, quantity: Number($("quantity").value), unit_price_minor: Number($("price").value) }],
});
const showPrice = () => { $("price-shown").textContent = money(Number($("price").value), $("currency").value.trim().toUpperCase()); };
$("price").oninput = $("currency").oninput = showPrice;
showPrice();

const stored = localStorage.getItem("orders-token");
if (stored) useToken(stored);
