// The page's side of the toolkit: the browser's WebSocket moves whole messages, the
// wasm-bindgen module (`BrowserClient`, the client machine) decides what they mean.
// `window.xmpp` holds the state the headless-browser test reads.
import init, { BrowserClient } from "./pkg/xmpp_host_wasm.js";

const $ = (id) => document.getElementById(id);
const state = (window.xmpp = { status: "idle", jid: null, roster: {}, rosterLoaded: false, messages: [], log: [], closed: null });
const params = new URLSearchParams(location.search);
$("url").value = params.get("url") || `ws://${location.hostname || "127.0.0.1"}:5280/xmpp-websocket`;
if (!params.get("url")) fetch("websocket-url").then((r) => (r.ok ? r.text() : null)).then((u) => { if (u) $("url").value = u; }).catch(() => {});
$("jid").value = params.get("jid") || "";
$("password").value = params.get("password") || "";

let client = null, ws = null, timer = null, selected = null;

function log(kind, text) {
  state.log.push(`${kind}: ${text}`);
  const line = document.createElement("div");
  line.className = kind;
  line.textContent = `${kind === "E" ? "--" : kind + ":"} ${text}`;
  $("transcript").append(line);
  line.scrollIntoView({ block: "end" });
}

function status(text) { state.status = text; $("status").textContent = text; }

const parse = (xml) => new DOMParser().parseFromString(xml, "application/xml").documentElement;
const bare = (jid) => (jid || "").split("/")[0];
const esc = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/'/g, "&apos;");

function renderRoster() {
  const ul = $("roster");
  ul.replaceChildren();
  for (const [jid, item] of Object.entries(state.roster)) {
    const li = document.createElement("li");
    li.className = `${item.show} ${jid === selected ? "selected" : ""}`;
    li.innerHTML = `<span class="dot"></span>`;
    li.append(`${item.name || jid} (${item.show})`);
    li.onclick = () => { selected = jid; $("to").value = jid; $("peer").textContent = `with ${jid}`; renderRoster(); };
    ul.append(li);
  }
}

function showMessage(from, body, mine) {
  state.messages.push({ from, body, mine });
  const p = document.createElement("p");
  p.className = mine ? "me" : "them";
  p.textContent = `${mine ? "me" : from}: ${body}`;
  $("messages").append(p);
}

function onStanza(el) {
  if (el.localName === "iq" && el.getAttribute("id") === "roster-1") {
    for (const item of el.getElementsByTagNameNS("jabber:iq:roster", "item")) {
      const jid = item.getAttribute("jid");
      state.roster[jid] = { name: item.getAttribute("name"), show: state.roster[jid]?.show || "offline" };
    }
    state.rosterLoaded = true;
    renderRoster();
  } else if (el.localName === "presence") {
    const jid = bare(el.getAttribute("from"));
    if (jid === bare(state.jid)) return;
    const type = el.getAttribute("type");
    if (type && type !== "unavailable") return;
    const show = el.getElementsByTagName("show")[0]?.textContent;
    state.roster[jid] = { ...(state.roster[jid] || {}), show: type === "unavailable" ? "offline" : show || "available" };
    renderRoster();
  } else if (el.localName === "message") {
    const body = el.getElementsByTagName("body")[0]?.textContent;
    if (body) showMessage(bare(el.getAttribute("from")), body, false);
  }
}

function pump() {
  for (let out; (out = client.poll()); ) {
    const o = JSON.parse(out);
    if (o.type === "Transmit") {
      log("C", o.text);
      if (ws.readyState === WebSocket.OPEN) ws.send(o.text);
      continue;
    }
    log("E", o.summary);
    if (o.type === "Negotiated") {
      state.jid = o.jid;
      status(`online as ${o.jid}`);
      $("logout").disabled = false;
      client.send("<iq xmlns='jabber:client' type='get' id='roster-1'><query xmlns='jabber:iq:roster'/></iq>");
      client.send("<presence xmlns='jabber:client'/>");
    } else if (o.type === "Stanza") {
      onStanza(parse(o.xml));
    } else if (o.type === "Closed") {
      state.closed = o.reason;
      status(`closed: ${o.reason}`);
      $("logout").disabled = true;
      ws.close();
    }
  }
  clearTimeout(timer);
  const wait = client.next_timeout_ms();
  if (wait !== undefined && !client.is_closed()) timer = setTimeout(() => { client.timeout(); pump(); }, wait);
}

async function connect(event) {
  event?.preventDefault();
  await init();
  const url = $("url").value;
  client = new BrowserClient($("jid").value, $("password").value, url.startsWith("wss:"));
  status("connecting");
  ws = new WebSocket(url, "xmpp");
  ws.onopen = () => { log("E", `WebSocket open, subprotocol ${ws.protocol}`); client.start(); pump(); };
  ws.onmessage = (m) => { log("S", m.data); client.message(m.data); pump(); };
  ws.onclose = (e) => { log("E", `WebSocket closed (${e.code})`); if (!client.is_closed()) { client.transport_closed(); pump(); } };
}

$("login").onsubmit = connect;
$("logout").onclick = () => { client.close(); pump(); };
$("chat").onsubmit = (event) => {
  event.preventDefault();
  const to = $("to").value, body = $("body").value;
  if (!client || !to || !body) return;
  client.send(`<message xmlns='jabber:client' type='chat' to='${esc(to)}'><body>${esc(body)}</body></message>`);
  showMessage(to, body, true);
  $("body").value = "";
  pump();
};
// The test's handles: send a chat message and log out without clicking.
window.xmppSend = (to, body) => { $("to").value = to; $("body").value = body; $("chat").requestSubmit(); };
window.xmppLogout = () => $("logout").click();
if (params.has("autologin")) connect();
