import streamlit as st

st.title("Training data")
st.info("Not built yet. This page will: Build and review fine-tuning examples (OpenAI chat JSONL) in an editable table: import, export, validate, count tokens, estimate cost, split train/validation.", icon=":material/construction:")
