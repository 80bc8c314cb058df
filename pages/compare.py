import streamlit as st

st.title("Compare")
st.info("Not built yet. This page will: Run the same questions through base, RAG only, fine-tune only and both, side by side, with measured quality, speed and cost.", icon=":material/construction:")
