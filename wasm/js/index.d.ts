/** A user's raw features: strings and numbers as single values, arrays as multi-valued features. */
export type Features = Record<string, string | number | ReadonlyArray<string | number>>;

export interface Recommendation {
  /** The item's key in the catalogue. */
  key: string;
  /** The item's position in the catalogue (see FunnelModel.itemKey). */
  index: number;
  score: number;
}

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

/**
 * A loaded model. It lives in WebAssembly memory, which JavaScript's garbage collector does not reclaim:
 * call free() when done. Errors from the SDK are thrown as Error, their message prefixed with the status
 * name (e.g. "InvalidArgument: missing feature 'age'").
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
  free(): void;
}

/** Loads a .funnel model from its bytes (copied: the caller may reuse them afterwards). */
export function loadModel(bytes: Uint8Array | ArrayBuffer): Promise<FunnelModel>;
