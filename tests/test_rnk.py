"""RNK: chunk padding and response masks, causal intent, loss weights, step() == forward(),
malformed chat records rejected by number, the refiner's symbolic rules."""
import json

import pytest
import torch

from neuro_lib.data.chat import (INTENTS, KNOWLEDGE, ChatExample, collate_chat, encode_example, generate_chat,
                                 model_sizes, read_chat_jsonl, write_chat_jsonl)
from neuro_lib.errors import NeuroError
from neuro_lib.infer.chat import chat_reply, solve_arithmetic
from neuro_lib.models import build_model

TINY = dict(d_model=32, n_layer=1, d_state=4, expand=1, chunk_len=8, d_plan=16, hrm_steps=2, hrm_low_steps=1,
            d_dec=24, block_size=32)


def tiny(**over):
    torch.manual_seed(0)
    return build_model("rnk", **{**model_sizes(), **TINY, **over})


def test_chunk_padding_and_response_mask_by_hand():
    ex = ChatExample("Hi", "Yo", "greeting", True)
    enc = encode_example(ex, 8)
    # "User: Hi\n" is 9 bytes -> padded to 16; "Model: Yo\n" is 10 bytes -> padded to 16
    assert enc["seq"] == b"User: Hi\n" + b"\0" * 7 + b"Model: Yo\n" + b"\0" * 6
    assert enc["prompt_chunks"] == 2 and enc["reply_start"] == 16 + 7 and enc["reply_end"] == 26
    b = collate_chat([ex], 8)
    targets = bytes(b["targets"][0].tolist())
    masked = bytes(t for t, m in zip(targets, b["loss_mask"][0].tolist()) if m)
    assert masked == b"Yo\n"  # only the reply and its newline count
    assert b["prompt_chunk"].item() == 1 and b["response_chunk"].item() == 3
    assert b["stop_mask"][0].tolist() == [0, 1, 1, 1]
    assert b["stop_target"][0].tolist() == [0, 0, 1, 1]  # chunk 2's plan: the next chunk (3) ends the reply


def test_generator_is_deterministic_and_heldout_uses_unseen_templates():
    a, b = generate_chat(70, seed=3), generate_chat(70, seed=3)
    assert a == b and a != generate_chat(70, seed=4)
    assert {e.intent for e in a} == set(INTENTS)
    train_users = {e.user for e in generate_chat(2000, seed=0)}
    held = generate_chat(200, seed=0, split="heldout")
    assert not train_users & {e.user for e in held if e.intent not in ("math",)}
    for e in a:
        if e.intent == "math":
            assert e.reply.endswith(f"= {solve_arithmetic(e.user)}.")
        if e.intent == "refusal":
            assert not e.answerable and not any(c in e.user for c in KNOWLEDGE)


def test_malformed_records_rejected_with_number(tmp_path):
    path = tmp_path / "chat.jsonl"
    write_chat_jsonl(path, generate_chat(3))
    assert len(read_chat_jsonl(path)) == 3
    good = path.read_text()
    bad_cases = {
        '{"user": "Hi", "model": "Yo", "intent": "shouting", "answerable": true}': "unknown intent",
        '{"user": "Hi", "intent": "greeting", "answerable": true}': "lacks field",
        '{"user": "Hi", "model": "Model: Yo", "intent": "greeting", "answerable": true}': "role marker",
        '{"user": "Hi", "model": "Yo", "intent": "greeting", "answerable": "yes"}': "non-boolean",
        "not json": "not valid JSON",
    }
    for line, msg in bad_cases.items():
        path.write_text(good + line + "\n")
        with pytest.raises(NeuroError, match=f"chat record 4 .*{msg}|chat record 4 {msg}"):
            read_chat_jsonl(path)


def test_intent_cannot_see_the_reply():
    model = tiny().eval()
    a = collate_chat([ChatExample("What is 2 + 3?", "2 + 3 = 5.", "math", True)], 8)
    b = collate_chat([ChatExample("What is 2 + 3?", "I do not know about anything at all.", "math", True)], 8)
    with torch.no_grad():
        ha, hb = model.forward_aux(a["tokens"])[1], model.forward_aux(b["tokens"])[1]
    pc = a["prompt_chunk"].item()
    torch.testing.assert_close(ha["intent"][0, pc], hb["intent"][0, pc], rtol=0, atol=0)
    torch.testing.assert_close(ha["answerable"][0, pc], hb["answerable"][0, pc], rtol=0, atol=0)
    assert not torch.equal(ha["intent"][0, -1], hb["intent"][0, -1])  # later chunks do see the reply


def test_loss_weights_applied_as_configured():
    batch = collate_chat(generate_chat(8, seed=1), 8)
    w = dict(w_stop=0.7, w_intent=1.3, w_answerable=0.05, w_contrastive=2.0)
    model = tiny(**w)
    loss, parts = model.compute_loss(batch)
    expected = (parts["token_loss"] + w["w_stop"] * parts["stop_loss"] + w["w_intent"] * parts["intent_loss"]
                + w["w_answerable"] * parts["answerable_loss"] + w["w_contrastive"] * parts["contrastive_loss"])
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    lm_loss, lm_parts = model.compute_loss({"tokens": batch["tokens"], "targets": batch["targets"]})
    assert set(lm_parts) == {"token_loss"}  # a plain LM batch trains the token loss alone


@pytest.mark.parametrize("over", [{}, {"use_hrm": False, "use_refiner": False}, {"decoder": "plan_only"}])
def test_step_equals_forward(over):
    model = tiny(**over).eval()
    x = torch.randint(0, 256, (2, 29))
    with torch.no_grad():
        full = model(x)
        state = model.init_state(2)
        outs = []
        logits, state = model.step(x[:, :11], state)
        outs.append(logits)
        for t in range(11, 29):
            logits, state = model.step(x[:, t:t + 1], state)
            outs.append(logits)
    torch.testing.assert_close(torch.cat(outs, 1), full, rtol=1e-4, atol=1e-4)


def test_refiner_rule_unanswerable_means_refusal():
    model = tiny()
    plan = torch.randn(3, 16)
    intent_logits = torch.randn(3, len(INTENTS))
    _, pi = model.refiner(plan, intent_logits, torch.tensor([-30.0, 30.0, 0.0]))
    refusal = INTENTS.index("refusal")
    assert pi[0].argmax().item() == refusal and pi[0, refusal] > 0.999         # unanswerable -> refusal
    torch.testing.assert_close(pi[1], intent_logits[1].softmax(-1), rtol=1e-4, atol=1e-6)  # answerable: unchanged
    torch.testing.assert_close(pi.sum(-1), torch.ones(3))


def _scripted(model, script: bytes):
    """Make greedy decoding emit `script` (then a newline) whatever the weights say."""
    real_step, prompt_len = model.step, {}

    def step(tokens, state):
        logits, state = real_step(tokens, state)
        prompt_len.setdefault("n", state.pos)
        i = state.pos - prompt_len["n"]
        logits = torch.full_like(logits, -1e9)
        logits[..., -1, script[i] if i < len(script) else ord("\n")] = 0.0
        return logits, state

    model.step = step
    return model


@pytest.mark.parametrize("use_refiner,script,expected", [(True, b"12 * 7 = 99.", "12 * 7 = 84."),
                                                         (False, b"12 * 7 = 99.", "12 * 7 = 99."),
                                                         (True, b"12 * 7 = 999.", "12 * 7 = 84")])
def test_calculator_rule_in_chat(use_refiner, script, expected):
    assert solve_arithmetic("What is 12 * 7?") == "84" and solve_arithmetic("Compute 3 - 10.") == "-7"
    assert solve_arithmetic("Hello!") is None
    model = tiny(use_refiner=use_refiner)
    with torch.no_grad():  # make the intent head say "math"
        model.intent_head.bias.fill_(-50.0)
        model.intent_head.bias[INTENTS.index("math")] = 50.0
    r = chat_reply(_scripted(model, script), "What is 12 * 7?")
    assert r["intent"] == "math" and r["reply"] == expected
    assert r["calculator"] == ("84" if use_refiner else None)


def test_chat_rejects_bad_turns():
    with pytest.raises(NeuroError, match="one non-empty line"):
        chat_reply(tiny(), "two\nlines")
