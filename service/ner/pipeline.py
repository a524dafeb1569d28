"""Shim (issue 28): moved to ``families.ner.runtime``; remove once export/ imports it there."""

from families.ner.runtime import *  # noqa: F403
