// SHA-256 through OpenSSL (cache keys for request bodies: collision resistant,
// so one client cannot craft a body whose stored answer another client gets).
import COpenSSL

/// The SHA-256 of `bytes`, as 64 lowercase hex digits.
public func sha256Hex(_ bytes: UnsafeRawBufferPointer) -> String {
    var md = [UInt8](repeating: 0, count: 32)
    var len: UInt32 = 0
    _ = md.withUnsafeMutableBufferPointer { out in
        EVP_Digest(bytes.baseAddress, bytes.count, out.baseAddress, &len, EVP_sha256(), nil)
    }
    let hex = Array("0123456789abcdef".utf8)
    var s: [UInt8] = []
    s.reserveCapacity(64)
    for b in md { s.append(hex[Int(b >> 4)]); s.append(hex[Int(b & 15)]) }
    return String(decoding: s, as: UTF8.self)
}
