"""A simulated audience with hidden tastes that uses a running fyp API like a real app would."""

from fyp.simulator.audience import SimUser, population
from fyp.simulator.catalog import SimCatalog, SimVideo, generate, kuairand
from fyp.simulator.runner import DaySummary, SimConfig, Simulation

__all__ = [
    "DaySummary",
    "SimCatalog",
    "SimConfig",
    "SimUser",
    "SimVideo",
    "Simulation",
    "generate",
    "kuairand",
    "population",
]
