"""``bam detect``: a trained detector's boxes on your own images, drawn into one PNG.

Each image is given to the detector as it is (the detector resizes it itself and maps its
boxes back), and drawn with every detection of ``--score`` or more, named by the classes the
checkpoint was trained on. The images sit side by side, padded to the tallest.

    bam detect --ckpt_path runs/demo_detect/.../last.ckpt --image a.jpg --image b.jpg --out detections.png
"""

from pathlib import Path

import torch
from jsonargparse import ArgumentParser
from torchvision.transforms.functional import to_tensor
from torchvision.utils import make_grid, save_image

from ..checkpoints import read_checkpoint
from ..errors import InputError, check_output_folder, one_line
from ..tasks.detection import ObjectDetector, describe, draw_detections
from . import parse, tool_parser
from .attention import read_image


def load_detector(ckpt_path: str | Path) -> ObjectDetector:
    """The detector of a ``bam fit`` checkpoint, on the CPU in eval mode, read without unpickling code."""
    path = Path(ckpt_path)
    checkpoint = read_checkpoint(path)
    if "detector" not in checkpoint.get("hyper_parameters", {}):
        raise InputError(f"{path} is not a detector's checkpoint (bam fit with a COCO or VOC config writes one)")
    try:
        detector = ObjectDetector.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    except (KeyError, TypeError, RuntimeError) as error:
        raise InputError(f"{path} does not load as a detector ({type(error).__name__}: {one_line(error)})") from error
    return detector.eval()


def build_parser() -> ArgumentParser:
    parser = tool_parser("bam detect", "Draw a trained detector's boxes on images, into one PNG.")
    parser.add_argument("--ckpt_path", type=str, required=True, help="checkpoint written by bam fit with a detection config")
    parser.add_argument("--image", type=str, action="append", required=True, help="an image file; repeat for more")
    parser.add_argument("--out", type=str, default="detections.png", help="the PNG to write")
    parser.add_argument("--score", type=float, default=0.3, help="draw detections scoring at least this")
    return parser


def main(args: list[str] | None = None) -> None:
    options = parse(build_parser(), args)
    if not 0 <= options.score <= 1:
        raise InputError(f"--score is a detection score between 0 and 1, got {options.score}")
    out = Path(options.out)
    if out.is_dir():
        raise InputError(f"--out {out} is a folder: give the PNG file to write, e.g. {out / 'detections.png'}")
    if out.suffix.lower() != ".png":
        raise InputError(f"--out {out} must end in .png")
    check_output_folder(out.parent, "--out's folder")
    images = [to_tensor(read_image(path)) for path in options.image]  # before the detector: a wrong path costs nothing
    detector = load_detector(options.ckpt_path)
    with torch.no_grad():
        predictions = detector(images)
    drawn = [
        draw_detections(image, p, detector.class_names, min_score=options.score)
        for image, p in zip(images, predictions, strict=True)
    ]
    for path, prediction in zip(options.image, predictions, strict=True):
        print(f"{path}: {', '.join(describe(prediction, detector.class_names, options.score)) or 'nothing'}")
    height, width = max(d.shape[1] for d in drawn), max(d.shape[2] for d in drawn)
    padded = [torch.nn.functional.pad(d, (0, width - d.shape[2], 0, height - d.shape[1]), value=255) for d in drawn]
    out.parent.mkdir(parents=True, exist_ok=True)
    save_image(make_grid(torch.stack(padded).float() / 255, nrow=len(padded), padding=4, pad_value=1.0), out)
    print(f"wrote {out}")
