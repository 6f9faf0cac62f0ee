"""Reading and writing audio files with libsndfile (through soundfile).

Reading is by blocks so that long files are never held in memory whole. Writing goes to a temporary file
in the destination folder that is renamed into place only when it is complete, so an interrupted or failed
run never leaves a half-written stem under the final name.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sgnsep.core.atomic_write import PartialFile
from sgnsep.core.errors import InputAudioError, OutputError, UsageError
from sgnsep.core.interrupts import uninterrupted

# Extensions we look for when an input is a folder. libsndfile reads more; these are the common ones.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".opus", ".w64", ".caf")

OUTPUT_FORMATS = {"wav": "WAV", "flac": "FLAC"}
SUBTYPES = {
    ("wav", "16"): "PCM_16",
    ("wav", "24"): "PCM_24",
    ("wav", "32"): "FLOAT",
    ("flac", "16"): "PCM_16",
    ("flac", "24"): "PCM_24",
}


@dataclass(frozen=True)
class AudioInfo:
    path: Path
    sample_rate: int
    channels: int
    frames: int
    format: str

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def probe(path: str | os.PathLike) -> AudioInfo:
    """Header information, with user-facing errors for missing, unreadable and empty files."""
    import soundfile as sf

    path = Path(path)
    if not path.exists():
        raise InputAudioError(f"{path}: no such file.", hint="Check the path.")
    if path.is_dir():
        raise InputAudioError(f"{path} is a folder, not an audio file.")
    check_regular_readable(path)
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise InputAudioError(
            f"{path}: not a readable audio file ({read_failure_reason(path, exc)}).",
            hint="Use wav, flac, ogg or mp3; convert other formats first (e.g. with ffmpeg).",
        ) from None
    if info.frames <= 0:
        raise InputAudioError(f"{path}: the file holds no audio (0 samples).")
    if info.frames >= UNKNOWN_FRAMES:
        # libsndfile's "length unknown" (e.g. a FLAC streamed through a pipe): it cannot be read reliably.
        raise InputAudioError(
            f"{path}: the header does not say how long the audio is (a streamed or damaged file).",
            hint="Re-encode it to a regular file first (e.g. ffmpeg -i IN OUT.flac).",
        )
    if info.samplerate <= 0 or info.channels <= 0:
        raise InputAudioError(f"{path}: the header is invalid (rate {info.samplerate}, {info.channels} channels).")
    return AudioInfo(path, int(info.samplerate), int(info.channels), int(info.frames), str(info.format))


# libsndfile reports SF_COUNT_MAX frames when a header does not give the length.
UNKNOWN_FRAMES = 1 << 62
# Frames read at once: a header that claims more than the body holds must not size an allocation.
READ_BLOCK_FRAMES = 1 << 20


def check_regular_readable(path: Path) -> None:
    """Refuse what cannot be read in blocks, before libsndfile sees it.

    The open is non-blocking, so a FIFO with no writer is refused at once instead of blocking forever, and
    its errno gives the real reason (libsndfile reports a permission problem as "System error.").
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except PermissionError:
        raise InputAudioError(
            f"{path}: permission denied.", hint="Make the file readable by you (e.g. chmod u+r), or copy it elsewhere."
        ) from None
    except OSError as exc:
        raise InputAudioError(f"{path}: cannot be opened ({exc.strerror or exc}).", hint="Check the path.") from None
    try:
        mode = os.fstat(fd).st_mode
    finally:
        os.close(fd)
    if not stat.S_ISREG(mode):
        kind = "a pipe" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket"
        raise InputAudioError(
            f"{path} is {kind}, not a regular file: sgnsep reads audio in blocks and seeks, so it needs a file.",
            hint="Save the audio to a file first (e.g. ffmpeg -i - audio.flac).",
        )


def _sndfile_reason(exc: Exception) -> str:
    text = str(exc).strip()
    return text.split(":")[-1].strip() if ":" in text else text


def read_failure_reason(path: Path, exc: Exception) -> str:
    """libsndfile's reason, or the operating system's where libsndfile only says "System error."."""
    reason = _sndfile_reason(exc)
    if "system error" in reason.lower():
        try:
            with open(path, "rb") as fh:
                fh.read(1)
        except OSError as os_exc:
            return os_exc.strerror or str(os_exc)
    return reason


def write_failure_reason(folder: Path, exc: Exception) -> str:
    """Why a write into ``folder`` failed. libsndfile reports a full disk or a permission problem as
    "System error."; then the folder itself is asked."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    reason = _sndfile_reason(exc)
    if "system error" in reason.lower():
        try:
            if shutil.disk_usage(folder).free < (1 << 20):
                return os.strerror(errno.ENOSPC)
        except OSError:
            pass
        if not os.access(folder, os.W_OK):
            return os.strerror(errno.EACCES)
    return reason


def read_block(path: Path, start: int, stop: int) -> np.ndarray:
    """Samples [start, stop) as float32 (channels, samples). Non-finite samples are an error."""
    import soundfile as sf

    try:
        with sf.SoundFile(str(path)) as fh:
            fh.seek(start)
            blocks, remaining = [], stop - start
            while remaining > 0:  # in bounded blocks, so a lying header cannot ask for gigabytes at once
                block = fh.read(min(remaining, READ_BLOCK_FRAMES), dtype="float32", always_2d=True)
                if not len(block):
                    break
                blocks.append(block)
                remaining -= len(block)
            data = np.concatenate(blocks) if blocks else np.zeros((0, fh.channels), np.float32)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise InputAudioError(
            f"{path}: reading failed at sample {start} ({read_failure_reason(path, exc)}).",
            hint="The file is damaged; re-export or re-download it.",
        ) from None
    if data.shape[0] < stop - start:
        # The header promised more samples than the body holds (a truncated file): pad, but say so once.
        raise InputAudioError(
            f"{path}: the file is truncated (header says {stop} samples or more, body ends at "
            f"{start + data.shape[0]}).",
            hint="Re-export or re-download the file.",
        )
    if not np.isfinite(data).all():
        bad = int(np.argwhere(~np.isfinite(data))[0][0]) + start
        raise InputAudioError(
            f"{path}: holds NaN or infinite samples (first at sample {bad}).",
            hint="Repair the file (e.g. re-export it) before separating.",
        )
    return np.ascontiguousarray(data.T)


def read_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """The whole file as float32 (channels, samples) and its sample rate."""
    info = probe(path)
    return read_block(info.path, 0, info.frames), info.sample_rate


def default_bit_depth(ext: str) -> str:
    """32-bit float for wav (lossless for what the model produces), 24-bit for flac (its maximum)."""
    return "24" if ext.lower().lstrip(".") == "flac" else "32"


def resolve_format(ext: str, bit_depth: int | str) -> tuple[str, str]:
    ext = ext.lower().lstrip(".")
    if ext not in OUTPUT_FORMATS:
        raise UsageError(f"Output format '{ext}' is not supported; use one of {', '.join(OUTPUT_FORMATS)}.")
    key = (ext, str(bit_depth))
    if key not in SUBTYPES:
        allowed = sorted(b for e, b in SUBTYPES if e == ext)
        raise UsageError(f"Bit depth {bit_depth} is not available for {ext}; use one of {', '.join(allowed)}.")
    return OUTPUT_FORMATS[ext], SUBTYPES[key]


class AtomicAudioWriter:
    """Writes blocks to ``<dir>/.<name>.<pid>-<host>-<random>.partial`` and renames to ``path`` on :meth:`commit`.

    Creating the writer touches no file; :meth:`open` creates the temporary file. Keep the writer where your
    cleanup finds it before calling :meth:`open`, and call :meth:`abort` from that cleanup on any exception
    (Ctrl-C included): then no interrupt, wherever it lands, leaves a temporary file behind.
    """

    def __init__(self, path: Path, sample_rate: int, channels: int, fmt: str, subtype: str):
        self.path = Path(path)
        self.sample_rate, self.channels, self.fmt, self.subtype = sample_rate, channels, fmt, subtype
        self._partial = PartialFile(self.path)
        self._file = None
        self.frames = 0

    @property
    def tmp(self) -> Path:
        return self._partial.path

    @property
    def committed(self) -> bool:
        """Whether the output has been renamed into place (see :attr:`PartialFile.renamed`)."""
        return self._partial.renamed

    def open(self) -> "AtomicAudioWriter":
        import soundfile as sf

        try:
            os.close(self._partial.create())
        except OSError as exc:
            raise OutputError(
                f"Cannot write in {self.path.parent} ({exc.strerror}).",
                hint="Choose another folder with --out or fix its permissions.",
            ) from None
        try:
            self._file = sf.SoundFile(
                str(self.tmp), "w", samplerate=self.sample_rate, channels=self.channels, format=self.fmt,
                subtype=self.subtype,
            )
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            self._partial.discard()
            raise OutputError(
                f"Cannot write {self.path} as {self.fmt} with {self.channels} channels at {self.sample_rate} Hz "
                f"({_sndfile_reason(exc)}).",
                hint="FLAC holds at most 8 channels and 655350 Hz; use --ext wav.",
            ) from None
        return self

    def write(self, block: np.ndarray) -> None:
        """block (channels, samples)."""
        try:
            self._file.write(np.ascontiguousarray(block.T))
            self.frames += block.shape[-1]
        except Exception as exc:
            self.abort()
            raise OutputError(
                f"Writing {self.path} failed ({write_failure_reason(self.path.parent, exc)}).",
                hint="Check free disk space and permissions.",
            ) from None

    def commit(self) -> None:
        import soundfile as sf

        try:
            self._file.close()
            # libsndfile does not report every failed write (FLAC flushes its last frames on close and ignores
            # errors there): check that the file on disk holds what was written before it gets the final name.
            if sf.info(str(self.tmp)).frames != self.frames:
                raise OSError("the file on disk came out incomplete")
            self._partial.publish()
        except (OSError, RuntimeError) as exc:  # soundfile's LibsndfileError is a RuntimeError
            self.abort()
            raise OutputError(
                f"Finishing {self.path} failed ({write_failure_reason(self.path.parent, exc)}).",
                hint="Check free disk space.",
            ) from None

    def abort(self) -> None:
        with uninterrupted():  # a signal between the close and the removal would leave the temporary file
            try:
                if self._file is not None and not self._file.closed:
                    self._file.close()
            except Exception:
                pass
            self._partial.discard()


def write_audio(path: Path, audio: np.ndarray, sample_rate: int, *, subtype: str | None = None) -> None:
    """Write a whole (channels, samples) array atomically; the format follows the extension."""
    ext = path.suffix.lower().lstrip(".")
    fmt, default_subtype = resolve_format(ext, default_bit_depth(ext))
    writer = AtomicAudioWriter(path, sample_rate, audio.shape[0], fmt, subtype or default_subtype)
    try:
        writer.open()
        writer.write(audio)
        writer.commit()
    except BaseException:  # Ctrl-C included: no temporary file left behind
        writer.abort()
        raise


def list_audio_files(inputs: list[Path]) -> list[Path]:
    """Expand folders into their audio files (searched recursively, sorted); keep other paths as given."""
    files: list[Path] = []
    for item in inputs:
        if item.is_dir():
            found = [p for p in walk_files(item) if p.suffix.lower() in AUDIO_EXTENSIONS]
            if not found:
                raise InputAudioError(
                    f"{item}: the folder holds no audio files ({', '.join(AUDIO_EXTENSIONS)}).",
                    hint="Pass audio files or a folder that contains some.",
                )
            files.extend(found)
        else:
            files.append(item)
    return files


def _unlistable(folder, exc: OSError) -> InputAudioError:
    return InputAudioError(
        f"{exc.filename or folder}: cannot list this folder ({exc.strerror or exc}).",
        hint="Make it readable by you (e.g. chmod u+rx), or choose the files or folders you want.",
    )


def list_folder(folder: Path) -> list[Path]:
    """The entries of ``folder``, sorted. One that cannot be listed is an input error naming it (a bare
    PermissionError would reach the user as an internal error)."""
    try:
        return sorted(Path(folder).iterdir())
    except OSError as exc:
        raise _unlistable(folder, exc) from None


def walk_files(folder: Path) -> list[Path]:
    """Every file under ``folder``, sorted, links to folders not followed (as ``Path.rglob``). A subfolder that
    cannot be listed is an error: skipping it would leave the user's files unprocessed without a word."""

    def refuse(exc: OSError) -> None:
        raise _unlistable(folder, exc)

    found = []
    for root, _, names in os.walk(folder, onerror=refuse):
        found.extend(p for p in (Path(root) / n for n in names) if p.is_file())
    return sorted(found)
