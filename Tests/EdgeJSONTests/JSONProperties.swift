// Properties of the JSON parser and writer on any bytes, shared by the fuzz
// target (tools/fuzz/FuzzJSON.swift) and the replay test (JSONFuzzReplayTests).
// run.sh compiles this file with EdgeJSON's sources as one module.
#if canImport(EdgeJSON)
@testable import EdgeJSON
#endif

/// Traps unless: a text that parses writes out (compact and pretty) to text
/// that parses to the same value, and writing that again gives the same bytes;
/// a text refused is refused with a place inside it.
func checkJSONProperties(_ p: UnsafeRawBufferPointer) {
    let value: JSON
    do {
        value = try JSON.parse(p)
    } catch {
        precondition(error.offset >= 0 && error.offset <= p.count && error.line >= 1 && error.column >= 1, "an error that points nowhere: \(error)")
        precondition(!error.message.isEmpty, "an error with no message")
        return
    }
    for pretty in [false, true] {
        let text = value.serialized(pretty: pretty)
        guard let again = try? JSON.parse(text) else { preconditionFailure("written text does not parse: \(String(decoding: text, as: UTF8.self))") }
        precondition(sameValue(again, value), "written text reads back differently")
        precondition(again.serialized(pretty: pretty) == text, "writing is not stable")
    }
}

/// Equal, with NaN never arising (the parser makes no NaN) and -0.0 equal to 0.0 written as "0".
func sameValue(_ a: JSON, _ b: JSON) -> Bool {
    switch (a, b) {
    case (.double(let x), .double(let y)): return x == y
    case (.int(let x), .double(let y)), (.double(let y), .int(let x)): return Double(x) == y   // a whole double is written as an integer
    case (.array(let x), .array(let y)): return x.count == y.count && zip(x, y).allSatisfy { sameValue($0, $1) }
    case (.object(let x), .object(let y)): return x.count == y.count && x.allSatisfy { k, v in y[k].map { sameValue(v, $0) } ?? false }
    default: return a == b
    }
}
