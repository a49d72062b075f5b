"""The LightningModules, one per task over one engine: ``base`` (what both share), ``classification``, ``detection``."""
