// The threaded entry (funnel-recsys/threads) has the same API and types as the default one.
import { type CascadeResult, loadModel, threads } from 'funnel-recsys/threads';

const model = await loadModel(new Uint8Array(await (await fetch('/model.funnel')).arrayBuffer()));
const count: number = await threads();  // up to 4 on a cross-origin isolated page, else 1
const result: CascadeResult = model.cascade({ user_id: 'u42' }, { k: 10 });
console.log(count, result.items.length);
model.free();
