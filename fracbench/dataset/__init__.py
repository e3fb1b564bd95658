"""The built Hugging Face dataset: build, locate, load, ground truth, publish."""
