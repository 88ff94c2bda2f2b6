"""Tiling machinery with known answers: local filters stand in for the network (no TF)."""
import numpy as np
import pytest
from scipy import ndimage

from deepcontrast.models.tiling import auto_n_tiles, measure_halo, predict_tiled, tile_layout


def box_net(radius):
    """A 'network' whose receptive field is exactly (2 radius + 1) px wide, zero-padded like 'same' convs."""
    def f(x):
        size = (1,) + (2 * radius + 1,) * (x.ndim - 2) + (1,)
        return ndimage.uniform_filter(x, size=size, mode="constant").astype(np.float32)
    return f


@pytest.mark.parametrize("n,t,h,block", [(64, 4, 8, 4), (100, 3, 4, 4), (32, 1, 8, 4), (48, 5, 12, 4), (16, 8, 40, 8)])
def test_tile_layout_covers_axis_with_equal_windows_and_halo(n, t, h, block):
    n = (n // block) * block
    window, tiles = tile_layout(n, t, h, block)
    assert window % block == 0 and window <= n
    covered = np.zeros(n, int)
    for ws, cs, ce in tiles:
        assert 0 <= ws and ws + window <= n
        covered[cs:ce] += 1
        assert cs == 0 or window == n or cs - ws >= h  # context on the left unless at the border
        assert ce == n or window == n or ws + window - ce >= h
    assert np.all(covered == 1)


def test_predict_tiled_equals_untiled_when_halo_covers_receptive_field():
    rng = np.random.default_rng(0)
    x = rng.random((2, 40, 48, 1), dtype=np.float32)
    net = box_net(3)
    full = net(x)
    out = predict_tiled(net, x, (3, 2), (4, 4), 4, n_channel_out=1, max_batch=5)
    np.testing.assert_allclose(out, full, atol=1e-6)


def test_predict_tiled_with_too_small_halo_differs():
    rng = np.random.default_rng(1)
    x = rng.random((1, 40, 48, 1), dtype=np.float32)
    net = box_net(3)
    out = predict_tiled(net, x, (2, 2), (0, 0), 4, n_channel_out=1)
    assert np.abs(out - net(x)).max() > 1e-3


def test_predict_tiled_3d_and_batches():
    rng = np.random.default_rng(2)
    x = rng.random((1, 16, 24, 24, 1), dtype=np.float32)
    net = box_net(2)
    calls = []

    def counting(b):
        calls.append(b.shape[0])
        return net(b)

    out = predict_tiled(counting, x, (1, 3, 3), (4, 4, 4), 4, n_channel_out=1, max_batch=4)
    np.testing.assert_allclose(out, net(x), atol=1e-6)
    assert calls == [3, 3, 3]  # 9 windows spread evenly over the fewest calls of equal shape


def test_measure_halo_finds_the_receptive_field_of_a_box_filter():
    halo, devs = measure_halo(box_net(5), 2, 4, 20, tol=0.01, safety=0.25)
    assert halo == 8  # smallest multiple of 4 that is >= 5
    assert devs[8] < 1e-6 and devs[4] > 0.0025


def test_auto_n_tiles_respects_budget():
    bpv = 100
    shape = (64, 512, 512)
    tiles = auto_n_tiles(shape, (8, 8, 8), 4, bpv, budget_bytes=200e6)
    windows = [tile_layout(n, t, 8, 4)[0] for n, t in zip(shape, tiles)]
    assert bpv * np.prod(windows, dtype=float) <= 200e6
    assert auto_n_tiles(shape, (8, 8, 8), 4, bpv, budget_bytes=1e12) == (1, 1, 1)


def test_predict_tiled_pads_last_batch_for_prime_window_count():
    # 7 windows (prime) with up to 4 per call: 2 calls of 4 (the last one padded), not 7 calls of 1
    rng = np.random.default_rng(3)
    x = rng.random((1, 28, 16, 1), dtype=np.float32)
    net = box_net(2)
    calls = []

    def counting(b):
        calls.append(b.shape[0])
        return net(b)

    out = predict_tiled(counting, x, (7, 1), (4, 4), 4, n_channel_out=1, max_batch=4)
    np.testing.assert_allclose(out, net(x), atol=1e-6)
    assert calls == [4, 4]
