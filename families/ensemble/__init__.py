"""The ensemble family: a bundle that combines the per-class probabilities of other loaded
multi-label classifier bundles (docs/ensemble.md)."""
