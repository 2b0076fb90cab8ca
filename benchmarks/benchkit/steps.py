"""A model's training step, `log_prob` and `sample` as `tf.function`s."""

from benchkit.environment import tf_modules


class Steps:
  """Training step, `log_prob` and `sample` of one model, as `tf.function`s.

  A training step is `-mean(log_prob(x))` in training mode under a
  `GradientTape` and one Keras Adam update. `log_prob` and `sample` run in
  inference mode, outside any tape (no gradient graph is built).
  """

  def __init__(self, dist, batch_shape, jit_compile, training_kwargs=True,
               variables=None, seed=0):
    import keras  # pylint: disable=g-import-not-at-top
    tf, _ = tf_modules()
    self.dist = dist
    self.batch_shape = tuple(batch_shape)
    self.jit_compile = jit_compile
    kwargs = ({'bijector_kwargs': {'training': True}} if training_kwargs
              else {})
    self._x_spec = tf.TensorSpec(self.batch_shape, tf.float32)
    if variables is None:
      variables = dist.trainable_variables
    self.variables = list(variables)
    if not self.variables:
      # TFP's default templates create their variables at the first call.
      with tf.GradientTape() as tape:
        dist.log_prob(tf.zeros(self.batch_shape), **kwargs)
      self.variables = list(tape.watched_variables())
    self.optimizer = keras.optimizers.Adam(1e-3)
    self.optimizer.build(self.variables)
    variables_ = self.variables
    optimizer = self.optimizer

    def train(x):
      with tf.GradientTape() as tape:
        loss = -tf.reduce_mean(dist.log_prob(x, **kwargs))
      grads = tape.gradient(loss, variables_)
      optimizer.apply_gradients(zip(grads, variables_))
      return loss

    def log_prob(x):
      return dist.log_prob(x)

    def sample(seed):
      return dist.sample(self.batch_shape[0], seed=seed)

    self.train = tf.function(train, jit_compile=jit_compile)
    self.log_prob = tf.function(log_prob, jit_compile=jit_compile)
    self.sample = tf.function(sample, jit_compile=jit_compile)
    self._seed = tf.constant([seed, 1], tf.int32)

  def concrete(self, what):
    tf, _ = tf_modules()
    if what == 'sample':
      return self.sample.get_concrete_function(
          tf.TensorSpec([2], tf.int32))
    return getattr(self, what).get_concrete_function(self._x_spec)

  def call(self, what, x):
    if what == 'sample':
      return self.sample(self._seed)
    return getattr(self, what)(x)
