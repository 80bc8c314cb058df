"""The texts of an export: the Ollama Modelfile, the README with the serving commands, and the endpoint table.

Registering a served copy as an endpoint means writing ``[endpoints.<name>]`` into ``.streamlit/secrets.toml``;
the app never writes the secrets file, so it shows the table to paste instead (``endpoint_snippet``).
"""

from __future__ import annotations

from typing import Any

BASE_ID_FOR_OLLAMA = "smollm2:135m"  # Ollama's name of the same base, for an adapter-only export
PORTS = {"vllm": 8000, "ollama": 11434, "llamacpp": 8080}
SERVERS = {"vllm": "vLLM", "ollama": "Ollama", "llamacpp": "llama.cpp (llama-server)"}
# SmolLM2's chat template (ChatML), in Ollama's Go template language: Ollama does not run the Jinja template
# that ships in tokenizer_config.json, and a model without the right template answers garbage.
OLLAMA_TEMPLATE = ('{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}'
                   '{{- range .Messages }}{{- if ne .Role "system" }}<|im_start|>{{ .Role }}\n'
                   '{{ .Content }}<|im_end|>\n{{ end }}{{- end }}<|im_start|>assistant\n')


def served_name(slug: str, server: str) -> str:
    """The model name each server answers to with the README's commands (Ollama adds a tag)."""
    return f"{slug}:latest" if server == "ollama" else slug


def endpoint_snippet(slug: str, server: str) -> str:
    """The ``[endpoints.<server>]`` table that makes the served model pickable in Chat and Compare."""
    if server not in PORTS:
        raise ValueError(f"Unknown server {server!r} (one of {', '.join(PORTS)}).")
    start = {"vllm": "vllm serve ...", "ollama": f"ollama create {slug} -f Modelfile", "llamacpp": "llama-server ..."}
    return (f"# Once `{start[server]}` runs (README.md), paste this into .streamlit/secrets.toml to pick the\n"
            "# model in Chat and Compare: the app never writes your secrets file itself.\n"
            f"[endpoints.{server}]\nbase_url = \"http://localhost:{PORTS[server]}/v1\"\n"
            f"models = [\"{served_name(slug, server)}\"]\n")


def modelfile(slug: str, gguf: list[str], generation: dict[str, Any], merged: bool = True) -> str:
    """``ollama create <slug> -f Modelfile``: from the merged GGUF when one was made, else the merged safetensors
    folder (Ollama imports Llama-architecture safetensors itself). Greedy, as the app serves it."""
    source = "./gguf/model-f16.gguf" if "gguf/model-f16.gguf" in gguf else "./merged"
    if not merged:
        source = f"{BASE_ID_FOR_OLLAMA}\nADAPTER ./adapter"
    penalty = float(generation.get("repetition_penalty", 1.1))
    return (f"# {slug}: SmolLM2-135M-Instruct + a LoRA adapter tuned in RAG + Fine-Tuning Studio\n"
            f"FROM {source}\n"
            f'TEMPLATE """{OLLAMA_TEMPLATE}"""\n'
            'PARAMETER stop "<|im_end|>"\n'
            'PARAMETER stop "<|im_start|>"\n'
            "PARAMETER temperature 0\n"
            f"PARAMETER repeat_penalty {penalty:g}\n"
            "PARAMETER num_ctx 8192\n")



def readme(slug: str, rank: int, has_base: bool, has_merged: bool, gguf: list[str]) -> str:
    from rag_ft.training.export import BASE_MODEL_ID, BASE_WEIGHTS, vllm_rank

    base_path = "./base" if has_base else BASE_MODEL_ID
    lines = [
        f"# {slug}", "",
        f"A LoRA adapter (rank {rank}) on SmolLM2-135M-Instruct, exported by RAG + Fine-Tuning Studio.", "",
        "| folder | what |", "| --- | --- |",
        "| `adapter/` | the peft adapter: `adapter_config.json`, `adapter_model.safetensors`, tokenizer and chat "
        "template |",
    ]
    if has_merged:
        lines.append("| `merged/` | base + adapter merged, fp32 safetensors: loads with plain "
                     "`AutoModelForCausalLM.from_pretrained('merged')` |")
    if has_base:
        lines.append(f"| `base/` | the base the adapter was trained on ({BASE_WEIGHTS}) |")
    if gguf:
        lines.append(f"| `gguf/` | {', '.join(f'`{g[5:]}`' for g in gguf)} |")
    lines += [
        "| `Modelfile` | for `ollama create` |", "",
        f"The adapter's `base_model_name_or_path` is `{BASE_MODEL_ID}`; the weights it was trained on are the "
        "dequantised Q4_1 GGUF" + (" in `base/`: serve on those for the answers the app gives." if has_base
                                   else " (export with the base for exact answers)."), "",
        "Each server below answers OpenAI-style at `/v1`. To pick it in Chat and Compare, paste its table into "
        "`.streamlit/secrets.toml` (the app does not write that file itself).", "",
        "## vLLM", "", "```bash",
        f"vllm serve {base_path} --served-model-name smollm2-base --enable-lora \\",
        f"  --lora-modules {slug}=./adapter --max-lora-rank {vllm_rank(rank)} --port {PORTS['vllm']}",
    ]
    if has_merged:
        lines += ["# or the merged model, no LoRA machinery:",
                  f"vllm serve ./merged --served-model-name {slug} --port {PORTS['vllm']}"]
    lines += ["```", "", "```toml", endpoint_snippet(slug, "vllm").rstrip(), "```", "",
              "## Ollama", "", "```bash", f"ollama create {slug} -f Modelfile", f"ollama run {slug} \"Hello\"",
              "```", "", "```toml", endpoint_snippet(slug, "ollama").rstrip(), "```", "",
              "## llama.cpp", "",
              "Convert with the scripts of a llama.cpp checkout (`pip install -r requirements.txt` there), then serve:",
              "", "```bash"]
    if "gguf/model-f16.gguf" not in gguf and has_merged:
        lines.append("python convert_hf_to_gguf.py ./merged --outfile gguf/model-f16.gguf --outtype f16")
    if has_merged:
        lines.append(f"llama-server -m gguf/model-f16.gguf --port {PORTS['llamacpp']}")
    lines.append("# or the base with the adapter applied at load time:")
    if "gguf/base-f16.gguf" not in gguf:
        lines.append(f"python convert_hf_to_gguf.py {base_path} --outfile gguf/base-f16.gguf --outtype f16")
    if "gguf/adapter-f16.gguf" not in gguf:
        lines.append(f"python convert_lora_to_gguf.py ./adapter {'--base ./base' if has_base else '--base-model-id ' + base_path} --outfile gguf/adapter-f16.gguf"
                     " --outtype f16")
    lines += [f"llama-server -m gguf/base-f16.gguf --lora gguf/adapter-f16.gguf --port {PORTS['llamacpp']}",
              "```", "", "```toml", endpoint_snippet(slug, "llamacpp").rstrip(), "```", "",
              "llama-server serves whatever model it loaded under any name; the one above keeps the picker clear.",
              ""]
    return "\n".join(lines)
