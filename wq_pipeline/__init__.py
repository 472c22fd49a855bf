"""wq-pipeline: honest water-quality forecasting."""
__version__ = "0.1.0"
