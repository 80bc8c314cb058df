"""RAG + Fine-Tuning Studio: the st.navigation router. Run with `make run`."""

import streamlit as st

import app_state

st.set_page_config(page_title="RAG + Fine-Tuning Studio", page_icon=":material/hub:", layout="wide")

st.session_state["_routed"] = True  # pages check it: see app_state.settings()
settings = app_state.settings()
st.session_state["provider_status"] = app_state.sidebar(settings)

page = st.navigation(
    {
        "": [st.Page("pages/home.py", title="Home", icon=":material/home:", default=True)],
        "Data": [
            st.Page("pages/documents.py", title="Documents", icon=":material/description:"),
            st.Page("pages/training_data.py", title="Training data", icon=":material/table:"),
        ],
        "Models": [
            st.Page("pages/fine_tuning.py", title="Fine-tuning", icon=":material/model_training:"),
            st.Page("pages/chat.py", title="Chat", icon=":material/chat:"),
            st.Page("pages/compare.py", title="Compare", icon=":material/compare:"),
        ],
        "Setup": [st.Page("pages/settings.py", title="Settings", icon=":material/settings:")],
    }
)
wanted = st.session_state.pop("_wanted_page", None)  # set by app_state.settings(): see there
if wanted and wanted != page.url_path:
    st.switch_page(wanted, query_params=st.query_params.to_dict())
page.run()
