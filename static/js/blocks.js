// Block list and block page: new blocks appear at the top of the unfiltered first page,
// and a block page's "next" link appears once the next block commits.
import { connectLive, formatTimes, prepend, row } from "./live.js";

const list = document.getElementById("block-list");
const nav = document.getElementById("block-nav");

connectLive({
  "block.committed"(e) {
    if (list && list.dataset.livePrepend === "true") {
      const tr = row([[String(e.height), `/blocks/${e.height}/`], `${e.hash.slice(0, 16)}…`, String(e.tx_count), String(e.round), e.proposer_org || "?", ""], {
        height: e.height,
      });
      tr.cells[5].dataset.timeMs = e.time_ms;
      prepend(list.tBodies[0], tr, 50);
      formatTimes(tr);
    }
    if (nav && e.height === Number(nav.dataset.height) + 1) {
      document.getElementById("next-block").hidden = false;
      document.getElementById("newest-note")?.remove();
    }
  },
});
formatTimes();
