"""Shim (issue 28): moved to ``families.ner.decoding``; remove once export/ imports it there."""

from families.ner.decoding import *  # noqa: F403
