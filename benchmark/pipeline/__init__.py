"""Run orchestration: dataset -> encoder -> feature cache -> probe -> result row.

``extract`` runs an encoder over the splits of a dataset into the feature cache (or reads
what is cached); ``run`` is one `bench run` (and `bench compare`) end to end. Sits under
the command line and above every stage it joins: it may import ``report``, ``probe``,
``encoders``, ``data`` and ``core``.
"""
