"""The baseline: the same DQN update written the way the Keras tutorials write it.

The tutorial model takes the observation and a one-hot action mask and outputs
Q(s, ·) ⊙ mask; it is fitted with MSE to target ⊙ mask, so only Q(s, a) is
pulled towards y. The optimizer is Adam with clipnorm=1.0.

    train_on_batch   model.train_on_batch([obs, mask], mask · y) with y given
    full update      y = r + γ(1 − terminated) max target_model.predict_on_batch([s', 1])
                     computed on the host in NumPy, then train_on_batch — the tutorial's loop

Keras is imported here only (never in rawdqn/). Keras' MSE is mean(δ²) over
the masked [batch, actions] output, not rawdqn's mean(½δ²) over the batch; the
work per update is the same shape.
"""
import os

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def keras_version():
    import keras
    return keras.__version__


def build_model(obs_dim, num_actions, hidden, dtype, learning_rate=1e-3):
    import keras
    obs = keras.Input((obs_dim,), dtype=dtype, name="obs")
    mask = keras.Input((num_actions,), dtype=dtype, name="action_mask")
    x = obs
    for width in hidden:
        x = keras.layers.Dense(width, activation="relu", dtype=dtype)(x)
    q_values = keras.layers.Dense(num_actions, dtype=dtype)(x)
    filtered = keras.layers.Multiply(dtype=dtype)([q_values, mask])
    model = keras.Model([obs, mask], filtered)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate, clipnorm=1.0), loss="mse")
    return model


class KerasDQN:
    """Online and target Keras models and pre-drawn batches, cycled call after call."""

    def __init__(self, obs_dim, num_actions, hidden, dtype, batch, discount=0.99,
                 seed=0, num_batches=8):
        import keras
        keras.utils.set_random_seed(seed)
        self.model = build_model(obs_dim, num_actions, hidden, dtype)
        self.target_model = build_model(obs_dim, num_actions, hidden, dtype)
        self.target_model.set_weights(self.model.get_weights())
        self.discount = discount
        self.num_actions = num_actions
        rng = np.random.default_rng(seed)
        np_dtype = np.dtype(dtype)
        eye = np.eye(num_actions, dtype=np_dtype)
        self.batches = []
        for _ in range(num_batches):
            actions = rng.integers(0, num_actions, batch)
            self.batches.append(dict(
                obs=rng.normal(size=(batch, obs_dim)).astype(np_dtype),
                mask=eye[actions],
                reward=rng.normal(size=batch).astype(np_dtype),
                next_obs=rng.normal(size=(batch, obs_dim)).astype(np_dtype),
                terminated=(rng.random(batch) < 0.05).astype(np_dtype),
                ones=np.ones((batch, num_actions), np_dtype),
                fixed_target=rng.normal(size=batch).astype(np_dtype)))
        self.calls = 0

    def _next(self):
        batch = self.batches[self.calls % len(self.batches)]
        self.calls += 1
        return batch

    def train_on_batch(self):
        b = self._next()
        return self.model.train_on_batch([b["obs"], b["mask"]], b["mask"] * b["fixed_target"][:, None])

    def full_update(self):
        b = self._next()
        next_q = self.target_model.predict_on_batch([b["next_obs"], b["ones"]])
        target = b["reward"] + self.discount * (1.0 - b["terminated"]) * next_q.max(axis=1)
        return self.model.train_on_batch([b["obs"], b["mask"]], b["mask"] * target[:, None])

    @property
    def jit_compile(self):
        return bool(getattr(self.model, "jit_compile", False))
