"""A per-class affine map of the latent: a class-conditional Gaussian prior as a bijector."""

import tensorflow as tf

from tfp_realnvp.bijectors.conditioning import one_hot_labels
from tfp_realnvp.bijectors.flow_bijector import FlowBijector
from tfp_realnvp.bijectors.flow_bijector import reduce_event

__all__ = ['ClassConditionalAffine']


class ClassConditionalAffine(FlowBijector):
  """`z = mu_y + exp(log_sigma_y) * eps`: a learned mean and scale per class.

  Put nearest the latent of a flow whose base is a standard normal, it turns the base into a
  class-conditional Gaussian `N(mu_y, diag(sigma_y^2))` over the flow's latent, the learned
  class-conditional prior of Glow (sec. 3.4 and appendix of [1]). With labels `y` routed per
  call as `conditional_input` (integers or one-hot rows, see
  `tfp_realnvp.bijectors.conditioning`), and one-hot rows `o` (so `mu_y = o @ mu`):

  ```none
  forward(eps) = mu_y + exp(log_sigma_y) * eps              (latent of the base -> z)
  inverse(z) = (z - mu_y) * exp(-log_sigma_y)
  forward_log_det_jacobian(eps) = sum log_sigma_y            (over the event)
  inverse_log_det_jacobian(z) = -sum log_sigma_y
  ```

  `mu` and `log_sigma` have shape `(K,) + event_shape` and start at zero (the identity).

  Args:
    event_shape: the latent's event shape.
    num_classes: K.
    validate_args: check inputs are finite at run time.
    name: name of the bijector.

  #### References
  [1]: Diederik P. Kingma, Prafulla Dhariwal. Glow: Generative Flow with Invertible 1x1
       Convolutions. NeurIPS 2018. https://arxiv.org/abs/1807.03039
  """

  def __init__(self, event_shape, num_classes, validate_args=False,
               name='class_conditional_affine'):
    parameters = dict(locals())
    event_shape = tuple(int(d) for d in event_shape)
    if int(num_classes) < 2:
      raise ValueError(f'num_classes must be >= 2, got {num_classes}.')
    with tf.name_scope(name) as name:
      self._event_shape_tuple = event_shape
      self._num_classes = int(num_classes)
      self._loc = tf.Variable(tf.zeros((self._num_classes,) + event_shape), name='loc')
      self._log_scale = tf.Variable(tf.zeros((self._num_classes,) + event_shape),
                                    name='log_scale')
      super().__init__(forward_min_event_ndims=len(event_shape), validate_args=validate_args,
                       parameters=parameters, name=name)

  @property
  def loc(self):
    """`mu`, shape `(K,) + event_shape`."""
    return self._loc

  @property
  def log_scale(self):
    """`log_sigma`, shape `(K,) + event_shape`."""
    return self._log_scale

  @property
  def num_classes(self):
    return self._num_classes

  def _class_parameters(self, conditional_input, x):
    one_hot = one_hot_labels(conditional_input, self._num_classes, x.shape[:1], self.name)
    shape = tf.concat([tf.shape(one_hot)[:1], self._event_shape_tuple], 0)

    def per_event(variable):   # the rows of the events' classes, mixed by the one-hot rows
      return tf.reshape(tf.matmul(one_hot, tf.reshape(variable, [self._num_classes, -1])),
                        shape)
    loc, log_scale = per_event(self._loc), per_event(self._log_scale)
    return loc, log_scale

  def _forward_and_log_det(self, x, conditional_input=None, **kwargs):
    del kwargs
    loc, log_scale = self._class_parameters(conditional_input, x)
    return loc + tf.exp(log_scale) * x, reduce_event(log_scale, len(self._event_shape_tuple))

  def _inverse_and_log_det(self, y, conditional_input=None, **kwargs):
    del kwargs
    loc, log_scale = self._class_parameters(conditional_input, y)
    return ((y - loc) * tf.exp(-log_scale),
            -reduce_event(log_scale, len(self._event_shape_tuple)))
