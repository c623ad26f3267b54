import Foundation

/// A data set in Fashion-MNIST's file layout, small enough for a test that runs an app or a
/// benchmark end to end: 28x28 images and labels as the four IDX files the loaders look for.
public enum TinyIDXDataSet {
    /// An IDX file of unsigned bytes: the magic (two zero bytes, type 0x08, the rank), the
    /// dimensions as big-endian 32-bit integers, then the bytes.
    public static func idx(_ dimensions: [Int], _ bytes: [UInt8]) -> Data {
        var data = Data([0, 0, 0x08, UInt8(dimensions.count)])
        for d in dimensions { data.append(contentsOf: withUnsafeBytes(of: UInt32(d).bigEndian, Array.init)) }
        data.append(contentsOf: bytes)
        return data
    }

    /// Writes the four files into a new folder under the temporary directory and returns it.
    ///
    /// Image `i` of either split has label `i % 10` and a bright 4x4 block placed by its label, so
    /// a model can learn it; `mark(i, &pixels)` may then set more of image `i`'s 784 pixels (rows
    /// 4-7 and 14-17 hold the block). The caller removes the folder.
    public static func write(prefix: String, trainCount: Int, testCount: Int,
                             mark: (Int, inout ArraySlice<UInt8>) -> Void = { _, _ in }) throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        func images(_ count: Int) -> [UInt8] {
            var bytes = [UInt8](repeating: 0, count: count * 784)
            for i in 0..<count {
                let row = 4 + (i % 10) / 5 * 10, column = 2 + (i % 10) % 5 * 5
                for y in row..<row + 4 { for x in column..<column + 4 { bytes[i * 784 + y * 28 + x] = 255 } }
                mark(i, &bytes[i * 784..<(i + 1) * 784])
            }
            return bytes
        }
        let files: [(String, Data)] = [
            ("train-images-idx3-ubyte", idx([trainCount, 28, 28], images(trainCount))),
            ("train-labels-idx1-ubyte", idx([trainCount], (0..<trainCount).map { UInt8($0 % 10) })),
            ("t10k-images-idx3-ubyte", idx([testCount, 28, 28], images(testCount))),
            ("t10k-labels-idx1-ubyte", idx([testCount], (0..<testCount).map { UInt8($0 % 10) })),
        ]
        for (name, data) in files { try data.write(to: folder.appendingPathComponent(name)) }
        return folder
    }
}
