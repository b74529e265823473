"""Reading datasets, preprocessing (from a data config, never a backbone), splits, sampler."""
from headstart.data._base import LabeledData
from headstart.data.sources import read_data
from headstart.data.splits import stratified_split

__all__ = ["LabeledData", "read_data", "stratified_split"]
