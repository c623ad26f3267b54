import CImageCodecs
import TensorCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Public types

/// An image file format the decoder reads, recognised by the file's first bytes, never by its name.
public enum ImageFormat: String, Sendable, Equatable, CaseIterable {
    /// Portable Network Graphics, through libpng.
    case png
    /// JPEG (JFIF, Adobe, Exif), through libjpeg(-turbo).
    case jpeg

    /// The format whose signature `bytes` begins with, or `nil` for anything else.
    ///
    /// PNG is recognised by `89 50 4E 47` ("\u{89}PNG"); libpng checks the other four signature
    /// bytes, so a PNG damaged by a text-mode transfer is reported as a corrupt PNG rather than
    /// as an unknown format. JPEG is recognised by `FF D8 FF` (start-of-image, then a marker).
    public init?(sniffing bytes: some Sequence<UInt8>) {
        let head = Array(bytes.prefix(4))
        if head.count >= 4 && head[0] == 0x89 && head[1] == 0x50 && head[2] == 0x4E && head[3] == 0x47 {
            self = .png
        } else if head.count >= 3 && head[0] == 0xFF && head[1] == 0xD8 && head[2] == 0xFF {
            self = .jpeg
        } else {
            return nil
        }
    }
}

/// What an image file's header says, as checked by libpng or libjpeg.
public struct ImageInfo: Sendable, Equatable {
    /// The file format, from the file's first bytes.
    public var format: ImageFormat
    /// Width in pixels.
    public var width: Int
    /// Height in pixels.
    public var height: Int
    /// Colour channels without alpha, which is what `ImageDecoder.decode(channels: nil)` returns:
    /// 1 for gray, 3 for colour (palette, RGB, YCbCr, and CMYK/YCCK, which decode to RGB).
    public var channels: Int
    /// Whether the file has transparency (a PNG alpha channel or `tRNS` chunk; never for JPEG).
    public var hasAlpha: Bool
    /// Bits per stored sample: 1, 2, 4, 8 or 16 for PNG (the index depth for palette images), 8 for JPEG.
    /// Decoded samples are always 8-bit.
    public var bitDepth: Int

    /// Makes an info value (the decoder makes these; the initialiser is for tests and comparisons).
    public init(format: ImageFormat, width: Int, height: Int, channels: Int, hasAlpha: Bool, bitDepth: Int) {
        self.format = format
        self.width = width
        self.height = height
        self.channels = channels
        self.hasAlpha = hasAlpha
        self.bitDepth = bitDepth
    }
}

/// Bounds on what the decoder accepts, checked before anything sized by the file is allocated.
///
/// The file size is checked before the file is read; width, height and pixel count are checked
/// right after the header is parsed, before the pixel buffer exists. An image beyond a limit
/// throws ``DatasetError/Kind/tooLarge``.
public struct ImageLimits: Sendable, Equatable {
    /// Largest accepted width in pixels (default 32768).
    public var maxWidth: Int
    /// Largest accepted height in pixels (default 32768).
    public var maxHeight: Int
    /// Largest accepted `width * height` (default 2^28, about 268 million pixels: 1 GiB of 8-bit
    /// RGBA while decoding, 3 GiB as a Float32 RGB tensor).
    public var maxPixels: Int
    /// Largest accepted file, in bytes (default 256 MiB).
    public var maxFileBytes: Int

    /// Limits with the given bounds; every argument defaults to the value in ``default``.
    public init(maxWidth: Int = 1 << 15, maxHeight: Int = 1 << 15, maxPixels: Int = 1 << 28, maxFileBytes: Int = 1 << 28) {
        self.maxWidth = maxWidth
        self.maxHeight = maxHeight
        self.maxPixels = maxPixels
        self.maxFileBytes = maxFileBytes
    }

    /// 32768 x 32768 at most, 2^28 pixels at most, files up to 256 MiB.
    public static let `default` = ImageLimits()
}

// MARK: - Decoding

/// Reads PNG and JPEG images into tensors `[H, W, C]` (channels last, as Keras), Float32.
///
/// The format comes from the first bytes, not the file name. Supported: PNG of every colour type
/// and bit depth (palette and `tRNS` expanded, 16-bit scaled to 8 bits, interlaced or not; no gamma
/// correction, as Keras and TensorFlow) and 8-bit JPEG (baseline, progressive, arithmetic-coded,
/// gray, YCbCr, RGB, CMYK/YCCK converted to RGB), decoded with libjpeg's accurate integer DCT and
/// fancy upsampling, the settings of `djpeg`'s defaults.
///
/// Every failure is a thrown ``DatasetError``: `.notFound` and `.io` for the file, `.corrupt` for
/// damaged or truncated data (JPEG data that libjpeg would only warn about included),
/// `.unsupported` for an unknown format or a feature such as 12-bit JPEG, `.tooLarge` beyond the
/// ``ImageLimits``, `.invalidArgument` for a bad `channels` request.
///
/// Channels: `nil` gives the stored colour channels without alpha (1 for gray, 3 otherwise), which is
/// what `keras.utils.load_img` gives for `color_mode` "grayscale" and "rgb" files; `1` gives gray
/// (RGB converted with the ITU-R BT.601 luma weights 0.299, 0.587, 0.114, not rounded); `3` gives
/// RGB (gray repeated); `4` gives RGBA (alpha fully opaque where the file has none). Alpha is
/// dropped, not composited, when it is not asked for.
public enum ImageDecoder {
    /// The header of the image in the file at `path` (the file is read whole, up to the default size limit,
    /// but only its header is parsed and nothing is decoded or checked against the dimension limits).
    /// - Throws: ``DatasetError`` (see ``ImageDecoder``), for example `.corrupt` for a damaged header.
    public static func info(ofFileAt path: String) throws -> ImageInfo {
        try info(of: readImageFile(path, maxBytes: ImageLimits.default.maxFileBytes), path: path)
    }

    /// The header of the image in `data` (the bytes of a whole file).
    public static func info(of data: [UInt8]) throws -> ImageInfo {
        try info(of: data, path: nil)
    }

    /// Decodes the image file at `path` into a tensor `[H, W, C]`.
    ///
    /// - Parameters:
    ///   - path: the file; it is read whole (after its size is checked against `limits`).
    ///   - channels: `nil` (stored colour channels, alpha dropped), 1 (gray), 3 (RGB) or 4 (RGBA).
    ///   - scaled: `true` for values in `0...1` (`k / 255`), `false` for `0...255`.
    ///   - limits: bounds on file size and dimensions, checked before allocation.
    /// - Returns: `[height, width, channels]`, Float32, row-major.
    /// - Throws: ``DatasetError`` (see ``ImageDecoder``).
    public static func decode(fileAt path: String, channels: Int? = nil, scaled: Bool = true,
                              limits: ImageLimits = .default) throws -> Tensor {
        try checkChannels(channels, path: path)
        let bytes = try readImageFile(path, maxBytes: limits.maxFileBytes)
        return try decode(bytes, path: path, channels: channels, scaled: scaled, limits: limits)
    }

    /// Decodes an image held in memory (the bytes of a whole PNG or JPEG file) into `[H, W, C]`.
    ///
    /// Same parameters and results as ``decode(fileAt:channels:scaled:limits:)``; errors carry no path.
    public static func decode(data: [UInt8], channels: Int? = nil, scaled: Bool = true,
                              limits: ImageLimits = .default) throws -> Tensor {
        try checkChannels(channels, path: nil)
        if data.count > limits.maxFileBytes {
            throw DatasetError(.tooLarge, "image data is \(data.count) bytes, above the limit of \(limits.maxFileBytes)")
        }
        return try decode(data, path: nil, channels: channels, scaled: scaled, limits: limits)
    }

    private static func checkChannels(_ channels: Int?, path: String?) throws {
        if let channels, channels != 1 && channels != 3 && channels != 4 {
            throw DatasetError(.invalidArgument, path: path, "channels must be 1, 3, 4 or nil, got \(channels)")
        }
    }

    private static func format(of bytes: [UInt8], path: String?) throws -> ImageFormat {
        if bytes.isEmpty { throw DatasetError(.corrupt, path: path, "empty file (0 bytes)") }
        guard let format = ImageFormat(sniffing: bytes) else {
            let head = bytes.prefix(8).map { String($0, radix: 16, uppercase: true) }.map { $0.count < 2 ? "0" + $0 : $0 }
            throw DatasetError(.unsupported, path: path,
                               "not a PNG or JPEG file (starts with \(head.joined(separator: " ")))")
        }
        return format
    }

    private static func info(of bytes: [UInt8], path: String?) throws -> ImageInfo {
        let format = try format(of: bytes, path: path)
        var header = nic_image_info()
        try callDecoder(format, bytes, path: path, limits: nil, info: &header, pixels: nil)
        return ImageInfo(format: format, width: Int(header.width), height: Int(header.height),
                         channels: Int(header.color_channels), hasAlpha: header.has_alpha != 0,
                         bitDepth: Int(header.bit_depth))
    }

    private static func decode(_ bytes: [UInt8], path: String?, channels: Int?, scaled: Bool,
                               limits: ImageLimits) throws -> Tensor {
        let format = try format(of: bytes, path: path)
        func clamp32(_ v: Int) -> UInt32 { UInt32(max(0, min(v, Int(UInt32.max)))) }
        var cLimits = nic_limits(max_width: clamp32(limits.maxWidth), max_height: clamp32(limits.maxHeight),
                                 max_pixels: UInt64(max(0, limits.maxPixels)))
        var header = nic_image_info()
        var pixels: UnsafeMutablePointer<UInt8>? = nil
        defer { nic_free(pixels) }
        try withUnsafeMutablePointer(to: &pixels) { pixelsOut in
            try callDecoder(format, bytes, path: path, limits: &cLimits, info: &header, pixels: pixelsOut)
        }
        guard let pixels else {
            throw DatasetError(.corrupt, path: path, "the decoder returned no pixels")
        }
        let height = Int(header.height), width = Int(header.width)
        let outChannels = channels ?? Int(header.color_channels)
        return Tensor(shape: [height, width, outChannels]) { out in
            convertPixels(UnsafePointer(pixels), pixelCount: height * width, storedChannels: Int(header.pixel_channels),
                          outChannels: outChannels, scaled: scaled, into: out)
        }
    }

    private static func callDecoder(_ format: ImageFormat, _ bytes: [UInt8], path: String?,
                                    limits: UnsafePointer<nic_limits>?, info: UnsafeMutablePointer<nic_image_info>,
                                    pixels: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?) throws {
        let capacity = Int(NIC_MESSAGE_CAPACITY)
        var message = [CChar](repeating: 0, count: capacity)
        let status = bytes.withUnsafeBufferPointer { data in
            message.withUnsafeMutableBufferPointer { text in
                switch format {
                case .png:
                    nic_png_read(data.baseAddress, data.count, limits, info, pixels, text.baseAddress, capacity)
                case .jpeg:
                    nic_jpeg_read(data.baseAddress, data.count, limits, info, pixels, text.baseAddress, capacity)
                }
            }
        }
        if status != NIC_OK {
            throw codecError(status, message: message, path: path)
        }
    }
}

/// The DatasetError for a CImageCodecs status and message.
private func codecError(_ status: Int32, message: [CChar], path: String?) -> DatasetError {
    let text = message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    switch status {
    case NIC_UNSUPPORTED: return DatasetError(.unsupported, path: path, text)
    case NIC_TOO_LARGE, NIC_OUT_OF_MEMORY: return DatasetError(.tooLarge, path: path, text)
    case NIC_INVALID_ARGUMENT: return DatasetError(.invalidArgument, path: path, text)
    default: return DatasetError(.corrupt, path: path, text)
    }
}

/// `k / 255` for every byte value, so that decoded values are exact and encode back to `k`.
private let unitScaledBytes: [Float] = (0..<256).map { Float($0) / 255 }
/// `k` for every byte value.
private let rawBytes: [Float] = (0..<256).map { Float($0) }

/// Converts interleaved 8-bit pixels with `storedChannels` (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA)
/// to `outChannels` (1, 3 or 4) Float values.
private func convertPixels(_ source: UnsafePointer<UInt8>, pixelCount n: Int, storedChannels s: Int,
                           outChannels: Int, scaled: Bool, into out: UnsafeMutableBufferPointer<Float>) {
    let table = scaled ? unitScaledBytes : rawBytes
    let hasColour = s >= 3, hasAlpha = s == 2 || s == 4
    table.withUnsafeBufferPointer { t in
        let d = out.baseAddress!
        if s == outChannels {
            for i in 0..<(n * s) { d[i] = t[Int(source[i])] }
            return
        }
        switch outChannels {
        case 1:
            if hasColour {
                let scale: Float = scaled ? 1 / 255 : 1
                for i in 0..<n {
                    let p = source + i * s
                    d[i] = (0.299 * Float(p[0]) + 0.587 * Float(p[1]) + 0.114 * Float(p[2])) * scale
                }
            } else {
                for i in 0..<n { d[i] = t[Int(source[i * s])] }
            }
        case 3:
            for i in 0..<n {
                let p = source + i * s, q = d + 3 * i
                if hasColour {
                    q[0] = t[Int(p[0])]; q[1] = t[Int(p[1])]; q[2] = t[Int(p[2])]
                } else {
                    let v = t[Int(p[0])]
                    q[0] = v; q[1] = v; q[2] = v
                }
            }
        default:
            let opaque: Float = scaled ? 1 : 255
            for i in 0..<n {
                let p = source + i * s, q = d + 4 * i
                if hasColour {
                    q[0] = t[Int(p[0])]; q[1] = t[Int(p[1])]; q[2] = t[Int(p[2])]
                } else {
                    let v = t[Int(p[0])]
                    q[0] = v; q[1] = v; q[2] = v
                }
                q[3] = hasAlpha ? t[Int(p[s - 1])] : opaque
            }
        }
    }
}

// MARK: - Encoding

/// Writes tensors as PNG files.
public enum ImageEncoder {
    /// Encodes `image` as an 8-bit PNG and writes it to `path` atomically: the bytes go to a
    /// temporary file in the same directory, which is then renamed over `path`, so `path` never
    /// holds a half-written file and no temporary file is left behind, even on failure.
    ///
    /// - Parameters:
    ///   - image: `[H, W]` or `[H, W, 1]` (gray) or `[H, W, 3]` (RGB), values in `0...1`; each is
    ///     stored as `round(v * 255)`, values outside `0...1` are clamped and NaN is stored as 0.
    ///   - path: the file to write (its directory must exist).
    /// - Throws: ``DatasetError``: `.notFound` when the directory does not exist, `.io` when writing fails.
    /// - Precondition: the shape is one of the above, with a non-zero height and width.
    public static func writePNG(_ image: Tensor, to path: String) throws {
        let png = try encodePNG(image)
        try png.withUnsafeBytes { try FileIO.writeAtomically($0, to: path) }
    }

    /// The bytes of a PNG file holding `image`, encoded as ``writePNG(_:to:)`` does.
    public static func encodePNG(_ image: Tensor) throws -> [UInt8] {
        let shape = image.shape
        neuritePrecondition((shape.count == 2 || (shape.count == 3 && (shape[2] == 1 || shape[2] == 3)))
                     && shape[0] > 0 && shape[1] > 0 && shape[0] <= Int(Int32.max) && shape[1] <= Int(Int32.max),
                     "writePNG needs an image [H, W], [H, W, 1] or [H, W, 3] with H, W > 0, got shape \(shape)")
        let height = shape[0], width = shape[1], channels = shape.count == 2 ? 1 : shape[2]
        let bytes = image.withUnsafeBufferPointer { values in
            [UInt8](unsafeUninitializedCapacity: values.count) { buffer, initialized in
                for i in 0..<values.count {
                    let v = values[i]
                    buffer[i] = v.isNaN ? 0 : UInt8((min(max(v, 0), 1) * 255).rounded())
                }
                initialized = values.count
            }
        }
        let capacity = Int(NIC_MESSAGE_CAPACITY)
        var message = [CChar](repeating: 0, count: capacity)
        var png: UnsafeMutablePointer<UInt8>? = nil
        var size = 0
        defer { nic_free(png) }
        let status = bytes.withUnsafeBufferPointer { pixels in
            message.withUnsafeMutableBufferPointer { text in
                nic_png_encode(pixels.baseAddress, UInt32(width), UInt32(height), Int32(channels),
                               &png, &size, text.baseAddress, capacity)
            }
        }
        guard status == NIC_OK, let png else { throw codecError(status, message: message, path: nil) }
        return Array(UnsafeBufferPointer(start: png, count: size))
    }
}

// MARK: - Files

/// The DatasetError for a failed system call, `.notFound` for a missing file or directory.
private func systemError(_ code: Int32, path: String, _ action: String) -> DatasetError {
    let reason = String(cString: strerror(code))
    let kind: DatasetError.Kind = (code == ENOENT || code == ENOTDIR) ? .notFound : .io
    return DatasetError(kind, path: path, "\(action): \(reason)")
}

/// The whole content of the regular file at `path`, which must not exceed `maxBytes`.
private func readImageFile(_ path: String, maxBytes: Int) throws -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 { throw systemError(errno, path: path, "cannot open the file") }
    defer { close(fd) }
    var status = stat()
    if fstat(fd, &status) != 0 { throw systemError(errno, path: path, "cannot inspect the file") }
    if (status.st_mode & S_IFMT) == S_IFDIR { throw DatasetError(.io, path: path, "is a directory, not an image file") }
    if (status.st_mode & S_IFMT) != S_IFREG { throw DatasetError(.io, path: path, "is not a regular file") }
    let size = Int(status.st_size)
    if size > maxBytes {
        throw DatasetError(.tooLarge, path: path, "file is \(size) bytes, above the limit of \(maxBytes)")
    }
    var done = 0
    let bytes = try [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
        while done < size {
            let got = read(fd, buffer.baseAddress! + done, size - done)
            if got < 0 {
                if errno == EINTR { continue }
                throw systemError(errno, path: path, "cannot read the file")
            }
            if got == 0 { break }
            done += got
        }
        initialized = done
    }
    if done < size {
        throw DatasetError(.io, path: path, "file shrank while being read: got \(done) of \(size) bytes")
    }
    return bytes
}

