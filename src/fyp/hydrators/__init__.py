"""Candidate hydrators: catalog data, online counters, ranker features."""
