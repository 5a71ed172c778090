"""Metrics, calibration, the reject/review/approve policy and reports."""
