"""The runtime's experts: task generators (held-out templates), experts as fine-tunes of the family base (one
recipe, lineage checked), Reason-mini's calculator injected while decoding, Code-mini in the sandbox, Struct-mini,
Retrieval citations, General, build_experts' refusals.
Models here are untrained or scripted (a fixed writer): no test trains more than a couple of steps."""
import re

import pytest
import torch

from neuro_lib.data.word_problems import (CODE_FAMILIES, N_HELDOUT, REASON_FAMILIES, fmt_number, make_code_tasks,
                                          make_problems)
from neuro_lib.errors import NeuroError
from neuro_lib.models import build_model
from neuro_lib.bench.expert_eval import evaluate_code_mini, evaluate_reason_mini
from neuro_lib.data.sft import VOCAB
from neuro_lib.runtime.experts import General, Retrieval, StructMini, build_experts, train_expert
from neuro_lib.runtime.experts.code import CodeMini, run_program
from neuro_lib.runtime.experts.reason import (ARROW, RETRY_TEMPERATURE, ReasonMini, model_writer, parse_plan,
                                              solve)
from neuro_lib.runtime.types import Expert, Query
from neuro_lib.structured.schemas import load_schema
from neuro_lib.structured.verify import verify_text
from neuro_lib.tools import get_tool
from neuro_lib.checkpoint import check_lineage, checkpoint_id, load_checkpoint
from neuro_lib.train.pretrain import pretrain
from neuro_lib.train.seq2seq import aeron_config
from neuro_lib.profiles import get_profile

TINY_AERON = dict(vocab_size=257, d_model=32, n_head=2, n_kv_head=1, d_ff=64, rope_theta=10_000.0, dropout=0.0)


def tiny_encdec(max_len=256):
    torch.manual_seed(0)
    return build_model("aeron", **aeron_config("encdec", TINY_AERON, 1, 1, max_len))


def tiny_decoder(max_len=256):
    torch.manual_seed(0)
    return build_model("aeron", **aeron_config("decoder", TINY_AERON, 1, 1, max_len))


def scripted(target: str):
    """A fixed fake model decoding like the engine: at each position the processor may force tokens (a tool's
    result, the end token); otherwise the model writes the next byte of `target`'s current line, and a newline once
    the line's result is in (its own claimed number is dropped when the tool answered). Stops like the engine."""
    lines = target.encode().split(b"\n")

    def write(source: bytes, stop: tuple, processor=None) -> bytes:
        out = b""
        while len(out) < 400:
            forced = processor.forced(list(out)) if processor is not None else []
            if forced:
                if 256 in forced:
                    break
                out += bytes(forced)
                continue
            i = out.count(b"\n")
            if i >= len(lines):
                break
            line, cur = lines[i], out.rsplit(b"\n", 1)[-1]
            injected = processor is not None and ARROW in cur and cur.index(ARROW) + len(ARROW) < len(cur)
            if injected or len(cur) >= len(line):
                if i == len(lines) - 1:
                    break
                out += b"\n"
            else:
                out += line[len(cur):len(cur) + 1]
            hit = [out.find(s) for s in stop if s in out]
            if hit:
                return out[:min(hit)]
        return out
    return write


# -- generators ----------------------------------------------------------------------------------------------
def _fixed_words(template: str) -> list[str]:
    """The template's literal text pieces of three or more words (slots removed)."""
    return [p.strip() for p in re.split(r"\{\w+\}", template) if len(p.split()) >= 3]


@pytest.mark.parametrize("families,make", [(REASON_FAMILIES, make_problems), (CODE_FAMILIES, make_code_tasks)])
def test_heldout_templates_never_appear_in_training(families, make):
    train, held = make(400, seed=0, split="train"), make(200, seed=0, split="heldout")
    for fam, (_, phrasings) in families.items():
        n = len(phrasings)
        assert {x.template for x in train if x.family == fam} <= set(range(n - N_HELDOUT))
        assert {x.template for x in held if x.family == fam} == set(range(n - N_HELDOUT, n))
        for t in phrasings[n - N_HELDOUT:]:  # a held-out phrasing's fixed words occur in no training text
            for piece in _fixed_words(t):
                assert not any(piece in x.text for x in train), (fam, piece)
    assert make(5, seed=3) == make(5, seed=3) and make(5, seed=3) != make(5, seed=4)
    with pytest.raises(ValueError):
        make(1, split="test")


def test_problem_plans_recompute_with_the_calculator():
    calc = get_tool("calc")
    for p in make_problems(80, seed=1, split="heldout"):
        steps, answer = parse_plan(p.target.decode())
        assert [e for e, _ in steps] == p.steps and answer == p.answer
        for expr, claimed in steps:
            assert fmt_number(calc.call({"expression": expr}).value) == claimed


def test_code_task_programs_print_the_reference_in_the_sandbox():
    tasks = make_code_tasks(len(CODE_FAMILIES), seed=2, split="heldout")  # one per family
    for t in tasks:
        a, value = run_program(t.program)
        assert a.ok and a.text == t.expected and value["exit_code"] == 0, (t.program, value)


# -- Reason-mini ---------------------------------------------------------------------------------------------
def test_tool_loop_executes_calls_and_feeds_results_back():
    p = next(p for p in make_problems(40, split="heldout") if len(p.steps) == 2)
    a = solve(scripted(p.target.decode()), p.text, use_tool=True)
    assert a.ok and a.text == p.answer and a.value == p.values[-1]
    assert [c.args["expression"] for c in a.tool_calls] == p.steps and all(c.ok for c in a.tool_calls)
    assert a.model_calls == 1 and a.tokens > 0  # one decode: the results were injected into it
    assert a.meta["plan"].count(ARROW.decode()) == 2


def test_the_tool_corrects_the_models_arithmetic_and_without_it_the_model_answers():
    plan = "CALL calc(17*23+4) -> 999\nANSWER 999"  # the model's own (wrong) number
    with_tool, without = solve(scripted(plan), "q", True), solve(scripted(plan), "q", False)
    assert with_tool.text == "395" and with_tool.tool_calls[0].value == 395
    assert without.text == "999" and without.tool_calls == [] and without.model_calls == 1


@pytest.mark.parametrize("plan,error", [("CALL calc(1/0) -> 1\nANSWER 1", "calculator refused"),
                                        ("ANSWER 12", "no calculator call"),
                                        ("CALL calc(1+1) -> 2\n" * 8 + "ANSWER 2", "more than")])
def test_tool_loop_failures_are_answers_with_ok_false(plan, error):
    a = solve(scripted(plan), "q", True)
    assert not a.ok and error in a.error
    assert not solve(scripted("no plan"), "q", False).ok


@pytest.fixture(scope="module")
def family_base(tmp_path_factory):
    return pretrain(get_profile("smoke"), tmp_path_factory.mktemp("experts") / "base", steps=2)


def test_experts_are_fine_tunes_of_the_base_with_lineage(family_base, tmp_path):
    """Every model expert comes from the one recipe (train/finetune.py) on the base; a changed base is refused."""
    for name, task in (("reason-mini", "reason"), ("code-mini", "code")):
        child = train_expert(name, family_base, tmp_path / name, get_profile("smoke"), steps=2)
        cfg = check_lineage(child)
        assert cfg["parent"]["id"] == checkpoint_id(family_base) and cfg["finetune"]["task"] == task
    model = load_checkpoint(tmp_path / "reason-mini")[0]
    expert = ReasonMini(model, budget=30)
    assert isinstance(expert, Expert) and expert.tools == ("calc",)
    a = expert.answer(Query("Convert 3 hours to minutes."))
    assert a.model_calls == 1 and a.tokens >= 1 and isinstance(a.ok, bool)
    r = evaluate_reason_mini(get_profile("smoke"), model, n=2)
    assert set(r) >= {"with_tool", "grounded", "without_tool"} and 0 <= r["grounded"]["exact_match"] <= 1
    c = evaluate_code_mini(get_profile("smoke"), load_checkpoint(tmp_path / "code-mini")[0], n=2)
    assert c["n"] == 2 and 0 <= c["ran_ok"] <= 1
    with pytest.raises(NeuroError, match="no trained model for expert 'retrieval'"):
        train_expert("retrieval", family_base, tmp_path / "r", get_profile("smoke"))


def test_first_attempt_is_greedy_and_retries_sample_reproducibly():
    """A greedy expert would repeat the answer the judge failed; a retry samples, seeded by the attempt."""
    torch.manual_seed(0)
    model = tiny_decoder()
    expert = ReasonMini(model, budget=24)
    q = Query("Convert 3 hours to minutes.")
    plan = lambda a: a.meta.get("plan")  # noqa: E731
    assert plan(expert.answer(q)) == plan(expert.answer(q))
    retry = Query(q.text, attempt=1)
    assert plan(expert.answer(retry)) == plan(expert.answer(retry))
    greedy = model_writer(model, 24)(q.text.encode(), ())
    sampled = {model_writer(model, 24, RETRY_TEMPERATURE, seed=k)(q.text.encode(), ()) for k in range(1, 6)}
    assert sampled - {greedy}


# -- Code-mini -----------------------------------------------------------------------------------------------
def test_code_expert_runs_its_program_in_the_sandbox():
    a = CodeMini(None, write=lambda text: b"print(sum(i*i for i in range(3, 9+1)))").answer(Query("x"))
    assert a.ok and a.text == "280" and a.value == "280" and a.model_calls == 1
    (call,) = a.tool_calls
    assert call.tool == "python" and call.ok and call.value["exit_code"] == 0 and a.meta["program"].startswith("print")


@pytest.mark.parametrize("program,why", [(b"print(1/0)", "ZeroDivisionError"), (b"print(", "SyntaxError"),
                                         (b"x = 1", None)])
def test_a_failing_program_gives_ok_false(program, why):
    a = CodeMini(None, write=lambda text: program).answer(Query("x"))
    assert not a.ok and a.error and a.value is None
    if why:
        assert why in a.meta["stderr"] and a.tool_calls[0].ok is False


# -- Struct-mini, Retrieval, General --------------------------------------------------------------------------
def test_struct_expert_is_constrained_to_the_querys_schema():
    expert = StructMini(tiny_encdec(448), budget=120)
    a = expert.answer(Query("Lunch on May 3, 2026 with Ana.", wants_json=True, schema_id="event_v1"))
    assert a.ok and verify_text(a.text, load_schema("event_v1"))[1] == [] and a.value is not None
    assert a.model_calls == 1 and a.tokens > 1
    assert "schema_id" in expert.answer(Query("x")).error
    bad = expert.answer(Query("x", schema_id="no_such_schema"))
    assert not bad.ok and "no_such_schema" in bad.error


def test_retrieval_citations_point_at_real_passage_spans(tiny_index):
    expert = Retrieval(tiny_index)
    data = tiny_index.corpus.data
    for q in tiny_index.questions[:8]:
        a = expert.answer(Query(q.text))
        assert a.ok and a.citations
        for c in a.citations:
            p = tiny_index.passages[tiny_index.by_id[c["passage_id"]]]
            assert p.start <= c["start"] < c["end"] <= p.end  # inside the cited passage
            assert data[c["start"]:c["end"]].decode() == a.text  # the cited bytes are the answer
            assert c["source"] == tiny_index.corpus.spec
    assert not expert.answer(Query("   ")).ok


def test_general_expert_answers_the_query(tiny_gpt_cfg):
    from neuro_lib.tokenizers import ByteTokenizer
    torch.manual_seed(0)
    g = General(build_model("gpt", **dict(tiny_gpt_cfg, vocab_size=VOCAB)), ByteTokenizer(), max_new_tokens=12)
    a = g.answer(Query("hello", context=[{"role": "user", "text": "earlier turn"}]))
    assert a.model_calls == 1 and 1 <= a.tokens <= 13 and isinstance(a.text, str)
    assert g.answer(Query("hello")) == g.answer(Query("hello"))  # greedy: reproducible


def test_every_expert_follows_the_protocol(tiny_index, tiny_gpt_cfg):
    from neuro_lib.tokenizers import ByteTokenizer
    experts = [ReasonMini(None, write=scripted("")), CodeMini(None, write=lambda t: b""), StructMini(None),
               Retrieval(tiny_index), General(build_model("gpt", **dict(tiny_gpt_cfg, vocab_size=VOCAB)), ByteTokenizer())]
    for e in experts:
        assert isinstance(e, Expert) and e.skills and set(e.contract) == {"input", "output"}


def test_build_experts_refuses_an_unknown_name():
    with pytest.raises(NeuroError, match="unknown expert 'poet'"):
        build_experts(get_profile("smoke"), ["poet"])
