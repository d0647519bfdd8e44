"""The torch core of skflow: transforms, flows and the training loop. Never imports scikit-learn."""

from .base import GaussianMixtureBase, StandardNormal, StudentTMixtureBase, standard_normal_log_prob
from .couplings import AffineCoupling, SplineCoupling
from .fixed import AsinhTails, Standardize, ToUnbounded, YeoJohnson
from .flow import Flow, FlowSpec, build_flow, flow_from_config, preprocessing_layers, upgrade_version_1
from .mixture_cdf import MixtureCDFCoupling
from .train import Rows, TrainConfig, Trainer, TrainingDivergedError, TrainResult, train_flow
from .transforms import IndexedContext, LinearShiftNumbers, LULinear, Permutation, Transform

__all__ = [
    "AsinhTails",
    "AffineCoupling",
    "Flow",
    "GaussianMixtureBase",
    "StudentTMixtureBase",
    "FlowSpec",
    "LinearShiftNumbers",
    "LULinear",
    "MixtureCDFCoupling",
    "Permutation",
    "SplineCoupling",
    "StandardNormal",
    "Standardize",
    "ToUnbounded",
    "YeoJohnson",
    "IndexedContext",
    "Rows",
    "TrainConfig",
    "Trainer",
    "TrainResult",
    "TrainingDivergedError",
    "Transform",
    "build_flow",
    "flow_from_config",
    "preprocessing_layers",
    "standard_normal_log_prob",
    "train_flow",
    "upgrade_version_1",
]
