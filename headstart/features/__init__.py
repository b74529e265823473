"""The content-addressed feature cache: it runs a model over data, so it sits above data/ and
backbones/, not inside data/."""
from headstart.features.cache import FeatureCache, digests, extract_features

__all__ = ["FeatureCache", "digests", "extract_features"]
