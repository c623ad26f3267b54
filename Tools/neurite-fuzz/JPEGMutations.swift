/// A JPEG file taken apart into marker segments, each SOS segment with the entropy-coded data
/// that follows it, so mutations can change one header field, one table or one scan.
struct JPEGFile {
    struct Segment {
        var marker: UInt8
        /// The bytes after the length field (empty for markers without one).
        var payload: [UInt8]
        var hasLength: Bool
        /// A length field to write instead of `payload.count + 2`.
        var lengthOverride: Int?
        /// After SOS: the entropy-coded data up to the next marker (restart markers included).
        var scan: [UInt8]
    }

    var segments: [Segment]
    /// Bytes after EOI or after the point where the structure could not be followed.
    var trailing: [UInt8]

    static func isStandalone(_ marker: UInt8) -> Bool {
        (0xD0...0xD9).contains(marker) || marker == 0x01
    }

    init?(_ bytes: [UInt8]) {
        guard bytes.count >= 4, bytes[0] == 0xFF, bytes[1] == 0xD8 else { return nil }
        segments = [Segment(marker: 0xD8, payload: [], hasLength: false, lengthOverride: nil, scan: [])]
        var offset = 2
        trailing = []
        while offset + 1 < bytes.count, bytes[offset] == 0xFF {
            var m = offset + 1
            while m < bytes.count && bytes[m] == 0xFF { m += 1 }  // fill bytes
            guard m < bytes.count else { break }
            let marker = bytes[m]
            if JPEGFile.isStandalone(marker) {
                segments.append(Segment(marker: marker, payload: [], hasLength: false, lengthOverride: nil, scan: []))
                offset = m + 1
                if marker == 0xD9 { break }
                continue
            }
            guard m + 2 < bytes.count else { break }
            let length = Int(bytes[m + 1]) << 8 | Int(bytes[m + 2])
            guard length >= 2, m + 1 + length <= bytes.count else { break }
            var segment = Segment(marker: marker, payload: Array(bytes[(m + 3)..<(m + 1 + length)]), hasLength: true,
                                  lengthOverride: nil, scan: [])
            offset = m + 1 + length
            if marker == 0xDA {
                var end = offset
                while end + 1 < bytes.count {
                    if bytes[end] == 0xFF {
                        let next = bytes[end + 1]
                        if next != 0 && !(0xD0...0xD7).contains(next) && next != 0xFF { break }
                    }
                    end += 1
                }
                if end + 1 >= bytes.count { end = bytes.count }
                segment.scan = Array(bytes[offset..<end])
                offset = end
            }
            segments.append(segment)
        }
        trailing = offset < bytes.count ? Array(bytes[offset...]) : []
    }

    var bytes: [UInt8] {
        var out: [UInt8] = []
        for s in segments {
            out += [0xFF, s.marker]
            if s.hasLength {
                let length = s.lengthOverride ?? (s.payload.count + 2)
                out += [UInt8((length >> 8) & 0xFF), UInt8(length & 0xFF)]
                out += s.payload
            }
            out += s.scan
        }
        return out + trailing
    }

    func indices(where predicate: (UInt8) -> Bool) -> [Int] {
        segments.indices.filter { predicate(segments[$0].marker) }
    }

    static func isStartOfFrame(_ m: UInt8) -> Bool {
        (0xC0...0xCF).contains(m) && m != 0xC4 && m != 0xC8 && m != 0xCC
    }
}

/// Mutations that know the JPEG marker layout.
enum JPEGMutations {
    static let names = ["jpeg_segment_data", "jpeg_frame_field", "jpeg_frame_type", "jpeg_scan_header", "jpeg_huffman_table",
                        "jpeg_quant_table", "jpeg_restart_interval", "jpeg_segment_drop", "jpeg_segment_duplicate",
                        "jpeg_segment_swap", "jpeg_scan_data", "jpeg_scan_repeat", "jpeg_scan_cut", "jpeg_app_segment",
                        "jpeg_length_field"]

    private static let frameMarkers: [UInt8] = [0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF]

    /// Applies one JPEG-aware mutation; returns its name, or nil when it does not apply.
    static func mutate(_ bytes: inout [UInt8], dice: inout Dice) -> String? {
        guard var jpeg = JPEGFile(bytes) else { return nil }
        let choice = dice.below(names.count)
        let withLength = jpeg.indices { _ in true }.filter { jpeg.segments[$0].hasLength }
        switch choice {
        case 0:
            guard let i = withLength.randomElement(&dice) else { return nil }
            for _ in 0..<dice.pick([1, 1, 2, 4]) { Havoc.mutate(&jpeg.segments[i].payload, other: nil, dice: &dice) }
            if dice.chance(1, in: 8) { jpeg.segments[i].lengthOverride = jpeg.segments[i].payload.count + dice.pick([-1, 1, 2]) }
        case 1:
            guard let i = jpeg.indices(where: JPEGFile.isStartOfFrame).randomElement(&dice) else { return nil }
            setFrameField(&jpeg.segments[i].payload, dice: &dice)
        case 2:
            guard let i = jpeg.indices(where: JPEGFile.isStartOfFrame).randomElement(&dice) else { return nil }
            jpeg.segments[i].marker = dice.pick(frameMarkers)
        case 3:
            guard let i = jpeg.indices(where: { $0 == 0xDA }).randomElement(&dice) else { return nil }
            setScanField(&jpeg.segments[i].payload, dice: &dice)
        case 4:
            guard let i = jpeg.indices(where: { $0 == 0xC4 }).randomElement(&dice) else { return nil }
            var p = jpeg.segments[i].payload
            guard p.count >= 17 else { return nil }
            switch dice.below(3) {
            case 0: p[0] = dice.pick([0x00, 0x01, 0x10, 0x11, 0x02, 0x13, 0x20, 0xFF])
            case 1: p[1 + dice.below(16)] = dice.pick([0, 1, 2, 16, 255])  // code counts (their sum may pass 256)
            default:  // a table whose counts say more codes than a length allows
                for k in 1...16 { p[k] = 0 }
                p[dice.within(1...16)] = 255
            }
            jpeg.segments[i].payload = p
        case 5:
            guard let i = jpeg.indices(where: { $0 == 0xDB }).randomElement(&dice),
                  !jpeg.segments[i].payload.isEmpty else { return nil }
            if dice.chance(1, in: 2) {
                jpeg.segments[i].payload[0] = dice.pick([0x00, 0x01, 0x03, 0x04, 0x10, 0x13, 0x20, 0xFF])
            } else {
                let n = jpeg.segments[i].payload.count
                let zeros = dice.smallLength(upTo: n)
                for k in 0..<zeros { jpeg.segments[i].payload[(1 + k) % n] = 0 }
            }
        case 6:  // restart interval: set one, or change the one there is
            let interval = dice.pick(Interesting.words16)
            let payload = [UInt8(interval >> 8), UInt8(interval & 0xFF)]
            if let i = jpeg.indices(where: { $0 == 0xDD }).first {
                jpeg.segments[i].payload = payload
            } else {
                let at = jpeg.indices(where: { $0 == 0xDA }).first ?? 1
                jpeg.segments.insert(JPEGFile.Segment(marker: 0xDD, payload: payload, hasLength: true, lengthOverride: nil, scan: []),
                                     at: at)
            }
        case 7:
            guard jpeg.segments.count > 1 else { return nil }
            jpeg.segments.remove(at: dice.within(1...(jpeg.segments.count - 1)))
        case 8:
            let i = dice.below(jpeg.segments.count)
            jpeg.segments.insert(jpeg.segments[i], at: dice.within(1...jpeg.segments.count))
        case 9:
            guard jpeg.segments.count > 2 else { return nil }
            let i = dice.within(1...(jpeg.segments.count - 1)), j = dice.within(1...(jpeg.segments.count - 1))
            jpeg.segments.swapAt(i, j)
        case 10:
            guard let i = jpeg.indices(where: { $0 == 0xDA }).randomElement(&dice) else { return nil }
            mutateScanData(&jpeg.segments[i].scan, dice: &dice)
        case 11:  // many scans: what a tiny progressive file can do to decode time
            guard let i = jpeg.indices(where: { $0 == 0xDA }).randomElement(&dice) else { return nil }
            let copies = dice.pick([2, 10, 100, 499, 600])
            jpeg.segments.insert(contentsOf: Array(repeating: jpeg.segments[i], count: copies), at: i + 1)
        case 12:  // the scan data stops early, then a proper EOI
            guard let i = jpeg.indices(where: { $0 == 0xDA }).randomElement(&dice), !jpeg.segments[i].scan.isEmpty
            else { return nil }
            jpeg.segments[i].scan.removeLast(dice.smallLength(upTo: jpeg.segments[i].scan.count))
            jpeg.segments.removeSubrange((i + 1)...)
            jpeg.segments.append(JPEGFile.Segment(marker: 0xD9, payload: [], hasLength: false, lengthOverride: nil, scan: []))
            jpeg.trailing = []
        case 13:
            jpeg.segments.insert(appSegment(dice: &dice), at: dice.within(1...jpeg.segments.count))
        default:
            guard let i = withLength.randomElement(&dice) else { return nil }
            jpeg.segments[i].lengthOverride = Int(dice.pick(Interesting.words16))
        }
        bytes = jpeg.bytes
        return names[choice]
    }

    /// SOF: precision, height, width, component count, then (id, sampling factors, table) per component.
    private static func setFrameField(_ p: inout [UInt8], dice: inout Dice) {
        guard p.count >= 6 else { return }
        switch dice.below(6) {
        case 0: p[0] = dice.pick([8, 12, 16, 0, 7, 9, 255])
        case 1, 2:
            let value = dice.chance(1, in: 2) ? dice.pick(Interesting.words16) : UInt16(dice.within(1...4096))
            let at = dice.chance(1, in: 2) ? 1 : 3
            p[at] = UInt8(value >> 8)
            p[at + 1] = UInt8(value & 0xFF)
        case 3:
            let n = dice.pick([0, 1, 2, 3, 4, 5, 255] as [UInt8])
            p[5] = n
            if dice.chance(1, in: 2) {  // make the payload match the new count
                let want = 6 + 3 * Int(n)
                if p.count > want { p.removeLast(p.count - want) } else { p += dice.bytes(want - p.count) }
            }
        case 4:
            let components = (p.count - 6) / 3
            guard components > 0 else { return }
            let c = dice.below(components)
            let h = dice.chance(3, in: 4) ? dice.pick([1, 2, 3, 4]) : dice.within(0...15)
            let v = dice.chance(3, in: 4) ? dice.pick([1, 2, 3, 4]) : dice.within(0...15)
            p[6 + 3 * c + 1] = UInt8(h << 4 | v)
        default:
            let components = (p.count - 6) / 3
            guard components > 0 else { return }
            let c = dice.below(components)
            if dice.chance(1, in: 2) { p[6 + 3 * c] = dice.pick([0, 1, 2, 3, 4, 255]) } else { p[6 + 3 * c + 2] = dice.pick([0, 1, 3, 4, 255]) }
        }
    }

    /// SOS: component count, (id, DC/AC tables) per component, spectral start and end, approximation bits.
    private static func setScanField(_ p: inout [UInt8], dice: inout Dice) {
        guard !p.isEmpty else { return }
        let n = Int(p[0])
        let tail = 1 + 2 * n
        switch dice.below(4) {
        case 0: p[0] = dice.pick([0, 1, 2, 3, 4, 5, 255])
        case 1:
            guard n > 0, p.count >= tail else { return }
            let c = dice.below(n)
            if dice.chance(1, in: 2) { p[1 + 2 * c] = dice.pick([0, 1, 2, 3, 4, 255]) } else { p[2 + 2 * c] = dice.pick([0x00, 0x11, 0x44, 0x04, 0x40, 0xFF]) }
        default:
            guard p.count >= tail + 3 else { return }
            let k = tail + dice.below(3)
            p[k] = k == tail + 2 ? dice.pick([0x00, 0x01, 0x10, 0x11, 0x0D, 0xD0, 0xFF]) : dice.pick([0, 1, 5, 62, 63, 64, 255])
        }
    }

    /// Restart markers where none belong, stuffing, stray markers, or plain havoc in entropy-coded data.
    private static func mutateScanData(_ scan: inout [UInt8], dice: inout Dice) {
        let at = dice.below(scan.count + 1)
        switch dice.below(4) {
        case 0: scan.insert(contentsOf: [0xFF, 0xD0 + UInt8(dice.below(8))], at: at)
        case 1: scan.insert(contentsOf: [0xFF, 0x00], at: at)
        case 2: scan.insert(contentsOf: [0xFF, dice.pick([0x01, 0xC0, 0xC4, 0xD8, 0xD9, 0xDA, 0xDB, 0xDD, 0xE0, 0xFE, 0xFF])], at: at)
        default:
            for _ in 0..<dice.pick([1, 2, 8]) { Havoc.mutate(&scan, other: nil, dice: &dice) }
        }
    }

    /// APPn and COM segments: JFIF with odd versions, Adobe with every transform, random Exif and ICC.
    private static func appSegment(dice: inout Dice) -> JPEGFile.Segment {
        let marker: UInt8
        var payload: [UInt8]
        switch dice.below(5) {
        case 0:
            marker = 0xE0
            payload = Array("JFIF".utf8) + [0, dice.pick([1, 2, 0, 255]), dice.pick([1, 2, 0, 255]), 0, 0, 1, 0, 1, 0, 0]
        case 1:
            marker = 0xEE
            payload = Array("Adobe".utf8) + [0, 100, 0, 0, 0, 0, dice.pick([0, 1, 2, 3, 255])]
        case 2:
            marker = 0xE1
            payload = Array("Exif".utf8) + [0, 0] + dice.bytes(dice.smallLength(upTo: 256))
        case 3:
            marker = 0xE2
            payload = Array("ICC_PROFILE".utf8) + [0, dice.pick([0, 1, 2]), dice.pick([0, 1, 2])] + dice.bytes(dice.smallLength(upTo: 256))
        default:
            marker = dice.chance(1, in: 2) ? 0xFE : 0xE0 + UInt8(dice.below(16))
            payload = dice.bytes(dice.smallLength(upTo: 256))
        }
        return JPEGFile.Segment(marker: marker, payload: payload, hasLength: true, lengthOverride: nil, scan: [])
    }
}

extension Array {
    /// A random element drawn with `dice` (the standard library's `randomElement(using:)` may change between releases).
    func randomElement(_ dice: inout Dice) -> Element? {
        isEmpty ? nil : self[dice.below(count)]
    }
}
