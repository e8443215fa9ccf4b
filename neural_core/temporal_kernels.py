"""The temporal filter's per-pixel work, compiled (numba): what `temporal.TemporalFilter` runs
for each band of rows. The steps and the reasons for them are in `temporal`'s module doc and
TemporalSettings; this module holds only how they are computed.

Why compiled: in numpy every step is a pass over the frame, and at 1080p ~100 such passes
made the filter cost ~15 % of the network's inference (docs/temporal.md). Here a pixel's taps,
tests, weights and blend are one loop; only the neighbourhood ranges and local means are
separate (sliding windows over a band). Every kernel releases the GIL (`nogil`), so the
filter's thread pool runs one band per core; the band layout depends on the height alone, so
the output does not depend on the number of threads. Compiled code is cached (numba
`cache=True`: next to this file, or where numba.config.CACHE_DIR says; the add-on points it to
its user folder): the first use after an install compiles for ~15-25 s.

Arrays: colour is planar (3, H, W); the history record is (H * W, 4) (RGB, age); the fields
are (FIELDS, H * W); `motion` is the Vector pass as (4, H, W) planes (the memory layout of the
frames that Blender and the EXR reader give).
"""
from __future__ import annotations

import numba
import numpy as np

compiled = numba.njit(cache=True, nogil=True)
# Minimum and maximum only: no value changes, but the loops may use vector min/max instructions.
RANGE_MATH = {"nnan", "ninf", "nsz"}
compiled_range = numba.njit(cache=True, nogil=True, fastmath=RANGE_MATH)
# One step of a range over a row, inlined where it is used: the compiler then sees the arrays'
# loop and runs it on vector units (an array variable reassigned in a loop kept it scalar).
range_step = numba.njit(cache=True, nogil=True, fastmath=RANGE_MATH, inline="always")
# Loops over a band's pixels and the helpers they inline run without numba's reference
# counting (they allocate nothing): with it, each helper call that passes arrays costs atomic
# counter updates, ~40 ns, more than the pixel's arithmetic. Scratch arrays are allocated by
# the kernel that calls the loop once per band.
per_pixel = numba.njit(cache=True, nogil=True, _nrt=False, inline="always")
pixel_loop = numba.njit(cache=True, nogil=True, _nrt=False)

AGE = 3
F_COL, F_ROW, DEPTH, ID, ONE_SURFACE, LIGHTING, MOTION_EDGE, EMITTER = 0, 1, 2, 3, 4, 5, 6, 7
FIELDS = 8
# What the frame has and what the history was recorded with (`flags`).
HAS_DEPTH, HAS_IDS, PAST_HAS_DEPTH, PAST_HAS_IDS, ONE_SURFACE_SHORTCUT, HAS_NOISE, HAS_EMISSION = range(7)
FLAGS = 7
# TemporalSettings as float32 (`params`), in this order.
PARAMS = ("min_weight", "start_trust", "partial_footprint_bilinear", "magnification_power",
          "clamp_radius", "depth_tolerance", "edge_history_weight", "lighting_radius",
          "lighting_floor", "lighting_pixel_limit", "lighting_gain", "lighting_memory",
          "fb_relative", "fb_absolute", "stale_edge_radius", "noise_bound", "noise_spread", "emitter_radius",
          "edge_noise", "edge_weight_low", "edge_weight_high", "presharpen", "lighting_fast", "fast_motion",
          "emitters_unbound", "emitter_memory", "sampled_edge", "clamp_margin", "drop_uncovered",
          "lighting_noise_limit", "nearer_moved_away", "partial_moves_alike", "noise_headroom",
          "full_history_noise", "depth_far")
# Inside the kernels both are one tuple of scalars, `cfg` (flags first, then params): reading a
# small array in a per-pixel helper costs ~100x what reading a tuple does.
(MIN_WEIGHT, START_TRUST, PARTIAL_BILINEAR, MAGNIFICATION, CLAMP_RADIUS, DEPTH_TOLERANCE,
 EDGE_WEIGHT, LIGHTING_RADIUS, LIGHTING_FLOOR, LIGHTING_PIXEL_LIMIT, LIGHTING_GAIN,
 LIGHTING_MEMORY, FB_RELATIVE, FB_ABSOLUTE, STALE_EDGE_RADIUS, NOISE_BOUND, NOISE_SPREAD, EMITTER_RADIUS,
 EDGE_NOISE, EDGE_WEIGHT_LOW, EDGE_WEIGHT_HIGH, PRESHARPEN, LIGHTING_FAST, FAST_MOTION,
 EMITTERS_UNBOUND, EMITTER_MEMORY, SAMPLED_EDGE, CLAMP_MARGIN, DROP_UNCOVERED, LIGHTING_NOISE_LIMIT,
 NEARER_MOVED_AWAY, PARTIAL_MOVES_ALIKE, NOISE_HEADROOM, FULL_HISTORY_NOISE, DEPTH_FAR) = range(
    FLAGS, FLAGS + len(PARAMS))

ONE, HALF, ZERO, TWO = np.float32(1.0), np.float32(0.5), np.float32(0.0), np.float32(2.0)
LUMINANCE = (np.float32(0.2126), np.float32(0.7152), np.float32(0.0722))     # Rec. 709
EDGE_SLOPE, EDGE_FLOOR = np.float32(0.04), np.float32(0.008)
BLOCK_FLOW_RELATIVE, BLOCK_FLOW_ABSOLUTE = np.float32(0.0025), np.float32(0.04)
NOISE_BLOCK = 4
# Darker than this (square-root luminance) the noise is not scaled up further
# (TemporalSettings.full_history_noise): a black pixel's noise is ~0 in both units.
SQRT_FLOOR = np.float32(0.05)
ALMOST_ONE = np.float32(1.0 - 1e-6)
TINY = np.float32(1e-6)


@per_pixel
def config(flags, params):
    """`flags` (FLAGS,) and `params` (PARAMS,) as the kernels' `cfg` tuple."""
    return (bool(flags[0]), bool(flags[1]), bool(flags[2]), bool(flags[3]), bool(flags[4]),
            bool(flags[5]), bool(flags[6]),
            params[0], params[1], params[2], params[3], params[4], params[5], params[6], params[7],
            params[8], params[9], params[10], params[11], params[12], params[13], params[14],
            params[15], params[16], params[17], params[18], params[19], params[20], params[21],
            params[22], params[23], params[24], params[25], params[26], params[27], params[28], params[29], params[30],
            params[31], params[32], params[33], params[34])


# -- one pixel's surface -----------------------------------------------------------------

@per_pixel
def surface_depth(depth, cfg, i, j):
    return min(depth[i, j], cfg[DEPTH_FAR]) if cfg[HAS_DEPTH] else ONE


@per_pixel
def surface_id(ids, cfg, i, j):
    return round_half_even(ids[i, j]) if cfg[HAS_IDS] else ZERO


@per_pixel
def round_half_even(x):
    """np.rint of a float32 scalar (np.rint itself would make an array per call)."""
    below = np.floor(x)
    rest = x - below
    if rest > HALF or (rest == HALF and below % 2 != 0):
        return below + ONE
    return below


@compiled
def band_surfaces(depth, ids, cfg, r0, r1, height, width):
    """Each pixel's surface depth and id (`surface_depth`, `surface_id`) for rows r0..r1 and the
    row below the band, where the frame has one -> (2, rows, W): what a record's tests compare,
    computed once per pixel."""
    last = min(r1 + 1, height)
    out = np.empty((2, last - r0, width), np.float32)
    for i in range(r0, last):
        for j in range(width):
            out[0, i - r0, j] = surface_depth(depth, cfg, i, j)
            out[1, i - r0, j] = surface_id(ids, cfg, i, j)
    return out


@per_pixel
def alike(surfaces, cfg, k, j, l, m):
    """Band pixel (l, m) shows the surface of (k, j) (`band_surfaces`): same id, depth within
    half the tolerance."""
    reference = surfaces[0, k, j]
    close = not abs(surfaces[0, l, m] - reference) > HALF * cfg[DEPTH_TOLERANCE] * reference
    return close & (surfaces[1, l, m] == surfaces[1, k, j])


@per_pixel
def one_surface_block(surfaces, cfg, j, k):
    """The 2x2 block with band pixel (k, j) at its top left shows one surface (`surfaces` holds
    the row below; the frame's last row and column are not asked)."""
    return (alike(surfaces, cfg, k, j, k, j + 1) & alike(surfaces, cfg, k, j, k + 1, j)
            & alike(surfaces, cfg, k + 1, j, k + 1, j + 1))


# -- the Vector pass around one pixel ------------------------------------------------------

@per_pixel
def moves_as_one(motion, i, j):
    """The forward flows of the 2x2 block at (i, j) (top left) agree to within ~0.2 px + 5 %:
    a footprint on such a block that passes the forward-backward test at its top-left tap with
    half the tolerance passes it bilinearly too (for motion up to ~2 px per frame; beyond, nearly
    so), so `footprint_uncovered` is not asked there."""
    f_col, f_row = motion[2, i, j], motion[3, i, j]
    limit = BLOCK_FLOW_RELATIVE * (f_col * f_col + f_row * f_row) + BLOCK_FLOW_ABSOLUTE
    return (flow_within(motion, i, j + 1, f_col, f_row, limit) & flow_within(motion, i + 1, j, f_col, f_row, limit)
            & flow_within(motion, i + 1, j + 1, f_col, f_row, limit))


@per_pixel
def flow_within(motion, i, j, f_col, f_row, limit):
    """The forward flow at (i, j) is within sqrt(limit) of (f_col, f_row)."""
    d_col, d_row = motion[2, i, j] - f_col, motion[3, i, j] - f_row
    return d_col * d_col + d_row * d_row <= limit


@per_pixel
def central_difference(motion, channel, sign, i, j, axis, height, width):
    """np.gradient of sign * motion[..., channel] along `axis` (0 rows, 1 columns) at (i, j):
    central inside, one-sided at the ends, 0 along an axis of one element."""
    n, at = (height, i) if axis == 0 else (width, j)
    if n < 2:
        return ZERO
    lo, hi = max(at - 1, 0), min(at + 1, n - 1)
    if axis == 0:
        a, b = sign * motion[channel, lo, j], sign * motion[channel, hi, j]
    else:
        a, b = sign * motion[channel, i, lo], sign * motion[channel, i, hi]
    difference = b - a
    return difference / TWO if hi - lo == 2 else difference


@per_pixel
def magnification(motion, i, j, height, width, power):
    """min(det J, 1)^power, J the Jacobian of p -> p + b(p) (TemporalSettings.magnification_power)."""
    det = central_difference(motion, 0, ONE, i, j, 1, height, width) + ONE
    det *= central_difference(motion, 1, -ONE, i, j, 0, height, width) + ONE
    det -= (central_difference(motion, 0, ONE, i, j, 0, height, width)
            * central_difference(motion, 1, -ONE, i, j, 1, height, width))
    return area_weight(det, power)


@per_pixel
def area_weight(det, power):
    """min(max(det, 0), 1)^power (`magnification`)."""
    det = min(max(det, ZERO), ONE)
    return det * det if power == TWO else det ** power     # powf costs more than the rest of it


@per_pixel
def motion_edge(motion, ranges_low, ranges_high, i, j, k):
    """Next to a motion boundary: the 3x3 range of the Vector pass's XY (`ranges_low`,
    `ranges_high` (2, rows, W), row k of them is row i), squared, passes 0.04 |b|^2 + 0.008
    (Lai et al.'s gradient test with the range as ~2x the gradient)."""
    spread0 = ranges_high[0, k, j] - ranges_low[0, k, j]
    spread1 = ranges_high[1, k, j] - ranges_low[1, k, j]
    b0, b1 = motion[0, i, j], motion[1, i, j]
    return spread0 * spread0 + spread1 * spread1 > EDGE_SLOPE * (b0 * b0 + b1 * b1) + EDGE_FLOOR


# -- the history's taps --------------------------------------------------------------------

@per_pixel
def tap_shows_surface(fields, cfg, tap, b_col, b_row, pixel_depth, pixel_id, scale):
    """The previous frame at flat index `tap` shows the pixel's surface (forward-backward check,
    id, depth); `scale` 0.5 halves every tolerance."""
    return tap_moves_alike(fields, cfg, tap, b_col, b_row, scale) and shows_surface(
        fields, cfg, tap, pixel_depth, pixel_id, scale)


@per_pixel
def shows_surface(fields, cfg, tap, pixel_depth, pixel_id, scale):
    """The previous frame at flat index `tap` has the pixel's id and depth (`tap_shows_surface`
    without the forward-backward check)."""
    if cfg[HAS_IDS] and cfg[PAST_HAS_IDS] and fields[ID, tap] != pixel_id:
        return False
    if cfg[HAS_DEPTH] and cfg[PAST_HAS_DEPTH]:
        return abs(fields[DEPTH, tap] - pixel_depth) <= cfg[DEPTH_TOLERANCE] * scale * pixel_depth
    return True


@per_pixel
def tap_moves_alike(fields, cfg, tap, b_col, b_row, scale):
    """Lai et al.'s forward-backward check: the previous frame's forward flow at flat index `tap`
    brings it back to the pixel (b: the pixel's backward flow)."""
    return flows_cancel(cfg, b_col, b_row, fields[F_COL, tap], fields[F_ROW, tap], scale)


@per_pixel
def flows_cancel(cfg, b_col, b_row, f_col, f_row, scale):
    """Lai et al.'s test: |b + f|^2 <= fb_relative (|b|^2 + |f|^2) + fb_absolute scale^2."""
    s_col, s_row = b_col + f_col, b_row + f_row
    magnitude = b_col * b_col + b_row * b_row + f_col * f_col + f_row * f_row
    return s_col * s_col + s_row * s_row <= cfg[FB_RELATIVE] * magnitude + cfg[FB_ABSOLUTE] * scale * scale


@per_pixel
def footprint_uncovered(fields, cfg, taps, bilinear, b_col, b_row):
    """Lai et al.'s forward-backward check fails with the previous frame's forward flow read
    bilinearly over the footprint (as the warping-error metric reads it): the pixel's surface
    was hidden a frame ago (or the footprint straddles a surface that moved otherwise)."""
    f_col = ZERO
    f_row = ZERO
    for k in range(4):
        f_col += bilinear[k] * fields[F_COL, taps[k]]
        f_row += bilinear[k] * fields[F_ROW, taps[k]]
    return not flows_cancel(cfg, b_col, b_row, f_col, f_row, ONE)


@per_pixel
def left_out_behind(fields, cfg, taps, bilinear, kept, pixel_depth):
    """A tap of the footprint that was left out lies behind the pixel's surface: the pixel is
    the edge of an object that moved over its background, not something it uncovered."""
    if not (cfg[HAS_DEPTH] and cfg[PAST_HAS_DEPTH]):
        return False
    limit = pixel_depth * (ONE + cfg[DEPTH_TOLERANCE])
    for k in range(4):
        if bilinear[k] > 0 and kept[k] == 0 and fields[DEPTH, taps[k]] > limit:
            return True
    return False


@per_pixel
def sampled_edge(fields, cfg, taps, bilinear, b_col, b_row, pixel_depth, pixel_id, edge_now, width, height):
    """No tap shows the pixel's surface, but every tap moves with the pixel, and the pixel's 2x2
    block is not one surface now (`edge_now`) or one of the 4x4 pixels around its footprint
    showed its surface a frame ago: an anti-aliased edge whose id and depth flipped with the
    sample they come from, not a disocclusion or a surface new to the place
    (TemporalSettings.sampled_edge)."""
    if not moves_alike_everywhere(fields, cfg, taps, bilinear, b_col, b_row):
        return False
    if edge_now:
        return True
    row, col = taps[0] // width, taps[0] % width
    for r in range(max(row - 1, 0), min(row + 3, height)):
        for c in range(max(col - 1, 0), min(col + 3, width)):
            if shows_surface(fields, cfg, r * width + c, pixel_depth, pixel_id, ONE):
                return True
    return False


@per_pixel
def moves_alike_everywhere(fields, cfg, taps, bilinear, b_col, b_row):
    """Every tap of the footprint passes the forward-backward check with the pixel's flow."""
    for k in range(4):
        if bilinear[k] > 0 and not tap_moves_alike(fields, cfg, taps[k], b_col, b_row, ONE):
            return False
    return True


@per_pixel
def block_is_edge(surfaces, cfg, k, j, last_row, width):
    """The 2x2 block with band pixel (k, j) at its top left is not one surface (`surfaces`: the
    band's rows and the one below; the frame's last row and column count as edges)."""
    return last_row or j == width - 1 or not one_surface_block(surfaces, cfg, j, k)


@per_pixel
def footprint(b_col, b_row, i, j, height, width):
    """The 4 bilinear taps of (i + b_row, j + b_col): (inside the frame, top-left flat index,
    offsets to the right and down, fractions along columns and rows). The top-left tap stays
    in the last row/column but one, so all four exist (the last row/column is then read with
    weight 1 from the far taps)."""
    col = np.float32(j) + b_col
    row = np.float32(i) + b_row
    inside = col >= 0 and col <= width - 1 and row >= 0 and row <= height - 1
    c0 = min(max(np.floor(col), ZERO), np.float32(max(width - 2, 0)))
    r0 = min(max(np.floor(row), ZERO), np.float32(max(height - 2, 0)))
    f_col = min(max(col - c0, ZERO), ONE)
    f_row = min(max(row - r0, ZERO), ONE)
    right, down = min(width - 1, 1), (width if height > 1 else 0)
    return inside, int(r0) * width + int(c0), right, down, f_col, f_row


@per_pixel
def bilinear_weights(f_col, f_row):
    """The weights of the top-left, right, lower and lower-right taps at fractions f_col, f_row."""
    return (ONE - f_col) * (ONE - f_row), f_col * (ONE - f_row), (ONE - f_col) * f_row, f_col * f_row


@compiled
def footprints(d_col, d_row, row0, height, width):
    """`footprint` of every pixel of a band of rows starting at `row0` of a (height, width)
    grid, moved by (d_row, d_col) (rows, W) -> inside (N,), flat tap indices (4, N) and bilinear
    weights (4, N) (the warping-error metric's reads: the same taps as the filter's)."""
    rows, columns = d_col.shape
    inside = np.empty(rows * columns, np.bool_)
    index = np.empty((4, rows * columns), np.intp)
    weight = np.empty((4, rows * columns), np.float32)
    for i in range(rows):
        for j in range(columns):
            p = i * columns + j
            inside[p], top, right, down, f_col, f_row = footprint(d_col[i, j], d_row[i, j], row0 + i, j,
                                                                  height, width)
            index[0, p], index[1, p], index[2, p], index[3, p] = top, top + right, top + down, top + down + right
            weight[0, p], weight[1, p], weight[2, p], weight[3, p] = bilinear_weights(f_col, f_row)
    return inside, index, weight


@per_pixel
def reproject(past, fields, cfg, motion, surfaces, i, j, k, height, width, edge):
    """The previous output and age at (i, j) (row k of the band's `surfaces`), from the taps
    that show its surface -> (kept, matched share of the footprint, previous lighting change,
    R, G, B, age, stale edge: the pixel is not next to a motion edge (`edge`) but a kept tap
    was a frame ago, the brightest emitter a kept tap saw around it a frame ago)."""
    b_col, b_row = motion[0, i, j], -motion[1, i, j]
    inside, top, right, down, f_col, f_row = footprint(b_col, b_row, i, j, height, width)
    taps = (top, top + right, top + down, top + down + right)
    bilinear = bilinear_weights(f_col, f_row)
    pixel_depth, pixel_id = surfaces[0, k, j], surfaces[1, k, j]
    # Most pixels read a block the previous frame found to be one surface: one test, with half
    # the tolerances (about within them of every tap); the others test every tap.
    whole = (cfg[ONE_SURFACE_SHORTCUT] and fields[ONE_SURFACE, top] > 0
             and tap_shows_surface(fields, cfg, top, b_col, b_row, pixel_depth, pixel_id, HALF))
    w0, w1, w2, w3 = bilinear
    if not whole:
        w0 = w0 if tap_shows_surface(fields, cfg, taps[0], b_col, b_row, pixel_depth, pixel_id, ONE) else ZERO
        w1 = w1 if tap_shows_surface(fields, cfg, taps[1], b_col, b_row, pixel_depth, pixel_id, ONE) else ZERO
        w2 = w2 if tap_shows_surface(fields, cfg, taps[2], b_col, b_row, pixel_depth, pixel_id, ONE) else ZERO
        w3 = w3 if tap_shows_surface(fields, cfg, taps[3], b_col, b_row, pixel_depth, pixel_id, ONE) else ZERO
    # That tap's colour may mix in a surface that has since moved on (an anti-aliased edge).
    stale_edge = cfg[STALE_EDGE_RADIUS] > 0 and not edge and (
        (w0 > 0 and fields[MOTION_EDGE, taps[0]] > 0) or (w1 > 0 and fields[MOTION_EDGE, taps[1]] > 0)
        or (w2 > 0 and fields[MOTION_EDGE, taps[2]] > 0) or (w3 > 0 and fields[MOTION_EDGE, taps[3]] > 0))
    total = w0 + w1 + w2 + w3
    if (cfg[DROP_UNCOVERED] > 0 and not whole and footprint_uncovered(fields, cfg, taps, bilinear, b_col, b_row)
            and not left_out_behind(fields, cfg, taps, bilinear, (w0, w1, w2, w3), pixel_depth)):
        # Hidden a frame ago (TemporalSettings.drop_uncovered).
        return False, ZERO, ZERO, ZERO, ZERO, ZERO, ZERO, False, ZERO
    if inside and total < cfg[SAMPLED_EDGE] and (
            # No tap shows the surface (TemporalSettings.sampled_edge), or some do and all of the
            # footprint moves with the pixel (TemporalSettings.partial_moves_alike).
            (total == 0 and sampled_edge(fields, cfg, taps, bilinear, b_col, b_row, pixel_depth, pixel_id,
                                         block_is_edge(surfaces, cfg, k, j, i == height - 1, width),
                                         width, height))
            or (total > 0 and cfg[PARTIAL_MOVES_ALIKE] > 0
                and moves_alike_everywhere(fields, cfg, taps, bilinear, b_col, b_row))):
        # The whole footprint, at a share of the usual weight (`history_weight` scales by `total`).
        w0, w1, w2, w3 = bilinear
        total = cfg[SAMPLED_EDGE]
    if not (inside and total > 0):
        return False, total, ZERO, ZERO, ZERO, ZERO, ZERO, False, ZERO
    norm = w0 + w1 + w2 + w3
    w0, w1, w2, w3 = w0 / norm, w1 / norm, w2 / norm, w3 / norm
    t0, t1, t2, t3 = taps
    red = w0 * past[t0, 0] + w1 * past[t1, 0] + w2 * past[t2, 0] + w3 * past[t3, 0]
    green = w0 * past[t0, 1] + w1 * past[t1, 1] + w2 * past[t2, 1] + w3 * past[t3, 1]
    blue = w0 * past[t0, 2] + w1 * past[t1, 2] + w2 * past[t2, 2] + w3 * past[t3, 2]
    age = w0 * past[t0, AGE] + w1 * past[t1, AGE] + w2 * past[t2, AGE] + w3 * past[t3, AGE]
    mix = cfg[PARTIAL_BILINEAR]
    # (`norm`, not `total`: a sampled edge already reads the whole footprint.)
    if mix > 0 and norm < ALMOST_ONE and not uncovers(fields, cfg, taps, bilinear, pixel_depth, b_col, b_row):
        b0, b1, b2, b3 = bilinear
        red += mix * (b0 * past[t0, 0] + b1 * past[t1, 0] + b2 * past[t2, 0] + b3 * past[t3, 0] - red)
        green += mix * (b0 * past[t0, 1] + b1 * past[t1, 1] + b2 * past[t2, 1] + b3 * past[t3, 1] - green)
        blue += mix * (b0 * past[t0, 2] + b1 * past[t1, 2] + b2 * past[t2, 2] + b3 * past[t3, 2] - blue)
    light = fields[LIGHTING, top] if cfg[LIGHTING_GAIN] > 0 else ZERO
    emitter = ZERO
    if cfg[EMITTER_MEMORY] > 0 and emitters_widen(cfg):
        for tap, w in ((t0, w0), (t1, w1), (t2, w2), (t3, w3)):
            if w > 0:
                emitter = max(emitter, fields[EMITTER, tap])
    return True, total, light, red, green, blue, age, stale_edge, emitter


@per_pixel
def uncovers(fields, cfg, taps, bilinear, pixel_depth, b_col, b_row):
    """A tap of the footprint is nearer than the pixel and moved otherwise: what moved away must
    not bleed into what it uncovers (TemporalSettings.partial_footprint_bilinear)."""
    if not (cfg[HAS_DEPTH] and cfg[PAST_HAS_DEPTH]):
        return False
    limit = pixel_depth * (ONE - cfg[DEPTH_TOLERANCE])
    for k in range(4):
        if (bilinear[k] > 0 and fields[DEPTH, taps[k]] < limit
                and (cfg[NEARER_MOVED_AWAY] == 0 or not tap_moves_alike(fields, cfg, taps[k], b_col, b_row, ONE))):
            return True
    return False


@per_pixel
def history_weight(cfg, age, kept, total, edge, magnify, motion, i, j, width):
    """The running mean's weight of the history, before the lighting test (`edge`: next to a
    motion boundary)."""
    trust = ZERO
    if cfg[START_TRUST] and kept:
        trust = min(max(TWO - age, ZERO), ONE) * cfg[START_TRUST]
    weight = ONE - max(ONE / (age + ONE + trust), cfg[MIN_WEIGHT])
    if cfg[MAGNIFICATION]:
        weight *= magnify
    if cfg[FAST_MOTION] > 0:
        weight *= slow_share(cfg, motion, i, j, width)
    weight *= min(total, ONE)
    if edge:
        weight = min(weight, cfg[EDGE_WEIGHT_HIGH] if edges_by_noise(cfg) else cfg[EDGE_WEIGHT])
    return weight


@per_pixel
def slow_share(cfg, motion, i, j, width):
    """1 up to fast_motion x the frame's width per frame of motion, falling to 0 at twice that
    (TemporalSettings.fast_motion)."""
    speed = np.sqrt(motion[0, i, j] * motion[0, i, j] + motion[1, i, j] * motion[1, i, j]) / np.float32(width)
    return min(max(TWO - speed / cfg[FAST_MOTION], ZERO), ONE)


# -- neighbourhoods --------------------------------------------------------------------------

@compiled_range
def band_min_max(planes, r0, r1, radius, low, high):
    """(2 radius + 1)^2 minimum and maximum of (C, H, W) `planes` (the pixels that exist) for
    rows r0..r1, into `low` and `high` (C, r1 - r0, W). Repeating the frame's edge values does
    not change a minimum or maximum, so rows and columns beyond the frame read its edge. Each
    row's range along the columns is computed once; down the columns the windows double as
    along a row (`doubling_shifts`), each level a ring of its last radius + 1 rows: every buffer
    stays in the core's cache (the band's planes do not)."""
    channels, height, width = planes.shape
    shifts = doubling_shifts(2 * radius + 1)
    levels, slots, first = len(shifts), radius + 1, r0 - radius
    ring_low = np.empty((max(levels, 1), slots, width), np.float32)
    ring_high = np.empty((max(levels, 1), slots, width), np.float32)
    scratch = np.empty((4, width + 2 * radius), np.float32)
    for c in range(channels):
        for s in range(first, r1 + radius):
            slot = (s - first) % slots
            k = s - radius          # the output row whose window this row completes
            row_range(planes[c, min(max(s, 0), height - 1)], radius, shifts, scratch, ring_low[0, slot],
                      ring_high[0, slot])
            for level in range(levels):
                earlier = (s - shifts[level] - first) % slots
                if level < levels - 1:
                    pair_rows(ring_low[level, slot], ring_high[level, slot], ring_low[level, earlier],
                              ring_high[level, earlier], ring_low[level + 1, slot], ring_high[level + 1, slot],
                              width)
                elif k >= r0:
                    pair_rows(ring_low[level, slot], ring_high[level, slot], ring_low[level, earlier],
                              ring_high[level, earlier], low[c, k - r0], high[c, k - r0], width)
            if levels == 0 and k >= r0:      # radius 0: the row itself
                copy_range(ring_low[0, slot], ring_high[0, slot], low[c, k - r0], high[c, k - r0], width)


@compiled_range
def doubling_shifts(size):
    """The steps that grow a window of 1 to `size` by doubling, each pairing a window with the
    one `shift` further on: 1, 2, 3 for 7 (1 -> 2 -> 4 -> 7), 1, 1 for 3."""
    count, span = 0, 1
    while span < size:
        span += min(span, size - span)
        count += 1
    shifts = np.empty(count, np.int64)
    span = 1
    for n in range(count):
        shifts[n] = min(span, size - span)
        span += shifts[n]
    return shifts


@compiled_range
def row_range(row, radius, shifts, scratch, out_low, out_high):
    """Minimum and maximum of `row` over [m - radius, m + radius] (edge values repeated), into
    `out_low`, `out_high`: windows doubling in width by `shifts` (`doubling_shifts`), between
    scratch rows (0, 1) and (2, 3)."""
    width = row.shape[0]
    padded = width + 2 * radius
    for m in range(radius):
        scratch[0, m] = scratch[1, m] = row[0]
        scratch[0, radius + width + m] = scratch[1, radius + width + m] = row[width - 1]
    copy_range(row, row, scratch[0, radius:], scratch[1, radius:], width)
    source = 0
    for shift in shifts:
        pair_rows(scratch[source], scratch[source + 1], scratch[source, shift:], scratch[source + 1, shift:],
                  scratch[2 - source], scratch[3 - source], padded - shift)
        source = 2 - source
    copy_range(scratch[source], scratch[source + 1], out_low, out_high, width)


@range_step
def pair_rows(a_low, a_high, b_low, b_high, out_low, out_high, count):
    """out_low[m] = min(a_low[m], b_low[m]), and the maximum alike, for m < count."""
    for m in range(count):
        out_low[m] = min(a_low[m], b_low[m])
        out_high[m] = max(a_high[m], b_high[m])


@range_step
def copy_range(a_low, a_high, out_low, out_high, count):
    """out_low[m] = a_low[m], out_high[m] = a_high[m] for m < count."""
    for m in range(count):
        out_low[m] = a_low[m]
        out_high[m] = a_high[m]


@compiled
def motion_ranges(motion, r0, r1):
    """The 3x3 minimum and maximum of the Vector pass's XY over rows r0..r1 -> (2, rows, W) each
    (`motion_edge`)."""
    low = np.empty((2, r1 - r0, motion.shape[2]), np.float32)
    high = np.empty((2, r1 - r0, motion.shape[2]), np.float32)
    band_min_max(motion[:2], r0, r1, 1, low, high)
    return low, high


@per_pixel
def noise_bounded(cfg):
    """Does the noise bound apply: the frame has a noisy image and the bound is on."""
    return cfg[HAS_NOISE] and cfg[NOISE_BOUND] > 0


@per_pixel
def capped_by_noise(cfg):
    """Is the history weight capped by the render's noise: the frame has a noisy image and
    full_history_noise is on."""
    return cfg[HAS_NOISE] and cfg[FULL_HISTORY_NOISE] > 0


@per_pixel
def edges_by_noise(cfg):
    """Does the history weight next to a motion edge follow the render's noise there: the frame
    has a noisy image and edge_noise is on (else it is at most edge_history_weight)."""
    return cfg[HAS_NOISE] and cfg[EDGE_NOISE] > 0


@per_pixel
def edge_weight(cfg, noise, low, high, k, j):
    """The largest history weight next to a motion edge, from the render's `noise` there over
    the contrast of the clamp range (`low`, `high`, (3, rows, W))."""
    contrast = max(high[0, k, j] - low[0, k, j], high[1, k, j] - low[1, k, j], high[2, k, j] - low[2, k, j])
    share = cfg[EDGE_NOISE] * noise / (contrast + TINY)
    return min(max(share, cfg[EDGE_WEIGHT_LOW]), cfg[EDGE_WEIGHT_HIGH])


@per_pixel
def emitters_widen(cfg):
    """Does the clamp range reach up to the visible emitters around: the frame has an Emission
    pass and emitter_radius is on."""
    return cfg[HAS_EMISSION] and cfg[EMITTER_RADIUS] > 0


@compiled
def block_noise(noisy, image, first, last):
    """The mean square of the luminance of `noisy` - `image` ((3, H, W) each: Cycles' Noisy
    Image and its denoised Combined) over each NOISE_BLOCK^2 block (the pixels that exist) of
    block rows first..last -> (last - first, blocks across)."""
    height, width = image.shape[1], image.shape[2]
    across = (width + NOISE_BLOCK - 1) // NOISE_BLOCK
    sums = np.zeros((last - first, across), np.float32)
    for i in range(first * NOISE_BLOCK, min(last * NOISE_BLOCK, height)):
        row = sums[i // NOISE_BLOCK - first]
        for j in range(width):
            d = luminance(noisy[0, i, j] - image[0, i, j], noisy[1, i, j] - image[1, i, j],
                          noisy[2, i, j] - image[2, i, j])
            row[j // NOISE_BLOCK] += d * d
    for b in range(last - first):
        rows = min((first + b + 1) * NOISE_BLOCK, height) - (first + b) * NOISE_BLOCK
        for c in range(across):
            sums[b, c] /= rows * (min((c + 1) * NOISE_BLOCK, width) - c * NOISE_BLOCK)
    return sums


@compiled
def band_noise(noisy, image, r0, r1, spread):
    """The render's noise around rows r0..r1, per NOISE_BLOCK^2 block: the largest RMS
    (`block_noise`) over the (2 spread + 1)^2 blocks around each -> (blocks, the first block
    row). Blocks keep it to one pass over the two images, and the band's result does not depend
    on where the band starts."""
    blocks_high = (image.shape[1] + NOISE_BLOCK - 1) // NOISE_BLOCK
    first, last = r0 // NOISE_BLOCK, (r1 - 1) // NOISE_BLOCK + 1
    top, bottom = max(first - spread, 0), min(last + spread, blocks_high)
    squares = block_noise(noisy, image, top, bottom)
    planes = squares.reshape((1, squares.shape[0], squares.shape[1]))
    low = np.empty((1, last - first, squares.shape[1]), np.float32)
    high = np.empty((1, last - first, squares.shape[1]), np.float32)
    band_min_max(planes, first - top, last - top, spread, low, high)
    return np.sqrt(high[0]), first


@compiled
def band_emitters(emission, r0, r1, radius):
    """The brightest visible emitter (the Emission pass, (3, H, W), its largest channel) within
    `radius` pixels of each pixel of rows r0..r1 -> (r1 - r0, W). Most bands show none, and the
    others a few small lights: the window runs over the columns around them only."""
    height, width = emission.shape[1], emission.shape[2]
    top, bottom = max(r0 - radius, 0), min(r1 + radius, height)
    brightest = np.empty((1, bottom - top, width), np.float32)
    first, last = width, -1
    for i in range(top, bottom):
        for j in range(width):
            value = max(emission[0, i, j], emission[1, i, j], emission[2, i, j])
            brightest[0, i - top, j] = value
            if value > ZERO:
                first, last = min(first, j), max(last, j)
    out = np.zeros((1, r1 - r0, width), np.float32)
    if last >= 0:
        # Beyond `radius` of the lit columns every window holds zeros only.
        c0, c1 = max(first - radius, 0), min(last + radius + 1, width)
        part = np.ascontiguousarray(brightest[:, :, c0:c1])
        high = np.empty((1, r1 - r0, c1 - c0), np.float32)
        band_min_max(part, r0 - top, r1 - top, radius, np.empty_like(high), high)
        out[:, :, c0:c1] = high
    return out[0]


@compiled
def seen_emitters(emission, cfg, r0, r1, width):
    """`band_emitters` where the clamp range reaches up to emitters, else zeros -> (r1 - r0, W)."""
    if emitters_widen(cfg):
        return band_emitters(emission, r0, r1, int(cfg[EMITTER_RADIUS]))
    return np.zeros((r1 - r0, width), np.float32)


@compiled
def box_sum(plane, radius):
    """Sum over the (2 radius + 1)^2 values around each of the (H, W) `plane` that exist."""
    height, width = plane.shape
    rows = np.zeros((height, width), np.float32)
    for i in range(height):
        for k in range(max(i - radius, 0), min(i + radius + 1, height)):
            for m in range(width):
                rows[i, m] += plane[k, m]
    out = np.zeros((height, width), np.float32)
    for i in range(height):
        for m in range(width):
            total = ZERO
            for k in range(max(m - radius, 0), min(m + radius + 1, width)):
                total += rows[i, k]
            out[i, m] = total
    return out


@per_pixel
def luminance(r, g, b):
    """Linear colour -> Rec. 709 luminance."""
    return r * LUMINANCE[0] + g * LUMINANCE[1] + b * LUMINANCE[2]


@per_pixel
def brightness(r, g, b):
    """Linear colour -> square-root luminance (~ display units)."""
    return np.sqrt(max(luminance(r, g, b), ZERO))


@compiled
def lighting_gate(cfg, change, seen, light):
    """The band's local brightness change from the history (`change`, (rows, W), 0 where not
    `seen`), averaged over 2x2 blocks around each pixel and with the previous frames' (`light`,
    updated in place) -> the share of the history to keep, (rows, W) (TemporalSettings.lighting_*)."""
    count, width = change.shape
    blocks = ((count + 1) // 2, (width + 1) // 2)
    change_sums, seen_sums = np.zeros(blocks, np.float32), np.zeros(blocks, np.float32)
    for i in range(count):
        for j in range(width):
            change_sums[i // 2, j // 2] += change[i, j]
            seen_sums[i // 2, j // 2] += seen[i, j]
    radius = max(int(cfg[LIGHTING_RADIUS]) // 2, 1)
    local = box_sum(change_sums, radius)
    local /= box_sum(seen_sums, radius) + TINY
    memory = cfg[LIGHTING_MEMORY]
    gate = np.empty((count, width), np.float32)
    for i in range(count):
        for j in range(width):
            change = local[i // 2, j // 2]
            # A change this large is no denoiser blotch: taken at once (TemporalSettings.lighting_fast).
            newest = ONE if cfg[LIGHTING_FAST] > 0 and abs(change) > cfg[LIGHTING_FAST] else memory
            light[i, j] = light[i, j] * (ONE - newest) + newest * change
            open_ = ONE - cfg[LIGHTING_GAIN] * (abs(light[i, j]) - cfg[LIGHTING_FLOOR])
            gate[i, j] = min(max(open_, ZERO), ONE)
    return gate


# -- what a frame leaves for the next one ------------------------------------------------------

@per_pixel
def record_row(motion, surfaces, cfg, i, k, age, light, edges, emitters, past, fields):
    """What the next frame reads of row i (row k of `surfaces`) besides its colour: each
    pixel's age, lighting change (`age`, `light`, (W,)), whether it is next to a motion edge
    (`edges`, (W,)), the brightest emitter this frame shows around it (`emitters`, (W,)), and
    the fields its tap tests compare. Row at a time, without branches per pixel, so that the
    compiler runs it on vector units."""
    height, width = motion.shape[1], motion.shape[2]
    start = i * width
    for j in range(width):
        p = start + j
        past[p, AGE] = age[j]
        fields[LIGHTING, p] = light[j]
        fields[F_COL, p] = -motion[2, i, j]
        fields[F_ROW, p] = motion[3, i, j]
        fields[DEPTH, p] = surfaces[0, k, j]
        fields[ID, p] = surfaces[1, k, j]
        fields[MOTION_EDGE, p] = ONE if edges[j] else ZERO
        fields[EMITTER, p] = emitters[j]
    fields[ONE_SURFACE, start + width - 1] = ZERO
    if i == height - 1:
        for j in range(width - 1):
            fields[ONE_SURFACE, start + j] = ZERO
    else:
        for j in range(width - 1):
            fields[ONE_SURFACE, start + j] = ONE if one_surface_block(surfaces, cfg, j, k) & moves_as_one(
                motion, i, j) else ZERO


@compiled
def record_band(r0, r1, motion, depth, ids, emission, flags, params, age, light, past, fields):
    """Ages (`age`, (H * W,)), lighting changes and fields of rows r0..r1, with no filtering:
    a frame whose history restarts, or one restored from a saved state."""
    cfg = config(flags, params)
    height, width = motion.shape[1], motion.shape[2]
    edges = motion_edge_band(motion, r0, r1)
    surfaces = band_surfaces(depth, ids, cfg, r0, r1, height, width)
    emitters = seen_emitters(emission, cfg, r0, r1, width)
    for i in range(r0, r1):
        row = slice(i * width, (i + 1) * width)
        record_row(motion, surfaces, cfg, i, i - r0, age[row], light[row], edges[i - r0], emitters[i - r0],
                   past, fields)


@per_pixel
def blur_share(flow, strength):
    """strength f (1 - f) / 2, f the fractional part of `flow`: what a bilinear read at fraction f
    blurs by, per unit of second difference."""
    f = flow - np.floor(flow)
    return f * (ONE - f) * (HALF * strength)


@per_pixel
def presharpened_value(image, f_col, f_row, c, i, j, strength):
    """image[c, i, j] with `strength` times the blur of the next frame's bilinear read taken off
    (TemporalSettings.presharpen); the frame's first and last rows and columns are kept."""
    x = image[c, i, j]
    height, width = image.shape[1], image.shape[2]
    value = x
    if 0 < j < width - 1:
        value -= ((image[c, i, j + 1] - x) - (x - image[c, i, j - 1])) * blur_share(f_col, strength)
    if 0 < i < height - 1:
        value -= ((image[c, i + 1, j] - x) - (x - image[c, i - 1, j])) * blur_share(f_row, strength)
    return value


@pixel_loop
def record_colour_band(image, fields, r0, r1, strength, past):
    """past[:, RGB] of rows r0..r1: `image` (3, H, W) pre-sharpened by `strength` along this
    frame's forward flow (in `fields`), for the next frame's read."""
    for i in range(r0, r1):
        record_colour_row(image, fields, i, strength, past)


@pixel_loop
def record_colour_rows(image, fields, rows, strength, past):
    """`record_colour_band` of the frame's rows `rows` (an array)."""
    for i in rows:
        record_colour_row(image, fields, i, strength, past)


@per_pixel
def record_colour_row(image, fields, i, strength, past):
    """`record_colour_band` of row i: it reads rows i - 1 .. i + 1 of `image`."""
    width = image.shape[2]
    for j in range(width):
        p = i * width + j
        for c in range(3):
            if strength:
                past[p, c] = presharpened_value(image, fields[F_COL, p], fields[F_ROW, p], c, i, j, strength)
            else:
                past[p, c] = image[c, i, j]


@compiled
def presharpened_band(image, f_col, f_row, r0, r1, strength):
    """Rows r0..r1 of the (C, H, W) `image` pre-sharpened -> (C, r1 - r0, W); `f_col`, `f_row`:
    the band's forward flow (r1 - r0, W)."""
    out = np.empty((image.shape[0], r1 - r0, image.shape[2]), np.float32)
    for c in range(image.shape[0]):
        for i in range(r0, r1):
            for j in range(image.shape[2]):
                out[c, i - r0, j] = presharpened_value(image, f_col[i - r0, j], f_row[i - r0, j], c, i, j, strength)
    return out


# -- one band of the filter ------------------------------------------------------------------

@compiled
def filter_band(r0, r1, motion, depth, ids, noisy, image, emission, flags, params, past, fields, current, out, past_out,
                fields_out):
    """Blend the history (`past`, `fields`) into rows r0..r1 of `out` (3, H, W) from `current`,
    and record the band's ages and fields into `past_out`, `fields_out` -> how many of the
    band's pixels kept their history."""
    cfg = config(flags, params)
    count, height, width = r1 - r0, current.shape[1], current.shape[2]
    histories = np.empty((4, count, width), np.float32)
    weights = np.empty((count, width), np.float32)
    seen = np.zeros((count, width), np.float32)
    light = np.zeros((count, width), np.float32)
    stale = np.zeros((count, width), np.bool_)
    remembered = np.zeros((count, width), np.float32)
    edges = motion_edge_band(motion, r0, r1)
    magnify = magnification_band(motion, r0, r1, cfg[MAGNIFICATION]) if cfg[MAGNIFICATION] else seen
    surfaces = band_surfaces(depth, ids, cfg, r0, r1, height, width)
    kept = reproject_rows(r0, r1, motion, surfaces, cfg, past, fields, histories, weights, seen, light,
                          stale, remembered, edges, magnify)
    low = np.empty((3, count, width), np.float32)
    high = np.empty((3, count, width), np.float32)
    if reads_noise(cfg):
        noise, first_block = band_noise(noisy, image, r0, r1, int(cfg[NOISE_SPREAD]))
    else:
        noise, first_block = low[0], 0      # not read: one array type for the compiled loop
    noisy_pixels = np.zeros((count, width), np.bool_)
    if lighting_by_noise(cfg):
        mostly_noise(noise, first_block, image, histories, r0, cfg[LIGHTING_NOISE_LIMIT], noisy_pixels)
    if cfg[LIGHTING_GAIN] > 0:
        change = np.empty((count, width), np.float32)
        lighting_change_rows(r0, r1, cfg, current, histories, seen, change)
        gate = lighting_gate(cfg, change, seen, light)
        if lighting_by_noise(cfg):
            open_where(gate, noisy_pixels)
        gate_rows(gate, histories, weights)
    band_min_max(current, r0, r1, int(cfg[CLAMP_RADIUS]), low, high)
    emitters = seen_emitters(emission, cfg, r0, r1, width)
    blend_rows(r0, r1, motion, surfaces, noise, first_block, emitters, remembered, cfg,
               current, histories, weights, light, stale, edges, low, high, np.empty(width, np.float32), out,
               past_out, fields_out)
    return kept


@pixel_loop
def reproject_rows(r0, r1, motion, surfaces, cfg, past, fields, histories, weights, seen, light,
                   stale, remembered, edges, magnify):
    """Each pixel's history (`histories` (4, rows, W): RGB, age), its weight, whether it was kept
    (`seen`), the previous lighting change (`light`), whether it reads a stale edge (`stale`) and
    the brightest emitter its history saw around it (`remembered`) -> how many were kept.
    `surfaces`: `band_surfaces`; `edges`: next to a motion edge (`motion_edge_band`); `magnify`:
    the magnification weight (`magnification_band`; not read where that is off)."""
    height, width = motion.shape[1], motion.shape[2]
    kept = 0
    for i in range(r0, r1):
        k = i - r0
        for j in range(width):
            edge = edges[k, j]
            keep, total, previous_light, red, green, blue, age, stale_edge, emitter = reproject(
                past, fields, cfg, motion, surfaces, i, j, k, height, width, edge)
            stale[k, j] = stale_edge
            remembered[k, j] = emitter
            age = age + ONE if keep else ZERO
            histories[0, k, j], histories[1, k, j], histories[2, k, j], histories[AGE, k, j] = red, green, blue, age
            light[k, j] = previous_light
            weights[k, j] = history_weight(cfg, age, keep, total, edge, magnify[k, j], motion, i, j, width)
            if keep:
                seen[k, j] = ONE
                kept += 1
    return kept


@pixel_loop
def lighting_change_rows(r0, r1, cfg, current, histories, seen, change):
    """The brightness change from the history to the frame, limited per pixel, into `change`."""
    limit = cfg[LIGHTING_PIXEL_LIMIT]
    for i in range(r0, r1):
        k = i - r0
        for j in range(current.shape[2]):
            difference = (brightness(current[0, i, j], current[1, i, j], current[2, i, j])
                          - brightness(histories[0, k, j], histories[1, k, j], histories[2, k, j]))
            change[k, j] = min(max(difference, -limit), limit) * seen[k, j]


@per_pixel
def reads_noise(cfg):
    """Does a step of the filter read the render's noise (`band_noise`)."""
    return (noise_bounded(cfg) or edges_by_noise(cfg) or capped_by_noise(cfg) or lighting_by_noise(cfg)
            or raised_by_noise(cfg))


@per_pixel
def raised_by_noise(cfg):
    """Is the clamp's ceiling raised by the render's noise: the frame has a noisy image and
    noise_headroom is on."""
    return cfg[HAS_NOISE] and cfg[NOISE_HEADROOM] > 0


@per_pixel
def noise_limited(cfg):
    """Is it known where the render is mostly noise (lighting_noise_limit)."""
    return cfg[HAS_NOISE] and cfg[LIGHTING_NOISE_LIMIT] > 0


@per_pixel
def lighting_by_noise(cfg):
    """Does the lighting test stand aside where the render is mostly noise (lighting_noise_limit)."""
    return noise_limited(cfg) and cfg[LIGHTING_GAIN] > 0


@compiled
def mostly_noise(noise, first_block, image, histories, r0, limit, out):
    """out = True where the render's noise (`band_noise`'s blocks) passes `limit` x the brighter
    of the mean luminance of the denoised `image` over the pixel's NOISE_BLOCK^2 block and the
    luminance of its history (a shadow that arrives darkens the frame, not the history)."""
    count, width = out.shape
    sums = block_sums(image, first_block, first_block + noise.shape[0])
    for k in range(count):
        row = (r0 + k) // NOISE_BLOCK - first_block
        for j in range(width):
            a = j // NOISE_BLOCK
            block = luminance(sums[0, row, a], sums[1, row, a], sums[2, row, a]) / sums[3, row, a]
            bright = max(block, luminance(histories[0, k, j], histories[1, k, j], histories[2, k, j]))
            out[k, j] = noise[row, a] > limit * bright


@compiled
def block_sums(planes, first, last):
    """The sums of (3, H, W) `planes` over each NOISE_BLOCK^2 block of block rows first..last,
    and the number of pixels each block has -> (4, last - first, blocks across)."""
    height, width = planes.shape[1], planes.shape[2]
    sums = np.zeros((4, last - first, (width + NOISE_BLOCK - 1) // NOISE_BLOCK), np.float32)
    for i in range(first * NOISE_BLOCK, min(last * NOISE_BLOCK, height)):
        b = i // NOISE_BLOCK - first
        for j in range(width):
            a = j // NOISE_BLOCK
            sums[0, b, a] += planes[0, i, j]
            sums[1, b, a] += planes[1, i, j]
            sums[2, b, a] += planes[2, i, j]
            sums[3, b, a] += ONE
    return sums


@pixel_loop
def open_where(gate, where):
    """gate = 1 where `where` (the lighting test stands aside: lighting_noise_limit)."""
    for k in range(gate.shape[0]):
        for j in range(gate.shape[1]):
            if where[k, j]:
                gate[k, j] = ONE


@pixel_loop
def gate_rows(gate, histories, weights):
    for k in range(gate.shape[0]):
        for j in range(gate.shape[1]):
            weights[k, j] *= gate[k, j]
            histories[AGE, k, j] *= gate[k, j]


@per_pixel
def window_range(image, c, i, j, height, width, radius):
    """Minimum and maximum of channel c over the (2 radius + 1)^2 pixels around (i, j) that exist
    (for the few pixels that need a narrower clamp than the band's)."""
    lo = image[c, i, j]
    hi = lo
    for k in range(max(i - radius, 0), min(i + radius + 1, height)):
        for m in range(max(j - radius, 0), min(j + radius + 1, width)):
            lo = min(lo, image[c, k, m])
            hi = max(hi, image[c, k, m])
    return lo, hi


@pixel_loop
def blend_rows(r0, r1, motion, surfaces, noise, first_block, emitters, remembered, cfg, current, histories,
               weights, light, stale, edges, low, high, noise_row, out, past_out, fields_out):
    """The history clamped to [low, high] widened by clamp_margin x the frame's value (where
    `stale`, to the pixel's own narrower range; up to
    the brightest visible emitter around, `emitters`, or the one its history saw a frame ago,
    `remembered` (both turned into the ceiling in place); where the frame has a noisy image and no
    emitter is around, the ceiling raised by noise_headroom x `noise`, and the range also within
    noise_bound x `noise` of the frame) and blended in by
    `weights` (next to a motion edge, at most `edge_weight`; where the frame has a noisy image
    and no emitter is around, at most the noise over full_history_noise), into `out`; the band's ages and
    fields into `past_out`, `fields_out`. `noise`: `band_noise`'s blocks from block row
    `first_block` on; `noise_row`: (W,) scratch. Each row first settles every pixel's weight
    and range (`low`, `high`, `weights` change in place; the few edge and stale pixels one by
    one), then records and blends it a channel at a time without branches: loops the compiler
    runs on vector units. The output's record for the next frame (`record_colour_row`) follows
    a row behind, while the rows it reads are still in cache."""
    height, width = current.shape[1], current.shape[2]
    bounded, lit, noisy_edges = noise_bounded(cfg), emitters_widen(cfg), edges_by_noise(cfg)
    capped, raised = capped_by_noise(cfg), raised_by_noise(cfg)
    stale_radius = int(cfg[STALE_EDGE_RADIUS])
    for i in range(r0, r1):
        k = i - r0
        if bounded or noisy_edges or capped or raised:
            for j in range(width):
                noise_row[j] = noise[i // NOISE_BLOCK - first_block, j // NOISE_BLOCK]
        if noisy_edges:
            for j in range(width):
                if edges[k, j]:
                    weights[k, j] = min(weights[k, j], edge_weight(cfg, noise_row[j], low, high, k, j))
        record_row(motion, surfaces, cfg, i, k, histories[AGE, k], light[k], edges[k], emitters[k], past_out,
                   fields_out)
        if lit and cfg[EMITTER_MEMORY] > 0:
            widen_row(emitters[k], remembered[k])
        if (bounded or capped or raised) and lit and cfg[EMITTERS_UNBOUND]:
            # Noisy Image - Combined is not the noise of a light seen directly: both show the same
            # share of a small lamp's samples (TemporalSettings.emitters_unbound).
            for j in range(width):
                if emitters[k, j] > 0:
                    noise_row[j] = np.float32(np.inf)
        if capped:
            cap_by_noise_row(current, i, noise_row, cfg[FULL_HISTORY_NOISE], weights[k])
        for c in range(3):
            if lit:
                widen_row(high[c, k], emitters[k])
            for j in range(width):
                if stale[k, j]:
                    low[c, k, j], high[c, k, j] = window_range(current, c, i, j, height, width, stale_radius)
            if cfg[CLAMP_MARGIN] > 0:
                widen_by_margin_row(low[c, k], high[c, k], current[c, i], cfg[CLAMP_MARGIN])
            if raised:
                raise_by_noise_row(high[c, k], noise_row, cfg[NOISE_HEADROOM])
        for c in range(3):
            if bounded:
                blend_row_bounded(current[c, i], histories[c, k], weights[k], low[c, k], high[c, k], noise_row,
                                  cfg[NOISE_BOUND], out[c, i])
            else:
                blend_row(current[c, i], histories[c, k], weights[k], low[c, k], high[c, k], out[c, i])
        if i >= r0 + 2:     # the row above now has its neighbours (the band's first and last: `band_edge_rows`)
            record_colour_row(out, fields_out, i - 1, cfg[PRESHARPEN], past_out)


@per_pixel
def cap_by_noise_row(current, i, noise, full, weights):
    """weights = min(weights, the render's noise in square-root luminance / `full`), along row i
    of `current` (TemporalSettings.full_history_noise). `noise` is in linear luminance; its
    square-root share is noise / (2 sqrt(luminance)), the root floored at SQRT_FLOOR."""
    for j in range(weights.shape[0]):
        root = max(brightness(current[0, i, j], current[1, i, j], current[2, i, j]), SQRT_FLOOR)
        weights[j] = min(weights[j], noise[j] / (TWO * root * full))


@per_pixel
def widen_row(high, emitters):
    """high = max(high, emitters), along a row."""
    for j in range(high.shape[0]):
        high[j] = max(high[j], emitters[j])


@per_pixel
def widen_by_margin_row(low, high, x, margin):
    """[low, high] widened by `margin` |x| on both sides, along a row (TemporalSettings.clamp_margin)."""
    for j in range(x.shape[0]):
        wider = margin * abs(x[j])
        low[j] -= wider
        high[j] += wider


@per_pixel
def raise_by_noise_row(high, noise, headroom):
    """high += `headroom` x the render's `noise`, along a row (TemporalSettings.noise_headroom);
    not at emitters, whose noise reads as infinite there (TemporalSettings.emitters_unbound)."""
    for j in range(noise.shape[0]):
        if noise[j] < np.inf:
            high[j] += headroom * noise[j]


@per_pixel
def blend_row(x, history, weight, low, high, out):
    """out = x + weight (history clamped to [low, high] - x), along a row."""
    for j in range(x.shape[0]):
        out[j] = (min(max(history[j], low[j]), high[j]) - x[j]) * weight[j] + x[j]


@per_pixel
def blend_row_bounded(x, history, weight, low, high, noise, noise_bound, out):
    """`blend_row` with the range also within noise_bound x `noise` of x."""
    for j in range(x.shape[0]):
        bound = noise_bound * noise[j]
        lo = max(low[j], x[j] - bound)
        hi = min(high[j], x[j] + bound)
        out[j] = (min(max(history[j], lo), hi) - x[j]) * weight[j] + x[j]


@compiled
def magnification_band(motion, r0, r1, power):
    """`magnification` for rows r0..r1 -> (r1 - r0, W). Inside the frame's first and last
    columns the differences need no tests, and the loop runs on vector units."""
    height, width = motion.shape[1], motion.shape[2]
    out = np.empty((r1 - r0, width), np.float32)
    for i in range(r0, r1):
        row = out[i - r0]
        row[0] = magnification(motion, i, 0, height, width, power)
        row[width - 1] = magnification(motion, i, width - 1, height, width, power)
        if width > 2:
            inner_magnification(motion, i, height, power, row)
    return out


@compiled
def inner_magnification(motion, i, height, power, out):
    """`magnification` of row i's pixels but the first and last, into `out` (the same
    arithmetic, in the same order)."""
    up, down = max(i - 1, 0), min(i + 1, height - 1)
    rows = ZERO if height < 2 else (HALF if down - up == 2 else ONE)
    x, y = motion[0, i], motion[1, i]
    x_up, x_down, y_up, y_down = motion[0, up], motion[0, down], motion[1, up], motion[1, down]
    for j in range(1, motion.shape[2] - 1):
        det = (x[j + 1] - x[j - 1]) / TWO + ONE
        det *= row_difference(-y_up[j], -y_down[j], rows) + ONE
        det -= row_difference(x_up[j], x_down[j], rows) * (((-y[j + 1]) - (-y[j - 1])) / TWO)
        out[j] = area_weight(det, power)


@per_pixel
def row_difference(a, b, rows):
    """`central_difference` along the rows from the values above (a) and below (b); `rows`: 0
    for a frame one row high, 1/2 between two rows, 1 at the frame's top or bottom row."""
    if rows == ZERO:
        return ZERO
    return (b - a) / TWO if rows == HALF else b - a


@compiled
def motion_edge_band(motion, r0, r1):
    """`motion_edge` for rows r0..r1 -> (r1 - r0, W) bool."""
    width = motion.shape[2]
    ranges_low, ranges_high = motion_ranges(motion, r0, r1)
    out = np.empty((r1 - r0, width), np.bool_)
    for i in range(r0, r1):
        for j in range(width):
            out[i - r0, j] = motion_edge(motion, ranges_low, ranges_high, i, j, i - r0)
    return out
