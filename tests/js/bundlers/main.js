// The page every bundler builds (tests/js/bundlers.test.mjs): it imports the package as a user would, both
// entries, and answers the cascade for the users the test posts, on the model the test serves at model.funnel
// (or the file it names). A cross-origin isolated page runs the threaded entry, any other the default one.
import * as single from 'funnel-recsys';
import * as threaded from 'funnel-recsys/threads';

globalThis.funnelCascade = async (requests, file = 'model.funnel') => {
  const api = globalThis.crossOriginIsolated ? threaded : single;
  const model = await api.loadModel(new URL(file, document.baseURI));
  try {
    const answers = requests.map(({ user, options }) => model.cascade(user, options).items);
    return { answers, threads: await api.threads(), version: await api.version() };
  } finally {
    model.free();
  }
};
