"""`rawdqn export RUN --out policy/`: the greedy policy as a SavedModel.

The SavedModel needs only TensorFlow:

    policy = tf.saved_model.load("policy/")
    out = policy(tf.constant(observations, tf.float32))   # [batch, obs_dim]
    out["action"], out["q_values"]
"""


def add_command(commands):
    parser = commands.add_parser("export", help="write a checkpoint's greedy policy as a SavedModel",
                                 description="Write the greedy policy (observation in, action and "
                                             "Q-values out) as a tf.saved_model that loads without rawdqn.")
    parser.add_argument("path", metavar="RUN", help="a run directory (--logdir of rawdqn train) or a checkpoint")
    parser.add_argument("--out", required=True, help="directory to write the SavedModel into")
    parser.set_defaults(run=run)


def run(args):
    import os

    from rawdqn import policy
    from rawdqn.errors import UsageError
    greedy, state = policy.load(args.path)
    if os.path.exists(args.out) and (not os.path.isdir(args.out) or os.listdir(args.out)):
        raise UsageError(f"--out {args.out} already exists and is not an empty directory")
    try:
        policy.export(greedy, state, args.out)
    except OSError as error:
        raise UsageError(f"cannot write the SavedModel to {args.out}: {error.strerror or error}") from None
    inputs = ", ".join(f"{spec.name} {spec.dtype.name} {spec.shape.as_list()}" for spec in greedy.input_signature())
    print(f"wrote the greedy policy of {state['env_id']} (step {state['step']:,}) to {args.out}: "
          f"inputs {inputs} → action int32 [batch], q_values [batch, {state['spec']['num_actions']}]", flush=True)
    return 0
