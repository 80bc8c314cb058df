import streamlit as st

from rag_ft.advice import QUESTIONS, recommend

st.title("RAG + Fine-Tuning Studio")
st.markdown(
    """
Put **your documents** and **your style** into a language model, and see for yourself what each brings.

- **Retrieval (RAG)** gives the model *facts*: your documents are split into passages, and the passages
  closest to each question are put into the prompt, so answers can cite the page they came from.
  Update a document and the next answer uses the new text; nothing is retrained.
- **Fine-tuning** teaches the model *behaviour*: tone, format, the way it cites. It learns from examples of
  good answers, and it does not keep facts up to date.
- **Both**: a tuned model that answers in your style, from passages retrieved from your documents.

**How to start**
1. *Documents*: upload files (or load the sample documents) and search them.
2. *Training data*: build and review examples of good answers, then export or fine-tune.
3. *Fine-tuning*: train a local LoRA adapter on this machine (or an OpenAI job, with a key).
4. *Chat* with the combined model, and *Compare* base, RAG, fine-tune and both on the same questions.
"""
)
st.caption("Runs offline by default on small local models; an OpenAI key switches to OpenAI models.")

# ---- decision helper: the seed article's framework as a checklist (rules: rag_ft.advice) ----------------
PAGES = {
    "documents": ("pages/documents.py", "Documents: index your files", ":material/description:"),
    "chat": ("pages/chat.py", "Chat with RAG on", ":material/chat:"),
    "training": ("pages/training_data.py", "Training data: build examples", ":material/table:"),
    "fine_tuning": ("pages/fine_tuning.py", "Fine-tuning: train a model", ":material/model_training:"),
    "compare": ("pages/compare.py", "Compare: measure it on your questions", ":material/compare:"),
}

st.subheader("Which do you need: RAG, fine-tuning, or both?")
with st.container(border=True):
    answers = {key: st.checkbox(question, key=f"decide_{key}") for key, (question, _) in QUESTIONS.items()}
    if any(answers.values()):
        advice = recommend(answers)
        st.markdown(f"**Suggested: {advice.verdict}.** {advice.why}")
        for col, key in zip(st.columns(len(advice.pages)), advice.pages, strict=True):
            path, label, icon = PAGES[key]
            col.page_link(path, label=label, icon=icon)
    else:
        st.caption("Tick what applies to your project; the suggestion and the pages to use appear here.")
