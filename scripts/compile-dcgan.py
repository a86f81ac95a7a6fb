"""Eager against torch.compile for the DCGAN encoder's forward on this CPU (same process, alternating)."""
import time, numpy as np, torch
from benchmark.encoders import build
enc = build("dcgan-random:layers=1-4")
rng = np.random.default_rng(0)
images = rng.integers(0, 256, size=(2048, 32, 32, 3), dtype=np.uint8)
enc.fit(images[:512])
batches = list(enc._inputs(images))
eager = lambda x: enc.disc.features(x, enc.chosen)
with torch.no_grad():
    t0 = time.perf_counter()
    compiled = torch.compile(eager, dynamic=False)
    compiled(batches[0]); first = time.perf_counter() - t0
    def rate(fn):
        t = time.perf_counter()
        for x in batches:
            fn(x)
        return len(images) / (time.perf_counter() - t)
    r = {"eager": [], "compiled": []}
    for _ in range(3):
        r["eager"].append(rate(eager)); r["compiled"].append(rate(compiled))
print(f"compile + first call {first:.1f} s; eager {max(r['eager']):.0f} img/s; compiled {max(r['compiled']):.0f} img/s "
      f"(best of 3, alternating; {len(images)} images, micro-batches of {len(batches[0])}, {batches[0].dtype})")
