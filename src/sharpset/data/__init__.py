"""Shipped data: wrapper paraphrases (wrappers.yaml), the known-answer question set (questions.jsonl)."""
