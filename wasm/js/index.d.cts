// Types for the CommonJS entry (index.cjs): the same API as the ES module.
import type { FunnelModel, ModelSource } from './index.mjs';
export type {
  CascadeOptions, CascadeResult, FeatureInfo, Features, FunnelModel, ModelInfo, ModelSource, RankRequest,
  Recommendation, RecommendOptions, StageTimings,
} from './index.mjs';
/** Loads a .funnel model from bytes, a URL (fetched) or, in Node, a file path. */
export declare function loadModel(source: ModelSource): Promise<FunnelModel>;
/** The SDK's version. */
export declare function version(): Promise<string>;
/** How many threads the module scans a catalogue with (1 unless the threaded build is in use). */
export declare function threads(): Promise<number>;
