import streamlit as st

st.title("Documents")
st.info("Not built yet. This page will: Upload files (PDF, DOCX, PPTX, HTML, Markdown, text, CSV, e-mail...), index them into Chroma, re-index changed files, delete documents, and search the passages with their page and section.", icon=":material/construction:")
