# A moeforge heterogeneous mixture of experts (issue 9; MergeME, arXiv 2502.00997 §3.2,
# training-free form), shipped with the exported repo and loaded with
# `AutoModelForCausalLM.from_pretrained(repo, trust_remote_code=True)`.
#
# Every expert is a whole dense causal LM of its own family, width and depth (its own
# embeddings, layers and head), stored under `experts.{i}.` with its usual tensor
# names. A router makes one decision per sequence; the output is the mixture of the
# chosen experts' next-token distributions:
#     log p(v | x_<t) = logsumexp_e ( log w_e + log_softmax(logits_e(x_<t))[v] )
# returned as `logits` (log-probabilities are valid logits: softmax(log p) = p).
#
# moeforge's engine runs the same repo (core/hetero/*.ts); each function below names
# the TypeScript function it mirrors, formula for formula.
import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, GenerationMixin, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutput

from .configuration_moeforge_hetero import MoeforgeHeteroConfig


def position_ids_from_mask(attention_mask):
    # As transformers' generate() (`attention_mask.cumsum(-1) - 1`, padding set to 1) and
    # core/model/causal-lm.ts forward(): a padded row sees the positions of the unpadded one.
    pos = attention_mask.long().cumsum(-1) - 1
    return pos.masked_fill(attention_mask == 0, 1)


class MoeforgeHeteroRouter(nn.Module):
    """Sequence-level router (core/hetero/router.ts). Holds only the centroids (centroid routing)."""

    def __init__(self, config):
        super().__init__()
        self.router_type = config.router_type
        self.top_k = config.num_experts_per_tok
        self.temperature = config.router_temperature
        if self.router_type == "centroid":
            # router.centroids.{i}: [hidden_size of expert i], fixed at build time (not trained).
            self.centroids = nn.ParameterList(
                [nn.Parameter(torch.zeros(c["hidden_size"]), requires_grad=False) for c in config.expert_configs]
            )

    def route_weights(self, scores):
        # router.ts routeWeights: softmax(scores / T) in float64, keep the top k (a stable
        # descending sort: ties to the lower index), renormalise the k, zero elsewhere.
        probs = torch.softmax(scores.double() / self.temperature, dim=-1)  # [B, E]
        order = torch.sort(probs, dim=-1, descending=True, stable=True).indices[:, : self.top_k]  # [B, k]
        top = probs.gather(-1, order)
        top = top / top.sum(-1, keepdim=True)
        return torch.zeros_like(probs).scatter(-1, order, top)  # [B, E]


class MoeforgeHeteroForCausalLM(PreTrainedModel, GenerationMixin):
    config_class = MoeforgeHeteroConfig
    base_model_prefix = ""
    supports_gradient_checkpointing = False
    _supports_cache_class = False
    # Experts with tied embeddings store no lm_head (their own post_init ties it).
    _keys_to_ignore_on_load_missing = [r"experts\.\d+\.lm_head\.weight"]

    def __init__(self, config):
        super().__init__(config)
        experts = []
        for c in config.expert_configs:
            c = dict(c)
            model_type = c.pop("model_type")
            experts.append(AutoModelForCausalLM.from_config(AutoConfig.for_model(model_type, **c)))
        # State-dict names experts.{i}.model.layers..., experts.{i}.lm_head.weight (core/hetero/config.ts expertPrefix).
        self.experts = nn.ModuleList(experts)
        self.router = MoeforgeHeteroRouter(config)
        self.post_init()

    def _init_weights(self, module):
        # Every weight comes from the checkpoint; the experts initialised themselves in from_config.
        pass

    def _tie_expert_heads(self):
        # An expert with tie_word_embeddings (qwen2-tiny, Qwen2-0.5B, ...) stores no lm_head: its
        # head is its embedding, as the engine reads it (core/model/weights.ts loadHead). Nested
        # in this model, transformers 5 does not tie it on load (checked with 5.17: the head
        # stayed randomly initialised), so the experts' heads are tied here, after loading
        # (tie_weights) and, should a loader replace the parameters later, before each forward.
        for expert in self.experts:
            if getattr(expert.config, "tie_word_embeddings", False):
                embed = expert.get_input_embeddings().weight
                if expert.lm_head.weight is not embed:
                    expert.lm_head.weight = embed

    def tie_weights(self, *args, **kwargs):
        super().tie_weights(*args, **kwargs)
        self._tie_expert_heads()

    @torch.no_grad()
    def expert_scores(self, input_ids, attention_mask):
        # model.ts HeteroMoE.scores: one scalar per (row, expert) from the row's real tokens.
        self._tie_expert_heads()
        batch = input_ids.shape[0]
        n = len(self.experts)
        real = attention_mask.sum(-1)  # [B]
        if self.router.router_type == "uniform":
            return torch.zeros(batch, n, dtype=torch.float64, device=input_ids.device)
        position_ids = position_ids_from_mask(attention_mask)
        scores = []
        for e, expert in enumerate(self.experts):
            out = expert(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=position_ids,
                output_hidden_states=self.router.router_type == "centroid",
                use_cache=False,
            )
            if self.router.router_type == "perplexity":
                # router.ts meanLogprob over CausalLM.tokenLogprobs: mean log p(x_t | x_<t) over
                # the predicted real tokens (both x_t and x_{t-1} real).
                logp = F.log_softmax(out.logits[:, :-1].float(), dim=-1)  # [B, T-1, V]
                tok = logp.gather(-1, input_ids[:, 1:, None]).squeeze(-1)  # [B, T-1]
                valid = (attention_mask[:, 1:] * attention_mask[:, :-1]).to(tok.dtype)
                s = (tok * valid).sum(-1) / valid.sum(-1).clamp(min=1)
            else:
                # router.ts cosine(meanRows(last hidden state), centroid): hidden_states[-1] is
                # after the final norm, as the engine's last hiddenStates entry.
                h = out.hidden_states[-1].float()  # [B, T, d_e]
                m = attention_mask[..., None].to(h.dtype)
                mean = (h * m).sum(1) / m.sum(1).clamp(min=1)  # [B, d_e]
                c = self.router.centroids[e].float()[None, :]
                denom = mean.norm(dim=-1) * c.norm(dim=-1)
                s = torch.where(denom > 0, (mean * c).sum(-1) / denom.clamp(min=1e-30), torch.zeros_like(denom))
            scores.append(s.double())
        scores = torch.stack(scores, dim=-1)  # [B, E]
        # Fewer than 2 real tokens: nothing is predicted, every score is 0 (router.ts).
        return torch.where((real < 2)[:, None], torch.zeros_like(scores), scores)

    @torch.no_grad()
    def route(self, input_ids, attention_mask=None):
        # model.ts HeteroMoE.route: dense weights [B, E] for each row.
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        return self.router.route_weights(self.expert_scores(input_ids, attention_mask))

    def forward(self, input_ids=None, attention_mask=None, routing_weights=None, labels=None, return_dict=True, **kwargs):
        # model.ts HeteroMoE.forward.
        self._tie_expert_heads()
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        position_ids = position_ids_from_mask(attention_mask)
        if routing_weights is None:
            routing_weights = self.route(input_ids, attention_mask)  # [B, E], each row routed on its real tokens
        mix = None
        for e, expert in enumerate(self.experts):
            w = routing_weights[:, e]
            if not bool((w > 0).any()):
                continue  # no row uses this expert: skip its forward (as model.ts)
            logits = expert(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=False).logits
            logp = F.log_softmax(logits.float(), dim=-1)  # [B, T, V]
            term = torch.log(w.float())[:, None, None] + logp  # -inf where the row does not use expert e
            mix = term if mix is None else torch.logaddexp(mix, term)
        loss = None
        if labels is not None:
            # The mixture's negative log-likelihood of the next token (transformers' label shift).
            loss = F.nll_loss(mix[:, :-1].reshape(-1, mix.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100)
        return CausalLMOutput(loss=loss, logits=mix)

    # Generation (model.ts HeteroMoE.generate): routed once on the prompt, then every step
    # recomputes the chosen experts over the whole sequence (no KV cache).
    @torch.no_grad()
    def generate(self, input_ids=None, attention_mask=None, routing_weights=None, **kwargs):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if routing_weights is None:
            routing_weights = self.route(input_ids, attention_mask)
        kwargs["use_cache"] = False
        return super().generate(input_ids=input_ids, attention_mask=attention_mask, routing_weights=routing_weights, **kwargs)

    def prepare_inputs_for_generation(self, input_ids, attention_mask=None, routing_weights=None, **kwargs):
        return {"input_ids": input_ids, "attention_mask": attention_mask, "routing_weights": routing_weights}
