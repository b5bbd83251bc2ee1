"""Selectors: choose and order the page (score, diversity, creator spacing, exploration)."""
