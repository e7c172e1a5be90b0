// libFuzzer target for the Cache-Control family (Cache-Control, CDN-Cache-Control,
// Surrogate-Control), built by run.sh from the sources of EdgeHTTP and EdgeCache.
// The properties are in Tests/EdgeCacheTests/CacheControlProperties.swift, shared
// with the replay test.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    checkCacheControlProperties(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
