#!/usr/bin/env python3
"""Keras reference for Neurite's streaming-training benchmark: images per second training the
course CNN from an image folder (class subfolders of PNG files), decoding every image on the fly
through `keras.utils.image_dataset_from_directory` and tf.data, as a Keras user would.

    ~/.cache/neurite/keras-venv/bin/python Tools/reference/keras_streaming.py \
        --data /tmp/fmnist-train-png --epochs 2 [--batch-size 128] [--workers autotune|N] \
        [--threads 2] [--decode-only] [--seed 1]

The venv comes from `Tools/reference/setup_venvs.sh`; the folder from `neurite-data export`.

Data: image_dataset_from_directory(DIR, labels="inferred", label_mode="int",
color_mode="grayscale", image_size=(28, 28), batch_size, shuffle=True, seed), then x / 255 as
float32, then .prefetch(AUTOTUNE). Note what Keras does with that: it lists and shuffles the paths
once, then shuffles them each epoch through a buffer of 8 batches (not a full permutation), and
decodes with a map of num_parallel_calls=AUTOTUNE that it does not let the caller change.
--workers: "autotune" (the default) leaves tf.data's shared thread pool and AUTOTUNE as they are;
an integer N gives the dataset a private thread pool of N threads
(tf.data.Options().threading.private_threadpool_size), which bounds the decoding (and every other
tf.data stage) to N threads. The JSON's "workers" is "autotune" or N accordingly.
--threads T sets TensorFlow's intra-op and inter-op thread pools to T threads (the model's math).
Model: Conv2D(16,(5,5),relu), MaxPooling2D, Conv2D(8,(2,2),relu), MaxPooling2D, Flatten,
Dense(100,relu), Dense(10); Adam 1e-3; SparseCategoricalCrossentropy(from_logits=True).
--decode-only iterates the dataset in a Python loop without a model, to measure decoding alone.

Prints one JSON line per epoch. "seconds" is measured by a callback from on_epoch_begin to
on_epoch_end of `fit`, so it leaves out listing the folder ("list_seconds") and building and
compiling the model, but the first epoch includes tracing the training step into a graph: run
--epochs 2 and read the second line for the steady state. "peak_rss_mb" is getrusage's peak RSS of
this process plus its (exited) children; TensorFlow decodes in threads, so the children count is 0.
"""
import argparse
import json
import os
import resource
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide TensorFlow's start-up chatter


def peak_rss_mb():
    """Peak RSS in MiB of this process plus its children (ru_maxrss is in KiB on Linux)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round((own + children) / 1024, 1)


def workers_arg(text):
    if text == "autotune":
        return text
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("--workers must be 'autotune' or a positive integer")
    return value


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="folder of class subfolders of images")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=workers_arg, default="autotune",
                        help="'autotune' or the size of a private tf.data thread pool")
    parser.add_argument("--threads", type=int, default=2, help="TensorFlow intra-/inter-op threads")
    parser.add_argument("--decode-only", action="store_true", help="iterate the data without training")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    import tensorflow as tf
    # Thread pools must be sized before TensorFlow runs its first op.
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    import keras

    keras.utils.set_random_seed(args.seed)

    t0 = time.perf_counter()
    dataset = keras.utils.image_dataset_from_directory(
        args.data, labels="inferred", label_mode="int", color_mode="grayscale",
        image_size=(28, 28), batch_size=args.batch_size, shuffle=True, seed=args.seed, verbose=False)
    list_seconds = time.perf_counter() - t0
    images = len(dataset.file_paths)

    rescale_calls = tf.data.AUTOTUNE if args.workers == "autotune" else args.workers
    dataset = dataset.map(lambda x, y: (tf.cast(x, tf.float32) / 255.0, y),
                          num_parallel_calls=rescale_calls)
    dataset = dataset.prefetch(tf.data.AUTOTUNE)
    if args.workers != "autotune":
        options = tf.data.Options()
        options.threading.private_threadpool_size = args.workers
        dataset = dataset.with_options(options)

    def report(epoch, seconds, extra=None):
        record = {
            "library": "keras",
            "what": "decode" if args.decode_only else "train",
            "epoch": epoch + 1,
            "images": images,
            "seconds": round(seconds, 3),
            "images_per_second": round(images / seconds, 1),
            "workers": args.workers,
            "threads": args.threads,
            "batch_size": args.batch_size,
            "peak_rss_mb": peak_rss_mb(),
            "list_seconds": round(list_seconds, 3),
            "data": os.path.abspath(args.data),
            "version": f"keras {keras.__version__}, tensorflow {tf.__version__}",
        }
        record.update(extra or {})
        print(json.dumps(record), flush=True)

    if args.decode_only:
        for epoch in range(args.epochs):
            start = time.perf_counter()
            seen = 0
            for x, y in dataset:
                seen += int(y.shape[0])
            assert seen == images, (seen, images)
            report(epoch, time.perf_counter() - start)
        return

    layers = keras.layers
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(16, (5, 5), activation="relu"), layers.MaxPooling2D((2, 2)),
        layers.Conv2D(8, (2, 2), activation="relu"), layers.MaxPooling2D((2, 2)),
        layers.Flatten(),
        layers.Dense(100, activation="relu"),
        layers.Dense(10),
    ])
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))

    class EpochTimer(keras.callbacks.Callback):
        """Prints a JSON line at the end of every epoch, timed from the epoch's beginning."""

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds = time.perf_counter() - self.start
            report(epoch, seconds, {"mean_loss": round(float(logs["loss"]), 4)})

    # The dataset shuffles itself; fit cannot shuffle a tf.data.Dataset (and warns when asked to).
    model.fit(dataset, epochs=args.epochs, shuffle=False, verbose=0, callbacks=[EpochTimer()])


if __name__ == "__main__":
    main()
