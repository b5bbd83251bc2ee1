"""Candidate sources: each finds videos for a request, with a quota and a reason code."""
