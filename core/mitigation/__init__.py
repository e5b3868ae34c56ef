"""Mitigations: fairlearn's reductions, pre- and post-processing, and debiasing inside the SSL
engine, each a variant of a trained model (core.run.variants). The names: core.mitigation.catalog."""
