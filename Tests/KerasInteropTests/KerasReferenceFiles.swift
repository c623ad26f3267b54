import Foundation
import Synchronization

/// Files written by the real Keras and h5py, made once per test run (one Python start, ~20 s) in
/// a temporary folder and shared by the tests that need them.
enum KerasReferenceFiles {
    /// `conv.keras`, `rnn.keras` (saved by Keras after one training step, so with optimizer
    /// variables), `types.h5`, `strings.h5`, `huge.h5` (written by h5py; see the script).
    static func folder() throws -> URL {
        try cache.withLock { cached throws -> URL in
            if let cached { return cached }
            let folder = FileManager.default.temporaryDirectory
                .appendingPathComponent("neurite-keras-reference-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try KerasPython.run(script, arguments: [folder.path])
            cached = folder
            return folder
        }
    }

    private static let cache = Mutex<URL?>(nil)

    private static let script = """
    import sys, numpy as np, h5py, keras
    out = sys.argv[1]
    keras.utils.set_random_seed(3)

    conv = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Conv2D(4, 3), keras.layers.Dropout(0.1),
                             keras.layers.Flatten(), keras.layers.Dense(3)])
    conv.compile(optimizer="adam", loss="mse")
    conv.fit(np.random.rand(4, 6, 6, 1), np.random.rand(4, 3), verbose=0)
    conv.save(out + "/conv.keras")

    rnn = keras.Sequential([keras.Input((5, 3)), keras.layers.Bidirectional(keras.layers.LSTM(4)), keras.layers.Dense(2)])
    rnn.compile(optimizer="adam", loss="mse")
    rnn.fit(np.random.rand(4, 5, 3), np.random.rand(4, 2), verbose=0)
    rnn.save(out + "/rnn.keras")

    with h5py.File(out + "/types.h5", "w") as f:
        g = f.create_group("layers/dense/vars")
        g.attrs["name"] = "dense"                          # variable-length UTF-8
        g.create_dataset("0", data=np.arange(6, dtype=np.float64).reshape(2, 3) / 4)
        g.create_dataset("1", data=np.array([-3, 7], dtype=np.int32))
        f.create_dataset("layers/dense/vars/2", data=np.array([0.5, -2], dtype=np.float16))
        e = f.create_group("layers/dropout/vars")
        e.attrs["name"] = np.bytes_("dropout")             # fixed-length ASCII
        e.attrs["rate"] = 0.5                              # not a string: ignored
        o = f.create_group("optimizer/vars")
        o.attrs["name"] = "adam"
        o.create_dataset("0", data=np.int64(42))           # the iteration counter
        o.create_dataset("1", data=np.float32(0.001))
        f.create_dataset("layers/empty", data=np.zeros((0, 4), dtype=np.float32))

    with h5py.File(out + "/strings.h5", "w") as f:
        g = f.create_group("layers/dense/vars")
        g.attrs["name"] = "dense"
        g.create_dataset("0", data=np.array([b"a", b"bc"]))

    with h5py.File(out + "/huge.h5", "w") as f:
        # 2**40 float32 elements declared, none ever written: a few hundred bytes on disk.
        f.create_dataset("layers/dense/vars/0", shape=(2**40,), dtype=np.float32, chunks=(1024,))
    print("ok")
    """
}
