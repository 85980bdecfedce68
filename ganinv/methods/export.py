"""`export_official`: a trained pSp / e4e / ReStyle module in the layout the official code saves and runs.

`opts` holds every option the official training and inference scripts read: the official `TrainOptions` defaults
(pixel2style2pixel, encoder4editing, restyle-encoder `options/*.py`), the `device` their coaches add, and what
this run used where the official code has the same option (architecture, losses, optimiser, schedule).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ganinv.checkpoints import atomic_save

from .base import InversionModule
from .e4e import E4EModule
from .psp import PSPModule
from .restyle import ReStyleModule

FFHQ = "pretrained_models/stylegan2-ffhq-config-f.pt"
# The official TrainOptions defaults, shared by the three repositories, then each one's own.
COMMON = {"exp_dir": None, "dataset_type": "ffhq_encode", "batch_size": 4, "test_batch_size": 2, "workers": 4,
          "test_workers": 2, "learning_rate": 0.0001, "optim_name": "ranger", "train_decoder": False,
          "start_from_latent_avg": False, "l2_lambda": 1.0, "lpips_lambda": 0.8, "id_lambda": 0.1,
          "checkpoint_path": None, "max_steps": 500000, "image_interval": 100, "board_interval": 50,
          "val_interval": 1000, "save_interval": None, "device": "cuda:0"}
E4E_OPTS = {"lpips_type": "alex", "delta_norm": 2, "delta_norm_lambda": 0.0002, "w_discriminator_lambda": 0,
            "w_discriminator_lr": 2e-05, "r1": 10, "d_reg_every": 16, "use_w_pool": False, "w_pool_size": 50,
            "progressive_steps": None, "progressive_start": None, "progressive_step_every": 2000,
            "save_training_data": False, "sub_exp_dir": None, "keep_optimizer": False,
            "resume_training_from_ckpt": None, "update_param_list": None}
DEFAULTS = {
    "psp": {**COMMON, "encoder_type": "GradualStyleEncoder", "input_nc": 3, "label_nc": 0, "output_size": 1024,
            "learn_in_w": False, "id_lambda": 0, "l2_lambda_crop": 0, "lpips_lambda_crop": 0, "w_norm_lambda": 0,
            "moco_lambda": 0, "stylegan_weights": FFHQ, "resize_factors": None,
            "use_wandb": False},
    "e4e": {**COMMON, **E4E_OPTS, "encoder_type": "Encoder4Editing", "stylegan_size": 1024,
            "stylegan_weights": FFHQ},
    "restyle_psp": {**COMMON, "encoder_type": "BackboneEncoder", "input_nc": 6, "output_size": 1024, "id_lambda": 0,
                    "l2_lambda": 0, "lpips_lambda": 0, "w_norm_lambda": 0, "moco_lambda": 0,
                    "stylegan_weights": None, "n_iters_per_batch": 5},
}
DEFAULTS["restyle_e4e"] = {**DEFAULTS["restyle_psp"], **E4E_OPTS, "encoder_type": "ProgressiveBackboneEncoder"}
# The official dataset_type of each ganinv task (configs/data_configs.py); inpainting has none.
DATASET_TYPES = {"inversion": "ffhq_encode", "super_resolution": "celebs_super_resolution",
                 "segmentation_to_image": "celebs_seg_to_face", "sketch_to_image": "celebs_sketch_to_face",
                 "frontalization": "ffhq_frontalize", "inpainting": "ffhq_encode"}
LAMBDAS = {"l2": "l2_lambda", "perceptual": "lpips_lambda", "id": "id_lambda", "w_norm": "w_norm_lambda",
           "delta_norm": "delta_norm_lambda", "w_discriminator": "w_discriminator_lambda"}


def official_kind(module: InversionModule) -> str:
    if isinstance(module, ReStyleModule):
        return f"restyle_{module.variant}"
    if isinstance(module, E4EModule):
        return "e4e"
    if isinstance(module, PSPModule):
        return "psp"
    raise ValueError(f"{type(module).__name__} has no official checkpoint layout; only pSp, e4e and ReStyle do.")


def official_opts(module: InversionModule, task: str = "inversion") -> dict:
    """The `opts` an official run with this module's settings would have saved."""
    kind = official_kind(module)
    if task not in DATASET_TYPES:
        raise ValueError(f"task {task!r} is not one of {', '.join(DATASET_TYPES)}")
    opts = dict(DEFAULTS[kind])
    size = module.generator.size
    opts |= {"encoder_type": type(module.encoder).__name__, "dataset_type": DATASET_TYPES[task],
             "start_from_latent_avg": module.start_from == "avg", "n_styles": module.n_latent,
             "max_steps": module.max_iterations, "input_size": module.input_size}  # input_size: ganinv's own
    opts |= {"stylegan_size": size} if kind == "e4e" else {"output_size": size}
    if kind == "psp":
        opts |= {"input_nc": module.input_nc, "learn_in_w": module.space == "w",
                 "label_nc": module.input_nc if task == "segmentation_to_image" else 0}
    elif kind.startswith("restyle"):
        opts |= {"input_nc": module.input_nc + 3, "n_iters_per_batch": module.n_iters}
    opt = module.optimizer_cfg
    opts |= {"learning_rate": float(opt.get("lr", opts["learning_rate"])),
             "optim_name": str(opt.get("_target_", "")).rsplit(".", 1)[-1].lower()}
    hp = dict(module.hparams.get("loss") or {})
    identity = (hp.get("identity") or {}).get("_target_", "")
    for term, weight in module.weights.items():
        key = "moco_lambda" if term == "id" and "moco" in identity else LAMBDAS.get(term)
        if key in opts:
            opts[key] = weight
    if kind in ("e4e", "restyle_e4e"):
        r1, pool = hp.get("r1") or {}, int(module.discriminator_cfg["pool_size"])
        opts |= {"progressive_start": module.progressive_start,
                 "progressive_step_every": module.progressive_step_every,
                 "delta_norm": hp.get("delta_norm_p", opts["delta_norm"]), "r1": r1.get("gamma", opts["r1"]),
                 "d_reg_every": r1.get("every", opts["d_reg_every"]), "use_w_pool": pool > 0, "w_pool_size": pool,
                 "w_discriminator_lr": float(module.discriminator_cfg["optimizer"]["lr"])}
    return opts


def encoder_state(module: InversionModule) -> dict[str, torch.Tensor]:
    """The encoder's weights as the official code runs them: an e4e-family encoder exported before its last
    progressive stage has its inactive offset heads' output layers zeroed, which is exactly the stage's effect
    (official inference runs every offset)."""
    sd = {k: v.detach().cpu().clone() for k, v in module.encoder.state_dict().items()}
    stage = module.stage if isinstance(module, E4EModule) else None
    if stage is not None and hasattr(module.encoder, "progressive_stage"):
        for i in range(stage + 1, module.n_latent):
            for name in ("weight", "bias"):
                sd[f"styles.{i}.linear.{name}"].zero_()
    return sd


def export_official(module: InversionModule, path: str | os.PathLike, task: str = "inversion") -> Path:
    """Write a trained pSp / e4e / ReStyle module as the official code saves it: `state_dict` (`encoder.*`,
    `decoder.*`), `latent_avg` ([n_latent, dim]; [1, dim] in W, as pSp's `learn_in_w` adds it), the full `opts`
    (`official_opts`), and e4e's `discriminator_state_dict` when it has a latent discriminator."""
    opts = official_opts(module, task)
    sd = {f"encoder.{k}": v for k, v in encoder_state(module).items()}
    sd |= {f"decoder.{k}": v.detach().cpu() for k, v in module.generator.state_dict().items()}
    avg = module.latent_avg.cpu().clone()
    obj = {"state_dict": sd, "latent_avg": avg[:1] if opts.get("learn_in_w") else avg, "opts": opts}
    if getattr(module, "regularisers", None) is not None:
        obj["discriminator_state_dict"] = module.regularisers.discriminator.state_dict()
    return atomic_save(obj, path)
