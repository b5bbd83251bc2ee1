"""The web pages served by the API process: the swipe feed at ``/`` and the dashboard."""

from fyp.web.app import install

__all__ = ["install"]
