"""Prediction outside training: one record per input from a model's outputs, and batch
prediction that streams any number of inputs to a CSV and resumes after an interruption."""
from headstart.inference.batch import predict_to_csv
from headstart.inference.records import flat_row, records

__all__ = ["flat_row", "predict_to_csv", "records"]
