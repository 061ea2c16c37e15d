"""Scores to token ids (tokenizer.py), per-id tables (tables.py), and one token-state machine
(state.py) read by the grammar mask (grammar.py) and the note reader."""
