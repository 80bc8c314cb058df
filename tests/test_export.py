"""Export for vLLM / Ollama / llama.cpp: the committed grounding adapter exported, reloaded with plain transformers."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ft_fixtures import style_records

from rag_ft.training import export, serving
from rag_ft.training.jobs import JobStore

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
GROUNDING = ROOT / "models" / "grounding-adapter"
PROMPTS = [
    [{"role": "system", "content": "Answer from the context and cite the source."},
     {"role": "user", "content": "Context: [handbook.pdf] Staff get 25 days of leave.\nQuestion: how many days?"}],
    [{"role": "user", "content": "What is the capital of France?"}],
]


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """One full export (base + merged) for the module: merging and saving ~1 GB takes ~40 s on 2 cores."""
    fake = tmp_path_factory.mktemp("llama.cpp")
    # a stand-in for llama.cpp's converters: records its arguments and writes the --outfile it is given
    stub = ("import sys, json, pathlib\nout = sys.argv[sys.argv.index('--outfile') + 1]\n"
            "pathlib.Path(out).write_bytes(b'GGUF' + json.dumps(sys.argv[1:]).encode())\n")
    for script in ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py"):
        (fake / script).write_text(stub)
    out = tmp_path_factory.mktemp("export") / "grounding"
    os.environ["LLAMA_CPP_DIR"] = str(fake)
    try:
        result = export.export_adapter(GROUNDING, out, name="Grounding Adapter")
    finally:
        os.environ.pop("LLAMA_CPP_DIR")
    assert result.name == "grounding-adapter" and result.rank == 8
    assert result.gguf == ["gguf/adapter-f16.gguf", "gguf/base-f16.gguf", "gguf/model-f16.gguf"]
    return out


def test_adapter_folder_is_portable(exported):
    config = json.loads((exported / "adapter" / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == export.BASE_MODEL_ID and config["r"] == 8
    assert not config["modules_to_save"] and config["inference_mode"] is True
    for f in ("adapter_model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation.json"):
        assert (exported / "adapter" / f).is_file(), f
    tok_config = json.loads((exported / "adapter" / "tokenizer_config.json").read_text())
    assert "<|im_start|>" in tok_config["chat_template"]  # the template servers apply
    for folder in ("merged", "base"):
        assert (exported / folder / "model.safetensors").is_file()
        assert json.loads((exported / folder / "config.json").read_text())["architectures"] == ["LlamaForCausalLM"]
    listed = json.loads((exported / "export.json").read_text())["files"]
    assert "merged/model.safetensors" in listed and "Modelfile" in listed and "README.md" in listed


def test_converter_ran_on_the_right_folders(exported):
    args = json.loads((exported / "gguf" / "adapter-f16.gguf").read_bytes()[4:])
    assert args[0].endswith("adapter") and args[args.index("--base") + 1].endswith("base")
    assert json.loads((exported / "gguf" / "model-f16.gguf").read_bytes()[4:])[0].endswith("merged")
    assert "FROM ./gguf/model-f16.gguf" in (exported / "Modelfile").read_text()


def test_merged_model_answers_exactly_as_base_plus_adapter(exported):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rag_ft.training.lora import load_base

    tok = AutoTokenizer.from_pretrained(exported / "merged")  # the exported tokenizer, chat template included
    merged = AutoModelForCausalLM.from_pretrained(exported / "merged", dtype=torch.float32).eval()
    tuned = PeftModel.from_pretrained(load_base(keep_copy=True), str(GROUNDING)).eval()
    for messages in PROMPTS:
        inputs = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        with torch.no_grad():
            a = merged.generate(**inputs, max_new_tokens=10, do_sample=False, pad_token_id=tok.eos_token_id)
            b = tuned.generate(**inputs, max_new_tokens=10, do_sample=False, pad_token_id=tok.eos_token_id)
        assert a.tolist() == b.tolist()
        assert a.shape[1] > inputs["input_ids"].shape[1]


def test_modelfile_and_readme_give_the_serving_commands(exported):
    modelfile = (exported / "Modelfile").read_text()
    assert 'PARAMETER stop "<|im_end|>"' in modelfile and "<|im_start|>{{ .Role }}" in modelfile
    assert "PARAMETER repeat_penalty 1\n" in modelfile  # the adapter's own generation.json
    readme = (exported / "README.md").read_text()
    for command in ("vllm serve ./base --served-model-name smollm2-base --enable-lora",
                    "--lora-modules grounding-adapter=./adapter --max-lora-rank 8",
                    "ollama create grounding-adapter -f Modelfile",
                    "llama-server -m gguf/base-f16.gguf --lora gguf/adapter-f16.gguf",
                    "llama-server -m gguf/model-f16.gguf",
                    '[endpoints.ollama]\nbase_url = "http://localhost:11434/v1"\nmodels = ["grounding-adapter:latest"]'):
        assert command in readme, command


def test_endpoint_snippet_parses_as_an_endpoint():
    import tomllib

    from rag_ft.models.endpoints import parse_endpoints

    for server in serving.PORTS:
        endpoints, problems = parse_endpoints(tomllib.loads(serving.endpoint_snippet("my-model", server)), {})
        assert not problems and endpoints[0].name == server and endpoints[0].models[0].startswith("my-model")


def test_refusals_say_why(tmp_path, settings):
    with pytest.raises(export.ExportError, match="not a peft adapter"):
        export.export_adapter(tmp_path, tmp_path / "out")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    with pytest.raises(export.ExportError, match="not empty"):
        export.export_adapter(GROUNDING, tmp_path / "busy")
    bad = tmp_path / "full"
    bad.mkdir()
    config = json.loads((GROUNDING / "adapter_config.json").read_text())
    (bad / "adapter_config.json").write_text(json.dumps({**config, "modules_to_save": ["lm_head"]}))
    (bad / "adapter_model.safetensors").write_bytes((GROUNDING / "adapter_model.safetensors").read_bytes())
    with pytest.raises(export.ExportError, match="modules_to_save"):
        export.export_adapter(bad, tmp_path / "out2")
    store = JobStore(settings.db_path, settings.data_dir)
    job = store.create_job("local", "SmolLM2-135M-Instruct", style_records(2), status="running")
    with pytest.raises(export.ExportError, match="is running"):
        export.export_job(store, job.id, tmp_path / "out3")
    with pytest.raises(export.ExportError, match="No job"):
        export.export_job(store, "ftjob-nope", tmp_path / "out3")


def test_cli_exports_a_succeeded_job(tmp_path, settings):
    """A job whose adapter is the grounding one, exported by `python -m rag_ft export JOB DIR` (adapter only)."""
    store = JobStore(settings.db_path, settings.data_dir)
    job = store.create_job("local", "SmolLM2-135M-Instruct", style_records(2))
    store.register_model(job.id, "SmolLM2-135M-Instruct-style-abc123", adapter_dir=str(GROUNDING))
    store.set_status(job.id, "succeeded")
    store.close()
    env = {**os.environ, "RAG_FT_DATA_DIR": str(settings.data_dir)}
    out = tmp_path / "exp"
    done = subprocess.run([sys.executable, "-m", "rag_ft", "export", job.id, str(out), "--no-merge", "--json"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["name"] == "smollm2-135m-instruct-style-abc123" and "adapter/adapter_model.safetensors" in result["files"]
    assert "FROM smollm2:135m\nADAPTER ./adapter" in (out / "Modelfile").read_text()
    assert not (out / "merged").exists()
    again = subprocess.run([sys.executable, "-m", "rag_ft", "export", job.id, str(out)], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 1 and "not empty" in again.stderr


def test_page_zip_holds_the_export_under_the_model_name(settings):
    import io
    import zipfile

    store = JobStore(settings.db_path, settings.data_dir)
    job = store.create_job("local", "SmolLM2-135M-Instruct", style_records(2))
    store.register_model(job.id, "tuned-x", adapter_dir=str(GROUNDING))
    store.set_status(job.id, "succeeded")
    names = zipfile.ZipFile(io.BytesIO(export.export_zip(store, job.id, merge=False))).namelist()
    assert {"tuned-x/adapter/adapter_config.json", "tuned-x/Modelfile", "tuned-x/README.md"} <= set(names)
