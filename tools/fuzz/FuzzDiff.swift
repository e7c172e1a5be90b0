// Differential libFuzzer target: EdgeHTTP's request head parser against the plain
// reference reading of RFC 9112 in Tests/EdgeHTTPTests/ReferenceHead.swift. Any
// disagreement on accept or reject, on where the head ends or on the body's framing
// is a finding. Built by run.sh together with Sources/EdgeHTTP.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    checkRequestHeadAgreement(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
