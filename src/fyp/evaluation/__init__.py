"""Offline evaluation: splits, top-K metrics (accuracy beside diversity), and reports."""
