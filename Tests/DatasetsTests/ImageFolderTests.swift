import Datasets
import Foundation
import TensorCore
import XCTest

/// Image folders built in a temporary directory from real MNIST digits (IDX decoded, PNG encoded)
/// and a real JPEG from the shared test data.
final class ImageFolderTests: XCTestCase {
    /// The first `count` MNIST test images as `[count, 28, 28, 1]` in 0...1, and their labels.
    private func mnist(_ count: Int) throws -> (x: Tensor, y: [Int]) {
        let dir = try mnistDirectory()
        let images = try IDX.read(contentsOf: dir + "/t10k-images-idx3-ubyte.gz").tensor(dividedBy: 255)
        let labels = try IDX.read(contentsOf: dir + "/t10k-labels-idx1-ubyte.gz").labels()
        return (images.slice(0..<count).reshaped([count, 28, 28, 1]), Array(labels[..<count]))
    }

    /// Image `i` of `x` as `[28, 28, 1]`.
    private func image(_ x: Tensor, _ i: Int) -> Tensor {
        x.slice(i..<(i + 1)).reshaped([28, 28, 1])
    }

    /// Writes the first `count` MNIST test images as `root/<names[label]>/<index>.png` (index zero-padded
    /// to 3 digits) and returns them.
    @discardableResult
    private func writeMNISTFolder(_ root: String, count: Int, names: [String] = (0...9).map(String.init)) throws
        -> (x: Tensor, y: [Int]) {
        let data = try mnist(count)
        for name in names { try makeFolder(root + "/" + name) }
        for i in 0..<count {
            try ImageEncoder.writePNG(image(data.x, i), to: root + "/" + names[data.y[i]] + "/" + String(format: "%03d.png", i))
        }
        return data
    }

    private func makeFolder(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    private func jpegPath() throws -> String {
        try ImageTestData.directory("jpeg") + "/libjpeg-turbo/testorig.jpg"
    }

    // MARK: - What counts as a class and a sample

    func testClassNamesAreSortedByteWiseAndHiddenAndNonImageEntriesAreIgnored() throws {
        let tmp = TemporaryDirectory()
        let root = tmp.path
        let digits = try mnist(12)
        // Byte-wise: digits < upper case < "_" < lower case, and "10" < "9".
        let names = ["b", "B", "a", "10", "9", "_x"]
        for name in names { try makeFolder(root + "/" + name) }
        for i in 0..<names.count {
            try ImageEncoder.writePNG(image(digits.x, i), to: root + "/\(names[i])/img.png")
        }
        // Extensions in any case, and sub-folders inside a class, count.
        try ImageEncoder.writePNG(image(digits.x, 6), to: root + "/a/UPPER.PNG")
        try makeFolder(root + "/a/sub/deeper")
        try ImageEncoder.writePNG(image(digits.x, 7), to: root + "/a/sub/deeper/nested.png")
        // A PNG named .jpeg: the decoder goes by the bytes, not the name.
        try ImageEncoder.writePNG(image(digits.x, 8), to: root + "/b/really-a-png.jpeg")
        // Hidden folders and files, at the top and inside classes, and other files: all ignored.
        try makeFolder(root + "/.hidden")
        try ImageEncoder.writePNG(image(digits.x, 9), to: root + "/.hidden/x.png")
        try makeFolder(root + "/a/.ipynb_checkpoints")
        try ImageEncoder.writePNG(image(digits.x, 10), to: root + "/a/.ipynb_checkpoints/img-checkpoint.png")
        try ImageEncoder.writePNG(image(digits.x, 11), to: root + "/a/._img.png")
        writeBytes(Array("junk".utf8), to: root + "/.DS_Store")
        writeBytes(Array("junk".utf8), to: root + "/a/.DS_Store")
        writeBytes(Array("notes".utf8), to: root + "/a/notes.txt")
        writeBytes(Array("GIF89a".utf8), to: root + "/a/anim.gif")
        writeBytes(Array("x".utf8), to: root + "/a/png")  // no extension at all
        try ImageEncoder.writePNG(image(digits.x, 0), to: root + "/top-level-file.png")

        let folder = try ImageFolder(directory: root + "/", imageSize: (28, 28), channels: 1)
        XCTAssertEqual(folder.classNames, ["10", "9", "B", "_x", "a", "b"])
        XCTAssertEqual(folder.directory, root)
        let relative = folder.paths.map { String($0.dropFirst(root.count + 1)) }
        XCTAssertEqual(relative, ["10/img.png", "9/img.png", "B/img.png", "_x/img.png",
                                  "a/UPPER.PNG", "a/img.png", "a/sub/deeper/nested.png",
                                  "b/img.png", "b/really-a-png.jpeg"])
        XCTAssertEqual(folder.labels, [0, 1, 2, 3, 4, 4, 4, 5, 5])
        XCTAssertEqual(folder.count, 9)
        XCTAssertTrue(folder.skipped.isEmpty)
        // Each sample is the digit that was written there, under the label of its folder.
        let expected = [3, 4, 1, 5, 6, 2, 7, 0, 8]  // index into `digits` of each path above
        for (i, source) in expected.enumerated() {
            let s = try folder.sample(at: i)
            XCTAssertEqual(s.x.shape, [28, 28, 1])
            XCTAssertEqual(s.x.scalars, image(digits.x, source).scalars, "sample \(i) (\(folder.paths[i]))")
            XCTAssertEqual(s.y, folder.labels[i])
        }
    }

    func testSymbolicLinksAreFollowedWithoutLooping() throws {
        let tmp = TemporaryDirectory(), outside = TemporaryDirectory()
        let root = tmp.path
        let digits = try writeMNISTFolder(root, count: 10)
        let before = try ImageFolder(directory: root, imageSize: nil, channels: 1)
        // A linked file counts; links back to the class folder and to the top folder are cycles.
        try ImageEncoder.writePNG(image(digits.x, 0), to: outside.file("outside.png"))
        try FileManager.default.createSymbolicLink(atPath: root + "/3/linked.png", withDestinationPath: outside.file("outside.png"))
        try FileManager.default.createSymbolicLink(atPath: root + "/3/self", withDestinationPath: ".")
        try FileManager.default.createSymbolicLink(atPath: root + "/3/up", withDestinationPath: "..")
        try FileManager.default.createSymbolicLink(atPath: root + "/4/top", withDestinationPath: root)
        let after = try ImageFolder(directory: root, imageSize: nil, channels: 1)
        XCTAssertEqual(after.count, before.count + 1)
        let position = try XCTUnwrap(after.paths.firstIndex(of: root + "/3/linked.png"))
        XCTAssertEqual(after.labels[position], 3)
        XCTAssertEqual(try after.sample(at: position).x.scalars, image(digits.x, 0).scalars)

        // A broken link with an image extension is an unreadable file.
        try FileManager.default.createSymbolicLink(atPath: root + "/5/gone.png", withDestinationPath: outside.file("missing.png"))
        assertDatasetError(.notFound, path: root + "/5/gone.png", ["broken"]) {
            try ImageFolder(directory: root, imageSize: nil, channels: 1)
        }
        let skipping = try ImageFolder(directory: root, imageSize: nil, channels: 1, onUnreadable: .skip)
        XCTAssertEqual(skipping.skipped.map(\.path), [root + "/5/gone.png"])
        XCTAssertEqual(skipping.count, after.count)
    }

    // MARK: - Decoding

    func testLazySamplesEqualTheSourceImagesAndTheEagerLoad() throws {
        let tmp = TemporaryDirectory()
        let digits = try writeMNISTFolder(tmp.path, count: 40)
        let folder = try ImageFolder(directory: tmp.path, imageSize: nil, channels: nil)
        XCTAssertEqual(folder.count, 40)
        XCTAssertEqual(folder.channels, 1, "every MNIST PNG is gray, so channels: nil chooses 1")
        XCTAssertEqual(folder.sampleShape, [28, 28, 1])
        XCTAssertEqual(folder.classNames, (0...9).map(String.init))
        let eager = try folder.load()
        XCTAssertEqual(eager.x.shape, [40, 28, 28, 1])
        XCTAssertEqual(eager.y, folder.labels)
        for i in 0..<folder.count {
            let lazy = try folder.sample(at: i)
            let source = Int(folder.paths[i].suffix(7).prefix(3))!  // ".../007.png"
            XCTAssertEqual(lazy.y, digits.y[source])
            XCTAssertEqual(lazy.x.scalars, image(digits.x, source).scalars, "\(folder.paths[i]) differs from MNIST image \(source)")
            XCTAssertEqual(try eager.sample(at: i).x.scalars, lazy.x.scalars, "eager and lazy differ at \(i)")
        }
        // A batch in any order, with repeats, is the samples stacked.
        let batch = try folder.batch(at: [5, 0, 5, 39])
        XCTAssertEqual(batch.x.shape, [4, 28, 28, 1])
        XCTAssertEqual(batch.y, [5, 0, 5, 39].map { folder.labels[$0] })
        XCTAssertEqual(batch.x.scalars, eager.x.gather([5, 0, 5, 39]).scalars)
        XCTAssertEqual(try folder.batch(at: []).x.shape, [0, 28, 28, 1])

        // Through a DataLoader, every sample is seen once per epoch.
        let loader = DataLoader(folder, batchSize: 16, seed: 3)
        var seen = 0
        let batches = loader.batches(epoch: 0)
        while let b = try batches.next() {
            XCTAssertEqual(Array(b.x.shape.dropFirst()), [28, 28, 1])
            seen += b.y.count
        }
        XCTAssertEqual(seen, 40)
    }

    func testJPEGIsResizedAndConvertedLikeTheDecoderAndTransformsDo() throws {
        let tmp = TemporaryDirectory()
        let jpeg = try jpegPath()
        try writeMNISTFolder(tmp.path, count: 3, names: ["digit", "digit", "digit", "digit", "digit", "digit", "digit", "digit", "digit", "digit"])
        try makeFolder(tmp.file("photo"))
        try FileManager.default.copyItem(atPath: jpeg, toPath: tmp.file("photo/testorig.jpg"))

        for channels in [1, 3] {
            let folder = try ImageFolder(directory: tmp.path, imageSize: (20, 24), channels: channels)
            XCTAssertEqual(folder.classNames, ["digit", "photo"])
            XCTAssertEqual(folder.labels, [0, 0, 0, 1])
            XCTAssertEqual(folder.sampleShape, [20, 24, channels])
            let photo = try folder.sample(at: 3)
            let reference = try ImageDecoder.decode(fileAt: jpeg, channels: channels).resized(to: (20, 24))
            XCTAssertEqual(photo.x.shape, [20, 24, channels])
            XCTAssertEqual(photo.x.scalars, reference.scalars)
            XCTAssertEqual(photo.y, 1)
            let digit = try folder.sample(at: 0).x
            XCTAssertEqual(digit.shape, [20, 24, channels], "the 28x28 gray digit is resized and given \(channels) channels")
        }
        // Area resizing is passed through.
        let area = try ImageFolder(directory: tmp.path, imageSize: (14, 14), channels: 1, resizeMethod: .area)
        XCTAssertEqual(try area.sample(at: 3).x.scalars,
                       try ImageDecoder.decode(fileAt: jpeg, channels: 1).resized(to: (14, 14), method: .area).scalars)
        // channels: nil chooses RGB when any file is colour; without a size, sizes must agree.
        XCTAssertEqual(try ImageFolder(directory: tmp.path, channels: nil).channels, 3)
        let error = assertDatasetError(.invalidArgument, path: tmp.path, ["differ in size", "227"]) {
            try ImageFolder(directory: tmp.path, imageSize: nil)
        }
        XCTAssertTrue(error?.message.contains(tmp.file("photo/testorig.jpg")) ?? false, "\(String(describing: error))")
    }

    // MARK: - Split

    func testSplitIsDisjointCompleteStratifiedAndSeeded() throws {
        let tmp = TemporaryDirectory()
        try writeMNISTFolder(tmp.path, count: 100)
        let folder = try ImageFolder(directory: tmp.path, imageSize: nil, channels: 1)
        let (train, validation) = folder.split(validationFraction: 0.2, seed: 42)

        XCTAssertEqual(validation.count, 20)
        XCTAssertEqual(train.count, 80)
        XCTAssertTrue(Set(train.paths).isDisjoint(with: validation.paths))
        XCTAssertEqual(Set(train.paths).union(validation.paths), Set(folder.paths))
        XCTAssertEqual(train.classNames, folder.classNames)
        XCTAssertEqual(validation.classNames, folder.classNames)
        // Labels travel with their paths, and each class gives floor or ceil of 20% to validation.
        let labelOf = Dictionary(uniqueKeysWithValues: zip(folder.paths, folder.labels))
        XCTAssertEqual(train.labels, train.paths.map { labelOf[$0]! })
        XCTAssertEqual(validation.labels, validation.paths.map { labelOf[$0]! })
        let all = classCounts(labels: folder.labels, classes: 10)
        let held = classCounts(labels: validation.labels, classes: 10)
        for c in 0..<10 {
            let exact = 0.2 * Double(all[c])
            XCTAssertTrue(Double(held[c]) == exact.rounded(.down) || Double(held[c]) == exact.rounded(.up),
                          "class \(c): \(held[c]) of \(all[c]) held out")
        }
        // The halves keep the folder's order, are lazy folders, and decode.
        XCTAssertEqual(train.paths, folder.paths.filter { Set(train.paths).contains($0) })
        XCTAssertEqual(try validation.sample(at: 0).x.shape, [28, 28, 1])
        // Seeded: the same seed gives the same split, another seed another.
        XCTAssertEqual(folder.split(validationFraction: 0.2, seed: 42).validation.paths, validation.paths)
        XCTAssertNotEqual(folder.split(validationFraction: 0.2, seed: 43).validation.paths, validation.paths)
        // The split is the stratified split of the labels in scan order.
        let reference = stratifiedSplit(labels: folder.labels, fraction: 0.2, seed: 42)
        XCTAssertEqual(validation.paths, reference.validation.map { folder.paths[$0] })
    }

    // MARK: - Unreadable files

    func testUnreadableFilesAreThrownByDefaultAndListedWhenSkipped() throws {
        let tmp = TemporaryDirectory()
        try writeMNISTFolder(tmp.path, count: 20)
        let good = try ImageFolder(directory: tmp.path, imageSize: nil, channels: 1)
        // A PNG cut off inside its header, and a text file named .jpg.
        let png = readBytes(good.paths[0])
        let truncated = tmp.file("2/bad.png"), text = tmp.file("7/fake.jpg")
        writeBytes(Array(png.prefix(20)), to: truncated)
        writeBytes(Array("not an image at all".utf8), to: text)

        assertDatasetError(.corrupt, path: truncated) {
            try ImageFolder(directory: tmp.path, imageSize: nil, channels: 1)
        }
        let skipping = try ImageFolder(directory: tmp.path, imageSize: nil, channels: 1, onUnreadable: .skip)
        XCTAssertEqual(skipping.skipped.map(\.path), [truncated, text])
        XCTAssertEqual(skipping.skipped.map(\.reason.kind), [.corrupt, .unsupported])
        XCTAssertTrue(skipping.skipped[1].description.hasPrefix(text + ": "), skipping.skipped[1].description)
        XCTAssertEqual(skipping.paths, good.paths, "the skipped files are not samples; the others all are")
        XCTAssertEqual(skipping.labels, good.labels)

        // Damage inside the pixel data (chunk lengths intact, IDAT bytes flipped) passes the
        // header scan and is reported, naming the file, when decoded.
        try FileManager.default.removeItem(atPath: truncated)
        try FileManager.default.removeItem(atPath: text)
        var damaged = png
        damaged[png.count - 20] ^= 0xFF
        writeBytes(damaged, to: good.paths[0])
        let scanned = try ImageFolder(directory: tmp.path, imageSize: nil, channels: 1)
        XCTAssertEqual(scanned.count, good.count)
        assertDatasetError(.corrupt, path: good.paths[0]) { try scanned.sample(at: 0) }
        assertDatasetError(.corrupt, path: good.paths[0]) { try scanned.load() }
    }

    func testEmptyAndClasslessFoldersAndBadOptionsThrowClearErrors() throws {
        let tmp = TemporaryDirectory()
        assertDatasetError(.invalidArgument, path: tmp.path, ["no class folders", "empty"]) {
            try ImageFolder(directory: tmp.path)
        }
        // Only files and hidden folders: still no class.
        writeBytes(Array("x".utf8), to: tmp.file("readme.txt"))
        try makeFolder(tmp.file(".git"))
        assertDatasetError(.invalidArgument, path: tmp.path, ["no class folders"]) {
            try ImageFolder(directory: tmp.path)
        }
        // Classes without images.
        try makeFolder(tmp.file("cats"))
        try makeFolder(tmp.file("dogs"))
        writeBytes(Array("x".utf8), to: tmp.file("dogs/list.csv"))
        assertDatasetError(.invalidArgument, path: tmp.path, ["no readable", "\"cats\", \"dogs\""]) {
            try ImageFolder(directory: tmp.path)
        }
        // Only unreadable images, skipped: no samples left, and the message says why.
        writeBytes(Array("garbage".utf8), to: tmp.file("cats/a.png"))
        assertDatasetError(.invalidArgument, path: tmp.path, ["no readable", "skipped", "a.png"]) {
            try ImageFolder(directory: tmp.path, onUnreadable: .skip)
        }
        assertDatasetError(.notFound, path: tmp.file("absent")) { try ImageFolder(directory: tmp.file("absent")) }
        assertDatasetError(.invalidArgument, path: tmp.file("readme.txt"), ["not a folder"]) {
            try ImageFolder(directory: tmp.file("readme.txt"))
        }
        assertDatasetError(.invalidArgument, path: tmp.path, ["1 or 3 channels"]) {
            try ImageFolder(directory: tmp.path, channels: 4)
        }
        assertDatasetError(.invalidArgument, path: tmp.path, ["positive"]) {
            try ImageFolder(directory: tmp.path, imageSize: (0, 10))
        }
    }

    func testAClassFolderWithoutImagesKeepsItsLabel() throws {
        let tmp = TemporaryDirectory()
        try writeMNISTFolder(tmp.path, count: 5, names: ["a", "c", "c", "c", "c", "c", "c", "c", "c", "c"])
        try makeFolder(tmp.file("b"))
        let folder = try ImageFolder(directory: tmp.path, imageSize: nil, channels: 1)
        XCTAssertEqual(folder.classNames, ["a", "b", "c"])
        XCTAssertFalse(folder.labels.contains(1))
        XCTAssertEqual(Set(folder.labels), [0, 2])
    }
}
