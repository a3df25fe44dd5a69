// The trainer's metrics log (`funnel train --metrics-log`, JSON lines, one per epoch) as charts: loss,
// validation recall (or AUC for a ranker), and feature drift (how far embeddings move per dt steps).
// uPlot is served from /vendor/, copied there from node_modules by serve.mjs.
import uPlot from '/vendor/uPlot.esm.js';

const $ = (id) => document.getElementById(id);
const sets = await (await fetch('/models/index.json')).json();
const COLOURS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b'];

function chart(title, xLabel, x, series) {
  const box = document.createElement('div');
  box.className = 'chart';
  $('charts').append(box);
  new uPlot({
    title, width: 560, height: 300,
    scales: { x: { time: false } },
    axes: [{ label: xLabel }, {}],
    series: [{ label: xLabel }, ...series.map(([label], i) => ({ label, stroke: COLOURS[i % COLOURS.length], width: 2 }))],
  }, [x, ...series.map(([, values]) => values)], box);
}

async function draw() {
  $('charts').replaceChildren();
  const demo = await (await fetch(`/models/${$('dataset').value}/demo.json`)).json();
  for (const file of demo.metrics) {
    const text = await (await fetch(`/models/${file}`)).text();
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

$('dataset').replaceChildren(...sets.map(({ id, name }) => new Option(name, id)));
$('dataset').addEventListener('change', draw);
await draw();
