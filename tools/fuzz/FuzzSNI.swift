// libFuzzer target for the ClientHello server_name reader (EdgeTLS/ClientHello.swift,
// pure, built alone by run.sh): it never reads out of bounds, and what it returns
// is a lowercase name of printable bytes without a trailing dot.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    if let name = ServerNameExtension.hostName(bytes) {
        precondition(!name.isEmpty && name.utf8.count <= size)
        precondition(name.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && !($0 >= 65 && $0 <= 90) })
        precondition(!name.hasSuffix("."))
    }
    return 0
}
