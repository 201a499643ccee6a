"""Figures (matplotlib, headless) and a static HTML report."""
from .html import Report

__all__ = ["Report"]
