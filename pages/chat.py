import streamlit as st

st.title("Chat")
st.info("Not built yet. This page will: Ask questions of the combined model (a fine-tuned model plus retrieved passages), with streaming answers and citations naming document, page and passage.", icon=":material/construction:")
