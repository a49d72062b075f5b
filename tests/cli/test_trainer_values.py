"""check_trainer_values judges numbers only: Lightning's other forms of a value pass to Lightning."""

import pytest

from bam_lightning.cli.trainer_values import check_trainer_values


@pytest.mark.parametrize("value", ["00:00:00:30", {"minutes": 1}, 0.25, 3])
def test_a_time_or_a_positive_validation_interval_is_left_to_lightning(value):
    check_trainer_values({"val_check_interval": value})  # a time was compared with 0: a TypeError traceback


@pytest.mark.parametrize("value", [0, 0.0, -2])
def test_a_validation_interval_of_no_length_is_refused(value):
    with pytest.raises(ValueError, match=f"trainer.val_check_interval {value}: give a fraction of the epoch above 0"):
        check_trainer_values({"val_check_interval": value})
