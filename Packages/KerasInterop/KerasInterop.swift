import CKerasHDF5

/// Keras 3 model files to and from Neurite.
public enum KerasInterop {
    /// The version of libhdf5 this module is linked against, `"major.minor.release"`.
    public static var hdf5Version: String {
        // Every libhdf5 call holds the one lock (HDF5WeightsFile.swift), this one too.
        hdf5Lock.withLock { _ -> String in
            var major: UInt32 = 0, minor: UInt32 = 0, release: UInt32 = 0
            guard nk_hdf5_version(&major, &minor, &release) == 0 else { return "unknown" }
            return "\(major).\(minor).\(release)"
        }
    }
}
