"""Shims (issue 28): the classify family moved to ``families/classify``."""
