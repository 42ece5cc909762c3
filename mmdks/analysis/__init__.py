from .provenance import run_provenance
from .study import (NOT_RECORDED, PROVENANCE_FIELDS, PairedDifference,
                    format_difference, format_mean_std, mean_std,
                    paired_difference, provenance_changes, provenance_of,
                    runs_text, seed_ranges)

__all__ = [
    'NOT_RECORDED', 'PROVENANCE_FIELDS', 'PairedDifference',
    'format_difference', 'format_mean_std', 'mean_std', 'paired_difference',
    'provenance_changes', 'provenance_of', 'run_provenance', 'runs_text',
    'seed_ranges'
]
