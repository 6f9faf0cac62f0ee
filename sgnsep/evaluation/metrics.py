"""Separation quality metrics: SI-SDR, silence-aware per-source evaluation, and BSS Eval v3
(:func:`bss_eval`, from :mod:`sgnsep.evaluation.bss_eval`). Only numpy and scipy are needed (no torch).

* :func:`si_sdr` / :func:`si_sdr_sources` -- scale-invariant SDR of

      J. Le Roux, S. Wisdom, H. Erdogan and J. R. Hershey, "SDR - half-baked or well done?", Proc. IEEE
      ICASSP 2019, pp. 626-630,

  computed, as in that paper, on zero-mean signals (the mean of both the reference and the estimate is
  removed first).

* :func:`evaluate_sources` -- per-source evaluation that never fails and never returns NaN/inf on silent
  sources: a silent reference is reported by its PES (Predicted Energy at Silence) and a silent estimate of a
  non-silent reference by its EPS (Energy at Predicted Silence), the two silence metrics of K. Schulze-Forster,
  C. Doire, G. Richard and R. Badeau, "Weakly informed audio source separation", WASPAA 2019, used for
  conditioned separation with absent sources; the remaining sources get SDR/SIR/SAR (jointly over the
  non-silent references) and SI-SDR.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from sgnsep.evaluation.bss_eval import as_pair, bss_eval, bss_eval_core, power_ratio_db


__all__ = [
    "DEFAULT_SILENCE_THRESHOLD",
    "MAX_DB",
    "SourceMetrics",
    "bss_eval",
    "evaluate_sources",
    "si_sdr",
    "si_sdr_sources",
]


#: Default silence threshold on the mean energy per sample, ``mean(x**2)`` (about -50 dBFS RMS).
DEFAULT_SILENCE_THRESHOLD = 1e-5


#: :func:`evaluate_sources` clips every dB value to ``[-MAX_DB, MAX_DB]`` (a float64
#: computation cannot resolve ratios beyond ~320 dB anyway), so it never returns inf.
MAX_DB = 300.0


#: The epsilon of PES/EPS, ``10*log10(sum(x**2) + 1e-12)``, as in Schulze-Forster et al.
_SILENCE_DB_EPS = 1e-12


Status = Literal["ok", "silent_reference", "silent_estimate"]


_METRIC_ALIASES = {
    "sdr": "sdr",
    "sir": "sir",
    "sar": "sar",
    "si-sdr": "si_sdr",
    "si_sdr": "si_sdr",
    "sisdr": "si_sdr",
}


def _si_sdr_parts(
    ref: np.ndarray, est: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Zero-mean SI-SDR terms per row: ``(defined, ||e_target||^2, ||e_res||^2)``.

    ``defined`` is False where the reference or the estimate is constant (all zeros after
    removing the mean, up to the rounding of that subtraction).
    """
    n = ref.shape[-1]
    centred = []
    for x in (ref, est):
        xc = x - x.mean(axis=-1, keepdims=True)
        energy = np.sum(xc * xc, axis=-1)
        # the mean removal leaves ~eps*max|x| per sample of a constant signal
        floor = n * (4 * np.finfo(np.float64).eps * np.max(np.abs(x), axis=-1)) ** 2
        centred.append((xc, energy, energy > floor))
    (ref_c, ref_energy, ref_ok), (est_c, _, est_ok) = centred
    defined = ref_ok & est_ok
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = np.where(defined, np.sum(est_c * ref_c, axis=-1) / ref_energy, 0.0)
    target = alpha[..., np.newaxis] * ref_c
    residual = est_c - target
    return (
        defined,
        np.sum(target * target, axis=-1),
        np.sum(residual * residual, axis=-1),
    )


def si_sdr_sources(references: Any, estimates: Any) -> np.ndarray:
    """SI-SDR (dB) of each estimate against the reference of the same index, shape (n_sources,).

    Le Roux et al. 2019: with ``s`` and ``s_hat`` made zero-mean (the mean of each signal is
    removed, as the paper prescribes), ``alpha = <s_hat, s> / ||s||^2``,
    ``SI-SDR = 10 log10(||alpha s||^2 / ||alpha s - s_hat||^2)``. Invariant to any non-zero
    rescaling of the estimate. ``+inf`` when the estimate is exactly proportional to the reference.

    Raises ValueError on mismatched shapes and when a reference or estimate is constant (all
    zeros once its mean is removed), for which SI-SDR is undefined.
    """
    ref, est = as_pair(references, estimates)
    defined, target_energy, residual_energy = _si_sdr_parts(ref, est)
    bad = np.flatnonzero(~defined)
    if bad.size:
        raise ValueError(
            f"SI-SDR is undefined for source(s) {bad.tolist()}: the reference or the "
            "estimate is constant (all zeros once its mean is removed)"
        )
    return power_ratio_db(target_energy, residual_energy)


def si_sdr(reference: Any, estimate: Any) -> float:
    """SI-SDR (dB) of one estimate against one reference (1-D arrays); see :func:`si_sdr_sources`."""
    ref = np.asarray(reference)
    est = np.asarray(estimate)
    if ref.ndim != 1 or est.ndim != 1:
        raise ValueError(
            f"si_sdr takes 1-D signals (got shapes {ref.shape} and {est.shape}); "
            "use si_sdr_sources for several"
        )
    return float(si_sdr_sources(ref, est)[0])


@dataclass(frozen=True)
class SourceMetrics:
    """Metrics of one source (one row of the inputs) as returned by :func:`evaluate_sources`.

    ``index``: row of the source in the inputs (its class index).
    ``status``:
      * ``"ok"``: reference and estimate both non-silent; ``sdr``, ``sir``, ``sar`` and
        ``si_sdr`` are set (those requested), ``pes`` and ``eps`` are None. ``sir`` is also
        None when this is the only non-silent reference (no interference is defined), and
        ``sar`` when the signals are too short for the artifact term to exist (the
        ``n_active * filter_length >= n_samples + filter_length - 1`` case of :func:`bss_eval`).
        ``si_sdr`` is None if the reference or estimate is constant (zero once its mean
        is removed).
      * ``"silent_reference"``: the reference is silent (whatever the estimate): only ``pes``
        is set, the estimate's energy ``10*log10(sum(est**2) + 1e-12)`` (lower is better).
      * ``"silent_estimate"``: the reference is not silent but the estimate is: only ``eps``
        is set, the reference's energy ``10*log10(sum(ref**2) + 1e-12)`` (energy missed).
    All values are finite floats in dB (clipped to +-MAX_DB) or None, never NaN/inf.
    """

    index: int
    status: Status
    sdr: float | None = None
    sir: float | None = None
    sar: float | None = None
    si_sdr: float | None = None
    pes: float | None = None
    eps: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _finite_db(value: float) -> float | None:
    value = float(value)
    if math.isnan(value):
        return None
    return float(min(max(value, -MAX_DB), MAX_DB))


def _energy_db(x: np.ndarray) -> float:
    return _finite_db(10.0 * math.log10(float(np.dot(x, x)) + _SILENCE_DB_EPS))


def evaluate_sources(
    references: Any,
    estimates: Any,
    *,
    silence_threshold: float = DEFAULT_SILENCE_THRESHOLD,
    metrics: Sequence[str] = ("sdr", "sir", "sar", "si-sdr"),
    filter_length: int = 512,
) -> list[SourceMetrics]:
    """Evaluate each estimate against the reference of the same index, handling silent sources.

    A signal ``x`` counts as silent when its mean energy per sample ``mean(x**2)`` is
    ``<= silence_threshold``. The Sound of Pixels evaluation skips signals with
    ``sum(|x|) <= 1e-5``, i.e. practically only digital silence, and a criterion on a sum
    depends on the clip length; a per-sample energy does not, and its default of 1e-5
    (RMS about 3e-3, i.e. -50 dBFS for audio in [-1, 1]) also treats the faint leakage a
    masking separator leaves in the output for an absent source as predicted silence.
    ``silence_threshold=0`` keeps only all-zero signals silent (mir_eval's criterion).

    Per source (see :class:`SourceMetrics`): a silent reference gets status
    ``"silent_reference"`` and its PES; a non-silent reference with a silent estimate gets
    ``"silent_estimate"`` and its EPS (PES/EPS of Schulze-Forster et al. 2019); neither enters
    the BSS Eval computation as an estimate. The other sources (``"ok"``) get BSS Eval v3
    metrics computed jointly, with the interference subspace spanned by *every* non-silent
    reference (a present source whose estimate is silent can still leak into the others),
    and SI-SDR.

    ``metrics`` selects among ``"sdr"``, ``"sir"``, ``"sar"``, ``"si-sdr"`` (unrequested ones
    stay None; BSS Eval is skipped if none of the first three is asked for).

    Returns a list of :class:`SourceMetrics`, one per source, in input order. Never raises
    for silent inputs and never returns NaN/inf; raises ValueError for mismatched lengths or
    source counts, non-finite samples, a negative threshold or an unknown metric name.
    """
    ref, est = as_pair(references, estimates)
    threshold = float(silence_threshold)
    if not threshold >= 0:
        raise ValueError(f"silence_threshold must be >= 0, got {silence_threshold!r}")
    if isinstance(metrics, str):
        metrics = (metrics,)
    wanted = set()
    for name in metrics:
        key = _METRIC_ALIASES.get(str(name).lower())
        if key is None:
            raise ValueError(
                f"unknown metric {name!r}; choose from 'sdr', 'sir', 'sar', 'si-sdr'"
            )
        wanted.add(key)

    ref_silent = np.mean(ref * ref, axis=1) <= threshold
    est_silent = np.mean(est * est, axis=1) <= threshold
    ok = np.flatnonzero(~ref_silent & ~est_silent)
    active_refs = np.flatnonzero(~ref_silent)

    filter_length = int(filter_length)
    if filter_length < 1:
        raise ValueError(f"filter_length must be >= 1, got {filter_length}")
    sir_defined = active_refs.size > 1
    sar_defined = active_refs.size * filter_length < ref.shape[1] + filter_length - 1

    bss: dict[int, tuple[float, float, float]] = {}
    if ok.size and wanted & {"sdr", "sir", "sar"}:
        # position of each ok source among the active references
        targets = np.searchsorted(active_refs, ok)
        sdr, sir, sar = bss_eval_core(
            ref[active_refs], est[ok], targets, filter_length
        )
        for pos, idx in enumerate(ok):
            bss[int(idx)] = (sdr[pos], sir[pos], sar[pos])
    si: dict[int, float | None] = {}
    if ok.size and "si_sdr" in wanted:
        defined, target_energy, residual_energy = _si_sdr_parts(ref[ok], est[ok])
        values = power_ratio_db(target_energy, residual_energy)
        for pos, idx in enumerate(ok):
            # constant (DC-only) signals are zero after mean removal: SI-SDR undefined
            si[int(idx)] = _finite_db(values[pos]) if defined[pos] else None

    records: list[SourceMetrics] = []
    for idx in range(ref.shape[0]):
        if ref_silent[idx]:
            records.append(
                SourceMetrics(idx, "silent_reference", pes=_energy_db(est[idx]))
            )
        elif est_silent[idx]:
            records.append(
                SourceMetrics(idx, "silent_estimate", eps=_energy_db(ref[idx]))
            )
        else:
            values = bss.get(idx)
            sdr_v = sir_v = sar_v = None
            if values is not None:
                sdr_v = _finite_db(values[0]) if "sdr" in wanted else None
                sir_v = (
                    _finite_db(values[1]) if "sir" in wanted and sir_defined else None
                )
                sar_v = (
                    _finite_db(values[2]) if "sar" in wanted and sar_defined else None
                )
            records.append(
                SourceMetrics(
                    idx, "ok", sdr=sdr_v, sir=sir_v, sar=sar_v, si_sdr=si.get(idx)
                )
            )
    return records
