"""A multilayer perceptron for the shift and log-scale of vector couplings."""

import keras

__all__ = ['mlp_shift_and_log_scale']


def mlp_shift_and_log_scale(input_dim, output_dim, hidden_units=(256, 256),
                            activation='relu', dtype=None, name='mlp'):
  """Builds the s/t network of a vector coupling.

  ```none
  input (D_in,) -> [Dense(h_i), activation] for h_i in hidden_units
                -> Dense(2 * output_dim), zero-initialised
  output (2 * output_dim,): [raw log-scale | shift]
  ```

  Args:
    input_dim: size of the conditioning input, an int or a 1-tuple `(D_in,)` (the input
      shape a coupling passes to its network factory).
    output_dim: size of the transformed part; the network emits twice as many.
    hidden_units: widths of the hidden layers.
    activation: Keras activation of the hidden layers.
    dtype: Keras dtype policy.
    name: model name.

  Returns:
    A built `keras.Model` mapping `(batch, input_dim)` to
    `(batch, 2 * output_dim)`.
  """
  if isinstance(input_dim, (tuple, list)):
    (input_dim,) = input_dim
  inputs = keras.Input(shape=(int(input_dim),), name=f'{name}_input')
  h = inputs
  for i, units in enumerate(hidden_units):
    h = keras.layers.Dense(units, activation=activation, name=f'dense_{i}',
                           dtype=dtype)(h)
  outputs = keras.layers.Dense(2 * int(output_dim), kernel_initializer='zeros',
                               bias_initializer='zeros', name='dense_out',
                               dtype=dtype)(h)
  return keras.Model(inputs, outputs, name=name)
