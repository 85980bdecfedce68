"""A corpus of unreadable files, made here: each is one sentence naming the file, never a traceback or code run."""

from __future__ import annotations

import io
import os
import pickle
import re
import zipfile

import pytest
import torch

from ganinv.checkpoints import CheckpointError, load_generator, load_official, load_torch_file
from ganinv.checkpoints.nvidia import PersistentObject, read_network_pickle


class _Object:
    pass


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _torch_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _payload_in_storage() -> bytes:
    """A network pickle whose tensor 'storage bytes' are a torch file holding a Python object."""
    evil = _torch_bytes({"x": _Object()})
    # GLOBAL torch.storage _load_from_bytes; (bytes) TUPLE1 REDUCE; wrapped in a dict.
    return (b"\x80\x04}\x94\x8c\x05G_ema\x94ctorch.storage\n_load_from_bytes\n" + pickle.dumps(evil, 4)[2:-1]
            + b"\x85R\x94s.")


CORPUS = {
    "text.pt": (b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\n", "is a text file"),
    "html.pkl": (b"<!DOCTYPE html><html><body>404</body></html>", "is a text file"),
    "random.pt": (os.urandom(4096).replace(b"PK", b"pk").replace(b"\x80", b"\x81"), "match no checkpoint format"),
    "image.pt": (b"\x89PNG\r\n\x1a\n" + os.urandom(64), "is a PNG image"),
    "image.pkl": (b"\xff\xd8\xff\xe0" + os.urandom(64), "is a JPEG image"),
    "empty_zip.pt": (_zip({}), "zip archive but not a PyTorch file"),
    "other_zip.pt": (_zip({"readme.txt": b"hello"}), r"zip archive but not a PyTorch file \(it holds readme.txt\)"),
    "truncated_zip.pt": (_torch_bytes({"w": torch.zeros(64)})[:200], "truncated or damaged zip archive"),
    "objects.pt": (_torch_bytes({"x": _Object()}), r"refused the global '[\w.]*_Object'"),
    "objects.pkl": (pickle.dumps({"G_ema": _Object()}), r"refused to load global '[\w.]*_Object'"),
    "storage_payload": (_payload_in_storage(), "storage bytes hold a pickle with the global"),
}
# What the torch-file loaders (not the generator's, which reads NVIDIA pickles) say of pickles of other objects.
NOT_FOR_TORCH = {n: "is a pickle that is not a PyTorch checkpoint" for n in ("objects.pkl", "storage_payload")}
LOADERS = {"load_torch_file": load_torch_file, "load_generator": load_generator, "load_official": load_official}


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize("name", CORPUS)
def test_every_bad_file_is_one_true_sentence(tmp_path, name, loader):
    data, expected = CORPUS[name]
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(CheckpointError) as info:
        LOADERS[loader](path)
    msg = str(info.value)
    assert str(path) in msg and "\n" not in msg and "\x1b" not in msg
    assert "weights_only=False" not in msg and "ganinv-convert" not in msg  # no unsafe advice
    if loader != "load_generator" and name in NOT_FOR_TORCH:  # only the generator loader reads network pickles
        expected = NOT_FOR_TORCH[name]
    assert re.search(expected, msg), msg
    assert info.value.__cause__ is None


def test_pickles_are_recognised_by_content(tmp_path):
    """An NVIDIA pickle under any name goes to the network-pickle reader (whose refusal names the global)."""
    data = pickle.dumps({"G_ema": _Object()})
    for name in ("net.PKL", "net.pt", "net"):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(CheckpointError, match="refused to load global"):
            load_generator(tmp_path / name)
    torch.save({"g_ema": {}}, tmp_path / "torch.pkl")  # and a torch file named .pkl is read as one
    with pytest.raises(CheckpointError, match="not a StyleGAN2 generator state dict"):
        load_generator(tmp_path / "torch.pkl")


# A crafted pickle that takes an allowed global and BUILDs attributes onto it, then fails.
def _build_on(module: str, name: str, attr: str) -> bytes:
    return (b"\x80\x04c" + module.encode() + b"\n" + name.encode() + b"\n"
            + b"N}\x94\x8c" + bytes([len(attr)]) + attr.encode() + b"\x8c\x04evil\x94s\x86\x94b" + b"cos\nsystem\n.")


@pytest.mark.parametrize("target", [("torch_utils.persistence", "_reconstruct_persistent_obj", PersistentObject),
                                    ("torch", "Tensor", torch.Tensor),
                                    ("torch._utils", "_rebuild_tensor_v2", torch._utils._rebuild_tensor_v2)])
def test_crafted_pickle_cannot_change_allowed_globals(tmp_path, target):
    module, name, obj = target
    path = tmp_path / "crafted.pkl"
    path.write_bytes(_build_on(module, name, "keys"))
    before = dict(vars(obj)) if hasattr(obj, "__dict__") else None
    with pytest.raises(CheckpointError, match="refused to set the state"):
        read_network_pickle(path)
    assert "keys" not in vars(obj) or vars(obj)["keys"] != "evil"
    assert (dict(vars(obj)) if before is not None else None) == before
    with pytest.raises(CheckpointError):
        load_torch_file(path)  # torch's own weights-only reader refuses it too
    assert getattr(obj, "keys", None) != "evil"
