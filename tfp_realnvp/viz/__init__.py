"""Pictures of Real NVP flows, and the latent-space numbers behind them.

Modules: `latent` (encode, decode, interpolation and the manifold grid: numbers only),
`density` (a 2-D density on a grid) and `figures` (matplotlib figures: sample grids,
temperature sweeps, interpolations, the paper's manifold, class grids, 2-D densities, bits/dim
curves). Latents at a temperature are drawn by `tfp_realnvp.latents.sample_latents`, exported
here as `viz.sample_latents`. Every function that shows samples as images clips them to
`[0, 1]` and says so.

#### Examples

```python
import tensorflow_probability as tfp
from tfp_realnvp import viz
tfb = tfp.bijectors

flow = tfb.Chain([tfb.Sigmoid(), tfb.Scale(0.5)])     # any latent -> pixels bijector
viz.sample_grid(flow, (8, 8, 1), num_samples=16, temperature=0.7, path='samples.png')
viz.temperature_sweep(flow, (8, 8, 1), temperatures=(0., 0.5, 1.), path='temps.png')
```
"""

from tfp_realnvp.latents import sample_latents
from tfp_realnvp.viz.density import density_grid
from tfp_realnvp.viz.figures import bits_per_dim_curves
from tfp_realnvp.viz.figures import class_grid
from tfp_realnvp.viz.figures import density_heatmap
from tfp_realnvp.viz.figures import image_grid
from tfp_realnvp.viz.figures import interpolate
from tfp_realnvp.viz.figures import manifold
from tfp_realnvp.viz.figures import sample_grid
from tfp_realnvp.viz.figures import temperature_sweep
from tfp_realnvp.viz.figures import tile_images
from tfp_realnvp.viz.figures import toy_figure
from tfp_realnvp.viz.latent import decode
from tfp_realnvp.viz.latent import encode
from tfp_realnvp.viz.latent import interpolation_angles
from tfp_realnvp.viz.latent import latent_interpolation
from tfp_realnvp.viz.latent import latent_manifold

__all__ = [
    'bits_per_dim_curves',
    'class_grid',
    'decode',
    'density_grid',
    'density_heatmap',
    'encode',
    'image_grid',
    'interpolate',
    'interpolation_angles',
    'latent_interpolation',
    'latent_manifold',
    'manifold',
    'sample_grid',
    'sample_latents',
    'temperature_sweep',
    'tile_images',
    'toy_figure',
]
