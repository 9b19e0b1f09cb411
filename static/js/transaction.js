// Transaction page: a pending transaction's status changes in place when a block includes it.
import { connectLive, formatTimes, status } from "./live.js";

const summary = document.getElementById("tx-summary");

connectLive({
  "tx.status"(e) {
    const tx = e.txs.find((t) => t.tx_id === summary.dataset.txId);
    if (!tx || summary.dataset.status !== "pending") return;
    summary.dataset.status = tx.status;
    document.getElementById("tx-status").replaceChildren(status(tx.status, tx.code));
    const step = document.getElementById("tx-pending");
    if (step) {
      step.dataset.step = tx.status;
      step.replaceChildren(`${tx.status === "committed" ? "Committed" : `Rejected (${tx.code})`} in block ${e.height}; reload for its proof.`);
    }
  },
});
formatTimes();
