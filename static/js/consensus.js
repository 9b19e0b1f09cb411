// Consensus page: height, round and step as the engine reports them, and each new height with its rounds.
import { connectLive, formatTimes, prepend, row } from "./live.js";

const setText = (id, text) => {
  const node = document.getElementById(id);
  if (node) node.textContent = text;
};

connectLive({
  "consensus.step"(e) {
    setText("consensus-height", e.height);
    setText("consensus-round", e.round);
    setText("consensus-step", e.step);
  },
  "block.committed"(e) {
    const tr = row([[String(e.height), `/blocks/${e.height}/`], String(e.round + 1), e.proposer_org || "?", String(e.tx_count), ""], {
      height: e.height,
      round: e.round,
    });
    if (e.round > 0) tr.className = "multi-round";
    tr.cells[4].dataset.timeMs = e.time_ms;
    prepend(document.querySelector("#recent-heights tbody"), tr, 50);
    formatTimes(tr);
    setText("consensus-height", e.height + 1);
  },
});
formatTimes();
