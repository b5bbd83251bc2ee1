"""fyp: an open-source For You engine for short-video apps."""

__version__ = "0.1.0"
