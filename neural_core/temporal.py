"""Temporal stability for animations: a history-clamped accumulation after the network.

The network enhances each frame on its own; its residual noise and per-frame decisions then
flicker. `TemporalFilter` keeps the previous *enhanced* frame, moves it to the current frame
along Blender's Vector pass, reads it only from the taps that show the same surface
(disocclusion), clamps it to the current frame's neighbourhood range (so stale colour cannot
survive: no ghosting) and blends it in with a per-pixel running mean floored at `min_weight`.

Vector pass convention (docs/temporal.md; measured on a known camera move in Blender 4.5 and
5.2, tested in blender_tests/test_temporal.py). Arrays here have row 0 at the top; Blender's
pixel y axis points up. At frame t:
- Vector.XY is the displacement to the same surface point at t-1, (x right, y up):
  it sits at (column + X, row - Y) of frame t-1;
- Vector.ZW is minus the displacement to t+1: it sits at (column - Z, row + W) of frame t+1.
The first frame of an animation has XY = 0, the last ZW = 0.

The history is read bilinearly, but only from the taps that show the pixel's surface
(renormalised, as in SVGF's reprojection), so object edges keep their history without mixing
in the other side; a pixel with no such tap gets the per-frame result. A tap fails where:
- its object/class id differs;
- its depth differs by more than `depth_tolerance` (relative);
- the forward-backward check of Lai et al. 2018 fails with the tap's forward flow f~:
  |b + f~|^2 > 0.01 (|b|^2 + |f~|^2) + 0.5, b the flow to t-1 at p. Two objects of one class
  moving differently fail here.
A pixel whose footprint fails that check with the forward flow read bilinearly over all 4 taps
(the warping-error metric's test: hidden a frame ago) gets none, unless a left-out tap lies
behind it (`drop_uncovered`).
A bilinear read blurs a little, and a history read every frame would blur more and more (fine
textures smear): the colour is recorded pre-sharpened by what the next frame's read will blur
(`presharpen`; its fraction is known from the forward flow). The history weight
is scaled by the share of the bilinear footprint that matched, and next to a motion edge, where
a pixel's colour mixes two motions (anti-aliasing) that no tap follows, it is capped at
`edge_history_weight`, or where the render's noise is known, by that noise over the edge's
contrast (`edge_noise`: a noisy edge flickers, a clean one is steady and history lags it).
A pixel away from motion edges that reads a tap which was next to one a frame ago (an
anti-aliased edge that has moved on: its colour mixes a surface that is gone)
clamps to a narrower range (`stale_edge_radius`). Nowhere may the history differ from the frame
by more than a few times the render's own noise there (`noise_bound`; Noisy Image - Combined):
in a clean render the frame is trusted, in a noisy one the bound is wide; a clean render's
history also weighs less (`full_history_noise`: its frames are steady, and what changes in them
is real). Near a visible
emitter (the Emission pass) the range reaches up to its light (`emitter_radius`): the denoiser
wipes small lamps out in some frames, and the history need not follow; nor is it bound there
(`emitters_unbound`: the two images show a lamp's flicker alike). Everywhere else the range's
ceiling is raised by a share of the render's noise (`noise_headroom`): the denoiser drops rare
bright paths in some frames, and the history may keep them; its floor is not lowered (an arriving
shadow darkens the history at once). Where only part of the
footprint matched (an anti-aliased edge) part of the history is read bilinearly from all taps,
unless a left-out tap is nearer and moved otherwise (a disocclusion).
Where the view closes in on a surface its history, resampled up, has less detail: the weight
falls with the area ratio (`magnification_power`), and for an object that crosses the frame
in a few frames (its highlights move over its surface) with its speed (`fast_motion`). A
one-frame history counts as 1 + `start_trust` frames at its first blend. Where the light on a
surface changes (a moving lamp or shadow), which the clamp cannot see on a lit gradient or a
textured surface, the history fades out: the local brightness change from it, averaged over
frames (a large one at once: `lighting_fast`), passes `lighting_floor` (`lighting_*`).
The whole history is reset (the output is exactly the per-frame result) on the first frame,
a jump in frame number, a change of size or key (scene, view layer, camera), a frame without a
Vector pass, and a cut: fewer than `cut_fraction` of the pixels keep their history.

The per-pixel work is compiled (`temporal_kernels`, numba); this module holds the shot's state.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from . import schema

try:
    from . import temporal_kernels as kernels
except ImportError as exc:     # numba or llvmlite missing or broken
    raise ImportError(f"the temporal filter needs numba ({exc}): install it with `pip install -r "
                      "requirements/runtime.txt` (the add-on bundles it), or enhance each frame alone "
                      "(--no-temporal; in Blender, Temporal Stability off)") from exc

# Passes the filter reads when the frame has them (only the Vector pass is needed).
ID_PASSES = ("object_index", "class_aov", "material_index")
USED_PASSES = ("motion", "depth", "noisy", "emission") + ID_PASSES
# The previous frame: its output and age as one 16-byte record per pixel (one gather per tap
# reads all four), and the fields the tap tests read as planes (layouts: temporal_kernels).
RGB, AGE = slice(0, 3), kernels.AGE
# Rows per band of work: one band per thread, and a band's scratch stays in the CPU cache.
BAND_ROWS = 64


@dataclass(frozen=True)
class TemporalSettings:
    # Floor of the current frame's weight: the history is a running mean of at most
    # 1/min_weight frames, so a lighting change fades in within a few frames.
    min_weight: float = 0.1
    # A history of one frame (the per-frame result of a shot's first frame, or of a pixel whose
    # history restarted) counts as 1 + `start_trust` frames at its first blend. A running mean
    # puts ~57 % of an 8-frame shot's flicker into its first frame pair; frame 2 then holds a
    # bit more of frame 1's noise, and the frames after are a plain running mean again.
    # Session 12, 26 validation shots: 0 / 1 / 2 / 3 gave a warping error of 0.967 / 0.909 /
    # 0.889 / 0.880x the reference's on the mean (worst 3.22 / 2.95 / 2.83 / 2.77x) and PSNR
    # +0.18 / +0.12 / +0.08 / +0.05 dB over per-frame enhancement (shots more than 0.2 dB below
    # it: 5 / 5 / 5 / 6); the shots meeting both targets 15 / 16 / 17 / 17 of 26. Counting the
    # first frame as more for the whole shot instead (session 11) cost more PSNR for the same
    # flicker (docs/temporal.md).
    start_trust: float = 2.0
    # A pixel whose footprint only partly shows its surface (some taps left out) is mostly an
    # anti-aliased edge: its colour mixes both sides, and so did the previous frame's at the
    # same place. This share of its history is read bilinearly from all 4 taps (the rest from
    # its own side's), except where a left-out tap is nearer than the pixel: a disocclusion,
    # where what moved away must not bleed into what it uncovers. Such pixels (3-16 % of a
    # validation frame) carried 40-60 % of the flicker of the shots that missed 1.1x. Session
    # 12, 26 validation shots, 0 / 0.25 / 0.5 / 0.75: warping error 0.889 / 0.842 / 0.810 /
    # 0.789x the reference's on the mean, PSNR over per-frame +0.08 / +0.12 / +0.12 / +0.11 dB,
    # shots meeting both targets 17 / 18 / 18 / 18 (docs/temporal.md). With the pre-sharpened
    # history (session 13, 30 validation shots), 0.5 / 0.65 / 0.75 / 0.85 / 1: warping error
    # 0.882 / 0.861 / 0.850 / 0.842 / 0.832x, PSNR +0.354 / +0.364 / +0.363 / +0.359 / +0.345
    # dB, shots meeting both 23 / 23 / 24 / 23 / 23.
    partial_footprint_bilinear: float = 0.75
    # ... except where a left-out tap is nearer than the pixel and moved otherwise (fails the
    # forward-backward check with the pixel's flow): only then did something move away from
    # what the pixel shows. A nearer tap that moves with the pixel is the other side of an
    # anti-aliased edge (a pole or a lamp in front of a wall the camera pans along), or a
    # light smaller than a pixel whose id and depth the 4-spp sample missed in this frame (a
    # held-out street's lamp: 1.0, 1.0, 0.49, 1.0 in display units over frames 4-7 against a
    # steady 1.0 in the reference). Before session 22 every nearer tap counted as a
    # disocclusion. Session 22, 53 validation and E-L shots, off / on: warping error 0.842 /
    # 0.823x the reference's on the mean, shots over 1.1x 4 / 2 (set E's street 1.14 -> 1.07x,
    # set K's 1.12 -> 1.07x); PSNR over per-frame +0.501 / +0.531 dB (the moving-shadow table
    # top -0.81 -> -0.62 dB); shots meeting both targets 46 / 48; the worst uncovered-pixel
    # error unchanged (1.20); with 3 % gain + blotch flicker added (26 4-spp shots) 0.991 /
    # 0.969x (docs/temporal.md). False: every nearer tap blocks the mix.
    nearer_moved_away: bool = True
    # Where the camera closes in (a dolly, a zoom), a surface covers more pixels than a frame ago:
    # its history was resampled up, holds less detail than the frame, and every frame adds more
    # of that blur. The history weight is scaled by det(J)^p, J the Jacobian of the map from a
    # pixel to its place a frame ago (the area that surface had then, per pixel now; 1 when
    # nothing is magnified). The worst validation shot, a street the camera drives along (det
    # 0.88 per frame), was 4.2 dB below per-frame enhancement; fed its 512-spp reference frames
    # as the per-frame input, the filter gave them back at 36-41 dB (38-42 dB at p = 2). Session
    # 12, 26 validation shots, p = 0 / 2 / 4 / 8: that shot -4.22 / -2.99 / -2.02 / -0.94 dB,
    # PSNR over per-frame +0.12 / +0.27 / +0.37 / +0.48 dB on the mean, warping error 0.810 /
    # 0.848 / 0.889 / 0.973x the reference's, shots meeting both targets 18 / 20 / 19 / 18.
    magnification_power: float = 2.0
    # The history is clamped to the current frame's (2 r + 1)^2 neighbourhood range. A denoised
    # frame is smooth, so a 3x3 range is narrow and lets the denoiser's frame-to-frame blotches
    # through; they are several pixels wide. Chosen on validation shots (seeds 20200+), not on
    # the held-out ones: 1 -> 2 -> 4 -> 6 gave the interior 1.53 -> 1.34 -> 1.28 -> 1.27x of the
    # reference's warping error (session 5's filter); with the per-tap filter 3 and 4 gave the
    # same numbers and 3 is one window step less (docs/temporal.md).
    clamp_radius: int = 3
    # The range is widened by this share of the frame's own value. Over a flat area (a wall,
    # the sky, a road) a denoised frame's 7x7 range is narrower than its brightness wobble from
    # frame to frame (the denoiser's or the network's low-frequency flicker, a few percent), so
    # the clamp dragged the history along with it. Session 20, 45 validation and E-J shots, 0 /
    # 0.02 / 0.03 / 0.04: warping error 0.849 / 0.836 / 0.832 / 0.830x the reference's on the
    # mean, PSNR over per-frame +0.513 / +0.506 / +0.502 / +0.499 dB (a clean street the camera
    # drives along -0.80 / -1.04 / -1.12 / -1.17 dB: its road's shading drifts against the Vector
    # pass); with 3 % of per-frame gain and smooth 3 % blotches added to each per-frame image of
    # 26 4-spp shots (scripts/temporal_robustness.py), 0 / 0.02 / 0.03: 1.077 / 0.995 / 0.973x,
    # worst 2.15 / 1.46 / 1.36x, shots over 1.1x 11 / 7 / 5 (docs/temporal.md). 0 turns it off.
    clamp_margin: float = 0.02
    depth_tolerance: float = 0.1      # relative; camera moves change depth a few % per frame
    # History weight at most this next to a motion edge. Chosen on the validation shots (seeds
    # 20200+ at 128x64, 20400+ at 256x128; docs/temporal.md): 0.1 / 0.2 / 0.3 gave the worst
    # shot 1.14 / 1.06 / 1.01x of the reference's warping error, and the error where the
    # metric finds no valid past (disocclusions, motion edges) +2 / +9 / +25 % of per-frame's.
    edge_history_weight: float = 0.2
    # Where the render's noise is known (Cycles' Noisy Image), the cap next to a motion edge
    # follows it: `edge_noise` x the noise there (`noise_bound`'s) over the contrast of the
    # clamp range, within [`edge_weight_low`, `edge_weight_high`]. An anti-aliased edge in a
    # noisy 4-spp render changes its coverage every frame and flickers (a street's lamp posts
    # and poles); a clean, high-contrast edge (a white table against a black curtain) is
    # steady, and any history there lags the edge. Session 17, 21 validation shots, off / 0.3 /
    # 1 / 3 (0.05-0.5): warping error 0.870 / 0.880 / 0.839 / 0.816x the reference's on the
    # mean, worst 1.39 / 1.34 / 1.26 / 1.25x; PSNR over per-frame +0.468 / +0.463 / +0.491 /
    # +0.444 dB, worst -1.27 / -0.95 / -1.21 / -2.20 dB; shots meeting both 14 / 13 / 15 / 16
    # of 21; with 1 and 0.1-0.5, 0.837x, worst 1.26x, +0.492 dB, worst -1.21 dB, 16 of 21
    # (docs/temporal.md). 0 turns it off (then edge_history_weight everywhere).
    edge_noise: float = 1.0
    edge_weight_low: float = 0.1
    edge_weight_high: float = 0.5
    # An anti-aliased pixel at a motion edge mixes both surfaces but carries one surface's id and
    # depth. Once the edge has moved on (a lamp passing over a background), a pixel away from
    # any motion edge reads it as its own surface's history; where the 7x7 range still spans the
    # passing object's colour (a textured or lit background), each frame's edge stayed in the
    # history as a thin streak. Such pixels (away from motion edges, reading a tap that was next
    # to one) clamp to their own (2 r + 1)^2 range instead. Session 15, 32 validation shots, off
    # / r = 1 / r = 2: the streaks gone at r = 1 (faint at 2; docs/temporal.md); warping error
    # 0.845 / 0.862 / 0.849x the reference's on the mean, PSNR over per-frame +0.334 / +0.358 /
    # +0.343 dB (the 512x256 table top -0.80 / -0.60 / -0.67 dB); shots meeting both targets
    # 25 / 24 / 24 (a 128x64 street 1.10 -> 1.16x). 0 turns it off.
    stale_edge_radius: int = 1
    # The clamp range and the lighting test are made for noisy renders: a 7x7 range spans the
    # denoiser's blotches, a local mean averages them out. In a clean render they let through
    # what the frame plainly contradicts: on a street the camera drives along, the road's
    # shading drifts against its Vector pass and a car's shadow edge slides over it (a validation
    # shot 2.55 dB below per-frame enhancement; |frame - history| was ~1.1x the render's noise
    # on its median pixel, 0.03-0.17x on every other shot). So the history may differ from the
    # frame by at most `noise_bound` x the render's noise there: the RMS of the luminance of
    # Noisy Image - Combined (Cycles' denoiser data) over 4x4 blocks, the largest of the
    # (2 `noise_spread` + 1)^2 blocks around (the denoiser spreads a noisy area's blotches into
    # its clean neighbours). Noisy renders get a wide bound and are left as they were. Frames
    # without a noisy image (EEVEE, a model on raw renders) are not bounded. Session 16
    # (docs/temporal.md): see the table there. 0 turns it off.
    noise_bound: float = 2.0
    noise_spread: int = 1
    # A small light (a street lamp, a lit window far away) covers part of a pixel, and which
    # of a 4-spp render's samples hit it changes from frame to frame; Cycles' denoiser then
    # keeps it in one frame and wipes it out as a firefly in the next (a lamp on a held-out
    # street: 0.8, 1.7, 3.7, 4.2, 0.2, 0.5, 3.7 in linear luminance over frames 1-7, against a
    # steady ~6 in the Emission pass). The clamp followed it down, and such blinking pixels,
    # ~1 % of a street's, carried up to 80 % of its flicker. Where the Emission pass shows an
    # emitter within `emitter_radius` pixels (3: the clamp's own window), the clamp range
    # reaches up to it (its largest channel): the history may be as bright as the light that is
    # plainly there. Where the light goes out, the Emission pass says so and the range closes
    # again. Not for stale edges (a light that has moved on). Frames without an Emission pass
    # are left as they were. Session 17, 21 validation shots, 0 / 1 / 2 / 3 / 4: warping error
    # 0.978 / 0.885 / 0.874 / 0.870 / 0.859x the reference's on the mean, worst 3.29 / 1.50 /
    # 1.47 / 1.39 / 1.26x; PSNR over per-frame +0.414 / +0.458 / +0.463 / +0.468 / +0.477 dB,
    # worst -1.27 dB throughout (docs/temporal.md). 0 turns it off.
    emitter_radius: int = 3
    # The noise bound (above) does not apply where the clamp range reaches up to an emitter:
    # a small lamp seen directly flickers with the share of a pixel's samples that hit it, and
    # Cycles' Noisy Image and its denoised Combined show the same share, so their difference
    # (the noise the bound reads) is ~0 there while the lamp flickers (a held-out street's
    # emitting pixels: 5x the reference's flicker after the filter). Session 18, 29 validation
    # and held-out (E, F) shots, off / on: warping error 0.886 / 0.870x the reference's on the
    # mean; a night street 1.26 -> 1.10x, three others 0.03-0.08x lower; PSNR within 0.06 dB.
    emitters_unbound: bool = True
    # The Emission pass is rendered with the same samples: a light smaller than a pixel is
    # missed by all of a 4-spp pixel's samples in some frames, and then the whole window shows
    # no emitter (a held-out street's lamp: 6.7 in frames 0, 1, 3 and 6 of the Emission pass,
    # nothing within 3 pixels in frame 7, where the per-frame image fell from 1.4 to 0.2 and the
    # clamp followed it). The ceiling is also the brightest emitter the history's own taps saw
    # a frame ago: a light missed in one frame keeps its history, one that goes out is followed
    # a frame later. Session 19: see docs/temporal.md. False turns it off.
    emitter_memory: bool = True
    # Cycles' Object Index and Z come from one of a pixel's samples, so at an anti-aliased
    # edge of a thin object (a pole, a lamp post) they flip from frame to frame while the colour
    # is a steady mix of both sides. No tap then shows "the pixel's surface" and the history was
    # dropped: on held-out streets, 0.05 % of the pixels carried up to 13 % of the reference's
    # flicker. Where no tap passes the id and depth tests but every tap passes the
    # forward-backward check (nothing moved differently: no disocclusion), and the pixel's 2x2
    # block is not one surface or its surface was within the 4x4 pixels around its footprint a
    # frame ago (not a surface new to the place), the whole footprint is read, at this share of
    # the usual history weight. Session 19, 37 validation and E-H shots, 0 / 0.5 / 1: warping
    # error 0.853 / 0.840 / 0.835x the reference's on the mean, PSNR over per-frame +0.503 /
    # +0.511 / +0.510 dB, shots meeting both targets 30 / 32 / 32 (docs/temporal.md). 0 turns it off.
    sampled_edge: float = 0.5
    # Where some taps show the pixel's surface and every tap moves with the pixel (the same
    # forward-backward check), the pixel is an anti-aliased edge between surfaces moving alike:
    # the whole footprint is read, at the share above if more than the share of the footprint
    # that showed the surface. Before session 22 the weight was scaled by that share alone, so
    # a pixel whose footprint was mostly the other side's (a lamp post, a pole, a sub-pixel lamp
    # whose id the 4-spp sample missed) kept almost none of its history and flickered with the
    # per-frame image. Session 22, 53 validation and E-L shots, off / on (at 0.5; 0.75 shown for
    # the trend): warping error 0.823 / 0.784 (0.754)x the reference's on the mean, worst 1.35 /
    # 1.33x; PSNR over per-frame +0.531 / +0.544 (+0.526) dB, worst -1.01 dB, shots below
    # -0.2 dB 3 / 3 (4); shots meeting both targets 48 / 48 (47); set E's street 1.07 -> 0.99x,
    # set K's 1.07 -> 1.01x; the worst uncovered-pixel error unchanged (1.20); with 3 % gain +
    # blotch flicker added (26 4-spp shots) 0.969 / 0.933x, shots over 1.1x 6 / 4
    # (docs/temporal.md). False turns it off.
    partial_moves_alike: bool = True
    # A bilinear read at fraction f of a pixel blurs by ~f (1 - f) / 2 times the second
    # difference along that axis, and a history is read every frame: fine textures smear (a
    # 512x256 interior's wallpaper: -1.13 dB against per-frame enhancement by frame 8). The
    # colour is recorded with `presharpen` times that blur taken off in advance, f from the
    # pixel's forward flow (where the next frame reads it). The pair never amplifies a
    # frequency, so it stays stable over any number of frames. Session 13, 30 validation shots
    # (with partial_footprint_bilinear 0.75): shots meeting both targets 24, against 23 with the
    # Catmull-Rom reads it replaces (sessions 6-12, where a 2x2 block's contrast passed 0.05);
    # PSNR over per-frame +0.36 against +0.27 dB on the mean, worst -2.58 against -2.99 dB;
    # warping error 0.850 against 0.832x. 0 turns it off (docs/temporal.md).
    presharpen: float = 1.0
    # An object that crosses the frame in a few frames (a ball thrown across a table top:
    # ~20 % of the width per frame) carries its highlights and reflections to where its
    # surface was, and the clamp range of a glossy object spans them. The history weight falls
    # from 1 at `fast_motion` x the frame's width per frame of motion to 0 at twice that. Session
    # 18 (with lighting_fast 0.08), 21 validation shots, off / 0.03 / 0.05 / 0.08 / 0.12: the
    # moving-shadow table top -1.03 / -0.80 / -0.80 / -0.80 / -0.81 dB against per-frame
    # enhancement, the moving lamp -0.57 / -0.03 / -0.40 / -0.57 / -0.57 dB; warping error on the
    # mean 0.839 / 0.861 / 0.841 / 0.839 / 0.839x; on held-out sets E and F at 0.03 / 0.05 an
    # interior rose 0.98 -> 1.07x (0.08: 1.00x). 0 turns it off.
    # Session 24, 57 development shots, 0.08 / 0.05 / 0.04 / 0.03 / 0.02: the interior with the
    # moving lamp (25 spp; its loss is all on the near chairs and table, which the camera's move
    # carries 5-6 % of the width a frame) -0.61 / -0.45 / -0.27 / -0.08 / +0.17 dB against
    # per-frame enhancement, the warping error's mean 0.785 / 0.787 / 0.790 / 0.797 / 0.819x,
    # its worst 1.27 -> 1.29x; the 38 4-spp shots 0.816 -> 0.821x; set E's interior that rose in
    # session 18 0.92 -> 0.99x. 0.03: the only shot below -0.2 dB left is the moving shadow.
    fast_motion: float = 0.03
    # Lighting that changes over a still surface (a moving lamp or shadow) keeps the old light
    # in the history: the clamp range of a lit gradient or a soft shadow still holds it. The
    # filter follows the local brightness change from the history to the current frame (the
    # mean over (2 r + 1)^2 pixels, in square-root luminance ~ display units), averaged over
    # frames: the denoiser's blotches change sign from frame to frame, a lighting change does
    # not. Past `lighting_floor` the history fades out over the next 1 / lighting_gain and its
    # age restarts. Chosen on the validation shots (docs/temporal.md): the moving-shadow table
    # top -3.8 -> -0.9 dB against per-frame, the moving lamp -2.9 -> -0.9 dB, the worst warping
    # error 1.16 -> 1.17x. lighting_gain 0 turns it off.
    # Each pixel's change counts at most `lighting_pixel_limit` in the mean, so that a few
    # flickering pixels far brighter than their surroundings (a street lamp, a lit window, the
    # edge of a highlight) cannot pass the test on their own; a lighting change moves many
    # pixels. Session 9, 26 validation shots: limit 0.15 with the floor 0.015 -> 0.0125 took a
    # 4-spp night street from 2.08 to 1.02x of the reference's warping error, the mean from 1.03
    # to 0.96x, at the same mean PSNR (the moving shadow and lamp -0.9 -> -1.1 dB).
    lighting_radius: int = 6
    lighting_floor: float = 0.0125
    lighting_pixel_limit: float = 0.15
    lighting_gain: float = 80.0
    lighting_memory: float = 0.3      # weight of the newest frame's change in the average
    # The average over frames cancels a shadow that passes quickly: a surface darkens in one
    # frame and brightens in the next, the two changes cancel, and the next frame keeps the
    # dark history (a textured surface shadowed for one frame: 23 % off the frame after,
    # tests/test_temporal.py). A local change past `lighting_fast` (at the per-pixel limit
    # over more than half the neighbourhood) is no denoiser blotch: it replaces the average at
    # once. Session 18, 21 validation shots, off / 0.06 / 0.08 / 0.1: the moving-shadow table
    # top -1.21 / -0.89 / -1.03 / -1.07 dB against per-frame enhancement; one street 1.07 /
    # 1.20 / 1.09 / 1.07x the reference's warping error; no other shot changes. 0 turns it off.
    lighting_fast: float = 0.08
    # A pixel fails Lai et al.'s forward-backward check with the previous frame's forward flow
    # read bilinearly over its footprint (the warping-error metric's own test for "no valid
    # past": what a moving object just uncovered) gets no history, even where a tap of its
    # footprint passes the per-tap tests; unless a tap left out lies behind the pixel (then the
    # pixel is the edge of an object moving over its background, which keeps its own side's
    # history). The taps it drops are anti-aliased pixels of what moved away, which carry its
    # colour with the background's id and depth: a lamp the camera pans past left a glowing
    # trail (a set K street: in the pixels it uncovered, 10x per-frame enhancement's error).
    # Session 21, 49 validation and E-K shots, session 20's filter / with this: the worst
    # frame's error in uncovered pixels over per-frame's, worst shot 10.03 / 1.20, shots over
    # 1.1: 13 / 1; warping error 0.841 / 0.839x the reference's on the mean, PSNR over
    # per-frame +0.506 / +0.510 dB; the street 1.17 -> 1.12x, no other shot moved by more than
    # 0.02x or 0.03 dB (docs/temporal.md). False turns it off.
    drop_uncovered: bool = True
    # Where the render's noise (`noise_bound`'s measure) passes `lighting_noise_limit` x the
    # brightness there (the brighter of the denoised render's 4x4 block and the history: a
    # shadow that arrives darkens the frame, not the history), the lighting test stands aside.
    # There the light comes from rare bright paths (a 4-spp night street's glossy car under a
    # lamp: the noisy render 0.01-0.96 in display units while the 512-spp reference holds 0.7),
    # Cycles' denoiser keeps them in one frame and not the next, and the test took that flicker
    # for changing light and restarted the history every frame (held-out set L's night street:
    # 1.99x the reference's warping error, ~100 such pixels carrying half of it). Session 21, 53
    # validation and E-L shots, 0 / 1 / 1.5 / 2 / 3 / 5 / 10: warping error 0.858 / 0.834 /
    # 0.840 / 0.842 / 0.842 / 0.843 / 0.851x the reference's on the mean, worst 1.99 / 1.34 /
    # 1.34 / 1.35 / 1.36 / 1.38 / 1.76x; PSNR over per-frame +0.504 / +0.486 / +0.496 / +0.499
    # / +0.501 / +0.501 / +0.502 dB; shots meeting both targets 46 / 44 / 46 / 45 / 46 / 46 /
    # 46 of 53 (docs/temporal.md). Against the frame's block alone, the moving-shadow table top
    # fell -0.81 -> -1.67 dB at 3. 0 turns it off.
    lighting_noise_limit: float = 3.0
    # The clamp's ceiling is raised by `noise_headroom` x the render's noise (`noise_bound`'s
    # measure, linear luminance): the history may be that much brighter than the frame's range,
    # never darker. A Monte Carlo render is unbiased; its denoised version is not, frame by
    # frame, and its error is one-sided: where light comes from rare bright paths (a 4-spp
    # night street's glossy cars and lit walls), Cycles' denoiser keeps them in one frame and
    # wipes them out in the next, darkening whole regions wider than the 7x7 range, and the
    # clamp followed it down. Only the ceiling moves, because a shadow that arrives must still
    # darken the history at once: widening the floor too took the moving-shadow table top from
    # -0.61 to -2.3 dB against per-frame enhancement (an edge between a bright, noisy table and
    # a dark wall borrowed the table's noise). Not at emitters (the noise reads as infinite
    # there, `emitters_unbound`: their range reaches up to the light already); frames without a
    # noisy image (EEVEE) are left as they were. It replaces session 22's noisy ceiling (the
    # noisy render's local mean where the render is mostly noise), which changes nothing once
    # this is on (77 shots: no shot moved by 0.02x or 0.02 dB). Session 25, 77 validation,
    # E-P, O and EEVEE shots, 0 / 0.25 / 0.5 / 1: warping error 0.770 / 0.748 / 0.746 / 0.745x
    # the reference's on the mean, shots over 1.1x 3 / 1 / 1 / 1 (set P's night street 1.28 ->
    # 0.89x, set L's 1.10 -> 0.87x, set M's 1.07 -> 0.90x); PSNR over per-frame +0.500 / +0.525
    # / +0.527 / +0.527 dB, no shot lower by more than 0.02 dB at 0.5; shots meeting both targets
    # 73 / 75 / 75 / 75; with 3 % gain and blotch flicker added to the 26 4-spp shots 0.941 /
    # 0.898x at 0.5 (docs/temporal.md). 0 turns it off.
    noise_headroom: float = 0.5
    # In a clean render the history's weight is capped at the render's noise there (square-root
    # luminance, ~ display units) over `full_history_noise`: at that noise and above it may take
    # its full weight. A clean render's denoised frame is about as steady as the reference (the
    # street driven along: per-frame enhancement 1.07x the reference's warping error), and what
    # still changes is real: the light on its surfaces changes as the camera moves (0.017
    # display units a frame along the Vector pass on its worst pixels, in the reference too;
    # the lighting test's local mean does not catch it), and a full running mean lags it by
    # several frames (-1.01 dB against per-frame enhancement). The cap does not apply
    # where an emitter is in the clamp range (`emitters_unbound`: the noise reads ~0 at a light
    # seen directly while it flickers), nor where the frame has no noisy image. Session 23, 57
    # validation and E-M shots, 0 / 0.03 / 0.04 / 0.05: warping error 0.782 / 0.784 / 0.785 /
    # 0.788x the reference's on the mean (worst 1.27x each), PSNR over per-frame +0.552 / +0.562
    # / +0.567 / +0.573 dB, the street driven along -1.01 / -0.43 / -0.19 / -0.01 dB; shots
    # meeting both targets 52 / 52 / 53 / 53 of 57; with 3 % gain and blotch flicker added to
    # the 26 4-spp shots 0.932 / 0.932 / 0.933 / 0.935x (docs/temporal.md). 0 turns it off.
    full_history_noise: float = 0.04
    cut_fraction: float = 0.3         # fewer pixels with history than this: treat as a cut
    fb_relative: float = 0.01         # Lai et al.'s forward-backward thresholds
    fb_absolute: float = 0.5


def settings_for(follow_lighting: bool = True) -> TemporalSettings:
    """The default settings; `follow_lighting` False keeps the history through brightness
    changes (steadier where the lighting of a shot is fixed, but a moving shadow or lamp lags)."""
    return TemporalSettings() if follow_lighting else TemporalSettings(lighting_gain=0.0)


def backward_flow(motion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vector pass at t -> (d_col, d_row) to the same point at t-1, in array coordinates."""
    return motion[..., 0], -motion[..., 1]


def forward_flow(motion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vector pass at t -> (d_col, d_row) to the same point at t+1, in array coordinates."""
    return -motion[..., 2], motion[..., 3]


class Sampler:
    """The 4 bilinear taps of (row + d_row, col + d_col) on a (H, W) grid, for the band of rows
    `row0 .. row0 + len(d_row)` of that grid: `index` (4, N) flat indices into the grid and
    `weight` (4, N) bilinear weights, N the band's pixels (the warping-error metric's reads;
    the filter's own are `temporal_kernels.footprint`, the same taps)."""

    def __init__(self, d_col: np.ndarray, d_row: np.ndarray, grid: tuple[int, int], row0: int = 0):
        self.shape = d_col.shape
        inside, self.index, self.weight = kernels.footprints(
            np.asarray(d_col, np.float32), np.asarray(d_row, np.float32), row0, *grid)
        self.inside = inside.reshape(self.shape)

    def bilinear(self, plane: np.ndarray) -> np.ndarray:
        values = np.take(plane.ravel(), self.index)
        return np.einsum("kn,kn->n", values, self.weight).reshape(self.shape)


def fb_inconsistent(b_col, b_row, f_col, f_row, relative=0.01, absolute=0.5) -> np.ndarray:
    """Lai et al.'s occlusion test: True where the backward flow b and the forward flow
    f~ (read at p + b) do not cancel out."""
    sum_sq = (b_col + f_col) ** 2 + (b_row + f_row) ** 2
    mag_sq = b_col ** 2 + b_row ** 2 + f_col ** 2 + f_row ** 2
    return sum_sq > relative * mag_sq + absolute


def motion_edge(motion: np.ndarray, rows: slice) -> np.ndarray:
    """(rows, W) True next to a motion boundary, for a band of rows of the Vector pass
    (`temporal_kernels.motion_edge`; the filter caps the history weight there)."""
    return kernels.motion_edge_band(_planes(motion), rows.start, rows.stop)


def magnification_weight(motion: np.ndarray, rows: slice, power: float) -> np.ndarray:
    """(N,) min(det J, 1)^power for a band of rows of the Vector pass, J the Jacobian of
    p -> p + b(p): the area a pixel's surface had a frame ago (TemporalSettings.magnification_power)."""
    return kernels.magnification_band(_planes(motion), rows.start, rows.stop, np.float32(power)).ravel()


def _planes(pass_: np.ndarray) -> np.ndarray:
    """(H, W, C) pass -> (C, H, W) float32 C-contiguous: no copy for frames from Blender or the
    EXR reader (channel-first in memory), and one kernel layout to compile."""
    return np.ascontiguousarray(np.asarray(pass_, np.float32).transpose(2, 0, 1))


def box_min_max(planes: np.ndarray, radius: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(2 radius + 1)^2 minimum and maximum of (C, H, W) planes (edges: the pixels that exist)."""
    planes = np.ascontiguousarray(planes, np.float32)
    low, high = np.empty_like(planes), np.empty_like(planes)
    kernels.band_min_max(planes, 0, planes.shape[1], radius, low, high)
    return low, high


def box_sum(plane: np.ndarray, radius: int) -> np.ndarray:
    """Sum over the (2 radius + 1)^2 pixels around each pixel of a (H, W) plane that exist."""
    return kernels.box_sum(np.asarray(plane, np.float32), radius)


def presharpened(image: np.ndarray, f_col: np.ndarray, f_row: np.ndarray, rows: slice,
                 strength: float) -> np.ndarray:
    """A band of rows of the (3, H, W) `image` as it is recorded for the next frame's read,
    with `strength` times a bilinear read's blur taken off (TemporalSettings.presharpen); f_col,
    f_row: the band's forward flow (rows, W) -> (3, rows, W)."""
    return kernels.presharpened_band(np.asarray(image, np.float32), np.asarray(f_col, np.float32),
                                     np.asarray(f_row, np.float32), rows.start, rows.stop, np.float32(strength))


def _bands(height: int, count: int) -> list[slice]:
    edges = np.linspace(0, height, max(1, min(count, height)) + 1).astype(int)
    return [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


_POOL: list = []


def _pool():
    """Threads shared by every filter: one band of rows each (the kernels release the GIL). Up to
    16, a 1080p frame's bands: on a 16-core machine 8 / 12 / 16 threads took 64 / 50 / 43 ms
    (benchmarks/results/temporal-2026-11-26-session14.txt)."""
    if not _POOL:
        _POOL.append(ThreadPoolExecutor(max_workers=max(1, min(16, os.cpu_count() or 1)),
                                        thread_name_prefix="photoreal-temporal"))
    return _POOL[0]


def shutdown() -> None:
    """Stop the threads (the add-on's unregister: nothing of it may keep running)."""
    while _POOL:
        _POOL.pop().shutdown(wait=True)


def _in_bands(height: int, work) -> list:
    """work(rows) for every band of rows of a frame `height` high, on the pool. The layout depends
    on the height alone: the lighting test's means stop at a band's edge, so the output must not
    depend on the number of threads."""
    return list(_pool().map(work, _frame_bands(height)))


def _frame_bands(height: int) -> list[slice]:
    return _bands(height, height // BAND_ROWS)


def _band_edge_rows(height: int) -> np.ndarray:
    """The first and last row of every band (`_in_bands`)."""
    rows = [row for band in _frame_bands(height) for row in (band.start, band.stop - 1)]
    return np.unique(rows).astype(np.intp)


def _without_broken_vectors(frame: schema.Frame) -> tuple[schema.Frame, str | None]:
    """A frame whose Vector pass holds NaN or inf, as one without it (its history restarts and
    nothing of it is kept for the next frame) and the reason; else the frame as it is."""
    motion = frame.get("motion")
    bad = 0 if motion is None else schema.non_finite_count(motion)
    if not bad:
        return frame, None
    return ({key: value for key, value in frame.items() if key != "motion"},
            f"the Vector pass has {bad} NaN/inf value(s)")


_ABSENT = np.zeros((1, 1), np.float32)
_ABSENT_COLOUR = np.zeros((3, 1, 1), np.float32)


@dataclass
class _Passes:
    """What the kernels read of a frame: the Vector pass ((4, H, W)), depth and ids ((H, W)
    planes, a dummy where the frame lacks one), and flags saying which it has."""
    motion: np.ndarray
    depth: np.ndarray
    ids: np.ndarray
    noisy: np.ndarray
    image: np.ndarray
    emission: np.ndarray
    has_depth: bool
    has_ids: bool
    has_noise: bool
    has_emission: bool

    @classmethod
    def of(cls, frame: schema.Frame) -> "_Passes":
        id_key = next((k for k in ID_PASSES if k in frame), None)
        plane = lambda key: _planes(frame[key])[0] if key else _ABSENT   # noqa: E731
        # EEVEE's frames serve their Combined as the noisy image (schema): no noise measured.
        has_noise = "noisy" in frame and "image" in frame and frame["noisy"] is not frame["image"]
        colour = lambda key: _planes(frame[key]) if has_noise else _ABSENT_COLOUR   # noqa: E731
        return cls(_planes(frame["motion"]), plane("depth" if "depth" in frame else None),
                   plane(id_key), colour("noisy"), colour("image"),
                   _planes(frame["emission"]) if "emission" in frame else _ABSENT_COLOUR,
                   "depth" in frame, id_key is not None, has_noise, "emission" in frame)


def render_noise(frame: schema.Frame, spread: int) -> np.ndarray:
    """(H, W) the render's local noise as the noise bound reads it (`temporal_kernels.band_noise`)."""
    image = _planes(frame["image"])
    blocks, _ = kernels.band_noise(_planes(frame["noisy"]), image, 0, image.shape[1], spread)
    pixels = np.repeat(np.repeat(blocks, kernels.NOISE_BLOCK, 0), kernels.NOISE_BLOCK, 1)
    return pixels[:image.shape[1], :image.shape[2]]


class TemporalFilter:
    """Feed the enhanced frames of one shot in order: `apply(frame, enhanced, number)`.

    After each call: `last_reset` says why the history was reset (None if it was used),
    `last_history_fraction` how many pixels kept it, `last_ms` what the step cost.
    """

    def __init__(self, settings: TemporalSettings | None = None):
        self.settings = settings or TemporalSettings()
        self._params = np.array([getattr(self.settings, name) for name in kernels.PARAMS[:-1]]
                                + [schema.DEPTH_FAR], np.float32)
        # Test the pixels that read a block of one surface against one tap (a test turns it off
        # to show that it changes no output).
        self.one_surface_shortcut = True
        self.reset()

    def reset(self) -> None:
        self.number = None          # frame number of the history
        self.key = None
        self.size = None            # (H, W) of the history
        self.past = None            # (H * W, 4): previous output and age
        self.fields = None          # (FIELDS, H * W): previous forward flow, depth, id, one surface,
                                    # lighting change, motion edge
        self.past_has = (False, False)   # the history's fields hold depth, ids
        self.last_reset, self.last_history_fraction, self.last_ms = None, 0.0, 0.0
        self._spare = (None, None)

    @property
    def history(self) -> np.ndarray | None:
        """(H, W, 3) previous output, as recorded for the next frame's read (pre-sharpened,
        TemporalSettings.presharpen)."""
        return None if self.past is None else self.past[:, RGB].reshape(*self.size, 3)

    @property
    def age(self) -> np.ndarray | None:
        """(H, W) frames accumulated in the history."""
        return None if self.past is None else self.past[:, AGE].reshape(self.size)

    def apply(self, frame: schema.Frame, enhanced: np.ndarray, number: int, key=None) -> np.ndarray:
        """(H, W, 3) enhanced frame `number` -> the temporally filtered (H, W, 3) float32."""
        start = time.perf_counter()
        frame, broken_vectors = _without_broken_vectors(frame)
        # Colour is planar, (3, H, W), as the runtime returns it (then without a copy).
        current = np.ascontiguousarray(np.asarray(enhanced, np.float32).transpose(2, 0, 1))
        size = current.shape[1:]
        out = np.empty(current.shape, np.float32)   # new arrays: the runtime may reuse its buffer
        past, fields = self._spare_buffers(size)
        passes = _Passes.of(frame) if "motion" in frame else None
        reason = broken_vectors or self._reset_reason(frame, size, number, key)
        if reason is None:
            flags = self._flags(passes)
            counts = _in_bands(size[0], lambda rows: kernels.filter_band(
                rows.start, rows.stop, passes.motion, passes.depth, passes.ids, passes.noisy, passes.image,
                passes.emission, flags, self._params, self.past, self.fields, current, out, past, fields))
            fraction = sum(counts) / (size[0] * size[1])
            if fraction < self.settings.cut_fraction:
                reason = f"cut: {fraction:.0%} of the pixels have history"
        if reason is None:
            self.last_history_fraction = fraction
            # The bands recorded their output's colour but for their first and last rows,
            # which read the neighbouring bands' output.
            self._record_colour(out, past, fields, rows=_band_edge_rows(size[0]))
        else:
            out[:] = current
            if passes is not None:
                nothing = np.zeros(size[0] * size[1], np.float32)
                self._record(passes, nothing, nothing, past, fields)
                self._record_colour(out, past, fields)
            self.last_history_fraction = 0.0
        self.last_reset = reason
        self._spare = (self.past, self.fields)
        self._remember(passes, past, fields, size, number, key)
        self.last_ms = (time.perf_counter() - start) * 1e3
        return out.transpose(1, 2, 0)

    def _flags(self, passes: _Passes) -> np.ndarray:
        flags = np.zeros(kernels.FLAGS, np.bool_)
        flags[[kernels.HAS_DEPTH, kernels.HAS_IDS]] = passes.has_depth, passes.has_ids
        flags[[kernels.PAST_HAS_DEPTH, kernels.PAST_HAS_IDS]] = self.past_has
        flags[kernels.ONE_SURFACE_SHORTCUT] = self.one_surface_shortcut
        flags[kernels.HAS_NOISE] = passes.has_noise
        flags[kernels.HAS_EMISSION] = passes.has_emission
        return flags

    def _spare_buffers(self, size) -> tuple[np.ndarray, np.ndarray]:
        """Records and fields to write this frame's into: the ones two frames old. Fresh ones
        cost a page fault per 4 KiB at the first write."""
        past, fields = self._spare
        pixels = size[0] * size[1]
        if past is None or past.shape[0] != pixels:
            past, fields = np.empty((pixels, 4), np.float32), np.empty((kernels.FIELDS, pixels), np.float32)
        return past, fields

    def _reset_reason(self, frame, size, number, key) -> str | None:
        if "motion" not in frame:
            return "the frame has no Vector pass"
        if self.past is None:
            return "first frame"
        if key != self.key:
            return f"new shot ({self.key} -> {key})"
        if tuple(size) != self.size:
            return f"size changed ({self.size} -> {tuple(size)})"
        if number != self.number + 1:
            return f"frame {self.number} -> {number} is not the next frame"
        return None

    def _record(self, passes: _Passes, age, light_change, past, fields) -> None:
        """Write the ages ((H * W,)), lighting changes and fields of a frame that was not filtered
        (what the next frame reads back; the colour: `_record_colour`)."""
        flags = self._flags(passes)
        _in_bands(passes.motion.shape[1], lambda rows: kernels.record_band(
            rows.start, rows.stop, passes.motion, passes.depth, passes.ids, passes.emission, flags,
            self._params, age, light_change, past, fields))

    def _record_colour(self, image, past, fields, strength: float | None = None, rows=None) -> None:
        """past[:, RGB]: the output `image` ((3, H, W)), pre-sharpened for the next frame's read
        (`strength` None: TemporalSettings.presharpen), of every row or of the array `rows`.
        Needs this frame's forward flow in `fields`."""
        strength = np.float32(self.settings.presharpen if strength is None else strength)
        if rows is not None:
            kernels.record_colour_rows(image, fields, rows, strength, past)
            return
        _in_bands(image.shape[1], lambda band: kernels.record_colour_band(
            image, fields, band.start, band.stop, strength, past))

    def _remember(self, passes: _Passes | None, past, fields, size, number, key) -> None:
        self.number, self.key, self.size = number, key, tuple(size)
        if passes is None:
            self.past = self.fields = None     # nothing to reproject the next frame with
            return
        self.past, self.fields = past, fields
        self.past_has = (passes.has_depth, passes.has_ids)

    # -- saving and restoring, so a resumed sequence continues with the same history ---------

    def state(self) -> dict[str, np.ndarray]:
        """The history as arrays (np.savez); the previous frame's passes are not included:
        `restore` reads them from that frame again. "record": the colour as recorded (pre-sharpened)."""
        if self.past is None:
            return {}
        return {"number": np.int64(self.number), "record": np.ascontiguousarray(self.history),
                "age": np.ascontiguousarray(self.age),
                "lighting_change": self.fields[kernels.LIGHTING].reshape(self.size).copy()}

    def restore(self, state, previous_frame: schema.Frame, key=None) -> None:
        """Continue after frame `state['number']`, whose passes are `previous_frame`."""
        self.reset()
        # Saved before session 13 (plain output as "history"): pre-sharpen it as it is recorded now.
        recorded = "record" in state
        history = np.asarray(state["record" if recorded else "history"], np.float32)
        if history.ndim == 3 and history.shape[0] == 3 and history.shape[-1] != 3:
            history = history.transpose(1, 2, 0)     # saved by an older version: (3, H, W)
        size = history.shape[:2]
        past, fields = self._spare_buffers(size)
        pixels = size[0] * size[1]
        # Saved by a version without the lighting test: no change seen yet.
        light_change = (np.asarray(state["lighting_change"], np.float32).ravel()
                        if "lighting_change" in state else np.zeros(pixels, np.float32))
        passes = _Passes.of(previous_frame)
        self._record(passes, np.ascontiguousarray(np.asarray(state["age"], np.float32).ravel()),
                     np.ascontiguousarray(light_change), past, fields)
        self._record_colour(np.ascontiguousarray(history.transpose(2, 0, 1)), past, fields,
                            0.0 if recorded else None)
        self._remember(passes, past, fields, size, int(state["number"]), key)
