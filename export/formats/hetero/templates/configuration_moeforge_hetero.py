# Configuration of a moeforge heterogeneous mixture of experts (issue 9), shipped with
# the exported repo and loaded with `trust_remote_code=True`. Written by moeforge from
# export/formats/hetero/templates/; the TypeScript twin is core/hetero/config.ts.
#
# Every expert keeps its own, complete config.json under `expert_configs` (a Llama, a
# Qwen2, ... of any width and depth); the modeling code builds each expert from it
# with AutoConfig.for_model, exactly as transformers would build that expert alone.
#
# hetero_form "whole": every expert keeps its embeddings, layers and head (training-free).
# hetero_form "projected": MergeME's trained form (arXiv 2502.00997 §3.2): one shared
# embedding and head of width shared_hidden_size, per-expert projections in and out.
from transformers import PretrainedConfig


class MoeforgeHeteroConfig(PretrainedConfig):
    model_type = "moeforge_hetero"

    def __init__(
        self,
        expert_configs=None,
        expert_names=None,
        router_type="perplexity",  # "perplexity" | "centroid" | "learned" | "embedding" | "uniform" (core/hetero/router.ts)
        num_experts_per_tok=1,  # experts mixed per sequence (top k)
        router_temperature=1.0,  # scores are divided by it before the softmax
        num_experts=None,
        vocab_size=None,
        hetero_form="whole",  # "whole" | "projected"
        shared_hidden_size=None,  # projected: width D of the shared embedding and head
        **kwargs,
    ):
        self.expert_configs = [dict(c) for c in (expert_configs or [])]
        self.expert_names = list(expert_names or [f"expert_{i}" for i in range(len(self.expert_configs))])
        self.router_type = router_type
        self.num_experts_per_tok = num_experts_per_tok
        self.router_temperature = router_temperature
        self.hetero_form = hetero_form
        self.shared_hidden_size = shared_hidden_size
        self.num_experts = num_experts if num_experts is not None else len(self.expert_configs)
        self.vocab_size = vocab_size if vocab_size is not None else (self.expert_configs[0]["vocab_size"] if self.expert_configs else None)
        # The experts' embeddings and heads are their own: nothing is tied at this level.
        kwargs.setdefault("tie_word_embeddings", False)
        super().__init__(**kwargs)
