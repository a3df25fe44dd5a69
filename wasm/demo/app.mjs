// The demo page: the package (from /package/), the demo's models (from /models/), one user's cascade:
// retrieval's candidates, the ranking stage's order of them, the final k, each with its time.
import { loadModel, threads } from '/package/index.mjs';

const $ = (id) => document.getElementById(id);
const sets = await (await fetch('/models/index.json')).json();
const state = {};

function list(element, items, title) {
  element.replaceChildren(...items.map(({ key, score }) => {
    const li = document.createElement('li');
    li.dataset.key = key;
    li.textContent = title(key);
    const span = document.createElement('span');
    span.className = 'score';
    span.textContent = ` ${score.toFixed(4)}`;
    li.append(span);
    return li;
  }));
}

// Only the features a model reads: the retrieval and ranking files need not read the same ones.
const featuresFor = (model, features) => {
  const names = new Set(model.inspect().features.map((f) => f.name));
  return Object.fromEntries(Object.entries(features).filter(([name]) => names.has(name)));
};

function recommend() {
  $('error').textContent = '';
  const { demo, model, ranker } = state;
  try {
    const features = JSON.parse($('features').value);
    const behaviours = $('behaviours').value.split(/[\s,]+/).filter(Boolean);
    const k = Number($('k').value);
    const retrieveK = Math.max(k, Number($('retrieve-k').value));
    const title = (key) => (demo.titles?.[key] ? `${key} ${demo.titles[key]}` : key);
    // Retrieval: the whole cascade of the retrieval file (it has no other stage), leaving out what the user has seen.
    const retrieved = model.cascade(featuresFor(model, features), { k: retrieveK, exclude: behaviours });
    list($('retrieval'), retrieved.items, title);
    $('t-retrieval').textContent = `${retrieved.timings.retrievalMs.toFixed(3)} ms`;
    let final = retrieved.items.slice(0, k);
    let total = retrieved.timings.totalMs;
    if (ranker) {
      const candidates = retrieved.items.map((item) => item.key);
      const ranked = ranker.cascade(featuresFor(ranker, features), { k: candidates.length, candidates, behaviours });
      list($('ranking'), ranked.items, title);
      $('t-ranking').textContent = `${ranked.timings.rankingMs.toFixed(3)} ms`;
      final = ranked.items.slice(0, k);
      total += ranked.timings.totalMs;
    } else {
      $('ranking').replaceChildren();
      $('t-ranking').textContent = '(no ranking model for this dataset)';
    }
    list($('final'), final, title);
    $('t-total').textContent = `${total.toFixed(3)} ms in all`;
    document.body.dataset.ready = 'true';
  } catch (error) {
    $('error').textContent = error.message;
  }
}

function pickUser() {
  const { demo } = state;
  const user = demo.users[Number($('user').value)];
  $('features').value = JSON.stringify(user, null, 1);
  $('behaviours').value = (demo.behaviours[user[demo.userKey]] ?? []).join(' ');
  recommend();
}

async function pickDataset() {
  document.body.dataset.ready = 'false';
  const name = $('dataset').value;
  state.model?.free();
  state.ranker?.free();
  const demo = await (await fetch(`/models/${name}/demo.json`)).json();
  const model = await loadModel(`/models/${demo.model}`);
  const ranker = demo.ranker ? await loadModel(`/models/${demo.ranker}`) : undefined;
  Object.assign(state, { demo, model, ranker });
  $('user').replaceChildren(...demo.users.map((user, i) => new Option(user[demo.userKey], i)));
  const info = model.inspect();
  $('status').textContent = `${demo.name}: ${info.catalogueSize} items, ${info.embeddingDim}-d embeddings` +
    `${ranker ? ', a ranking stage' : ''}; WebAssembly on ${await threads()} thread(s)` +
    `${crossOriginIsolated ? ' (cross-origin isolated)' : ''}`;
  pickUser();
}

$('dataset').replaceChildren(...sets.map((name) => new Option(name, name)));
$('dataset').addEventListener('change', pickDataset);
$('user').addEventListener('change', pickUser);
$('run').addEventListener('click', recommend);
await pickDataset();
