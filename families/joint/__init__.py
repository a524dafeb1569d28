"""The joint family: one encoder, N sequence heads and one token head, one forward pass.

Serving half: :mod:`families.joint.spec`, :mod:`families.joint.runtime` (no torch).
Export half: :mod:`families.joint.export`, :mod:`families.joint.model`,
:mod:`families.joint.parity`.
"""
