"""Tasks of the pSp image-to-image family, as degradations that turn a clean source item into the input `x`.

Every task returns `{"x": [C, S, S]}` (plus extras) at the encoder input size S; the target `y` is chosen by
`task.target` ("image", or "frontal" for frontalization) and resized by the caller.
"""

from __future__ import annotations

import kornia
import torch
import torch.nn.functional as F
from torch import Tensor

from .transforms import resize


class Task:
    """Inversion: the input is the target itself."""

    name = "inversion"
    target = "image"
    needs: tuple[str, ...] = ()  # item keys the task reads besides "image": paired maps or renders

    @property
    def input_channels(self) -> int:
        return 3

    def __call__(self, item: dict, size: int, gen: torch.Generator) -> dict:
        return {"x": resize(item["image"], size).clamp_(-1, 1)}


class SuperResolution(Task):
    """Downsample by a factor drawn from `factors`, then back up to the input size (pSp's BilinearResize)."""

    name = "super_resolution"

    def __init__(self, factors: tuple[int, ...] = (1, 2, 4, 8, 16, 32)):
        if not factors or any(int(f) < 1 for f in factors):
            raise ValueError(f"super_resolution factors must be integers >= 1, got {factors}")
        self.factors = tuple(int(f) for f in factors)

    def __call__(self, item: dict, size: int, gen: torch.Generator) -> dict:
        factor = self.factors[int(torch.randint(len(self.factors), (), generator=gen))]
        low = resize(item["image"], max(1, size // factor))
        return {"x": resize(low, size).clamp_(-1, 1), "factor": factor}


class Inpainting(Task):
    """Random rectangles and brush strokes are blanked (0) and a mask channel (1 = missing) is appended."""

    name = "inpainting"

    def __init__(self, coverage: tuple[float, float] = (0.1, 0.5), max_shapes: int = 8):
        lo, hi = coverage
        if not 0 <= lo <= hi <= 1:
            raise ValueError(f"inpainting coverage must satisfy 0 <= low <= high <= 1, got {coverage}")
        self.coverage, self.max_shapes = (float(lo), float(hi)), max_shapes

    @property
    def input_channels(self) -> int:
        return 4

    def __call__(self, item: dict, size: int, gen: torch.Generator) -> dict:
        image = resize(item["image"], size).clamp_(-1, 1)
        mask = random_mask(size, self.coverage, self.max_shapes, gen)
        return {"x": torch.cat([image * (1 - mask), mask]), "mask": mask}


def random_mask(size: int, coverage: tuple[float, float], max_shapes: int, gen: torch.Generator) -> Tensor:
    """A [1, S, S] mask of rectangles and thick strokes, grown until it covers a fraction drawn from `coverage`."""
    goal = coverage[0] + (coverage[1] - coverage[0]) * float(torch.rand((), generator=gen))
    coords = torch.linspace(0, 1, size)
    y, x = coords.view(-1, 1), coords.view(1, -1)
    mask = torch.zeros(size, size)
    for _ in range(max_shapes):
        if mask.mean() >= goal:
            break
        p = torch.rand(5, generator=gen)
        if p[0] < 0.5:  # rectangle
            cx, cy, w, h = p[1], p[2], 0.1 + 0.4 * p[3], 0.1 + 0.4 * p[4]
            shape = ((x - cx).abs() < w / 2) & ((y - cy).abs() < h / 2)
        else:  # stroke: a thick segment
            a, b = torch.rand(2, generator=gen), torch.rand(2, generator=gen)
            ba = b - a
            t = (((x - a[0]) * ba[0] + (y - a[1]) * ba[1]) / (ba @ ba + 1e-9)).clamp(0, 1)
            shape = ((x - a[0] - t * ba[0]) ** 2 + (y - a[1] - t * ba[1]) ** 2).sqrt() < 0.03 + 0.07 * p[1]
        mask = torch.maximum(mask, shape.float())
    return mask[None]


class Colorization(Task):
    """The grey-level image, repeated to three channels so RGB encoders take it unchanged."""

    name = "colorization"

    def __call__(self, item: dict, size: int, gen: torch.Generator) -> dict:
        grey = kornia.color.rgb_to_grayscale(resize(item["image"], size).clamp(-1, 1)[None])[0]
        return {"x": grey.expand(3, -1, -1).contiguous()}


class SegmentationToImage(Task):
    """One-hot class maps (pSp's label_nc channels, values 0/1) to the image."""

    name = "segmentation_to_image"
    needs = ("segmentation",)

    def __init__(self, n_classes: int = 19):
        self.n_classes = int(n_classes)

    @property
    def input_channels(self) -> int:
        return self.n_classes

    def __call__(self, item: dict, size: int, gen: torch.Generator) -> dict:
        labels = resize(item["segmentation"][None], size, mode="nearest")[0]
        top = int(labels.max())
        if top >= self.n_classes or int(labels.min()) < 0:
            raise ValueError(f"segmentation map of item {item['index']} has label {top}, outside "
                             f"0..{self.n_classes - 1}; set task_options.n_classes to the number of classes.")
        return {"x": F.one_hot(labels, self.n_classes).permute(2, 0, 1).float()}


class SketchToImage(Task):
    """A one-channel sketch (dark lines on white, in [-1, 1]) to the image."""

    name = "sketch_to_image"
    needs = ("sketch",)

    @property
    def input_channels(self) -> int:
        return 1

    def __call__(self, item: dict, size: int, gen: torch.Generator) -> dict:
        return {"x": resize(item["sketch"], size).clamp_(-1, 1)}


class Frontalization(Task):
    """A face at any pose to the same face at pose 0 (toy source: the frontal render is the target)."""

    name = "frontalization"
    target = "frontal"
    needs = ("frontal",)


TASKS = {t.name: t for t in (Task, SuperResolution, Inpainting, Colorization, SegmentationToImage,
                             SketchToImage, Frontalization)}


# Each task's options; one `task_options` dict serves every task, so each task reads only its own keys from it.
TASK_OPTIONS = {"super_resolution": ("factors",), "inpainting": ("coverage", "max_shapes"),
                "segmentation_to_image": ("n_classes",)}


def make_task(name: str, **options) -> Task:
    """Build a task by name from one options dict for all tasks; a key that no task takes is an error."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose one of {sorted(TASKS)}")
    valid = sorted({k for keys in TASK_OPTIONS.values() for k in keys})
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(f"unknown task option(s) {', '.join('data.task_options.' + k for k in unknown)}; valid "
                         f"keys: {', '.join(valid)}.")
    accepted = TASK_OPTIONS.get(name, ())
    kwargs = {k: (v if isinstance(v, (str, int, float)) else tuple(v)) for k, v in options.items() if k in accepted}
    return TASKS[name](**kwargs)
