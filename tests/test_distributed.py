"""Extraction under torchrun: every rank extracts its share, rank 0 writes one cache file equal to one process's."""

import os
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from benchmark.data.cache import FeatureCache
from benchmark.data.datasets import Split
from benchmark.encoders import registry
from benchmark.pipeline.extract import extract
from conftest import class_images

SPECS = ("dcgan-random:arch=small,precision=float32",  # fits on every rank: batchnorm sums over ranks
         "kmeans:k=8,patches=2000,iters=3,compile=false")  # fits on rank 0, its state sent to the others


def splits():
    x, y = class_images(9, seed=0)  # 90 training images: uneven shares over 2 ranks are fine
    xt, yt = class_images(3, seed=1)
    return {"train": Split(x, y), "test": Split(xt, yt)}


def _rank(rank, world, port, cache_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    for spec in SPECS:
        got = extract(registry.build(spec), "toy", splits(), FeatureCache(cache_dir), batch_size=16,
                      log=lambda *_: None)
        assert set(got.features) == {"train", "test"}  # rank 0 wrote and checked them; every rank reads its share
    torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_processes_extract_what_one_process_does(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(_rank, args=(2, port, tmp_path / "two"), nprocs=2, start_method="spawn")
    for spec in SPECS:
        one = extract(registry.build(spec), "toy", splits(), FeatureCache(tmp_path / "one"), batch_size=16,
                      log=lambda *_: None).features
        two = extract(registry.build(spec), "toy", splits(), FeatureCache(tmp_path / "two"), batch_size=16,
                      log=lambda *_: None)
        assert two.cached  # rank 0 wrote complete, verified files under the same keys
        for name in ("train", "test"):
            np.testing.assert_allclose(two.features[name].read(), one[name].read(), rtol=1e-6, atol=1e-6)
            np.testing.assert_array_equal(two.features[name].labels(), one[name].labels())
        state_one, state_two = one["train"].encoder_state(), two.features["train"].encoder_state()
        for key in state_one:
            np.testing.assert_allclose(state_two[key], state_one[key], rtol=1e-6, atol=1e-7)
    assert not list((tmp_path / "two" / "features").glob(".*tmp*"))  # no temporaries left behind
