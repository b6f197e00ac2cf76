"""Evaluation (issue 12): shipped evaluation data (``evaluate/data``) and the speech-acts classifier."""
