// Network page: a peer link's row comes up or goes down as the engine reports it; lag follows our height.
import { connectLive, quorumTracker } from "./live.js";

const tbody = document.querySelector("#peer-links tbody");
const heightNode = document.getElementById("network-height");
const quorum = quorumTracker();

function rowFor(key) {
  return tbody.querySelector(`tr[data-node-key="${CSS.escape(key)}"]`);
}

function setField(tr, field, text) {
  const cell = tr.querySelector(`[data-field="${field}"]`);
  if (cell) cell.textContent = text;
}

connectLive({
  "peer.up"(e) {
    quorum.up(e.node_key);
    const tr = rowFor(e.node_key);
    if (!tr) return; // a peer this page did not list: the next load shows it
    tr.dataset.state = "up";
    const link = e.link || {};
    if (tr.cells.length < 10) return; // listed as offline: its socket details arrive with the next load
    setField(tr, "direction", link.direction || "");
    setField(tr, "local_address", link.local_address || "?");
    setField(tr, "remote_address", link.remote_address || "?");
    setField(tr, "connected_since", link.connected_since || "");
  },
  "peer.down"(e) {
    quorum.down(e.node_key);
    const tr = rowFor(e.node_key);
    if (tr) tr.dataset.state = "down";
  },
  "block.committed"(e) {
    heightNode.textContent = e.height;
    for (const tr of tbody.querySelectorAll("tr[data-peer-height]")) {
      const peer = Number(tr.dataset.peerHeight);
      if (tr.dataset.peerHeight !== "") setField(tr, "lag", String(Math.max(0, e.height - peer)));
    }
  },
});
