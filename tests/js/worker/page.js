// The page tests/js/worker.test.mjs builds with Vite around wasm/examples/worker/: the same cascades over a large
// catalogue once on the main thread and once through the example's Recommender (a Web Worker), each time
// measuring the main thread's worst pause with a 5 ms timer.
import { loadModel } from 'funnel-recsys';
import { Recommender } from './recommender.mjs';

async function worstPause(work) {
  let last = performance.now();
  let worst = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last);
    last = now;
  }, 5);
  await new Promise((resolve) => setTimeout(resolve, 50));  // the timer is running
  const started = performance.now();
  const result = await work();
  const tookMs = performance.now() - started;
  clearInterval(timer);
  return { worstMs: Math.max(worst, performance.now() - last), tookMs, result };
}

globalThis.responsiveness = async (requests, budgetMs) => {
  const model = await loadModel('model.funnel');
  let count = 0;
  const onMain = await worstPause(async () => {
    const answers = [];
    for (const end = performance.now() + budgetMs; performance.now() < end; ++count) {
      const { user, options } = requests[count % requests.length];
      answers.push(model.cascade(user, options).items);
    }
    return answers.slice(0, requests.length);
  });
  model.free();
  const recommender = new Recommender();
  const info = await recommender.load('model.funnel');
  const inWorker = await worstPause(() => Promise.all(Array.from({ length: count }, (_, i) =>
    recommender.cascade(requests[i % requests.length].user, requests[i % requests.length].options).then((answer) => answer.items))));
  const error = await recommender.cascade({}).catch((caught) => `${caught.name}: ${caught.message}`);
  recommender.terminate();
  return { count, catalogueSize: info.catalogueSize, error,
           main: { worstMs: onMain.worstMs, tookMs: onMain.tookMs }, worker: { worstMs: inWorker.worstMs, tookMs: inWorker.tookMs },
           same: JSON.stringify(onMain.result) === JSON.stringify(inWorker.result.slice(0, requests.length)) };
};
