"""Sequence classifiers on any encoder (multi- or single-label); Longformer in blocked form."""
