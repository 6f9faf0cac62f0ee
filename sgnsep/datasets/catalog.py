"""What every dataset is, in words: its title, description, expected layout, where to get it and how it
splits (:data:`INFO`), where datasets live by default, and :class:`DatasetNotFound`, the error that says
what is missing and how to get it. Text only: the loaders are in :mod:`sgnsep.datasets.registry`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sgnsep.core.errors import UsageError


OFFLINE_TEXT = (
    "To train offline right away, render a solo corpus into a new folder and train on it:\n"
    "  sgnsep data synth --out SYNTH_DIR && sgnsep train --dataset solos --data-dir SYNTH_DIR"
)


class DatasetNotFound(UsageError):
    """A dataset's folder is missing, or lacks the files it needs (index lists, labels, any audio).

    ``str(err)`` says what is missing where, then how to get the dataset (several lines) and how to train
    offline instead. ``err.dataset`` and ``err.root`` name the dataset and the folder.
    """

    def __init__(self, name: str, root: Path, problem: str):
        spec = INFO[name]
        self.dataset, self.root = name, Path(root)
        super().__init__(f"{spec.title} not found: {problem}", hint=f"{spec.help_text(self.root)}\n{OFFLINE_TEXT}")

    def __str__(self) -> str:  # the problem on the first line, then the instructions
        return f"{self.message}\n{self.hint}"


@dataclass(frozen=True)
class DatasetInfo:
    """One dataset: ``name`` (for --dataset), ``title``, ``description``, ``layout`` (the files expected
    under the dataset folder, one per line), ``get`` (how to obtain them), ``splits`` (how train/val/test are
    made). :class:`sgnsep.datasets.registry.DatasetSpec` adds its loader."""

    name: str
    title: str
    description: str
    layout: str
    get: str
    splits: str

    def default_dir(self) -> Path:
        return default_data_dir(self.name)

    def help_text(self, root: Path | None = None) -> str:
        root = Path(root) if root is not None else self.default_dir()
        return (
            f"{self.description}\n"
            f"Expected layout (DIR = {root}):\n{self.layout}\n"
            f"{self.get}\n"
            f"Splits: {self.splits}"
        )


def data_root() -> Path:
    """Where datasets live by default: ``$SGNSEP_DATA``, else ``~/.cache/sgnsep/data``."""
    return Path(os.environ.get("SGNSEP_DATA") or "~/.cache/sgnsep/data").expanduser()


def default_data_dir(name: str) -> Path:
    """``$SGNSEP_DATA/<name>``; ``SGNSEP_DATA`` defaults to ``~/.cache/sgnsep/data``."""
    if name not in INFO:
        raise UsageError(f"Unknown dataset '{name}'; use one of {', '.join(INFO)}.")
    return data_root() / name


#: The text of every dataset, in the order `--dataset` lists them; the loaders are in sgnsep.datasets.registry.
INFO: dict[str, DatasetInfo] = {
    "solos": DatasetInfo(
        name="solos",
        title="Solos folder",
        description="A folder of solo recordings, one subfolder per class (what `sgnsep data synth` writes).",
        layout=(
            "  DIR/<class>/<clip>.wav    solo recordings of one class each (wav, flac, ogg, mp3, aiff, ...)\n"
            "  DIR/metadata.json         optional: {\"clips\": [{\"path\": \"<class>/<clip>.wav\", \"split\": "
            "\"train|val|test\"}, ...]}"
        ),
        get="Put your own recordings in that layout, or render one with `sgnsep data synth --out DIR`.",
        splits="metadata.json when it gives them; otherwise per class by hash of the file path, 10 % test, "
        "10 % validation, 80 % training (classes of 3 files or more; smaller ones train only).",
    ),
    "stems": DatasetInfo(
        name="stems",
        title="Stems folder",
        description="Multitrack recordings: one folder per track with one file per source class; every stem is "
        "used as a solo clip of its class.",
        layout=(
            "  DIR/<track>/<class>.wav   one stem per source class (file name = class, any audio extension)\n"
            "  DIR/<track>/mixture.wav   optional, ignored for training"
        ),
        get="Put your multitracks in that layout (the same one `sgnsep eval --dataset stems` reads).",
        splits="by track (all stems of a track stay together): tracks ordered by hash of their name, 10 % test, "
        "10 % validation, 80 % training (3 tracks or more; fewer: training only); a corpus of `sgnsep data "
        "music` by the split its metadata.json gives each track (by piece).",
    ),
    "music": DatasetInfo(
        name="music",
        title="MUSIC (MUSIC-11)",
        description="MUSIC (Zhao et al., \"The Sound of Pixels\", ECCV 2018): YouTube videos of solos and duets on "
        "11 instrument classes (accordion, acoustic_guitar, cello, clarinet, erhu, flute, saxophone, trumpet, "
        "tuba, violin, xylophone); MUSIC-21 (--dataset music21) adds 10 more. Only the lists of YouTube ids are "
        "published; you download the audio yourself. sgnsep trains on the solo videos only.",
        layout=(
            "  DIR/MUSIC_solo_videos.json            the official list: {\"version\": ..., \"videos\": "
            "{\"<class>\": [\"<youtube_id>\", ...]}}\n"
            "                                        (MUSIC21_solo_videos.json is used, restricted to the 11 "
            "classes, when it is the only list)\n"
            "  DIR/audio/<class>/<youtube_id>.wav    one file per downloaded solo video (.wav, .flac, .ogg or "
            ".mp3; not .mp4/.webm/.m4a),\n"
            "                                        e.g. DIR/audio/acoustic_guitar/M3dekVSwNjY.wav"
        ),
        get=(
            "Get the JSON lists from https://github.com/roudimit/MUSIC_dataset, then the audio of each listed "
            "video, e.g.\n"
            "  yt-dlp -x --audio-format wav -o \"DIR/audio/<class>/%(id)s.%(ext)s\" "
            "\"https://www.youtube.com/watch?v=<youtube_id>\"\n"
            "Videos listed but not downloaded are skipped and counted."
        ),
        splits="no official split file exists; each video goes by a hash of its YouTube id: 20 % test (the "
        "paper's 358 train / 90 test), 10 % validation, 70 % training, the same in MUSIC and MUSIC-21.",
    ),
    "music21": DatasetInfo(
        name="music21",
        title="MUSIC-21",
        description="MUSIC-21 (Zhao et al., \"The Sound of Motions\", ICCV 2019; MUSIC of \"The Sound of Pixels\", "
        "2018, extended): YouTube solo and duet videos of 21 instrument classes, the 11 of MUSIC plus bagpipe, "
        "banjo, bassoon, congas, drum, electric_bass, guzheng, piano, pipa, ukulele. Only the lists of YouTube "
        "ids are published; you download the audio yourself. sgnsep trains on the solo videos only.",
        layout=(
            "  DIR/MUSIC21_solo_videos.json          the official list: {\"version\": ..., \"videos\": "
            "{\"<class>\": [\"<youtube_id>\", ...]}}\n"
            "  DIR/audio/<class>/<youtube_id>.wav    one file per downloaded solo video (.wav, .flac, .ogg or "
            ".mp3; not .mp4/.webm/.m4a),\n"
            "                                        e.g. DIR/audio/bagpipe/kw-OQpF9N4E.wav"
        ),
        get=(
            "Get MUSIC21_solo_videos.json from https://github.com/roudimit/MUSIC_dataset, then the audio of each "
            "listed video, e.g.\n"
            "  yt-dlp -x --audio-format wav -o \"DIR/audio/<class>/%(id)s.%(ext)s\" "
            "\"https://www.youtube.com/watch?v=<youtube_id>\"\n"
            "Videos listed but not downloaded are skipped and counted."
        ),
        splits="by a hash of the YouTube id: 20 % test, 10 % validation, 70 % training (as for MUSIC; a video "
        "has the same split in both).",
    ),
    "fuss": DatasetInfo(
        name="fuss",
        title="FUSS",
        description="FUSS (Wisdom et al., \"What's All the FUSS About Free Universal Sound Separation Data?\", "
        "2020): 10 s mixtures of 1 to 4 sources cut from FSD50K clips, with every source as its own file. FUSS "
        "itself names every source '..._sound' (no classes); sgnsep labels a source with the first (most "
        "specific) FSD50K label of the clip it was cut from, found through the example's .jams file.",
        layout=(
            "  DIR/ssdata/{train,validation,eval}_example_list.txt     (from FUSS_ssdata.tar.gz; ssdata_reverb/ "
            "is read too)\n"
            "  DIR/ssdata/<split>/exampleNNNNN.wav                     the mixture (ignored for training)\n"
            "  DIR/ssdata/<split>/exampleNNNNN_sources/background0_sound.wav, foreground<k>_sound.wav\n"
            "  DIR/ssdata/<split>/exampleNNNNN.jams                    scaper's record: the FSD50K clip of each source\n"
            "  DIR/FSD50K.ground_truth/dev.csv, eval.csv               FSD50K labels (fname,labels,mids[,split])"
        ),
        get=(
            "Download FUSS_ssdata.tar.gz from https://zenodo.org/record/3743844 and FSD50K.ground_truth.zip from "
            "https://zenodo.org/record/4060432, and extract both into DIR."
        ),
        splits="official: train -> train, validation -> val, eval -> test.",
    ),
    "musdb18": DatasetInfo(
        name="musdb18",
        title="MUSDB18",
        description="MUSDB18 (Rafii et al., 2017): 150 full music tracks with drums, bass, other and vocals "
        "stems; each stem is used as a solo clip of its class.",
        layout=(
            "  DIR/train/<Artist - Title>/{mixture,drums,bass,other,vocals}.wav   (100 tracks; mixture ignored)\n"
            "  DIR/test/<Artist - Title>/{mixture,drums,bass,other,vocals}.wav    (50 tracks)"
        ),
        get=(
            "That is the MUSDB18-HQ layout (https://zenodo.org/record/3338373). The compressed MUSDB18 "
            "(<track>.stem.mp4) cannot be read by libsndfile: convert it with `pip install musdb` and "
            "`musdbconvert MUSDB18_DIR DIR`."
        ),
        splits="official: test/ -> test; the 14 validation tracks of the musdb package (e.g. 'Actions - One "
        "Minute Smile') -> val; the other 86 train/ tracks -> train.",
    ),
    "vggsound": DatasetInfo(
        name="vggsound",
        title="VGG-Sound",
        description="VGG-Sound (Chen et al., ICASSP 2020): about 200k 10 s YouTube clips of 309 sound classes; "
        "each clip is used as a solo clip of its label.",
        layout=(
            "  DIR/vggsound.csv                          rows youtube_id,start_seconds,label,split (train|test), "
            "no header\n"
            "  DIR/audio/<youtube_id>_<start:06d>.wav    the clip's audio (.wav, .flac, .ogg or .mp3), e.g. "
            "DIR/audio/---g-f_I2yQ_000001.wav\n"
            "  DIR/video/<youtube_id>_<start:06d>.mp4    the released videos: libsndfile cannot read mp4, so "
            "extract the audio first:\n"
            "                                            ffmpeg -i video/<name>.mp4 -vn -ac 1 audio/<name>.wav"
        ),
        get="Get vggsound.csv (and the clips) from https://www.robots.ox.ac.uk/~vgg/data/vggsound/.",
        splits="official test rows -> test; training rows -> val for the 5 % whose clip id hashes lowest, "
        "train for the rest.",
    ),
}
