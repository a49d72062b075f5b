"""What drives a run of either task: optimisation and schedules, compiling, the divergence guard, the EMA,
callbacks, run logs and prediction writers."""
