"""Keras models: the FECA layer, the (FECA-)LSTM forecaster builder, training and prediction."""

from wq_pipeline.models.feca import FECA, dct_matrix
from wq_pipeline.models.lstm import build_forecaster
from wq_pipeline.models.train import TrainResult, fit_forecaster, predict

__all__ = ["FECA", "TrainResult", "build_forecaster", "dct_matrix", "fit_forecaster", "predict"]
