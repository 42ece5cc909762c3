from .classifier_names import (ENSEMBLE, MAIN, branch_name, classifier_names,
                               classifier_of, classifier_order)

__all__ = [
    'ENSEMBLE', 'MAIN', 'branch_name', 'classifier_names', 'classifier_of',
    'classifier_order'
]
