// The CommonJS entry (require), typed by index.d.cts: the same functions, and the types by name.
import funnel = require('funnel-recsys');

async function main(path: string): Promise<void> {
  const model: funnel.FunnelModel = await funnel.loadModel(path);
  const options: funnel.CascadeOptions = { k: 3 };
  const items: funnel.CascadeResult['items'] = model.cascade({ user_id: 'u42' }, options).items;
  console.log(await funnel.version(), await funnel.threads(), items);
  // @ts-expect-error: loadModel takes bytes, a URL or a path
  await funnel.loadModel(42);
  model.free();
}
void main('model.funnel');
