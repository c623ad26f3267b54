/// Checks on an HDF5 image that libhdf5 1.10 does not make itself before trusting it. Each one
/// exists because a fuzzed file crashed libhdf5 without it (the files are replayed by
/// `Tests/KerasInteropTests/HDF5FuzzFindingsTests.swift`).
///
/// Variable-length strings (Keras' `name` attributes) live in global heap collections. libhdf5
/// parses a collection's object list without checking object sizes against the collection, loops
/// forever on a free-space object of size 0, and when it reads a string (H5HG_read) copies the
/// object's claimed size into a buffer sized by the string length the reference claims, from an
/// object slot it does not check exists. So: every collection must hold together
/// (``globalHeaps(_:source:)``), and every variable-length string attribute of a group whose
/// attributes are read must refer to an existing object of exactly the length it claims (a larger
/// claimed length makes libhdf5 allocate and clear that much) (``checkAttribute(_:message:heaps:source:path:)``).
///
/// Local heaps (the link names of version-1 groups, signature `HEAP`): libhdf5 reads a heap's data
/// segment from the address and size it claims without checking them against the file, and
/// follows a group's symbol table message to its heap and B-tree without checking that they are
/// there, so ``localHeaps(_:base:source:)`` checks every heap and every version-1 symbol table
/// message (type 0x11, 16 bytes: B-tree address, heap address) it finds, and every version-1
/// group B-tree node (`TREE`, type 0) must point at symbol table nodes or B-tree nodes.
///
/// The object header's chunks are found by walking its messages (version 1, as h5py, Keras and
/// this module write, and version 2), following continuation messages. What this cannot see:
/// attributes in dense storage (a fractal heap, used by version-2 headers with many attributes).
enum HDF5Preflight {
    /// The global heap collections of an image: file offset -> (object index -> object size).
    struct Heaps {
        /// The file offset addresses are relative to (where the superblock's signature is).
        var base = 0
        var collections: [Int: [UInt16: UInt64]] = [:]
    }

    static func globalHeaps(_ bytes: UnsafeRawBufferPointer, source: String) throws(KerasInteropError) -> Heaps {
        var heaps = Heaps()
        let hdf5: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]
        var base = 0
        while base + 8 <= bytes.count, !(0..<8).allSatisfy({ bytes[base + $0] == hdf5[$0] }) {
            base = base == 0 ? 512 : base * 2
        }
        heaps.base = base
        let signature: [UInt8] = [0x47, 0x43, 0x4F, 0x4C, 0x01, 0x00, 0x00, 0x00]  // "GCOL", version 1
        var at = 0
        while at + 16 <= bytes.count {
            guard bytes[at] == 0x47, (0..<8).allSatisfy({ bytes[at + $0] == signature[$0] }) else {
                at += 1
                continue
            }
            let size = read64(bytes, at + 8)
            guard size >= 16, size <= UInt64(bytes.count - at) else {
                throw .corruptHDF5("\(source): the global heap collection at offset \(at) claims \(size) bytes")
            }
            let end = at + Int(size)
            var objects: [UInt16: UInt64] = [:]
            var p = at + 16
            while p < end {
                if p + 16 > end { break }  // too small for an object header: free space to libhdf5
                let index = UInt16(bytes[p]) | UInt16(bytes[p + 1]) << 8
                let objectSize = read64(bytes, p + 8)
                // Objects other than free space (index 0) are padded to 8 bytes after a 16-byte header.
                let (padded, overflow) = objectSize.addingReportingOverflow(7)
                let need = index == 0 ? objectSize : (overflow ? UInt64.max : 16 + (padded & ~7))
                guard need >= 16, need <= UInt64(end - p) else {
                    throw .corruptHDF5("\(source): object \(index) of the global heap collection at offset \(at) claims \(objectSize) bytes")
                }
                if index != 0 { objects[index] = objectSize }
                p += Int(need)
            }
            heaps.collections[at] = objects
            at = end
        }
        return heaps
    }

    /// Every local heap (signature `HEAP`, version 0, three zero bytes) must have its data segment
    /// inside the file.
    static func localHeaps(_ bytes: UnsafeRawBufferPointer, base: Int, source: String) throws(KerasInteropError) {
        let signature: [UInt8] = [0x48, 0x45, 0x41, 0x50, 0x00, 0x00, 0x00, 0x00]  // "HEAP", version 0
        var at = 0
        while at + 32 <= bytes.count {
            defer { at += 1 }
            guard bytes[at] == 0x48, (0..<8).allSatisfy({ bytes[at + $0] == signature[$0] }) else { continue }
            let size = read64(bytes, at + 8), address = read64(bytes, at + 24)
            let room = UInt64(bytes.count - base)
            guard address <= room, size <= room - address else {
                throw .corruptHDF5("\(source): the local heap at offset \(at) claims \(size) bytes at address \(address)")
            }
        }
        // Symbol table messages in version-1 object headers: type 0x0011, size 16, 3 reserved zeros.
        func points(_ address: UInt64, at signature: [UInt8]) -> Bool {
            guard address <= UInt64(bytes.count - base - 4) else { return false }
            let p = base + Int(address)
            return (0..<4).allSatisfy { bytes[p + $0] == signature[$0] }
        }
        at = 0
        while at + 24 <= bytes.count {
            defer { at += 1 }
            guard bytes[at] == 0x11, bytes[at + 1] == 0, bytes[at + 2] == 0x10, bytes[at + 3] == 0,
                  bytes[at + 5] == 0, bytes[at + 6] == 0, bytes[at + 7] == 0 else { continue }
            let tree = read64(bytes, at + 8), heap = read64(bytes, at + 16)
            guard points(tree, at: Array("TREE".utf8)), points(heap, at: Array("HEAP".utf8)) else {
                throw .corruptHDF5("\(source): the group symbol table at offset \(at) points at no B-tree (\(tree)) or local heap (\(heap))")
            }
        }
        // Group B-tree nodes: "TREE", type 0, level, entries used, two siblings, then key/child pairs.
        at = 0
        while at + 24 <= bytes.count {
            defer { at += 1 }
            guard bytes[at] == 0x54, bytes[at + 1] == 0x52, bytes[at + 2] == 0x45, bytes[at + 3] == 0x45,
                  bytes[at + 4] == 0 else { continue }
            let level = bytes[at + 5]
            let entries = Int(bytes[at + 6]) | Int(bytes[at + 7]) << 8
            guard at + 24 + 16 * entries + 8 <= bytes.count else {
                throw .corruptHDF5("\(source): the group B-tree node at offset \(at) claims \(entries) entries")
            }
            for k in 0..<entries {
                let child = read64(bytes, at + 24 + 16 * k + 8)
                guard points(child, at: Array((level == 0 ? "SNOD" : "TREE").utf8)) else {
                    throw .corruptHDF5("\(source): the group B-tree node at offset \(at) has child \(k) at \(child), which is no \(level == 0 ? "symbol table node" : "B-tree node")")
                }
            }
        }
    }

    /// The file ranges of the attribute messages (type 0x0C) in the chunks of the object header at
    /// file offset `header`: the first chunk and every continuation chunk its messages lead to
    /// (at most 64).
    static func attributeMessages(_ bytes: UnsafeRawBufferPointer, at header: Int, base: Int) -> [Range<Int>] {
        func range(_ start: Int, _ length: UInt64) -> Range<Int>? {
            guard start >= 0, start <= bytes.count else { return nil }
            return start..<(start + Int(min(length, UInt64(bytes.count - start))))
        }
        var chunks: [Range<Int>] = []
        var attributes: [Range<Int>] = []
        var pending: [(Range<Int>, isFirst: Bool)] = []
        let version2 = header + 6 <= bytes.count && bytes[header] == 0x4F && bytes[header + 1] == 0x48
            && bytes[header + 2] == 0x44 && bytes[header + 3] == 0x52
        var creationOrder = false
        if version2 {
            let flags = bytes[header + 5]
            creationOrder = flags & 0x04 != 0
            var p = header + 6 + (flags & 0x20 != 0 ? 16 : 0) + (flags & 0x10 != 0 ? 4 : 0)
            let width = 1 << Int(flags & 3)
            guard p + width <= bytes.count else { return [] }
            let size = (0..<width).reduce(UInt64(0)) { $0 | UInt64(bytes[p + $1]) << UInt64(8 * $1) }
            p += width
            if let first = range(p, size) { pending.append((first, true)) }
        } else {
            guard header + 16 <= bytes.count, bytes[header] == 1 else { return [] }
            if let first = range(header + 16, UInt64(read32(bytes, header + 8))) { pending.append((first, true)) }
        }
        while let (chunk, isFirst) = pending.popLast(), chunks.count < 64 {
            var messages = chunk
            if version2 && !isFirst { messages = min(chunk.lowerBound + 4, chunk.upperBound)..<chunk.upperBound }  // "OCHK"
            chunks.append(chunk)
            let headerSize = version2 ? (creationOrder ? 6 : 4) : 8
            var p = messages.lowerBound
            while p + headerSize <= messages.upperBound {
                let type = version2 ? UInt16(bytes[p]) : UInt16(bytes[p]) | UInt16(bytes[p + 1]) << 8
                let size = version2 ? Int(bytes[p + 1]) | Int(bytes[p + 2]) << 8 : Int(bytes[p + 2]) | Int(bytes[p + 3]) << 8
                let data = p + headerSize
                if type == 0x0C, data < messages.upperBound {
                    attributes.append(data..<min(data + size, messages.upperBound))
                }
                if type == 0x10, data + 16 <= messages.upperBound {
                    let offset = read64(bytes, data), length = read64(bytes, data + 8)
                    if offset <= UInt64(Int.max - base), let next = range(base + Int(offset), length) { pending.append((next, false)) }
                }
                p = data + size
            }
        }
        return attributes
    }

    /// Checks the heap references (length: 4 bytes, collection address: 8, object index: 4) in the
    /// data of an attribute message whose type is a variable-length string: each must name an
    /// existing object of a known collection, of exactly the length it claims (or claim length 0).
    static func checkAttribute(_ bytes: UnsafeRawBufferPointer, message: Range<Int>, heaps: Heaps,
                               source: String, path: String) throws(KerasInteropError) {
        let m = message.lowerBound, end = message.upperBound
        guard m + 9 <= end else { return }
        let version = bytes[m]
        func padded(_ n: Int) -> Int { version == 1 ? (n + 7) & ~7 : n }
        let nameSize = Int(bytes[m + 2]) | Int(bytes[m + 3]) << 8
        let typeSize = Int(bytes[m + 4]) | Int(bytes[m + 5]) << 8
        let spaceSize = Int(bytes[m + 6]) | Int(bytes[m + 7]) << 8
        let typeAt = m + 8 + (version >= 3 ? 1 : 0) + padded(nameSize)
        guard typeAt + 2 <= end, bytes[typeAt] & 0x0F == 9, bytes[typeAt + 1] & 0x0F == 1 else { return }  // vlen string
        var p = typeAt + padded(typeSize) + padded(spaceSize)
        while p + 16 <= end {
            let length = UInt64(read32(bytes, p)), address = read64(bytes, p + 4), index = read32(bytes, p + 12)
            p += 16
            if length == 0 { continue }
            guard address <= UInt64(Int.max - heaps.base), let objects = heaps.collections[heaps.base + Int(address)],
                  index <= UInt32(UInt16.max), let size = objects[UInt16(index)], size == length else {
                throw .corruptHDF5("\(source): an attribute of \"\(path)\" refers to global heap object \(index) at \(address) for \(length) bytes, which it does not hold")
            }
        }
    }

    private static func read64(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt64 {
        UInt64(read32(b, at)) | UInt64(read32(b, at + 4)) << 32
    }
    private static func read32(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(b[at + $1]) << UInt32(8 * $1) }
    }
}
