"""The GPU path, on a CUDA GPU (skipped without one; ``make gpu-check`` runs them): fused BAM, bf16, compile,
channels_last, checkpoints moving between devices, DDP over NCCL.

Tolerances: float32 compares at torch's defaults for float32; bfloat16 (8 bits of mantissa) at 2e-2, the rounding
of one bf16 operation on values of order one, since the fused and reference forms round at different places.
"""

import lightning.pytorch as L
import pytest
import torch

from bam_lightning.engine.compiling import compile_model
from bam_lightning.nn import BAM

from helpers.classifier import loader, tiny_classifier
from helpers.cli_args import cifar_args
from helpers.command import bam
from helpers.datasets import write_cifar100

pytestmark = pytest.mark.cuda
CUDA = torch.device("cuda")


def pair(**kwargs) -> tuple[BAM, BAM]:
    """The fused block and the reference form with the same weights, on the GPU, in training mode."""
    fused = BAM(64, **kwargs).to(CUDA)
    plain = BAM(64, fused=False, **kwargs).to(CUDA)
    plain.load_state_dict(fused.state_dict())
    return fused, plain


def outputs_and_gradients(block: BAM, x: torch.Tensor, autocast: bool) -> tuple[torch.Tensor, ...]:
    x = x.clone().requires_grad_()
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
        y = block(x)
    y.float().square().mean().backward()
    return y.float(), x.grad.float(), *(p.grad.float() for p in block.parameters())


@pytest.mark.parametrize("combine", ["sum", "prod"])
@pytest.mark.parametrize("autocast", [False, True], ids=["float32", "bf16-autocast"])
def test_fused_bam_equals_the_reference_form(combine, autocast):
    torch.manual_seed(0)
    fused, plain = pair(combine=combine)
    x = torch.randn(8, 64, 16, 16, device=CUDA)
    tolerance = {"atol": 2e-2, "rtol": 2e-2} if autocast else {}
    for ours, reference in zip(outputs_and_gradients(fused, x, autocast), outputs_and_gradients(plain, x, autocast), strict=True):
        torch.testing.assert_close(ours, reference, **tolerance)


@pytest.mark.parametrize("what", ["attention", "network"])
def test_the_compiled_network_computes_what_the_eager_one_does(what):
    torch.manual_seed(0)
    eager = tiny_classifier(attention="bam").to(CUDA)
    compiled = tiny_classifier(attention="bam").to(CUDA)
    compiled.load_state_dict(eager.state_dict())
    compile_model(compiled.model, what, CUDA)
    x = torch.randn(4, 3, 32, 32, device=CUDA)
    for model in (eager, compiled):
        model.eval()
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), eager(x), atol=1e-4, rtol=1e-4)


def test_channels_last_computes_what_contiguous_does():
    torch.manual_seed(0)
    plain = tiny_classifier(attention="bam").to(CUDA).eval()
    nhwc = tiny_classifier(attention="bam", channels_last=True).to(CUDA).eval()
    nhwc.load_state_dict(plain.state_dict())
    x = torch.randn(4, 3, 32, 32, device=CUDA)
    with torch.no_grad():
        torch.testing.assert_close(nhwc(x), plain(x), atol=1e-4, rtol=1e-4)


def test_a_checkpoint_trained_on_the_gpu_gives_the_same_logits_on_the_cpu(tmp_path):
    model = tiny_classifier(attention="bam")
    quiet = {"logger": False, "enable_progress_bar": False, "enable_model_summary": False, "enable_checkpointing": False}
    trainer = L.Trainer(accelerator="gpu", devices=1, max_epochs=1, **quiet)
    trainer.fit(model, loader())
    trainer.save_checkpoint(tmp_path / "gpu.ckpt")
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        on_gpu = model.eval()(x.to(CUDA)).cpu()
        on_cpu = type(model).load_from_checkpoint(tmp_path / "gpu.ckpt", map_location="cpu").eval()(x)
    torch.testing.assert_close(on_cpu, on_gpu, atol=1e-4, rtol=1e-4)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")
def test_two_process_ddp_over_nccl(tmp_path):
    write_cifar100(tmp_path / "data", n_train=64, n_test=16)
    args = cifar_args(tmp_path, "--trainer.max_epochs", "1", "--trainer.strategy", "ddp", "--trainer.devices", "2")
    bam("fit", *[a if a != "cpu" else "gpu" for a in args], "--trainer.sync_batchnorm", "true", cwd=tmp_path, fresh=True)
    assert len(list((tmp_path / "runs").rglob("last.ckpt"))) == 1
