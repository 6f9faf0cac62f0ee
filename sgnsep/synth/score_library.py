"""Pieces of music21's bundled corpus as lists of notes per part, for the music corpus (sgnsep/synth/music_corpus.py).

What is read
    Every score of music21's corpus except those reserved for evaluation and those that are not music to
    play: Palestrina's masses, Monteverdi's madrigals, the trecento (PMFC) and Ciconia, Josquin, Bach (the
    chorales and the other harmonisations, and the WTC prelude), Corelli, C. P. E. Bach, Handel, Schubert,
    the Schumanns, ..., and the folk and fiddle tunes of the Essen collection, O'Neill's 1850, Ryan's
    Mammoth, Aird's Airs and the American fife and Northumbrian minstrelsy books. music21's string quartets
    (every Haydn, Mozart and Beethoven file, and Robert Schumann's op. 41) are reserved for evaluation:
    :func:`check_score_allowed` refuses them by path, even behind a symbolic link, the way sgnsep.synth
    refuses csound's sf_GMbank.sf2. Demos, theory exercises and Roman-numeral analyses (``.rntxt``) are
    not scores and are skipped.

Pieces
    A piece is a file, or one tune (``X:`` number) of an ABC file that holds many (``"essenFolksong/lot.abc#5"``);
    Josquin's ABC files give each voice as its own tune, so there the file is the piece. The listing
    (:func:`list_pieces`) reads file names and ABC headers only, no music21 parsing.

Notes
    :func:`load_piece` parses one piece with music21 (without its pickle cache) and keeps, per part, one line
    of notes ``[midi, onset_quarters, duration_quarters, fermata]``: ties merged, grace notes dropped, the top
    note of a chord (and, for keyboard-like parts where most onsets are chords, the bottom notes as a second
    line), one note at a time. Parts with fewer than :data:`MIN_NOTES` notes are dropped. Each parsed piece
    is cached as one JSON file (``<cache>/<sha1 of the id>.json``, keyed by music21's version), so a piece is
    parsed once and only pieces that are used are parsed.

Splits
    :func:`sgnsep.datasets.splits.piece_split` puts every piece in one split by a hash of its *work* (:func:`work_key`): the Bach
    chorales of sgnsep.synth keep that module's split (so the packaged chorale test sets stay unseen),
    Palestrina's movements go with their mass, and folk tunes go by their title (the same tune appears in
    several collections, e.g. O'Neill's files overlap).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from sgnsep.core.atomic_write import write_text_atomic
from sgnsep.core.errors import UsageError

__all__ = [
    "RESERVED_PREFIXES",
    "GROUPS",
    "Piece",
    "corpus_root",
    "check_score_allowed",
    "list_pieces",
    "load_piece",
    "work_key",
    "default_cache_dir",
]

#: Corpus paths (relative to music21's corpus folder) never read: the string quartets, kept for evaluation.
RESERVED_PREFIXES = ("haydn/", "mozart/", "beethoven/", "schumann_robert/opus41")

# Not music to play: test files, exercises, harmonic analyses.
_SKIPPED_PREFIXES = ("demos/", "theoryExercises/", "bach/choraleAnalyses/", "nottingham-dataset/")
_SKIPPED_SUFFIXES = (".rntxt",)
_EXTENSION_PREFERENCE = (".mxl", ".musicxml", ".xml", ".krn", ".abc")  # one file per work when several exist

#: Style groups the corpus draws from (collection folder -> group); unknown folders go to "other".
GROUPS: dict[str, str] = {
    "palestrina": "renaissance", "josquin": "renaissance", "lusitano": "renaissance", "monteverdi": "renaissance",
    "trecento": "medieval", "ciconia": "medieval", "luca": "medieval",
    "bach": "baroque", "corelli": "baroque", "handel": "baroque", "cpebach": "baroque",
    "essenFolksong": "folk", "oneills1850": "folk", "ryansMammoth": "folk", "airdsAirs": "folk", "miscFolk": "folk",
}
# ABC files whose tunes are the voices of one piece.
_VOICES_AS_TUNES = ("josquin/",)

MIN_NOTES = 8
CHORD_LINE_SHARE = 0.3  # a part whose onsets are chords this often also gives its bottom notes as a line


@dataclass(frozen=True)
class Piece:
    """One listed piece: ``id`` (``rel`` or ``rel#X``), ``rel`` (file in the corpus), ``number`` (ABC tune or
    None), ``collection`` (top folder), ``group`` (:data:`GROUPS`), ``title`` (ABC ``T:`` or '')."""

    id: str
    rel: str
    number: int | None
    collection: str
    group: str
    title: str


def corpus_root() -> Path:
    from music21 import common

    return Path(common.getCorpusFilePath())


def check_score_allowed(path: str | os.PathLike) -> str:
    """The corpus-relative path of ``path`` (relative or absolute), or UsageError if it is reserved (a string
    quartet) or outside music21's corpus. A symbolic link is judged by its target too."""
    root = corpus_root()
    p = Path(path)
    full = p if p.is_absolute() else root / p
    candidates = []
    for q in (full, full.resolve() if full.exists() else full):
        try:
            candidates.append(q.relative_to(root).as_posix())
        except ValueError:
            try:
                candidates.append(q.relative_to(root.resolve()).as_posix())
            except ValueError:
                candidates.append(None)
    for rel in candidates:
        if rel is not None and rel.lower().startswith(tuple(x.lower() for x in RESERVED_PREFIXES)):
            raise UsageError(
                f"{rel} is one of music21's string quartets, which are reserved for evaluation.",
                hint="The music corpus reads every other score of the corpus (sgnsep.synth.score_library).",
            )
    if candidates[0] is None or candidates[-1] is None:
        raise UsageError(f"{path} is not a file of music21's corpus.")
    return candidates[0]


def _abc_tunes(path: Path) -> list[tuple[int, str]]:
    """(X number, title) of each tune of an ABC file, from its text (no parsing)."""
    tunes: list[tuple[int, str]] = []
    number, title = None, ""
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        m = re.match(r"\s*X:\s*(\d+)", line)
        if m:
            if number is not None:
                tunes.append((number, title))
            number, title = int(m.group(1)), ""
        elif number is not None and not title and line.startswith("T:"):
            title = line[2:].strip()
    if number is not None:
        tunes.append((number, title))
    return tunes


def list_pieces() -> list[Piece]:
    """Every allowed piece of music21's corpus, sorted by id (cheap: file names and ABC headers only; once per
    process)."""
    return list(_listing())


@functools.lru_cache(maxsize=1)
def _listing() -> tuple[Piece, ...]:
    from music21 import corpus

    root = corpus_root()
    files: dict[str, str] = {}  # work path without extension -> preferred file
    for p in corpus.getCorePaths():
        rel = Path(p).relative_to(root).as_posix()
        if rel.startswith(_SKIPPED_PREFIXES) or rel.endswith(_SKIPPED_SUFFIXES):
            continue
        if rel.lower().startswith(tuple(x.lower() for x in RESERVED_PREFIXES)):
            continue
        suffix = Path(rel).suffix.lower()
        if suffix not in _EXTENSION_PREFERENCE:
            continue
        stem = rel[: -len(suffix)]
        old = files.get(stem)
        if old is None or _EXTENSION_PREFERENCE.index(suffix) < _EXTENSION_PREFERENCE.index(Path(old).suffix.lower()):
            files[stem] = rel
    pieces = []
    seen_titles: set[tuple[str, str]] = set()
    for rel in sorted(files.values()):
        collection = rel.split("/", 1)[0]
        group = GROUPS.get(collection, "other")
        if rel.lower().endswith(".abc") and not rel.startswith(_VOICES_AS_TUNES):
            tunes = _abc_tunes(root / rel)
            for number, title in tunes:
                # O'Neill's files overlap (the same tune numbers in two files): keep the first.
                key = (collection, f"{number}:{title}" if collection == "oneills1850" else f"{rel}#{number}")
                if key in seen_titles:
                    continue
                seen_titles.add(key)
                pid = f"{rel}#{number}" if len(tunes) > 1 else rel
                pieces.append(Piece(pid, rel, number if len(tunes) > 1 else None, collection, group, title))
        else:
            title = _abc_tunes(root / rel)[0][1] if rel.lower().endswith(".abc") else ""
            pieces.append(Piece(rel, rel, None, collection, group, title))
    return tuple(sorted(pieces, key=lambda p: p.id))


# --- splits -----------------------------------------------------------------------------------------------


def _normalised(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def work_key(piece: Piece, chorale_ids: frozenset[str] = frozenset()) -> str:
    """What a piece's split is decided by: ``"chorale:<id>"`` for a Bach chorale that sgnsep.synth knows (its
    split rule), the mass for Palestrina's movements, the title for folk tunes, else the piece id."""
    stem = piece.rel.rsplit(".", 1)[0]
    if piece.collection == "bach":
        if stem in chorale_ids:
            return "chorale:" + stem
        base = stem.split("-", 1)[0]  # bwv248.64-6 and bwv248.64-s are one chorale
        for cid in sorted(chorale_ids):
            if cid.split("-", 1)[0] == base:
                return "chorale:" + cid
        return "work:" + base
    if piece.collection == "palestrina":
        m = re.search(r"_(\d+)", Path(stem).name)
        return "work:palestrina/mass" + (m.group(1) if m else Path(stem).name)
    if piece.group == "folk" and piece.title:
        return "tune:" + _normalised(piece.title)
    return "work:" + piece.id


# --- notes ------------------------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """``$SGNSEP_SCORE_CACHE``, else ``~/.cache/sgnsep/scores``."""
    env = os.environ.get("SGNSEP_SCORE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "sgnsep" / "scores"


_MEMO: dict[str, dict | None] = {}


def load_piece(piece: Piece, cache_dir: str | os.PathLike | None = None) -> dict | None:
    """``{"id", "parts": [{"name", "events": [[midi, onset_q, dur_q, fermata], ...]}, ...]}`` of ``piece``, or
    None if it has no usable part. Parsed once per process and, with ``cache_dir``, once per machine."""
    import music21

    if piece.id in _MEMO:
        return _MEMO[piece.id]
    check_score_allowed(piece.rel)
    version = str(music21.__version__)
    cache_file = None
    if cache_dir is not None:
        cache_file = Path(cache_dir) / (hashlib.sha1(piece.id.encode()).hexdigest()[:20] + ".json")
        try:
            data = json.loads(cache_file.read_text())
            if data.get("music21_version") == version and data.get("id") == piece.id:
                _MEMO[piece.id] = data["piece"]
                return data["piece"]
        except (OSError, ValueError, KeyError, AttributeError):
            pass
    result = _extract(piece)
    _MEMO[piece.id] = result
    if cache_file is not None:
        payload = {"music21_version": version, "id": piece.id, "piece": result}
        write_text_atomic(cache_file, json.dumps(payload, sort_keys=True, separators=(",", ":")))
    return result


def _parse(piece: Piece):
    from music21 import converter

    c = converter.Converter()
    # forceSource/storePickle: music21 would otherwise write and read pickles of every file in its scratch dir.
    c.parseFile(str(corpus_root() / piece.rel), number=piece.number, forceSource=True, storePickle=False)
    return c.stream


def _extract(piece: Piece) -> dict | None:
    try:
        stream = _parse(piece)
    except Exception:  # noqa: BLE001  (music21 raises many kinds; an unparsable file is unusable, not fatal)
        return None
    scores = list(stream.scores) if hasattr(stream, "scores") and len(stream.scores) else [stream]
    raw_parts = []
    for score in scores:
        parts = list(score.parts) if len(score.parts) else [score]
        raw_parts.extend(parts)
    lines = []
    for k, part in enumerate(raw_parts):
        # music21 makes up a part's id from id() when the file names none: never use that (not reproducible).
        pid = getattr(part, "id", None)
        name = getattr(part, "partName", None) or (pid if isinstance(pid, str) and not pid.isdigit() else "")
        name = str(name).strip() or f"part {k + 1}"
        for suffix, line in _part_lines(part):
            if len(line) >= MIN_NOTES:
                lines.append({"name": name + suffix, "events": line})
    if not lines:
        return None
    return {"id": piece.id, "parts": lines}


def _part_lines(part) -> list[tuple[str, list[list]]]:
    from music21 import expressions

    try:
        part.stripTies(inPlace=True)  # in place: a copy costs most of the time
    except Exception:  # noqa: BLE001  (malformed ties: keep the notes as they are)
        pass
    top, bottom = [], []
    chords = 0
    for n in part.flatten().notes:
        ql = float(n.duration.quarterLength)
        if ql <= 0:
            continue
        pitches = [p.midi for p in getattr(n, "pitches", ()) if p is not None]
        if not pitches:
            continue  # unpitched percussion
        fermata = int(any(isinstance(e, expressions.Fermata) for e in n.expressions))
        onset = round(float(n.offset), 6)  # in the flattened part: from the start of the piece
        chords += len(pitches) > 1
        top.append([int(max(pitches)), onset, round(ql, 6), fermata])
        bottom.append([int(min(pitches)), onset, round(ql, 6), fermata])
    if not top:
        return []
    out = [("", _monophonic(top, highest=True))]
    if chords >= CHORD_LINE_SHARE * len(top):
        out.append((" (bottom)", _monophonic(bottom, highest=False)))
    return out


def _monophonic(events: list[list], *, highest: bool) -> list[list]:
    """One note at a time: at equal onsets the highest (or lowest) note; a note is cut where the next starts."""
    events = sorted(events, key=lambda e: (e[1], -e[0] if highest else e[0]))
    mono: list[list] = []
    for e in events:
        if mono and e[1] <= mono[-1][1] + 1e-9:
            continue
        if mono and mono[-1][1] + mono[-1][2] > e[1]:
            mono[-1][2] = round(e[1] - mono[-1][1], 6)
        mono.append(list(e))
    return mono
