// libFuzzer target for the admin API's input side: requests (head and body) and
// the purge and explain bodies. Built by run.sh from EdgeHTTP's sources,
// EdgeConfig/JSONFile.swift and EdgeAdmin/AdminRequest.swift; the properties are in
// Tests/EdgeAdminTests/AdminProperties.swift, shared with the replay test.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    checkAdminProperties(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
