/// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320, as zlib, gzip, PNG and zip use), computed
/// bit by bit: an independent check on the library's readers, and what tests use to forge valid
/// chunks and trailers around the malformation they mean to test.
public func crc32(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for b in bytes {
        crc ^= UInt32(b)
        for _ in 0..<8 { crc = (crc >> 1) ^ (0xEDB8_8320 & (0 &- (crc & 1))) }
    }
    return ~crc
}
