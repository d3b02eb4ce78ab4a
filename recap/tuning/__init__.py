"""Fine-tuning a tier's model: training examples from the team folder, the training loop, GGUF export."""
