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

/**
 * A loaded model. It lives in WebAssembly memory, which JavaScript's garbage collector does not reclaim:
 * call free() when done. Errors from the SDK are thrown as Error, their message prefixed with the status
 * name (e.g. "InvalidArgument: missing feature 'age'").
 */
export class FunnelModel {
  private constructor();
  readonly catalogueSize: number;
  readonly embeddingDim: number;
  itemKey(index: number): string;
  userEmbedding(features: Features): Float32Array;
  recommend(features: Features, options?: RecommendOptions): Recommendation[];
  free(): void;
}

/** Loads a .funnel model from its bytes (copied: the caller may reuse them afterwards). */
export function loadModel(bytes: Uint8Array | ArrayBuffer): Promise<FunnelModel>;
