"""Fine-tuning backends: one module per kind of backend."""
