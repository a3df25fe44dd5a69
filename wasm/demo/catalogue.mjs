// What the demo page shows about a dataset besides the model file: every item's readable name and tags (most
// popular first), and every user's profile (the features the user tower reads) with the items they liked, so
// that the page can find the profile closest to a visitor's picks. Written by serve.mjs into build/ at demo
// time: MovieLens titles and genres are read from ../shared/data/ml-100k in place (research-only data, never
// copied into the repository); the built-in dataset's item names are generated from its items.csv.
import { readFileSync } from 'node:fs';

export const csv = (file, separator = ',') => readFileSync(file, 'latin1').trim().split('\n').map((line) => line.split(separator));

// Item keys in order of popularity (interaction count, then key), and each user's items (once each, oldest first).
function usage(interactions, { user = 0, item = 1, time = 2, liked = () => true }) {
  const count = new Map();
  const byUser = new Map();
  for (const row of interactions) {
    count.set(row[item], (count.get(row[item]) ?? 0) + 1);
    if (!liked(row)) continue;
    if (!byUser.has(row[user])) byUser.set(row[user], []);
    byUser.get(row[user]).push([Number(row[time]), row[item]]);
  }
  const histories = new Map([...byUser].map(([key, list]) =>
    [key, [...new Set(list.sort((a, b) => a[0] - b[0]).map(([, itemKey]) => itemKey))]]));
  return { count, histories };
}

// The page's catalogue: items sorted by popularity, users' liked items as indices into that order.
function assemble(name, noun, items, count, users, userKey, histories, anonymous) {
  items.sort((a, b) => (count.get(b.key) ?? 0) - (count.get(a.key) ?? 0) || a.key.localeCompare(b.key, 'en', { numeric: true }));
  const index = new Map(items.map((item, i) => [item.key, i]));
  return {
    name, noun, userKey, items, users, anonymous,
    liked: users.map((u) => (histories.get(String(u[userKey])) ?? []).map((key) => index.get(key)).filter((i) => i !== undefined)),
  };
}

// "Usual Suspects, The (1995)" -> { title: "The Usual Suspects", year: "1995" }.
export function movieTitle(raw) {
  const match = /^(.*?)\s*\((\d{4})\)\s*$/.exec(raw);
  let title = match ? match[1] : raw.trim();
  const article = /^(.*), (The|A|An)$/.exec(title);
  if (article) title = `${article[2]} ${article[1]}`;
  return { title, year: match ? match[2] : '' };
}

// MovieLens 100K: titles and genres from u.item (the genre names from the dataset description), profiles from
// u.user with the features, columns and types the dataset description gives (a feature with boundaries is a
// number), liked = rated 4 or 5 (u.data's third column, which the description does not name: it is no feature).
export function movieLensCatalogue(data, description) {
  const genres = description.items.features.find((f) => f.name === 'genres').flags;
  const items = csv(`${data}/${description.items.path}`, description.items.delimiter).map((row) => {
    const { title, year } = movieTitle(row[1]);  // u.item's title column: no feature, so not in the description
    const tags = genres.names.filter((g, i) => row[genres.first_column + i] === '1' && g !== 'unknown');
    return { key: row[description.items.key], title, detail: year, tags };
  });
  const { features, key } = description.users;
  const users = csv(`${data}/${description.users.path}`, description.users.delimiter)
    .map((row) => Object.fromEntries(features.map((f) => [f.name, f.boundaries ? Number(row[f.column]) : row[f.column]])));
  const userKey = features.find((f) => f.column === key).name;
  const { interactions } = description;
  const { count, histories } = usage(csv(`${data}/${interactions.path}`, interactions.delimiter),
                                     { user: interactions.user, item: interactions.item, time: interactions.timestamp,
                                       liked: (row) => Number(row[2]) >= 4 });
  const anonymous = Object.fromEntries(features.map((f) => [f.name, '']));  // every feature unknown
  return assemble('MovieLens 100K', 'films', items, count, users, userKey, histories, anonymous);
}

// The built-in dataset's names: a department per category, an adjective per tag (so an item's name says what
// its tags are), a noun of its department chosen by its key. Generated: no item is named by hand.
const DEPARTMENTS = [
  ['Kitchen', 'Kettle', 'Skillet', 'Teapot', 'Whisk', 'Colander', 'Grater'],
  ['Garden', 'Trowel', 'Planter', 'Watering Can', 'Lantern', 'Birdhouse', 'Rake'],
  ['Books', 'Novel', 'Atlas', 'Cookbook', 'Anthology', 'Field Guide', 'Memoir'],
  ['Music', 'Ukulele', 'Harmonica', 'Drum Pad', 'Songbook', 'Metronome', 'Tambourine'],
  ['Outdoor', 'Tent', 'Backpack', 'Compass', 'Hammock', 'Canteen', 'Headlamp'],
  ['Home', 'Cushion', 'Throw', 'Lamp', 'Vase', 'Clock', 'Mirror'],
  ['Toys', 'Kite', 'Puzzle', 'Yo-yo', 'Robot', 'Spinning Top', 'Marble Run'],
  ['Sports', 'Racket', 'Football', 'Skipping Rope', 'Kettlebell', 'Yoga Mat', 'Frisbee'],
  ['Stationery', 'Notebook', 'Fountain Pen', 'Sketchbook', 'Planner', 'Pencil Case', 'Ink Set'],
  ['Bath', 'Soap', 'Hand Cream', 'Face Oil', 'Bath Salts', 'Lip Balm', 'Candle'],
  ['Tea & Coffee', 'Blend', 'Roast', 'Infusion', 'Pour-over', 'Caddy', 'Grinder'],
  ['Electronics', 'Speaker', 'Charger', 'Headset', 'Keyboard', 'Webcam', 'Power Bank'],
  ['Pets', 'Collar', 'Leash', 'Pet Bed', 'Chew Toy', 'Feeder', 'Scratcher'],
  ['Fashion', 'Scarf', 'Beanie', 'Tote', 'Belt', 'Gloves', 'Wallet'],
  ['Baby', 'Rattle', 'Blanket', 'Bib', 'Mobile', 'Romper', 'Teether'],
  ['Tools', 'Hammer', 'Spanner', 'Screwdriver', 'Tape Measure', 'Spirit Level', 'Saw'],
  ['Art', 'Easel', 'Palette', 'Brush Set', 'Canvas', 'Pastels', 'Clay'],
  ['Games', 'Board Game', 'Card Deck', 'Chess Set', 'Dice Set', 'Dominoes', 'Jigsaw'],
  ['Bakery', 'Sourdough', 'Croissant', 'Brioche', 'Bagel', 'Focaccia', 'Scone'],
  ['Travel', 'Suitcase', 'Passport Wallet', 'Neck Pillow', 'Packing Cube', 'Luggage Tag', 'Adapter'],
];
const ADJECTIVES = ['Classic', 'Compact', 'Deluxe', 'Rustic', 'Modern', 'Nordic', 'Everyday', 'Golden', 'Midnight',
  'Coastal', 'Alpine', 'Urban', 'Organic', 'Handmade', 'Pocket', 'Grand', 'Little', 'Silver', 'Velvet', 'Wild',
  'Sunny', 'Misty', 'Royal', 'Smart', 'Breezy', 'Cosy', 'Bold', 'Gentle', 'Vintage', 'Bright', 'Quiet', 'Lucky',
  'Crimson', 'Emerald', 'Sapphire', 'Amber', 'Ivory', 'Copper', 'Linen', 'Maple'];
const hash = (text) => [...text].reduce((h, c) => Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0, 2166136261);

export function departmentName(category) {
  const c = Number(/\d+$/.exec(category)?.[0] ?? hash(category));
  const name = DEPARTMENTS[c % DEPARTMENTS.length][0];
  return c < DEPARTMENTS.length ? name : `${name} ${Math.floor(c / DEPARTMENTS.length) + 1}`;
}

// The name's candidates, best first: the adjectives of its tags with each noun of its department, starting at
// the one its key picks.
export function productNames(key, category, tags) {
  const c = Number(/\d+$/.exec(category)?.[0] ?? hash(category));
  const nouns = DEPARTMENTS[c % DEPARTMENTS.length].slice(1);
  const adjectives = [...new Set(tags.map((tag) => {
    const [, tc, tj] = /^t(\d+)_(\d+)$/.exec(tag) ?? [0, hash(tag), 0];
    return ADJECTIVES[(Number(tc) * 4 + Number(tj)) % ADJECTIVES.length];
  }))].slice(0, 2);
  const first = hash(key) % nouns.length;
  return nouns.map((_, n) => [...adjectives, nouns[(first + n) % nouns.length]].join(' '));
}

// The built-in dataset (funnel generate): items.csv (item_id,category,price,tags), users.csv, interactions.csv.
export function builtinCatalogue(data) {
  const [, ...rows] = csv(`${data}/items.csv`);
  const taken = new Map();
  const items = rows.map(([key, category, price, tags]) => {
    const names = productNames(key, category, tags.split('|'));
    let title = names.find((name) => !taken.has(name));
    if (!title) {  // every noun taken with these adjectives: the first name again, numbered
      taken.set(names[0], taken.get(names[0]) + 1);
      title = `${names[0]} No. ${taken.get(names[0])}`;
    }
    taken.set(title, 1);
    return { key, title, detail: `$${price}`, tags: [departmentName(category)] };
  });
  const [header, ...userRows] = csv(`${data}/users.csv`);
  const users = userRows.map((row) => Object.fromEntries(row.map((value, i) =>
    [header[i], value !== '' && !Number.isNaN(Number(value)) ? Number(value) : value])));
  const { count, histories } = usage(csv(`${data}/interactions.csv`).slice(1), {});
  const anonymous = Object.fromEntries(header.map((name) => [name, '']));  // every feature unknown
  return assemble('Built-in shop (synthetic)', 'products', items, count, users, 'user_id', histories, anonymous);
}
