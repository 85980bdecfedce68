"""NVIDIA stylegan2-ada-pytorch networks: a restricted pickle reader and the key mapping to rosinality's layout.

A network pickle stores every module as `_reconstruct_persistent_obj(meta)`, where `meta["module_src"]` is Python
source that the official loader executes. Here that call returns `meta` untouched, tensors are rebuilt with
weights-only loads, and every other global is refused: reading a pickle never runs code from it.
"""

from __future__ import annotations

import io
import pickle
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganinv.stylegan2.ops import make_kernel

from .safe_io import NEVER_RUNS, CheckpointError, first_line, refused_global


class PersistentObject(dict):
    """The `meta` dict of a pickled NVIDIA module (class_name, state, module_src): data, never executed."""


class _Refused(pickle.UnpicklingError):
    """A global outside the allow-list: the file is refused, nothing from it is run."""


def _numpy_scalar(dtype: np.dtype, data: bytes | None = None):
    if dtype.hasobject:
        raise _Refused("refused numpy object scalar")
    return np.frombuffer(data, dtype=dtype)[0] if data is not None else dtype.type()


def _tensor_from_type(func, new_type, args, state):
    return func(*args)  # plain tensors: the subclass (Parameter) and its Python state are not needed


def _storage_from_bytes(data: bytes):
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        glob = refused_global(e)
        raise _Refused(f"a tensor's storage bytes hold a pickle with the global '{glob}'" if glob else
                       "a tensor's storage bytes hold a pickle that is not a tensor") from None
    except Exception as e:  # noqa: BLE001 - damaged storage bytes
        raise pickle.UnpicklingError(f"a tensor's storage bytes are damaged ({type(e).__name__})") from None


_ALLOWED = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): PersistentObject,
    ("torch.storage", "_load_from_bytes"): _storage_from_bytes,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): lambda data, requires_grad, hooks: data,
    ("torch._utils", "_rebuild_parameter_with_state"): lambda data, requires_grad, hooks, state: data,
    ("torch._tensor", "_rebuild_from_type_v2"): _tensor_from_type,
    ("torch", "Tensor"): torch.Tensor,
    ("torch.nn.parameter", "Parameter"): torch.nn.Parameter,
    ("collections", "OrderedDict"): OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("dnnlib.util", "EasyDict"): dict,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
}


class _RestrictedUnpickler(pickle._Unpickler):
    """Python's unpickler with an allow-list of globals, and BUILD refused on classes and functions: a crafted file
    cannot set attributes on `PersistentObject`, `torch.Tensor` or any other allowed global."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise _Refused(f"refused to load global '{module}.{name}'") from None

    def load_build(self) -> None:
        target = self.stack[-2]  # below the state that BUILD pops
        if isinstance(target, type) or callable(target) and not isinstance(target, torch.Tensor):
            raise _Refused(f"refused to set the state of {getattr(target, '__qualname__', type(target).__name__)}")
        super().load_build()

    dispatch[pickle.BUILD[0]] = load_build


def read_network_pickle(path: str | Path) -> dict:
    """Read an official network pickle (`G`, `D`, `G_ema`, ...) as data; modules come back as PersistentObject."""
    try:
        with open(path, "rb") as f:
            data = _RestrictedUnpickler(f).load()
    except _Refused as e:
        raise CheckpointError(path, f"is not a network pickle that ganinv can read safely: {e}.", NEVER_RUNS) \
            from None
    except RecursionError:
        raise CheckpointError(path, "is not a network pickle that ganinv can read: it nests too deeply.") from None
    except Exception as e:  # noqa: BLE001 - a damaged pickle raises anything from EOFError to KeyError
        raise CheckpointError(path, f"is truncated or corrupt ({type(e).__name__}: {first_line(e)}).",
                              "Copy or download it again.") from None
    if not isinstance(data, dict):
        raise CheckpointError(path, f"holds a {type(data).__name__}, not the dict of a stylegan2-ada-pytorch "
                              "network pickle (G, D, G_ema).")
    return data


def module_state_dict(obj: PersistentObject, prefix: str = "") -> OrderedDict[str, torch.Tensor]:
    """The state dict of a pickled module: parameters, persistent buffers, then children, depth first."""
    state = obj["state"]
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for name, t in state.get("_parameters", {}).items():
        if t is not None:
            out[prefix + name] = t
    skip = state.get("_non_persistent_buffers_set", set())
    for name, t in state.get("_buffers", {}).items():
        if t is not None and name not in skip:
            out[prefix + name] = t
    for name, child in state.get("_modules", {}).items():
        if isinstance(child, PersistentObject):
            out.update(module_state_dict(child, f"{prefix}{name}."))
    return out


_LAYER_KEYS = {"weight": "conv.weight", "affine.weight": "conv.modulation.weight",
               "affine.bias": "conv.modulation.bias", "noise_strength": "noise.weight"}


def nvidia_to_rosinality(sd: dict[str, torch.Tensor], source: str | Path | None = None
                         ) -> tuple[OrderedDict[str, torch.Tensor], torch.Tensor | None]:
    """Rename a `G_ema` state dict to rosinality keys; returns (state dict, w_avg). Unknown keys are errors."""
    if any(k.startswith("mapping.embed") for k in sd):
        raise CheckpointError(source, "is a class-conditional generator (mapping.embed); ganinv supports "
                              "unconditional StyleGAN2 only.")
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    w_avg, unknown = None, []
    for key, t in sd.items():
        m = re.fullmatch(r"mapping\.fc(\d+)\.(weight|bias)", key)
        if m:
            out[f"style.{int(m[1]) + 1}.{m[2]}"] = t
            continue
        if key == "mapping.w_avg":
            w_avg = t
            continue
        if key == "synthesis.b4.const":
            out["input.input"] = t.unsqueeze(0)
            continue
        m = re.fullmatch(r"synthesis\.b(\d+)\.(conv0|conv1|torgb)\.(.+)", key)
        if m:
            res, layer, name = int(m[1]), m[2], m[3]
            if name == "resample_filter":
                continue
            mapped = _map_layer(res, layer, name, t, out)
            if mapped:
                continue
        elif re.fullmatch(r"synthesis\.b\d+\.resample_filter", key):
            continue
        unknown.append(key)
    if unknown:
        raise CheckpointError(source, f"has keys that are not part of a StyleGAN2 generator: {unknown[:8]}"
                              f"{' ...' if len(unknown) > 8 else ''}.",
                              "Only the 'skip' generator architecture of stylegan2-ada-pytorch is supported.")
    _add_fir_kernels(out)
    return out, w_avg


def _map_layer(res: int, layer: str, name: str, t: torch.Tensor, out: dict) -> bool:
    k = int(np.log2(res)) - 3  # level index of this block; -1 for the 4x4 block
    if res == 4:
        if layer == "conv0":
            return False
        prefix, n = ("conv1", 0) if layer == "conv1" else ("to_rgb1", None)
    else:
        prefix = {"conv0": f"convs.{2 * k}", "conv1": f"convs.{2 * k + 1}", "torgb": f"to_rgbs.{k}"}[layer]
        n = {"conv0": 2 * k + 1, "conv1": 2 * k + 2}.get(layer)
    if name == "noise_const":
        out[f"noises.noise_{n}"] = t.view(1, 1, *t.shape)
    elif name == "bias":
        out[f"{prefix}.bias" if layer == "torgb" else f"{prefix}.activate.bias"] = (
            t.view(1, -1, 1, 1) if layer == "torgb" else t)
    elif name in _LAYER_KEYS:
        out[f"{prefix}.{_LAYER_KEYS[name]}"] = (
            t.unsqueeze(0) if name == "weight" else t.reshape(1) if name == "noise_strength" else t)
    else:
        return False
    return True


def _add_fir_kernels(sd: dict[str, torch.Tensor]) -> None:
    """rosinality stores the (constant) [1,3,3,1] up-sampling kernels as buffers; NVIDIA keys do not map to them."""
    kernel = make_kernel([1, 3, 3, 1]) * 4
    levels = sorted({int(m[1]) for k in sd if (m := re.match(r"to_rgbs\.(\d+)\.", k))})
    for k in levels:
        sd[f"convs.{2 * k}.conv.blur.kernel"] = kernel.clone()
        sd[f"to_rgbs.{k}.upsample.kernel"] = kernel.clone()


def generator_kwargs(init_kwargs: dict) -> dict:
    """Our Generator's architecture arguments from an NVIDIA Generator's constructor kwargs."""
    syn = dict(init_kwargs.get("synthesis_kwargs", {}))
    if init_kwargs.get("c_dim", 0):
        raise ValueError("class-conditional generators (c_dim > 0) are not supported")
    if syn.get("architecture", "skip") != "skip":
        raise ValueError(f"generator architecture {syn['architecture']!r} is not supported (only 'skip')")
    size = int(init_kwargs["img_resolution"])
    base, cmax = syn.get("channel_base", 32768), syn.get("channel_max", 512)
    channels = {2**i: min(base // 2**i, cmax) for i in range(2, int(np.log2(size)) + 1)}
    return {"size": size, "style_dim": int(init_kwargs["w_dim"]),
            "n_mlp": int(init_kwargs.get("mapping_kwargs", {}).get("num_layers", 8)),
            "channels": channels, "conv_clamp": syn.get("conv_clamp")}
