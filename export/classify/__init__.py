"""Sequence classifiers on any encoder (multi-label, single-label), Longformer via its blocked form."""
