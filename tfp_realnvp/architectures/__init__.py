"""The two architectures `RealNVPChain` builds: the multi-scale image flow and the vector flow.

Each builder returns the steps of a flow in the paper's order (data first), so the structure
of the paper is visible in one short function each.
"""

from tfp_realnvp.architectures.image import build_image_flow
from tfp_realnvp.architectures.image import check_image_shape
from tfp_realnvp.architectures.image import walk_steps
from tfp_realnvp.architectures.vector import build_vector_flow

__all__ = ['build_image_flow', 'build_vector_flow', 'check_image_shape', 'walk_steps']
