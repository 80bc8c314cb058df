"""Answering: the prompt, the LCEL answer chain, and citation checking."""
