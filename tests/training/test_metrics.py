"""Each metric against a case whose answer is known by hand."""
import numpy as np
import pytest

from training.metrics import distribution, image, skvd, temporal


def test_psnr_of_known_error():
    ref = np.full((16, 16, 3), 0.5)
    assert image.psnr(ref + 0.1, ref) == pytest.approx(20.0)            # mse 0.01 -> 20 dB
    noise = np.where(np.indices((16, 16, 3)).sum(0) % 2, 0.05, -0.05)   # +-0.05: mse 0.0025
    assert image.psnr(ref + noise, ref) == pytest.approx(10 * np.log10(1 / 0.0025))
    assert image.psnr(ref, ref) == float("inf")


def test_ssim_identical_and_constant_images():
    rng = np.random.default_rng(0)
    a = rng.random((24, 24, 3))
    assert image.ssim(a, a) == pytest.approx(1.0)
    # Constant images: no variance, so SSIM = (2 m1 m2 + C1) / (m1^2 + m2^2 + C1).
    c1 = 0.01 ** 2
    expected = (2 * 0.2 * 0.6 + c1) / (0.2 ** 2 + 0.6 ** 2 + c1)
    assert image.ssim(np.full((16, 16, 3), 0.2), np.full((16, 16, 3), 0.6)) == pytest.approx(expected, rel=1e-9)
    assert image.ssim(a, 1 - a) < 0


def test_kid_hand_computed_case():
    x, y = np.array([[1.0], [2.0]]), np.array([[0.0], [3.0]])
    k = lambda a, b: (a * b + 1) ** 3            # d = 1
    kxx = 2 * k(1, 2) / 2                        # off-diagonal pairs, mean over m(m-1) = 2
    kyy = 2 * k(0, 3) / 2
    kxy = (k(1, 0) + k(1, 3) + k(2, 0) + k(2, 3)) / 4
    assert distribution.polynomial_mmd2(x, y) == pytest.approx(kxx + kyy - 2 * kxy)


def test_kid_of_same_distribution_is_about_zero_and_of_shifted_is_not():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(400, 16)), rng.normal(size=(400, 16))
    same, _ = distribution.kid(a, b, subsets=10, subset_size=200)
    shifted, _ = distribution.kid(a, b + 1.0, subsets=10, subset_size=200)
    assert abs(same) < 0.02 and shifted > 0.5


def test_frechet_distance_of_gaussians():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(20000, 3))
    b = rng.normal(size=(20000, 3)) * 2.0 + np.array([1.0, 0.0, -2.0])
    # Diagonal covariances: ||mu diff||^2 + sum (s1 - s2)^2 = 5 + 3 * (1 - 2)^2 = 8.
    assert distribution.frechet_distance(a, b) == pytest.approx(8.0, rel=0.03)
    assert distribution.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def mean_colour_features(images):
    return np.stack([np.concatenate([im.mean(axis=(0, 1)), im.std(axis=(0, 1))]) for im in images])


def test_skvd_pairs_only_semantically_aligned_crops():
    rng = np.random.default_rng(3)
    images = [rng.random((64, 64, 3)) for _ in range(6)]
    labels = [np.zeros((64, 64), np.int64) for _ in range(6)]
    same = skvd.skvd(images, labels, images, labels, mean_colour_features, seed=0)
    assert same["pairs"] == 6 and abs(same["skvd_x1000"]) < 50
    other = [np.ones((64, 64), np.int64) for _ in range(6)]
    assert skvd.skvd(images, labels, images, other, mean_colour_features)["pairs"] == 0
    side = skvd.random_crop_box(64, 128, np.random.default_rng(0))[2]
    assert side == int(np.sqrt(64 * 128 / 8))   # 1/8 of the image area


def test_warping_error_is_zero_for_motion_explained_change():
    rng = np.random.default_rng(4)
    texture = rng.random((40, 60, 3))
    previous, current = texture[:, :50], texture[:, 3:53]   # the view pans 3 px right
    motion = np.zeros((40, 50, 4), np.float32)
    motion[..., 0] = 3.0     # the pixel at column c was at column c + 3 in the previous frame
    motion[..., 2] = 3.0     # ZW: the same pan towards the next frame (forward-backward check)
    assert temporal.warping_error([previous, current], [motion, motion]) == pytest.approx(0.0, abs=1e-10)
    still = np.zeros_like(motion)
    assert temporal.warping_error([previous, current], [still, still]) > 0.05
    motion[..., 1] = 2.0     # and y up: row r came from row r - 2
    motion[..., 3] = 2.0
    prev2 = texture[2:38, :50]
    cur2 = texture[0:36, 3:53]
    assert temporal.warping_error([prev2, cur2], [motion[:36], motion[:36]]) == pytest.approx(0.0, abs=1e-10)


def test_warping_error_masks_what_a_moving_object_uncovers():
    """Static background, a box moving 4 px right: the pixels it uncovers have no past; the
    forward-backward check of Lai et al. leaves them out, the box itself is compared."""
    rng = np.random.default_rng(5)
    background = rng.random((30, 40, 3))
    box = rng.random((8, 8, 3))

    def frame(x):
        image = background.copy()
        image[10:18, x:x + 8] = box
        motion = np.zeros((30, 40, 4), np.float32)
        motion[10:18, x:x + 8, 0] = -4.0     # XY: the box came from the left
        motion[10:18, x:x + 8, 2] = -4.0     # ZW: and goes right
        return image, motion
    (previous, previous_motion), (current, motion) = frame(10), frame(14)
    assert temporal.warping_error([previous, current], [previous_motion, motion]) == pytest.approx(0.0, abs=1e-10)
    sampler, mask = temporal.occlusion_mask(motion, previous_motion)
    assert not mask[10:18, 10:14].any()          # uncovered: masked
    assert mask[11:17, 16:20].all() and mask[:5].all()   # the box inside its motion boundary
    # Without the mask (zero flow everywhere) the same pair has a clear error.
    flat = np.zeros_like(motion)
    assert temporal.warping_error([previous, current], [flat, flat]) > 0.01


def test_the_pixels_without_a_past_split_into_uncovered_and_motion_boundary():
    """A box moving 4 px right over a still background: the strip it uncovers is `uncovered`
    (issue 12's ghosting region), the box's own edge pixels are a motion boundary, and the two
    together are exactly what the warping error leaves out."""
    motion = np.zeros((30, 40, 4), np.float32)
    previous_motion = np.zeros_like(motion)
    motion[10:18, 14:22, 0] = -4.0
    motion[10:18, 14:22, 2] = -4.0
    previous_motion[10:18, 10:18, 0] = -4.0
    previous_motion[10:18, 10:18, 2] = -4.0
    uncovered, boundary = temporal.regions_without_past(motion, previous_motion)
    _, mask = temporal.occlusion_mask(motion, previous_motion)
    assert uncovered[10:18, 10:14].all()
    assert not uncovered[:, 22:].any() and not uncovered[:5].any()
    assert boundary[10:18, 21].all() and boundary[9, 15:20].all()
    assert not (uncovered & boundary).any()
    np.testing.assert_array_equal(uncovered | boundary, ~mask)
