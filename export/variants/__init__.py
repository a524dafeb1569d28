"""Graph variants chosen at export: transformer fusions (``--optimize``), dynamic INT8
(``--quantize int8``), and the accuracy gate a quantized graph must pass against the fp32 graph.
"""

from export.variants.request import VariantRequest

__all__ = ["VariantRequest"]
