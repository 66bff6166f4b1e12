"""scale_observations: the network maps each observation to [−1, 1] from its Box's bounds,
h_0 = 2(s − low)/(high − low) − 1, against float64 NumPy; the bounds come from the env's spec,
stay out of its equality (older checkpoints match), and an exported model takes raw observations."""
import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

from cli_helpers import cli
from rawdqn import reference
from rawdqn.gym_env import EnvSpec, env_spec
from rawdqn.network import QNetwork


def test_the_network_rescales_its_input_before_the_first_layer():
    rng = np.random.default_rng(0)
    low, high = np.array([-1.2, -0.07, 0.0]), np.array([0.6, 0.07, 10.0])
    net = QNetwork(3, 2, hidden=(5,), dtype=tf.float64, obs_bounds=(low, high))
    obs = rng.uniform(low, high, size=(20, 3))
    obs[0], obs[1] = low, high   # the corners map to −1 and +1
    kernels, biases = [k.numpy() for k in net.kernels], [b.numpy() for b in net.biases]
    scaled = 2.0 * (obs - low) / (high - low) - 1.0
    for mode in (lambda f: f, lambda f: tf.function(f, jit_compile=True)):
        got = mode(net)(tf.constant(obs)).numpy()
        np.testing.assert_allclose(got, reference.mlp_q_values(list(zip(kernels, biases)), scaled), rtol=0, atol=1e-12)
    np.testing.assert_allclose(scaled[:2], [[-1, -1, -1], [1, 1, 1]], atol=1e-15)
    with pytest.raises(ValueError, match="high > low"):
        QNetwork(3, 2, obs_bounds=(high, low))


def test_the_spec_carries_finite_bounds_and_compares_without_them():
    env = gym.make("MountainCar-v0")
    spec = env_spec(env, env.reset(seed=0)[1])
    np.testing.assert_allclose(spec.obs_low, env.observation_space.low)
    np.testing.assert_allclose(spec.obs_high, env.observation_space.high)
    record = {name: getattr(spec, name) for name in ("obs_dim", "num_actions", "discrete_obs", "action_start",
                                                     "legal_actions", "frame_shape", "frame_max")}
    assert EnvSpec.from_record(record) == spec   # a checkpoint from before the bounds
    cartpole = gym.make("CartPole-v1")
    assert env_spec(cartpole, {}).obs_low is None   # its velocities are unbounded


def test_a_scaled_run_exports_a_model_of_raw_observations(tmp_path, capsys):
    run_dir, exported = tmp_path / "run", tmp_path / "exported"
    code, out, err = cli(capsys, "train", "--env", "MountainCar-v0", "--scale-observations", "--steps", 600,
                         "--learning-starts", 100, "--hidden", 16, "--eval-episodes", 1, "--logdir", run_dir)
    assert code == 0, err
    code, _, err = cli(capsys, "export", run_dir, "--out", exported)
    assert code == 0, err
    from rawdqn import policy
    greedy, _ = policy.load(str(run_dir))
    obs = np.random.default_rng(1).uniform([-1.2, -0.07], [0.6, 0.07], size=(50, 2)).astype(np.float32)
    loaded = tf.saved_model.load(str(exported)).signatures["serving_default"]
    q_values = loaded(observation=tf.constant(obs))["q_values"].numpy()
    # The SavedModel runs as a graph, the run's kernels under XLA: the last bits may differ.
    np.testing.assert_allclose(q_values, greedy.q_values(obs).numpy(), rtol=1e-5, atol=1e-6)
    assert np.ptp(q_values) > 0
    code, _, err = cli(capsys, "train", "--scale-observations", "--steps", 100, "--logdir", tmp_path / "cartpole")
    assert code == 2 and "no finite bounds" in err and "Traceback" not in err
