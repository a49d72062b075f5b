"""Image files that do not decode (truncated, not an image): what ``--data.bad_images`` makes of them.

``fail`` (the default) stops the run with the file's name; ``skip`` names it on stderr and goes
on without it. Every reader of image files shares these words: ``bam predict``'s ``ImageFiles``,
which leaves a skipped file's row out, and the training and evaluation sets (ImageNet's
``CheckedImageFolder``, COCO's and VOC's detection sets), which read ``NextReadable``'s image instead.
"""

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from PIL import UnidentifiedImageError
from torchvision.datasets.folder import pil_loader

from ..errors import InputError, one_line

BadImages = Literal["fail", "skip"]


def check_bad_images(value: str) -> BadImages:
    """``value`` if it is ``fail`` or ``skip``; one line otherwise (the CLI's parser already refuses others)."""
    if value not in ("fail", "skip"):
        raise InputError(f"--data.bad_images must be fail or skip, got {value!r}")
    return value  # type: ignore[return-value]


def refuse_or_skip(path: str | Path, error: BaseException, bad_images: BadImages, skip_does: str = "") -> None:
    """An image file that does not decode: refused by name (``fail``), or named on stderr and left to the caller to skip.

    ``skip_does`` ends the refusal's hint, e.g. ``" to train without it"``.
    """
    reason = "PIL cannot identify it as an image" if isinstance(error, UnidentifiedImageError) else one_line(error)
    if bad_images == "fail":
        raise InputError(
            f"{path} is not a readable image ({reason}): replace or delete it, or pass --data.bad_images skip{skip_does}"
        ) from None
    print(f"bam: skipping unreadable image {path} ({reason})", file=sys.stderr, flush=True)


class NextReadable:
    """Decodes the image of sample ``index`` of a dataset of files or, where it does not decode and ``bad_images`` is
    ``skip``, that of the next sample whose file does (in the dataset's order, wrapping round).

    Files are checked when they are decoded for a batch, not in a scan at setup: PIL's
    ``verify()`` does not decode JPEG data, so it passes truncated files, and decoding all of
    ImageNet's 1.28 M images up front costs about as much as a training epoch's loading. ``fail``
    therefore stops at the first bad file a batch meets. ``skip`` prints one line for the file and
    marks it in a mask shared with the loader workers, so later epochs pass over it without
    decoding it again; ``report`` counts them when the run ends.

    Why the next sample, rather than a batch one sample short (a collate that drops it):

    - every batch keeps its size, so no batch is ever empty, which a detector cannot take, and
      under DDP every process takes every step: a process that skipped one would leave the
      others waiting in the gradient all-reduce;
    - what ``index`` gives depends only on ``index`` and on which files are unreadable, not on
      which were found so far (the mask only saves decoding), and the sampler's seed for
      ``index`` draws its augmentation: a resumed run, any number of workers and every DDP
      shard load the same samples as the run that never stopped;
    - the sample is whole: a stand-in image comes with its own label or boxes, so no target is
      ever paired with another image.

    The cost: the neighbour is seen twice in that epoch (in evaluation its detections count
    twice, as those of the images DDP's sampler repeats to even out its shards do).
    """

    def __init__(
        self,
        paths: Sequence[str],
        root: str | Path,
        bad_images: BadImages,
        skip_does: str,
        loader: Callable[[str], Any] = pil_loader,
    ) -> None:
        self.paths = paths
        self.root = root
        self.bad_images = bad_images
        self.skip_does = skip_does
        self.loader = loader
        self.bad = torch.zeros(len(paths), dtype=torch.bool).share_memory_()

    def __call__(self, index: int) -> tuple[int, Any]:
        """The index of the sample read, ``index`` or its stand-in, and its decoded image."""
        for offset in range(len(self.paths)):
            i = (index + offset) % len(self.paths)
            if self.bad[i]:
                continue
            try:
                return i, self.loader(self.paths[i])
            except Exception as error:  # PIL: UnidentifiedImageError, "image file is truncated", ...
                refuse_or_skip(self.paths[i], error, self.bad_images, self.skip_does)
                self.bad[i] = True
        raise InputError(f"no readable image under {self.root}: every file failed to decode")

    @property
    def skipped(self) -> list[str]:
        """Files skipped so far, by any loader worker."""
        return [self.paths[i] for i in self.bad.nonzero().flatten().tolist()]

    def report(self) -> None:
        """One ``bam:`` line with the count of skipped files, when there were any: each was named when it was met."""
        if skipped := self.skipped:
            print(
                f"bam: skipped {len(skipped)} unreadable image(s) of {len(self.paths)} under {self.root}"
                " (--data.bad_images skip)",
                file=sys.stderr,
                flush=True,
            )
