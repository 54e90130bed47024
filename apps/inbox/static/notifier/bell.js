/* <notifier-bell server="https://notify.example.com" token="RECIPIENT TOKEN"></notifier-bell>
 * The inbox bell, no build or dependencies: WebSocket, else Server-Sent Events. On a 401 it
 * fires `notifier:token-expired`: set a fresh `token`. Docs: docs/inbox.md. */
(function () {
"use strict";
if (!window.customElements || customElements.get("notifier-bell")) { return; }
var PAGE = 20, FILL_PAGE = 50, SEEN_MAX = 1000, SILENCE_MS = 75000;
// Theme: set on the element.
var CSS = ":host{--notifier-accent:#3451d1;--notifier-badge-bg:#d92d20;--notifier-badge-color:#fff;--notifier-bg:#fff;--notifier-text:#1f2430;--notifier-body:#4a5163;--notifier-muted:#8a90a0;--notifier-icon:#39404f;--notifier-hover:#eef0f4;--notifier-unread-bg:#f3f6ff;--notifier-border:#dcdfe6;--notifier-divider:#eceef2;--notifier-width:340px;--notifier-max-height:420px;--notifier-radius:10px;position:relative;display:inline-block;color:var(--notifier-text)}" +
  "button{font:inherit;color:inherit;border:0;background:none;cursor:pointer}" +
  ".nb-button{position:relative;width:40px;height:40px;border-radius:50%;color:var(--notifier-icon)}" +
  ".nb-button:hover,.nb-button[aria-expanded=true],.nb-archive:hover{background:var(--notifier-hover)}" +
  ".nb-button svg{width:22px;height:22px;vertical-align:middle}" +
  ".nb-badge{position:absolute;top:2px;right:0;min-width:18px;height:18px;padding:0 5px;box-sizing:border-box;border-radius:9px;background:var(--notifier-badge-bg);color:var(--notifier-badge-color);font-size:11px;font-weight:700;line-height:18px;text-align:center}" +
  ".nb-badge[data-count='0']{visibility:hidden}" +
  ".nb-panel{position:absolute;right:0;top:46px;width:var(--notifier-width);max-height:var(--notifier-max-height);overflow-y:auto;background:var(--notifier-bg);border:1px solid var(--notifier-border);border-radius:var(--notifier-radius);box-shadow:0 10px 30px rgba(20,25,40,.15);z-index:1000;text-align:left}" +
  "[hidden]{display:none!important}" +
  ".nb-head{display:flex;align-items:center;justify-content:space-between;padding:10px 14px}" +
  ".nb-head,.nb-item-btn{border-bottom:1px solid var(--notifier-divider)}" +
  ".nb-read-all,.nb-more{font-size:13px;color:var(--notifier-accent)}.nb-more{display:block;width:100%;padding:8px}" +
  ".nb-list{list-style:none;margin:0;padding:0}.nb-item{position:relative}" +
  ".nb-item-btn{display:block;width:100%;text-align:left;background:var(--notifier-bg);padding:10px 36px 10px 26px;position:relative}" +
  "[data-read=false] .nb-item-btn{background:var(--notifier-unread-bg)}" +
  "[data-read=false] .nb-item-btn::before{content:'';position:absolute;left:10px;top:16px;width:8px;height:8px;border-radius:50%;background:var(--notifier-accent)}" +
  ".nb-archive{position:absolute;right:8px;top:8px;width:24px;height:24px;border-radius:50%;color:var(--notifier-muted);font-size:16px;line-height:24px}" +
  ".nb-title{display:block;font-weight:600}.nb-body{display:block;color:var(--notifier-body)}" +
  ".nb-time,.nb-empty,.nb-status{display:block;color:var(--notifier-muted);font-size:12px;margin-top:2px}" +
  ".nb-empty{margin:0;padding:18px 14px;font-size:inherit}" +
  ".nb-status{margin:0;padding:6px 14px;border-top:1px solid var(--notifier-divider)}";
var HTML = "<style>" + CSS + "</style>" +
  "<button class=nb-button part=button aria-expanded=false aria-controls=nb-panel>" +
  "<svg viewBox='0 0 24 24' fill=none stroke=currentColor stroke-width=2 stroke-linecap=round stroke-linejoin=round aria-hidden=true><path d='M18 8a6 6 0 0 0-12 0c0 7-3 9-3 9h18s-3-2-3-9'/><path d='M13.73 21a2 2 0 0 1-3.46 0'/></svg>" +
  "<span class=nb-badge part=badge data-count=0>0</span></button>" +
  "<div class=nb-panel id=nb-panel part=panel hidden><div class=nb-head><strong>Notifications</strong>" +
  "<button class=nb-read-all>Mark all read</button></div><ul class=nb-list></ul>" +
  "<p class=nb-empty>No notifications yet.</p><button class=nb-more hidden>Load more</button>" +
  "<div class=nb-status>Connecting…</div></div>";
var now = () => new Date().toISOString();
// textContent: messages are never parsed as HTML.
var el = (tag, cls, text) => { var e = document.createElement(tag); e.className = cls; e.textContent = text || ""; return e; };

class NotifierBell extends HTMLElement {
  static get observedAttributes() { return ["token", "server"]; }
  constructor() {
    super();
    var root = this.attachShadow({ mode: "open" });
    root.innerHTML = HTML;
    this.$ = (s) => root.querySelector(s);
    this.reset();
    this.gen = 0;  // bumped by stop(): an older connection's callbacks do nothing
    this.outside = (e) => { if (e.composedPath().indexOf(this) < 0) { this.toggle(false); } };
    this.btn = this.$(".nb-button");
    this.btn.onclick = () => this.toggle(this.$(".nb-panel").hidden);
    this.$(".nb-read-all").onclick = () => this.markAllRead();
    this.$(".nb-more").onclick = () => this.loadMore();
    this.onkeydown = (e) => { if (e.key === "Escape" && this.toggle(false)) { this.btn.focus(); } };
  }
  // lastId: for `since=`; oldest: the load-more cursor.
  reset() {
    this.items = new Map();
    this.unread = this.lastId = this.oldest = this.attempt = 0;
    this.loaded = this.more = false;
  }
  connectedCallback() { this.on = true; document.addEventListener("click", this.outside); this.start(); }
  disconnectedCallback() { this.on = false; document.removeEventListener("click", this.outside); this.stop(); }
  attributeChangedCallback(name, old, value) {
    // Unless it replaces an expired one, a new token may be another user's.
    if (old !== value && this.on) { if (!this.expired) { this.reset(); this.render(); } this.start(); }
  }
  // Properties mirror attributes (for React 19, Vue).
  get token() { return this.getAttribute("token") || ""; }
  set token(v) { this.setAttribute("token", v); }
  get server() { return this.getAttribute("server") || ""; }
  set server(v) { this.setAttribute("server", v); }
  get mode() { return this.getAttribute("transport"); }  // "websocket" or "sse" only
  get base() { return (this.server || location.origin).replace(/\/+$/, ""); }
  state(name, text) { this.dataset.state = name; this.$(".nb-status").textContent = text; }
  emit(name, detail) { this.dispatchEvent(new CustomEvent(name, { bubbles: true, composed: true, detail })); }
  start() {
    this.stop();
    this.expired = this.wsFailed = false;
    this.attempt = 0;
    this.fresh = !this.loaded;  // no reload on the first connect
    if (!this.token) { this.state("idle", "Not signed in."); return; }
    this.state("connecting", "Connecting…");
    var gen = this.gen, go = () => { if (gen === this.gen && !this.expired) { this.connect(); } };
    (this.loaded ? Promise.resolve() : this.load()).then(go, go);
  }
  stop() { this.gen += 1; clearTimeout(this.retry); this.drop(); }
  drop() {
    var sock = this.sock;
    this.sock = null;
    clearTimeout(this.watchdog);
    return sock && (sock.close(), sock);
  }
  // REST. A 401: the token is spent.
  req(path, method, body) {
    var gen = this.gen;
    return fetch(this.base + "/api/v1" + path, {
      method: method || "GET",
      headers: { Authorization: "Recipient " + this.token, "Content-Type": "application/json" },
      body: body ? JSON.stringify(body) : undefined,
    }).then((r) => {
      if (gen !== this.gen) { throw new Error("stale"); }
      if (r.status === 401) { this.expire(); }
      if (!r.ok) { throw new Error("notifier " + r.status); }
      return r.json();
    });
  }
  post(path, body) { this.req(path, "POST", body).catch(() => {}); }
  expire() {
    if (this.expired) { return; }
    this.stop();
    this.expired = true;
    this.state("expired", "Session expired.");
    this.emit("notifier:token-expired");
  }
  remember(m) {
    if (!this.items.has(m.id) && !m.read_at) { this.unread += 1; }
    this.items.set(m.id, m);
    if (m.id > this.lastId) { this.lastId = m.id; }
    if (!this.oldest || m.id < this.oldest) { this.oldest = m.id; }
  }
  page(cursor, limit) {
    return this.req("/inbox?limit=" + limit + (cursor ? "&cursor=" + cursor : "")).then((p) => {
      p.results.forEach((m) => this.remember(m));
      this.unread = p.unread_count;
      return p;
    });
  }
  // Page 1 (again on a reconnect or unarchive): drop what it no longer lists, up to lastId.
  load() {
    var top = this.lastId;
    return this.page(0, PAGE).then((p) => {
      var ids = p.results.map((m) => m.id), low = p.next ? Math.min(...ids) : 0;
      this.items.forEach((m, id) => { if (id >= low && id <= top && ids.indexOf(id) < 0) { this.items.delete(id); } });
      if (!this.loaded) { this.more = !!p.next; }
      this.loaded = true;
      this.render();
    });
  }
  loadMore() {
    return this.page(this.oldest, PAGE).then((p) => { this.more = !!p.next; this.render(); }, () => {});
  }
  // A gap (prev_id or latest_id > lastId): fill it down to lastId, one fill at a time.
  fill(since) {
    this.fillSince = this.fillSince == null ? since : Math.min(this.fillSince, since);
    if (this.filling) { return; }
    this.filling = true;
    since = this.fillSince;
    this.fillSince = null;
    var step = (cursor) => this.page(cursor, FILL_PAGE).then((p) => {
      this.render();
      var last = p.results.length ? p.results[p.results.length - 1].id : 0;
      if (p.next && since > 0 && last > since) { return step(last); }
    });
    step(0).catch(() => {}).then(() => {
      this.filling = false;
      if (this.fillSince != null) { this.fill(this.fillSince); }
    });
  }
  connect() {
    clearTimeout(this.retry);
    var q = "?token=" + encodeURIComponent(this.token) + (this.lastId ? "&since=" + this.lastId : ""), mode = this.mode;
    this.state("connecting", "Connecting…");
    if (mode !== "sse" && !this.wsFailed && window.WebSocket) {
      var ws;
      try { ws = new WebSocket(this.base.replace(/^http/, "ws") + "/ws/inbox" + q); } catch (e) { ws = null; }
      if (ws) { return this.attach(ws, "websocket"); }
    }
    if (mode === "websocket" || !window.EventSource) { return this.backoff(); }
    this.attach(new EventSource(this.base + "/api/v1/inbox/stream" + q), "sse");
  }
  attach(sock, transport) {
    var opened = false;
    this.sock = sock;
    this.dataset.transport = transport;
    sock.onopen = () => { opened = true; this.arm(); };
    sock.onmessage = (e) => { if (this.sock === sock) { this.onMessage(e.data); } };
    var lost = (code) => {
      if (this.sock !== sock) { return; }
      this.drop();
      if (code === 4401) { return this.expire(); }
      if (opened) { return this.backoff(); }
      if (transport === "websocket" && this.mode !== "websocket") {
        this.wsFailed = true;  // SSE instead
        return this.connect();
      }
      this.wsFailed = false;  // both failed. EventSource hides the status: a 401?
      var gen = this.gen, retry = () => { if (gen === this.gen && !this.expired) { this.backoff(); } };
      this.req("/inbox/unread-count").then(retry, retry);
    };
    if (transport === "websocket") { sock.onclose = (e) => lost(e.code); } else { sock.onerror = () => lost(0); }
  }
  // Back-off with jitter: 0.5 s, 1 s ... 30 s.
  backoff() {
    var delay = Math.min(30000, 500 * Math.pow(2, this.attempt)) * (0.5 + Math.random() / 2);
    this.attempt += 1;
    this.state("offline", "Offline, retrying in " + Math.round(delay / 1000) + " s");
    this.retry = setTimeout(() => this.connect(), delay);
  }
  // Silent for SILENCE_MS (pings come every ~20 s): dead.
  arm() {
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => { if (this.drop()) { this.backoff(); } }, SILENCE_MS);
  }
  onMessage(data) {
    var msg;
    try { msg = JSON.parse(data); } catch (e) { return; }
    this.arm();
    if (msg.type === "notification") {
      var before = this.lastId, fresh = !this.items.has(msg.id);
      this.remember(msg);
      if (msg.prev_id != null && msg.prev_id > before && !this.items.has(msg.prev_id)) { this.fill(before); }
      if (fresh) { this.emit("notifier:notification", msg); }
    } else if (msg.type === "unread_count") {
      this.items.forEach((m, id) => { if (!m.read_at && (msg.read_all || (msg.read || []).indexOf(id) >= 0)) { m.read_at = now(); } });
      (msg.archived || []).forEach((id) => this.items.delete(id));
      this.unread = msg.count;
      var again = this.dataset.state !== "live";  // (re)connected
      if (again) { this.attempt = 0; this.state("live", "Live"); }
      if (!this.loaded || (msg.unarchived || []).length || (again && !this.fresh)) { this.load().catch(() => {}); }
      this.fresh = false;
    } else if (msg.type === "ping") {
      if (this.sock && this.sock.send) { this.sock.send(JSON.stringify({ type: "pong" })); }
      if (msg.latest_id != null && msg.latest_id > this.lastId) { this.fill(this.lastId); }
      return;
    } else if (msg.type === "expired") {
      return this.expire();
    }
    this.render();
  }
  toggle(open) {
    var panel = this.$(".nb-panel");
    if (panel.hidden !== open) { return false; }
    panel.hidden = !open;
    this.btn.setAttribute("aria-expanded", String(open));
    if (open) { this.markShownSeen(); }
    return true;
  }
  markRead(id) {
    var m = this.items.get(id);
    if (!m || m.read_at) { return; }
    m.read_at = m.seen_at = m.seen_at || now();
    this.unread = Math.max(0, this.unread - 1);
    this.render();
    this.post("/inbox/" + id + "/read");
  }
  markAllRead() {
    this.items.forEach((m) => { m.read_at = m.read_at || now(); });
    this.unread = 0;
    this.render();
    this.post("/inbox/read-all");
  }
  markShownSeen() {
    var ids = Array.from(this.items.values()).filter((m) => !m.seen_at)
      .map((m) => m.id).sort((a, b) => b - a).slice(0, SEEN_MAX);
    if (!ids.length) { return; }
    ids.forEach((id) => { this.items.get(id).seen_at = now(); });
    this.post("/inbox/seen", { ids: ids });
  }
  archive(id) {
    var m = this.items.get(id);
    if (!m) { return; }
    this.items.delete(id);
    if (!m.read_at) { this.unread = Math.max(0, this.unread - 1); }
    this.render();
    this.post("/inbox/" + id + "/archive");
  }
  render() {
    var badge = this.$(".nb-badge"), list = this.$(".nb-list");
    badge.dataset.count = this.unread;
    badge.textContent = this.unread > 99 ? "99+" : this.unread;
    this.btn.setAttribute("aria-label", "Notifications, " + this.unread + " unread");
    var sorted = Array.from(this.items.values()).sort((a, b) => b.id - a.id);
    list.textContent = "";
    sorted.forEach((m) => {
      var li = el("li", "nb-item"), open = el("button", "nb-item-btn"), archive = el("button", "nb-archive", "×");
      li.setAttribute("part", "item");
      li.dataset.id = m.id;
      li.dataset.read = !!m.read_at;
      open.append(el("span", "nb-title", m.title), el("span", "nb-body", m.body),
        el("span", "nb-time", new Date(m.created_at).toLocaleString()));
      open.onclick = () => this.markRead(m.id);
      archive.setAttribute("aria-label", "Archive: " + m.title);
      archive.onclick = () => this.archive(m.id);
      li.append(open, archive);
      list.appendChild(li);
    });
    this.$(".nb-empty").hidden = sorted.length > 0;
    this.$(".nb-more").hidden = !this.more;
  }
}

customElements.define("notifier-bell", NotifierBell);
})();
