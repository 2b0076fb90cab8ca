"""Keras networks that compute the shift and log-scale of coupling layers."""

from tfp_realnvp.nets.mlp import mlp_shift_and_log_scale
from tfp_realnvp.nets.resnet import ResidualBlock
from tfp_realnvp.nets.resnet import resnet_shift_and_log_scale
from tfp_realnvp.nets.weight_norm import WeightNormConv2D

__all__ = ['mlp_shift_and_log_scale', 'resnet_shift_and_log_scale',
           'ResidualBlock', 'WeightNormConv2D']
