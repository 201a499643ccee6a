"""Experiments on units, each a pure compiled core plus a wrapper that returns labelled xarray results."""
