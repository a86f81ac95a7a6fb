"""Data at rest: datasets, the decoded-image cache and the feature cache.

``datasets`` finds a dataset and loads each split as uint8 images and int64 labels;
``images`` decodes image folders (once, then from the cache); ``cache`` stores encoder
features in HDF5 files that are verified on every read. This layer imports only
``benchmark.core``.
"""
