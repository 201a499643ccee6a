"""Figures for the report: filters, activation statistics, tuning, lesions, receptive fields, stimulus synthesis,
model sites against brain regions.

Every function returns a matplotlib Figure drawn in the shared style of :mod:`insilico.report.style` (applied on
import): titles, axis labels with units, legends beside the data, integer ticks for counts and time steps,
small multiples instead of overlaid histograms, and a caption under the figure where the reader needs one.
"""
from .. import style
from ._common import FAILED_COLOR
from .brain import site_region_heatmap
from .images import exemplar_grid, image_rows, visualization_failed
from .lesions import ablation_curves, lesion_sweep
from .synthesis import (
    accuracy_per_time_step,
    accuracy_vs_eps,
    controversial_acceptance,
    controversial_images,
    metamers,
)
from .units import (
    bandwidth_comparison,
    filters,
    modulation_histograms,
    osi_histograms,
    responsive_units,
    rf_size_vs_depth,
    site_statistics,
    tuning_curves,
)

style.use()

__all__ = ["FAILED_COLOR", "ablation_curves", "accuracy_per_time_step", "accuracy_vs_eps", "bandwidth_comparison",
           "controversial_acceptance", "controversial_images", "exemplar_grid", "filters", "image_rows",
           "lesion_sweep", "metamers", "modulation_histograms", "osi_histograms", "responsive_units",
           "rf_size_vs_depth", "site_region_heatmap", "site_statistics", "tuning_curves", "visualization_failed"]
