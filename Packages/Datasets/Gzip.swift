import CNeuriteZlib

/// gzip (RFC 1952) decompression and compression through zlib, with limits and typed errors.
///
/// Decompression inflates straight into one growing buffer with large output windows (no
/// intermediate chunks to join), so its cost is zlib's inflate plus almost nothing. The
/// buffer grows with the bytes zlib actually produces, never with what the gzip trailer
/// claims, and is held to a limit, so a "gzip bomb" stops with `.tooLarge` after at most
/// `limit` bytes of memory.
enum Gzip {
    /// Whether the bytes start with the gzip magic number 1f 8b.
    static func hasMagic(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B
    }

    /// Inflates every member of a gzip file (concatenated members are decoded one after
    /// another, as `gzip -d` does), checking each member's CRC-32 and length.
    ///
    /// - Throws: `.corrupt` for a bad header, bad deflate data, a CRC or length mismatch,
    ///   a stream cut short, or bytes after the last member that are not another member;
    ///   `.tooLarge` when the output would exceed `limit` bytes.
    static func decompress(_ input: UnsafeRawBufferPointer, path: String, limit: Int) throws -> ByteBuffer {
        var stream = z_stream()
        // 15 + 16: a 32 KiB window, gzip wrapper only (zlib checks the header, CRC-32 and ISIZE).
        guard inflateInit2_(&stream, 15 + 16, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw DatasetError(.io, path: path, "zlib could not start inflating")
        }
        defer { inflateEnd(&stream) }

        guard let inputBase = input.baseAddress, input.count > 0 else {
            throw DatasetError(.corrupt, path: path, "gzip file is empty")
        }
        let inBase = UnsafeMutablePointer(mutating: inputBase.assumingMemoryBound(to: UInt8.self))
        // Deflate typically shrinks data 2 to 6 times; start at 4x and double as needed.
        let first = min(limit, min(input.count, limit / 4 + 1) * 4) + 1
        let output = try ByteBuffer(capacity: max(first, 1 << 16).clamped(to: 1...(limit + 1)), path: path)
        var memberStart = 0
        var members = 0
        stream.next_in = inBase
        stream.avail_in = UInt32(min(input.count, Int(UInt32.max)))

        while true {
            if output.count == output.capacity {
                if output.count > limit {
                    throw DatasetError(.tooLarge, path: path,
                                       "gzip data decompresses to more than the limit of \(limit) bytes")
                }
                try output.grow(to: min(limit + 1, output.capacity * 2), path: path)
            }
            let room = UInt32(min(output.capacity - output.count, Int(UInt32.max)))
            stream.next_out = (output.base + output.count).assumingMemoryBound(to: UInt8.self)
            stream.avail_out = room
            let rc = inflate(&stream, Z_NO_FLUSH)
            output.count += Int(room - stream.avail_out)
            let consumed = inBase.distance(to: stream.next_in)
            if stream.avail_in == 0 && consumed < input.count {
                stream.avail_in = UInt32(min(input.count - consumed, Int(UInt32.max)))
            }
            if output.count > limit {
                throw DatasetError(.tooLarge, path: path,
                                   "gzip data decompresses to more than the limit of \(limit) bytes")
            }
            switch rc {
            case Z_OK:
                continue
            case Z_STREAM_END:
                members += 1
                let rest = input.count - consumed
                if rest == 0 { return output }
                let tail = UnsafeRawBufferPointer(rebasing: input[consumed...])
                guard hasMagic(tail) else {
                    throw DatasetError(.corrupt, path: path,
                                       "\(rest) bytes of trailing data after the gzip stream, at compressed byte offset \(consumed)")
                }
                // Another member follows (as `cat a.gz b.gz` makes): decode it too.
                memberStart = consumed
                guard inflateReset(&stream) == Z_OK else {
                    throw DatasetError(.io, path: path, "zlib could not restart for gzip member \(members + 1)")
                }
            case Z_BUF_ERROR:
                if stream.avail_out == 0 { continue }  // room runs out: grow and go on
                throw DatasetError(.corrupt, path: path,
                                   "gzip stream is truncated: it ends at compressed byte \(input.count) inside member \(members + 1) (which starts at byte \(memberStart)), after \(output.count) decompressed bytes")
            case Z_DATA_ERROR:
                let reason = stream.msg.map { String(cString: $0) } ?? "invalid data"
                let meaning: String
                switch reason {
                case "incorrect data check": meaning = "CRC-32 mismatch: the decompressed data does not match the checksum stored in the gzip trailer"
                case "incorrect length check": meaning = "length mismatch: the decompressed size does not match the size stored in the gzip trailer"
                case "incorrect header check": meaning = "not a valid gzip header"
                default: meaning = "invalid deflate data (\(reason))"
                }
                throw DatasetError(.corrupt, path: path,
                                   "gzip member \(members + 1) (starting at byte \(memberStart)) is corrupt near compressed byte offset \(consumed): \(meaning)")
            case Z_MEM_ERROR:
                throw DatasetError(.io, path: path, "zlib ran out of memory")
            default:
                throw DatasetError(.corrupt, path: path,
                                   "gzip stream is invalid near compressed byte offset \(consumed) (zlib code \(rc))")
            }
        }
    }

    /// Compresses `input` into one gzip member at zlib level `level` (6 is gzip's default).
    static func compress(_ input: UnsafeRawBufferPointer, path: String, level: Int32 = 6) throws -> ByteBuffer {
        var stream = z_stream()
        guard deflateInit2_(&stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY,
                            zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw DatasetError(.io, path: path, "zlib could not start deflating")
        }
        defer { deflateEnd(&stream) }
        let bound = Int(deflateBound(&stream, UInt(input.count)))
        let output = try ByteBuffer(capacity: bound + 64, path: path)
        let inBase = UnsafeMutablePointer(mutating: (input.baseAddress ?? UnsafeRawPointer(output.base))
            .assumingMemoryBound(to: UInt8.self))
        var offset = 0
        while true {
            let chunk = min(input.count - offset, 1 << 30)
            stream.next_in = inBase + offset
            stream.avail_in = UInt32(chunk)
            offset += chunk
            let flush = offset == input.count ? Z_FINISH : Z_NO_FLUSH
            repeat {
                if output.count == output.capacity {
                    try output.grow(to: output.capacity * 2, path: path)
                }
                let room = UInt32(min(output.capacity - output.count, Int(UInt32.max)))
                stream.next_out = (output.base + output.count).assumingMemoryBound(to: UInt8.self)
                stream.avail_out = room
                let rc = deflate(&stream, flush)
                output.count += Int(room - stream.avail_out)
                if rc == Z_STREAM_END { return output }
                guard rc == Z_OK || rc == Z_BUF_ERROR else {
                    throw DatasetError(.io, path: path, "zlib deflate failed (code \(rc))")
                }
            } while stream.avail_in > 0 || (flush == Z_FINISH && stream.avail_out == 0)
        }
    }
}

extension Comparable {
    /// The value limited to `range`.
    fileprivate func clamped(to range: ClosedRange<Self>) -> Self {
        min(max(self, range.lowerBound), range.upperBound)
    }
}
