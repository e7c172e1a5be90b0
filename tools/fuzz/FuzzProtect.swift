// libFuzzer target for EdgeProtect's parsers (the PROXY protocol header,
// address and prefix text, prefix lists against a brute-force model, rates,
// rule matchers, signatures), built from its sources and EdgeHTTP's by run.sh. The properties are in
// Tests/EdgeProtectTests/ProtectProperties.swift, shared with the replay test.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    checkProtectProperties(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
