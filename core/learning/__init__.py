"""Learning: encoders, the SSL objectives, the pretraining loop and fine-tuning strategies."""
