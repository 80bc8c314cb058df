import streamlit as st

st.title("Fine-tuning")
st.info("Not built yet. This page will: Launch fine-tuning jobs (local LoRA on this CPU, or OpenAI with a key) and watch status, events and the loss chart live.", icon=":material/construction:")
