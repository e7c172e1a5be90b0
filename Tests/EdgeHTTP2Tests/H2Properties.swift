// The properties the HTTP/2 fuzz target checks on every input (tools/fuzz/FuzzH2.swift),
// kept here so `swift test` runs the same checks over tools/fuzz/regressions/ and known
// shapes without a fuzzer. run.sh compiles this file into the fuzzer with Sources/EdgeHTTP2.
#if canImport(EdgeHTTP2)
import EdgeHTTP2
#endif

/// Traps (precondition) on the first property `bytes` breaks:
/// - as frames after the preface and an empty SETTINGS: the connection machine never
///   reads past its input, hands on data ranges inside it, and gives the same events
///   fed whole or split at one input-chosen point;
/// - as an HPACK block: whatever decodes re-encodes (edge's encoder, with its dynamic
///   table) to a block that decodes to the same fields, names lowercased.
func checkH2Properties(_ bytes: UnsafeRawBufferPointer) {
    var input = Frames.preface
    Frames.appendSettings([], into: &input)
    input += Array(bytes)
    func run(_ cut: Int) -> [String] {
        var conn = H2Connection()
        var out: [UInt8] = []
        var buffer: [UInt8] = []
        var seen: [String] = []
        for piece in [input[0..<cut], input[cut...]] {
            buffer += piece
            var events: [H2Event] = []
            let outcome = buffer.withUnsafeBytes { conn.receive($0, now: 0, events: &events, out: &out) }
            for e in events {
                if case .data(let id, let r, let end) = e {
                    precondition(r.lowerBound >= 0 && r.upperBound <= buffer.count, "a data range outside the input")
                    seen.append("data \(id) \(Array(buffer[r])) \(end)")
                } else {
                    seen.append("\(e)")
                }
            }
            switch outcome {
            case .close(let e): seen.append("close \(e)"); return seen
            case .consumed(let n):
                precondition(n >= 0 && n <= buffer.count, "consumed more than it was given")
                buffer.removeFirst(n)
            }
        }
        return seen
    }
    let whole = run(input.count)
    if !bytes.isEmpty {
        let cut = Frames.preface.count + 9 + Int(bytes[0]) % bytes.count
        precondition(run(cut) == whole, "split input gives other events")
    }
    var d = HPACKDecoder()
    var fields: [HeaderField] = []
    if (try? d.decode(bytes, maxListSize: 1 << 16, emit: { fields.append($0) })) == true {
        var block: [UInt8] = []
        var enc = HPACKEncoder()
        for f in fields { enc.encode(f, into: &block) }
        var d2 = HPACKDecoder()
        var again: [HeaderField] = []
        let ok = try? block.withUnsafeBytes { p throws(HPACKError) in try d2.decode(p, maxListSize: 1 << 16) { again.append($0) } }
        // (edge's encoder sends names lowercase: HTTP/2 field names are, RFC 9113 §8.2.1)
        let lowered = fields.map { HeaderField(name: $0.name.map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }, value: $0.value) }
        precondition(ok == true && again == lowered, "HPACK re-encoding does not round-trip")
    }
}
