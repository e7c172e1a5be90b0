// libFuzzer target for the JSON parser and writer (the config files, the admin
// API's bodies, the ACME server's answers). Built by run.sh from EdgeJSON's
// sources; the properties are in Tests/EdgeJSONTests/JSONProperties.swift,
// shared with the replay test.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    checkJSONProperties(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
