// The key/value cache for incremental decoding (transformers' DynamicCache): per
// decoder layer, the RoPE-rotated keys and the values of every position seen so
// far, [B, nKv, S, hD], grown by concatenation along S.
import type { tf } from '../backend.js';

export interface LayerKv {
  k?: tf.Tensor4D;
  v?: tf.Tensor4D;
}

export class KvCache {
  readonly layers: LayerKv[];
  /** Positions already in the cache (S). */
  length = 0;

  constructor(numLayers: number) {
    this.layers = Array.from({ length: numLayers }, () => ({}));
  }

  dispose(): void {
    for (const layer of this.layers) {
      layer.k?.dispose();
      layer.v?.dispose();
      layer.k = undefined;
      layer.v = undefined;
    }
    this.length = 0;
  }
}
