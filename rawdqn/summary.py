"""TensorBoard scalars through tf.summary.write, so logging needs no tensorboard package.

tf.summary.scalar lives in the tensorboard package; it only tags the value with the
"scalars" plugin's metadata and calls tf.summary.write, which is TensorFlow's own op.
We do the same, so `tensorboard --logdir RUN` shows the curves but training does not
depend on tensorboard being installed.
"""
import tensorflow as tf
from tensorflow.core.framework import summary_pb2
from tensorflow.core.util import event_pb2

# What tensorboard.summary.v2.scalar attaches: the scalars plugin, version 0 (empty content).
SCALAR_METADATA = summary_pb2.SummaryMetadata(
    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
    data_class=summary_pb2.DataClass.DATA_CLASS_SCALAR)


class Summaries:
    """A TensorBoard event file in `logdir`; `write(step, {"train/loss": 0.1, ...})` appends points."""

    def __init__(self, logdir):
        with tf.device("/CPU:0"):
            self.writer = tf.summary.create_file_writer(logdir)

    def write(self, step, values):
        with tf.device("/CPU:0"), self.writer.as_default():
            for name, value in values.items():
                tf.summary.write(name, tf.constant(float(value), tf.float32),
                                 step=int(step), metadata=SCALAR_METADATA)

    def close(self):
        self.writer.close()


def event_files(logdir):
    import glob
    import os
    return sorted(glob.glob(os.path.join(logdir, "events.out.tfevents.*")))


def drop_after(logdir, step):
    """Remove every summary after `step` from the event files in `logdir` (each file replaced whole).

    A resumed run continues from its checkpoint's step; what the interrupted process logged
    after it is logged again, so without this TensorBoard would show those steps twice.
    """
    import os

    def later(record):
        event = event_pb2.Event.FromString(record)
        return event.HasField("summary") and event.step > step
    for path in event_files(logdir):
        records = [record.numpy() for record in tf.data.TFRecordDataset(path)]
        kept = [record for record in records if not later(record)]
        if len(kept) == len(records):
            continue
        # Named so that event_files never picks up a leftover.
        temporary = os.path.join(os.path.dirname(path), f".tmp-{os.getpid()}-{os.path.basename(path)}")
        with tf.io.TFRecordWriter(temporary) as writer:
            for record in kept:
                writer.write(record)
        os.replace(temporary, path)


def read_scalars(logdir):
    """{tag: [(step, value), ...]} from every event file in `logdir` (for tests and plots)."""
    scalars = {}
    for path in event_files(logdir):
        for record in tf.data.TFRecordDataset(path):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                number = float(tf.make_ndarray(value.tensor)) if value.HasField("tensor") else value.simple_value
                scalars.setdefault(value.tag, []).append((event.step, number))
    return scalars
