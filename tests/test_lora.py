"""The LoRA trainer in-process: assistant-only loss, a few real steps, an adapter the chat model serves."""

import pytest
from ft_fixtures import style_records
from langchain_core.messages import HumanMessage, SystemMessage

from rag_ft.training import lora

pytestmark = pytest.mark.slow


def test_loss_mask_covers_exactly_the_assistant_answer():
    tok = lora.load_tokenizer()
    rec = style_records(1)[0]
    ex = lora.tokenize(rec, tok)
    learned = tok.decode([t for t, lab in zip(ex.input_ids, ex.labels, strict=True) if lab != -100])
    assert learned == rec["messages"][2]["content"] + "<|im_end|>\n"
    two_turns = {"messages": [*rec["messages"], {"role": "user", "content": "And rule 9?"},
                              {"role": "assistant", "content": "Rule 9 is not in the context."}]}
    ex = lora.tokenize(two_turns, tok)
    learned = tok.decode([t for t, lab in zip(ex.input_ids, ex.labels, strict=True) if lab != -100])
    assert "Section 0.1]" in learned and "Rule 9 is not in the context." in learned and "Question" not in learned


def test_bad_record_is_named():
    with pytest.raises(lora.TrainingError, match="training data example 2"):
        lora.prepare([style_records(1)[0], {"messages": [{"role": "user", "content": "x"}]}], lora.load_tokenizer())


def test_train_few_steps_then_chat_with_adapter(tmp_path, local_chat):
    steps, stops = [], []
    result = lora.train(style_records(6), tmp_path / "adapter", validation=style_records(2), epochs=2, batch_size=2,
                        max_steps=4, on_step=steps.append, should_stop=lambda: stops.append(1) and False,
                        keep_base_copy=True)
    assert result.adapter_dir and not result.stopped and result.steps == 4 and result.trainable_params == 921_600
    assert [s.step for s in steps] == [1, 2, 3, 4] and steps[-1].eta_s == 0
    assert steps[2].end_of_epoch and steps[2].valid_loss is not None and steps[2].checkpoint_dir
    assert steps[-1].train_loss < steps[0].train_loss  # it learns
    assert len(stops) >= 4  # polled before every step
    assert (tmp_path / "adapter" / "adapter_model.safetensors").exists()
    from rag_ft.models.local_chat import LocalChatModel

    tuned = LocalChatModel(adapter_dir=result.adapter_dir, max_new_tokens=24)
    answer = tuned.invoke([SystemMessage("Answer from the context and cite the source."),
                           HumanMessage("Context: Rule 7 says staff get 9 days.\nQuestion: what does rule 7 say?")])
    assert answer.content.strip()


def test_should_stop_saves_nothing(tmp_path):
    calls = []

    def stop_after_two() -> bool:
        calls.append(1)
        return len(calls) > 3  # one check before loading, then before each step

    result = lora.train(style_records(4), tmp_path / "a", epochs=5, batch_size=2, should_stop=stop_after_two,
                        keep_base_copy=True)
    assert result.stopped and result.steps == 2 and result.adapter_dir is None
    assert not (tmp_path / "a" / "adapter_model.safetensors").exists()


def test_answer_loss_is_the_models_own_loss(monkeypatch):
    """The trainer computes logits only at answer positions; the loss must equal the full forward's."""
    import torch

    monkeypatch.setenv("RAG_FT_LOCAL_DTYPE", "float32")
    tok = lora.load_tokenizer()
    examples = lora.prepare(style_records(3), tok)
    inputs = lora._collate(examples, tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)
    model = lora.load_base(keep_copy=True).eval()
    with torch.no_grad():
        full = model(**inputs).loss.item()
        ours = lora.answer_loss(model, inputs).item()
    assert ours == pytest.approx(full, rel=1e-4)


def test_batches_cover_every_example_once_and_group_lengths():
    import random

    examples = [lora.Example([1] * n, [-100] * n) for n in random.Random(1).sample(range(10, 400), 200)]
    batches = lora._batches(examples, 4, random.Random(0))
    assert sorted(id(e) for b in batches for e in b) == sorted(id(e) for e in examples)
    padded = sum(max(len(e.input_ids) for e in b) * len(b) for b in batches)
    ungrouped = [examples[i:i + 4] for i in range(0, 200, 4)]
    assert padded < 0.8 * sum(max(len(e.input_ids) for e in b) * len(b) for b in ungrouped)
    assert lora._batches(examples, 4, random.Random(0)) == batches  # seeded: the same every run


def test_training_can_continue_a_saved_adapter(tmp_path):
    """init_adapter starts from a saved adapter (the grounding adapter's second stage): on the same first
    batch its loss is lower than a fresh adapter's."""
    records = style_records(4)
    first = lora.train(records, tmp_path / "a", epochs=2, batch_size=2, checkpoints=False, keep_base_copy=True)
    continued, fresh = [], []
    lora.train(records, tmp_path / "b", epochs=1, batch_size=2, checkpoints=False, keep_base_copy=True,
               init_adapter=first.adapter_dir, on_step=continued.append)
    lora.train(records, tmp_path / "c", epochs=1, batch_size=2, checkpoints=False, keep_base_copy=True,
               on_step=fresh.append)
    assert continued[0].train_loss < fresh[0].train_loss
    assert (tmp_path / "b" / "adapter_model.safetensors").exists()
