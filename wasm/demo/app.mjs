// The demo page: the package (from /package/, its threads entry), a dataset's three-stage file and catalogue
// (from /models/, written by serve.mjs). The visitor picks items they liked from a searchable list; on every
// change the cascade runs again: retrieval's candidates, pre-ranking's shortlist of them and the ranking
// stage's final k, each stage with its time inside the SDK. The picks are the behaviour sequence pre-ranking
// and ranking read; the retrieval tower reads user features, not a history, so it gets the profile of the
// dataset's user whose liked items are closest to the picks (cosine of the two sets): a visitor with no picks
// is a user the model knows nothing of.
import { loadModel, threads } from '/package/threads.mjs';  // the threaded build where the page is isolated

const $ = (id) => document.getElementById(id);
const state = { picks: [], active: -1, shown: [], loads: 0 };
const MAX_OPTIONS = 40;

// A JSON file of the server's, or an error naming it and the HTTP status.
async function fetchJson(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status} ${response.statusText}`);
  return response.json();
}

const element = (tag, className, text) => {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
};

// One item as the lists show it: its title (and the stage's score), then its year or price and its genres or
// department.
function itemBody(node, item, score) {
  const head = element('span', 'head');
  head.append(element('span', 'title', item.title));
  if (score !== undefined) head.append(element('span', 'score', score.toFixed(3)));
  const meta = element('span', 'meta');
  if (item.detail) meta.append(element('span', 'detail', item.detail));
  for (const tag of item.tags) meta.append(element('span', 'tag', tag));
  node.append(head, meta);
  return node;
}

// The searchable list: every word typed must appear in the title, year or tags; most popular first.
function filterOptions() {
  const { demo, picks } = state;
  const words = $('search').value.toLowerCase().split(/\s+/).filter(Boolean);
  const matches = [];
  for (let i = 0; i < demo.items.length; ++i) {
    if (!picks.includes(i) && words.every((word) => state.haystack[i].includes(word))) matches.push(i);
  }
  state.shown = matches.slice(0, MAX_OPTIONS);
  state.active = state.shown.length && words.length ? 0 : -1;
  $('search').setAttribute('aria-expanded', String(state.shown.length > 0));
  $('options').replaceChildren(...state.shown.map((i, n) => {
    const li = itemBody(element('li', 'option'), demo.items[i]);
    li.id = `option-${n}`;
    li.setAttribute('role', 'option');
    li.dataset.key = demo.items[i].key;
    li.addEventListener('mousedown', (event) => event.preventDefault());  // keep the focus in the search box
    li.addEventListener('click', () => pick(i));
    return li;
  }));
  $('match-count').textContent = words.length
    ? `${matches.length} of ${demo.items.length} ${demo.noun} match${matches.length > MAX_OPTIONS ? `; the ${MAX_OPTIONS} most popular shown` : ''}`
    : `the most popular ${demo.noun}; type to search all ${demo.items.length}`;
  highlight();
}

function highlight() {
  [...$('options').children].forEach((li, n) => li.setAttribute('aria-selected', String(n === state.active)));
  const active = $(`option-${state.active}`);
  if (active) {
    $('search').setAttribute('aria-activedescendant', active.id);
    active.scrollIntoView({ block: 'nearest' });
  } else {
    $('search').removeAttribute('aria-activedescendant');
  }
}

function onSearchKey(event) {
  const count = state.shown.length;
  if (event.key === 'ArrowDown' && count) state.active = (state.active + 1) % count;
  else if (event.key === 'ArrowUp' && count) state.active = (state.active - 1 + count) % count;
  else if (event.key === 'Enter' && count) pick(state.shown[Math.max(state.active, 0)]);
  else if (event.key === 'Escape') { $('search').value = ''; filterOptions(); }
  else if (event.key === 'Backspace' && !$('search').value && state.picks.length) unpick(state.picks.length - 1);
  else return;
  event.preventDefault();
  highlight();
}

function pick(i) {
  state.picks.push(i);
  $('search').value = '';
  changed();
  $('search').focus();
}

function unpick(position) {
  state.picks.splice(position, 1);
  changed();
}

function changed() {
  const { demo, picks } = state;
  $('picks').replaceChildren(...picks.map((i, position) => {
    const item = demo.items[i];
    const chip = element('li', 'chip');
    chip.dataset.key = item.key;
    chip.append(element('span', '', item.title));
    const remove = element('button', 'remove', '×');
    remove.type = 'button';
    remove.setAttribute('aria-label', `remove ${item.title}`);
    remove.addEventListener('click', () => { unpick(position); $('search').focus(); });
    chip.append(remove);
    return chip;
  }));
  $('pick-count').textContent = picks.length ? `(${picks.length})` : '';
  filterOptions();
  recommend();
}

// The dataset user whose liked items are closest to the picks (cosine of the two sets), or none.
function closestProfile() {
  const { demo, picks } = state;
  const chosen = new Set(picks);
  let best = { user: -1, score: 0, common: 0 };
  demo.liked.forEach((liked, user) => {
    let common = 0;
    for (const i of liked) common += chosen.has(i);
    const score = common / Math.sqrt(liked.length * chosen.size);
    if (common && score > best.score) best = { user, score, common };
  });
  return best;
}

function describeProfile(match) {
  const { demo, picks } = state;
  if (match.user < 0) {
    return picks.length ? 'No profile in the data liked any of your picks: retrieval sees an unknown visitor.'
      : `No picks yet: these are the recommendations for a visitor the model knows nothing about.`;
  }
  const user = demo.users[match.user];
  const traits = Object.entries(user).filter(([name]) => name !== demo.userKey && name !== 'zip3').map(([n, v]) => `${n} ${v}`).join(', ');
  return `Retrieval reads the profile of user ${user[demo.userKey]} (${traits}), who liked ${match.common} of your ` +
    `${picks.length} pick${picks.length > 1 ? 's' : ''}; pre-ranking and ranking read your picks themselves.`;
}

function list(id, items, finalKeys) {
  const { byKey } = state;
  $(id).replaceChildren(...items.map(({ key, score }) => {
    const kept = finalKeys?.has(key);
    const li = itemBody(element('li', kept ? 'kept' : ''), byKey.get(key) ?? { title: key, tags: [] }, score);
    if (kept) li.querySelector('.head').append(element('span', 'visually-hidden', ', in your final recommendations'));
    li.dataset.key = key;
    li.title = `item ${key}, score ${score.toFixed(4)}`;
    return li;
  }));
}

// The cascade for the current picks: the whole call gives the recommendations and each stage's time; two more
// calls, each leaving the later stages out, show what retrieval and pre-ranking passed on.
function recommend() {
  $('error').textContent = '';
  const { demo, model, picks } = state;
  try {
    const match = closestProfile();
    const features = match.user < 0 ? demo.anonymous : demo.users[match.user];
    const behaviours = picks.map((i) => demo.items[i].key);
    const k = Number($('k').value);
    const retrieveK = Math.max(k, Number($('retrieve-k').value));
    const prerankK = Math.min(retrieveK, Math.max(k, Number($('prerank-k').value)));
    const request = { k, retrieveK, prerankK, behaviours, exclude: behaviours };
    const whole = model.cascade(features, request);
    const finalKeys = new Set(whole.items.map((item) => item.key));
    const ms = (value) => (value === null ? 'not in this file' : `${value.toFixed(2)} ms`);
    list('retrieval', model.cascade(features, { ...request, k: retrieveK, skip: ['preRanking', 'ranking'] }).items, finalKeys);
    if (model.hasPreRanking) list('pre-ranking', model.cascade(features, { ...request, k: prerankK, skip: ['ranking'] }).items, finalKeys);
    else $('pre-ranking').replaceChildren();
    list('final', whole.items);
    $('t-retrieval').textContent = ms(whole.timings.retrievalMs);
    $('t-pre-ranking').textContent = ms(whole.timings.preRankingMs);
    $('t-ranking').textContent = ms(whole.timings.rankingMs);
    $('what-retrieval').textContent = `Two towers: the profile's embedding against all ${demo.items.length} ${demo.noun}; keeps ${retrieveK}.`;
    $('what-pre-ranking').textContent = `A small AutoFAS network reads your picks; keeps ${prerankK} of the ${retrieveK}.`;
    $('what-ranking').textContent = `The CAN ranker scores each with your picks: your top ${k}.`;
    $('t-total').textContent = `${whole.timings.totalMs.toFixed(2)} ms for the whole funnel, in WebAssembly ` +
      `(${state.threads > 1 ? 'the threaded build' : 'single-threaded'}). Highlighted in stages 1 and 2: what made the final ${k}.`;
    $('profile').textContent = describeProfile(match);
    $('request').textContent = JSON.stringify({ features, ...request }, null, 1);
    // Read out once per change (the lists themselves are not live: three lists of up to 100 would be noise).
    const top = whole.items.slice(0, 3).map(({ key }) => state.byKey.get(key)?.title ?? key);
    $('live-summary').textContent = `Recommendations updated for ${picks.length} pick${picks.length === 1 ? '' : 's'}: ` +
      `${whole.items.length} ${demo.noun}, first ${top.join(', ')}.`;
    document.body.dataset.ready = 'true';
  } catch (error) {
    $('error').textContent = error.message;
  }
}

function surprise() {
  const { demo } = state;
  const candidates = demo.liked.map((liked, user) => [user, liked]).filter(([, liked]) => liked.length >= 5);
  const [, liked] = candidates[Math.floor(Math.random() * candidates.length)];
  state.picks = liked.slice(-5);
  changed();
}

// Loads the chosen dataset's file and catalogue, then swaps them in and frees the old model: the page keeps
// answering with the old one while the new one loads, and a load overtaken by a later pick is dropped. A load
// that fails leaves the old model in place and says why in #error.
async function pickDataset() {
  const load = ++state.loads;
  document.body.dataset.ready = 'false';
  const name = $('dataset').value;
  let model;
  try {
    const demo = await fetchJson(`/models/${name}/demo.json`);
    model = await loadModel(`/models/${demo.model}`);
    const threadCount = await threads();
    if (load !== state.loads) return model.free();
    const old = state.model;
    Object.assign(state, {
      demo, model, picks: [], threads: threadCount,
      byKey: new Map(demo.items.map((item) => [item.key, item])),
      haystack: demo.items.map((item) => [item.title, item.detail, ...item.tags].join(' ').toLowerCase()),
    });
    old?.free();
  } catch (error) {
    if (model && model !== state.model) model.free();
    if (load === state.loads) $('error').textContent = `Could not load the ${name} catalogue: ${error.message}`;
    return undefined;
  }
  const { demo, model: current } = state;
  for (const node of document.querySelectorAll('.noun')) node.textContent = demo.noun;
  $('taste-title').textContent = demo.noun === 'films' ? 'Which films did you like?' : 'What did you like?';
  $('search').placeholder = `Search ${demo.items.length} ${demo.noun}…`;
  $('fields').textContent = demo.noun === 'films' ? 'year or genre' : 'department or price';
  $('search-label').textContent = `Search ${demo.noun} by title, ${demo.noun === 'films' ? 'year or genre' : 'department or price'}`;
  const info = current.inspect();
  $('status').textContent = `${demo.name}: ${info.catalogueSize} items, ${info.embeddingDim}-d embeddings, ` +
    `${(info.byteSize / 1024).toFixed(0)} KiB model file, loaded by the funnel-recsys package` +
    `${crossOriginIsolated ? ' (the page is cross-origin isolated)' : ''}.`;
  changed();
  return undefined;
}

let sets = [];
try {
  sets = await fetchJson('/models/index.json');
} catch (error) {
  $('error').textContent = `Could not list the catalogues: ${error.message}`;
}
$('dataset').replaceChildren(...sets.map(({ id, name }) => new Option(name, id)));
$('dataset').addEventListener('change', pickDataset);
$('search').addEventListener('input', filterOptions);
$('search').addEventListener('keydown', onSearchKey);
$('clear').addEventListener('click', () => { state.picks = []; changed(); });
$('sample').addEventListener('click', surprise);
for (const id of ['k', 'retrieve-k', 'prerank-k']) $(id).addEventListener('change', recommend);
if (sets.length) await pickDataset();
