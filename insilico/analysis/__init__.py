"""Comparisons and statistics of unit responses: selectivity, (later) RSA, encoding, similarity."""
