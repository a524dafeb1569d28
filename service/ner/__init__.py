"""Shims (issue 28): the NER family moved to ``families/ner``."""
