// The live feed shared by every explorer page: one WebSocket to /ws/dashboard/,
// subscribed to the topics the page lists in <script id="live-topics">, and
// reconnecting by itself with exponential backoff. It never polls.
//
// connectLive({"block.committed": (event) => ..., ...}) calls a handler per event type.

const MIN_DELAY_MS = 1000;
const MAX_DELAY_MS = 30000;
const NOT_LOGGED_IN = 4401;

export function pageData(id, fallback = null) {
  const node = document.getElementById(id);
  return node ? JSON.parse(node.textContent) : fallback;
}

export function connectLive(handlers) {
  const topics = pageData("live-topics", []);
  const indicator = document.getElementById("live-status");
  const show = (state) => {
    if (indicator) {
      indicator.dataset.state = state;
      indicator.title = `live feed: ${state}`;
    }
    document.body.dataset.live = state;
  };
  if (!topics.length) return;
  let delay = MIN_DELAY_MS;
  let wasLive = false;

  function open() {
    show("connecting");
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${window.location.host}/ws/dashboard/`);
    socket.addEventListener("open", () => socket.send(JSON.stringify({ subscribe: topics })));
    socket.addEventListener("message", (message) => {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        return;
      }
      if (event.type === "subscribed") {
        delay = MIN_DELAY_MS;
        show("live");
        if (wasLive && handlers.reconnected) handlers.reconnected();
        wasLive = true;
        return;
      }
      const handler = handlers[event.type];
      if (handler) handler(event);
    });
    socket.addEventListener("close", (closed) => {
      if (closed.code === NOT_LOGGED_IN) {
        show("logged-out"); // the session ended: reconnecting would be refused again
        return;
      }
      show("offline");
      const wait = delay * (0.75 + Math.random() * 0.5); // jitter: many browsers do not return at once
      delay = Math.min(delay * 2, MAX_DELAY_MS);
      window.setTimeout(open, wait);
    });
  }
  open();
}

export function utc(ms) {
  return new Date(ms).toISOString().replace("T", " ").slice(0, 19);
}

export function ago(ms) {
  const seconds = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${Math.round(seconds / 3600)} h`;
}

export function formatTimes(root = document) {
  for (const node of root.querySelectorAll("[data-time-ms]")) {
    const ms = Number(node.dataset.timeMs);
    if (node.dataset.timeMs && !node.dataset.ticking && Number.isFinite(ms)) node.textContent = utc(ms);
  }
}

// A table row from cells; each cell is text or a [text, href] link. Text is never parsed as HTML.
export function row(cells, data = {}) {
  const tr = document.createElement("tr");
  for (const [key, value] of Object.entries(data)) tr.dataset[key] = value;
  for (const cell of cells) {
    const td = document.createElement("td");
    if (Array.isArray(cell)) {
      const a = document.createElement("a");
      a.href = cell[1];
      a.textContent = cell[0];
      td.append(a);
    } else if (cell instanceof Node) {
      td.append(cell);
    } else {
      td.textContent = cell;
    }
    tr.append(td);
  }
  return tr;
}

export function status(text, code) {
  const span = document.createElement("span");
  span.append(Object.assign(document.createElement("span"), { className: `status status-${text}`, textContent: text }));
  if (code) span.append(" ", Object.assign(document.createElement("code"), { textContent: code }));
  return span;
}

export function prepend(tbody, tr, keep) {
  tbody.querySelector("tr.empty")?.remove();
  tbody.prepend(tr);
  while (keep && tbody.rows.length > keep) tbody.deleteRow(-1);
}

// Quorum banner: which validators this node hears from, updated by peer.up / peer.down.
export function quorumTracker(onChange) {
  const health = pageData("health-data");
  if (!health) return { up() {}, down() {} };
  const linked = new Set(health.linked);
  const validators = new Set(health.validator_keys);
  const update = () => {
    let connected = 0;
    for (const key of validators) if (linked.has(key) || (key === health.me && !health.engine_stale)) connected += 1;
    for (const node of document.querySelectorAll('[data-field="connected-validators"]')) node.textContent = connected;
    const banner = document.getElementById("quorum-banner");
    if (banner) {
      const below = validators.size > 0 && connected < health.needed; // explorer.selectors.network_health's rule
      banner.hidden = !below;
      banner.dataset.belowQuorum = String(below);
    }
    if (onChange) onChange(linked);
  };
  return {
    up(key) {
      linked.add(key);
      update();
    },
    down(key) {
      linked.delete(key);
      update();
    },
  };
}
