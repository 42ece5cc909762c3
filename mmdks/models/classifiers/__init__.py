from .dks_classifier import DKSClassifier

__all__ = ['DKSClassifier']
