"""Every bijector's log-det against an autodiff Jacobian, and round trips.

One parametrised test covers each bijector of the registry (`flowtest.REGISTRY`: every
bijector of the package and both kinds of `RealNVPChain`), on small events, images with
H*W > 1 included, with every variable moved away from its initial value, before and after a
few training steps.
"""

import flowtest
import numpy as np
import pytest
from flowtest import REGISTRY
from flowtest import autodiff_log_det
from flowtest import fresh
from flowtest import perturb

# After training, one image chain stands for the others (their layers are all in the registry
# on their own): a chain's autodiff Jacobian is the slowest check of the suite.
CASES = [(name, trained) for name in sorted(REGISTRY) for trained in (False, True)
         if not (trained and name in ('chain_image_rgb', 'chain_image_conditional'))]


@pytest.mark.parametrize('name,trained', CASES,
                         ids=[f'{n}-{"trained" if t else "perturbed"}' for n, t in CASES])
def test_log_det_matches_autodiff_and_round_trips(name, trained):
  case = REGISTRY[name]
  bijector = perturb(case.build(), seed=7, scale=case.perturb_scale)
  if trained:
    flowtest.train_a_little(bijector, case.data_shape, case.make_data,
                            kwargs_fn=case.kwargs_fn)
  ndims = len(case.data_shape)
  x = case.make_data(case.data_shape)
  kwargs = case.kwargs(x.shape[:1])

  # Inverse direction: data -> latent.
  expected = autodiff_log_det(lambda t: bijector.inverse(t, **kwargs), fresh(x))
  ildj = bijector.inverse_log_det_jacobian(fresh(x), event_ndims=ndims, **kwargs).numpy()
  np.testing.assert_allclose(ildj, expected, rtol=1e-4, atol=2e-3)
  assert np.max(np.abs(expected)) > 1e-2 or name == 'squeeze', (
      'degenerate case: the log-det is ~0, the test could not fail')

  # Forward direction: latent -> data, at latents of real data points.
  z = bijector.inverse(fresh(x), **kwargs)
  expected_fwd = autodiff_log_det(lambda t: bijector.forward(t, **kwargs), fresh(z))
  fldj = bijector.forward_log_det_jacobian(fresh(z), event_ndims=ndims, **kwargs).numpy()
  np.testing.assert_allclose(fldj, expected_fwd, rtol=1e-4, atol=2e-3)
  np.testing.assert_allclose(fldj, -ildj, rtol=1e-4, atol=2e-3)

  # Round trips both ways, each call on a fresh tensor (no cached pass can answer).
  np.testing.assert_allclose(bijector.forward(fresh(z), **kwargs).numpy(), x.numpy(),
                             atol=1e-4)
  z2 = flowtest.real_data(tuple(z.shape[1:]), seed=3)
  if case.make_data is flowtest.image_data:
    # Latents near those of pixels: far out, float32's sigmoid saturates and the logit of
    # a pixel within 1e-7 of the support's edge cannot be recovered to 1e-4.
    z2 = z + 0.3 * z2
  np.testing.assert_allclose(
      bijector.inverse(fresh(bijector.forward(fresh(z2), **kwargs)), **kwargs).numpy(),
      np.array(z2), atol=2e-4)
