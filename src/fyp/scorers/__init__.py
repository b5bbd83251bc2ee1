"""Scorers: predicted actions, their blend, and the adjustments that act on feedback at once."""
