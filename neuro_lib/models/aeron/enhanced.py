"""Aeron with its enhancement pipeline (seeds/aeron.md, "Forward Pass Data Flow"): an encoder-decoder
`Aeron` whose encoder output passes through optional modules, in the seed's order, before the decoder
cross-attends to it:

    token embeddings(src) -> [vision patches -> multimodal fusion] -> encoder -> knowledge-graph attention
      -> episodic memory read -> task embedding (continual learning)
      -> reasoning engine (gate -> tree of thought -> scratchpad write -> scratchpad attention)
      -> decoder(tokens) cross-attending to the enhanced output -> logits  [+ uncertainty head]

Every module is optional: absent, its step is the identity and costs nothing, so `AeronEnhanced` with
no modules gives plain `Aeron`'s logits. `Aeron` itself is unchanged; this wraps it.

Modules built here from `EnhancedConfig`: reasoning (reasoning.py, scratchpad.py), episodic memory
(episodic.py), knowledge-graph attention (knowledge_graph.py). Modules passed in ready-made (built in
continual.py, uncertainty.py, vision.py), by the call shapes the pipeline uses:
    vision(images (B, ch, H, W)) -> patches (B, P, C);  fusion(h (B, S, C), patches (B, P, C)) -> (B, S, C)
    task_embedding(task_id (B,) long) -> (B, C), added to every encoder position and given to ToT as context
    uncertainty(pooled enhanced encoder output (B, C)) -> Dirichlet alpha (B, K)

    model = AeronEnhanced(Aeron(cfg), EnhancedConfig(reasoning=ReasoningConfig(d_model=cfg.d_model)))
    out = model(tokens, src, src_mask, entities=triples)     # AeronOutput: .logits, .diagnostics, .aux_loss
    model.memorize(fact_src)                                 # episodic write of an earlier episode
Tests: tests/test_aeron_modules.py; measured by `neuro bench aeron-modules`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from neuro_lib.models.aeron.episodic import EpisodicConfig, EpisodicMemory, MemoryStats
from neuro_lib.models.aeron.inject import masked_mean
from neuro_lib.models.aeron.knowledge_graph import KGConfig, KnowledgeGraphAttention
from neuro_lib.models.aeron.model import Aeron
from neuro_lib.models.aeron.reasoning import ReasoningConfig, ReasoningDiagnostics, ReasoningEngine
from neuro_lib.models.base import masked_cross_entropy


@dataclass
class EnhancedConfig:
    reasoning: ReasoningConfig | None = None   # complexity gate + tree of thought + scratchpad
    episodic: EpisodicConfig | None = None     # episodic external memory
    kg: KGConfig | None = None                 # knowledge-graph attention
    gate_penalty: float = 0.0                  # weight of the gate's compute cost (mean score) in the loss


@dataclass
class AeronDiagnostics:
    reasoning: ReasoningDiagnostics | None     # gate scores and skip mask, branch scores, scratchpad stats
    memory: MemoryStats | None                 # episodic memory: used slots, what the read weighed
    kg_used: bool                              # triples were injected
    vision_used: bool                          # images were fused
    task_conditioned: bool                     # a task embedding was added
    uncertainty: torch.Tensor | None           # (B, K) Dirichlet alpha of the uncertainty head


@dataclass
class AeronOutput:
    logits: torch.Tensor                       # (B, T, V)
    diagnostics: AeronDiagnostics
    aux_loss: torch.Tensor                     # scalar: gate_penalty * gate cost (0 without the engine)


class AeronEnhanced(nn.Module):
    def __init__(self, backbone: Aeron, config: EnhancedConfig | None = None, *, vision: nn.Module | None = None,
                 fusion: nn.Module | None = None, task_embedding: nn.Module | None = None,
                 uncertainty: nn.Module | None = None):
        super().__init__()
        if not backbone.encoder_decoder:
            raise ValueError("AeronEnhanced wraps an encoder-decoder Aeron (mode='encoder-decoder')")
        if (vision is None) != (fusion is None):
            raise ValueError("vision patches and multimodal fusion come together: pass both or neither")
        self.config = config = config or EnhancedConfig()
        self.backbone = backbone
        c = backbone.config.d_model
        for name, sub in (("reasoning", config.reasoning), ("episodic", config.episodic), ("kg", config.kg)):
            if sub is not None and sub.d_model != c:
                raise ValueError(f"{name} d_model={sub.d_model} differs from the backbone's {c}")
        self.kg = KnowledgeGraphAttention(config.kg) if config.kg else None
        self.memory = EpisodicMemory(config.episodic) if config.episodic else None
        self.reasoning = ReasoningEngine(config.reasoning) if config.reasoning else None
        self.vision, self.fusion = vision, fusion
        self.task_embedding, self.uncertainty = task_embedding, uncertainty

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _mask(self, src, src_mask):
        if src_mask is None:
            return torch.ones_like(src, dtype=torch.bool)
        if src_mask.shape != src.shape:
            raise ValueError(f"src_mask shape {tuple(src_mask.shape)} must equal src shape {tuple(src.shape)}")
        return src_mask.bool()

    def _pre_memory(self, src, mask, images, entities):
        """Vision fusion, encoder, KG: the part of the pipeline an episodic write also sees. The image is fused
        into the source embeddings before the encoder (the seed's data flow; vision.py)."""
        x = self.backbone.tok_emb(src)                                      # (B, S, C)
        vision_used = self.vision is not None and images is not None
        if vision_used:
            x = self.fusion(x, self.vision(images))                         # (B, S, C)
        h = self.backbone.encode_embeddings(x, mask)                        # (B, S, C)
        kg_used = self.kg is not None and entities is not None
        if kg_used:
            h = self.kg(h, entities)                                        # (B, S, C)
        return h, vision_used, kg_used

    def enhance(self, src, src_mask=None, *, images=None, entities=None, task_id=None, threshold=None):
        """src (B, S) -> (enhanced encoder output (B, S, C), mask (B, S), AeronDiagnostics, aux loss)."""
        mask = self._mask(src, src_mask)
        h, vision_used, kg_used = self._pre_memory(src, mask, images, entities)
        context, context_mask, mem_stats = [], [], None
        if self.memory is not None:
            if self.memory.keys.shape[0] != h.shape[0] and self.memory.writes == 0:
                self.memory.reset(h.shape[0], h.device)                     # nothing written yet: nothing lost
            h, token, token_mask, mem_stats = self.memory(h, mask)
            context.append(token)
            context_mask.append(token_mask)
        task_used = self.task_embedding is not None and task_id is not None
        if task_used:
            t = self.task_embedding(task_id)                                # (B, C)
            h = h + t[:, None]
            context.append(t[:, None])
            context_mask.append(torch.ones_like(mask[:, :1]))
        aux = h.new_zeros(())
        r_diag = None
        if self.reasoning is not None:
            ctx = torch.cat(context, 1) if context else None                # (B, M, C): the memory bridge
            cmask = torch.cat(context_mask, 1) if context else None
            h, r_diag = self.reasoning(h, mask, ctx, cmask, threshold)
            aux = self.config.gate_penalty * r_diag.gate_cost
        unc = self.uncertainty(masked_mean(h, mask)) if self.uncertainty is not None else None
        diag = AeronDiagnostics(r_diag, mem_stats, kg_used, vision_used, task_used, unc)
        return h, mask, diag, aux

    def forward(self, tokens, src, src_mask=None, *, images=None, entities=None, task_id=None,
                threshold: float | None = None) -> AeronOutput:
        """tokens (B, T), src (B, S), src_mask (B, S) bool [, images, entities (B, M, 3), task_id (B,)]
        -> AeronOutput (logits (B, T, V)). `threshold` overrides the complexity gate's for this call."""
        h, mask, diag, aux = self.enhance(src, src_mask, images=images, entities=entities, task_id=task_id,
                                          threshold=threshold)
        logits = self.backbone._run(tokens, None, self.backbone.cross_kv(h), mask)  # (B, T, V)
        return AeronOutput(logits, diag, aux)

    def memorize(self, src, src_mask=None, *, images=None, entities=None) -> torch.Tensor:
        """Write each row's encoded src (B, S) into the episodic memory -> slots (B,); or F items per
        row at once, src (B, F, S), encoded in one pass and written in order -> slots (B, F)."""
        if self.memory is None:
            raise ValueError("this AeronEnhanced has no episodic memory (EnhancedConfig.episodic)")
        items = src.dim() == 3
        B = src.shape[0]
        if items:
            if images is not None or entities is not None:
                raise ValueError("memorize(src of (B, F, S)) takes no images or entities")
            if src_mask is not None:
                src_mask = src_mask.reshape(-1, src.shape[-1])
            src = src.reshape(-1, src.shape[-1])                            # (B * F, S)
        mask = self._mask(src, src_mask)
        h, _, _ = self._pre_memory(src, mask, images, entities)
        if self.memory.keys.shape[0] != B and self.memory.writes == 0:
            self.memory.reset(B, h.device)
        if items:
            return self.memory.memorize(h.view(B, -1, *h.shape[1:]), mask.view(B, -1, mask.shape[-1]))
        return self.memory.memorize(h, mask)

    def compute_loss(self, batch: dict):
        """batch: tokens, targets, src [, src_mask, loss_mask, images, entities, task_id] -> (loss, parts)."""
        out = self(batch["tokens"], batch["src"], batch.get("src_mask"), images=batch.get("images"),
                   entities=batch.get("entities"), task_id=batch.get("task_id"))
        lm = masked_cross_entropy(out.logits, batch["targets"], batch.get("loss_mask"))
        return lm + out.aux_loss, {"lm_loss": lm.item(), "aux_loss": out.aux_loss.item()}
