"""Shim (issue 28): moved to ``families.ner.crf``; remove once export/ imports it there."""

from families.ner.crf import *  # noqa: F403
