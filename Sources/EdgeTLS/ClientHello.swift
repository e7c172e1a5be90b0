// The server_name extension of a ClientHello (RFC 6066 §3), read before
// OpenSSL looks for a session to resume: the tenant, and with it the session
// id context that keeps one tenant's sessions and tickets from resuming under
// another's name, must be chosen first. Pure.

public enum ServerNameExtension {
    /// The host_name in a server_name extension's body, lowercased and without
    /// a trailing dot; nil when there is none or the body is malformed.
    public static func hostName(_ ext: UnsafeRawBufferPointer) -> String? {
        guard ext.count >= 2 else { return nil }
        let listLength = Int(ext[0]) << 8 | Int(ext[1])
        guard listLength == ext.count - 2 else { return nil }
        var i = 2
        while i + 3 <= ext.count {
            let type = ext[i]
            let n = Int(ext[i + 1]) << 8 | Int(ext[i + 2])
            i += 3
            guard i + n <= ext.count else { return nil }
            if type == 0 {
                guard n > 0 else { return nil }
                var name: [UInt8] = []
                name.reserveCapacity(n)
                for k in i..<(i + n) {
                    let b = ext[k]
                    guard b > 0x20 && b < 0x7F else { return nil }
                    name.append(b >= 65 && b <= 90 ? b + 32 : b)
                }
                // One trailing dot (the root label) goes; a name still ending in one is malformed.
                if name.last == 46 { name.removeLast() }
                return name.isEmpty || name.last == 46 ? nil : String(decoding: name, as: UTF8.self)
            }
            i += n
        }
        return nil
    }
}
