from .metrics import BranchAccuracy

__all__ = ['BranchAccuracy']
