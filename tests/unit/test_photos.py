"""Real photographs no one here made (scikit-image's: the astronaut portrait has one face, the others none): FFHQ
alignment that agrees with itself however the photo comes (rotated, scaled, shifted, EXIF-rotated, grey, CMYK,
16-bit), every bad file named and none fatal, paste-back, on-the-fly alignment, the unaligned-input warning, and
align -> invert (the tiny official pSp) -> edit -> paste back, end to end."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganinv.data import DataError, ImageFolderDataset
from ganinv.data.align import Alignment, align, open_photo, unalign
from ganinv.data.photos import (
    ALIGNMENT_FILE,
    NO_FACE,
    align_folder,
    unalign_folder,
    unaligned_hint,
    warn_if_unaligned,
)

data = pytest.importorskip("skimage.data")
pytest.importorskip("dlib", reason="the align extra (pip install 'ganinv[align]')")

EYES_PX = 5.0  # eye centres agree within this many pixels of the 1024-px crop (measured: at most 2.9)
CROP_DIFF = 6 / 255  # mean absolute grey difference of the 256-px crops (measured: at most 3.6 / 255) ...
HALF_DIFF = 12 / 255  # ... and for the photo at half resolution, whose crop is blurrier (measured 9.7 / 255)


@pytest.fixture(scope="module")
def finder():
    from ganinv.data.landmarks import FaceLandmarks

    return FaceLandmarks()


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    return Image.fromarray(data.astronaut())


def _reread(img: Image.Image, fmt: str = "PNG", **kw) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    buf.seek(0)
    return open_photo(buf)


def _variants(photo: Image.Image) -> dict[str, Image.Image]:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display": the pixels are stored turned the other way
    framed = Image.new("RGB", (800, 700), (20, 20, 20))
    framed.paste(photo, (250, 150))
    return {
        "rotated 10 degrees": photo.rotate(10, Image.BICUBIC, expand=True, fillcolor=(128, 128, 128)),
        "rotated -15 degrees": photo.rotate(-15, Image.BICUBIC, expand=True, fillcolor=(128, 128, 128)),
        "half size": photo.resize((256, 256), Image.LANCZOS),
        "double size": photo.resize((1024, 1024), Image.BICUBIC),
        "shifted in a larger frame": framed,
        "EXIF-rotated JPEG": _reread(photo.transpose(Image.Transpose.ROTATE_90), "JPEG", quality=95, exif=exif),
        "grey": _reread(photo.convert("L")),
        "CMYK JPEG": _reread(photo.convert("CMYK"), "JPEG", quality=95),
        "16-bit grey": _reread(Image.fromarray(np.asarray(photo.convert("L"), np.uint16) * 257)),
        "RGBA": _reread(photo.convert("RGBA")),
    }


def _eyes(a: Alignment) -> np.ndarray:
    lm = np.asarray(a.landmarks)
    return a.to_crop(np.stack([lm[36:42].mean(0), lm[42:48].mean(0)]), 1024)


def test_the_portrait_aligns_alike_however_the_photo_comes(finder, astronaut):
    faces = finder.faces(np.asarray(astronaut))
    canonical = Alignment.of("astronaut", astronaut, faces[0], 1024)
    eyes, crop = _eyes(canonical), np.asarray(align(astronaut, faces[0], 256).convert("L"), np.float64) / 255
    # FFHQ's frame: eyes level, centred, a quarter of the crop apart
    assert abs(eyes[:, 1] - eyes[:, 1].mean()).max() < 3 and abs(eyes[:, 0].mean() - 511.5) < 3
    assert 230 < eyes[1, 0] - eyes[0, 0] < 280
    for name, photo in _variants(astronaut).items():
        found = finder.faces(np.asarray(photo))
        assert found, f"{name}: no face found"
        a = Alignment.of(name, photo, found[0], 1024)
        assert np.abs(_eyes(a) - eyes).max() < EYES_PX, (name, _eyes(a), eyes)
        other = np.asarray(align(photo, found[0], 256).convert("L"), np.float64) / 255
        assert np.abs(other - crop).mean() < (HALF_DIFF if name == "half size" else CROP_DIFF), name


def _photos(folder: Path, astronaut: Image.Image) -> Path:
    (folder / "trip").mkdir(parents=True)
    astronaut.save(folder / "portrait.jpg", quality=95)
    Image.fromarray(data.coffee()).save(folder / "trip" / "coffee.png")
    Image.fromarray(data.chelsea()).save(folder / "cat.jpg")
    Image.fromarray(data.rocket()).save(folder / "trip" / "rocket.webp")
    pillow_heif = pytest.importorskip("pillow_heif", reason="the align extra (pip install 'ganinv[align]')")
    pillow_heif.register_heif_opener()
    astronaut.save(folder / "trip" / "holiday.heic", quality=90)  # what phones store
    (folder / "trip" / "clip.mov").write_bytes(b"\x00\x00\x00\x18ftypqt  ")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (folder / "empty.png").write_bytes(b"")
    pair = np.concatenate([np.asarray(astronaut), np.asarray(astronaut)[:, ::-1]], 1)
    Image.fromarray(pair).save(folder / "trip" / "pair.png")
    return folder


def test_a_folder_of_photos_aligns_every_face_and_names_every_skipped_file(tmp_path, astronaut):
    photos = _photos(tmp_path / "photos", astronaut)
    crops, skipped = align_folder(photos, tmp_path / "all", size=256, face="all")
    assert sorted(crops) == ["portrait.png", "trip/holiday.png", "trip/pair.png", "trip/pair_1.png"]
    assert {k: v for k, v in skipped.items() if v == NO_FACE}.keys() == {"cat.jpg", "trip/coffee.png",
                                                                          "trip/rocket.webp"}
    assert skipped["broken.jpg"].startswith("unreadable") and skipped["empty.png"].startswith("unreadable")
    assert skipped["trip/clip.mov"] == "not a photo (.mov)"
    first, second = (np.asarray(crops[n].quad).mean(0)[0] for n in ("trip/pair.png", "trip/pair_1.png"))
    assert {first < 512, second < 512} == {True, False}  # one face in each half of the pair
    for name in crops:
        with Image.open(tmp_path / "all" / name) as img:
            assert img.size == (256, 256) and img.mode == "RGB"
    record = json.loads((tmp_path / "all" / ALIGNMENT_FILE).read_text())
    assert record["skipped"] == skipped and len(record["crops"]["portrait.png"]["landmarks"]) == 68

    largest, _ = align_folder(photos, tmp_path / "largest", size=256)
    assert sorted(largest) == ["portrait.png", "trip/holiday.png", "trip/pair.png"]


def test_a_killed_alignment_run_again_aligns_only_what_it_had_not_done(tmp_path, monkeypatch, astronaut):
    import ganinv.data.photos as photos_module

    photos = tmp_path / "photos"
    photos.mkdir()
    for k in range(3):
        astronaut.rotate(5 * k).save(photos / f"{k}.png")
    real, seen = photos_module.align, []

    def dies_on_the_second(image, landmarks, size):
        seen.append(size)
        if len(seen) == 2:
            raise KeyboardInterrupt  # as a kill: mid-run, after one photo
        return real(image, landmarks, size)

    monkeypatch.setattr(photos_module, "align", dies_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        align_folder(photos, tmp_path / "out", size=64)
    assert not (tmp_path / "out" / ALIGNMENT_FILE).exists() and (tmp_path / "out" / "0.png").is_file()
    seen.clear()
    monkeypatch.setattr(photos_module, "align", lambda *a: (seen.append(a[2]), real(*a))[1])
    crops, _ = align_folder(photos, tmp_path / "out", size=64)
    assert sorted(crops) == ["0.png", "1.png", "2.png"] and len(seen) == 2  # photo 0 was not aligned again
    assert not (tmp_path / "out" / ".partial").exists()


@pytest.mark.slow  # spawns two processes that each import torch and read the landmark model (5 s)
def test_two_worker_processes_align_exactly_as_one(tmp_path, astronaut):
    photos = _photos(tmp_path / "photos", astronaut)
    one, skipped_one = align_folder(photos, tmp_path / "one", size=64, face="all")
    two, skipped_two = align_folder(photos, tmp_path / "two", size=64, face="all", workers=2)
    assert one == two and skipped_one == skipped_two and len(one) == 4
    for name in one:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    assert (tmp_path / "one" / ALIGNMENT_FILE).read_text() == (tmp_path / "two" / ALIGNMENT_FILE).read_text()


def test_unalign_puts_the_crop_back_and_leaves_the_rest_of_the_photo(finder, astronaut):
    face = finder.faces(np.asarray(astronaut))[0]
    a = Alignment.of("astronaut", astronaut, face, 1024)
    crop = align(astronaut, face, 1024)
    back = np.asarray(unalign(astronaut, crop, a, feather=0.1), np.float64)
    photo = np.asarray(astronaut, np.float64)
    changed = np.abs(back - photo).max(-1) > 0
    inside = _inside(a, photo.shape[:2])
    assert not changed[~inside].any()  # outside the quad: the photo itself
    assert np.abs(back - photo)[inside].mean() < 2.0  # inside: the crop, resampled twice (measured 0.6)
    edited = Image.fromarray(255 - np.asarray(crop))
    pasted = np.asarray(unalign(astronaut, edited, a, feather=0.1), np.float64)
    core = _inside(a, photo.shape[:2], margin=0.15)
    assert np.abs(pasted - (255 - photo))[core].mean() < 3.0  # the edit is there, fully, inside the feather
    with pytest.raises(ValueError, match="aligned at 512x512"):
        unalign(astronaut.resize((100, 100)), crop, a)


def _inside(a: Alignment, shape: tuple[int, int], margin: float = 0.0) -> np.ndarray:
    ys, xs = np.mgrid[: shape[0], : shape[1]]
    frac = a.fractions(np.stack([xs, ys], -1))
    return ((frac > margin) & (frac < 1 - margin)).all(-1)


def test_align_true_reads_cached_crops_and_lists_faceless_photos(tmp_path, monkeypatch, astronaut):
    monkeypatch.setenv("GANINV_CACHE", str(tmp_path / "cache"))
    photos = _photos(tmp_path / "photos", astronaut)
    for bad in ("broken.jpg", "empty.png"):
        (photos / bad).unlink()
    with pytest.warns(UserWarning, match="(?s)cat.jpg: no face found.*coffee.png: no face found"):
        folder = ImageFolderDataset(photos, resolution=64, check="full", align=True, max_bad_fraction=0.0)
    assert [f.name for f in folder.files] == ["portrait.jpg", "pair.png"]
    crop = folder.load(folder.files[0])
    assert crop.shape == (3, 64, 64)

    import ganinv.data.landmarks as landmarks

    monkeypatch.setattr(landmarks.FaceLandmarks, "faces", lambda *a: pytest.fail("aligned again, not cached"))
    with pytest.warns(UserWarning, match="no face found"):
        again = ImageFolderDataset(photos, resolution=64, align=True)
    assert (again.load(again.files[0]) == crop).all()
    with pytest.raises(DataError, match="no face found in any image"), pytest.warns(UserWarning, match="cat.jpg"):
        ImageFolderDataset(_only(photos, "cat.jpg", tmp_path), resolution=64, align=True)


def _only(photos: Path, name: str, tmp_path: Path) -> Path:
    folder = tmp_path / f"only_{name}"
    folder.mkdir()
    (folder / name).write_bytes((photos / name).read_bytes())
    return folder


def test_unaligned_photos_are_told_apart_from_aligned_crops(tmp_path, finder, astronaut, recwarn):
    astronaut.save(tmp_path / "photo.png")
    face = finder.faces(np.asarray(astronaut))[0]
    align(astronaut, face, 256).save(tmp_path / "crop.png")
    assert "photo.png: its face is not where FFHQ-aligned crops have it" in unaligned_hint([tmp_path / "photo.png"])
    assert unaligned_hint([tmp_path / "crop.png"]) is None
    warn_if_unaligned([tmp_path / "photo.png"], 32)  # a generator too small for faces: not looked at
    assert not recwarn.list
    with pytest.warns(UserWarning, match="photo.png: its face is not where.*pass align=true"):
        warn_if_unaligned([tmp_path / "photo.png"], 256)


def test_evaluation_aligns_its_held_out_photos(tmp_path, monkeypatch, astronaut):
    """`ganinv-eval align=true data=images`: the held-out targets are the FFHQ crops; other sources refuse it; the
    DataModule warns about unaligned photos read at 256 px."""
    from ganinv.methods import ConfigError, load_method
    from ganinv.workflows.evaluation import held_out
    from tests.commands import composed
    from tests.fixtures import examples

    monkeypatch.setenv("GANINV_CACHE", str(tmp_path / "cache"))
    (tmp_path / "photos").mkdir()
    for k in range(2):
        astronaut.save(tmp_path / "photos" / f"{k}.png")
    module = load_method(examples.official_checkpoints(tmp_path / "official")["psp"])
    data = ["data=images", f"data.images.root={tmp_path / 'photos'}", "data.images.val_fraction=0.5",
            "data.num_workers=0"]
    aligned = held_out(composed("eval", "output=r.json", "align=true", *data), module)
    with pytest.warns(UserWarning, match=r"[01]\.png: its face is not where FFHQ-aligned crops have it"):
        plain = held_out(composed("eval", "output=r.json", *data), module)  # read at pSp's 256 px: told once
    crop = ImageFolderDataset(tmp_path / "photos", resolution=32, align=True).load(tmp_path / "photos" / "0.png")
    # the DataModule aligns at the size it loads (the encoder's input) before resizing its targets: close, not equal
    near, far = ((y["y"][0] - crop).abs().mean() for y in (aligned, plain))
    assert near < 0.03 and far > 0.2, (near, far)
    with pytest.raises(ConfigError, match="align=true aligns photos, but data=toy"):
        held_out(composed("eval", "output=r.json", "align=true"), module)


def test_align_invert_edit_paste_back_end_to_end(tmp_path, monkeypatch, capsys, astronaut):
    """The tiny official pSp (32 px) on the portrait: every command runs and writes every file."""
    from ganinv.editing import sefa
    from ganinv.methods import load_method
    from tests.commands import in_process
    from tests.fixtures import examples

    photos = tmp_path / "photos"
    photos.mkdir()
    astronaut.save(photos / "portrait.jpg", quality=95)
    Image.fromarray(data.coffee()).save(photos / "coffee.jpg")
    psp = examples.official_checkpoints(tmp_path / "official")["psp"]
    sefa(load_method(psp).generator).save(tmp_path / "sefa.pt")

    run = in_process("align", f"input={photos}", f"output={tmp_path / 'aligned'}", "size=256",
                     monkeypatch=monkeypatch, capsys=capsys)
    assert run.returncode == 0 and "coffee.jpg: no face found" in run.stdout, run.stderr
    run = in_process("invert", f"checkpoint={psp}", f"input={tmp_path / 'aligned'}", f"output={tmp_path / 'inv'}",
                     monkeypatch=monkeypatch, capsys=capsys)
    assert run.returncode == 0 and (tmp_path / "inv" / "portrait.png").is_file(), run.stderr
    monkeypatch.setenv("GANINV_CACHE", str(tmp_path / "cache"))  # the photos themselves, aligned on the fly
    run = in_process("invert", f"checkpoint={psp}", f"input={photos}", f"output={tmp_path / 'inv2'}", "align=true",
                     monkeypatch=monkeypatch, capsys=capsys)
    assert run.returncode == 0 and "coffee.jpg: no face found" in run.stderr, run.stderr
    assert sorted(p.name for p in (tmp_path / "inv2").glob("*.png")) == ["portrait.png"]
    run = in_process("edit", f"checkpoint={psp}", f"input={tmp_path / 'aligned'}", f"output={tmp_path / 'e.png'}",
                     f"directions={tmp_path / 'sefa.pt'}", "edits=[sefa_0]", "strengths=[-3,3]",
                     f"save_images={tmp_path / 'edits'}", monkeypatch=monkeypatch, capsys=capsys)
    assert run.returncode == 0, run.stderr
    assert {p.parent.name for p in (tmp_path / "edits").rglob("*.png")} == {"reconstruction", "sefa_0_-3",
                                                                            "sefa_0_+3"}
    run = in_process("align", "unalign=true", f"input={tmp_path / 'edits' / 'sefa_0_+3'}",
                     f"alignment={tmp_path / 'aligned'}", f"output={tmp_path / 'pasted'}",
                     monkeypatch=monkeypatch, capsys=capsys)
    assert run.returncode == 0, run.stderr
    with Image.open(tmp_path / "pasted" / "portrait.png") as img:
        assert img.size == astronaut.size
    run = in_process("align", "unalign=true", f"input={tmp_path / 'edits'}", f"alignment={tmp_path / 'aligned'}",
                     f"output={tmp_path / 'pasted2'}", monkeypatch=monkeypatch, capsys=capsys)
    assert "reconstruction/portrait.png: not a crop of this alignment" in run.stdout  # named, not fatal


def test_align_refuses_to_write_into_its_input(tmp_path, monkeypatch, capsys):
    from tests.commands import in_process, one_line_error

    (tmp_path / "photos").mkdir()
    run = in_process("align", f"input={tmp_path / 'photos'}", f"output={tmp_path / 'photos' / 'aligned'}",
                     monkeypatch=monkeypatch, capsys=capsys)
    one_line_error(run, "ganinv-align", "output=", "is input= or a folder inside it")


def test_unalign_folder_without_alignment_is_a_clear_error(tmp_path):
    (tmp_path / "crops").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "crops" / "a.png")
    with pytest.raises(DataError, match="alignment.json: not found. Point alignment= at the output folder"):
        unalign_folder(tmp_path / "crops", tmp_path, tmp_path / "out")


def test_similarity_transform_recovers_rotation_scale_and_shift():
    from ganinv.metrics.face_identity import REFERENCE_112, similarity_transform

    angle, scale, shift = 0.3, 2.5, np.array([40.0, -7.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = (REFERENCE_112 - shift) @ np.linalg.inv(rot).T  # points that the transform takes onto the reference
    m = similarity_transform(src, REFERENCE_112)
    np.testing.assert_allclose(m[:, :2], rot, atol=1e-9)
    np.testing.assert_allclose(src @ m[:, :2].T + m[:, 2], REFERENCE_112, atol=1e-9)


@pytest.mark.parametrize("crop", ["mtcnn", "dlib"])
def test_the_papers_identity_protocol_follows_the_face_and_leaves_out_faceless_pairs(tmp_path, crop, astronaut,
                                                                                      finder):
    import torch

    from ganinv.losses import ArcFaceBackbone, arcface_identity
    from ganinv.metrics import DistortionMetrics
    from ganinv.metrics.face_identity import papers_identity

    if crop == "mtcnn":
        pytest.importorskip("facenet_pytorch", reason="pip install --no-deps facenet-pytorch==2.6.0")
    torch.manual_seed(0)
    torch.save(ArcFaceBackbone(50, "ir", affine=False).eval().state_dict(), tmp_path / "CurricularFace_like.pth")
    face = finder.faces(np.asarray(astronaut))[0]

    def tensor(img: Image.Image) -> torch.Tensor:
        return torch.from_numpy(np.array(img.convert("RGB").resize((256, 256)))).permute(2, 0, 1)[None] / 127.5 - 1

    x, coffee = tensor(align(astronaut, face, 256)), tensor(Image.fromarray(data.coffee()))
    moved = torch.roll(x, (12, -10), (2, 3))  # the same face, not where pSp's fixed crop expects it
    papers = papers_identity(tmp_path / "CurricularFace_like.pth", crop)
    fixed = arcface_identity(tmp_path / "CurricularFace_like.pth")
    with torch.no_grad():
        follows, stays = float(papers.similarity(x, moved)), float(fixed.similarity(x, moved))
    assert follows > 0.93 and follows > stays + 0.15, (follows, stays)  # measured: 0.95-0.99 vs 0.71 (IR-SE50)
    metrics = DistortionMetrics(256, None, papers)
    metrics.update(torch.cat([moved, coffee, x]), torch.cat([x, x, coffee]))
    out = metrics.compute()
    assert out["no_face_pairs"] == 2 and abs(out["id_sim_papers"] - follows) < 1e-5  # only the face pair counts
    assert "id_sim" not in out  # another protocol, another name: records never mix the two
    assert "five-point crops" in metrics.protocol()["id_sim_papers"] and "no_face_pairs" in metrics.protocol()


def test_metrics_faces_papers_composes_with_any_ir_backbone(tmp_path):
    import torch
    from hydra.utils import instantiate

    from ganinv.losses import ArcFaceBackbone
    from tests.commands import composed

    torch.save(ArcFaceBackbone().state_dict(), tmp_path / "CurricularFace_Backbone.pth")
    cfg = composed("eval", "metrics=faces_papers", f"weights_dir={tmp_path}", "metrics.identity.crop=dlib",
                   "~metrics.perceptual")
    metrics = instantiate(cfg.metrics)
    assert type(metrics.identity).__name__ == "FivePointIdentity" and metrics.size == 256
    assert "CurricularFace_Backbone.pth" in metrics.protocol()["id_sim_papers"]


def test_missing_packages_and_bad_options_say_what_to_do(tmp_path, monkeypatch):
    import importlib.util

    import ganinv.data.landmarks as landmarks
    import ganinv.metrics.face_identity as face_identity

    find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in ("dlib", "facenet_pytorch")
                        else find(name, *a))
    with pytest.raises(DataError, match=r"needs dlib.*pip install 'ganinv\[align\]'"):
        landmarks.FaceLandmarks()
    assert not landmarks.available()
    with pytest.raises(DataError, match=r"pins torch<2.3.*pip install --no-deps facenet-pytorch==2.6.0.*crop=dlib"):
        face_identity.MTCNNPoints()
    monkeypatch.undo()
    (tmp_path / "photos").mkdir()
    with pytest.raises(DataError, match="size=8: the crop side must be at least 16 px"):
        align_folder(tmp_path / "photos", tmp_path / "out", size=8)
    with pytest.raises(DataError, match=r"feather=0.9: .* in \[0, 0.5\]"):
        unalign_folder(tmp_path / "photos", tmp_path, tmp_path / "out", feather=0.9)
