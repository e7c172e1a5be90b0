// libFuzzer target for the config loaders: each input is loaded as a tenant file
// and as the server file (seeded with tenants/*.json). Built by run.sh from the
// sources of EdgeHTTP, EdgeProtect, EdgeUpstream and EdgeConfig; the properties are
// in Tests/EdgeConfigTests/ConfigProperties.swift, shared with the replay test.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    checkConfigProperties(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
