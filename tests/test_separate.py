"""`Separator` and `sgnsep separate` on real files written by the tests, with a tiny model trained on tones."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from sgnsep import Separator
from sgnsep.core.errors import OutputError, UsageError
from tests.tone_model import tone


def snr(ref: np.ndarray, est: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(ref**2) / np.sum((ref - est) ** 2)))


def tone_mix(sr: int, seconds: float, channels: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    low, high = tone("low", seconds, sr, rng), tone("high", seconds, sr, rng)
    gains = np.linspace(1.0, 0.6, channels)[:, None]  # channels differ in level
    return (low[None] * gains).astype(np.float32), (high[None] * gains[::-1]).astype(np.float32)


def run_cli(*args, cwd=None, env=None):
    return subprocess.run(
        [sys.executable, "-m", "sgnsep", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


@pytest.fixture(scope="module")
def sep(tone_model_dir):
    return Separator(tone_model_dir, device="cpu")


def test_separates_named_classes_better_than_the_mixture(sep):
    low, high = tone_mix(44100, 8.0, 2)
    stems = sep.separate(low + high, 44100, ["low", "high"])
    for name, ref in (("low", low), ("high", high)):
        assert stems[name].shape == ref.shape
        gain = snr(ref, stems[name]) - snr(ref, low + high)
        assert gain > 6.0, f"{name}: only {gain:.1f} dB better than the mixture"


def test_stems_plus_residual_sum_to_the_input_at_full_band(sep):
    rng = np.random.default_rng(1)
    x = (0.1 * rng.standard_normal((2, 48000 * 3))).astype(np.float32)  # white noise up to 24 kHz
    stems = sep.separate(x, 48000, "low,hiss", residual=True)
    total = stems["low"] + stems["hiss"] + stems["residual"]
    assert np.abs(total - x).max() < 1e-5
    # Energy above the model's 5.5 kHz Nyquist is kept and shared out, not dropped.
    spec = np.abs(np.fft.rfft(stems["hiss"][0]))
    freqs = np.fft.rfftfreq(x.shape[-1], 1 / 48000)
    assert spec[freqs > 12000].mean() > 0.05 * np.abs(np.fft.rfft(x[0]))[freqs > 12000].mean()


@pytest.mark.parametrize("sr", [8000, 22050, 44100, 48000])
def test_chunked_output_equals_whole_file_output(tone_model_dir, sr):
    low, high = tone_mix(sr, 9.3, 2, seed=sr)
    whole = Separator(tone_model_dir, device="cpu", chunk_seconds=1000).separate(low + high, sr, ["low", "high"])
    chunked = Separator(tone_model_dir, device="cpu", chunk_seconds=2.0).separate(low + high, sr, ["low", "high"])
    for k in whole:
        assert np.abs(whole[k] - chunked[k]).max() < 1e-5 * max(1.0, np.abs(whole[k]).max())


def record_network_inputs(sep: Separator) -> list:
    """Wrap ``sep``'s mask function: every segment it sends through the network is appended to the list returned."""
    seen = []
    plain = sep._mask_fn

    def recording(class_idx):
        fn = plain(class_idx)
        return lambda net_in: (seen.extend(net_in), fn(net_in))[1]

    sep._mask_fn = recording
    return seen


def test_chunks_run_each_model_segment_through_the_network_once(tone_model_dir):
    """Segments straddling a chunk boundary are computed for the first chunk and handed to the next, not run
    again: chunked separation costs the network exactly what a whole-file pass does (and gives its output)."""
    sr = 22050
    low, high = tone_mix(sr, 9.3, 2, seed=3)
    counts = {}
    for chunk_seconds in (1000.0, 2.0):
        sep = Separator(tone_model_dir, device="cpu", chunk_seconds=chunk_seconds)
        seen = record_network_inputs(sep)
        sep.separate(low + high, sr, ["low", "high"])
        counts[chunk_seconds] = len(seen)
    from sgnsep.separation import chunk_plan

    plan = chunk_plan.make_plan(sr, low.shape[-1], sep.meta.audio, chunk_seconds=2.0)
    assert len(list(plan.chunks())) >= 4  # the chunked run really had boundaries to share segments across
    assert counts[2.0] == counts[1000.0]


@pytest.mark.parametrize("seconds", [6.05, 9.3, 20.0])
def test_the_network_never_sees_zero_padding_in_a_file_longer_than_a_segment(tone_model_dir, seconds):
    """The last segment ends on the file's last frame instead of running past it: a mostly padded segment is
    unlike the training data (it cost the 6-second test tracks about 1 dB). Chunked runs see the same
    segments as a whole-file pass."""
    from sgnsep.separation import chunk_plan

    sr = 22050
    low, high = tone_mix(sr, seconds, 1, seed=5)
    # a little noise, so that the only frames of zero magnitude are padding (the tones have rests)
    mixture = low + high + 1e-3 * np.random.default_rng(5).standard_normal(low.shape).astype(np.float32)
    floor = float(np.log(1e-10))
    for chunk_seconds in (1000.0, 2.0):
        sep = Separator(tone_model_dir, device="cpu", chunk_seconds=chunk_seconds)
        seen = record_network_inputs(sep)
        sep.separate(mixture, sr, ["low"])
        plan = chunk_plan.make_plan(sr, low.shape[-1], sep.meta.audio, chunk_seconds=chunk_seconds)
        layout = chunk_plan.segment_layout(plan)
        assert len(seen) == len(layout)
        assert layout[-1] + plan.segment_frames == plan.total_frames  # the last segment ends with the file
        assert all(b - a <= plan.stride_frames for a, b in zip(layout, layout[1:]))
        for net_in in seen:
            padded_columns = (net_in[0] <= floor + 1e-3).all(dim=0)  # (frames,): columns of zero magnitude
            assert not padded_columns.any()


def test_a_file_shorter_than_a_segment_is_one_padded_segment(tone_model_dir):
    from sgnsep.separation import chunk_plan

    sep = Separator(tone_model_dir, device="cpu")
    audio = sep.meta.audio
    short = int(0.7 * audio.segment_samples / audio.sample_rate * 22050)
    assert chunk_plan.segment_layout(chunk_plan.make_plan(22050, short, audio)) == [0]



def test_a_model_with_an_input_level_separates_a_recording_the_same_at_any_level(tone_model_dir, tmp_path):
    """With ``audio.input_level_db`` every segment reaches the network at one level, so a recording 20 dB
    quieter or louder gives the same stems, scaled; without it the log input makes the masks level-dependent."""
    import shutil

    levelled = tmp_path / "levelled"
    shutil.copytree(tone_model_dir, levelled)
    config = json.loads((levelled / "config.json").read_text())
    config["audio"]["input_level_db"] = -10.0
    (levelled / "config.json").write_text(json.dumps(config))
    sr = 22050
    low, high = tone_mix(sr, 4.0, 2, seed=7)
    # a faint noise floor: pure tones leave bins at float32's rounding noise, which no level can make equal
    x = (low + high + 1e-3 * np.random.default_rng(7).standard_normal(low.shape).astype(np.float32)) * 0.1
    for model, invariant in ((levelled, True), (tone_model_dir, False)):
        sep = Separator(model, device="cpu", masks="independent")
        ref = sep.separate(x, sr, ["low", "high"])
        worst = 0.0
        for factor in (0.1, 10.0):
            out = sep.separate(x * factor, sr, ["low", "high"])
            worst = max(worst, max(np.abs(out[k] / factor - ref[k]).max() / np.abs(ref[k]).max() for k in ref))
        assert (worst < 1e-3) == invariant, (model, worst)


def test_shared_masks_never_claim_a_bin_twice_and_leave_lone_masks_alone(tone_model_dir):
    import torch

    from sgnsep.audio import frontend

    shared = Separator(tone_model_dir, device="cpu")
    independent = Separator(tone_model_dir, device="cpu", masks="independent")
    assert shared.masks == "shared"
    # Broadband noise plus tones: bins that both "low" and "hiss" claim, and bins that neither does.
    rng = np.random.default_rng(3)
    low, high = tone_mix(11025, 6.0, 1)
    mix = torch.as_tensor(low[0] + high[0] + 0.3 * rng.standard_normal(low.shape[-1]).astype(np.float32))
    audio = shared.meta.audio
    mag = frontend.stft(mix, audio).abs()[None, :, : audio.segment_frames]
    net_in = frontend.network_input(frontend.warp(mag, audio), audio)
    idx = shared.class_indices(["low", "high", "hiss"])
    # "low" twice: a well-trained model's masks of different classes rarely overlap, a class with itself does
    # wherever its mask passes 0.5, so the split is exercised whatever the model learnt.
    idx = [idx[0], *idx]
    m_ind, m_sh = independent._mask_fn(idx)(net_in), shared._mask_fn(idx)(net_in)
    total = m_ind.sum(dim=1, keepdim=True)
    over = total > 1.0
    assert over.float().mean() > 0.01, "the test input should make the masks overlap somewhere"
    assert m_sh.sum(dim=1).max() <= 1.0 + 1e-6
    # Where the masks overlap, the bin is split in the proportions the model gave; elsewhere nothing changes.
    torch.testing.assert_close(m_sh, torch.where(over, m_ind / total, m_ind))
    # One class alone is never rescaled: both modes give the same stem.
    a = shared.separate(low + high, 11025, ["low"])["low"]
    b = independent.separate(low + high, 11025, ["low"])["low"]
    np.testing.assert_array_equal(a, b)


def test_complete_masks_make_stems_that_add_up_to_the_mixture(tone_model_dir, tmp_path):
    low, high = tone_mix(11025, 4.0, 2, seed=11)
    mix = low + high
    complete = Separator(tone_model_dir, device="cpu", masks="complete")
    out = complete.separate(mix, 11025, ["low", "high"], residual=True)
    # The residual is what the STFT round trip leaves: float rounding, nothing a stem failed to claim.
    assert np.abs(out["residual"]).max() < 1e-4 * np.abs(mix).max()
    np.testing.assert_allclose(out["low"] + out["high"], mix, atol=1e-4 * np.abs(mix).max())
    shared = Separator(tone_model_dir, device="cpu").separate(mix, 11025, ["low", "high"], residual=True)
    assert np.abs(shared["residual"]).max() > 100 * np.abs(out["residual"]).max()  # shared leaves a residual
    # Still a separation, not a copy of the mixture: each stem is nearer its source than the mixture is.
    for name, ref, other in (("low", low, high), ("high", high, low)):
        assert np.sum((out[name] - ref) ** 2) < 0.5 * np.sum(other ** 2), name
    alone = complete.separate(mix, 11025, ["low"])
    np.testing.assert_allclose(alone["low"], mix, atol=1e-4 * np.abs(mix).max())  # one class: the whole mixture


def test_cli_masks_option_and_unknown_mode(tone_model_dir, tmp_path):
    low, high = tone_mix(11025, 3.0, 1, seed=5)
    sf.write(tmp_path / "mix.wav", (low + high).T, 11025, subtype="FLOAT")
    r = run_cli("separate", tmp_path / "mix.wav", "-s", "low,high", "-m", tone_model_dir, "--masks", "independent",
                "--json", "--bit-depth", "32", "-o", tmp_path / "ind")
    assert r.returncode == 0, r.stderr
    manifest = json.loads(r.stdout)
    assert manifest["model"]["masks"] == "independent"
    api = Separator(tone_model_dir, device="cpu", masks="independent").separate(low + high, 11025, ["low", "high"])
    for name in ("low", "high"):
        written, _ = sf.read(manifest["files"][0]["outputs"][name], always_2d=True, dtype="float32")
        np.testing.assert_allclose(written.T, api[name], atol=1e-6)
    with pytest.raises(UsageError, match="--masks must be one of shared, independent, complete"):
        Separator(tone_model_dir, device="cpu", masks="soft")
    sf.write(tmp_path / "x.wav", np.zeros((11025, 1), np.float32), 11025)
    r = run_cli("separate", tmp_path / "x.wav", "-s", "low", "-m", tone_model_dir, "--masks", "soft", "-o", tmp_path / "out")
    assert r.returncode != 0 and "--masks must be one of" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("hops_per_window", [2, 4])
@pytest.mark.parametrize("block_frames", [1, 7, 64, 10_000])
def test_span_synthesis_equals_torch_istft_for_any_block_size(block_frames, hops_per_window):
    """overlap_add._SpanSTFT (blocked, both channels per step, only the frames that reach the requested
    samples, 50 % or 75 % overlap) against torch.stft / torch.istft with the same band mask: low bins their
    own value, the rest one value per frame. 20000 samples end 32 samples after the last frame's centre, so
    the window power is well away from zero at both ends."""
    import torch

    from sgnsep.separation.overlap_add import _SpanSTFT

    gen = torch.Generator().manual_seed(block_frames)
    x = torch.randn(2, 20_000, generator=gen)
    n_fft = 512
    hop = n_fft // hops_per_window
    span = _SpanSTFT(x, n_fft, hop, block_frames=block_frames)
    frames = span.spec.shape[1]
    low = torch.rand(frames, 40, generator=gen)
    edge = torch.rand(frames, generator=gen)
    window = torch.hann_window(n_fft)
    spec = torch.stft(x, n_fft, hop, window=window, center=True, pad_mode="reflect", return_complex=True)
    torch.testing.assert_close(span.spec, spec.transpose(1, 2), rtol=0, atol=1e-4)
    mask = torch.cat([low, edge[:, None].expand(frames, n_fft // 2 + 1 - 40)], dim=1)  # (T, F)
    want = torch.istft(spec * mask.T, n_fft, hop, window=window, center=True, length=x.shape[-1])
    span.set_mask_band(low, edge)
    for lo, hi in [(0, 20_000), (1_000, 1_001), (3_333, 17_777), (19_000, 20_000)]:
        got = span.masked_samples(lo, hi, torch.empty(2, hi - lo))
        torch.testing.assert_close(got, want[:, lo:hi], rtol=0, atol=2e-5)


@pytest.mark.parametrize("sr,channels", [(8000, 1), (11025, 2), (22050, 2), (44100, 2), (48000, 3)])
def test_fast_path_equals_the_plain_reference_path(tone_model_dir, sr, channels):
    """The optimised chunk path (spans, custom overlap-add, reused buffers) against tests/reference_separation.py."""
    from tests.reference_separation import reference_stems

    low, high = tone_mix(sr, 14.1, channels, seed=sr + channels)
    noise = 0.01 * np.random.default_rng(sr).standard_normal(low.shape).astype(np.float32)
    mix = low + high + noise
    classes = ["low", "hiss", "high"]
    for chunk_seconds in (1000.0, 3.0):  # one chunk, and chunks with context
        fast = Separator(tone_model_dir, device="cpu", chunk_seconds=chunk_seconds).separate(mix, sr, classes)
        ref = reference_stems(Separator(tone_model_dir, device="cpu"), mix, sr, classes)
        for k in classes:
            assert fast[k].shape == mix.shape
            err = np.abs(fast[k] - ref[k]).max()
            assert err < 1e-5 * max(1.0, np.abs(ref[k]).max()), f"{k} at {sr} Hz, chunks {chunk_seconds} s: {err}"


@pytest.mark.parametrize("sr,channels", [(22050, 1), (44100, 2), (48000, 2)])
def test_fast_path_of_the_default_model_equals_the_plain_reference_path(sr, channels):
    """The default model's STFT (1024 / 256 at 11.025 kHz) and the input's coincide at 22.05 and 44.1 kHz:
    there the chunk path maps masks by indexing instead of interpolating (overlap_add._model_frame_offset);
    at 48 kHz it interpolates. Both against tests/reference_separation.py, one chunk and several."""
    from sgnsep.separation import chunk_plan, overlap_add
    from sgnsep.models.registry import DEFAULT_MODEL
    from tests.reference_separation import reference_stems

    sep = Separator(DEFAULT_MODEL, device="cpu")
    plan = chunk_plan.make_plan(sr, sr * 30, sep.meta.audio, chunk_seconds=7.0)
    span0 = plan.n_fft_in * 3  # a span start on the input frame grid, as separate_chunk's
    aligned = overlap_add._model_frame_offset(plan, span0, 0) is not None
    assert aligned == (sr != 48000)
    low, high = tone_mix(sr, 16.3, channels, seed=sr)
    mix = low + high + 0.01 * np.random.default_rng(sr).standard_normal(low.shape).astype(np.float32)
    classes = ["violin", "cello", "flute"]
    ref = reference_stems(sep, mix, sr, classes)
    for chunk_seconds in (1000.0, 7.0):
        fast = Separator(DEFAULT_MODEL, device="cpu", chunk_seconds=chunk_seconds).separate(mix, sr, classes)
        for k in classes:
            assert fast[k].shape == mix.shape
            err = np.abs(fast[k] - ref[k]).max()
            assert err < 1e-5 * max(1.0, np.abs(ref[k]).max()), f"{k} at {sr} Hz, chunks {chunk_seconds} s: {err}"


def test_synthesis_step_one_equals_the_reference_path_too(monkeypatch):
    """The 75 % overlap grid (make_plan(..., synthesis_step=1), the default before 50 %) still holds to the
    plain reference path, and its stems differ from the default grid's by far less than the stems themselves."""
    import functools

    from sgnsep.separation import chunk_plan
    from sgnsep.models.registry import DEFAULT_MODEL
    from tests.reference_separation import reference_stems

    sr = 44100
    low, high = tone_mix(sr, 9.7, 2, seed=3)
    mix = low + high + 0.01 * np.random.default_rng(3).standard_normal(low.shape).astype(np.float32)
    classes = ["violin", "cello"]
    default = Separator(DEFAULT_MODEL, device="cpu").separate(mix, sr, classes)
    monkeypatch.setattr(chunk_plan, "make_plan", functools.partial(chunk_plan.make_plan, synthesis_step=1))
    sep = Separator(DEFAULT_MODEL, device="cpu", chunk_seconds=4.0)
    fine = sep.separate(mix, sr, classes)
    ref = reference_stems(sep, mix, sr, classes)
    for k in classes:
        assert np.abs(fine[k] - ref[k]).max() < 1e-5 * max(1.0, np.abs(ref[k]).max())
        diff_db = 10 * np.log10(np.sum((fine[k] - default[k]) ** 2) / np.sum(fine[k] ** 2))
        assert -80 < diff_db < -15, diff_db  # different grids, close stems


def test_mono_and_tensor_inputs_and_short_inputs(sep):
    import torch

    low, high = tone_mix(16000, 0.05, 1)  # 800 samples: shorter than one STFT window of the model
    out = sep.separate(torch.from_numpy((low + high)[0]), 16000, ["high"], residual=True)
    assert out["high"].shape == (800,)
    assert np.abs(out["high"] + out["residual"] - (low + high)[0]).max() < 1e-5


def test_class_errors_list_classes_and_closest_match(sep):
    with pytest.raises(UsageError, match="Did you mean 'high'") as e:
        sep.class_indices("hihg")
    assert "low, high, hiss" in str(e.value)
    with pytest.raises(UsageError, match="asked for twice"):
        sep.class_indices("low,low")
    with pytest.raises(UsageError, match="empty"):
        sep.class_indices("low,")
    assert sep.class_indices(["HISS", "low"]) == [2, 0]


def test_streamed_file_outputs_equal_the_in_memory_stems_channel_by_channel(tone_model_dir, tmp_path):
    """separate_file streams chunks through a reused, interleaved buffer; separate() fills whole arrays.
    Both must give the same samples in the same channels (three that differ), through many chunks."""
    low, high = tone_mix(22050, 9.0, 3, seed=4)
    mix = low + high
    mix[1] *= 0.3  # no two channels alike, so a swapped or misplaced channel cannot pass
    src = tmp_path / "trio.wav"
    sf.write(src, mix.T, 22050, subtype="FLOAT")
    sep = Separator(tone_model_dir, device="cpu", chunk_seconds=2.0)
    expected = sep.separate(mix, 22050, ["high", "low"], residual=True)
    res = sep.separate_file(src, ["high", "low"], out_dir=tmp_path / "out", residual=True)
    for name in ("high", "low", "residual"):
        written, rate = sf.read(res.outputs[name], dtype="float32", always_2d=True)
        assert rate == 22050 and written.shape == mix.T.shape
        np.testing.assert_array_equal(written.T, expected[name], err_msg=name)
    assert np.abs(expected["low"][0]).max() > 0.1 and np.abs(expected["high"][2]).max() > 0.1  # not silence


def test_the_accelerator_path_gives_the_host_path_stems(tone_model_dir, tmp_path, monkeypatch):
    """On a GPU the stems are synthesised over whole spans and copied back into numpy; on the CPU over blocks of
    frames, straight into the caller's arrays. No GPU here: the accelerator path runs on the CPU by declaring the
    device's memory not the host's, and must give the same stems, in memory and in files."""
    from sgnsep.separation import overlap_add

    low, high = tone_mix(22050, 7.0, 2, seed=5)
    mix = low + high
    mix[1] *= 0.5
    src = tmp_path / "duo.wav"
    sf.write(src, mix.T, 22050, subtype="FLOAT")
    sep = Separator(tone_model_dir, device="cpu", chunk_seconds=2.0)
    runs = {}
    blocks = []
    real_span_stft = overlap_add._SpanSTFT

    def spy(x, n_fft, hop, block_frames=overlap_add.SYNTHESIS_BLOCK_FRAMES):
        blocks.append(block_frames)
        return real_span_stft(x, n_fft, hop, block_frames)

    monkeypatch.setattr(overlap_add, "_SpanSTFT", spy)
    for path in ("host", "accelerator"):
        if path == "accelerator":
            monkeypatch.setattr(overlap_add, "host_memory", lambda device: False)
        blocks.clear()
        in_memory = sep.separate(mix, 22050, ["low", "high"], residual=True)
        res = sep.separate_file(src, ["low", "high"], out_dir=tmp_path / path, residual=True)
        files = {n: sf.read(p, dtype="float32", always_2d=True)[0].T for n, p in res.outputs.items()}
        runs[path] = (in_memory, files)
        assert set(blocks) == ({overlap_add.SYNTHESIS_BLOCK_FRAMES} if path == "host" else {None})  # the path ran
    for name in ("low", "high", "residual"):
        for host, accelerator in zip(runs["host"], runs["accelerator"]):
            np.testing.assert_allclose(accelerator[name], host[name], atol=1e-6, rtol=0, err_msg=name)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (none in CI)")
def test_stems_on_cuda_match_the_cpu_stems(tone_model_dir):
    """Where a GPU is at hand: the same stems as on the CPU, up to the GPU's arithmetic (cuFFT, TF32 convolutions)."""
    low, high = tone_mix(44100, 12.0, 2, seed=6)
    mix = low + high
    on = {d: Separator(tone_model_dir, device=d, chunk_seconds=5.0).separate(mix, 44100, "low,high", residual=True)
          for d in ("cpu", "cuda")}
    for name in ("low", "high", "residual"):
        assert snr(on["cpu"][name], on["cuda"][name]) > 40.0, name


def test_separate_file_keeps_rate_and_channels_and_refuses_to_overwrite(sep, tmp_path):
    low, high = tone_mix(22050, 4.0, 3)
    src = tmp_path / "trio.flac"
    sf.write(src, (low + high).T, 22050, subtype="PCM_24")
    res = sep.separate_file(src, ["low", "high"], out_dir=tmp_path / "out", residual=True, ext="flac", bit_depth=24)
    assert set(res.outputs) == {"low", "high", "residual"}
    for name, path in res.outputs.items():
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.frames, info.subtype) == (22050, 3, low.shape[1], "PCM_24")
        assert Path(path) == tmp_path / "out" / "tone-tiny" / "trio" / f"{name}.flac"
    before = Path(res.outputs["low"]).read_bytes()
    with pytest.raises(OutputError, match="--overwrite"):
        sep.separate_file(src, ["low"], out_dir=tmp_path / "out", ext="flac")
    assert Path(res.outputs["low"]).read_bytes() == before
    sep.separate_file(src, ["low"], out_dir=tmp_path / "out", ext="flac", overwrite=True)
    assert not list((tmp_path / "out").rglob("*.partial"))


@pytest.mark.parametrize(
    "name,sr,channels,subtype",
    [("a.wav", 44100, 2, "PCM_16"), ("b.flac", 48000, 1, "PCM_24"), ("c.ogg", 22050, 2, None), ("d.mp3", 32000, 1, None)],
)
def test_cli_separates_real_files_of_several_formats(tone_model_dir, tmp_path, name, sr, channels, subtype):
    low, high = tone_mix(sr, 3.0, channels, seed=3)
    src = tmp_path / name
    sf.write(src, (low + high).T, sr, **({"subtype": subtype} if subtype else {}))
    r = run_cli("separate", src, "--sources", "high,low", "--model", tone_model_dir, "--out", tmp_path / "o", "--residual")
    assert r.returncode == 0, r.stderr
    track = tmp_path / "o" / "tone-tiny" / Path(name).stem
    got = {p.name for p in track.iterdir()}
    assert got == {"high.wav", "low.wav", "residual.wav"}
    mix, _ = sf.read(src, always_2d=True)
    stems = {p.stem: sf.read(p, always_2d=True) for p in track.iterdir()}
    for data, rate in stems.values():
        assert rate == sr and data.shape == mix.shape
    total = sum(d for d, _ in stems.values())
    assert np.abs(total - mix).max() < 1e-4  # float32 wav outputs sum back to the decoded input


def test_cli_folder_input_json_manifest_and_name_template(tone_model_dir, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(2):
        low, high = tone_mix(11025, 2.0, 1, seed=i)
        sf.write(folder / f"t{i}.wav", (low + high).T, 11025)
    (folder / "notes.txt").write_text("not audio, ignored by the folder scan")
    r = run_cli(
        "separate", folder, "-s", "low", "-m", tone_model_dir, "-o", tmp_path / "o",
        "--name", "{track}-{source}.{ext}", "--json", "--bit-depth", "16",
    )
    assert r.returncode == 0, r.stderr
    manifest = json.loads(r.stdout)
    assert [Path(f["input"]).name for f in manifest["files"]] == ["t0.wav", "t1.wav"]
    assert manifest["model"]["name"] == "tone-tiny" and len(manifest["model"]["sha256"]) == 64
    assert manifest["failures"] == []
    for f in manifest["files"]:
        out = Path(f["outputs"]["low"])
        assert out.parent == tmp_path / "o" and out.name.endswith("-low.wav")
        assert sf.info(out).subtype == "PCM_16" and f["realtime_factor"] > 0


def test_cli_inputs_whose_outputs_would_collide_are_refused_before_any_work(tone_model_dir, tmp_path):
    # Two albums with a track of the same name: the default template would write both to one folder.
    low, high = tone_mix(11025, 1.0, 1)
    for album in ("a", "b"):
        (tmp_path / "in" / album).mkdir(parents=True)
        sf.write(tmp_path / "in" / album / "01.wav", (low + high).T, 11025)
    r = run_cli("separate", tmp_path / "in", "-s", "low", "-m", tone_model_dir, "-o", tmp_path / "o")
    assert r.returncode == 2, r.stderr
    assert "a/01.wav" in r.stderr and "b/01.wav" in r.stderr and "{parent}" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists()  # nothing written, not even the first file's stems

    # The hint works: {parent} tells them apart, and both are separated.
    r = run_cli(
        "separate", tmp_path / "in", "-s", "low", "-m", tone_model_dir, "-o", tmp_path / "o",
        "--name", "{model}/{parent}/{track}/{source}.{ext}", "--json",
    )
    assert r.returncode == 0, r.stderr
    outs = sorted(Path(f["outputs"]["low"]).relative_to(tmp_path / "o").as_posix() for f in json.loads(r.stdout)["files"])
    assert outs == ["tone-tiny/a/01/low.wav", "tone-tiny/b/01/low.wav"]


def test_cli_the_same_file_named_twice_is_separated_once(tone_model_dir, tmp_path):
    low, high = tone_mix(11025, 1.0, 1)
    sf.write(tmp_path / "x.wav", (low + high).T, 11025)
    r = run_cli(
        "separate", tmp_path / "x.wav", tmp_path / "x.wav", tmp_path, "-s", "low", "-m", tone_model_dir,
        "-o", tmp_path / "o", "--json",
    )
    assert r.returncode == 0, r.stderr
    assert [Path(f["input"]).name for f in json.loads(r.stdout)["files"]] == ["x.wav"]


def test_cli_unknown_class_is_one_line_with_the_classes(tone_model_dir, tmp_path):
    low, high = tone_mix(11025, 1.0, 1)
    sf.write(tmp_path / "x.wav", (low + high).T, 11025)
    r = run_cli("separate", tmp_path / "x.wav", "-s", "violin", "-m", tone_model_dir, "-o", tmp_path / "o")
    assert r.returncode == 2
    assert "has no class 'violin'" in r.stderr and "low, high, hiss" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists()


def test_cli_batch_with_a_bad_file_processes_the_good_ones(tone_model_dir, tmp_path):
    low, high = tone_mix(11025, 1.0, 1)
    sf.write(tmp_path / "good.wav", (low + high).T, 11025)
    (tmp_path / "bad.wav").write_bytes(b"RIFF not really a wave file")
    r = run_cli("separate", tmp_path / "bad.wav", tmp_path / "good.wav", "-s", "low", "-m", tone_model_dir, "-o", tmp_path / "o")
    assert r.returncode == 3, r.stderr
    assert "bad.wav: not a readable audio file" in r.stderr
    assert "1 of 2 files separated, 1 failed" in r.stderr
    assert (tmp_path / "o" / "tone-tiny" / "good" / "low.wav").is_file()
    assert not (tmp_path / "o" / "tone-tiny" / "bad").exists() or not any((tmp_path / "o" / "tone-tiny" / "bad").iterdir())


def test_cli_device_cuda_without_cuda_is_a_clear_error(tone_model_dir, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    sf.write(tmp_path / "x.wav", np.zeros((11025, 1), np.float32), 11025)
    r = run_cli("separate", tmp_path / "x.wav", "-s", "low", "-m", tone_model_dir, "--device", "cuda")
    assert r.returncode == 6 and "CUDA is not available" in r.stderr and "Traceback" not in r.stderr


def test_cli_model_from_the_hub(tone_model_dir, tmp_path, hub_server):
    files = {p.name: p.read_bytes() for p in Path(tone_model_dir).iterdir()}
    hub_server.add_repo("acme/tones", files)
    low, high = tone_mix(11025, 1.0, 1)
    sf.write(tmp_path / "x.wav", (low + high).T, 11025)
    env = {"HF_ENDPOINT": hub_server.endpoint, "HF_HUB_CACHE": str(hub_server.cache_dir)}
    r = run_cli("separate", tmp_path / "x.wav", "-s", "low", "-m", "acme/tones@main", "-o", tmp_path / "o", env=env)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "o" / "tone-tiny" / "x" / "low.wav").is_file()
    # Offline afterwards: the cache is enough.
    r = run_cli(
        "separate", tmp_path / "x.wav", "-s", "high", "-m", "acme/tones", "-o", tmp_path / "o",
        env={**env, "HF_HUB_OFFLINE": "1"},
    )
    assert r.returncode == 0, r.stderr


def test_cli_models_lists_the_registry():
    r = run_cli("models", "--json")
    assert r.returncode == 0
    rows = json.loads(r.stdout)
    assert any(row["default"] for row in rows)


def test_cli_pull_prefetches_for_offline_use(tone_model_dir, tmp_path, hub_server):
    hub_server.add_repo("acme/tones", {p.name: p.read_bytes() for p in Path(tone_model_dir).iterdir()})
    env = {"HF_ENDPOINT": hub_server.endpoint, "HF_HUB_CACHE": str(hub_server.cache_dir)}
    r = run_cli("pull", "acme/tones", env=env)
    assert r.returncode == 0, r.stderr
    folder = Path(r.stdout.strip())
    assert (folder / "model.safetensors").read_bytes() == (Path(tone_model_dir) / "model.safetensors").read_bytes()
    hub_server.stop()
    low, high = tone_mix(11025, 1.0, 1)
    sf.write(tmp_path / "x.wav", (low + high).T, 11025)
    r = run_cli("separate", tmp_path / "x.wav", "-s", "low", "-m", "acme/tones", "-o", tmp_path / "o",
                env={**env, "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr
    r = run_cli("pull", "acme/missing", env={**env, "HF_ENDPOINT": "http://127.0.0.1:9"})
    assert r.returncode == 5 and "--model" in r.stderr and "Traceback" not in r.stderr


def test_outputs_get_normal_file_permissions(sep, tmp_path):
    low, high = tone_mix(11025, 1.0, 1)
    sf.write(tmp_path / "x.wav", (low + high).T, 11025)
    old = os.umask(0o022)
    try:
        res = sep.separate_file(tmp_path / "x.wav", ["low"], out_dir=tmp_path / "o")
    finally:
        os.umask(old)
    assert (os.stat(res.outputs["low"]).st_mode & 0o777) == 0o644


def test_a_batch_exits_with_the_code_its_failures_share():
    from sgnsep.core.errors import InputAudioError, OutputError, UsageError, exit_code_of

    assert exit_code_of([]) == 0
    assert exit_code_of([InputAudioError("a"), InputAudioError("b")]) == 3
    assert exit_code_of([InputAudioError("a"), OutputError("b")]) == 1
    assert exit_code_of(iter([UsageError("a")])) == 2
