// Funnel for CommonJS: the same API as index.mjs (whose every entry point is asynchronous), loaded on first use.
'use strict';
let api;
const load = () => (api ??= import('./index.mjs'));
exports.loadModel = (source) => load().then((m) => m.loadModel(source));
exports.version = () => load().then((m) => m.version());
exports.threads = () => load().then((m) => m.threads());
