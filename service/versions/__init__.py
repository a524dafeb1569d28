"""Several versions of one model side by side: states, traffic policy, shadow traffic, the memory
guard and the bundles-directory watch (docs/operating/versions.md)."""
