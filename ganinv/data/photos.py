"""Folders of photos: align every face (`align_folder`), paste edited crops back (`unalign_folder`), align on the fly
with a cache (`aligned_copies`, the `align=true` option of the commands and the `images` data source), and tell
whether images look unaligned (`unaligned_hint`)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

from ganinv.checkpoints import atomic_write

from .align import Alignment, align, crop_names, ffhq_quad, open_photo, unalign
from .files import IMAGE_EXTENSIONS, DataError, list_images

ALIGNMENT_FILE = "alignment.json"
HEIF = (".heic", ".heif")  # phones' default format: read through pillow-heif (in the align extra)
FACES = ("largest", "all")
NO_FACE = "no face found"


def _progress(label: str, total: int):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    return bar, bar.add_task(label, total=total)


@functools.cache
def _heif_readable() -> bool:
    """Whether HEIC / HEIF photos can be read (pillow-heif installed; its PIL opener registered here)."""
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return True


def _not_photos(root: Path) -> dict[str, str]:
    """The files under `root` that ganinv-align leaves alone, with why (named, never silently passed over)."""
    heif = _heif_readable()
    known = (*IMAGE_EXTENSIONS, *(HEIF if heif else ()), ".json")
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() not in known:
            out[p.relative_to(root).as_posix()] = (
                "HEIC / HEIF photo, which needs pillow-heif: pip install 'ganinv[align]'" if p.suffix.lower() in HEIF
                else f"not a photo ({p.suffix.lower() or 'no extension'})")
    return out


def _faces(path: Path, finder) -> tuple[Image.Image, list[np.ndarray]] | str:
    """A photo and its faces' landmarks (largest first), or why it cannot be read."""
    try:
        photo = open_photo(path)
        return photo, finder.faces(np.asarray(photo))
    except Exception as e:  # noqa: BLE001 - an unreadable photo is named, never the end of the run
        return f"unreadable ({type(e).__name__}: {str(e).strip()[:100]})"


def _save(data: bytes, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: f.write(data))


def align_folder(input: str | os.PathLike, output: str | os.PathLike, size: int = 1024, face: str = "largest",
                 landmarks: str | None = None, min_score: float = 0.3,
                 workers: int = 1) -> tuple[dict[str, Alignment], dict]:
    """Every photo under `input` -> FFHQ crops under `output` (same sub-folders; `<stem>.png`, `<stem>_<k>.png`
    for more faces with `face="all"`) and `alignment.json` (each crop's Alignment, and the skipped photos with
    why), in `workers` processes. A killed run, run again, aligns only the photos it had not done. Returns
    ({crop name: Alignment}, {skipped photo: why})."""
    from ganinv.checkpoints.pieces import Pieces

    if face not in FACES:
        raise DataError(f"face={face!r} is not one of {', '.join(FACES)}.")
    if int(size) < 16:
        raise DataError(f"size={size}: the crop side must be at least 16 px (FFHQ: 1024; 256 / 512 for smaller "
                        "generators).")
    root, out = Path(input).expanduser(), Path(output).expanduser()
    skipped = _not_photos(root) if root.is_dir() else {}
    files = list_images(root, (*IMAGE_EXTENSIONS, *(HEIF if _heif_readable() else ())), root_key="input")
    _start_worker(landmarks, min_score)  # here too: a bad landmarks= fails before any work
    stamps = [(p.relative_to(root).as_posix(), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    pieces = Pieces(out / ".partial", {"input": str(root.absolute()), "size": int(size), "face": face,
                                       "landmarks": str(landmarks), "min_score": min_score, "files": stamps})
    rels = [rel for rel, _, _ in stamps]
    keys = {rel: hashlib.sha1(rel.encode()).hexdigest() for rel in rels}  # piece names: paths may hold "/"
    done = {rel: pieces.get(keys[rel]) for rel in rels}
    todo = [(root / rel, rel, face, int(size)) for rel in rels if done[rel] is None]
    crops: dict[str, Alignment] = {}
    bar, task = _progress("aligning", len(files))
    with bar, _prepared(todo, workers, landmarks, min_score) as results:
        for rel in rels:
            if done[rel] is None:
                done[rel] = _write(rel, next(results), out, crops)
                pieces.put(keys[rel], done[rel])
            crops.update({k: Alignment.from_json(v) for k, v in done[rel]["crops"].items()})
            if done[rel]["skipped"]:
                skipped[rel] = done[rel]["skipped"]
            bar.advance(task)
    record = {"input": str(root.absolute()), "size": int(size), "face": face,
              "crops": {k: a.to_json() for k, a in crops.items()}, "skipped": skipped}
    _save(json.dumps(record).encode(), out / ALIGNMENT_FILE)
    pieces.clear()
    return crops, skipped


_WORKER: dict = {}  # each alignment process's landmark model


def _start_worker(landmarks: str | None, min_score: float) -> None:
    from .landmarks import FaceLandmarks

    _heif_readable()
    _WORKER["finder"] = FaceLandmarks(landmarks, min_score=min_score)


@contextlib.contextmanager
def _prepared(jobs: list, workers: int, landmarks: str | None, min_score: float):
    """`_prepare` of each job, in order: here, or in `workers` processes (spawned: no state shared with torch)."""
    if workers <= 1 or len(jobs) < 2:
        yield map(_prepare, jobs)
        return
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(workers, _start_worker, (landmarks, min_score)) as pool:
        yield pool.imap(_prepare, jobs)


def _prepare(job: tuple) -> dict:
    """One photo (path, name, face, size) -> {"skipped": why} or {"faces": [(Alignment as JSON, crop)]}."""
    path, rel, face, size = job
    found = _faces(path, _WORKER["finder"])
    if isinstance(found, str) or not found[1]:
        return {"skipped": found if isinstance(found, str) else NO_FACE}
    photo, faces = found
    return {"faces": [(Alignment.of(rel, photo, lm, size).to_json(), _png(align(photo, lm, size)))
                      for lm in (faces if face == "all" else faces[:1])]}


def _png(image: Image.Image) -> bytes:
    """A PNG file's bytes (encoded where the crop is made: in the worker)."""
    buf = io.BytesIO()
    image.save(buf, format="png")
    return buf.getvalue()


def _write(rel: str, prepared: dict, out: Path, taken: dict) -> dict:
    """One photo's crops, named and written: {"crops": {name: Alignment as JSON}, "skipped": why or ""}; names in
    `taken` (another photo's crops) are not reused."""
    if "skipped" in prepared:
        return {"crops": {}, "skipped": prepared["skipped"]}
    stem = Path(rel).with_suffix("").as_posix()
    names = crop_names(stem, len(prepared["faces"]))
    if any(n in taken for n in names):  # a.jpg beside a.png
        names = crop_names(f"{stem}_{Path(rel).suffix.lstrip('.').lower()}", len(names))
    for name, (_, png) in zip(names, prepared["faces"]):
        _save(png, out / name)
    return {"crops": {name: record for name, (record, _) in zip(names, prepared["faces"])}, "skipped": ""}


def read_alignment(folder: str | os.PathLike) -> dict:
    """The alignment.json of a `ganinv-align` output folder, its crops as Alignments."""
    path = Path(folder).expanduser() / ALIGNMENT_FILE
    if not path.is_file():
        raise DataError(f"{path}: not found. Point alignment= at the output folder of ganinv-align (it holds "
                        f"{ALIGNMENT_FILE}).")
    try:
        record = json.loads(path.read_text())
        record["crops"] = {k: Alignment.from_json(v) for k, v in record["crops"].items()}
    except (ValueError, KeyError, TypeError) as e:
        raise DataError(f"{path}: not a ganinv-align record ({type(e).__name__}: {e}). Run ganinv-align again.") \
            from None
    return record


def unalign_folder(input: str | os.PathLike, alignment: str | os.PathLike, output: str | os.PathLike,
                   photos: str | os.PathLike | None = None, feather: float = 0.1) -> tuple[list[str], dict]:
    """Edited crops under `input`, named as `ganinv-align` named them in `alignment` -> each photo (from
    `photos`, default the folder it was aligned from) at its original size with its crops pasted back, as
    `<output>/<photo stem>.png`. Returns (photos written, {skipped file: why})."""
    if not 0 <= feather <= 0.5:
        raise DataError(f"feather={feather}: the blended border is a fraction of the crop's side in [0, 0.5].")
    record = read_alignment(alignment)
    _heif_readable()  # the photos may be HEIC
    root, out = Path(input).expanduser(), Path(output).expanduser()
    source = Path(photos).expanduser() if photos else Path(record["input"])
    edited = {p.relative_to(root).with_suffix(".png").as_posix(): p for p in list_images(root, root_key="input")}
    skipped = {name: "not a crop of this alignment" for name in edited if name not in record["crops"]}
    by_photo: dict[str, list[str]] = {}
    for name, a in record["crops"].items():
        if name in edited:
            by_photo.setdefault(a.photo, []).append(name)
    written = []
    bar, task = _progress("pasting back", len(by_photo))
    with bar:
        for photo_name, names in by_photo.items():
            try:
                photo = open_photo(source / photo_name)
                for name in names:
                    with Image.open(edited[name]) as crop:
                        photo = unalign(photo, crop.convert("RGB"), record["crops"][name], feather)
            except (OSError, ValueError) as e:
                skipped[photo_name] = f"{type(e).__name__}: {str(e).strip()[:120]}"
                bar.advance(task)
                continue
            target = Path(photo_name).with_suffix(".png").as_posix()
            if target in written:  # a.jpg beside a.png
                target = f"{Path(photo_name).with_suffix('').as_posix()}_{Path(photo_name).suffix[1:].lower()}.png"
            _save(_png(photo), out / target)
            written.append(target)
            bar.advance(task)
    return written, skipped


def cache_dir() -> Path:
    """Where on-the-fly alignments are kept: $GANINV_CACHE/aligned, default ~/.cache/ganinv/aligned."""
    return Path(os.environ.get("GANINV_CACHE", Path.home() / ".cache" / "ganinv")).expanduser() / "aligned"


def aligned_copies(files: list[Path], size: int) -> tuple[dict[Path, Path], dict[Path, str]]:
    """The FFHQ crop (largest face, `size` px) of each file, made once and cached by content: ({file: crop},
    {file without a face or unreadable: why})."""
    from .landmarks import shared

    folder = cache_dir() / str(int(size))
    copies, bad, finder = {}, {}, None
    bar, task = _progress("aligning", len(files))
    with bar:
        for path in files:
            key = hashlib.sha1(Path(path).read_bytes()).hexdigest()
            crop, none = folder / f"{key}.png", folder / f"{key}.noface"
            if crop.is_file():
                copies[path] = crop
            elif none.is_file():
                bad[path] = NO_FACE
            else:
                finder = finder or shared()
                found = _faces(path, finder)
                if isinstance(found, str):
                    bad[path] = found
                elif found[1]:
                    _save(_png(align(found[0], found[1][0], size)), crop)
                    copies[path] = crop
                else:  # remembered too: a photo without a face is not searched again
                    none.parent.mkdir(parents=True, exist_ok=True)
                    none.touch()
                    bad[path] = NO_FACE
            bar.advance(task)
    return copies, bad


def warn_if_unaligned(files: list[Path], generator_size: int) -> None:
    """One warning when a face-sized generator (256 px and more) is given images that look unaligned."""
    from ganinv.warn import warn

    if generator_size >= 256 and (hint := unaligned_hint(files)):
        warn(f"{hint}. Encoders are trained on FFHQ-aligned faces: pass align=true, or align the photos first "
             "with ganinv-align (docs/photos.md).")


def unaligned_hint(files: list[Path], n: int = 4, tolerance: float = 0.1) -> str | None:
    """Why the first `n` images look unaligned (a face whose FFHQ quad is off the image frame by more than
    `tolerance` of its side), or None (aligned, no face found, or the align extra not installed)."""
    from .landmarks import available, shared

    if not available():
        return None
    finder = shared()
    for path in files[:n]:
        found = _faces(path, finder)
        if not isinstance(found, str) and found[1]:  # unreadable files are reported where they are read
            photo, faces = found
            w, h = photo.size
            frame = np.array([[0, 0], [0, h], [w, h], [w, 0]], dtype=np.float64) - 0.5
            off = np.abs(ffhq_quad(faces[0]) - frame).max() / max(w, h)
            if off > tolerance:
                return (f"{path}: its face is not where FFHQ-aligned crops have it (the FFHQ square is off the "
                        f"frame by {off:.0%} of its side)")
    return None
