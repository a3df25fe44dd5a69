// Every export of funnel-recsys, typed: tsc --strict checks this file against the package's declarations
// (tests/js/typescript.test.mjs). The @ts-expect-error lines are mistakes the types must refuse.
import {
  type CascadeOptions, type CascadeResult, type FeatureInfo, type Features, FunnelModel, loadModel, type ModelInfo,
  type ModelSource, type RankRequest, type Recommendation, type RecommendOptions, type StageTimings, threads, version,
} from 'funnel-recsys';

const source: ModelSource = new URL('model.funnel', import.meta.url);
const model: FunnelModel = await loadModel(source);
console.log(`funnel ${await version()} on ${await threads()} thread(s)`);

const info: ModelInfo = model.inspect();
const features: FeatureInfo[] = info.features;
const user: Features = { user_id: 'u42', age: 31, region: 'r3', device: 'ios', tags: ['a', 2] };
console.log(info.formatVersion, info.cataloguePrecision, features.map((feature) => `${feature.name}: ${feature.kind}`));

const options: CascadeOptions = { k: 10, retrieveK: 200, prerankK: 50, behaviours: ['i3', 'i8'], exclude: ['i17'], skip: ['ranking'] };
const result: CascadeResult = model.cascade(user, options);
const timings: StageTimings = result.timings;
const best: { key: string; score: number } | undefined = result.items[0];
console.log(best?.key, timings.totalMs, timings.rankingMs ?? 'no ranking stage');

const recommendOptions: RecommendOptions = { k: 5, exclude: ['i17'] };
const recommendations: Recommendation[] = model.recommend(user, recommendOptions);
console.log(recommendations.map(({ key, index, score }) => `${key} (${index}) ${score.toFixed(3)} = ${model.itemKey(index)}`));

const request: RankRequest = { behaviours: ['i3', 'i8'], candidates: ['i5', 'i9'] };
const clicks: Float32Array = model.hasRanking ? model.rank(user, request) : new Float32Array();
const preClicks: Float32Array = model.hasPreRanking ? model.prerank(user, request) : new Float32Array();
const embedding: Float32Array = model.userEmbedding(user);
console.log(clicks, preClicks, embedding.length === model.embeddingDim, model.catalogueSize);

// @ts-expect-error: a misspelt option (the JS throws a TypeError naming it)
model.cascade(user, { retrieve_k: 20 });
// @ts-expect-error: a stage that cannot be skipped
model.cascade(user, { skip: ['retrieval'] });
// @ts-expect-error: feature values are strings, numbers or arrays of them
model.recommend({ active: true });
// @ts-expect-error: rank needs candidates
model.rank(user, { behaviours: ['i3'] });
// @ts-expect-error: the constructor is the package's: models come from loadModel
new FunnelModel();
// @ts-expect-error: the model's sizes are read-only
model.catalogueSize = 0;

model.free();
