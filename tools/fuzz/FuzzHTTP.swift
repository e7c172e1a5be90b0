// libFuzzer target for EdgeHTTP's parsers: the properties it checks are in
// Tests/EdgeHTTPTests/HTTPProperties.swift (also replayed by `swift test` on every
// input in regressions/). Built by run.sh together with Sources/EdgeHTTP.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    checkHTTPProperties(bytes)
    return 0
}
