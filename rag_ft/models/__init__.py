"""Models: providers, the model catalogue, local chat and embedding models, the grounding adapter."""
