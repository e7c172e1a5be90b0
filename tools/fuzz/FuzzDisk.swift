// libFuzzer target for the disk tier's formats (segment records and their
// meta, segment headers, the purge journal), built by run.sh from the
// sources of EdgeHTTP, EdgeCache and EdgeDisk/Record.swift. The properties
// are in Tests/EdgeDiskTests/DiskProperties.swift, shared with the replay test.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    checkDiskProperties(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
