"""Training data and fine-tuning: examples, dataset checks, generation, tokens, jobs, the LoRA trainer."""
