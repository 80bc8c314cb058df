"""The index: document records, the one owner of the chunks table, and the Chroma vectors."""
