"""Training models that become encoders: the DCGAN and Exemplar-CNN trainers.

Also the Exemplar-CNN augmentations, checkpoints (the one reader and writer), sample grids
and the training-throughput measurement. Imports ``models``, ``data`` and ``core``; the
encoders read its checkpoints, never the other way round.
"""
