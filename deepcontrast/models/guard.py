"""A training guard no precision gets past: non-finite or blown-up losses and weights stop training.

A wrong kernel or a diverging optimizer shows in two places: the loss (NaN, Inf, or a jump
by orders of magnitude) and the weights (NaN, Inf, or absurdly large values, e.g. 1e38 from
a broken 16-bit gradient). :class:`TrainingGuard` watches the loss after every step (free:
Keras reports it) and the weights after the first steps of a training and at every epoch end
(one copy of the weights, cheap next to an epoch). It raises :class:`TrainingDiverged` before
any checkpoint of a bad epoch is written, and keeps the last weights that passed its check
(initially those the training started from) in :attr:`TrainingGuard.last_good`.
"""
import numpy as np

__all__ = ["TrainingDiverged", "make_training_guard", "weights_problem", "LOSS_BLOWUP", "WEIGHT_LIMIT",
           "CHECK_STEPS"]

#: a running training loss this many times the first step's loss is a blow-up, not learning
LOSS_BLOWUP = 1e3
#: a weight larger than this in magnitude is absurd for a U-Net on normalized images (trained
#: CARE networks hold weights of order 0.01-1)
WEIGHT_LIMIT = 1e5
#: steps (0-based, counted over the whole training) after which the weights are checked, besides
#: every epoch end: a broken kernel shows within the first steps
CHECK_STEPS = (0, 1, 3, 7)


class TrainingDiverged(ArithmeticError):
    """The training loss or the network weights became non-finite or absurdly large."""


def weights_problem(weights):
    """What is wrong with a list of weight arrays (NaN/Inf or beyond :data:`WEIGHT_LIMIT`), or None."""
    n_bad = sum(int(np.size(w) - np.count_nonzero(np.isfinite(w))) for w in weights)
    if n_bad:
        return f"{n_bad} network weights became NaN/Inf"
    big = max((float(np.max(np.abs(w))) for w in weights if np.size(w)), default=0.0)
    if big > WEIGHT_LIMIT:
        return f"a network weight reached {big:.3g} (beyond {WEIGHT_LIMIT:g})"
    return None


def make_training_guard():
    """A new Keras callback that raises :class:`TrainingDiverged` (see the module docstring).

    Returns
    -------
    keras.callbacks.Callback
        With ``last_good`` (list of arrays or None: the last weights that passed the check) and
        ``step`` (steps seen).
    """
    import keras

    class TrainingGuard(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.last_good, self.step, self.first_loss, self.epoch = None, 0, None, 0

        def on_train_begin(self, logs=None):
            self.last_good = self.model.get_weights()
            self.step, self.first_loss = 0, None

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            where = f"step {self.step + 1} (epoch {self.epoch + 1})"
            loss = (logs or {}).get("loss")
            if loss is not None:
                loss = float(loss)
                if not np.isfinite(loss):
                    raise TrainingDiverged(f"the loss became {loss} at {where}")
                if self.first_loss is None:
                    self.first_loss = loss
                elif self.first_loss > 0 and loss > LOSS_BLOWUP * self.first_loss:
                    raise TrainingDiverged(f"the loss blew up to {loss:.3g} at {where} (first step: "
                                           f"{self.first_loss:.3g})")
            if self.step in CHECK_STEPS:
                self._check_weights(where)
            self.step += 1

        def on_epoch_end(self, epoch, logs=None):
            val = (logs or {}).get("val_loss")
            if val is not None and not np.isfinite(float(val)):
                raise TrainingDiverged(f"the validation loss became {float(val)} at the end of epoch {epoch + 1}")
            self.last_good = self._check_weights(f"the end of epoch {epoch + 1}")

        def _check_weights(self, where):
            weights = self.model.get_weights()
            problem = weights_problem(weights)
            if problem:
                raise TrainingDiverged(f"{problem} at {where}")
            return weights

    return TrainingGuard()
