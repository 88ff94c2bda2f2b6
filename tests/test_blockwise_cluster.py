"""Blockwise prediction on a 2-worker dask LocalCluster (processes): same result, survives a worker dying."""
import os
import signal
import threading
import time

import numpy as np
import pytest

pytest.importorskip("zarr")
distributed = pytest.importorskip("distributed")
import zarr  # noqa: E402

from deepcontrast.data import synthetic_tissue  # noqa: E402

from test_blockwise import seeded_model  # noqa: E402


def _kill_when_started(out, client, state):
    """SIGKILL one worker process (started by this test) as soon as some, not all, blocks are done."""
    pids = state["pids"] = client.run(os.getpid)
    while not state.get("stop"):
        try:
            done = int(zarr.open_group(str(out), mode="r")["blocks_done"][...].sum())
        except Exception:  # not created yet
            done = 0
        if done >= 2:
            worker = sorted(client.scheduler_info()["workers"])[0]
            state["done_at_kill"] = done
            os.kill(pids[worker], signal.SIGKILL)
            return
        time.sleep(0.01)


def _n_built():
    from deepcontrast.models import blockwise

    return blockwise._N_BUILT


def pids_now(client):
    client.wait_for_workers(2, timeout=60)
    return client.run(os.getpid)


@pytest.mark.slow
def test_local_cluster_with_a_worker_killed_gives_the_in_process_result(tmp_path):
    model = seeded_model("YX", 3, normalize_per_slice=True)
    volume = (synthetic_tissue((32, 64, 64), rng=1)[0] * 1000).astype(np.uint16)
    here = model.predict_blockwise(volume, "ZYX", tmp_path / "here.zarr", n_iter=2, block_size=(1, 64, 64))[...]
    out = tmp_path / "cluster.zarr"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        state = {}
        killer = threading.Thread(target=_kill_when_started, args=(out, client, state))
        killer.start()
        try:
            result = model.predict_blockwise(volume, "ZYX", out, n_iter=2, block_size=(1, 64, 64), client=client)
        finally:
            state["stop"] = True
            killer.join()
        assert 2 <= state["done_at_kill"] < 32  # the worker died mid-run
        builds = client.run(_n_built)
        assert pids_now(client) != state["pids"]  # the killed worker was replaced
    assert all(n <= 1 for n in builds.values())  # each (surviving or restarted) worker built the model once
    assert zarr.open_group(str(out), mode="r")["blocks_done"][...].all()
    got = result[...]
    span = float(here.max() - here.min())
    assert np.abs(got - here).max() <= 1e-5 * span  # same as in-process, up to float round-off
