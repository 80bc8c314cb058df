"""The LoRA trainer in-process: assistant-only loss, a few real steps, an adapter the chat model serves."""

import pytest
from ft_fixtures import style_records
from langchain_core.messages import HumanMessage, SystemMessage

from rag_ft import lora

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
    from rag_ft.local_chat import LocalChatModel

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
