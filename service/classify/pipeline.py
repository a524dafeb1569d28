"""Shim (issue 28): moved to ``families.classify.runtime``; remove once export/ imports it
there."""

from families.classify.runtime import *  # noqa: F403
