"""Filters: the only stages that drop candidates (safety, negatives, never-repeat)."""
