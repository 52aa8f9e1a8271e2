"""Timestamps of a result: exact chunk spans, estimated or CTC-aligned words, original-text offsets."""
