import Testing
@testable import EdgeHTTP

@Suite(.timeLimit(.minutes(3))) struct StructuredFieldsTests {
    func members(_ s: String) -> [String]? {
        StructuredFields.dictionary([s])?.map { "\($0.key)=\($0.value)" }
    }

    @Test func dictionariesParse() {
        #expect(members("max-age=60, no-store") == ["max-age=integer(60)", "no-store=boolean(true)"])
        #expect(members("a=?0, b=\"x\\\"y\", c=tok/en:1, d=:aGk=:, e=-1.5") ==
                ["a=boolean(false)", "b=string(\"x\\\"y\")", "c=token(\"tok/en:1\")", "d=bytes", "e=decimal(-1.5)"])
        #expect(members("a=(1 2 \"x\");p, b;q=1") == ["a=innerList(3)", "b=boolean(true)"])
        #expect(members("a=1, a=2") == ["a=integer(2)"])           // the last value, in the first place
        #expect(StructuredFields.dictionary(["a=1", "b=2"])?.count == 2)   // lines joined with commas
        #expect(members("  a=1 ,\tb") == ["a=integer(1)", "b=boolean(true)"])
    }

    /// Any syntax error fails the whole field (RFC 8941 §4.2).
    @Test func errorsFailTheWholeField() {
        for bad in ["", " ", "&&&&", "max-age=60, &&&&", "A=1", "a=1,", "a=,", "a=1 b=2", "a=\"open", "a=\"\\x\"", "a=1.", "a=1.2345",
                    "a=1234567890123456", "a=?2", "a=:a*:", "a=(1", "a=(1,2)", "a=1;", "a=1;B=2", "a=é", "a=\u{7f}", "1a=1"] {
            #expect(StructuredFields.dictionary([bad]) == nil, "\(bad.debugDescription)")
        }
    }

    /// Every split of a valid field either parses the same or fails: nothing reads past its bytes.
    @Test func prefixesNeverCrash() {
        let s = Array("max-age=600;x=1, private=\"set-cookie\", a=(1 \"b\" c), d=:aGk=:, e=?1".utf8)
        for n in 0...s.count {
            _ = s[0..<n].withUnsafeBytes { StructuredFields.dictionary($0) }
        }
        #expect(s.withUnsafeBytes { StructuredFields.dictionary($0) }?.count == 5)
    }
}
