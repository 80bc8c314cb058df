import streamlit as st

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

# ---- decision helper: the seed article's framework as a checklist -------------------------------
QUESTIONS = {  # key: (question, what a "yes" points to)
    "changes": ("Does your data change often (new versions, daily updates)?", "rag"),
    "cite": ("Do answers need to cite their sources (document and page)?", "rag"),
    "format": ("Do answers need a fixed output format, tone or house style?", "ft"),
    "long_prompts": ("Are your prompts long with instructions and examples you repeat every time?", "ft"),
    "budget": ("Do you have a training budget: a few hundred good examples, and time or money to train?", "budget"),
    "both": ("Do you need your style AND your facts in the same answers?", "both"),
}
PAGES = {
    "documents": ("pages/documents.py", "Documents: index your files", ":material/description:"),
    "chat": ("pages/chat.py", "Chat with RAG on", ":material/chat:"),
    "training": ("pages/training_data.py", "Training data: build examples", ":material/table:"),
    "fine_tuning": ("pages/fine_tuning.py", "Fine-tuning: train a model", ":material/model_training:"),
    "compare": ("pages/compare.py", "Compare: measure it on your questions", ":material/compare:"),
}


def recommend(answers: dict[str, bool]) -> tuple[str, str, list[str]]:
    """(verdict, why, page keys) for the ticked boxes."""
    rag = answers.get("changes") or answers.get("cite")
    ft = answers.get("format") or answers.get("long_prompts")
    budget = answers.get("budget")
    if answers.get("both") or (rag and ft):
        if budget:
            return ("Both: RAG + a fine-tuned model",
                    "Retrieval brings the facts and the page to cite; fine-tuning brings the format and shortens "
                    "the prompt. Tune on examples that include retrieved passages, then compare all four setups.",
                    ["documents", "training", "fine_tuning", "compare"])
        return ("RAG now, fine-tuning later",
                "Without a training budget, get the facts right with retrieval and put the format in the prompt; "
                "collect good answers from the chat as training examples for later.",
                ["documents", "chat", "training", "compare"])
    if rag:
        return ("RAG (retrieval)",
                "Your facts change or must be cited: retrieval reads the current documents at question time, "
                "nothing to retrain, and every answer can point to its page.",
                ["documents", "chat", "compare"])
    if ft and budget:
        return ("Fine-tuning",
                "A stable behaviour (format, tone) that you now repeat in every prompt is what fine-tuning "
                "learns; it does not keep facts up to date.",
                ["training", "fine_tuning", "compare"])
    if ft:
        return ("Prompting first",
                "Without a training budget, write the format into the prompt and a few examples; start "
                "collecting examples so a tune becomes cheap later.",
                ["training", "chat"])
    return ("The base model may be enough",
            "Nothing here calls for retrieval or training: try the base model, and measure before adding either.",
            ["chat", "compare"])


st.subheader("Which do you need: RAG, fine-tuning, or both?")
with st.container(border=True):
    answers = {key: st.checkbox(question, key=f"decide_{key}") for key, (question, _) in QUESTIONS.items()}
    if any(answers.values()):
        verdict, why, pages = recommend(answers)
        st.markdown(f"**Suggested: {verdict}.** {why}")
        cols = st.columns(len(pages))
        for col, key in zip(cols, pages, strict=True):
            path, label, icon = PAGES[key]
            col.page_link(path, label=label, icon=icon)
    else:
        st.caption("Tick what applies to your project; the suggestion and the pages to use appear here.")
