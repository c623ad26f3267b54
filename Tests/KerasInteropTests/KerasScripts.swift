import Foundation

/// The Python sides of KerasRoundTripTests, run by the Keras virtual environment's interpreter.
enum KerasScripts {
    private static let prelude = """
    import os, sys, json, zipfile
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np
    import keras
    from keras import layers as L

    def sample(path, x, p):
        with open(path, "w") as f:
            json.dump({"input": x.astype("float32").ravel().astype(float).tolist(), "input_shape": list(x.shape),
                       "output": p.astype("float32").ravel().astype(float).tolist(), "output_shape": list(p.shape)}, f)

    """

    /// Trains each model a few epochs on random data (so batch normalisation's statistics and
    /// every weight move away from their initial values), saves it as `<name>.keras`, with
    /// `<name>.json` (inputs and Keras' predictions), `<name>.to_json` (`model.to_json()`) and
    /// `<name>.count` (`count_params()`); then writes the files Neurite must refuse. The
    /// directory is the first argument.
    static let trainAndSave = prelude + """
    out = sys.argv[1]
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(1)

    def tokens(n, t, vocab, pad):
        x = rng.integers(1, vocab, size=(n, t))
        if pad:
            for i in range(n):
                x[i, : i % 4] = 0
        return x.astype("int32")

    def floats(n, shape):
        return rng.normal(size=(n,) + shape).astype("float32")

    def masked_steps(x):
        for i in range(len(x)):
            x[i, : i % 3] = -1.0
        return x

    models = {
        "dense": ([keras.Input((8,)), L.Dense(16, activation="relu"), L.Dropout(0.3), L.Dense(4, activation="softmax")],
                  lambda n: floats(n, (8,))),
        "cnn": ([keras.Input((12, 12, 2)), L.Conv2D(4, 3, padding="same", activation="relu"), L.MaxPooling2D(),
                 L.Conv2D(6, (3, 2), strides=(1, 2)), L.AveragePooling2D(2), L.Flatten(), L.Dense(3)],
                lambda n: floats(n, (12, 12, 2))),
        "batchnorm": ([keras.Input((6, 6, 3)), L.Conv2D(4, 3), L.BatchNormalization(momentum=0.5), L.Activation("relu"),
                       L.Flatten(), L.Dense(8), L.BatchNormalization(momentum=0.5, epsilon=0.01, scale=False), L.Dense(2)],
                      lambda n: floats(n, (6, 6, 3))),
        "conv1d": ([keras.Input((20, 3)), L.Conv1D(5, 3, padding="causal", dilation_rate=2, activation="relu"),
                    L.MaxPooling1D(2), L.Conv1D(4, 3, strides=2, padding="same"), L.AveragePooling1D(2),
                    L.GlobalAveragePooling1D(), L.Dense(1)],
                   lambda n: floats(n, (20, 3))),
        "transpose": ([keras.Input((5, 5, 2)), L.Conv2DTranspose(3, 3, strides=2, padding="same", activation="relu"),
                       L.Conv2DTranspose(2, 3), L.UpSampling2D(), L.GlobalAveragePooling2D(), L.Dense(2)],
                      lambda n: floats(n, (5, 5, 2))),
        "lstm": ([keras.Input((7, 3)), L.LSTM(5, return_sequences=True), L.LSTM(4), L.Dense(2)],
                 lambda n: floats(n, (7, 3))),
        "gru": ([keras.Input((7, 3)), L.GRU(5, return_sequences=True), L.GRU(3, go_backwards=True), L.Dense(1)],
                lambda n: floats(n, (7, 3))),
        "simplernn": ([keras.Input((7, 3)), L.SimpleRNN(4, return_sequences=True, activation="relu"), L.SimpleRNN(3), L.Dense(1)],
                      lambda n: floats(n, (7, 3))),
        "embedding": ([keras.Input((9,), dtype="int32"), L.Embedding(20, 6), L.GRU(4), L.Dense(1)],
                      lambda n: tokens(n, 9, 20, False)),
        "masked": ([keras.Input((9,), dtype="int32"), L.Embedding(20, 6, mask_zero=True), L.LSTM(4), L.Dense(1)],
                   lambda n: tokens(n, 9, 20, True)),
        "variable_length": ([keras.Input((None, 3)), L.LSTM(4), L.Dense(1)], lambda n: floats(n, (7, 3))),
        "masking": ([keras.Input((6, 3)), L.Masking(-1.0), L.GRU(4), L.Dense(1)],
                    lambda n: masked_steps(floats(n, (6, 3)))),
        "bidirectional": ([keras.Input((6, 4)), L.Bidirectional(L.LSTM(3, return_sequences=True)),
                           L.Bidirectional(L.SimpleRNN(2, return_sequences=True), merge_mode="mul"),
                           L.Bidirectional(L.GRU(2), merge_mode="sum"), L.Dense(1)],
                          lambda n: floats(n, (6, 4))),
    }
    for name, (layers, data) in models.items():
        model = keras.Sequential(layers, name=name)
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
        x = data(64)
        y = rng.normal(size=(64,) + tuple(model.output_shape[1:])).astype("float32")
        model.fit(x, y, epochs=3, batch_size=8, verbose=0)
        model.save(f"{out}/{name}.keras")
        probe = data(5)
        sample(f"{out}/{name}.json", probe, model.predict(probe, verbose=0))
        with open(f"{out}/{name}.to_json", "w") as f:
            f.write(model.to_json())
        with open(f"{out}/{name}.count", "w") as f:
            f.write(str(model.count_params()))

    # Files Neurite must refuse, each naming what is wrong.
    import h5py
    def rewrite(name, edit):
        with zipfile.ZipFile(f"{out}/dense.keras") as z:
            parts = {n: z.read(n) for n in z.namelist()}
        scratch = f"{out}/{name}.h5"
        with open(scratch, "wb") as f:
            f.write(parts["model.weights.h5"])
        with h5py.File(scratch, "r+") as f:
            edit(f)
        with open(scratch, "rb") as f:
            parts["model.weights.h5"] = f.read()
        os.remove(scratch)
        with zipfile.ZipFile(f"{out}/{name}.keras", "w") as z:
            for n, data in parts.items():
                z.writestr(n, data)
    def drop(f):
        del f["layers/dense_1/vars/1"]
    def transpose(f):
        kernel = f["layers/dense/vars/0"][...]
        del f["layers/dense/vars/0"]
        f["layers/dense/vars/0"] = kernel.T
    def extra(f):
        f["layers/dense/vars/2"] = np.zeros((3,), "float32")
    rewrite("missing_variable", drop)
    rewrite("wrong_shape", transpose)
    rewrite("extra_variable", extra)
    inputs = keras.Input((8,))
    keras.Model(inputs, L.Dense(2)(inputs)).save(f"{out}/functional.keras")
    keras.Sequential([keras.Input((4,)), L.Dense(3), L.LeakyReLU()]).save(f"{out}/leaky_relu.keras")
    keras.Sequential([keras.Input((4,)), L.Dense(3, kernel_regularizer="l2")]).save(f"{out}/regularized.keras")
    keras.Sequential([keras.Input((4, 4, 2)), L.GlobalMaxPooling2D()]).save(f"{out}/global_max_pooling.keras")
    print("saved", len(models), "models")
    """

    /// Loads each `<name>.keras` Neurite saved with `keras.models.load_model`, predicts on the
    /// inputs of `<name>.json` and writes `<name>.keras_prediction.json`; builds each
    /// `<name>.to_json` with `model_from_json`. Prints `<name> params <n> json_params <m>`. The
    /// directory is the first argument, the names the others.
    static let loadAndPredict = prelude + """
    out = sys.argv[1]
    names = sys.argv[2:]
    for name in names:
        with open(f"{out}/{name}.json") as f:
            s = json.load(f)
        x = np.array(s["input"], dtype="float32").reshape(s["input_shape"])
        model = keras.models.load_model(f"{out}/{name}.keras")
        if isinstance(model.layers[0], L.Embedding):
            x = x.astype("int32")
        sample(f"{out}/{name}.keras_prediction.json", x, model.predict(x, verbose=0))
        with open(f"{out}/{name}.to_json") as f:
            fresh = keras.models.model_from_json(f.read())
        print(name, "params", model.count_params(), "json_params", fresh.count_params())
    """
}
