// Types for the threaded entry (funnel-recsys/threads): the same API as the default one.
export * from './index.mjs';
