// zod field builders whose messages read as "expected …", so a bad config value
// becomes one line: `config.json: num_attention_heads: expected a positive integer, got "x"`.
import { z } from 'zod';

const POS_INT = 'expected a positive integer';
const NONNEG_INT = 'expected a non-negative integer';
const POS_NUM = 'expected a positive number';
const NONNEG_NUM = 'expected a non-negative number';
const BOOL = 'expected true or false';

export const posInt = () => z.number({ error: POS_INT }).int({ error: POS_INT }).positive({ error: POS_INT });
export const nonnegInt = () => z.number({ error: NONNEG_INT }).int({ error: NONNEG_INT }).nonnegative({ error: NONNEG_INT });
export const posNum = () => z.number({ error: POS_NUM }).positive({ error: POS_NUM });
export const nonnegNum = () => z.number({ error: NONNEG_NUM }).nonnegative({ error: NONNEG_NUM });
export const bool = () => z.boolean({ error: BOOL });
export const str = () => z.string({ error: 'expected a string' });
export const intList = () => z.array(nonnegInt(), { error: 'expected a list of non-negative integers' });

const DTYPE = 'expected one of float32, bfloat16, float16';
export const torchDtype = () => z.enum(['float32', 'bfloat16', 'float16'], { error: DTYPE });

/** transformers' rope_scaling (v4) and rope_parameters (v5); unknown keys kept (beta_fast, …). */
export const ropeDict = () =>
  z.looseObject(
    {
      rope_type: str().optional(),
      type: str().optional(), // pre-4.45 spelling, moved to rope_type by the config classes
      rope_theta: posNum().optional(),
      factor: posNum().optional(),
      low_freq_factor: posNum().optional(),
      high_freq_factor: posNum().optional(),
      original_max_position_embeddings: posInt().optional(),
    },
    { error: 'expected an object' },
  );

/** Fields every supported family shares (LlamaConfig and its copies). */
export const baseShape = {
  model_type: str(),
  architectures: z.array(str(), { error: 'expected a list of class names' }).nullish(),
  vocab_size: posInt(),
  hidden_size: posInt(),
  intermediate_size: posInt(),
  num_hidden_layers: posInt(),
  num_attention_heads: posInt(),
  num_key_value_heads: posInt().nullish(),
  head_dim: posInt().nullish(),
  hidden_act: str().optional(),
  rms_norm_eps: posNum().optional(),
  max_position_embeddings: posInt().optional(),
  tie_word_embeddings: bool().optional(),
  bos_token_id: nonnegInt().nullish(),
  eos_token_id: z.union([nonnegInt(), z.array(nonnegInt())], { error: 'expected a token id or a list of token ids' }).nullish(),
  torch_dtype: torchDtype().nullish(),
  dtype: torchDtype().nullish(),
  rope_theta: posNum().nullish(),
  rope_scaling: ropeDict().nullish(),
  rope_parameters: ropeDict().nullish(),
  sliding_window: posInt().nullish(),
  use_sliding_window: bool().optional(),
  max_window_layers: nonnegInt().optional(),
  layer_types: z
    .array(z.enum(['full_attention', 'sliding_attention'], { error: 'expected full_attention or sliding_attention' }), {
      error: 'expected a list of layer types',
    })
    .nullish(),
  attention_bias: bool().optional(),
  mlp_bias: bool().optional(),
};
