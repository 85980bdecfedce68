"""StyleGAN2DataModule: every source and task, bad input, determinism and DDP sharding."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from PIL import Image
from torch.utils.data import DataLoader, DistributedSampler

from ganinv.data import DataError, GeneratedDataset, ImageFolderDataset, StyleGAN2DataModule, TaskDataset

CONF = Path(__file__).resolve().parents[2] / "conf"
TASKS = ["inversion", "super_resolution", "inpainting", "colorization", "segmentation_to_image", "sketch_to_image",
         "frontalization"]
CHANNELS = {"inpainting": 4, "segmentation_to_image": 9, "sketch_to_image": 1}


def write_images(folder: Path, n: int, size=(40, 30), ext="png", seed=0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        paths.append(folder / f"{i:03d}.{ext}")
        Image.fromarray(arr).save(paths[-1])
    return paths


def check_batch(batch: dict, b: int, c: int, s: int, t: int) -> None:
    assert batch["x"].shape == (b, c, s, s) and batch["y"].shape == (b, 3, t, t)
    for key in ("x", "y"):
        assert batch[key].dtype == torch.float32 and batch[key].min() >= -1 and batch[key].max() <= 1
    assert batch["y"].std() > 0.05  # an image, not a constant


@pytest.mark.parametrize("task", TASKS)
def test_toy_source_every_task(task):
    dm = StyleGAN2DataModule("toy", task, input_size=32, target_size=64, batch_size=4, toy={"n_train": 8, "n_val": 4})
    batch = next(iter(dm.train_dataloader()))
    check_batch(batch, 4, CHANNELS.get(task, 3), 32, 64)
    assert dm.input_channels == CHANNELS.get(task, 3) and batch["attrs"].shape == (4, 15)
    if task == "inpainting":
        hole = batch["mask"].bool().expand(-1, 3, -1, -1)
        assert 0.05 < batch["mask"].mean() < 0.7 and batch["x"][:, :3][hole].abs().max() == 0
    if task == "frontalization":  # x is the posed render, y the same face at pose 0
        from ganinv.toy import render

        val = next(iter(dm.val_dataloader()))
        truth = render(4, 64, attrs=val["attrs"])
        assert torch.allclose(val["y"], truth.frontal, atol=1e-5)
        assert torch.allclose(val["x"], torch.nn.functional.interpolate(truth.images, 32, mode="bilinear",
                                                                        antialias=True), atol=1e-5)
        assert (val["x"] - torch.nn.functional.interpolate(val["y"], 32, mode="area")).abs().mean() > 0.01


@pytest.mark.parametrize("task", ["inversion", "super_resolution", "inpainting", "colorization"])
def test_images_source_tasks(tmp_path, task):
    write_images(tmp_path / "train", 6)
    write_images(tmp_path / "test", 3, ext="jpg")
    dm = StyleGAN2DataModule("images", task, input_size=32, target_size=16, batch_size=3,
                             images={"train_root": tmp_path / "train", "test_root": tmp_path / "test"})
    check_batch(next(iter(dm.train_dataloader())), 3, 4 if task == "inpainting" else 3, 32, 16)
    check_batch(next(iter(dm.val_dataloader())), 3, 4 if task == "inpainting" else 3, 32, 16)
    if task == "colorization":
        x = next(iter(dm.val_dataloader()))["x"]
        assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 1], x[:, 2])


@pytest.mark.parametrize("kind", ["segmentation", "sketch"])
def test_paired_maps_by_filename(tmp_path, kind):
    write_images(tmp_path / "img" / "a", 3)
    (tmp_path / "maps" / "a").mkdir(parents=True)
    for i in range(3):  # map i: class / grey level depends on the file, so a mix-up is visible
        arr = np.zeros((30, 40), np.uint8)
        arr[:, 20:] = i + 1 if kind == "segmentation" else 60 * (i + 1)
        Image.fromarray(arr, "L").save(tmp_path / "maps" / "a" / f"{i:03d}.png")
    task = f"{kind}_to_image"
    dm = StyleGAN2DataModule("images", task, input_size=16, target_size=16, batch_size=3, flip=False,
                             task_options={"n_classes": 4}, images={"root": tmp_path / "img", "maps_root":
                                                                    tmp_path / "maps", "val_fraction": 0.34})
    batch = next(iter(dm.train_dataloader()))
    check_batch(batch, 2, 4 if kind == "segmentation" else 1, 16, 16)
    for k, index in enumerate(batch["index"].tolist()):
        file_id = int(dm.train_set.source.files[index].stem)
        right = batch["x"][k, :, :, 12]
        if kind == "segmentation":  # one-hot channel of the file's class id on the right half
            assert set(batch["x"].unique().tolist()) == {0.0, 1.0} and (right.argmax(0) == file_id + 1).all()
        else:
            assert torch.allclose(right, torch.full_like(right, 60 * (file_id + 1) / 127.5 - 1))
    (tmp_path / "maps" / "a" / "001.png").unlink()
    with pytest.raises(DataError, match=r"no paired map[\s\S]*001\.png"):
        StyleGAN2DataModule("images", task, images={"root": tmp_path / "img", "maps_root": tmp_path / "maps"}).setup()
    with pytest.raises(DataError, match="maps_root"):
        StyleGAN2DataModule("images", task, images={"root": tmp_path / "img"})


def test_generated_source_is_deterministic_per_index(tiny_generator):
    dm = StyleGAN2DataModule("generated", "super_resolution", input_size=32, target_size=16, batch_size=2,
                             flip=False, generator=tiny_generator, generated={"n_train": 4, "n_val": 2})
    batch = next(iter(dm.val_dataloader()))
    check_batch(batch, 2, 3, 32, 16)
    assert batch["w"].shape == (2, tiny_generator.n_latent, 64)
    again = GeneratedDataset(tiny_generator, 2, seed=1_000_000, resolution=32)
    assert torch.equal(again[1]["w"], batch["w"][1])
    assert torch.allclose(again[1]["image"], dm.val_set.source[1]["image"], atol=1e-5)
    img, _ = tiny_generator([batch["w"][:1]], input_is_latent=True, randomize_noise=False)
    assert torch.allclose(img.clamp(-1, 1), again[0]["image"][None], atol=1e-5)
    with pytest.raises(DataError, match="frontal"):
        StyleGAN2DataModule("generated", "frontalization", generator=tiny_generator)


def test_image_folder_public_api_and_conversions(tmp_path):
    root = tmp_path / "mixed"
    (root / "sub").mkdir(parents=True)
    Image.new("L", (20, 20), 128).save(root / "grey.png")
    Image.new("RGBA", (20, 20), (255, 0, 0, 0)).save(root / "rgba.png")  # fully transparent: white
    Image.new("P", (20, 20), 3).save(root / "sub" / "palette.png")
    Image.fromarray(np.full((20, 20), 65535, np.uint16)).save(root / "sixteen.png")
    Image.new("CMYK", (20, 20), (0, 255, 255, 0)).save(root / "cmyk.jpg")  # red in CMYK
    Image.new("RGB", (60, 20), (0, 0, 255)).save(root / "wide.webp")
    ds = ImageFolderDataset(root, 8)
    assert len(ds) == 6
    items = {p.name: ds[i]["y"] for i, p in enumerate(ds.files)}
    for y in items.values():
        assert y.shape == (3, 8, 8) and y.dtype == torch.float32 and y.min() >= -1 and y.max() <= 1
    assert torch.allclose(items["rgba.png"], torch.ones(3, 8, 8))
    assert torch.allclose(items["sixteen.png"], torch.ones(3, 8, 8))
    assert items["cmyk.jpg"][0].mean() > 0.8 and items["cmyk.jpg"][1:].mean() < -0.6
    assert torch.allclose(items["grey.png"], torch.full((3, 8, 8), 128 / 127.5 - 1), atol=1e-6)


def test_center_crop_option(tmp_path):
    arr = np.zeros((20, 60, 3), np.uint8)
    arr[:, :20] = (255, 0, 0)  # red left third, black middle, blue right third
    arr[:, 40:] = (0, 0, 255)
    Image.fromarray(arr).save(tmp_path / "wide.png")
    centre = ImageFolderDataset(tmp_path, 8, crop="center")[0]["y"]
    squash = ImageFolderDataset(tmp_path, 6, crop="none")[0]["y"]
    assert centre.max() < -0.9  # only the black middle square remains
    assert squash[0, :, 0].min() > 0.9 and squash[2, :, -1].min() > 0.9


def test_missing_and_empty_folders_are_named(tmp_path):
    with pytest.raises(DataError, match=f"{tmp_path / 'nope'}.*does not exist"):
        ImageFolderDataset(tmp_path / "nope", 8)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match=f"{tmp_path / 'empty'}.*no images"):
        ImageFolderDataset(tmp_path / "empty", 8)
    with pytest.raises(DataError, match="does not exist"):
        StyleGAN2DataModule("images", images={"root": tmp_path / "nope"}).setup()


def make_bad_files(root: Path) -> list[str]:
    (root / "zero.png").write_bytes(b"")
    (root / "junk.jpg").write_bytes(b"this is not an image at all")
    good = (root / "000.png").read_bytes()
    (root / "truncated.png").write_bytes(good[: len(good) // 2])
    return ["zero.png", "junk.jpg", "truncated.png"]


def test_bad_files_skipped_with_one_warning(tmp_path):
    write_images(tmp_path, 20)
    bad = make_bad_files(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = ImageFolderDataset(tmp_path, 8, max_bad_fraction=0.2)
    msgs = [str(w.message) for w in caught if "unusable" in str(w.message)]
    assert len(msgs) == 1 and all(name in msgs[0] for name in bad)
    assert len(ds) == 20 and all(ds[i]["y"].shape == (3, 8, 8) for i in range(len(ds)))
    with pytest.raises(DataError, match=r"3 of its 23 image files are unusable[\s\S]*zero\.png[\s\S]*max_bad_fraction"):
        ImageFolderDataset(tmp_path, 8, max_bad_fraction=0.1)


def test_file_failing_only_at_decode_is_skipped(tmp_path):
    write_images(tmp_path, 4, size=(64, 64), ext="jpg")
    data = (tmp_path / "001.jpg").read_bytes()
    (tmp_path / "001.jpg").write_bytes(data[: len(data) // 3])  # header intact: passes the 'header' check
    ds = ImageFolderDataset(tmp_path, 8, check="header", max_bad_fraction=0.5)
    assert len(ds) == 4
    with pytest.warns(UserWarning, match="001.jpg"):
        item = ds[1]
    assert torch.equal(item["y"], ds[2]["y"])  # replaced by the next usable image
    with pytest.warns(UserWarning, match="1 of its 4"):
        assert len(ImageFolderDataset(tmp_path, 8, check="full", max_bad_fraction=0.5)) == 3


def batches(loader: DataLoader, n: int = 2) -> list[dict]:
    it = iter(loader)
    return [next(it) for _ in range(n)]


@pytest.mark.parametrize("workers", [0, 2])
def test_fixed_seed_gives_identical_batches(workers):
    def run():
        torch.manual_seed(123)
        dm = StyleGAN2DataModule("toy", "inpainting", input_size=32, target_size=32, batch_size=4,
                                 num_workers=workers, persistent_workers=False, toy={"n_train": 16, "resolution": 32})
        return batches(dm.train_dataloader())

    a, b = run(), run()
    for ba, bb in zip(a, b, strict=True):
        assert torch.equal(ba["index"], bb["index"]) and torch.equal(ba["x"], bb["x"])


def test_two_ddp_ranks_shard_and_agree(tmp_path):
    write_images(tmp_path, 10)
    dm = StyleGAN2DataModule("images", "super_resolution", input_size=16, target_size=16, batch_size=2,
                             images={"root": tmp_path, "val_fraction": 0.2})
    dm.setup()
    seen = []
    for rank in (0, 1):  # what Lightning does under DDP: a DistributedSampler per rank, same seed
        sampler = DistributedSampler(dm.train_set, num_replicas=2, rank=rank, shuffle=True, seed=0)
        loader = DataLoader(dm.train_set, batch_size=2, sampler=sampler)
        seen.append(torch.cat([b["index"] for b in loader]).tolist())
    assert not set(seen[0]) & set(seen[1]) and sorted(seen[0] + seen[1]) == list(range(8))
    # Evaluation items depend on the index only: every rank sees the same degraded input for an index.
    other = TaskDataset(dm.val_set.source, dm.val_set.transform, train=False, seed=dm.seed)
    assert torch.equal(other[1]["x"], dm.val_set[1]["x"])


def test_batch_size_is_global_over_processes():
    """data.batch_size=16 on 2 processes: 8 images each, and the two first batches are the one process's first
    batch; a batch that does not divide is refused naming the keys that can change."""
    from types import SimpleNamespace

    def first_batch(world: int, rank: int) -> list[int]:
        dm = StyleGAN2DataModule("toy", input_size=16, target_size=16, batch_size=16, toy={"n_train": 64,
                                 "resolution": 16})
        dm.trainer = SimpleNamespace(global_rank=rank, world_size=world)
        return next(iter(dm.train_dataloader()))["index"].tolist()

    one, ranks = first_batch(1, 0), [first_batch(2, r) for r in (0, 1)]
    assert len(one) == 16 and [len(r) for r in ranks] == [8, 8] and sorted(ranks[0] + ranks[1]) == sorted(one)
    with pytest.raises(DataError, match=r"data.batch_size=16 is the global batch: it must divide over 3 processes "
                                        r"\(trainer.devices x trainer.num_nodes\)\. Choose a multiple of 3, or a "
                                        r"number of processes that divides 16\.$") as err:
        first_batch(3, 0)
    assert "accumulate" not in str(err.value)


def test_root_split_is_fixed_and_disjoint(tmp_path):
    write_images(tmp_path, 20)
    a = StyleGAN2DataModule("images", images={"root": tmp_path, "val_fraction": 0.25})
    b = StyleGAN2DataModule("images", images={"root": tmp_path, "val_fraction": 0.25})
    a.setup(), b.setup()
    assert a.val_set.source.files == b.val_set.source.files and len(a.val_set) == 5
    assert not set(a.val_set.source.files) & set(a.train_set.source.files)


@pytest.mark.parametrize("name", ["images", "toy", "generated"])
def test_data_configs_instantiate(name, tmp_path, tiny_generator):
    write_images(tmp_path, 4)
    with initialize_config_dir(str(CONF), version_base=None):
        cfg = compose("train", overrides=[f"data={name}", "data.batch_size=2", "data.num_workers=0"])
    kwargs = {"images": {"root": str(tmp_path), "val_fraction": 0.5}} if name == "images" else {}
    kwargs |= {"generator": tiny_generator, "input_size": 32, "target_size": 32} if name == "generated" else {}
    kwargs |= {"toy": {"n_train": 4, "n_val": 2}} if name == "toy" else {}
    dm = instantiate(cfg.data, **kwargs)
    assert isinstance(dm, StyleGAN2DataModule) and dm.source == name
    check_batch(next(iter(dm.val_dataloader())), 2, 3, dm.input_size, dm.target_size)


# ---- splits that cannot leak, options checked where they are given ------------------------------------------

def test_split_configurations(tmp_path):
    write_images(tmp_path / "a", 10)
    write_images(tmp_path / "b", 4, seed=1)
    dm = StyleGAN2DataModule("images", images={"root": tmp_path / "a", "val_fraction": 0})
    dm.setup()
    assert dm.val_set is None and len(dm.train_set) == 10 and dm.val_dataloader() == []  # 0: no validation set
    for bad in (1, 1.5, -0.1, 0.99):
        with pytest.raises(DataError, match=r"data.images.val_fraction=.* leaves no training images of the 10"):
            StyleGAN2DataModule("images", images={"root": tmp_path / "a", "val_fraction": bad}).setup()
    with pytest.raises(DataError, match="data.images.root .*or data.images.train_root .* not both"):
        StyleGAN2DataModule("images", images={"root": tmp_path / "a", "train_root": tmp_path / "a"}).setup()
    with pytest.raises(DataError, match="train_root and data.images.test_root go together"):
        StyleGAN2DataModule("images", images={"train_root": tmp_path / "a"}).setup()
    for test_root in (tmp_path / "a", tmp_path):  # the same folder, or one that contains it
        with pytest.raises(DataError, match="overlaps data.images.train_root.*data.images.overlap=allow"):
            StyleGAN2DataModule("images", images={"train_root": tmp_path / "a", "test_root": test_root}).setup()
    dm = StyleGAN2DataModule("images", images={"train_root": tmp_path / "a", "test_root": tmp_path / "a",
                                               "overlap": "allow"})
    dm.setup()
    assert dm.val_set.source.files == dm.train_set.source.files  # asked for explicitly
    dm = StyleGAN2DataModule("images", images={"train_root": tmp_path / "a", "test_root": tmp_path / "b"})
    dm.setup()
    assert len(dm.train_set) == 10 and len(dm.val_set) == 4


@pytest.mark.parametrize("kwargs, key", [
    ({"images": {"rooot": "x"}}, "data.images.rooot"),
    ({"images": {"max_bad_frac": 0.1}}, "data.images.max_bad_frac"),
    ({"images": {"n_train": 10}}, "data.images.n_train"),  # a toy option given to the images source
    ({"toy": {"root": "x"}}, "data.toy.root"),
    ({"generated": {"trunc": 0.7}}, "data.generated.trunc"),
    ({"task_options": {"factor": [2]}}, "data.task_options.factor"),
    ({"rooot": "x"}, "data.rooot"),
])
def test_unknown_options_are_named_with_the_valid_keys(kwargs, key):
    with pytest.raises(DataError, match=rf"unknown .*{key.replace('.', r'[.]')}.*valid keys"):
        StyleGAN2DataModule("images", "super_resolution", **kwargs)


def test_bad_choices_refused_once_at_construction(tmp_path):
    write_images(tmp_path, 4)
    with pytest.raises(DataError, match="data.images.crop='middle' is not one of center, none"):
        StyleGAN2DataModule("images", images={"root": tmp_path, "crop": "middle"})
    with pytest.raises(DataError, match="data.images.check='deep'"):
        StyleGAN2DataModule("images", images={"root": tmp_path, "check": "deep"})
    with pytest.raises(DataError, match="crop='middle'"):
        ImageFolderDataset(tmp_path, 8, crop="middle")


def test_bad_file_count_names_the_split(tmp_path):
    write_images(tmp_path, 20)
    make_bad_files(tmp_path)
    with pytest.warns(UserWarning, match=r"\((training|validation) split\): skipping \d of its \d+ image files"):
        StyleGAN2DataModule("images", images={"root": tmp_path, "val_fraction": 0.5, "max_bad_fraction": 0.5}).setup()


def test_resumed_sampler_continues_the_epoch():
    """Keys depend on (seed, epoch, index) only; resume_at skips exactly the batches already seen."""
    dm = StyleGAN2DataModule("toy", "inpainting", input_size=16, target_size=16, batch_size=2,
                             toy={"n_train": 8, "resolution": 16})
    full = [torch.cat([b["x"] for b in dm.train_dataloader()]) for _ in range(1)][0]
    loader = dm.train_dataloader()
    loader.sampler.resume_at(0, 4)
    rest = torch.cat([b["x"] for b in loader])
    assert torch.equal(rest, full[4:])
    loader.sampler.set_epoch(1)
    assert not torch.equal(torch.cat([b["x"] for b in loader]), full)  # another epoch: new order and masks
