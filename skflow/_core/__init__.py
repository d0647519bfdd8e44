"""The torch core of skflow: transforms, flows and the training loop. Never imports scikit-learn."""

from .couplings import AffineCoupling, SplineCoupling
from .flow import Flow, build_flow, flow_from_config, standard_normal_log_prob
from .train import TrainConfig, TrainingDivergedError, TrainResult, train_flow
from .transforms import ActNorm, AsinhTails, LULinear, Permutation, Standardize, ToUnbounded, Transform

__all__ = [
    "ActNorm",
    "AsinhTails",
    "AffineCoupling",
    "Flow",
    "LULinear",
    "Permutation",
    "SplineCoupling",
    "Standardize",
    "ToUnbounded",
    "TrainConfig",
    "TrainResult",
    "TrainingDivergedError",
    "Transform",
    "build_flow",
    "flow_from_config",
    "standard_normal_log_prob",
    "train_flow",
]
