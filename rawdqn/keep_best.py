"""Keep-best: the weights that scored best in a run's greedy evaluations are the ones it ends with.

DQN's greedy return swings from one evaluation to the next (on CartPole between 100 and 500),
so, as SB3's EvalCallback(best_model_save_path) does, a run with keep_best remembers the
weights of its best evaluation and puts them back at the end; the final weights are a
candidate like the others, and ties go to the later, longer-trained weights. The kept copy
lives where its loop keeps state: host arrays in a gymnasium run's checkpoint (rawdqn/gym_run.py),
a network on the device in the on-device program (rawdqn/ondevice.py). The rule and the
putting back are here.
"""


def is_best(score, best_score):
    """Whether weights that scored `score` replace those kept at `best_score` (None: none kept yet)."""
    return best_score is None or score >= best_score


def put_back(weights, agent):
    """Copy the kept weights (θ's of a network, in variables_in_order's order) into each network
    the agent acts and learns with (agent.networks_restored_by_keep_best: a DQN's target too)."""
    for network in agent.networks_restored_by_keep_best:
        for variable, value in zip(network.variables_in_order, weights):
            variable.assign(value)
