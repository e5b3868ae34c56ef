"""Debiasing inside the SSL engine (issue 18 part 2): what a fine-tuning may add to change whom
a model serves, each one idea per module, all plugged into the one fine-tuning loop
(core.learning.finetune.training) through a `TrainingHook`, never a copy of the loop:

    hook          TrainingHook, what a debiasing method may add to the loop (nothing by default)
    penalty       FairnessPenalty: BCE + lambda * a differentiable between-group difference
    adversary     AdversarialRemoval: a gradient-reversal head that reads the sensitive attribute
    pruning       global magnitude pruning of an encoder's Linear weights, the zeros kept while fine-tuning
    shape         the wider, shallower encoder's shape

The package imports nothing on purpose: the fine-tuning loop imports `hook` alone.
"""
