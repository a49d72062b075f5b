"""The model card and config of ``bam export --format hf``: what a run logged and ran with, and the preprocessing."""

from torch.utils.tensorboard import SummaryWriter

from bam_lightning.data import DigitsDataModule
from bam_lightning.models import create_model
from bam_lightning.tools.hub_folder import Exported, hub_config, model_card, run_recipe, run_results


def test_the_card_carries_the_runs_test_metrics_and_recipe(tmp_path):
    run = tmp_path / "version_0"
    with SummaryWriter(run) as writer:
        writer.add_scalar("val/acc1", 50.0, 0)
        writer.add_scalar("test/acc1", 91.25, 3)
        writer.add_scalar("test/err1", 8.75, 3)
    (run / "config.yaml").write_text("model:\n  backbone: wrn\n")
    network = create_model("wrn", 10, depth=10, widen_factor=1)
    exported = Exported(
        network, "wrn", {"attention": "bam"}, 10, 32, DigitsDataModule(), [str(i) for i in range(10)],
        "A digits demo.", run_recipe(run), run_results(run),
    )  # fmt: skip
    assert exported.results == {"test/acc1": 91.25, "test/err1": 8.75}
    config = hub_config(exported)
    assert config["label_names"] == [str(i) for i in range(10)] and config["pretrained_cfg"]["crop_pct"] == 1.0
    card = model_card(exported, config, "cc-by-4.0")
    assert "license: cc-by-4.0\n" in card and "| test/acc1 | 91.25 |\n| test/err1 | 8.75 |\n" in card
    assert "```yaml\nmodel:\n  backbone: wrn\n```" in card and "A digits demo." in card
    assert run_results(None) == {} and run_recipe(None) == ""
