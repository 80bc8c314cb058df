"""Settings: the named OpenAI-compatible endpoints, their models and their health, and how to add one.

Endpoint names, URLs and models come from the configuration, and model lists and error messages from servers:
all of it goes through ``rag_ft.untrusted.inert`` before Markdown renders it. A key is never shown, only the name
of the secret holding it and whether it is set.
"""

import streamlit as st

import app_state
from rag_ft.models.endpoints import ENV_KEY, IMPLICIT, all_endpoints, health, shown_url
from rag_ft.untrusted import inert, inert_line

EXAMPLE = """# .streamlit/secrets.toml (top-level keys first, then the tables)
TOGETHER_API_KEY = "..."            # the key itself: a top-level secret (or an environment variable)

[endpoints.ollama]                  # Ollama, vLLM, LM Studio, llama.cpp's llama-server...
base_url = "http://localhost:11434/v1"
models = ["llama3.2", "qwen2.5:7b"] # leave out to use every model the server lists

[endpoints.together]
base_url = "https://api.together.xyz/v1"
key_env = "TOGETHER_API_KEY"        # the NAME of the secret holding the key, never the key
models = ["meta-llama/Llama-3.3-70B-Instruct-Turbo"]
"""

KEY_TEXT = {"set": "key {env}: set", "missing": "key {env}: **not set**", "none": "no key needed"}

s = app_state.settings()
st.title("Settings")
st.caption("OpenAI-compatible endpoints: every model of every endpoint is pickable in Chat and Compare as "
           "“model · endpoint”. Keys stay in secrets or the environment; nothing here writes them anywhere.")

for problem in s.endpoint_problems:
    st.warning(inert(problem), icon=":material/warning:")

endpoints = all_endpoints(s)
checks: dict = st.session_state.setdefault("endpoint_health", {})
if not endpoints:
    st.info("No endpoint is configured: answers come from the local models. Add one as shown below.")
if endpoints and st.button("Check all", icon=":material/network_check:", key="check_all"):
    with st.spinner("Asking each endpoint for its models..."):
        checks.update({e.name: health(e) for e in endpoints})

for e in endpoints:
    with st.container(border=True):
        title, button = st.columns([4, 1])
        origin = " (OPENAI_API_KEY / OPENAI_BASE_URL)" if e.name == IMPLICIT and e not in s.endpoints else ""
        title.markdown(f"**{inert(e.name)}**{inert(origin)}  \n{inert(shown_url(e))}")
        if button.button("Check", key=f"check_{e.name}", icon=":material/network_check:"):
            with st.spinner(f"Asking {e.name} for its models..."):
                checks[e.name] = health(e)
        key = KEY_TEXT[e.key_state].format(env=inert(e.key_env))
        models = ", ".join(inert(m) for m in e.models) if e.models else "every chat model the server lists"
        st.markdown(f"{key}  \nModels: {models}")
        if e.headers:
            st.caption("Extra headers: " + inert_line(", ".join(name for name, _ in e.headers)))  # values may be secret
        result = checks.get(e.name)
        if result is None:
            continue
        if result.ok:
            listed = ", ".join(inert(m) for m in result.models[:30]) + (" ..." if len(result.models) > 30 else "")
            st.success(f"Answered in {result.seconds:.2f} s with {len(result.models)} models: {listed}",
                       icon=":material/check_circle:")
            missing = [m for m in e.models if m not in result.models]
            if missing:
                st.warning("Configured but not listed by the server: " + ", ".join(inert(m) for m in missing))
        else:
            st.error(inert(result.problem), icon=":material/error:")

with st.expander("Add an endpoint", icon=":material/add:", expanded=not endpoints):
    st.markdown("Add a table to `.streamlit/secrets.toml` (or paste it into Community Cloud's *Secrets* box) and "
                f"reload the page. The command line and CI may set `{ENV_KEY}` to the same tables as JSON. "
                "Field names from simonw/llm's `extra-openai-models.yaml` (`api_base`, `api_key_name`) work too.")
    st.code(EXAMPLE, language="toml")
