// Properties of EdgeProtect's parsers that must hold for any input: checked by
// the libFuzzer target (tools/fuzz/FuzzProtect.swift, compiled together with
// this file) and by the replay of tools/fuzz/regressions in swift test. Each
// failure is a precondition (a trap the fuzzer reports). (One module in the
// fuzzer, hence the conditional import.)
#if canImport(EdgeProtect)
import EdgeProtect
#endif

func checkProtectProperties(_ b: UnsafeRawBufferPointer) {
    // The PROXY header: a decision at the whole header is the decision at
    // every longer input, and every shorter prefix asks for more.
    let whole = ProxyHeader.parse(b)
    switch whole {
    case .needMore(let want):
        precondition(want > b.count, "needMore(\(want)) with \(b.count) bytes")
    case .done(let consumed, let source, _):
        precondition(consumed > 0 && consumed <= b.count)
        let exact = ProxyHeader.parse(UnsafeRawBufferPointer(rebasing: b[0..<consumed]))
        precondition(exact == whole, "the header alone decides otherwise")
        for n in stride(from: 0, to: consumed, by: max(1, consumed / 16)) {
            guard case .needMore(let want) = ProxyHeader.parse(UnsafeRawBufferPointer(rebasing: b[0..<n])) else {
                preconditionFailure("prefix \(n) of a \(consumed)-byte header decided early")
            }
            precondition(want > n && want <= consumed)
        }
        if let s = source { precondition(IPAddress(text: s.text) == s, "source text round trip") }
    case .invalid:
        break
    }

    // Address text: what parses prints canonically, and that parses back to it.
    if b.count <= 64, let a = IPAddress(text: b) {
        let t = a.text
        precondition(IPAddress(text: t) == a && IPAddress(text: t)!.text == t, "address text round trip")
    }

    // Prefixes and lists built from the input's lines, against a brute-force model.
    let text = String(decoding: b.prefix(2048), as: UTF8.self)
    var prefixes: [(Prefix, PrefixList.Verdict)] = []
    var allow: [String] = [], deny: [String] = []
    for (i, line) in text.split(separator: "\n").prefix(16).enumerated() {
        guard let p = Prefix(String(line)) else { continue }
        precondition(Prefix(p.text) == p && p.contains(IPAddress(value: p.first)) && p.contains(IPAddress(value: p.last)), "prefix round trip")
        if prefixes.contains(where: { $0.0 == p }) { continue }
        let v: PrefixList.Verdict = i % 2 == 0 ? .deny : .allow
        prefixes.append((p, v))
        if v == .deny { deny.append(p.text) } else { allow.append(p.text) }
    }
    if let list = try? PrefixList(allow: allow, deny: deny) {
        let fallback: PrefixList.Verdict = deny.isEmpty && !allow.isEmpty ? .deny : .allow
        for (p, _) in prefixes {
            for x in [p.first, p.last, p.first &- 1, p.last &+ 1] {
                let a = IPAddress(value: x)
                let best = prefixes.filter { $0.0.contains(a) }.max { $0.0.bits < $1.0.bits }
                precondition(list.verdict(a) == (best?.1 ?? fallback), "verdict for \(a) disagrees with the model")
            }
        }
    }

    // Rates: what parses has a positive interval and a window of at least a second.
    if b.count <= 32, let spec = RateSpec(rate: String(decoding: b, as: UTF8.self), burst: Int(b.first ?? 0)) {
        precondition(spec.interval > 0 && spec.windowSeconds >= 1 && spec.quota == spec.burst + 1)
    }

    // Rules: a glob (pattern, then a NUL, then text) agrees with a brute-force
    // model; the text matchers agree with their definitions; the redirect
    // template keeps literal text as written.
    if let nul = b.firstIndex(of: 0), nul <= 64, b.count - nul <= 256 {
        let pat = Array(b[0..<nul]), text = UnsafeRawBufferPointer(rebasing: b[(nul + 1)...])
        let patString = String(decoding: pat, as: UTF8.self)
        if Array(patString.utf8) == pat {
            precondition(TextMatch(.glob, patString).matches(text) == globModel(pat[...], Array(text)[...]), "glob disagrees with the model")
            let t = Array(text)
            let contains = pat.isEmpty || (t.count >= pat.count && (0...(t.count - pat.count)).contains { Array(t[$0..<($0 + pat.count)]) == pat })
            precondition(TextMatch(.contains, patString).matches(text) == contains)
            precondition(TextMatch(.prefix, patString).matches(text) == t.starts(with: pat))
            precondition(TextMatch(.suffix, patString).matches(text) == (t.count >= pat.count && Array(t.suffix(pat.count)) == pat))
            if !pat.contains(36) {
                let empty = UnsafeRawBufferPointer(start: nil, count: 0)
                precondition(LocationTemplate(patString).expand(https: true, host: empty, path: empty, query: empty) == pat)
            }
        }
    }
    // Signatures: any bytes, any place, end (bounded lookups) without a trap;
    // the normalized text is never longer than the input.
    var scratch: [UInt8] = []
    Signatures.normalize(b, query: true, into: &scratch)
    precondition(scratch.count <= b.count)
    _ = Signatures.scan(b, query: true, Set(SignatureCategory.allCases), &scratch)
    _ = Signatures.scan(b, query: false, Set(SignatureCategory.allCases), &scratch)

    // Path rewrites on any path bytes: `$0` gives the path back unchanged,
    // a match is reported exactly when the expression matches, and the
    // result is the unmatched head and tail around the replacement.
    let path = UnsafeRawBufferPointer(rebasing: b.prefix(4096))
    let terminated = Array(path) + [0]   // (sanitizers' regexec interceptors read up to a NUL)
    for (pattern, replacement) in fuzzRewrites {
        let r = pattern.apply(path)
        let plain = terminated.withUnsafeBytes { pattern.regex.matches(UnsafeRawBufferPointer(rebasing: $0[..<path.count])) }
        precondition((r != nil) == plain, "\(replacement): match disagrees")
        if replacement == "$0", let r { precondition(r.elementsEqual(path), "$0 is the identity") }
        if let r { precondition(r.count <= path.count * 4 + 64, "bounded output") }
    }
}

let fuzzRewrites: [(PathRewrite, String)] = [("^/(.*)$", "$0"), ("/([a-z]+)/([0-9]+)", "/$2/$1/$1"), ("\\.php$", ".html"), ("(a|b)*c", "[$1]")].map { p, rep in
    var why = ""
    return (PathRewrite(pattern: p, replacement: rep, error: &why)!, rep)
}

/// `*` any run, `?` one byte, the rest literal: by dynamic programming over
/// (pattern prefix, text prefix), a different method from the matcher's.
func globModel(_ p: ArraySlice<UInt8>, _ s: ArraySlice<UInt8>) -> Bool {
    let p = Array(p), s = Array(s)
    var row = [Bool](repeating: false, count: s.count + 1)   // pattern prefix i against each text prefix
    row[0] = true
    for c in p {
        var next = [Bool](repeating: false, count: s.count + 1)
        if c == 42 {
            var any = false
            for j in 0...s.count { any = any || row[j]; next[j] = any }
        } else {
            for j in 0..<s.count where row[j] && (c == 63 || c == s[j]) { next[j + 1] = true }
        }
        row = next
    }
    return row[s.count]
}
