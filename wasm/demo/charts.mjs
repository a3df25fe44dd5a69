// The trainer's metrics log (`funnel train --metrics-log`, JSON lines, one per epoch) as charts: loss,
// validation recall (or AUC for a ranker), and feature drift (how far embeddings move per dt steps).
// uPlot is served from /vendor/, copied there from node_modules by serve.mjs.
import uPlot from '/vendor/uPlot.esm.js';

const $ = (id) => document.getElementById(id);
// A file of the server's, or an error naming it and the HTTP status.
async function fetchOk(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status} ${response.statusText}`);
  return response;
}
const COLOURS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b'];

// The chart's text alternative: each series' first and last value, its lowest and highest.
function describe(title, xLabel, x, series) {
  const number = (v) => (Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3));
  return `${title}, over ${x.length} ${xLabel}${x.length === 1 ? '' : 's'}. ` + series.map(([label, values]) => {
    const known = values.map((v, i) => [x[i], v]).filter(([, v]) => v !== null && Number.isFinite(v));
    if (!known.length) return `${label}: no values.`;
    const ys = known.map(([, v]) => v);
    return `${label}: ${number(known[0][1])} at ${xLabel} ${known[0][0]}, ${number(known.at(-1)[1])} at ${xLabel} ${known.at(-1)[0]}` +
      ` (lowest ${number(Math.min(...ys))}, highest ${number(Math.max(...ys))}).`;
  }).join(' ');
}

function chart(title, xLabel, x, series) {
  const box = document.createElement('figure');
  box.className = 'chart';
  box.setAttribute('role', 'img');
  box.setAttribute('aria-label', describe(title, xLabel, x, series));
  $('charts').append(box);
  new uPlot({
    title, width: 560, height: 300,
    scales: { x: { time: false } },
    axes: [{ label: xLabel }, {}],
    series: [{ label: xLabel }, ...series.map(([label], i) => ({ label, stroke: COLOURS[i % COLOURS.length], width: 2 }))],
  }, [x, ...series.map(([, values]) => values)], box);
}

async function draw() {
  document.body.dataset.ready = 'false';
  $('charts').replaceChildren();
  $('error').textContent = '';
  try {
    await drawCharts();
  } catch (error) {
    $('error').textContent = `Could not draw the charts: ${error.message}`;
  }
}

async function drawCharts() {
  const demo = await (await fetchOk(`/models/${$('dataset').value}/demo.json`)).json();
  for (const file of demo.metrics) {
    const text = await (await fetchOk(`/models/${file}`)).text();
    // A whole-funnel log holds every stage's epochs: the ranking stages' lines name their stage.
    const lines = text.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line));
    for (const stage of [...new Set(lines.map((e) => e.stage ?? 'retrieval'))]) {
      const epochs = lines.filter((e) => (e.stage ?? 'retrieval') === stage);
      const name = demo.metrics.length > 1 ? `${file.split('/').pop()}, ${stage}` : stage;
      const x = epochs.map((e, i) => e.epoch ?? i + 1);
      chart(`${name}: training loss`, 'epoch', x, [['loss', epochs.map((e) => e.loss ?? null)]]);
      const keys = [...new Set(epochs.flatMap((e) => Object.keys(e.validation ?? {})))]
        .filter((key) => /^(recall@|auc|ndcg@10|logloss)/.test(key));
      if (keys.length) chart(`${name}: validation`, 'epoch', x, keys.map((key) => [key, epochs.map((e) => e.validation?.[key] ?? null)]));
      const drift = epochs.flatMap((e) => e.drift ?? []);
      if (drift.length) {
        const dts = [...new Set(drift.map((d) => d.dt))].sort((a, b) => a - b);
        const steps = [...new Set(drift.map((d) => d.step - d.dt))].sort((a, b) => a - b);
        const at = new Map(drift.map((d) => [`${d.step - d.dt}/${d.dt}`, d.mean]));
        chart(`${name}: feature drift (mean embedding change over dt steps)`, 'step', steps,
              dts.map((dt) => [`dt ${dt}`, steps.map((s) => at.get(`${s}/${dt}`) ?? null)]));
      }
    }
  }
  $('status').textContent = `${demo.name}: ${demo.metrics.join(', ')}`;
  document.body.dataset.ready = 'true';
}

let sets = [];
try {
  sets = await (await fetchOk('/models/index.json')).json();
} catch (error) {
  $('error').textContent = `Could not list the catalogues: ${error.message}`;
}
$('dataset').replaceChildren(...sets.map(({ id, name }) => new Option(name, id)));
$('dataset').addEventListener('change', draw);
if (sets.length) await draw();
