"""Writes the example notebooks of this folder (outputs stripped) from the cells below.

Edit the cells here, then run `python examples/notebooks/make_notebooks.py`; the
test suite (`tests/examples/test_notebooks.py`) checks that the `.ipynb` files
match this script and executes each one at small settings
(`TFP_REALNVP_NOTEBOOK_QUICK=1`).

Every notebook reads two environment variables in its first cell:

- `TFP_REALNVP_NOTEBOOK_QUICK=1`: small settings (a few seconds of training);
- `TFP_REALNVP_NOTEBOOK_OUT=<folder>`: also save every figure there as a PNG.
"""

import os
import sys
import textwrap

import nbformat

HERE = os.path.dirname(os.path.abspath(__file__))

KERNELSPEC = {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'}


def md(text):
  return ('markdown', textwrap.dedent(text).strip('\n'))


def code(text):
  return ('code', textwrap.dedent(text).strip('\n'))


def _parameters(extra):
  header = code('''
      # Parameters. The test suite sets TFP_REALNVP_NOTEBOOK_QUICK=1 (small settings);
      # TFP_REALNVP_NOTEBOOK_OUT=<folder> also saves every figure there as a PNG.
      import os
      import sys

      QUICK = os.environ.get('TFP_REALNVP_NOTEBOOK_QUICK', '0') == '1'
      OUT = os.environ.get('TFP_REALNVP_NOTEBOOK_OUT') or None
      SEED = 0
      ''')[1]
  return ('code', header + '\n' + textwrap.dedent(extra).strip('\n'))


SETUP = code('''
    %matplotlib inline
    os.environ.setdefault('KERAS_BACKEND', 'tensorflow')
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    try:
      import tfp_realnvp
    except ImportError:  # a clone without `pip install -e .`: use the repository root
      sys.path.insert(0, os.path.abspath(os.path.join('..', '..')))
      import tfp_realnvp

    import keras
    import numpy as np
    import tensorflow as tf
    import tensorflow_probability as tfp
    from IPython.display import display
    from matplotlib.figure import Figure

    from tfp_realnvp import RealNVPChain
    from tfp_realnvp import viz

    tfd = tfp.distributions
    keras.utils.set_random_seed(SEED)


    def show(fig, name):
      """Shows a figure inline and, when OUT is set, saves it there as `name`."""
      if OUT:
        os.makedirs(OUT, exist_ok=True)
        fig.savefig(os.path.join(OUT, name), bbox_inches='tight')
      display(fig)
    ''')


# ----------------------------------------------------------------------------- 01

QUICKSTART = [
    md('''
        # Quickstart: a Real NVP flow on 2-D data

        A normalizing flow in TensorFlow Probability is three things (the
        vocabulary of Oliver Dürr's lecture on normalizing flows in TFP [3]):

        - a **base distribution**, here a standard normal over the event,
          `tfd.Sample(tfd.Normal(0., 1.), [2])`;
        - a **bijector**, here `RealNVPChain(event_shape=(2,))`: affine coupling
          layers with alternating 1-D masks, MLPs for the log-scale `s` and shift
          `t`, and around each coupling Glow's learned 2x2 mixing before it and
          ActNorm (a per-coordinate scale and shift) after it;
        - a **`tfd.TransformedDistribution`** joining them.

        Direction, as everywhere in TFP: `forward` maps a latent `z` to data `x`
        (sampling), `inverse` maps data to the latent (density):

        ```
        log p(x) = log N(inverse(x); 0, I) + inverse_log_det_jacobian(x)
        ```

        We fit the flow to the two-moons toy by maximum likelihood, compare its
        held-out log-likelihood with a full-covariance Gaussian, and draw the
        data, samples and learned density side by side (as Keng's post on Real
        NVP does for its 2-D toys [4]).

        References: [1] Dinh, Sohl-Dickstein, Bengio, *Density estimation using
        Real NVP*, ICLR 2017, https://arxiv.org/abs/1605.08803;
        [2] François Fleuret, *Deep learning*, lecture 10.3, *Non-volume preserving
        networks*, https://fleuret.org/dlc/;
        [3] Oliver Dürr, *Go with the flow: an introduction to normalizing flows*
        (lecture, ZHAW Datalab, 2019), code at
        https://github.com/tensorchiefs/dl_book_playground/tree/master/flow;
        [4] Brian Keng, *Normalizing Flows with Real NVP* (2022),
        https://bjlkeng.io/posts/normalizing-flows-with-real-nvp/.
        '''),
    _parameters('''
        DATASET = 'moons'      # any of tfp_realnvp.data.TOY_2D_NAMES
        STEPS = 200 if QUICK else 3000
        NUM_TRAIN = 4000 if QUICK else 20000
        NUM_COUPLINGS = 6 if QUICK else 8
        HIDDEN_UNITS = (64, 64) if QUICK else (128, 128)
        LEARNING_RATE = 5e-3 if QUICK else 2e-3
        '''),
    SETUP,
    md('''
        ## Data

        `make_toy_2d` draws points from a fixed density and standardises them with
        fixed constants; train and test sets come from different seeds.
        '''),
    code('''
        from tfp_realnvp.data import TOY_2D_NAMES, make_toy_2d, toy_pipeline

        train = make_toy_2d(DATASET, NUM_TRAIN, seed=SEED)
        test = make_toy_2d(DATASET, 5000, seed=SEED + 1)
        print(TOY_2D_NAMES)
        print(train.shape, train.dtype, 'mean', train.mean(0).round(2),
              'std', train.std(0).round(2))
        '''),
    md('''
        ## The flow

        Every coupling starts as the identity (its network's last layer is
        zero-initialised), every ActNorm too until the first training batch sets
        it to standardise that batch, and every 2x2 mixing starts as a random
        rotation, which leaves N(0, I) unchanged: before training the model *is*
        the base distribution.
        '''),
    code('''
        flow = RealNVPChain(event_shape=(2,), num_couplings=NUM_COUPLINGS,
                            hidden_units=HIDDEN_UNITS)
        base = tfd.Sample(tfd.Normal(0., 1.), [2])
        dist = tfd.TransformedDistribution(base, flow)

        print(flow.summary())
        variables = dist.trainable_variables
        print(len(variables), 'variables,', sum(int(np.prod(v.shape)) for v in variables),
              'parameters')
        x_test = tf.constant(test)
        print('before training: flow', float(tf.reduce_mean(dist.log_prob(x_test))),
              '= N(0, I)', float(tf.reduce_mean(base.log_prob(x_test))))
        '''),
    md('''
        ## Training

        Minimise the mean negative log-likelihood. ActNorm (and the paper's
        batch norm, with `batch_norm=True`) needs to know that it is training
        (its data-dependent start; batch statistics and running averages): ask
        for it per call with `bijector_kwargs={'training': True}`. Everything else
        (evaluation, sampling) runs in inference mode, the default. Build the Keras
        optimizer before the `tf.function` so it does not create variables inside it.
        '''),
    code('''
        optimizer = keras.optimizers.Adam(LEARNING_RATE)
        optimizer.build(variables)


        @tf.function
        def train_step(x):
          with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(dist.log_prob(x, bijector_kwargs={'training': True}))
          grads = tape.gradient(loss, variables)
          optimizer.apply_gradients(zip(grads, variables))
          return loss


        batches = iter(toy_pipeline(train, batch_size=256, seed=SEED))
        losses = [float(train_step(next(batches))) for _ in range(STEPS)]
        print(f'training NLL over the last 50 steps: {np.mean(losses[-50:]):.3f} nats')

        fig = Figure(figsize=(6, 3))
        ax = fig.add_subplot()
        ax.plot(losses)
        ax.set_xlabel('step')
        ax.set_ylabel('NLL (nats per point)')
        show(fig, 'loss.png')
        '''),
    md('''
        ## Held-out log-likelihood against a full-covariance Gaussian

        The Gaussian is fitted in closed form (sample mean and covariance of the
        training set). Both are evaluated on the test set, in nats per point.
        '''),
    code('''
        mean = train.mean(0)
        cov = np.cov(train, rowvar=False, bias=True)
        gaussian = tfd.MultivariateNormalTriL(
            loc=mean, scale_tril=np.linalg.cholesky(cov).astype(np.float32))
        flow_ll = float(tf.reduce_mean(dist.log_prob(tf.constant(test))))
        gauss_ll = float(tf.reduce_mean(gaussian.log_prob(test)))
        print(f'held-out log-likelihood: flow {flow_ll:.3f}, '
              f'full-covariance Gaussian {gauss_ll:.3f} nats')
        '''),
    code('''
        samples = dist.sample(2000, seed=SEED).numpy()
        log_prob_fn = lambda points: dist.log_prob(tf.constant(points)).numpy()
        show(viz.toy_figure(train[:2000], samples, log_prob_fn,
                            title=f'{DATASET}: flow {flow_ll:.3f} vs Gaussian {gauss_ll:.3f} nats'),
             'toy_figure.png')
        '''),
    md('''
        ## Both directions

        `inverse` takes the data to the latent space, where they should look like
        a standard normal; `forward` brings them back. The bijectors keep each
        pass keyed by its input and output tensors (as TFP's bijector cache does),
        so `forward` of the very tensor `inverse` returned would hand back the
        cached input: the round trip uses a fresh tensor for `z` to really run
        `forward`.
        '''),
    code('''
        z = flow.inverse(tf.constant(test)).numpy()
        x_back = flow.forward(tf.constant(z)).numpy()
        print('round-trip max error:', np.abs(x_back - test).max())
        print('latent mean', z.mean(0).round(2), 'std', z.std(0).round(2))

        fig = Figure(figsize=(10, 5))
        for i, (points, label) in enumerate([(test, 'data x'), (z, 'latent z = inverse(x)')]):
          ax = fig.add_subplot(1, 2, i + 1)
          ax.scatter(points[:2000, 0], points[:2000, 1], s=2, c=test[:2000, 0], cmap='coolwarm')
          ax.set_title(label)
          ax.set_aspect('equal')
        show(fig, 'latent.png')
        '''),
    md('''
        ## One dimension

        A coupling needs two parts (one conditions the other), so a 1-D event
        gets a clear error. For 1-D data the package has the increasing
        piecewise-linear flow of Fleuret's lecture 10.3 [2], `PiecewiseLinear`.
        '''),
    code('''
        try:
          RealNVPChain(event_shape=(1,))
        except ValueError as err:
          print('ValueError:', err)
        '''),
    code('''
        from tfp_realnvp.bijectors import PiecewiseLinear

        rng = np.random.default_rng(SEED)
        x1 = np.concatenate([rng.normal(-1.5, 0.4, 3000), rng.normal(1., 0.7, 3000)])
        x1 = tf.constant(x1.astype(np.float32))
        pwl = PiecewiseLinear(num_bins=32, range_min=-4., range_max=4.)
        dist1 = tfd.TransformedDistribution(tfd.Normal(0., 1.), pwl)
        optimizer1 = keras.optimizers.Adam(0.05)
        optimizer1.build(dist1.trainable_variables)


        @tf.function
        def train_step_1d(x):
          with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(dist1.log_prob(x))
          grads = tape.gradient(loss, dist1.trainable_variables)
          optimizer1.apply_gradients(zip(grads, dist1.trainable_variables))
          return loss


        for _ in range(100 if QUICK else 500):
          loss1 = train_step_1d(x1)
        print(f'1-D NLL {float(loss1):.3f} nats')

        grid = np.linspace(-4, 4, 400).astype(np.float32)
        fig = Figure(figsize=(6, 3))
        ax = fig.add_subplot()
        ax.hist(x1.numpy(), bins=80, density=True, alpha=0.4, label='data')
        ax.plot(grid, np.exp(dist1.log_prob(tf.constant(grid)).numpy()),
                label='PiecewiseLinear flow')
        ax.legend()
        show(fig, 'piecewise_linear.png')
        '''),
]


# ----------------------------------------------------------------------------- 02

ANATOMY = [
    md('''
        # Anatomy of one coupling layer

        The affine coupling of Real NVP (Dinh et al., 2017,
        https://arxiv.org/abs/1605.08803; in the notation of Fleuret's lecture
        10.3, https://fleuret.org/dlc/), with a binary mask `b`
        (1 = conditioning entry):

        ```
        y = b * x + (1 - b) * (x * exp(s(b * x)) + t(b * x))
        ```

        The entries where `b = 1` pass unchanged and parametrise an affine map of
        the others, so the map is invertible whatever `s` and `t` are, and its
        Jacobian is triangular (after a permutation) with diagonal `1` and
        `exp(s)`: `log|det J| = sum over b_i = 0 of s_i`.

        In this package the paper's `f` (data to latent) is `inverse`, so
        `MaskedAffineCoupling.inverse` is the formula above and
        `inverse_log_det_jacobian(x) = sum((1 - b) * s(b * x))`; `forward` undoes
        it. Here we look at the mask, check the inverse, and check the log-det
        against an autodiff Jacobian.
        '''),
    _parameters('''
        DIM = 6             # a vector event, as in Fleuret's slide
        IMAGE_SHAPE = (4, 4, 2)
        '''),
    SETUP,
    code('''
        from tfp_realnvp.bijectors import InvertibleBatchNorm, MaskedAffineCoupling


        def perturb(bijector, scale=0.3, seed=SEED):
          """Moves every variable away from its initial value.

          A fresh coupling is the identity (zero-initialised output layer): a
          log-det check on it could not fail. Variances stay positive.
          """
          rng = np.random.default_rng(seed)
          for v in bijector.variables:
            if 'variance' in v.name:
              v.assign(rng.uniform(0.5, 2., v.shape).astype(np.float32))
            else:
              v.assign(v + scale * rng.standard_normal(v.shape).astype(np.float32))
          return bijector


        def autodiff_log_det(fn, x):
          """log|det d fn(x) / dx| per example, from tf.GradientTape.batch_jacobian."""
          x = tf.constant(x)
          with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x)
          jac = tape.batch_jacobian(y, x).numpy()
          size = int(np.prod(x.shape[1:]))
          jac = jac.reshape(len(jac), size, size).astype(np.float64)
          return np.linalg.slogdet(jac)[1], jac
        '''),
    md('''
        ## A vector coupling and its mask

        `mask_type='half'`: the first `D // 2` entries condition the rest
        (`parity=1` swaps the roles). The s/t network is an MLP: the coupling takes
        a Keras model, or a factory `network(input_shape, n)` such as
        `nets.mlp_shift_and_log_scale` with its sizes bound by `functools.partial`.
        '''),
    code('''
        import functools
        from tfp_realnvp import nets

        mlp = functools.partial(nets.mlp_shift_and_log_scale, hidden_units=(16,))
        coupling = perturb(MaskedAffineCoupling((DIM,), mask_type='half', network=mlp))
        mask = coupling.mask.numpy()
        print('mask b =', mask)

        rng = np.random.default_rng(SEED)
        x = rng.standard_normal((4, DIM)).astype(np.float32)
        y = coupling.inverse(tf.constant(x)).numpy()
        print('conditioning entries unchanged:', np.allclose(y[:, mask == 1], x[:, mask == 1]))
        print('transformed entries changed:   ', not np.allclose(y[:, mask == 0], x[:, mask == 0]))
        '''),
    md('''
        ## Its inverse

        `forward(inverse(x)) = x`. The bijectors cache each pass by tensor identity
        (as TFP's do), so pass a *fresh* tensor to `forward`, otherwise it simply
        returns the cached `x`.
        '''),
    code('''
        x_back = coupling.forward(tf.constant(y)).numpy()
        print('max |forward(inverse(x)) - x| =', np.abs(x_back - x).max())
        '''),
    md('''
        ## Its log-det against autodiff

        The Jacobian of `inverse` is lower-triangular in this ordering: ones on
        the conditioning block, `exp(s)` on the diagonal of the transformed
        block, anything below (compare Fleuret's printed Jacobian).
        '''),
    code('''
        log_det_autodiff, jac = autodiff_log_det(coupling.inverse, x)
        log_det_coupling = coupling.inverse_log_det_jacobian(tf.constant(x), event_ndims=1).numpy()
        print('autodiff :', log_det_autodiff.round(5))
        print('coupling :', log_det_coupling.round(5))
        assert np.allclose(log_det_autodiff, log_det_coupling, atol=1e-4)

        fwd_autodiff, _ = autodiff_log_det(coupling.forward, y)
        fwd_coupling = coupling.forward_log_det_jacobian(tf.constant(y), event_ndims=1).numpy()
        print('forward log-det, autodiff vs coupling:', fwd_autodiff.round(5),
              fwd_coupling.round(5))
        assert np.allclose(fwd_autodiff, fwd_coupling, atol=1e-4)
        print(np.array2string(jac[0], precision=3, suppress_small=True))

        fig = Figure(figsize=(4, 4))
        ax = fig.add_subplot()
        limit = np.abs(jac[0]).max()
        ax.imshow(jac[0], cmap='RdBu_r', vmin=-limit, vmax=limit)
        ax.set_title('Jacobian of inverse (data to latent)')
        ax.set_xlabel('input entry j')
        ax.set_ylabel('output entry i')
        show(fig, 'vector_jacobian.png')
        '''),
    md('''
        ## Image couplings: checkerboard and channel masks

        For an image event `(H, W, C)`, the checkerboard mask is
        `b[i, j] = 1` where `(i + j) % 2 == parity`; after a squeeze the channel
        mask lets the first half of the channels condition the second. The s/t
        network is a small ResNet (`nets.resnet_shift_and_log_scale`). The log-det
        check works the same way on the flattened `H * W * C` entries.
        '''),
    code('''
        resnet = functools.partial(nets.resnet_shift_and_log_scale, hidden_channels=8,
                                   num_res_blocks=1)
        checker = perturb(MaskedAffineCoupling(IMAGE_SHAPE, mask_type='checkerboard', parity=0,
                                               network=resnet))
        channel = perturb(MaskedAffineCoupling(IMAGE_SHAPE, mask_type='channel', parity=0,
                                               network=resnet))
        height, width, channels = IMAGE_SHAPE
        channel_mask = np.concatenate([np.ones((height, width, channels // 2)),
                                       np.zeros((height, width, channels - channels // 2))], -1)
        masks = {'checkerboard, parity 0': checker.mask.numpy()[..., 0],
                 'checkerboard, parity 1': 1 - checker.mask.numpy()[..., 0],
                 'channel mask, channel 0': channel_mask[..., 0],
                 'channel mask, channel 1': channel_mask[..., 1]}
        fig = Figure(figsize=(12, 3))
        for i, (title, m) in enumerate(masks.items()):
          ax = fig.add_subplot(1, 4, i + 1)
          ax.imshow(m, cmap='gray', vmin=0, vmax=1)
          ax.set_title(title + '\\n(white = conditioning)', fontsize=9)
          ax.set_xticks([])
          ax.set_yticks([])
        show(fig, 'image_masks.png')

        images = rng.uniform(-1, 1, (3,) + IMAGE_SHAPE).astype(np.float32)
        for name, c in [('checkerboard', checker), ('channel', channel)]:
          autodiff, _ = autodiff_log_det(c.inverse, images)
          own = c.inverse_log_det_jacobian(tf.constant(images), event_ndims=3).numpy()
          back = c.forward(tf.constant(c.inverse(tf.constant(images)).numpy())).numpy()
          print(f'{name:12s} log-det autodiff {autodiff.round(4)} coupling {own.round(4)}; '
                f'round trip {np.abs(back - images).max():.1e}')
          assert np.allclose(autodiff, own, atol=1e-3)
        '''),
    md('''
        ## The invertible batch norm between couplings

        In the data-to-latent direction it normalises every entry with the running
        mean and variance of its channel, then scales and shifts:
        `log|det| = H * W * sum_c [log_gamma_c - 0.5 log(v_c + eps)]`. Every pixel
        counts, not only every channel (a TensorFlow Probability thread,
        https://github.com/tensorflow/probability/issues/238).
        '''),
    code('''
        bn = perturb(InvertibleBatchNorm(IMAGE_SHAPE))
        autodiff, _ = autodiff_log_det(bn.inverse, images)
        own = bn.inverse_log_det_jacobian(tf.constant(images), event_ndims=3).numpy()
        print('batch norm log-det, autodiff', autodiff.round(4), 'bijector', own.round(4))
        assert np.allclose(autodiff, own, atol=1e-3)
        '''),
    md('''
        ## Stacking couplings

        One coupling leaves half of the entries unchanged; alternating masks make
        every entry transformed by some layer. `RealNVPChain` stacks them: on
        images, checkerboard couplings, a squeeze, channel couplings and a
        factor-out at every scale (paper, section 4.1).
        '''),
    code('''
        print(RealNVPChain(event_shape=(8, 8, 1), num_scales=2, hidden_channels=4,
                           num_res_blocks=1).summary())
        '''),
]


# ----------------------------------------------------------------------------- 03

IMAGE_FLOW = [
    md('''
        # An image flow: train, sample, interpolate, temperature

        The multi-scale Real NVP of the paper on real images, on a CPU, briefly.
        `RealNVPChain(event_shape=(H, W, C))` maps a latent of the image's shape to
        pixels in [0, 1]; its first step (nearest the data) is the paper's
        `logit(0.05 + 0.9 x)` with its log-det, so `log_prob` is the density of the
        dequantized pixels and `bits_per_dim` compares with the papers.

        Data: Fashion-MNIST resized to 16x16 from Debian's `dataset-fashion-mnist`
        (offline), or scikit-learn's 8x8 digits (17 grey levels) at quick settings.
        The full settings (400 steps) take 10 to 20 minutes on 2 CPU cores and
        reach about 4.3 bits/dim on the test images; the samples are blurry
        garment shapes. A real run takes hours on a GPU.
        '''),
    _parameters('''
        DATASET = 'digits' if QUICK else 'fashion_mnist'
        IMAGE_SIZE = None if QUICK else (16, 16)   # None keeps the native size
        NUM_SCALES = 2
        HIDDEN_CHANNELS = 8 if QUICK else 32
        NUM_RES_BLOCKS = 1 if QUICK else 2
        BATCH_SIZE = 64
        STEPS = 2 if QUICK else 400
        # Tracing the whole flow into a graph takes about half a minute on a CPU;
        # it pays off over hundreds of steps, not over three.
        COMPILE = not QUICK
        '''),
    SETUP,
    code('''
        from tfp_realnvp import bits_per_dim
        from tfp_realnvp.data import image_pipeline, load_images

        data = load_images(DATASET, image_size=IMAGE_SIZE)
        shape = data.image_shape
        print(f'{data.name} from {data.source}: train {data.train.shape}, test {data.test.shape}, '
              f'{data.num_levels} levels')
        show(viz.image_grid(data.test[:32] / (data.num_levels - 1), num_rows=4,
                            title='test images'), 'data.png')
        '''),
    code('''
        flow = RealNVPChain(event_shape=shape, num_scales=NUM_SCALES,
                            hidden_channels=HIDDEN_CHANNELS, num_res_blocks=NUM_RES_BLOCKS)
        dist = tfd.TransformedDistribution(tfd.Sample(tfd.Normal(0., 1.), shape), flow)
        print(flow.summary())
        variables = dist.trainable_variables
        print(sum(int(np.prod(v.shape)) for v in variables), 'parameters')
        '''),
    md('''
        ## Training

        As in the paper: Adam, an L2 penalty of 5e-5 on the couplings' scale
        vectors (`flow.l2_regularized_variables`), gradient clipping, and batch
        norm in training mode through `bijector_kwargs={'training': True}`.
        '''),
    code('''
        optimizer = keras.optimizers.Adam(1e-3)
        optimizer.build(variables)
        num_dims = int(np.prod(shape))


        def train_step(x):
          with tf.GradientTape() as tape:
            nll = -tf.reduce_mean(dist.log_prob(x, bijector_kwargs={'training': True}))
            l2 = tf.add_n([tf.reduce_sum(v ** 2) for v in flow.l2_regularized_variables])
            loss = nll + 5e-5 * l2
          grads, _ = tf.clip_by_global_norm(tape.gradient(loss, variables), 100.)
          optimizer.apply_gradients(zip(grads, variables))
          return bits_per_dim(-nll, shape, data.num_levels)


        if COMPILE:
          train_step = tf.function(train_step)
        batches = iter(image_pipeline(data.train, data.num_levels, BATCH_SIZE, seed=SEED))
        train_bpd = []
        for step in range(STEPS):
          train_bpd.append(float(train_step(next(batches))))
          if (step + 1) % max(1, STEPS // 8) == 0:
            print(f'step {step + 1:4d}: {train_bpd[-1]:.3f} bits/dim')

        test_batch = next(iter(image_pipeline(data.test, data.num_levels, 64 if QUICK else 256,
                                              training=False, seed=SEED)))
        test_bpd = float(tf.reduce_mean(bits_per_dim(dist.log_prob(test_batch), shape,
                                                     data.num_levels)))
        print(f'test: {test_bpd:.3f} bits/dim (a uniform density: {np.log2(data.num_levels):.3f})')
        '''),
    md('''
        ## Samples and temperature

        Sampling is `forward` of `z ~ N(0, I)`. Sampling at temperature `T`
        (`z ~ N(0, T^2 I)`, the reduced-temperature sampling of Glow, Kingma &
        Dhariwal 2018, https://arxiv.org/abs/1807.03039) trades diversity for
        cleaner samples; each column of the sweep scales the same noise. The flow
        maps the latent space onto a box slightly larger than [0, 1] (the inverse
        of the logit preprocessing), so a few sample pixels can lie just outside
        [0, 1]: the grids clip them for display.
        '''),
    code('''
        show(viz.sample_grid(flow, shape, num_samples=36, temperature=1.0, seed=SEED),
             'samples.png')
        show(viz.temperature_sweep(flow, shape, temperatures=(0., 0.5, 0.75, 1.0),
                                   num_per_row=8, seed=SEED), 'temperatures.png')
        '''),
    md('''
        ## Interpolation in latent space

        `inverse` maps two test images to their latents `z_a`, `z_b`; the
        row shows `forward(cos(phi) z_a + sin(phi) z_b)` for `phi` from 0 to
        pi/2 (the paper's figure 6 spans a whole manifold from four images the
        same way).
        '''),
    code('''
        test_images = test_batch.numpy()
        show(viz.interpolate(flow, test_images[0], test_images[1], num_steps=8),
             'interpolation.png')
        show(viz.manifold(flow, test_images[:4], grid_size=4 if QUICK else 8), 'manifold.png')
        '''),
]


# ----------------------------------------------------------------------------- 04

FLOW_PRIOR = [
    md('''
        # A flow as a learnable prior

        A normalizing flow can stand in for a Gaussian wherever one is used, for
        example as the prior of a variational autoencoder (Eric Jang, *Normalizing
        Flows Tutorial, Part 1*, 2018, https://blog.evjang.com/2018/01/nf1.html;
        Oliver Dürr's lecture on normalizing flows in TFP,
        https://github.com/tensorchiefs/dl_book_playground/tree/master/flow). Here a
        variational autoencoder with a 2-D latent is trained twice on binarised
        8x8 digits: once with the usual `N(0, I)` prior, once with a Real NVP
        prior `p(z) = TransformedDistribution(N(0, I), RealNVPChain((2,)))` whose
        parameters are learned with the rest. The prior enters the ELBO only
        through `prior.log_prob(z)`, so the swap is one line:

        ```
        ELBO(x) = E_q(z|x) [ log p(x|z) + log p(z) - log q(z|x) ]
        ```

        (a Monte-Carlo KL, since a flow prior has no closed-form KL).
        '''),
    _parameters('''
        LATENT_DIM = 2
        STEPS = 100 if QUICK else 4000
        HIDDEN = 64 if QUICK else 256
        BATCH_SIZE = 128
        PRIOR_BATCH_NORM = False   # see the note after the training cell
        '''),
    SETUP,
    code('''
        from sklearn.datasets import load_digits
        from tfp_realnvp.data import load_images

        data = load_images('digits')             # 8x8, 17 grey levels; 1500 train, 297 test
        binarise = lambda images: (images.reshape(len(images), -1) >= 8).astype(np.float32)
        x_train, x_test = binarise(data.train), binarise(data.test)
        labels_test = load_digits().target[len(data.train):]   # same split as load_images
        print(x_train.shape, x_test.shape)
        '''),
    code('''
        def make_vae(prior):
          """Encoder, decoder and the prior of one VAE, all TFP distributions."""
          encoder = keras.Sequential([keras.Input((64,)), keras.layers.Dense(HIDDEN, 'relu'),
                                      keras.layers.Dense(HIDDEN, 'relu'),
                                      keras.layers.Dense(2 * LATENT_DIM)])
          decoder = keras.Sequential([keras.Input((LATENT_DIM,)),
                                      keras.layers.Dense(HIDDEN, 'relu'),
                                      keras.layers.Dense(HIDDEN, 'relu'), keras.layers.Dense(64)])

          def posterior(x):
            loc, raw_scale = tf.split(encoder(x), 2, axis=-1)
            return tfd.MultivariateNormalDiag(loc, tf.nn.softplus(raw_scale) + 1e-4)

          def likelihood(z):                    # z: (..., LATENT_DIM), e.g. (samples, batch, 2)
            logits = decoder(tf.reshape(z, [-1, LATENT_DIM]))
            logits = tf.reshape(logits, tf.concat([tf.shape(z)[:-1], [64]], axis=0))
            return tfd.Independent(tfd.Bernoulli(logits=logits), 1)

          variables = (list(encoder.trainable_variables) + list(decoder.trainable_variables)
                       + list(getattr(prior, 'trainable_variables', ())))
          return posterior, likelihood, variables


        def elbo(posterior, likelihood, prior, x, training=False, num_samples=1):
          q = posterior(x)
          z = q.sample(num_samples)                       # reparameterised
          # A flow prior with batch norm is told when it is training; a Gaussian has no bijector.
          is_flow = isinstance(getattr(prior, 'bijector', None), RealNVPChain)
          kwargs = {'bijector_kwargs': {'training': True}} if training and is_flow else {}
          log_prior = prior.log_prob(z, **kwargs)         # batch shape (samples, batch)
          return tf.reduce_mean(likelihood(z).log_prob(x) + log_prior - q.log_prob(z), axis=0)


        def train_vae(prior, name):
          posterior, likelihood, variables = make_vae(prior)
          optimizer = keras.optimizers.Adam(1e-3)
          optimizer.build(variables)

          @tf.function
          def step(x):
            with tf.GradientTape() as tape:
              loss = -tf.reduce_mean(elbo(posterior, likelihood, prior, x, training=True))
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
            return loss

          rng = np.random.default_rng(SEED)
          for i in range(STEPS):
            step(tf.constant(x_train[rng.integers(0, len(x_train), BATCH_SIZE)]))
          test_elbo = float(tf.reduce_mean(elbo(posterior, likelihood, prior, tf.constant(x_test),
                                                num_samples=64)))
          print(f'{name}: test ELBO {test_elbo:.2f} nats per image')
          return posterior, likelihood, test_elbo
        '''),
    code('''
        gaussian_prior = tfd.Sample(tfd.Normal(0., 1.), [LATENT_DIM])
        flow_prior = tfd.TransformedDistribution(
            tfd.Sample(tfd.Normal(0., 1.), [LATENT_DIM]),
            RealNVPChain(event_shape=(LATENT_DIM,), num_couplings=4, hidden_units=(64, 64),
                         batch_norm=PRIOR_BATCH_NORM, act_norm=False,
                         invertible_1x1_conv=False))

        keras.utils.set_random_seed(SEED)
        gaussian_vae = train_vae(gaussian_prior, 'Gaussian prior')
        keras.utils.set_random_seed(SEED)
        flow_vae = train_vae(flow_prior, 'Real NVP prior')
        '''),
    md('''
        *Note on normalisation in the prior.* The prior's inputs are codes that
        move while the encoder learns. The paper's invertible batch norm
        (`batch_norm=True`) normalises them in training mode with a running average
        that a batch moves by only 5%, and the vector flow's default, Glow's
        ActNorm, would be set once from the first batch of codes of an untrained
        encoder; so this prior has neither (`act_norm=False`), nor the learned
        mixing. At the full settings of this notebook (one seed) the test ELBO was
        -20.44 nats with the Gaussian prior, -19.99 with the flow prior without
        batch norm, and -20.96 with it; hence `PRIOR_BATCH_NORM = False`.
        '''),
    md('''
        ## Where the codes go, and what each prior believes

        Posterior means of the test images (coloured by digit) over each prior's
        density. The aggregate of the encoder's posteriors is rarely a standard
        normal; the flow prior can follow it, the Gaussian prior cannot.
        '''),
    code('''
        fig = Figure(figsize=(12, 5.5))
        for i, (name, prior, (posterior, _, test_elbo)) in enumerate(
            [('Gaussian prior', gaussian_prior, gaussian_vae),
             ('Real NVP prior', flow_prior, flow_vae)]):
          ax = fig.add_subplot(1, 2, i + 1)
          codes = posterior(tf.constant(x_test)).mean().numpy()
          low, high = codes.min(0), codes.max(0)
          low, high = low - 0.3 * (high - low) - 0.5, high + 0.3 * (high - low) + 0.5
          viz.density_heatmap(lambda pts: prior.log_prob(tf.constant(pts)).numpy(),
                              bounds=((low[0], high[0]), (low[1], high[1])), resolution=100, ax=ax,
                              title=f'{name}: test ELBO {test_elbo:.1f}', cmap='Greys')
          points = ax.scatter(codes[:, 0], codes[:, 1], c=labels_test, cmap='tab10', s=8)
        fig.colorbar(points, ax=fig.axes, label='digit')
        show(fig, 'latent_priors.png')
        '''),
    md('''
        ## Samples: z from the prior, x from the decoder

        Decoded Bernoulli means of 64 latents drawn from each prior.
        '''),
    code('''
        for name, prior, (_, likelihood, _), png in [
            ('Gaussian prior', gaussian_prior, gaussian_vae, 'samples_gaussian_prior.png'),
            ('Real NVP prior', flow_prior, flow_vae, 'samples_flow_prior.png')]:
          z = prior.sample(64, seed=SEED)
          means = likelihood(z).mean().numpy().reshape(-1, 8, 8, 1)
          show(viz.image_grid(means, title=f'decoded samples, {name}'), png)
        '''),
]


# ----------------------------------------------------------------------------- 05

CONDITIONAL = [
    md('''
        # Class-conditional flows: samples by class, a generative classifier, OOD scores

        With `num_classes=K`, `RealNVPChain` models `p(x | y)` for labels `y` in
        `{0, ..., K - 1}`. The labels are passed per call, like `training`, through
        the keyword `conditional_input`, as integers in `[0, K)` or as one-hot rows:

        ```
        dist.log_prob(x, bijector_kwargs={'conditional_input': labels})   # log p(x | y)
        dist.sample(n, bijector_kwargs={'conditional_input': labels})      # x ~ p(x | y)
        ```

        Every coupling's s/t network receives the one-hot label as `K` more input
        channels (broadcast over the pixels), so `s` and `t` depend on the class;
        with `class_conditional_prior=True` (the default) the flow also ends with a
        learned mean and scale per class and latent entry, the class-conditional
        prior of Glow [2]: the latent of class `y` is `N(mu_y, diag(sigma_y^2))`.

        On scikit-learn's 8x8 digits (17 grey levels; the package's split, 1500
        training and 297 test images) this notebook trains one such flow, then

        1. samples each class (one row per class);
        2. classifies by Bayes' rule, `argmax_y log p(x | y) + log p(y)`
           (`tfp_realnvp.classifier`), and compares with a class-conditional
           Gaussian (scikit-learn's QDA);
        3. scores out-of-distribution (OOD) inputs with `tfp_realnvp.ood`, from the
           marginal likelihood `log p(x) = logsumexp_y [log p(x | y) + log p(y)]`,
           and from the classifier's confidence.

        The full settings train for a few minutes on 2 CPU cores;
        `benchmarks/conditional/digits_classifier.py` runs the complete recipe
        (validation split, early stopping, weight averaging, both priors).

        References: [1] Dinh, Sohl-Dickstein, Bengio, *Density estimation using
        Real NVP*, ICLR 2017, https://arxiv.org/abs/1605.08803;
        [2] Kingma, Dhariwal, *Glow: Generative Flow with Invertible 1x1
        Convolutions*, NeurIPS 2018, https://arxiv.org/abs/1807.03039;
        [3] Nalisnick et al., *Do Deep Generative Models Know What They Don't
        Know?*, ICLR 2019, https://arxiv.org/abs/1810.09136;
        [4] Nalisnick et al., *Detecting Out-of-Distribution Inputs to Deep
        Generative Models Using Typicality*, 2019, https://arxiv.org/abs/1906.02994;
        [5] Serra et al., *Input Complexity and Out-of-distribution Detection with
        Likelihood-based Generative Models*, ICLR 2020,
        https://arxiv.org/abs/1909.11480;
        [6] Hendrycks, Gimpel, *A Baseline for Detecting Misclassified and
        Out-of-Distribution Examples in Neural Networks*, ICLR 2017,
        https://arxiv.org/abs/1610.02136.
        '''),
    _parameters('''
        NUM_SCALES = 1 if QUICK else 2
        HIDDEN_CHANNELS = 8 if QUICK else 16   # small networks generalise best here
        NUM_RES_BLOCKS = 1
        STEPS = 5 if QUICK else 1500
        BATCH_SIZE = 64
        CLASS_CONDITIONAL_PRIOR = True
        TEMPERATURE = 0.7
        DEQUANTIZATION_DRAWS = 1 if QUICK else 4   # per test image, for the classifier
        # Tracing the flow into a graph takes a while on a CPU; it pays off over
        # hundreds of steps, not over five.
        COMPILE = not QUICK
        '''),
    SETUP,
    code('''
        from sklearn.datasets import load_digits

        from tfp_realnvp import bits_per_dim, ood
        from tfp_realnvp.classifier import GenerativeClassifier, accuracy, class_frequencies
        from tfp_realnvp.data import dequantize, load_images

        NUM_CLASSES = 10
        data = load_images('digits')              # first 1500 images train, last 297 test
        target = load_digits().target             # the labels, in the same order
        train_labels, test_labels = target[:len(data.train)], target[len(data.train):]
        shape, levels = data.image_shape, data.num_levels
        print(f'train {data.train.shape}, test {data.test.shape}, {levels} levels; '
              f'train class counts {np.bincount(train_labels)}')
        '''),
    md('''
        ## The flow

        A fresh flow is the same map for every class (zero-initialised couplings,
        a prior at `mu = 0, sigma = 1`), but it already insists on labels: a call
        without them is an error that says what to pass.
        '''),
    code('''
        flow = RealNVPChain(shape, num_scales=NUM_SCALES, hidden_channels=HIDDEN_CHANNELS,
                            num_res_blocks=NUM_RES_BLOCKS, num_classes=NUM_CLASSES,
                            class_conditional_prior=CLASS_CONDITIONAL_PRIOR)
        dist = tfd.TransformedDistribution(tfd.Sample(tfd.Normal(0., 1.), shape), flow)
        variables = dist.trainable_variables
        print(sum(int(np.prod(v.shape)) for v in variables), 'parameters')

        x = tf.constant(dequantize(data.test[:4], levels, SEED))
        print('log p(x | y), integer labels:',
              dist.log_prob(x, bijector_kwargs={'conditional_input': test_labels[:4]}).numpy())
        one_hot = tf.one_hot(test_labels[:4], NUM_CLASSES)
        print('log p(x | y), one-hot labels:',
              dist.log_prob(x, bijector_kwargs={'conditional_input': one_hot}).numpy())
        try:
          dist.log_prob(x)
        except ValueError as err:
          print('ValueError:', err)
        '''),
    md('''
        ## Training

        Maximum likelihood of `p(x | y)` with the paper's recipe (Adam, L2 of 5e-5
        on the couplings' scales, gradient clipping), a cosine decay of the
        learning rate, and fresh dequantization noise `(k + u) / 17` for every
        batch. The labels go in beside `training=True`.
        '''),
    code('''
        schedule = keras.optimizers.schedules.CosineDecay(1e-3, STEPS, alpha=0.05)
        optimizer = keras.optimizers.Adam(schedule)
        optimizer.build(variables)


        def train_step(x, labels):
          with tf.GradientTape() as tape:
            nll = -tf.reduce_mean(dist.log_prob(
                x, bijector_kwargs={'training': True, 'conditional_input': labels}))
            l2 = tf.add_n([tf.reduce_sum(v ** 2) for v in flow.l2_regularized_variables])
            loss = nll + 5e-5 * l2
          grads, _ = tf.clip_by_global_norm(tape.gradient(loss, variables), 100.)
          optimizer.apply_gradients(zip(grads, variables))
          return bits_per_dim(-nll, shape, levels)


        if COMPILE:
          train_step = tf.function(train_step)
        rng = np.random.default_rng(SEED)
        for step in range(STEPS):
          batch = rng.integers(0, len(data.train), BATCH_SIZE)
          bpd = train_step(tf.constant(dequantize(data.train[batch], levels, rng)),
                           tf.constant(train_labels[batch], tf.int32))
          if (step + 1) % max(1, STEPS // 6) == 0:
            print(f'step {step + 1:4d}: {float(bpd):.3f} bits/dim (training batch)')

        test_x = dequantize(data.test, levels, SEED)
        test_log_p = dist.log_prob(tf.constant(test_x),
                                   bijector_kwargs={'conditional_input': test_labels})
        print(f'test: {float(np.mean(bits_per_dim(test_log_p, shape, levels))):.3f} bits/dim '
              f'of p(x | true label) (uniform: {np.log2(levels):.3f})')
        '''),
    md('''
        ## Samples by class

        `forward` of a latent `z ~ N(0, T^2 I)` with the labels of the row. With
        the class-conditional prior, the temperature `T` shrinks the latent toward
        the class mean `mu_y`. `dist.sample(n, bijector_kwargs=...)` draws at
        `T = 1`. Sample pixels can lie slightly outside [0, 1] (the flow's support
        is a box a little larger than the pixel range): `image_grid` clips them.
        '''),
    code('''
        per_class = 10
        labels = np.repeat(np.arange(NUM_CLASSES), per_class)
        z = viz.sample_latents(shape, len(labels), temperature=TEMPERATURE, seed=SEED)
        samples = flow.forward(z, conditional_input=tf.constant(labels, tf.int32)).numpy()
        show(viz.image_grid(samples, num_rows=NUM_CLASSES, row_labels=list(range(NUM_CLASSES)),
                            title=f'samples by class, T = {TEMPERATURE}'), 'class_samples.png')

        threes = dist.sample(5, bijector_kwargs={'conditional_input': tf.fill([5], 3)}, seed=SEED)
        print('dist.sample of five 3s:', threes.shape)
        '''),
    md('''
        ## A generative classifier

        `GenerativeClassifier` evaluates `log p(x | y)` for all ten labels in one
        batched call (the images tiled ten times), in inference mode, and applies
        Bayes' rule with `p(y)` the class frequencies of the training labels. It
        also takes a function `log_prob(x, labels)`, e.g. a SavedModel's.
        `image_class_log_likelihoods` averages `p(x | y)` over a few
        dequantization draws of each integer image, a better estimate of the
        probability of the discrete image than one draw.
        '''),
    code('''
        classifier = GenerativeClassifier(dist, class_prior=class_frequencies(train_labels, 10))
        log_likelihoods = classifier.image_class_log_likelihoods(      # (297, 10)
            data.test, levels, num_samples=DEQUANTIZATION_DRAWS, seed=SEED)
        predictions = classifier.predict_from_log_likelihoods(log_likelihoods)
        flow_accuracy = accuracy(predictions, test_labels)

        from sklearn.discriminant_analysis import QuadraticDiscriminantAnalysis
        qda = QuadraticDiscriminantAnalysis(reg_param=0.1)
        qda.fit(data.train.reshape(len(data.train), -1), train_labels)
        qda_accuracy = qda.score(data.test.reshape(len(data.test), -1), test_labels)
        print(f'test accuracy: flow {flow_accuracy:.3f}, QDA {qda_accuracy:.3f}, chance 0.1')

        confusion = np.zeros((NUM_CLASSES, NUM_CLASSES), int)
        np.add.at(confusion, (test_labels, predictions), 1)
        fig = Figure(figsize=(5, 4.5))
        ax = fig.add_subplot()
        ax.imshow(confusion, cmap='Blues')
        for (i, j), count in np.ndenumerate(confusion):
          if count:
            ax.text(j, i, count, ha='center', va='center', fontsize=8,
                    color='white' if count > confusion.max() / 2 else 'black')
        ax.set_xticks(range(NUM_CLASSES))
        ax.set_yticks(range(NUM_CLASSES))
        ax.set_xlabel('predicted class')
        ax.set_ylabel('true class')
        ax.set_title(f'flow classifier, test accuracy {flow_accuracy:.3f}')
        show(fig, 'confusion.png')
        '''),
    md('''
        ## Out-of-distribution scores

        The in-distribution set is the 297 test digits; the OOD sets are brought to
        8x8 and 17 levels by `tfp_realnvp.ood.datasets`: uniform noise, constant
        images, the test digits flipped upside down, and Fashion-MNIST when
        Debian's `dataset-fashion-mnist` is installed. Each score is larger for
        inputs judged more likely OOD (the convention of `tfp_realnvp.ood`):

        - `bits_per_dim` of the marginal likelihood `p(x)`, the raw score, which
          is known to fail for flows on some pairs of datasets [3];
        - `typicality`: `|log p(x) - mean log p(training images)|` [4];
        - `complexity`: bits/dim minus the bits/dim a lossless compressor (JPEG
          2000) needs for the image [5];
        - `confidence`: `1 - max_y p(y | x)`, the generative classifier's doubt (the
          baseline of [6], with Bayes' posterior in place of a softmax).
        '''),
    code('''
        def marginal_log_probs(images):
          """log p(x) = logsumexp_y [log p(x | y) + log p(y)], and log p(y | x)."""
          joint = classifier.log_joint(dequantize(images, levels, SEED))
          top = joint.max(axis=1, keepdims=True)
          log_p = top + np.log(np.exp(joint - top).sum(axis=1, keepdims=True))
          return log_p[:, 0], joint - log_p


        sets = {'noise': ood.datasets.noise_images(len(data.test), shape, levels, seed=SEED),
                'constant': ood.datasets.constant_images(len(data.test), shape, levels,
                                                         seed=SEED),
                'vflip': ood.datasets.vflip_images(data.test)}
        fashion_dir = '/usr/share/datasets/fashion-mnist'
        if os.path.isdir(fashion_dir):
          sets['fashion_mnist'] = ood.datasets.local_images(fashion_dir, shape, levels,
                                                            max_examples=1000)[:500]
        reference_log_p, _ = marginal_log_probs(data.train[:500])


        def scores(images):
          log_p, log_posterior = marginal_log_probs(images)
          return {'bits_per_dim': ood.bits_per_dim_scores(log_p, shape, levels),
                  'typicality': ood.typicality_scores(log_p, reference_log_p),
                  'complexity': ood.complexity_scores(log_p, images, num_levels=levels),
                  'confidence': 1. - np.exp(log_posterior.max(axis=1))}


        in_scores = scores(data.test)
        ood_scores = {name: scores(images) for name, images in sets.items()}
        methods = list(in_scores)
        print(f'{"OOD set":14s}' + ''.join(f'{m:>14s}' for m in methods) + '   (AUROC)')
        for name, by_method in ood_scores.items():
          row = [ood.detection_metrics(in_scores[m], by_method[m])['auroc'] for m in methods]
          print(f'{name:14s}' + ''.join(f'{a:14.3f}' for a in row))
        '''),
    code('''
        show(ood.plots.bits_per_dim_histograms(
            in_scores['bits_per_dim'],
            {name: s['bits_per_dim'] for name, s in ood_scores.items()},
            in_name='test digits'), 'ood_histograms.png')
        show(ood.plots.roc_curves(
            in_scores, {m: {name: s[m] for name, s in ood_scores.items()} for m in methods}),
            'ood_roc.png')
        '''),
]


NOTEBOOKS = {
    '01_quickstart_2d.ipynb': QUICKSTART,
    '02_coupling_layer.ipynb': ANATOMY,
    '03_image_flow.ipynb': IMAGE_FLOW,
    '04_flow_prior.ipynb': FLOW_PRIOR,
    '05_class_conditional.ipynb': CONDITIONAL,
}


def build(cells):
  """An nbformat v4 notebook with no outputs from a list of (kind, source)."""
  nb = nbformat.v4.new_notebook()
  nb.metadata['kernelspec'] = dict(KERNELSPEC)
  nb.metadata['language_info'] = {'name': 'python'}
  for i, (kind, source) in enumerate(cells):
    make = nbformat.v4.new_markdown_cell if kind == 'markdown' else nbformat.v4.new_code_cell
    cell = make(source)
    cell['id'] = f'cell-{i:02d}'   # stable ids: regenerating gives identical files
    nb.cells.append(cell)
  nbformat.validate(nb)
  return nb


def main(argv=None):
  del argv
  for name, cells in NOTEBOOKS.items():
    path = os.path.join(HERE, name)
    nbformat.write(build(cells), path)
    print('wrote', path)


if __name__ == '__main__':
  main(sys.argv[1:])
