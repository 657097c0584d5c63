"""The spam filter: tokenizer, count model with exact unlearning, and the facade the pipeline calls."""
