"""TensorBoard scalars written as TensorFlow's event files, so logging needs no tensorboard package.

An event file is a TFRecord file of Event protos, the first naming the format ("brain.Event:2").
A scalar is what tf.summary.scalar writes through tf.summary.write: a float32 scalar tensor
tagged with the "scalars" plugin's metadata. We build those protos here and append them with
tf.io.TFRecordWriter (no TF op per value: an eager tf.summary.write costs ~0.2 ms, and a run
logs an event per episode), so `tensorboard --logdir RUN` shows the curves and training does
not depend on tensorboard being installed.
"""
import itertools
import os
import socket
import struct
import time

import tensorflow as tf
from tensorflow.core.framework import summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow.core.util import event_pb2

# What tensorboard.summary.v2.scalar attaches: the scalars plugin, version 0 (empty content).
SCALAR_METADATA = summary_pb2.SummaryMetadata(
    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
    data_class=summary_pb2.DataClass.DATA_CLASS_SCALAR)
FILE_VERSION = "brain.Event:2"
FLUSH_SECONDS = 5.0   # appended events reach the file at least this often, for a live TensorBoard
_file_numbers = itertools.count()


def scalar_event(step, tag, value, wall_time=None):
    """The serialized Event of one scalar point, as tf.summary.scalar(tag, value, step) writes it."""
    tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=tensor_shape_pb2.TensorShapeProto(),
                                    tensor_content=struct.pack("<f", value))   # as TensorFlow packs it
    point = summary_pb2.Summary.Value(tag=tag, metadata=SCALAR_METADATA, tensor=tensor)
    return event_pb2.Event(wall_time=time.time() if wall_time is None else wall_time, step=int(step),
                           summary=summary_pb2.Summary(value=[point])).SerializeToString()


class Summaries:
    """A new TensorBoard event file in `logdir`; `write(step, {"train/loss": 0.1, ...})` appends points."""

    def __init__(self, logdir):
        os.makedirs(logdir, exist_ok=True)
        # Named as TensorFlow's writer names its files: the time, host, process and a counter.
        name = f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}.{next(_file_numbers)}.v2"
        self.path = os.path.join(logdir, name)
        self.writer = tf.io.TFRecordWriter(self.path)
        self.writer.write(event_pb2.Event(wall_time=time.time(), file_version=FILE_VERSION).SerializeToString())
        self.writer.flush()
        self.flushed = time.monotonic()

    def write(self, step, values):
        now = time.time()
        for name, value in values.items():
            self.writer.write(scalar_event(step, name, value, now))
        if time.monotonic() - self.flushed > FLUSH_SECONDS:
            self.writer.flush()
            self.flushed = time.monotonic()

    def close(self):
        self.writer.close()


def event_files(logdir):
    import glob
    return sorted(glob.glob(os.path.join(logdir, "events.out.tfevents.*")))


def drop_after(logdir, step):
    """Remove every summary after `step` from the event files in `logdir` (each file replaced whole).

    A resumed run continues from its checkpoint's step; what the interrupted process logged
    after it is logged again, so without this TensorBoard would show those steps twice.
    """
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
