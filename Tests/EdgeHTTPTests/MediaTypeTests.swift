import Testing
import EdgeHTTP

@Suite struct MediaTypeTests {
    @Test func theEssenceIsTheLowercasedTypeWithoutParameters() {
        let cases: [(String, String)] = [
            ("Text/HTML; charset=utf-8", "text/html"), ("  application/json  ", "application/json"), ("\tIMAGE/PNG\t;q=1", "image/png"),
            ("text/plain;", "text/plain"), (";charset=x", ""), ("", ""), ("   ", ""), ("application/vnd.api+json", "application/vnd.api+json"),
        ]
        for (value, want) in cases {
            #expect(mediaTypeEssence(value) == want, "\(value)")
            var bytes = Array(value.utf8)
            #expect(bytes.withUnsafeMutableBytes { mediaTypeEssence(UnsafeRawBufferPointer($0)) } == want, "bytes: \(value)")
        }
    }
}
