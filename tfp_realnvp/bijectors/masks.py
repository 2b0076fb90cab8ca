"""The binary masks of Real NVP's couplings: checkerboard, half and random vector masks.

A mask `b` is 1 on the conditioning entries (passed unchanged, fed to the s/t network) and 0 on
the transformed ones. Channel masks (the first half of the channels conditions the second) are
not arrays: the coupling splits the channels instead (`MaskedAffineCoupling(mask_type='channel')`).

#### References
[1]: Laurent Dinh, Jascha Sohl-Dickstein, Samy Bengio. Density estimation using Real NVP.
     ICLR 2017, sec. 3.4 and figure 3. https://arxiv.org/abs/1605.08803
[2]: Francois Fleuret. Deep learning, lecture 10.3: Non-volume preserving networks.
     https://fleuret.org/dlc/ (random masks for vectors).
"""

import numpy as np

__all__ = ['checkerboard_mask', 'half_mask', 'vector_masks', 'VECTOR_MASK_PATTERNS']

VECTOR_MASK_PATTERNS = ('half', 'random')


def checkerboard_mask(height, width, parity=0):
  """`b[i, j] = 1` where `(i + j) % 2 == parity`, shape `(H, W, 1)`, float32."""
  i, j = np.meshgrid(np.arange(height), np.arange(width), indexing='ij')
  return ((i + j) % 2 == parity).astype(np.float32)[..., np.newaxis]


def half_mask(size, parity=0):
  """1-D mask with ones on the first `size // 2` entries (`parity=0`) or on the rest."""
  mask = (np.arange(size) < size // 2).astype(np.float32)
  return mask if parity == 0 else 1. - mask


def vector_masks(size, count, pattern='half', seed=0):
  """`count` masks of a vector flow, each followed by its complement.

  `'half'` alternates `half_mask(size, 0)` and its complement; `'random'` draws a random half
  of the entries (from `seed`) for every pair of couplings and alternates it with its
  complement, so each entry is transformed by one coupling of every pair.

  Raises:
    ValueError: for an unknown pattern.
  """
  if pattern not in VECTOR_MASK_PATTERNS:
    raise ValueError(f'vector_masks must be one of {VECTOR_MASK_PATTERNS}, got {pattern!r}.')
  rng = np.random.default_rng(seed)
  masks = []
  first = half_mask(size, 0)
  for k in range(count):
    if k % 2 == 0 and pattern == 'random':
      first = np.zeros(size, np.float32)
      first[rng.permutation(size)[:size // 2]] = 1.
    masks.append(first if k % 2 == 0 else 1. - first)
  return masks
