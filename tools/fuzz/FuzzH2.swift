// libFuzzer target for EdgeHTTP2: frames through the connection machine, and HPACK
// blocks; the properties are in Tests/EdgeHTTP2Tests/H2Properties.swift (also run by
// `swift test` over regressions/). Built by run.sh together with Sources/EdgeHTTP2.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    checkH2Properties(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
