"""Reading datasets, preprocessing, splits and the feature cache."""
from headstart.data._base import LabeledData
from headstart.data.feature_cache import FeatureCache
from headstart.data.sources import read_data
from headstart.data.splits import stratified_split

__all__ = ["FeatureCache", "LabeledData", "read_data", "stratified_split"]
