"""bench: evaluate image representations with a linear L2-SVM probe, as in the DCGAN paper."""

__version__ = "0.1.0"
