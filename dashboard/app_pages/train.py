"""Train: pretrain an encoder with self-supervised learning and fine-tune models on it."""

from dashboard.components import placeholder

placeholder.render(
    "Train",
    "Train the models to audit: a self-supervised (SSL) pretraining run on all rows, then models fine-tuned "
    "from it and a supervised baseline of the same shape, so you can see whether pretraining makes the model "
    "fairer.",
    ["the SSL method, encoder size, epochs and the share of rows with labels, with a short run as the default",
     "a progress bar, the loss curve and the time left while training runs in the background",
     "every run of the study with its status; a failed run says why"],
    first="check the study's set-up on the Data page (outcome, positive label, groups to compare): "
          "training starts from it.",
    first_page="app_pages/data.py", first_label="Review the set-up on Data")
