"""Tile planning and blending (numpy only)."""
import numpy as np
import pytest

from neural_core import tiling


@pytest.mark.parametrize("length,tile,overlap,multiple", [
    (600, 256, 64, 32), (400, 256, 64, 32), (2160, 1024, 96, 32), (1000, 100, 20, 1), (257, 256, 64, 32),
])
def test_spans_cover_the_axis_with_aligned_starts_and_enough_overlap(length, tile, overlap, multiple):
    spans = tiling.axis_spans(length, tile, overlap, multiple)
    assert spans[0][0] == 0 and spans[-1][1] == length
    assert all(start % multiple == 0 for start, _ in spans)
    assert all(end - start <= tile + multiple - 1 for start, end in spans)
    for (s0, e0), (s1, e1) in zip(spans, spans[1:]):
        assert s1 > s0, "no duplicate tiles"
        assert e0 - s1 >= overlap, "neighbours overlap by at least the requested amount"


def test_a_frame_within_one_tile_is_one_tile_without_inner_edges():
    tiles = tiling.plan_tiles(200, 300, 512, 64, 32)
    assert tiles == [tiling.Tile(0, 200, 0, 300, False, False, False, False)]
    assert np.all(tiling.blend_weights(tiles[0], 64) == 1.0)


def test_aligned_geometry_rounds_to_the_multiple():
    assert tiling.aligned_tile_geometry(1000, 90, 32) == (992, 96)
    assert tiling.aligned_tile_geometry(256, 64, 1) == (256, 64)
    assert tiling.aligned_tile_geometry(128, 128, 32) == (128, 64)  # at most half a tile
    assert tiling.aligned_tile_geometry(10, 128, 32) == (64, 32)


def test_opposite_ramps_over_an_exact_overlap_sum_to_one():
    rise = tiling._ramp(64, 64, fade_start=True, fade_end=False)
    fall = tiling._ramp(64, 64, fade_start=False, fade_end=True)
    np.testing.assert_allclose(rise + fall, 1.0, atol=1e-6)
    assert np.all(rise[:16] == 0) and rise[16] > 0, "the 16 px nearest the edge are dropped"


def test_blending_tiles_of_an_image_reproduces_it_exactly():
    rng = np.random.default_rng(0)
    image = rng.random((3, 400, 600), dtype=np.float32)
    tiles = tiling.plan_tiles(400, 600, 256, 64, 32)
    assert len(tiles) == 6
    blender = tiling.TileBlender(3, 400, 600, 64)
    for tile in tiles:
        blender.add(tile, image[(slice(None), *tile.slices)])
    np.testing.assert_allclose(blender.result(), image, rtol=1e-5)


def test_blend_favours_the_tile_whose_interior_a_pixel_is_in():
    """Two tiles that disagree: at each tile's frame-border side its own value wins outright,
    and across the overlap the blend moves monotonically from one to the other."""
    tiles = tiling.plan_tiles(64, 384, 256, 128, 32)
    assert len(tiles) == 2
    blender = tiling.TileBlender(1, 64, 384, 128)
    for value, tile in zip((0.0, 1.0), tiles):
        blender.add(tile, np.full((1, *tile.shape), value, np.float32))
    row = blender.result()[0, 0]
    assert row[0] == 0.0 and row[-1] == 1.0
    assert np.all(np.diff(row) >= -1e-6)
    assert 0.4 < row[(tiles[1].x0 + tiles[0].x1) // 2] < 0.6
