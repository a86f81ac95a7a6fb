"""Network definitions shared by the trainers and the encoders: DCGAN and Exemplar-CNN.

Architectures, layers and initialisation only; no training loops and no feature
extraction. Imports only ``benchmark.core``.
"""
