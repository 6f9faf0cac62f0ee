"""Audio front end of Sound of Pixels / SGN: STFT, log-frequency warp and its inverse, network input.

All functions are batched torch code and run on whatever device their inputs are on.

Shapes: ``B`` batch, ``S`` samples, ``F`` linear frequency bins (n_fft // 2 + 1 = 512), ``T`` frames,
``W`` warped frequency bins (256).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from sgnsep.models.config import AudioConfig


def _window(cfg: AudioConfig, device, dtype) -> torch.Tensor:
    # Periodic Hann, as torch.stft and Sound of Pixels' librosa front end use.
    return torch.hann_window(cfg.n_fft, periodic=True, device=device, dtype=dtype)


def stft(wave: torch.Tensor, cfg: AudioConfig) -> torch.Tensor:
    """Complex STFT. ``wave`` (..., S) -> (..., F, T), centered with reflect padding."""
    lead = wave.shape[:-1]
    flat = wave.reshape(-1, wave.shape[-1])
    spec = torch.stft(
        flat,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        window=_window(cfg, wave.device, wave.dtype),
        center=True,
        pad_mode="reflect",
        return_complex=True,
    )
    return spec.reshape(*lead, *spec.shape[-2:])


def istft(spec: torch.Tensor, cfg: AudioConfig, length: int) -> torch.Tensor:
    """Inverse of :func:`stft`. ``spec`` (..., F, T) -> (..., length)."""
    lead = spec.shape[:-2]
    flat = spec.reshape(-1, *spec.shape[-2:])
    wave = torch.istft(
        flat,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        window=_window(cfg, spec.device, spec.real.dtype),
        center=True,
        length=length,
    )
    return wave.reshape(*lead, length)


def _warp_grid(n_in: int, n_out: int, frames: int, inverse: bool, device, dtype) -> torch.Tensor:
    """Sampling grid for ``grid_sample`` over a (freq, time) image.

    Sound of Pixels' grid: output row y in [-1, 1] reads source row ``(21**((y+1)/2) - 11) / 10``, a
    logarithmic frequency axis; the inverse reads ``log(10 y + 11) / log(21) * 2 - 1``.
    """
    y = torch.linspace(-1.0, 1.0, n_out, device=device, dtype=dtype)
    if inverse:
        src = torch.log(10.0 * y + 11.0) / math.log(21.0) * 2.0 - 1.0
    else:
        src = (torch.pow(21.0, (y + 1.0) / 2.0) - 11.0) / 10.0
    x = torch.linspace(-1.0, 1.0, frames, device=device, dtype=dtype)
    # grid[..., 0] indexes width (time), grid[..., 1] height (frequency).
    grid = torch.stack(torch.meshgrid(src, x, indexing="ij")[::-1], dim=-1)
    return grid.unsqueeze(0)


def warp(mag: torch.Tensor, cfg: AudioConfig) -> torch.Tensor:
    """Linear-frequency magnitude (B, F, T) -> log-frequency (B, W, T). ``align_corners=True`` as in SoP."""
    b, _, t = mag.shape
    grid = _warp_grid(mag.shape[1], cfg.warp_bins, t, False, mag.device, mag.dtype).expand(b, -1, -1, -1)
    return F.grid_sample(mag.unsqueeze(1), grid, mode="bilinear", align_corners=True).squeeze(1)


def _unwarp_taps(cfg: AudioConfig, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Linear bin j of :func:`unwarp` lies between warped rows ``row[j]`` and ``row[j] + 1``, at ``frac[j]``.

    The rows are those of :func:`_warp_grid`'s inverse grid, computed in float64 (align_corners: normalised
    -1 is row 0, +1 row W - 1).
    """
    src = _warp_grid(cfg.warp_bins, cfg.freq_bins, 1, True, device, torch.float64)[0, :, 0, 1]  # (F,)
    pos = (src + 1.0) / 2.0 * (cfg.warp_bins - 1)
    row = pos.floor().long().clamp(0, cfg.warp_bins - 2)
    return row, (pos - row).to(dtype)


def unwarp(mask: torch.Tensor, cfg: AudioConfig) -> torch.Tensor:
    """Log-frequency mask (..., W, T) -> linear-frequency mask (..., F, T).

    Linear interpolation along frequency at the rows of Sound of Pixels' inverse grid. This is what
    ``grid_sample`` over :func:`_warp_grid` computes (bilinear, align_corners), without its second axis:
    there every frame reads itself, but through float32 grid coordinates that mix in up to 5e-5 of the
    neighbouring frames; and a 1-D gather is about twice as fast as the 2-D sampler.
    """
    row, frac = _unwarp_taps(cfg, mask.device, mask.dtype)
    return torch.lerp(mask.index_select(-2, row), mask.index_select(-2, row + 1), frac[:, None])


# A segment quieter than the level by more than this is raised by this much only: near-silence (a fade, a
# rest) is not blown up into a loud noise floor that the network would assign to some class.
MAX_LEVEL_BOOST_DB = 30.0


def segment_level_db(warped_mag: torch.Tensor) -> torch.Tensor:
    """(B, W, T) -> (B, 1, 1): each segment's level, the mean power of its warped magnitude in dB (what
    ``input_level_db`` sets)."""
    return 10.0 * torch.log10(warped_mag.pow(2).mean(dim=(-2, -1), keepdim=True).clamp_min(1e-30))


def level_gain(warped_mag: torch.Tensor, cfg: AudioConfig) -> torch.Tensor:
    """(B, W, T) -> (B, 1, 1) factors bringing each segment to ``cfg.input_level_db`` (ones when None)."""
    if cfg.input_level_db is None:
        return torch.ones(warped_mag.shape[0], 1, 1, dtype=warped_mag.dtype, device=warped_mag.device)
    power_db = segment_level_db(warped_mag)
    gain_db = (cfg.input_level_db - power_db).clamp(max=MAX_LEVEL_BOOST_DB)
    return torch.pow(10.0, gain_db / 20.0)


def network_input(warped_mag: torch.Tensor, cfg: AudioConfig) -> torch.Tensor:
    """Network input of Sound of Pixels, ``log(mag + eps)`` with a channel axis: (B, W, T) -> (B, 1, W, T);
    each segment first brought to ``cfg.input_level_db`` if set (:func:`level_gain`)."""
    if cfg.input_level_db is not None:
        warped_mag = warped_mag * level_gain(warped_mag, cfg)
    return torch.log(warped_mag + cfg.log_eps).unsqueeze(1)
