"""Shim (issue 28): moved to ``families.ner.tagging``; remove once export/ imports it there."""

from families.ner.tagging import *  # noqa: F403
