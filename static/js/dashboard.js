// Dashboard: counters, charts and the latest blocks and transactions, kept live by the feed.
import { ago, connectLive, formatTimes, pageData, prepend, quorumTracker, row, status } from "./live.js";

const KEEP_ROWS = 10;
const KEEP_POINTS = 60;
const data = pageData("chart-data");
const blocks = data.blocks;
const minutes = data.minutes;

function chart(id, type, labels, values, label) {
  const canvas = document.getElementById(id);
  if (!canvas || !window.Chart) return null;
  return new window.Chart(canvas, {
    type,
    data: { labels, datasets: [{ label, data: values, borderColor: "#1f5fbf", backgroundColor: "#1f5fbf55" }] },
    options: { animation: false, plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true } } },
  });
}

const minuteLabel = (ms) => new Date(ms).toISOString().slice(11, 16);
// Each chart gets its own copy of the labels: push() adds one label per chart per block.
const perBlock = chart("chart-tx-per-block", "bar", [...blocks.heights], blocks.tx_counts, "transactions");
const blockTime = chart("chart-block-time", "line", [...blocks.heights], blocks.block_times, "seconds");
const perMinute = chart("chart-tx-per-minute", "bar", minutes.minutes.map(minuteLabel), minutes.tx_counts, "transactions");

function push(c, label, value) {
  if (!c) return;
  c.data.labels.push(label);
  c.data.datasets[0].data.push(value);
  if (c.data.labels.length > KEEP_POINTS) {
    c.data.labels.shift();
    c.data.datasets[0].data.shift();
  }
  c.update();
}

// Blocks of the last minute, for tx/s; seeded from the page, then from the feed.
let recent = blocks.times.map((time, i) => ({ time, txs: blocks.tx_counts[i] }));
let lastTime = blocks.times.length ? blocks.times[blocks.times.length - 1] : null;

function addToMinute(timeMs, txs) {
  const bucket = Math.floor(timeMs / 60000) * 60000;
  const last = minutes.minutes[minutes.minutes.length - 1];
  if (bucket > last) {
    for (let m = last + 60000; m <= bucket; m += 60000) {
      minutes.minutes.push(m);
      if (perMinute) perMinute.data.labels.push(minuteLabel(m));
      if (perMinute) perMinute.data.datasets[0].data.push(0);
      else minutes.tx_counts.push(0);
    }
  }
  if (!perMinute) return;
  const i = minutes.minutes.indexOf(bucket);
  if (i >= 0) perMinute.data.datasets[0].data[i] += txs;
  while (perMinute.data.labels.length > 15) {
    perMinute.data.labels.shift();
    perMinute.data.datasets[0].data.shift();
    minutes.minutes.shift();
  }
  perMinute.update();
}

function setText(id, text) {
  const node = document.getElementById(id);
  if (node) node.textContent = text;
}

function tick() {
  const cutoff = Date.now() - 60000;
  recent = recent.filter((b) => b.time >= cutoff);
  setText("counter-tps", (recent.reduce((sum, b) => sum + b.txs, 0) / 60).toFixed(2));
  if (lastTime !== null) setText("counter-last-block", ago(lastTime));
}

const txCounter = document.getElementById("counter-txs");
const peersCounter = document.getElementById("counter-peers");
const quorum = quorumTracker((linked) => {
  peersCounter.textContent = linked.size;
});

connectLive({
  "block.committed"(e) {
    setText("counter-height", e.height);
    txCounter.dataset.value = Number(txCounter.dataset.value) + e.tx_count;
    txCounter.textContent = `≈ ${txCounter.dataset.value}`;
    push(perBlock, e.height, e.tx_count);
    push(blockTime, e.height, lastTime === null ? null : (e.time_ms - lastTime) / 1000);
    addToMinute(e.time_ms, e.tx_count);
    recent.push({ time: e.time_ms, txs: e.tx_count });
    lastTime = e.time_ms;
    const tr = row([[String(e.height), `/blocks/${e.height}/`], String(e.tx_count), String(e.round), e.proposer_org || "?", ""], {
      height: e.height,
    });
    tr.cells[4].dataset.timeMs = e.time_ms;
    prepend(document.querySelector("#latest-blocks tbody"), tr, KEEP_ROWS);
    formatTimes(tr);
    tick();
  },
  "tx.status"(e) {
    const tbody = document.querySelector("#latest-txs tbody");
    for (const tx of e.txs.slice(-KEEP_ROWS)) {
      const link = [`${tx.tx_id.slice(0, 16)}…`, `/tx/${tx.tx_id}/`];
      prepend(tbody, row([link, tx.type, status(tx.status, tx.code), [String(e.height), `/blocks/${e.height}/`]], { txId: tx.tx_id }), KEEP_ROWS);
    }
  },
  "peer.up"(e) {
    quorum.up(e.node_key);
  },
  "peer.down"(e) {
    quorum.down(e.node_key);
  },
});

formatTimes();
tick();
window.setInterval(tick, 1000); // a local clock for "since last block"; nothing is fetched
