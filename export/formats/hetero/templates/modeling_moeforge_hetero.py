# A moeforge heterogeneous mixture of experts (issue 9; MergeME, arXiv 2502.00997 §3.2),
# shipped with the exported repo and loaded with
# `AutoModelForCausalLM.from_pretrained(repo, trust_remote_code=True)`.
#
# Every expert is a dense causal LM of its own family, width and depth, stored under
# `experts.{i}.` with its usual tensor names. In the "whole" form (training-free) it
# keeps its own embeddings and head. In the "projected" form (MergeME's trained form)
# the experts share one embedding and head of width D (`shared.*`) and each expert's
# layers and final norm sit between `proj_in.{i}` (D -> d_i) and `proj_out.{i}`
# (d_i -> D) (core/hetero/projected.ts). A router makes one decision per sequence;
# the output is the mixture of the chosen experts' next-token distributions:
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
    """Sequence-level router (core/hetero/router.ts): centroids, or a linear gate on sequence features."""

    def __init__(self, config):
        super().__init__()
        self.router_type = config.router_type
        self.top_k = config.num_experts_per_tok
        self.temperature = config.router_temperature
        n = len(config.expert_configs)
        if self.router_type == "centroid":
            # router.centroids.{i}: [hidden_size of expert i], fixed at build time (not trained).
            self.centroids = nn.ParameterList(
                [nn.Parameter(torch.zeros(c["hidden_size"]), requires_grad=False) for c in config.expert_configs]
            )
        elif self.router_type == "learned":
            # router.gate.weight [E, sum of the experts' hidden sizes]: reads the experts' mean final
            # hidden states, concatenated in expert order (model.ts learnedFeatures).
            self.gate = nn.Linear(sum(c["hidden_size"] for c in config.expert_configs), n, bias=False)
        elif self.router_type == "embedding":
            # router.gate.weight [E, D]: reads the mean shared token embedding (model.ts meanEmbedding).
            self.gate = nn.Linear(config.shared_hidden_size, n, bias=False)

    def route_weights(self, scores):
        # router.ts routeWeights: softmax(scores / T) in float64, keep the top k (a stable
        # descending sort: ties to the lower index), renormalise the k, zero elsewhere.
        probs = torch.softmax(scores.double() / self.temperature, dim=-1)  # [B, E]
        order = torch.sort(probs, dim=-1, descending=True, stable=True).indices[:, : self.top_k]  # [B, k]
        top = probs.gather(-1, order)
        top = top / top.sum(-1, keepdim=True)
        return torch.zeros_like(probs).scatter(-1, order, top)  # [B, E]


class MoeforgeHeteroShared(nn.Module):
    """The projected form's shared embedding and head (shared.embed_tokens.weight, shared.lm_head.weight: [V, D])."""

    def __init__(self, vocab_size, hidden_size):
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab_size, hidden_size)
        self.lm_head = nn.Linear(hidden_size, vocab_size, bias=False)


class MoeforgeHeteroForCausalLM(PreTrainedModel, GenerationMixin):
    config_class = MoeforgeHeteroConfig
    base_model_prefix = ""
    supports_gradient_checkpointing = False
    _supports_cache_class = False
    # Experts with tied embeddings store no lm_head (their own post_init ties it).
    _keys_to_ignore_on_load_missing = [r"experts\.\d+\.lm_head\.weight"]

    def __init__(self, config):
        super().__init__(config)
        self.projected = getattr(config, "hetero_form", "whole") == "projected"
        experts = []
        for c in config.expert_configs:
            c = dict(c)
            model_type = c.pop("model_type")
            if self.projected:
                c["tie_word_embeddings"] = False  # its embedding and head are the shared ones
            expert = AutoModelForCausalLM.from_config(AutoConfig.for_model(model_type, **c))
            if self.projected:
                # Only the layers and final norm are the expert's own: drop its embedding and head
                # (the inner model is called with inputs_embeds and never reads embed_tokens).
                expert.model.embed_tokens = None
                expert.lm_head = None
            experts.append(expert)
        # State-dict names experts.{i}.model.layers..., experts.{i}.lm_head.weight (core/hetero/config.ts expertPrefix).
        self.experts = nn.ModuleList(experts)
        if self.projected:
            d = config.shared_hidden_size
            self.shared = MoeforgeHeteroShared(config.vocab_size, d)
            # proj_in.{i}.weight [d_i, D], proj_out.{i}.weight [D, d_i] (core/hetero/config.ts projInName, projOutName).
            self.proj_in = nn.ModuleList([nn.Linear(d, c["hidden_size"], bias=False) for c in config.expert_configs])
            self.proj_out = nn.ModuleList([nn.Linear(c["hidden_size"], d, bias=False) for c in config.expert_configs])
        self.router = MoeforgeHeteroRouter(config)
        self.post_init()

    def _init_weights(self, module):
        # Every weight comes from the checkpoint; the experts initialised themselves in from_config.
        pass

    def get_input_embeddings(self):
        return self.shared.embed_tokens if self.projected else self.experts[0].get_input_embeddings()

    def _tie_expert_heads(self):
        # An expert with tie_word_embeddings (qwen2-tiny, Qwen2-0.5B, ...) stores no lm_head: its
        # head is its embedding, as the engine reads it (core/model/weights.ts loadHead). Nested
        # in this model, transformers 5 does not tie it on load (checked with 5.17: the head
        # stayed randomly initialised), so the experts' heads are tied here, after loading
        # (tie_weights) and, should a loader replace the parameters later, before each forward.
        if self.projected:
            return
        for expert in self.experts:
            if getattr(expert.config, "tie_word_embeddings", False):
                embed = expert.get_input_embeddings().weight
                if expert.lm_head.weight is not embed:
                    expert.lm_head.weight = embed

    def tie_weights(self, *args, **kwargs):
        super().tie_weights(*args, **kwargs)
        self._tie_expert_heads()

    def expert_output(self, e, input_ids, attention_mask, position_ids, output_hidden_states=False):
        # (logits [B, T, V], final hidden states [B, T, d_e] after the expert's final norm or None).
        expert = self.experts[e]
        if not self.projected:
            out = expert(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=position_ids,
                output_hidden_states=output_hidden_states,
                use_cache=False,
            )
            return out.logits, (out.hidden_states[-1] if output_hidden_states else None)
        # projected.ts: logits_e = H . P_out . finalNorm_e(layers_e(E[ids] . P_in^T)).
        x = self.proj_in[e](self.shared.embed_tokens(input_ids))  # [B, T, d_e]
        h = expert.model(inputs_embeds=x, attention_mask=attention_mask, position_ids=position_ids, use_cache=False).last_hidden_state
        return self.shared.lm_head(self.proj_out[e](h)), h

    def masked_mean(self, x, attention_mask):
        # model.ts meanRows / meanEmbedding over the real tokens of each row: [B, T, d] -> [B, d].
        m = attention_mask[..., None].to(x.dtype)
        return (x * m).sum(1) / m.sum(1).clamp(min=1)

    @torch.no_grad()
    def expert_scores(self, input_ids, attention_mask):
        # model.ts HeteroMoE.scores: one scalar per (row, expert) from the row's real tokens.
        self._tie_expert_heads()
        batch = input_ids.shape[0]
        n = len(self.experts)
        real = attention_mask.sum(-1)  # [B]
        if self.router.router_type == "uniform":
            return torch.zeros(batch, n, dtype=torch.float64, device=input_ids.device)
        if self.router.router_type == "embedding":
            # model.ts meanEmbedding, router.ts linearScores.
            mean = self.masked_mean(self.shared.embed_tokens(input_ids).float(), attention_mask)  # [B, D]
            return (mean.double() @ self.router.gate.weight.double().T)  # [B, E]
        position_ids = position_ids_from_mask(attention_mask)
        if self.router.router_type == "learned":
            # model.ts learnedFeatures: each expert's mean final hidden state, concatenated.
            means = [
                self.masked_mean(self.expert_output(e, input_ids, attention_mask, position_ids, True)[1].float(), attention_mask)
                for e in range(n)
            ]
            return torch.cat(means, dim=-1).double() @ self.router.gate.weight.double().T  # [B, E]
        scores = []
        for e in range(n):
            logits, hidden = self.expert_output(e, input_ids, attention_mask, position_ids, self.router.router_type == "centroid")
            if self.router.router_type == "perplexity":
                # router.ts meanLogprob over CausalLM.tokenLogprobs: mean log p(x_t | x_<t) over
                # the predicted real tokens (both x_t and x_{t-1} real).
                logp = F.log_softmax(logits[:, :-1].float(), dim=-1)  # [B, T-1, V]
                tok = logp.gather(-1, input_ids[:, 1:, None]).squeeze(-1)  # [B, T-1]
                valid = (attention_mask[:, 1:] * attention_mask[:, :-1]).to(tok.dtype)
                s = (tok * valid).sum(-1) / valid.sum(-1).clamp(min=1)
            else:
                # router.ts cosine(meanRows(last hidden state), centroid): hidden_states[-1] is
                # after the final norm, as the engine's last hiddenStates entry.
                mean = self.masked_mean(hidden.float(), attention_mask)  # [B, d_e]
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
        for e in range(len(self.experts)):
            w = routing_weights[:, e]
            if not bool((w > 0).any()):
                continue  # no row uses this expert: skip its forward (as model.ts)
            logits = self.expert_output(e, input_ids, attention_mask, position_ids)[0]
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
