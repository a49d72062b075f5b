import torch

from bam_lightning.data import SyntheticDataModule


def made():
    data = SyntheticDataModule(num_classes=7, image_size=12, train_size=20, val_size=6, batch_size=4)
    data.setup("fit")
    return data


def test_the_same_random_images_every_time_in_the_shapes_asked():
    a, b = made(), made()
    assert len(a.train_set) == 20 and len(a.val_set) == 6 and a.test_set is a.val_set
    images, labels = next(iter(a.val_dataloader()))
    assert images.shape == (4, 3, 12, 12) and labels.max() < 7
    assert torch.equal(a.train_set.tensors[0], b.train_set.tensors[0])
    assert not torch.equal(a.train_set.tensors[0][:6], a.val_set.tensors[0])
