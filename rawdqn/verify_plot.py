"""`rawdqn verify --plot`'s figure: each learner's error curve, its Q against Q*, and its greedy
policy drawn on the environment's grid (rawdqn/verify.py computes what it shows)."""
import numpy as np

from rawdqn.verify import TIE_TOLERANCE


LEARNER_COLORS = ("tab:blue", "tab:orange", "tab:green")


def grid_view(problem):
    """(note, [[state per cell]], glyph per action, cells without a decision, landmarks).

    FrozenLake and CliffWalking are grids with one state per cell. Taxi's 500 states are
    (taxi row, taxi column, passenger, destination); the view fixes the passenger waiting
    at R and the destination G, leaving the 5 × 5 taxi positions.
    """
    env = problem.make_env()
    unwrapped = env.unwrapped
    env.close()
    if problem.env_id.startswith("FrozenLake"):
        rows, cols = unwrapped.nrow, unwrapped.ncol
        desc = unwrapped.desc.astype(str)
        labels = {(r, c): desc[r, c] for r in range(rows) for c in range(cols)
                  if desc[r, c] in "HG"}
        return ("", np.arange(rows * cols).reshape(rows, cols), "←↓→↑", labels, {})
    if problem.env_id.startswith("CliffWalking"):
        rows, cols = unwrapped.shape
        labels = {(rows - 1, c): "C" for c in range(1, cols - 1)}
        labels[(rows - 1, cols - 1)] = "G"
        return ("", np.arange(rows * cols).reshape(rows, cols), "↑→↓←", labels, {})
    if problem.env_id.startswith("Taxi"):
        passenger, destination = 0, 1  # waiting at R, going to G
        states = np.array([[unwrapped.encode(r, c, passenger, destination) for c in range(5)]
                           for r in range(5)])
        return ("passenger waiting at R, destination G", states, "↓↑→←PD", {},
                {(0, 0): "R", (0, 4): "G"})
    return None


def plot(problem, learners, path):
    """Write the comparison figure to `path`: error curves, Q vs Q*, and greedy maps."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    view = grid_view(problem)
    panels = 1 + len(learners)
    figure = plt.figure(figsize=(4.2 * panels, 8.4 if view else 4.4), constrained_layout=True)
    grid = figure.add_gridspec(2 if view else 1, panels)
    ref = problem.reference
    figure.suptitle(f"{problem.env_id}: {' vs '.join(learner.name for learner in learners)} against {ref} "
                    f"(γ = {problem.discount}{f', ε = {problem.epsilon}' if problem.epsilon else ''})")

    curves = figure.add_subplot(grid[0, :2])
    for learner, color in zip(learners, LEARNER_COLORS):
        curves.plot(learner.curve_steps, learner.curve_error, "-o", ms=3, color=color,
                    label=learner.name)
    curves.set_yscale("log")
    curves.set_xlabel("environment steps")
    curves.set_ylabel(f"max |Q − {ref}| over visited (s, a)")
    curves.set_title("error during training")
    curves.grid(True, which="both", alpha=0.3)
    curves.legend()

    scatter = figure.add_subplot(grid[0, 2:])
    low, high = problem.optimal_q.min(), problem.optimal_q.max()
    scatter.plot([low, high], [low, high], color="black", lw=1, label=f"Q = {ref}")
    for learner, color in zip(learners, LEARNER_COLORS):
        seen = learner.visits > 0
        scatter.scatter(problem.optimal_q[seen], learner.q_table[seen], s=6, alpha=0.5,
                        color=color, label=learner.name)
    scatter.set_xlabel(f"{ref}(s, a)  (value iteration)")
    scatter.set_ylabel("learned Q(s, a)")
    scatter.set_title("every visited state-action after training")
    scatter.legend(markerscale=3)

    if view:
        note, states, glyphs, labels, landmarks = view
        tables = [(f"{ref} (value iteration)", problem.optimal_q)] + \
            [(learner.name, learner.q_table) for learner in learners]
        values = problem.optimal_q.max(axis=1)[states]
        vmin, vmax = values.min(), values.max()
        for column, (name, q_table) in enumerate(tables):
            axis = figure.add_subplot(grid[1, column])
            value = q_table.max(axis=1)[states]
            image = axis.imshow(value, cmap="viridis", vmin=vmin, vmax=vmax)
            wrong = 0
            for (r, c), state in np.ndenumerate(states):
                if (r, c) in labels:
                    axis.text(c, r, labels[(r, c)], ha="center", va="center", color="white",
                              fontsize=11, fontweight="bold")
                    continue
                if (r, c) in landmarks:
                    axis.text(c - 0.42, r - 0.42, landmarks[(r, c)], ha="left", va="top",
                              color="white", fontsize=8)
                action = int(np.argmax(q_table[state]))
                optimal = problem.optimal_q[state]
                is_optimal = optimal[action] >= optimal.max() - TIE_TOLERANCE
                wrong += not is_optimal
                axis.text(c, r, glyphs[action], ha="center", va="center", fontsize=13,
                          color="white" if is_optimal else "red", fontweight="bold")
            axis.set_xticks([])
            axis.set_yticks([])
            axis.set_title(f"{name}{chr(10) + note if note and column == 0 else ''}\n"
                           f"max_a Q, greedy action ({wrong} not optimal in red)", fontsize=9)
        figure.colorbar(image, ax=axis, shrink=0.8, label="max_a Q(s, a)")
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


# ---------------------------------------------------------- exact equivalence
