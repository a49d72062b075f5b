import torch

from bam_lightning.engine.corruption_errors import GroupErrors


def test_errors_are_counted_per_group_over_batches_and_a_group_without_images_is_left_out():
    errors = GroupErrors([("fog", 1), ("fog", 2), ("snow", 1)])
    logits = torch.eye(3)[[0, 1, 2, 0]]  # predicts 0, 1, 2, 0
    errors.update(logits, torch.tensor([0, 0, 2, 1]), torch.tensor([0, 0, 0, 1]))  # fog 1: 1 of 3 wrong; fog 2: 1 of 1
    errors.update(logits[:1], torch.tensor([0]), torch.tensor([1]))  # fog 2: 1 of 2 wrong
    assert errors.compute() == {("fog", 1): 100 / 3, ("fog", 2): 50.0}
