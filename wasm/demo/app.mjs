// The demo page: the package (from /package/), the demo's three-stage file (from /models/), one user's
// cascade: retrieval's candidates, pre-ranking's shortlist of them, the ranking stage's final k, each with its time.
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

// One user's cascade through the one three-stage file: the full call gives the recommendations and each
// stage's time; two more calls, each leaving the later stages out, show what retrieval and pre-ranking passed on.
function recommend() {
  $('error').textContent = '';
  const { demo, model } = state;
  try {
    const features = JSON.parse($('features').value);
    const behaviours = $('behaviours').value.split(/[\s,]+/).filter(Boolean);
    const k = Number($('k').value);
    const retrieveK = Math.max(k, Number($('retrieve-k').value));
    const prerankK = Math.min(retrieveK, Math.max(k, Number($('prerank-k').value)));
    const title = (key) => (demo.titles?.[key] ? `${key} ${demo.titles[key]}` : key);
    const request = { k, retrieveK, prerankK, behaviours, exclude: behaviours };
    const whole = model.cascade(features, request);
    const retrieved = model.cascade(features, { ...request, k: retrieveK, skip: ['preRanking', 'ranking'] });
    list($('retrieval'), retrieved.items, title);
    const ms = (value) => (value === null ? '' : `${value.toFixed(3)} ms`);
    $('t-retrieval').textContent = ms(whole.timings.retrievalMs);
    if (model.hasPreRanking) {
      const preRanked = model.cascade(features, { ...request, k: prerankK, skip: ['ranking'] });
      list($('pre-ranking'), preRanked.items, title);
    } else {
      $('pre-ranking').replaceChildren();
    }
    $('t-pre-ranking').textContent = model.hasPreRanking ? ms(whole.timings.preRankingMs) : '(no pre-ranking stage in this file)';
    $('t-ranking').textContent = model.hasRanking ? ms(whole.timings.rankingMs) : '(no ranking stage in this file)';
    list($('final'), whole.items, title);
    $('t-total').textContent = `${whole.timings.totalMs.toFixed(3)} ms in all`;
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
  const demo = await (await fetch(`/models/${name}/demo.json`)).json();
  const model = await loadModel(`/models/${demo.model}`);
  Object.assign(state, { demo, model });
  $('user').replaceChildren(...demo.users.map((user, i) => new Option(user[demo.userKey], i)));
  const info = model.inspect();
  $('status').textContent = `${demo.name}: ${info.catalogueSize} items, ${info.embeddingDim}-d embeddings` +
    `; stages: retrieval${model.hasPreRanking ? ', pre-ranking' : ''}${model.hasRanking ? ', ranking' : ''}` +
    `; WebAssembly on ${await threads()} thread(s)` +
    `${crossOriginIsolated ? ' (cross-origin isolated)' : ''}`;
  pickUser();
}

$('dataset').replaceChildren(...sets.map((name) => new Option(name, name)));
$('dataset').addEventListener('change', pickDataset);
$('user').addEventListener('change', pickUser);
$('run').addEventListener('click', recommend);
await pickDataset();
