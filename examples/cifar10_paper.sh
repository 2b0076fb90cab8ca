#!/usr/bin/env bash
# The Real NVP paper's CIFAR-10 setup (Dinh, Sohl-Dickstein & Bengio, "Density estimation
# using Real NVP", ICLR 2017, section 4.1, https://arxiv.org/abs/1605.08803): 32x32x3
# images, one squeeze (2 scales), s/t ResNets of 8 residual blocks with 64 features,
# batch 64, Adam 1e-3, L2 5e-5 on the s-scales, gradient clipping, random horizontal
# flips, full epochs; checkpoints every 1000 steps. The paper reports 3.49 bits/dim on
# the test set after about 100 epochs on a GPU: far out of reach of a 2-core CPU.
#
# Data: tensorflow-datasets downloads CIFAR-10; offline, give a .npz with uint8 arrays
# x_train (50000, 32, 32, 3) and x_test (10000, 32, 32, 3):
#   CIFAR10_NPZ=/path/to/cifar10.npz bash examples/cifar10_paper.sh
# 2000 of the training images are held out for validation: they pick the best
# checkpoint, which the SavedModel is exported from.
# Extra arguments go to the training job (examples/train_mnist.py), e.g. --resume,
# --mixed-precision bfloat16, --jit, --output-dir. Several GPUs are used automatically
# (MirroredStrategy, the batch of 64 split over them); TF_CONFIG selects
# MultiWorkerMirroredStrategy.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python examples/train_mnist.py \
  --dataset cifar10 ${CIFAR10_NPZ:+--data-dir "$CIFAR10_NPZ"} \
  --num-scales 2 --hidden-channels 64 --num-res-blocks 8 \
  --batch-size 64 --lr 1e-3 --l2 5e-5 --clip-norm 100 --horizontal-flip \
  --epochs 100 --steps-per-epoch 0 --checkpoint-every 1000 \
  --temperature 1.0 --output-dir runs/cifar10_paper "$@"
