/**
 * A user's raw features: strings and numbers as single values, arrays as multi-valued features. Numbers must be
 * finite: NaN or an infinity (or a string such as "nan" or "inf" for a dense or bucketized feature) throws
 * Error("InvalidArgument: feature '<name>' is nan, not a finite number"); inside a list one throws
 * TypeError("feature '<name>': list values must be strings or finite numbers").
 */
export type Features = Record<string, string | number | ReadonlyArray<string | number>>;

export interface Recommendation {
  /** The item's key in the catalogue. */
  key: string;
  /** The item's position in the catalogue (see FunnelModel.itemKey). */
  index: number;
  score: number;
}

/**
 * The options objects below (RecommendOptions, RankRequest, CascadeOptions) take only the names they declare:
 * any other (e.g. retrieve_k for retrieveK) throws a TypeError naming it and the accepted ones. Every count
 * (k, retrieveK, prerankK) is a positive integer: 0, a negative or a fraction throws a RangeError; left
 * out, it takes its default.
 */
export interface RecommendOptions {
  /** How many items to return (default 10). */
  k?: number;
  /** Item keys to leave out, e.g. those the user has already seen. */
  exclude?: ReadonlyArray<string>;
}

export interface RankRequest {
  /** Item keys the user interacted with, oldest first (the model reads the most recent ones). */
  behaviours?: ReadonlyArray<string>;
  /** Item keys to score. */
  candidates: ReadonlyArray<string>;
}

/** The cascade's request: every field is optional. */
export interface CascadeOptions {
  /** How many items to return (default 10). */
  k?: number;
  /** Candidates retrieval passes on (default 200, at least k). */
  retrieveK?: number;
  /** What pre-ranking passes to ranking (default 50, at least k). */
  prerankK?: number;
  /** The user's behaviour sequence, item keys, oldest first (for pre-ranking and ranking). */
  behaviours?: ReadonlyArray<string>;
  /** What to rank when the file has no retrieval stage. */
  candidates?: ReadonlyArray<string>;
  /** Item keys never returned (e.g. already seen); unknown keys are ignored. */
  exclude?: ReadonlyArray<string>;
  /** When not empty, only these item keys may be returned. */
  allow?: ReadonlyArray<string>;
  /** Stages the file holds that this call leaves out, to measure what each adds. */
  skip?: ReadonlyArray<'preRanking' | 'ranking'>;
}

/** Each stage's wall time in milliseconds, measured inside the SDK; null for a stage the file lacks. */
export interface StageTimings {
  retrievalMs: number | null;
  preRankingMs: number | null;
  rankingMs: number | null;
  totalMs: number;
}

export interface CascadeResult {
  /** Best first; score is the last stage's (a click probability when the file ranks). */
  items: { key: string; score: number }[];
  timings: StageTimings;
}

export interface FeatureInfo {
  name: string;
  kind: 'categorical' | 'multi_categorical' | 'dense';
  /** Ids, out-of-vocabulary included (0 for dense). */
  cardinality: number;
  vocabularySize: number;
  hashBuckets: number;
}

export interface ModelInfo {
  formatVersion: number;
  producer: string;
  byteSize: number;
  hasRetrieval: boolean;
  hasPreRanking: boolean;
  hasRanking: boolean;
  catalogueSize: number;
  cataloguePrecision: 'f32' | 'f16' | 'int8';
  embeddingDim: number;
  features: FeatureInfo[];
  /** The file's metadata: training config, metrics, dataset. */
  metadata: Record<string, string>;
}

/** Bytes, a URL to fetch, or (in Node) a file path or file: URL. */
export type ModelSource = Uint8Array | ArrayBuffer | URL | string;

/**
 * A loaded model. It lives in WebAssembly memory, which JavaScript's garbage collector does not reclaim:
 * call free() when done. Errors from the SDK are thrown as Error, their message prefixed with the status
 * name (e.g. "InvalidArgument: missing feature 'age'"); after any error the model and the module keep
 * answering as before. No call returns a score or an embedding that is not finite: a model that computes
 * one throws instead (e.g. "CorruptModel: the score of row 7 is inf, not a finite number").
 */
export class FunnelModel {
  private constructor();
  readonly catalogueSize: number;
  readonly embeddingDim: number;
  /** Whether the model has a ranking (CTR) stage. */
  readonly hasRanking: boolean;
  /** Whether the model has a pre-ranking stage (the AutoFAS student). */
  readonly hasPreRanking: boolean;
  itemKey(index: number): string;
  userEmbedding(features: Features): Float32Array;
  recommend(features: Features, options?: RecommendOptions): Recommendation[];
  /** Click probabilities of the candidates, in candidate order (ranking stage). */
  rank(features: Features, request: RankRequest): Float32Array;
  /** The same with the pre-ranking stage. */
  prerank(features: Features, request: RankRequest): Float32Array;
  /** The whole cascade the file holds (retrieval, pre-ranking, ranking), with each stage's time. */
  cascade(features: Features, options?: CascadeOptions): CascadeResult;
  /** What the file holds. */
  inspect(): ModelInfo;
  free(): void;
}

/**
 * Loads a .funnel model from its bytes (copied: the caller may reuse them afterwards), a URL (fetched) or,
 * in Node, a file path. A damaged file rejects with Error("CorruptModel: ...").
 */
export function loadModel(source: ModelSource): Promise<FunnelModel>;
/** The SDK's version. */
export function version(): Promise<string>;
/**
 * How many threads the module scans a catalogue with: 1 for the default build; up to 4 where the page is
 * cross-origin isolated and the package has the threaded build (threads/).
 */
export function threads(): Promise<number>;
