"""The pictures of docs/photos.md, on scikit-image's astronaut portrait: the photo with its landmarks and FFHQ
quad, the aligned crop, the shipped tiny official pSp's reconstruction (random weights: it shows the plumbing, not
quality), that reconstruction pasted back, and the papers' five-point identity crop.

    python experiments/figures/photos.py [docs/img]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from skimage import data

from ganinv.data.align import Alignment, align, unalign
from ganinv.data.landmarks import FaceLandmarks, five_points
from ganinv.methods import load_method
from ganinv.metrics.face_identity import REFERENCE_112, similarity_transform, warp

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from tests.fixtures import examples  # noqa: E402


def annotated(photo: Image.Image, a: Alignment) -> Image.Image:
    img = photo.copy()
    draw = ImageDraw.Draw(img)
    quad = [tuple(p) for p in a.quad]
    draw.line([*quad, quad[0]], fill=(255, 220, 0), width=3)
    draw.line([quad[0], quad[3]], fill=(255, 60, 60), width=3)  # the crop's top edge
    for x, y in a.landmarks:
        draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=(0, 255, 120))
    return img


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    photo = Image.fromarray(data.astronaut())
    face = FaceLandmarks().faces(np.asarray(photo))[0]
    a = Alignment.of("astronaut.png", photo, face, 256)
    crop = align(photo, face, 256)
    with tempfile.TemporaryDirectory() as tmp:
        module = load_method(examples.official_checkpoints(Path(tmp))["psp"]).eval()
    x = torch.from_numpy(np.array(crop)).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        rec = module.reconstruct(module.invert(torch.nn.functional.interpolate(x, size=module.input_size,
                                                                               mode="area")))
    size = rec.shape[-1]
    rec_img = Image.fromarray(((rec[0].clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy())
    pasted = unalign(photo, rec_img, a, feather=0.1)
    points = five_points(np.asarray(a.landmarks))
    pixels = torch.from_numpy(np.array(photo)).permute(2, 0, 1).float() / 127.5 - 1
    id_crop = warp(pixels, similarity_transform(points, REFERENCE_112))
    id_img = Image.fromarray(((id_crop.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy())
    tiles = [annotated(photo, a), crop, rec_img.resize((256, 256), Image.NEAREST), pasted]
    strip = Image.new("RGB", (256 * 4 + 30, 256), (255, 255, 255))
    for k, t in enumerate(tiles):
        strip.paste(t.resize((256, 256), Image.LANCZOS) if t.size != (256, 256) else t, (k * 266, 0))
    strip.save(out / "photos_stages.png")
    id_img.resize((224, 224), Image.NEAREST).save(out / "photos_identity_crop.png")
    print(f"wrote {out / 'photos_stages.png'} (reconstruction at {size} px) and {out / 'photos_identity_crop.png'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "img")
