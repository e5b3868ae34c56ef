"""Fine-tuning strategies on a pretrained encoder, and the supervised baseline.

    finetune(encoder, X_train, y_train, X_val, y_val, config, *, pretraining,
             encoder_config=None, on_event=None, should_stop=None) -> TrainedClassifier
    train_supervised(X_train, y_train, X_val, y_val, config, encoder_config, ...) -> TrainedClassifier
The strategy names (STRATEGIES, SUPERVISED) are core.vocabulary's.

Modules: config (FinetuneConfig), strategies (what each strategy trains, BN re-estimation),
probe (the L-BFGS head of linear and bn-stats), training (the loop, early stopping,
calibration), classifier (TrainedClassifier, save/load). docs/finetuning.md explains the choices.
"""

from core.learning.finetune.classifier import TrainedClassifier
from core.learning.finetune.config import FinetuneConfig
from core.learning.finetune.training import count_parameters, finetune, train_supervised

__all__ = ["FinetuneConfig", "TrainedClassifier", "count_parameters", "finetune", "train_supervised"]
