"""Faces and their 68 landmarks (iBUG 300-W layout) from dlib: the HOG frontal-face detector and the 68-point shape
predictor that every official alignment script uses. The predictor file comes from the `face-recognition-models`
package (`pip install 'ganinv[align]'`), or any `shape_predictor_68_face_landmarks.dat` given by path."""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path

import numpy as np

from .files import DataError

INSTALL = "pip install 'ganinv[align]' (dlib-bin and face-recognition-models: dlib and its 68-landmark model)"
PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"
DETECT_SIDE = 1024  # faces are found on a copy at most this large (dlib's HOG is slow on 12-MP photos), then
                    # their landmarks on the full image


def available() -> bool:
    """Whether dlib and the landmark model are installed (the `align` extra)."""
    return importlib.util.find_spec("dlib") is not None and default_predictor() is not None


def default_predictor() -> Path | None:
    """The 68-point model that `face-recognition-models` ships (found without importing it: its __init__ needs
    pkg_resources), or None."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / PREDICTOR_FILE
    return path if path.is_file() else None


class FaceLandmarks:
    """`faces(rgb)`: the 68 landmarks [68, 2] (x, y in pixel-index coordinates) of every face dlib finds in an
    RGB uint8 array, largest face first. `min_score`: the detector's threshold (dlib's own is 0; its weakest
    detections are mostly not faces, e.g. a badge on a space suit at 0.12)."""

    def __init__(self, predictor: str | os.PathLike | None = None, upsample: int = 1, min_score: float = 0.3):
        if importlib.util.find_spec("dlib") is None:
            raise DataError(f"face alignment needs dlib, which is not installed: {INSTALL}.")
        import dlib

        path = Path(predictor).expanduser() if predictor else default_predictor()
        if path is None:
            raise DataError(f"the 68-landmark model ({PREDICTOR_FILE}) is not installed: {INSTALL}, or pass its "
                            "path as landmarks=<file>.")
        if not path.is_file():
            raise DataError(f"{path}: landmark model not found. Pass dlib's {PREDICTOR_FILE} as landmarks=<file>.")
        try:
            self.predictor = dlib.shape_predictor(str(path))
        except RuntimeError as e:
            raise DataError(f"{path}: not a dlib shape predictor ({e}). Pass dlib's {PREDICTOR_FILE}.") from None
        self.detector, self.upsample, self.min_score = dlib.get_frontal_face_detector(), int(upsample), min_score
        self._dlib = dlib

    def faces(self, rgb: np.ndarray) -> list[np.ndarray]:
        h, w = rgb.shape[:2]
        scale = min(1.0, DETECT_SIDE / max(h, w))
        small = rgb
        if scale < 1:
            from PIL import Image

            small = np.asarray(Image.fromarray(rgb).resize((round(w * scale), round(h * scale)), Image.BILINEAR))
        rects = self.detector.run(np.ascontiguousarray(small), self.upsample, float(self.min_score))[0]
        rects = sorted(rects, key=lambda r: -r.area())
        found = []
        for r in rects:
            full = self._dlib.rectangle(*(round(v / scale) for v in (r.left(), r.top(), r.right(), r.bottom())))
            shape = self.predictor(np.ascontiguousarray(rgb), full)
            found.append(np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64))
        return found


@functools.cache
def shared() -> FaceLandmarks:
    """One FaceLandmarks with the default model and threshold per process (the model takes 0.6 s to read)."""
    return FaceLandmarks()


def five_points(landmarks: np.ndarray) -> np.ndarray:
    """The five points of face-recognition crops (eye centres, nose tip, mouth corners) from 68 landmarks [5, 2]."""
    lm = np.asarray(landmarks, dtype=np.float64)
    return np.stack([lm[36:42].mean(0), lm[42:48].mean(0), lm[30], lm[48], lm[54]])
