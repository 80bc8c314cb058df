"""Job bundles: `python -m rag_ft train --config job.json` trains elsewhere; import-adapter brings the adapter back."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ft_fixtures import style_records

from rag_ft.training import bundle
from rag_ft.training.export import BASE_MODEL_ID
from rag_ft.training.jobs import JobStore

ROOT = Path(__file__).resolve().parent.parent
GROUNDING = ROOT / "models" / "grounding-adapter"


def cli(*args: str, data_dir: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAG_FT_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "rag_ft", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


def adapter_copy(tmp_path: Path, **config_changes) -> Path:
    folder = tmp_path / "copy"
    shutil.copytree(GROUNDING, folder)
    config = json.loads((folder / "adapter_config.json").read_text())
    (folder / "adapter_config.json").write_text(json.dumps({**config, **config_changes}))
    return folder


@pytest.mark.slow
def test_bundle_trains_in_a_subprocess_and_imports_as_a_tuned_model(tmp_path, settings):
    config = bundle.make_bundle(tmp_path / "bundle", style_records(4), style_records(1),
                                {"epochs": 1, "batch_size": 2, "max_steps": 2, "rank": 4, "alpha": 8}, "handbook")
    assert json.loads(config.read_text())["hyperparameters"]["rank"] == 4
    assert "accelerate launch -m rag_ft train --config job.json" in (config.parent / "README.md").read_text()
    done = cli("train", "--config", "job.json", "--out", "adapter", "--json", data_dir=settings.data_dir,
               cwd=config.parent)
    assert done.returncode == 0, done.stderr
    adapter = config.parent / "adapter"
    assert json.loads(done.stdout)["steps"] == 2
    written = json.loads((adapter / "adapter_config.json").read_text())
    assert written["base_model_name_or_path"] == BASE_MODEL_ID and written["r"] == 4
    training = json.loads((adapter / "training.json").read_text())
    assert training["steps"] == 2 and training["suffix"] == "handbook" and training["n_validation"] == 1

    store = JobStore(settings.db_path, settings.data_dir)
    tuned = bundle.import_adapter(store, adapter)
    job = store.get(tuned.job_id)
    assert job.status == "succeeded" and job.hyperparameters["rank"] == 4 and "handbook" in tuned.name
    assert Path(tuned.adapter_dir).is_relative_to(settings.data_dir)  # a copy: the source may go away
    store.close()
    shutil.rmtree(adapter)
    from rag_ft.models.catalogue import available_models

    labels = {c.label: c for c in available_models(settings)}
    assert labels[f"{tuned.name} (LoRA)"].adapter_dir == tuned.adapter_dir


def test_committed_adapter_passes_the_checks():
    info = bundle.check_adapter(GROUNDING)
    assert (info.rank, info.alpha) == (8, 16) and "SmolLM2-135M" in info.base


@pytest.mark.parametrize(("changes", "remove", "message"), [
    ({"base_model_name_or_path": "meta-llama/Llama-3.2-1B"}, None, "trained on 'meta-llama/Llama-3.2-1B', not"),
    ({}, "adapter_model.safetensors", "adapter_model.safetensors missing"),
    ({"r": 16}, None, r"expected \[16, 576\] for a rank 16 adapter"),
    ({"peft_type": "IA3"}, None, "IA3 adapter"),
])
def test_a_wrong_adapter_is_refused_with_the_reason(tmp_path, changes, remove, message):
    folder = adapter_copy(tmp_path, **changes)
    if remove:
        (folder / remove).unlink()
    with pytest.raises(bundle.BundleError, match=message):
        bundle.check_adapter(folder)


def test_cli_import_of_a_wrong_base_fails_clearly(tmp_path, settings):
    folder = adapter_copy(tmp_path, base_model_name_or_path="Qwen/Qwen2.5-0.5B-Instruct")
    done = cli("import-adapter", str(folder), data_dir=settings.data_dir, cwd=tmp_path)
    assert done.returncode == 1
    assert "error: This adapter was trained on 'Qwen/Qwen2.5-0.5B-Instruct'" in done.stderr
    store = JobStore(settings.db_path, settings.data_dir)
    assert store.list() == [] and store.tuned_models() == []  # nothing half-registered
    store.close()


@pytest.mark.slow
def test_cli_imports_an_adapter(tmp_path, settings):
    done = cli("import-adapter", str(GROUNDING), "--name", "grounding-copy", "--json", data_dir=settings.data_dir,
               cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["name"] == "grounding-copy"


def test_job_file_problems_are_named(tmp_path, settings):
    config = bundle.make_bundle(tmp_path / "b", style_records(2))
    assert bundle.load_config(config).hyperparameters["epochs"] == 3
    with pytest.raises(bundle.BundleError, match="already holds a job.json"):
        bundle.make_bundle(tmp_path / "b", style_records(2))
    (config.parent / "train.jsonl").write_text("{}\n")
    with pytest.raises(bundle.BundleError, match="changed since the bundle was made"):
        bundle.load_config(config)
    raw = json.loads(config.read_text())
    config.write_text(json.dumps({**raw, "base_model": "gpt-4o-mini"}))
    with pytest.raises(bundle.BundleError, match="trains 'gpt-4o-mini'"):
        bundle.load_config(config)
    config.write_text(json.dumps({**raw, "hyperparameters": {"epochs": "three"}}))
    with pytest.raises(bundle.BundleError, match="epochs must be a non-negative number"):
        bundle.load_config(config)
    done = cli("train", "--config", str(tmp_path / "nope.json"), "--out", "a", data_dir=settings.data_dir,
               cwd=tmp_path)
    assert done.returncode == 1 and "nope.json: no such file" in done.stderr


def test_bundle_from_a_job_keeps_its_data_and_hyperparameters(tmp_path, settings):
    store = JobStore(settings.db_path, settings.data_dir)
    job = store.create_job("openai", "gpt-4o-mini", style_records(3), style_records(1),
                           {"n_epochs": 2, "batch_size": 1, "learning_rate_multiplier": "auto"}, "s")
    config = bundle.bundle_from_job(store, job.id, tmp_path / "b")
    store.close()
    cfg = bundle.load_config(config)
    assert cfg.hyperparameters["epochs"] == 2 and cfg.hyperparameters["batch_size"] == 1
    assert cfg.source_job == job.id and cfg.validation_file is not None
    assert (config.parent / "train.jsonl").read_bytes() == Path(job.train_file).read_bytes()
