/// Redis Cluster's key space: 16,384 slots, a key's slot the CRC16 (XMODEM) of the key, or of its
/// hash tag (the part between the first `{` and the first `}` after it, when that part is not
/// empty), so that keys which share a tag share a slot.
public enum HashSlot {
    public static let count = 16_384

    public static func of(_ key: String) -> Int {
        of(bytes: Array(key.utf8))
    }

    public static func of(bytes key: [UInt8]) -> Int {
        Int(crc16(hashed(key)) % UInt16(count))
    }

    /// The part of the key that decides its slot.
    static func hashed(_ key: [UInt8]) -> ArraySlice<UInt8> {
        guard let open = key.firstIndex(of: UInt8(ascii: "{")),
            let close = key[(open + 1)...].firstIndex(of: UInt8(ascii: "}")),
            close > open + 1
        else { return key[...] }
        return key[(open + 1)..<close]
    }

    /// CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, as the cluster specification has it.
    static func crc16(_ bytes: ArraySlice<UInt8>) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc ^= UInt16(byte) << 8
            for _ in 0..<8 {
                crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1
            }
        }
        return crc
    }
}
