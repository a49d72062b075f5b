import math
from functools import partial

import lightning.pytorch as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from bam_lightning.engine.optimization import parameter_groups
from bam_lightning.errors import InputError
from bam_lightning.nn import BAM
from bam_lightning.tasks.classification import ImageClassifier, dilation_warning

from helpers.classifier import loader, tiny_classifier
from helpers.cli_args import cifar_args
from helpers.command import one_line_error


def test_builds_the_named_backbone_with_its_attention():
    model = tiny_classifier(attention="bam", attention_kwargs={"reduction": 4})
    bams = [m for m in model.model.modules() if isinstance(m, BAM)]
    assert [b.channel.mlp[0].out_features for b in bams] == [16 // 4, 32 // 4]
    assert model.model.fc.out_features == 4
    assert not any(isinstance(m, BAM) for m in tiny_classifier(attention=None).modules())


def test_a_given_module_gets_attention_at_the_linked_image_size():
    backbone = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.Conv2d(16, 16, 3, stride=2, padding=1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 4),
    )
    model = ImageClassifier(backbone, num_classes=4, image_size=16, attention="se")
    assert "backbone" not in model.hparams
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 4)
    assert sum(type(m).__name__ == "SqueezeExcite" for m in model.modules()) == 1


def test_weight_decay_exclusion_covers_every_bias_and_norm_scale():
    net = tiny_classifier().model
    decay, no_decay = parameter_groups(net, decay_norm_and_bias=False)
    assert no_decay["weight_decay"] == 0.0
    assert all(p.ndim > 1 for p in decay["params"]) and all(p.ndim == 1 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(net.parameters()))
    assert len(parameter_groups(net, decay_norm_and_bias=True)) == 1


def test_optimizer_and_scheduler_come_from_the_callables():
    model = tiny_classifier(
        optimizer=partial(torch.optim.SGD, lr=0.1, momentum=0.9, weight_decay=5e-4),
        lr_scheduler=partial(torch.optim.lr_scheduler.MultiStepLR, milestones=[2], gamma=0.2),
        decay_norm_and_bias=False,
    )
    config = model.configure_optimizers()
    optimizer, scheduler = config["optimizer"], config["lr_scheduler"]["scheduler"]
    assert [g["weight_decay"] for g in optimizer.param_groups] == [5e-4, 0.0]
    assert scheduler.milestones == {2: 1} and config["lr_scheduler"]["interval"] == "epoch"


def test_fit_logs_the_papers_metrics_and_learns(tmp_path):
    model = tiny_classifier(attention="bam", label_smoothing=0.1)
    trainer = L.Trainer(
        max_epochs=3, default_root_dir=tmp_path, logger=False, enable_checkpointing=False, enable_progress_bar=False
    )
    trainer.fit(model, loader(), loader(seed=1))
    logged = trainer.callback_metrics
    for key in ("train/loss", "train/acc1", "train/err1", "val/loss", "val/acc1", "val/acc5", "val/err1", "val/acc1_best"):
        assert key in logged, key
    assert logged["val/acc1"] + logged["val/err1"] == pytest.approx(100)
    assert logged["val/acc5"] == pytest.approx(100)  # 4 classes: the top-5 always holds the target
    assert logged["val/acc1_best"] >= logged["val/acc1"]
    assert logged["val/acc1"] > 50  # well above chance (25 %) on separable data
    (result,) = trainer.test(model, loader(seed=1), verbose=False)
    assert result["test/acc1"] == pytest.approx(logged["val/acc1"].item())


def test_checkpoint_hyperparameters_are_plain_and_load_weights_only(tmp_path):
    model = tiny_classifier(optimizer=partial(torch.optim.SGD, lr=0.1))
    trainer = L.Trainer(max_epochs=1, default_root_dir=tmp_path, logger=False, enable_progress_bar=False)
    trainer.fit(model, loader())
    (path,) = (tmp_path / "checkpoints").glob("*.ckpt")
    checkpoint = torch.load(path, weights_only=True)
    assert checkpoint["hyper_parameters"]["backbone"] == "wrn"
    assert "optimizer" not in checkpoint["hyper_parameters"]
    restored = ImageClassifier.load_from_checkpoint(path)
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(restored.eval()(x), model.eval()(x))


class Explosive(nn.Module):
    """A tiny classifier whose logits become NaN once armed: a diverged run on demand."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))
        self.armed = False

    def forward(self, x):
        logits = self.net(x)
        return logits * float("nan") if self.armed else logits


@pytest.mark.parametrize("fused", [False, True], ids=["checked-on-the-host", "skipped-on-the-device"])
def test_non_finite_loss_stops_before_the_update_and_names_the_last_good_checkpoint(tmp_path, fused):
    """A fused optimizer skips the update on the device and the flag is read at a logging step (3 here), not each step."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    from bam_lightning.errors import TrainingDiverged

    backbone = Explosive()
    sgd = partial(torch.optim.SGD, lr=0.05, momentum=0.9, fused=fused)
    model = ImageClassifier(backbone, num_classes=4, attention=None, optimizer=sgd)

    def trainer(epochs):
        last = ModelCheckpoint(dirpath=tmp_path, filename="last", enable_version_counter=False)
        quiet = {"logger": False, "enable_progress_bar": False, "enable_model_summary": False, "log_every_n_steps": 3}
        return L.Trainer(max_epochs=epochs, callbacks=[last], **quiet)

    trainer(1).fit(model, loader())
    good = {k: v.clone() for k, v in model.state_dict().items()}
    backbone.armed = True
    with pytest.raises(
        TrainingDiverged, match=rf"loss became nan at step 4 \(epoch 1\).*last good checkpoint {tmp_path}/last.ckpt"
    ):
        trainer(2).fit(model, loader(), ckpt_path=tmp_path / "last.ckpt")
    assert model.trainer.global_step == (6 if fused else 4)  # read at the step that logs, after 2 skipped updates
    assert torch.load(tmp_path / "last.ckpt", weights_only=True)["epoch"] == 0  # not overwritten by the failed run
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, good[key])  # the NaN step never reached the optimizer


def test_a_dilation_past_the_map_is_one_line_naming_every_block_and_the_fix():
    line = dilation_warning({"layer2.attn": (4, (4, 6)), "layer3.attn": (4, (2, 2))})
    assert line == (
        "BAM's dilated convs read only zero padding off-centre where the dilation is not below the map's side:"
        " layer2.attn (4x6 map, dilation 4), layer3.attn (2x2 map, dilation 4):"
        " give model.attention_kwargs {dilation: N} with N below 2, or a larger --data.image_size"
    )
    one_pixel = dilation_warning({"attn": (2, (1, 3))})
    assert one_pixel.endswith("give model.attention_kwargs {num_dilated: 0}, or a larger --data.image_size")


def test_an_image_size_the_network_cannot_take_is_refused_by_name():
    model = ImageClassifier("squeezenet1_1", num_classes=3, attention=None)
    model.check_image_size(64)
    with pytest.raises(InputError, match=r"squeezenet1_1 cannot take 16x16 images \(.*\): change --data.image_size"):
        model.check_image_size(16)


@pytest.mark.long
@pytest.mark.parametrize("compile", ["attention", "network"])
def test_speed_switches_keep_the_math(tmp_path, compile):
    """channels_last and compile change memory order and kernels, not what the network computes or learns."""
    reference = tiny_classifier()
    fast = tiny_classifier(channels_last=True, compile=compile)
    fast.load_state_dict(reference.state_dict())
    assert fast.model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    quiet = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False}
    for model in (fast, reference):
        L.Trainer(max_steps=2, default_root_dir=tmp_path, **quiet).fit(model, loader())
    compiled = fast.model if compile == "network" else fast.model.layer1.attn
    assert compiled._compiled_call_impl is not None  # compiled when the trainer set the model up
    # Same keys, so a compiled run's checkpoint loads anywhere; the same values after two steps, up to rounding.
    torch.testing.assert_close(fast.state_dict(), reference.state_dict(), rtol=1e-3, atol=1e-3)
    reference.load_state_dict(fast.state_dict())
    x = torch.randn(8, 3, 16, 16)
    # Training mode, as compiled by the fit (eval mode would compile a second graph).
    torch.testing.assert_close(fast(x), reference(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "scheduler,message",
    [
        (partial(torch.optim.lr_scheduler.CosineAnnealingLR, T_max=0), "CosineAnnealingLR fails at its first step"),
        (partial(torch.optim.lr_scheduler.StepLR, step_size=0), "StepLR fails at its first step"),
        (partial(torch.optim.lr_scheduler.CosineAnnealingWarmRestarts, T_0=0), "Expected positive integer T_0"),
    ],
)
def test_a_scheduler_that_cannot_step_is_refused_before_training(scheduler, message):
    with pytest.raises(InputError, match=f"model.lr_scheduler: {message}"):
        tiny_classifier(lr_scheduler=scheduler).configure_optimizers()


def test_the_rehearsed_steps_leave_the_schedule_where_it_starts():
    milestones = partial(torch.optim.lr_scheduler.MultiStepLR, milestones=[1], gamma=0.1)
    config = tiny_classifier(lr_scheduler=milestones).configure_optimizers()
    optimizer, scheduler = config["optimizer"], config["lr_scheduler"]["scheduler"]
    assert scheduler.last_epoch == 0 and [g["lr"] for g in optimizer.param_groups] == [0.05]
    scheduler.step()  # the milestone: lr drops once, as in a schedule never rehearsed
    assert [g["lr"] for g in optimizer.param_groups] == [pytest.approx(0.005)]


class PoisonedValidation(torch.utils.data.Dataset):
    """Finite images but for one NaN pixel in the last: the validation loss is NaN while every weight stays finite."""

    def __init__(self) -> None:
        self.images, self.labels = loader().dataset.tensors

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        image = self.images[i].clone()
        if i == len(self) - 1:
            image[0, 0, 0] = float("nan")
        return image, self.labels[i]


def test_non_finite_validation_loss_or_weights_end_the_fit_and_save_nothing_of_that_epoch(tmp_path):
    from lightning.pytorch.callbacks import ModelCheckpoint

    from bam_lightning.errors import TrainingDiverged

    def fit(model, val, *callbacks):
        best = ModelCheckpoint(dirpath=tmp_path, monitor="val/acc1", mode="max", save_last=True)
        quiet = {"logger": False, "enable_progress_bar": False, "enable_model_summary": False}
        trainer = L.Trainer(max_epochs=2, callbacks=[best, *callbacks], default_root_dir=tmp_path, **quiet)
        trainer.fit(model, loader(), val)

    nan_loss = r"the validation loss became NaN or inf in epoch 0, step 4: .*no checkpoint was saved before it"
    with pytest.raises(TrainingDiverged, match=nan_loss):
        fit(tiny_classifier(), DataLoader(PoisonedValidation(), batch_size=8))

    class Overflow(L.Callback):  # as a huge learning rate does, the training loss staying finite
        def on_train_batch_end(self, trainer, module, *args) -> None:
            module.model.bn.running_var.fill_(float("inf"))

    with pytest.raises(TrainingDiverged, match=r"the weights hold NaN or inf \(model.bn.running_var\) in epoch 0"):
        fit(tiny_classifier(), loader(), Overflow())
    assert list(tmp_path.iterdir()) == []  # neither a last nor a "best" checkpoint of the broken epochs


class NoSyncInSteps(L.Callback):
    """Makes any host-device sync inside a training step an error, from the second step on (the first checks on the host)."""

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        torch.cuda.set_sync_debug_mode("error" if trainer.global_step >= 1 else "default")

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.cuda
def test_a_training_step_does_not_wait_for_the_gpu():
    """With a fused optimizer, the non-finite-loss guard costs no sync: the step only queues work on the device."""
    model = tiny_classifier(optimizer=partial(torch.optim.SGD, lr=0.05, momentum=0.9, fused=True))
    quiet = {"logger": False, "enable_progress_bar": False, "enable_model_summary": False, "enable_checkpointing": False}
    trainer = L.Trainer(accelerator="gpu", devices=1, max_steps=4, log_every_n_steps=100, callbacks=[NoSyncInSteps()], **quiet)
    try:
        trainer.fit(model, loader())
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert trainer.global_step == 4


def test_model_pretrained_reaches_the_networks_builder(tmp_path, capsys):
    """``--model.pretrained`` from the command line, ``bam test``'s as ``bam fit``'s: a Hub name not in the cache."""
    last = one_line_error(["test", *cifar_args(tmp_path), "--model.pretrained", "hf-hub:nobody/none"], capsys)
    assert "hf-hub:nobody/none: config.json is not in the Hugging Face cache and cannot be downloaded" in last, last


def test_a_folder_of_weights_as_ckpt_path_is_pointed_to_model_pretrained(tmp_path, capsys):
    last = one_line_error(["test", *cifar_args(tmp_path), "--ckpt_path", "local-dir:my_model"], capsys)
    assert last.endswith(
        "--ckpt_path local-dir:my_model names a folder of weights, not a checkpoint: give --model.pretrained"
        " local-dir:my_model instead (with the config whose model it fits)"
    )


def test_ece_and_nll_are_the_hand_computed_ones_over_the_whole_test_set():
    """Four images whose confidences fall in four of the 15 bins: ECE is the mean of |correct - confidence|."""
    probs = torch.tensor([[0.9, 0.05, 0.05], [0.62, 0.28, 0.1], [0.2, 0.7, 0.1], [0.42, 0.33, 0.25]])
    labels = torch.tensor([0, 1, 1, 2])  # right (0.9), wrong (0.62), right (0.7), wrong (0.42)
    model = ImageClassifier(nn.Flatten(), num_classes=3, attention=None)  # the "images" are the logits
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    (result,) = trainer.test(model, DataLoader(TensorDataset(probs.log(), labels), batch_size=2), verbose=False)
    assert result["test/ece"] == pytest.approx(100 * (0.1 + 0.62 + 0.3 + 0.42) / 4)
    assert result["test/nll"] == pytest.approx(-(math.log(0.9) + math.log(0.28) + math.log(0.7) + math.log(0.25)) / 4)
    assert result["test/err1"] == pytest.approx(50)
