from .fashion_mnist import FashionMNISTError, prepare_fashion_mnist

__all__ = ['FashionMNISTError', 'prepare_fashion_mnist']
