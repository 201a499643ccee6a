"""Comparisons and statistics of unit responses: selectivity, tuning, RSA, encoding models, representational
similarity, dimensionality and Gabor fits; :mod:`.stats` holds the Pearson correlation and the ranks they share."""
