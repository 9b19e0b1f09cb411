// Organisation pages: say when a block changed membership or governance, and mark peers up or down.
import { connectLive, formatTimes } from "./live.js";

const banner = document.getElementById("gov-changed");

function mark(key, connected) {
  const tr = document.querySelector(`#org-peers tr[data-node-key="${CSS.escape(key)}"]`);
  if (!tr) return;
  tr.dataset.connected = String(connected);
  tr.querySelector('[data-field="connected"]').textContent = connected ? "connected" : "not connected";
}

connectLive({
  "gov.changed"(e) {
    banner.querySelector('[data-field="height"]').textContent = e.height;
    banner.hidden = false;
  },
  "peer.up"(e) {
    mark(e.node_key, true);
  },
  "peer.down"(e) {
    mark(e.node_key, false);
  },
});
formatTimes();
