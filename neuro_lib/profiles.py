"""Sizes, in one place.

`smoke` makes every notebook finish in about a minute on 2 CPU cores (nbval, CI);
`full` is the overnight run (hours; a GPU or many cores welcome). Notebooks and the
CLI read sizes from here and nowhere else. The profile is resolved once, at a door
(the CLI, the workbook, a bench suite's `run`, a notebook's parameters); the library
takes the Profile or one of its typed sections:

    from neuro_lib.profiles import get_profile
    p = get_profile("smoke"); p.model("gpt"); p.train_sizes("gpt").time_budget_s; p.tasks.rag.chunk_bytes

Every section is a frozen dataclass, so a misspelt key fails when this module is imported
(`replace(RAG, chunk_byte=...)` is a TypeError), never at the first read. Nested dicts are
keyword arguments of a model or encoder config and stay dicts.

A new section: a frozen dataclass `FooSizes` next to the others (defaults from the bench-size
constant), a field `foo: FooSizes` in `Tasks`, and `foo=FooSizes(...)` or `foo=replace(FOO, ...)` in
every profile; the library reads `profile.tasks.foo.key` in one function that receives the section.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

from neuro_lib.errors import NeuroError


@dataclass(frozen=True)
class TrainSizes:
    batch_size: int
    block_size: int
    time_budget_s: float
    eval_every: int
    eval_bytes: int          # bytes of the validation split scored for bpb (0 = all)
    lr: float = 2e-3
    warmup_steps: int = 50
    precision: str = "fp32"  # bf16 autocast pays off on GPUs; on CPU not at these sizes (see docs/LOG.md)


# The default small GPT for CPU, tuned for `neuro bench lm` (200 s on 2 cores; docs/LOG.md 2026-11-24): at that
# budget a narrow model that sees more bytes beats a wider one (a bf16 screen at batch 16 ranked d128, d192, d256
# in that order); d128 was then confirmed in fp32, which it keeps (bf16 bought it nothing at that width).
GPT_CPU = dict(vocab_size=256, d_model=128, n_layer=4, n_head=4, d_ff=512, block_size=128, dropout=0.0)
CPU_LM_TRAIN = dict(batch_size=16, lr=6e-3, warmup_steps=30)  # the optimiser tuned with it (GPT and Aeron)
# Byte-level Mamba (models/mamba.py) and RNK (models/rnk.py, seeds/rnk.md: 4 Mamba layers, 32-byte chunks).
MAMBA_CPU = dict(vocab_size=256, d_model=256, n_layer=4, d_state=16, expand=2, block_size=128)
RNK_CPU = dict(d_model=256, n_layer=4, d_state=16, chunk_len=32, d_plan=256, hrm_steps=5, d_dec=384)
# Aeron decoder-only at GPT_CPU's width and depth: GQA 4 query / 2 KV heads, SwiGLU hidden 341 = 2/3 * 512 (so
# the feed-forward matches GPT's), a block_size (cache, longest sequence) 8x the training block for the RoPE
# extrapolation check; it trains on the profile's block. Chosen with CPU_LM_TRAIN over a 256-wide Aeron on the
# old optimiser (docs/LOG.md 2026-11-24 has both runs).
AERON_CPU = dict(vocab_size=256, d_model=128, n_head=4, n_kv_head=2, n_encoder_layer=0, n_decoder_layer=4, d_ff=341,
                 rope_theta=10_000.0, block_size=1024, dropout=0.0, mode="decoder")


# RNK chat (train/chat.py, `neuro bench rnk`, notebook 04): a step budget, n_eval held-out dialogues scored,
# n_decode of them decoded.
@dataclass(frozen=True)
class RnkChatSizes:
    steps: int
    batch_size: int
    lr: float
    n_train: int
    n_eval: int
    n_decode: int


# Speculative decoding (`neuro bench speculative`, notebook 06): a target and a draft GPT trained target_s / draft_s
# seconds on windows of `window` bytes; `prompts` prompts of prompt_bytes each, new_tokens decoded per gamma.
@dataclass(frozen=True)
class SpeculativeSizes:
    target: dict
    target_s: float
    draft: dict
    draft_s: float
    window: int
    gammas: list
    prompts: int
    prompt_bytes: int
    new_tokens: int
    target_steps: int = 0      # optimiser steps (0: train for the seconds budget instead)
    draft_steps: int = 0
    recipe: str = "current"    # train/recipe.py name for the target
    min_gap_bpb: float = 0.0   # refuse a target not this much better than its draft


# Search vs sampling (`neuro bench search`, notebook 06): the arithmetic GPT trained `steps` steps, `problems`
# problems per seed, a token budget, best-of-n and the tree's branching.
@dataclass(frozen=True)
class SearchSizes:
    model: dict
    steps: int
    problems: int
    seeds: int
    budget: int
    n: int
    branch: int


# Struct-mini (structured/expert.py): Aeron encoder-decoder (enc_layers + dec_layers) vs a decoder-only Aeron with
# enc_layers + dec_layers blocks, both at the profile's Aeron width, same step budget; max_len covers prompt + JSON.
@dataclass(frozen=True)
class MiniExpertSizes:
    steps: int = 1500
    batch_size: int = 32
    lr: float = 3e-3
    warmup_steps: int = 50
    n_train: int = 20000
    n_val: int = 64
    n_eval: int = 60
    eval_every: int = 250
    enc_layers: int = 2
    dec_layers: int = 2
    max_len: int = 448
    budget: int = 256        # new tokens an answer may take


# The runtime's tiny experts (runtime/experts/, bench/expert_eval.py; notebook 08): Reason-mini (word problem ->
# calculator plan) and Code-mini (task -> Python program) are the family base fine-tuned with `family.finetune`;
# here only what decoding and the held-out evaluation need: new tokens per answer, held-out-template problems.
@dataclass(frozen=True)
class ExpertDecodeSizes:
    budget: int = 120
    n_eval: int = 200


# RAG (rag/, notebook 09, `neuro bench rag`): passages of chunk_bytes, a quarter of the sections held out, the
# hashed dense encoder, and the reader: our LM pre-trained for pretrain_steps on the corpus, then fine-tuned for
# finetune_steps per reader condition (step budgets: quality does not depend on the machine's speed).
@dataclass(frozen=True)
class RagSizes:
    chunk_bytes: int = 600
    test_fraction: float = 0.25
    encoder: dict = field(default_factory=lambda: dict(buckets=1 << 15, dim=128))  # HashedEncoder config
    question_repeat: int = 3
    encoder_batch: int = 64
    encoder_lr: float = 1e-3
    encoder_steps: int = 80
    reader_arch: str = "gpt"
    reader_model: dict = field(default_factory=lambda: {"gpt": dict(block_size=256)})  # arch -> config overrides
    reader_block: int = 256
    ctx_bytes: int = 128
    answer_bytes: int = 24
    reader_batch: int = 8
    reader_lr: float = 2e-3
    pretrain_steps: int = 40
    finetune_steps: int = 60
    reader_retriever: str = "bm25"
    n_eval: int = 30
    corpus: str = "stdlib-docs"    # the corpus the runtime's retrieval expert indexes (runtime/experts cached_index)
    reader_extract: str = "span"   # the rule reader's extract there (rag/lite.py EXTRACTS: span | sentence)


# Runtime router (runtime/router_model.py, data/queries.py): training and held-out query counts, Adam steps, math
# queries per size for the sums' cost-quality test, and held-out tasks per family for `neuro bench runtime`.
@dataclass(frozen=True)
class RouterSizes:
    n_train: int = 3000
    n_test: int = 600
    steps: int = 300
    n_math: int = 25
    n_tasks: int = 30


# Recursive expansion vs best-of-N (runtime/expansion.py): the adding GPT (runtime/sum_solver.py) trained for a step
# budget on rows of at most block_size + 1 bytes; families are operand counts `sizes`, probed on `probe` problems
# each; a family whose direct failure rate exceeds `threshold` is split; `problems` per size are then compared.
@dataclass(frozen=True)
class ExpansionSizes:
    model: dict = field(default_factory=lambda: dict(GPT_CPU, n_layer=2, block_size=24))
    steps: int = 1500
    batch_size: int = 64
    lr: float = 3e-3
    n_train: int = 20_000
    sizes: list = field(default_factory=lambda: [2, 3, 4, 5])
    probe: int = 40
    problems: int = 100
    threshold: float = 0.3
    seeds: int = 3


# The runtime's experts: the general LM (GPT trained on stdlib-docs for general_steps, answers of general_tokens), the
# retrieval expert's index sizes (smoke's RAG except in full), the judge model's training set (n_judge questions
# with one right and two corrupted answers each) and its evaluation (judge_eval test-section questions;
# judge_eval // 8 held-out inputs per skill).
@dataclass(frozen=True)
class ExpertsSizes:
    general_steps: int = 300
    general_tokens: int = 80
    # the retrieval expert: stdlib-api (a passage per documented object), the names retriever and the sentence
    # extract, measured best on questions that name a function (data/reference/rag_outside.json, issue 21)
    rag: RagSizes = RagSizes(corpus="stdlib-api", reader_retriever="names", reader_extract="sentence")
    n_judge: int = 600
    judge_eval: int = 200


# The outside evaluation sets (data/eval/, issue 21; bench/outside.py): items per family taken evenly through each
# hand-written file (0 = every item). Smoke reads a spread of 20 per family so the whole table runs in minutes.
@dataclass(frozen=True)
class OutsideEvalSizes:
    n_per_family: int = 0


# RNK plan test (bench/rnk.py --plan-test): the plan-only decoder at the smoke model size, so the three arms x three
# seeds fit in minutes on one thread; `model` goes on top of the profile's RNK sizes.
@dataclass(frozen=True)
class RnkPlanSizes:
    steps: int = 600
    seeds: list = field(default_factory=lambda: [0, 1, 2])
    n_eval: int = 140
    variants: list = field(default_factory=lambda: ["full", "no_hrm", "no_contrastive"])
    model: dict = field(default_factory=lambda: dict(d_model=96, n_layer=2, d_state=8, expand=1, d_plan=96,
                                                     hrm_steps=3, d_dec=128, decoder="plan_only"))


# VQ second look (bench/tokenizers.py --context): the contextual decoder's sizes and its training.
@dataclass(frozen=True)
class VqContextSizes:
    context: dict = field(default_factory=lambda: dict(window=2, d_ctx=64, d_hidden=512))
    train: dict = field(default_factory=lambda: dict(steps=600, batch_size=512, lr=2e-3))


# Aeron enhancement modules (models/aeron/enhanced.py, `neuro bench aeron-modules`, notebook 05): a small
# encoder-decoder backbone and each module's synthetic task (data/aeron_tasks.py); both arms of a module get the
# same `steps` (or --seconds). Engine sizes follow the seed's defaults scaled down (4 branches, threshold 0.3).
# Aeron's learning modules (models/aeron/{continual,uncertainty,badge,vision}.py) each have their own small model
# and sizes; `steps` is each arm's step budget per training run (per task for ewc, per labelling round for badge),
# which `neuro bench aeron-modules --steps N` replaces.
@dataclass(frozen=True)
class EwcSizes:
    steps: int
    batch_size: int
    lr: float
    warmup: int
    n_train: int
    n_test: int
    vocab: int
    length: int
    lam: float
    n_fisher: int
    model: dict


@dataclass(frozen=True)
class UncertaintySizes:
    steps: int
    batch_size: int
    lr: float
    warmup: int
    n_train: int
    noise: float
    members: int
    mc_samples: int
    n_bins: int
    abstain: list
    model: dict
    evidential_loss: str = "digamma"   # Sensoy et al. eq. 4 (models/aeron/uncertainty.evidential_loss)
    anneal_epochs: int = 10            # KL weight min(1, epoch / anneal_epochs)


@dataclass(frozen=True)
class BadgeSizes:
    steps: int
    batch_size: int
    lr: float
    warmup: int
    n_initial: int
    per_round: int
    rounds: int
    model: dict


@dataclass(frozen=True)
class VisionSizes:
    steps: int
    batch_size: int
    lr: float
    warmup: int
    n_eval: int
    n_digits: int
    patch_size: int
    model: dict


@dataclass(frozen=True)
class AeronModulesSizes:
    model: dict              # the enhancement modules' shared backbone (AeronConfig overrides)
    steps: int
    batch_size: int
    lr: float
    warmup: int
    n_eval: int
    reasoning: dict          # max_depth, gate_penalty, ramp, ask ("src" / "decoder"), chains, names ("narrow" / "wide"),
                             # engine (ReasoningConfig), thresholds
    episodic: dict           # n_facts, window, memory (EpisodicConfig)
    kg: dict                 # KnowledgeGraph task sizes
    ewc: EwcSizes
    uncertainty: UncertaintySizes
    badge: BadgeSizes
    vision: VisionSizes


# Data-parallel training (train/distributed.py, `neuro bench ddp`, notebook 12): "tiny" is the equivalence check
# (world 2 x batch B against world 1 x batch 2B, no dropout, `tiny_steps` AdamW steps; tests/test_distributed.py
# uses the same), "model" the LM trained `steps` steps per communication hook and per process/thread layout on
# the corpus; PowerSGD switches from plain all-reduce to compression after `powersgd_start` iterations.
@dataclass(frozen=True)
class DdpSizes:
    tiny: dict = field(default_factory=lambda: dict(vocab_size=256, d_model=32, n_layer=2, n_head=4, d_ff=64,
                                                    block_size=16, dropout=0.0))
    tiny_batch: int = 16
    tiny_steps: int = 50
    model: dict = field(default_factory=lambda: dict(GPT_CPU))
    batch_size: int = 16
    block_size: int = 128
    steps: int = 300
    powersgd_start: int = 10
    powersgd_ranks: list = field(default_factory=lambda: [1, 4])


# The model family (train/pretrain.py, train/finetune.py, `neuro bench family`): one Aeron decoder base per profile,
# vocabulary 257 (bytes + the answer/document marker of data/sft.py), pretrained for `pretrain.steps` on the mixture
# of data/mixture.py (`max_bytes` caps a source: 0 = all of it); fine-tunes run `finetune.steps` on `n_train`
# training-template pairs, `lora_lr` for LoRA children; the bench compares base vs scratch on `bench_tasks` with
# `bench_n_eval` held-out-template examples per task and `bench_seeds`.
@dataclass(frozen=True)
class PretrainSizes:
    steps: int = 4000
    batch_size: int = 16
    block_size: int = 256
    lr: float = 3e-3
    warmup_steps: int = 100
    eval_every: int = 1000
    eval_bytes: int = 20_000
    ckpt_every: int = 0
    ckpt_every_s: float = 120.0


@dataclass(frozen=True)
class FinetuneSizes:
    steps: int = 600
    batch_size: int = 16
    lr: float = 1e-3
    lora_lr: float = 3e-3
    lora_alpha: float = 16.0
    warmup_steps: int = 30
    max_len: int = 448
    n_train: int = 20_000
    n_val: int = 64
    eval_every: int = 0
    # task -> multiple of `steps` (default 1): the broad reason/code generators (data/broad_problems.py) have many
    # more families and wordings than the templated ones, and 600 steps (9,600 pairs) see each family few times
    task_scale: dict = field(default_factory=lambda: {"reason": 2, "code": 2})


@dataclass(frozen=True)
class FamilySizes:
    base: dict = field(default_factory=lambda: dict(AERON_CPU, vocab_size=257))  # AeronConfig
    pretrain: PretrainSizes = PretrainSizes()
    max_bytes: dict = field(default_factory=lambda: {"stdlib-src": 0})  # mixture source -> bytes (0 = all)
    finetune: FinetuneSizes = FinetuneSizes()
    bench_tasks: list = field(default_factory=lambda: ["reason", "code", "struct"])
    bench_n_eval: int = 100
    bench_seeds: list = field(default_factory=lambda: [0, 1, 2])
    # what the one progress line says about the duration (an estimate from tokens/s on 2 quiet cores, not a budget)
    about_pretrain: str = "about 20 min on 2 quiet cores"
    about_finetune: str = "2-3 min on 2 quiet cores (reason and code: twice that)"


# Alignment (rlhf/, `neuro bench rlhf`, notebook 10) on the reviews task (data/reviews.py): a small byte GPT
# fine-tuned on sft_lines review lines (sft_steps), preference pairs from two samples on each of pair_prompts
# prompts ranked by the true reward, a reward model (rm_steps), then each arm for a step budget: DPO at
# dpo_betas, PPO at ppo_kl (rollout_batch samples per rollout, 2 epochs x 2 minibatches), RLOO (rloo_k samples per
# prompt), SFT on the chosen answers; best-of-N for N in bon on bon_prompts prompts; every policy evaluated on
# eval_prompts held-out prompts every eval_every steps. Completions end at a newline or max_new_tokens.
@dataclass(frozen=True)
class RlhfSizes:
    model: dict = field(default_factory=lambda: dict(GPT_CPU, d_model=64, n_layer=2, n_head=4, d_ff=256,
                                                     block_size=64))
    sft_lines: int = 4000
    sft_steps: int = 300
    sft_lr: float = 3e-3
    batch_size: int = 32
    pair_prompts: int = 400
    rm_steps: int = 150
    rm_lr: float = 1e-3
    eval_prompts: int = 32
    bon: list = field(default_factory=lambda: [1, 2, 4, 8, 16, 32])
    bon_prompts: int = 16
    dpo_betas: list = field(default_factory=lambda: [0.05, 0.1, 0.5])
    dpo_steps: int = 80
    dpo_lr: float = 3e-4
    ppo_kl: list = field(default_factory=lambda: [0.05, 0.2])
    ppo_steps: int = 100
    rollout_batch: int = 16
    rloo_kl: float = 0.05
    rloo_steps: int = 40
    rloo_k: int = 4
    rl_lr: float = 5e-4
    eval_every: int = 20
    max_new_tokens: int = 48
    seeds: int = 3


# `neuro bench export` (bench/export.py): a GPT trained for train_s seconds on windows of `window` bytes,
# then exported and quantised; bpb on the first eval_bytes of the validation split (0 = all), tokens/s of a
# prompt_len-token prefill and new_tokens greedy decode steps, best of `repeats`, each runtime in its own process.
@dataclass(frozen=True)
class ExportSizes:
    model: dict = field(default_factory=lambda: dict(GPT_CPU))
    train_s: float = 200
    window: int = 128
    eval_bytes: int = 200_000
    prompt_len: int = 64
    new_tokens: int = 64
    repeats: int = 5
    threads: int = 2


# Model merging (merging/, `neuro bench merge`, notebook 11): per seed, one full fine-tune of the family's base per
# task for `steps` (the multi-task fine-tune gets steps x tasks), `soup_seeds` fine-tunes of the first task for the
# soups; `n_val` / `n_test` distinct held-out-template pairs per task; the validation grids each method is tuned on.
@dataclass(frozen=True)
class MergeSizes:
    tasks: list = field(default_factory=lambda: ["reason", "code", "struct"])
    steps: int = 600
    soup_seeds: int = 3
    n_val: int = 48
    n_test: int = 96
    seeds: int = 5
    grid: dict = field(default_factory=lambda: dict(lam=[0.3, 0.5, 0.7, 1.0], ties_lam=[0.5, 1.0, 1.5],
                                                   density=[0.2, 0.5], p=[0.5, 0.9], layerwise=[0.0, 0.5, 1.0, 1.5]))


# The architecture shoot-out (`neuro bench lm --sizes matched`, notebook 02): `matched` holds config overrides on
# the profile's model sizes that bring every arch to the GPT's parameter count within 10 % (counted in
# tests/test_shootout.py); `corpus_bytes` caps a corpus to its first bytes before the 90/10 split (absent = all);
# `curve_points` validations spread over each arm's budget draw its bpb curve; notebook 02 trains each arm
# `seconds` and scores the first `eval_bytes` of each validation split (0 = all).
@dataclass(frozen=True)
class ShootoutSizes:
    matched: dict = field(default_factory=lambda: {"aeron": dict(d_ff=400), "mamba": dict(d_model=168),
                                                   "rnk": dict(d_model=112, d_plan=112, d_dec=128)})
    corpus_bytes: dict = field(default_factory=lambda: {"stdlib-src": 5_000_000})
    curve_points: int = 6
    seconds: float = 60.0
    eval_bytes: int = 50_000


@dataclass(frozen=True)
class Tasks:
    """One typed section per task-specific run; every profile fills every section."""
    rnk_chat: RnkChatSizes
    speculative: SpeculativeSizes
    search: SearchSizes
    struct_mini: MiniExpertSizes
    rag: RagSizes
    router: RouterSizes
    expansion: ExpansionSizes
    reason_mini: ExpertDecodeSizes
    code_mini: ExpertDecodeSizes
    experts: ExpertsSizes
    aeron_modules: AeronModulesSizes
    ddp: DdpSizes
    family: FamilySizes
    rlhf: RlhfSizes
    merge: MergeSizes
    export: ExportSizes
    outside_eval: OutsideEvalSizes
    rnk_plan: RnkPlanSizes
    vq_context: VqContextSizes
    shootout: ShootoutSizes


@dataclass(frozen=True)
class Profile:
    name: str
    train: TrainSizes
    tasks: Tasks
    models: dict = field(default_factory=dict)  # arch -> dict of config overrides
    arch_train: dict = field(default_factory=dict)  # arch -> TrainSizes overrides (an arch's tuned optimiser)
    tokenizer_vocab: list = field(default_factory=list)
    # notebook 01 / `neuro bench tokenizers`: "text_bytes" of the corpus used (0 = all), "train": kind ->
    # arguments of that kind's train() (also used by train_lm), "lm_specs"/"lm_budget_s": the LM comparison
    tokenizers: dict = field(default_factory=dict)

    def model(self, arch: str) -> dict:
        """Config overrides for `arch` under this profile (a fresh copy)."""
        if arch not in self.models:
            raise KeyError(f"profile {self.name!r} has no sizes for arch {arch!r}; known: {sorted(self.models)}")
        return copy.deepcopy(self.models[arch])

    def train_sizes(self, arch: str) -> TrainSizes:
        """The training sizes for `arch`: the profile's, with that arch's overrides."""
        return replace(self.train, **self.arch_train.get(arch, {}))


STRUCT_MINI = MiniExpertSizes()
REASON_MINI = ExpertDecodeSizes()
CODE_MINI = replace(REASON_MINI, budget=240)  # the broad generator's longest programs (first primes, Fibonacci lists)
RAG = RagSizes()
RAG_FULL = replace(RAG, encoder=dict(buckets=1 << 18, dim=256), encoder_steps=3000, encoder_batch=256,
                   reader_model={"gpt": dict(block_size=768), "aeron": {}}, reader_block=768, ctx_bytes=512,
                   reader_batch=32, reader_lr=1e-3, pretrain_steps=20_000, finetune_steps=4000, n_eval=10_000)
ROUTER = RouterSizes()
EXPANSION = ExpansionSizes()
EXPERTS = ExpertsSizes()
AERON_MODULES = AeronModulesSizes(
    model=dict(d_model=64, n_head=4, n_kv_head=2, n_encoder_layer=2, n_decoder_layer=1, d_ff=170, block_size=64,
               rope_theta=10_000.0),
    steps=1500, batch_size=64, lr=3e-3, warmup=30, n_eval=1024,
    reasoning=dict(max_depth=4, gate_penalty=0.0, ramp=1.0, ask="decoder", chains=2, names="wide",
                   engine=dict(n_branches=4, keep=2, rounds=2, n_slots=16, threshold=0.3),
                   thresholds=[0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.01]),
    episodic=dict(n_facts=8, window=0, memory=dict(n_slots=16, memory_dim=32, top_k=4, n_head=4),
                  curriculum=dict(start=2, ramp=0.5), retrieval=1.0),
    kg=dict(n_entities=48, n_relations=4, heldout=0.25, distractors=1, fresh=0.5),
    ewc=EwcSizes(steps=300, batch_size=32, lr=3e-3, warmup=20, n_train=2000, n_test=500, vocab=32, length=12,
                 lam=1e6, n_fisher=200, model=dict(d_model=48, n_head=4, n_kv_head=2, n_layer=2, d_ff=96,
                                                   dropout=0.0)),
    uncertainty=UncertaintySizes(steps=600, batch_size=32, lr=3e-3, warmup=20, n_train=1000, noise=0.35, members=5,
                                 mc_samples=20, n_bins=10, abstain=[0.0, 0.1, 0.2, 0.3, 0.5],
                                 model=dict(d_model=48, n_head=4, n_kv_head=2, n_layer=2, d_ff=96, dropout=0.2,
                                            patch_size=2)),
    badge=BadgeSizes(steps=500, batch_size=32, lr=3e-3, warmup=20, n_initial=20, per_round=20, rounds=6,
                     model=dict(d_model=32, n_head=4, n_kv_head=2, n_layer=1, d_ff=64, dropout=0.1, patch_size=2)),
    vision=VisionSizes(steps=1000, batch_size=64, lr=5e-3, warmup=20, n_eval=300, n_digits=2, patch_size=4,
                       model=dict(d_model=64, n_head=4, n_kv_head=2, n_encoder_layer=2, n_decoder_layer=2, d_ff=170,
                                  block_size=64, dropout=0.0)),
)
AERON_MODULES_SMOKE = replace(
    AERON_MODULES, model=dict(AERON_MODULES.model, d_model=32, n_encoder_layer=1, d_ff=86),
    steps=40, batch_size=32, warmup=10, n_eval=128,
    ewc=replace(AERON_MODULES.ewc, steps=40, n_train=512, n_test=200, n_fisher=48,
                model=dict(AERON_MODULES.ewc.model, d_model=32, n_layer=1, d_ff=64)),
    uncertainty=replace(AERON_MODULES.uncertainty, steps=40, members=3, mc_samples=8,
                        model=dict(AERON_MODULES.uncertainty.model, d_model=32, n_layer=1, d_ff=64)),
    badge=replace(AERON_MODULES.badge, steps=30, rounds=2),
    vision=replace(AERON_MODULES.vision, steps=40, batch_size=32, n_eval=96,
                   model=dict(AERON_MODULES.vision.model, d_model=32, n_encoder_layer=1, n_decoder_layer=1, d_ff=86)),
)
DDP = DdpSizes()
DDP_SMOKE = replace(DDP, model=dict(GPT_CPU, n_layer=2, block_size=64), block_size=64, steps=20, powersgd_start=4)
FAMILY = FamilySizes()
FAMILY_SMOKE = replace(
    FAMILY, base=dict(FAMILY.base, d_model=64, n_head=4, n_kv_head=2, n_decoder_layer=2, d_ff=170, block_size=512),
    pretrain=replace(FAMILY.pretrain, steps=30, batch_size=8, block_size=128, warmup_steps=5, eval_every=0,
                     eval_bytes=2_000, ckpt_every=10),
    max_bytes={"api-docs": 200_000, "c-docs": 100_000, "stdlib-src": 200_000, "prose": 100_000, "tasks": 200_000},
    finetune=replace(FAMILY.finetune, steps=30, batch_size=8, warmup_steps=5, n_train=2000, n_val=8),
    bench_n_eval=20, bench_seeds=[0], about_pretrain="seconds", about_finetune="seconds",
)
RLHF = RlhfSizes()
EXPORT = ExportSizes()
MERGE = MergeSizes()
MERGE_SMOKE = replace(MERGE, steps=60, soup_seeds=2, n_val=16, n_test=32, seeds=1)
OUTSIDE_EVAL = OutsideEvalSizes()
RNK_PLAN = RnkPlanSizes()
VQ_CONTEXT = VqContextSizes()
VQ_CONTEXT_SMOKE = replace(VQ_CONTEXT, train=dict(steps=20, batch_size=128, lr=2e-3))
SHOOTOUT = ShootoutSizes()
# smoke: RNK's smoke size already has the smoke GPT's count (1.06x); every corpus cut small so anchors take a moment
SHOOTOUT_SMOKE = replace(SHOOTOUT, matched={"aeron": dict(d_ff=400), "mamba": dict(d_model=168)},
                         corpus_bytes={"stdlib-docs": 300_000, "shakespeare": 300_000, "stdlib-src": 300_000},
                         curve_points=2, seconds=2.0, eval_bytes=4_000)
SHOOTOUT_FULL = replace(SHOOTOUT, matched={"aeron": dict(d_ff=1280), "mamba": dict(d_model=448)}, corpus_bytes={},
                        curve_points=10, seconds=600.0, eval_bytes=0)

PROFILES = {
    "smoke": Profile(
        name="smoke",
        train=TrainSizes(batch_size=16, block_size=64, time_budget_s=20, eval_every=100, eval_bytes=20_000),
        models={"gpt": dict(GPT_CPU, n_layer=2, block_size=64),
                "mamba": dict(MAMBA_CPU, d_model=128, n_layer=2, block_size=64),
                "rnk": dict(RNK_CPU, d_model=96, n_layer=2, d_state=8, expand=1, d_plan=96, hrm_steps=3, d_dec=128),
                "aeron": dict(AERON_CPU, n_decoder_layer=2, block_size=512),
                "nanogpt": dict(GPT_CPU, n_layer=2, block_size=64)},
        tokenizer_vocab=[512, 1024],
        tokenizers=dict(text_bytes=400_000, train={"vq": {"train": {"steps": 500, "batch_size": 256, "lr": 5e-3}}},
                        lm_specs=["byte", "bpe:1024", "vq:1024"], lm_budget_s=4),
        tasks=Tasks(
            rnk_chat=RnkChatSizes(steps=100, batch_size=16, lr=3e-3, n_train=3000, n_eval=70, n_decode=28),
            speculative=SpeculativeSizes(target=dict(GPT_CPU, n_layer=2, block_size=128), target_s=10,
                                         draft=dict(GPT_CPU, d_model=32, n_layer=1, n_head=2, d_ff=128, block_size=128),
                                         draft_s=3, window=128, gammas=[1, 2, 4], prompts=2, prompt_bytes=32,
                                         new_tokens=48, target_steps=60, draft_steps=15, recipe="best",
                                         min_gap_bpb=0.3),
            search=SearchSizes(model=dict(GPT_CPU, n_layer=2, block_size=64), steps=150, problems=12, seeds=3,
                               budget=24, n=5, branch=3),
            struct_mini=replace(STRUCT_MINI, steps=12, batch_size=8, warmup_steps=4, n_train=500, n_val=16, n_eval=3,
                                eval_every=0, budget=160),
            rag=RAG,
            router=replace(ROUTER, n_train=1500, n_test=300, steps=150, n_math=10, n_tasks=4),
            expansion=replace(EXPANSION, steps=300, probe=20, problems=20, seeds=1),
            reason_mini=replace(REASON_MINI, n_eval=16),
            code_mini=replace(CODE_MINI, n_eval=18),
            experts=replace(EXPERTS, general_steps=150, general_tokens=40, n_judge=300, judge_eval=60),
            aeron_modules=AERON_MODULES_SMOKE, ddp=DDP_SMOKE, family=FAMILY_SMOKE, rlhf=RLHF, merge=MERGE_SMOKE,
            export=replace(EXPORT, model=dict(GPT_CPU, n_layer=2, block_size=64), window=64, train_s=15,
                           eval_bytes=8_000, prompt_len=32, new_tokens=16, repeats=2),
            outside_eval=replace(OUTSIDE_EVAL, n_per_family=20), rnk_plan=replace(RNK_PLAN, steps=400),
            vq_context=VQ_CONTEXT_SMOKE, shootout=SHOOTOUT_SMOKE),
    ),
    "bench": Profile(
        name="bench",
        train=TrainSizes(batch_size=32, block_size=128, time_budget_s=200, eval_every=250, eval_bytes=0),
        models={"gpt": dict(GPT_CPU), "mamba": dict(MAMBA_CPU), "rnk": dict(RNK_CPU), "aeron": dict(AERON_CPU),
                "nanogpt": dict(GPT_CPU)},
        arch_train={"gpt": CPU_LM_TRAIN, "aeron": CPU_LM_TRAIN, "nanogpt": CPU_LM_TRAIN},
        tokenizer_vocab=[1024, 4096, 8192],
        tokenizers=dict(text_bytes=0, train={"vq": {"train": {"steps": 1500}}},
                        lm_specs=["byte", "bpe:4096", "vq:4096"], lm_budget_s=200),
        tasks=Tasks(
            rnk_chat=RnkChatSizes(steps=1500, batch_size=32, lr=2e-3, n_train=20000, n_eval=700, n_decode=140),
            # a target 10x the draft's parameters; both see 256-byte windows so a 64-byte prompt + 160 new fit
            speculative=SpeculativeSizes(target=dict(GPT_CPU, d_model=256, n_layer=6, n_head=8, d_ff=1024,
                                                     block_size=256),
                                         target_s=240, draft=dict(GPT_CPU, d_model=64, n_layer=1, n_head=2, d_ff=256,
                                                                  block_size=256),
                                         draft_s=60, window=256, gammas=[1, 2, 3, 4, 6, 8], prompts=4, prompt_bytes=64,
                                         new_tokens=160, target_steps=3000, draft_steps=300, recipe="best",
                                         min_gap_bpb=0.3),
            search=SearchSizes(model=dict(GPT_CPU, n_layer=2, block_size=64), steps=1500, problems=100, seeds=3,
                               budget=32, n=8, branch=3),
            struct_mini=STRUCT_MINI,
            rag=replace(RAG, encoder=dict(buckets=1 << 16, dim=256), encoder_steps=300,
                        reader_model={"gpt": dict(block_size=448), "aeron": {}}, reader_block=448, ctx_bytes=256,
                        reader_lr=3e-3, pretrain_steps=1500, finetune_steps=600, n_eval=10_000),
            router=ROUTER, expansion=EXPANSION,
            rlhf=replace(RLHF, model=dict(GPT_CPU, block_size=64), sft_steps=1500, rm_steps=600, dpo_steps=300,
                         ppo_steps=200, rloo_steps=100, pair_prompts=2000, eval_prompts=128, bon_prompts=64,
                         eval_every=50),
            reason_mini=REASON_MINI, code_mini=CODE_MINI, experts=EXPERTS, aeron_modules=AERON_MODULES, ddp=DDP,
            export=EXPORT, family=FAMILY, merge=MERGE, outside_eval=OUTSIDE_EVAL, rnk_plan=RNK_PLAN,
            vq_context=VQ_CONTEXT, shootout=SHOOTOUT),
    ),
    "full": Profile(
        name="full",
        train=TrainSizes(batch_size=64, block_size=256, time_budget_s=3600, eval_every=500, eval_bytes=0, lr=1e-3,
                         warmup_steps=200, precision="bf16"),
        models={"gpt": dict(vocab_size=256, d_model=384, n_layer=6, n_head=6, d_ff=1536, block_size=256,
                            dropout=0.1),
                "mamba": dict(MAMBA_CPU, d_model=384, n_layer=8, block_size=256),
                "rnk": dict(RNK_CPU, d_model=384, n_layer=6, d_plan=384, d_dec=512),
                "aeron": dict(AERON_CPU, d_model=384, n_head=6, n_kv_head=2, n_decoder_layer=6, d_ff=1024,
                              block_size=2048, dropout=0.1),
                "nanogpt": dict(vocab_size=256, d_model=384, n_layer=6, n_head=6, d_ff=1536, block_size=256,
                                dropout=0.1)},
        tokenizer_vocab=[1024, 4096, 8192],
        tokenizers=dict(text_bytes=0, train={"vq": {"train": {"steps": 6000}}},
                        lm_specs=["byte", "word:8192", "bpe:4096", "vq:4096"], lm_budget_s=1800),
        tasks=Tasks(
            rnk_chat=RnkChatSizes(steps=20000, batch_size=64, lr=1e-3, n_train=200000, n_eval=2800, n_decode=700),
            speculative=SpeculativeSizes(target=dict(GPT_CPU, d_model=384, n_layer=8, n_head=8, d_ff=1536,
                                                     block_size=512),
                                         target_s=1800, draft=dict(GPT_CPU, d_model=96, n_layer=2, n_head=4, d_ff=384,
                                                                   block_size=512),
                                         draft_s=300, window=512, gammas=[1, 2, 3, 4, 6, 8], prompts=16,
                                         prompt_bytes=128, new_tokens=320, target_steps=20000, draft_steps=2000,
                                         recipe="best", min_gap_bpb=0.3),
            search=SearchSizes(model=dict(GPT_CPU, block_size=64), steps=6000, problems=400, seeds=3, budget=32, n=8,
                               branch=3),
            struct_mini=replace(STRUCT_MINI, steps=10000, batch_size=64, lr=1e-3, n_train=200000, n_eval=300),
            rag=RAG_FULL,
            router=replace(ROUTER, n_train=20_000, n_test=2000, steps=2000, n_math=100, n_tasks=200),
            expansion=replace(EXPANSION, model=dict(GPT_CPU, block_size=24), steps=6000, problems=400),
            reason_mini=replace(REASON_MINI, n_eval=1000),
            code_mini=replace(CODE_MINI, n_eval=1000),
            experts=replace(EXPERTS, general_steps=5000, rag=replace(RAG_FULL, corpus="stdlib-api",
                                                                     reader_retriever="names",
                                                                     reader_extract="sentence"),
                            n_judge=3000, judge_eval=1000),
            aeron_modules=replace(AERON_MODULES, model=dict(AERON_MODULES.model, d_model=128, n_encoder_layer=4,
                                                            n_decoder_layer=2, d_ff=341),
                                  steps=5000, batch_size=128, n_eval=4096,
                                  ewc=replace(AERON_MODULES.ewc, steps=2000),
                                  uncertainty=replace(AERON_MODULES.uncertainty, steps=2000),
                                  badge=replace(AERON_MODULES.badge, steps=600, rounds=10),
                                  vision=replace(AERON_MODULES.vision, steps=5000)),
            ddp=replace(DDP, model=dict(GPT_CPU, d_model=384, n_layer=6, n_head=6, d_ff=1536, block_size=256),
                        batch_size=64, block_size=256, steps=2000, powersgd_start=100),
            export=replace(EXPORT, model=dict(GPT_CPU, d_model=384, n_layer=6, n_head=6, d_ff=1536, block_size=256),
                           train_s=1800, window=256, prompt_len=128),
            family=replace(FAMILY, base=dict(FAMILY.base, d_model=384, n_head=6, n_kv_head=2, n_decoder_layer=6,
                                             d_ff=1024, block_size=2048),
                           pretrain=replace(FAMILY.pretrain, steps=100_000, batch_size=64, block_size=512, lr=1e-3,
                                            warmup_steps=1000, eval_every=5000, eval_bytes=200_000),
                           finetune=replace(FAMILY.finetune, steps=5000, batch_size=32, n_train=200_000),
                           about_pretrain="overnight (hours; a GPU welcome)", about_finetune="about an hour"),
            rlhf=replace(RLHF, model=dict(GPT_CPU, block_size=64), sft_steps=5000, rm_steps=2000, dpo_steps=1000,
                         ppo_steps=1000, rloo_steps=500, pair_prompts=10_000, eval_prompts=512, bon_prompts=256,
                         eval_every=100),
            merge=replace(MERGE, steps=2000), outside_eval=OUTSIDE_EVAL, rnk_plan=replace(RNK_PLAN, steps=3000, n_eval=700),
            vq_context=replace(VQ_CONTEXT, train=dict(steps=3000, batch_size=1024, lr=2e-3)),
            shootout=SHOOTOUT_FULL),
    ),
}


def get_profile(name: str) -> Profile:
    """The named profile; call it at a door (CLI, workbook, a bench suite's run, a notebook's parameters)."""
    if name not in PROFILES:
        raise NeuroError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}")
    return PROFILES[name]
