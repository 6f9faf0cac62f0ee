"""STFT and log-frequency warp round trips (../shared/SPEC.md, audio front end)."""

import math

import torch

from sgnsep.audio import frontend
from sgnsep.models.config import AudioConfig

AUDIO = AudioConfig()


def test_stft_shapes_match_the_paper():
    wave = torch.randn(2, AUDIO.segment_samples)
    spec = frontend.stft(wave, AUDIO)
    assert spec.shape == (2, 512, 256)  # "512 x 256 Time-Frequency representation"
    warped = frontend.warp(spec.abs(), AUDIO)
    assert warped.shape == (2, 256, 256)
    assert frontend.network_input(warped, AUDIO).shape == (2, 1, 256, 256)


def test_stft_round_trip_is_exact():
    wave = torch.randn(3, 40000, dtype=torch.float64)
    back = frontend.istft(frontend.stft(wave, AUDIO), AUDIO, length=wave.shape[-1])
    assert torch.allclose(back, wave, atol=1e-10)


def test_warp_then_unwarp_recovers_smooth_spectra():
    # A spectrum smooth in log frequency survives warping to 256 bins and back; the error is bounded by
    # the interpolation error of the coarse low band, so compare above the first few bins.
    f = torch.linspace(0, 1, AUDIO.freq_bins, dtype=torch.float64)
    t = torch.linspace(0, 1, 256, dtype=torch.float64)
    smooth = (1.5 + torch.sin(2 * math.pi * 2 * f)[:, None] * torch.cos(2 * math.pi * t)[None, :]).unsqueeze(0)
    back = frontend.unwarp(frontend.warp(smooth, AUDIO), AUDIO)
    assert back.shape == smooth.shape
    err = (back - smooth).abs()[:, 8:, :]
    assert err.max() < 0.02


def test_warp_oversamples_low_frequencies():
    # The log grid spends more of its 256 rows on low frequencies: a peak at bin 20 of 512 lands far up.
    mag = torch.zeros(1, AUDIO.freq_bins, 4)
    mag[:, 20, :] = 1.0
    warped = frontend.warp(mag, AUDIO)
    row = int(warped[0, :, 0].argmax())
    assert row > 256 * 20 / 512 * 3


def test_unwarp_of_constant_mask_is_constant():
    mask = torch.full((2, 3, 256, 256), 0.7)
    assert torch.allclose(frontend.unwarp(mask, AUDIO), torch.full((2, 3, 512, 256), 0.7), atol=1e-6)


def test_unwarp_is_sound_of_pixels_inverse_grid_read_frame_by_frame():
    """unwarp interpolates along frequency only, at the rows of the inverse grid that Sound of Pixels'
    grid_sample reads; grid_sample itself agrees up to its float32 coordinates, which also let each frame
    read a little of its neighbours."""
    import torch.nn.functional as F

    torch.manual_seed(0)
    mask = torch.rand(2, 3, AUDIO.warp_bins, 64)
    grid = frontend._warp_grid(AUDIO.warp_bins, AUDIO.freq_bins, 64, True, "cpu", torch.float32)
    sampled = F.grid_sample(mask.reshape(6, 1, AUDIO.warp_bins, 64), grid.expand(6, -1, -1, -1), mode="bilinear",
                            align_corners=True).reshape(2, 3, AUDIO.freq_bins, 64)
    out = frontend.unwarp(mask, AUDIO)
    assert out.shape == (2, 3, AUDIO.freq_bins, 64)
    assert (out - sampled).abs().max() < 1e-4
    # Frequency only: an impulse in one frame stays in that frame, exactly.
    impulse = torch.zeros(1, AUDIO.warp_bins, 8)
    impulse[0, :, 3] = torch.rand(AUDIO.warp_bins)
    spread = frontend.unwarp(impulse, AUDIO)
    assert torch.count_nonzero(spread[..., [0, 1, 2, 4, 5, 6, 7]]) == 0
    # The first and last linear bins read the first and last warped rows.
    assert torch.equal(spread[0, 0, 3], impulse[0, 0, 3]) and torch.allclose(spread[0, -1, 3], impulse[0, -1, 3])


def test_input_level_brings_every_segment_to_one_level_and_caps_the_boost():
    import dataclasses

    levelled = dataclasses.replace(AUDIO, input_level_db=2.0)
    warped = frontend.warp(frontend.stft(torch.randn(1, AUDIO.segment_samples), AUDIO).abs(), AUDIO).repeat(3, 1, 1)
    warped = warped * torch.tensor([0.05, 1.0, 30.0])[:, None, None]  # one segment at three levels
    # without a level the input follows the recording's level; with one it does not
    plain = frontend.network_input(warped, AUDIO)
    assert (plain[2] - plain[1]).mean() > 3.0
    net_in = frontend.network_input(warped, levelled)
    assert torch.allclose(net_in[0], net_in[1], atol=1e-4) and torch.allclose(net_in[2], net_in[1], atol=1e-4)
    scaled = warped * frontend.level_gain(warped, levelled)
    power_db = 10 * torch.log10(scaled.pow(2).mean(dim=(-2, -1)))
    assert torch.allclose(power_db, torch.full((3,), 2.0), atol=1e-3)
    # near-silence is raised by at most MAX_LEVEL_BOOST_DB, not up to the level
    faint = warped[1:2] * 1e-4  # 80 dB down
    gain_db = 20 * torch.log10(frontend.level_gain(faint, levelled)).item()
    assert abs(gain_db - frontend.MAX_LEVEL_BOOST_DB) < 1e-3
    assert torch.isfinite(frontend.network_input(torch.zeros(1, 256, 256), levelled)).all()
