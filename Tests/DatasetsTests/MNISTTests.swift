import _NeuriteTestSupport
import Datasets
import Foundation
import TensorCore
import XCTest

final class MNISTTests: XCTestCase {
    private func classCounts(_ labels: [Int]) -> [Int] {
        var counts = [Int](repeating: 0, count: 10)
        for l in labels { counts[l] += 1 }
        return counts
    }

    private func meanAndRange(_ t: Tensor) -> (mean: Double, min: Float, max: Float) {
        t.withUnsafeBufferPointer { p in
            var sum = 0.0, lo = Float.infinity, hi = -Float.infinity
            for v in p {
                sum += Double(v)
                lo = min(lo, v)
                hi = max(hi, v)
            }
            return (sum / Double(p.count), lo, hi)
        }
    }

    func testMNISTTrainSplit() throws {
        let dir = try mnistDirectory()
        let train = try MNIST.load(.train, from: dir)
        XCTAssertEqual(train.count, 60000)
        XCTAssertEqual(train.images.shape, [60000, 28, 28, 1])
        XCTAssertEqual(Array(train.labels.prefix(10)), [5, 0, 4, 1, 9, 2, 1, 3, 1, 4])
        XCTAssertEqual(classCounts(train.labels), [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
        let stats = meanAndRange(train.images)
        XCTAssertEqual(stats.mean * 255, 33.3184, accuracy: 1e-3)
        XCTAssertEqual(stats.min, 0)
        XCTAssertEqual(stats.max, 1)
        XCTAssertEqual(train.classNames, ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"])
        XCTAssertEqual(train.directory, dir)
    }

    func testMNISTTestSplitRawValues() throws {
        let dir = try mnistDirectory()
        let test = try MNIST.load(.test, from: dir, normalized: false)
        XCTAssertEqual(test.images.shape, [10000, 28, 28, 1])
        XCTAssertEqual(Array(test.labels.prefix(10)), [7, 2, 1, 0, 4, 1, 4, 9, 5, 9])
        XCTAssertEqual(classCounts(test.labels), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
        let stats = meanAndRange(test.images)
        XCTAssertEqual(stats.mean, 33.7912, accuracy: 1e-4)
        XCTAssertEqual(stats.max, 255)
        // The normalized load is the raw one divided by 255, element for element.
        let scaled = try MNIST.load(.test, from: dir).images
        XCTAssertEqual(scaled[0, 7, 7, 0], test.images[0, 7, 7, 0] / 255)
        XCTAssertEqual(scaled.scalars.count, test.images.count)
    }

    func testFashionMNIST() throws {
        let dir = try fashionDirectory()
        let train = try FashionMNIST.load(.train, from: dir)
        XCTAssertEqual(train.images.shape, [60000, 28, 28, 1])
        XCTAssertEqual(Array(train.labels.prefix(5)), [9, 0, 0, 3, 0])
        XCTAssertEqual(classCounts(train.labels), [Int](repeating: 6000, count: 10))
        let stats = meanAndRange(train.images)
        XCTAssertGreaterThanOrEqual(stats.min, 0)
        XCTAssertLessThanOrEqual(stats.max, 1)
        XCTAssertEqual(stats.max, 1)
        XCTAssertEqual(train.classNames.count, 10)
        XCTAssertEqual(train.classNames[0], "T-shirt/top")
        XCTAssertEqual(train.classNames[9], "Ankle boot")
        XCTAssertEqual(FashionMNIST.classNames[train.labels[0]], "Ankle boot")
    }

    func testFashionMNISTIsFoundInTheDebianFolderByDefault() throws {
        let dir = try fashionDirectory()
        let home = TemporaryDirectory()
        let test = try FashionMNIST.load(.test, environment: ["HOME": home.path])
        XCTAssertEqual(test.directory, dir)
        XCTAssertEqual(test.count, 10000)
        XCTAssertEqual(Array(test.labels.prefix(5)), [9, 2, 1, 1, 6])
    }

    func testSearchOrder() {
        let env = ["NEURITE_DATA": "/d", "XDG_CACHE_HOME": "/c", "HOME": "/h"]
        XCTAssertEqual(MNIST.searchDirectories(environment: env), ["/d/mnist", "/d", "/c/neurite/mnist"])
        XCTAssertEqual(MNIST.searchDirectories(environment: ["HOME": "/h"]), ["/h/.cache/neurite/mnist"])
        XCTAssertEqual(FashionMNIST.searchDirectories(environment: env),
                       ["/d/fashion-mnist", "/d", "/c/neurite/fashion-mnist", "/usr/share/datasets/fashion-mnist"])
        XCTAssertEqual(MNIST.searchDirectories(environment: [:]), [])
    }

    func testNeuriteDataSubfolderIsUsed() throws {
        let source = try mnistDirectory()
        let root = TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: root.file("mnist"), withIntermediateDirectories: true)
        for name in ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
            try FileManager.default.copyItem(atPath: source + "/" + name, toPath: root.file("mnist/" + name))
        }
        let test = try MNIST.load(.test, environment: ["NEURITE_DATA": root.path, "HOME": root.file("home")])
        XCTAssertEqual(test.directory, root.file("mnist"))
        XCTAssertEqual(test.labels.first, 7)
        // The train split is not there: the error lists every place searched.
        let error = assertDatasetError(.notFound, path: nil, ["train-images-idx3-ubyte"]) {
            try MNIST.load(.train, environment: ["NEURITE_DATA": root.path, "HOME": root.file("home")])
        }
        for place in [root.file("mnist"), root.path, root.file("home") + "/.cache/neurite/mnist"] {
            XCTAssertTrue(error?.message.contains(place) ?? false, "\(place) missing from: \(error?.message ?? "")")
        }
    }

    func testExplicitDirectoryIsTheOnlyPlaceLooked() {
        let empty = TemporaryDirectory()
        let error = assertDatasetError(.notFound, path: empty.path, ["t10k-labels-idx1-ubyte"]) {
            try MNIST.load(.test, from: empty.path, environment: ["NEURITE_DATA": "/elsewhere"])
        }
        XCTAssertFalse(error?.message.contains("/elsewhere") ?? true)
    }

    /// A small, plain (uncompressed) data set written by the test.
    private func writeSmallSet(in dir: TemporaryDirectory, count: Int, labels: [Int], imageShape: [Int]? = nil) throws {
        let shape = imageShape ?? [count, 28, 28]
        let pixels = Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { Float($0 % 256) })
        try IDX.write(pixels, as: .uint8, to: dir.file("t10k-images-idx3-ubyte"))
        try IDX.write(labels: labels, to: dir.file("t10k-labels-idx1-ubyte"))
    }

    func testPlainFilesLoad() throws {
        let dir = TemporaryDirectory()
        try writeSmallSet(in: dir, count: 3, labels: [2, 0, 9])
        let set = try MNIST.load(.test, from: dir.path, normalized: false)
        XCTAssertEqual(set.images.shape, [3, 28, 28, 1])
        XCTAssertEqual(set.labels, [2, 0, 9])
        XCTAssertEqual(set.images[1, 0, 1, 0], Float((784 + 1) % 256))
    }

    func testInconsistentFilesAreRejected() throws {
        let dir = TemporaryDirectory()
        let labelsPath = dir.file("t10k-labels-idx1-ubyte")
        try writeSmallSet(in: dir, count: 3, labels: [1, 2])
        assertDatasetError(.corrupt, path: labelsPath, ["2 labels", "3 images", "t10k-images-idx3-ubyte"]) {
            try MNIST.load(.test, from: dir.path)
        }
        try writeSmallSet(in: dir, count: 3, labels: [1, 10, 2])
        assertDatasetError(.corrupt, path: labelsPath, ["label 10 at index 1", "0...9"]) {
            try MNIST.load(.test, from: dir.path)
        }
        try writeSmallSet(in: dir, count: 2, labels: [1, 2], imageShape: [2, 28, 27])
        assertDatasetError(.corrupt, path: dir.file("t10k-images-idx3-ubyte"), ["[2, 28, 27]"]) {
            try MNIST.load(.test, from: dir.path)
        }
        try writeSmallSet(in: dir, count: 2, labels: [1, 2])
        try IDX.write(labels: [1, 2], as: .int16, to: labelsPath)
        assertDatasetError(.corrupt, path: labelsPath, ["u8"]) { try MNIST.load(.test, from: dir.path) }
    }
}
