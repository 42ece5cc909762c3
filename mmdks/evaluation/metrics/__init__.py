from .branch_accuracy import BranchAccuracy

__all__ = ['BranchAccuracy']
