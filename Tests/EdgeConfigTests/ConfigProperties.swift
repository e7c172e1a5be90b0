// Properties of the config loaders on any bytes taken as a tenant file and as the
// server file, shared by the fuzz target (tools/fuzz/FuzzConfig.swift) and the replay
// test (ConfigFuzzReplayTests). run.sh compiles this file into one module with the
// sources of EdgeHTTP, EdgeProtect, EdgeUpstream and EdgeConfig.
import Foundation
#if canImport(EdgeConfig)
@testable import EdgeConfig
#endif

/// Where the fuzzed file claims to live: a directory that does not exist, so a
/// file the config names beside it (certificates, access lists, error pages) is
/// never read from anywhere real.
let fuzzConfigFile = "/nonexistent-edge-fuzz/tenants/fuzz.json"

/// Traps unless the bytes load, twice alike, or are refused with a ConfigError that
/// names this file and (for anything past the JSON syntax) the field at fault: a bad
/// file is answered, never a crash or an error that points nowhere.
func checkConfigProperties(_ p: UnsafeRawBufferPointer) {
    let data = [UInt8](p)
    func refusal(_ e: Error) -> ConfigError {
        guard let c = e as? ConfigError else { preconditionFailure("refused without naming file and field: \(e)") }
        precondition(c.file == fuzzConfigFile, "the error names another file: \(c)")
        precondition(!c.message.isEmpty, "an error with no message")
        precondition(!c.field.isEmpty || c.message.hasPrefix("invalid JSON") || c.message.hasPrefix("expected a JSON object"),
                     "an error past the JSON syntax that names no field: \(c)")
        return c
    }
    do {
        let t = try ConfigLoader.loadTenant(file: fuzzConfigFile, contents: data)
        for h in t.hosts { precondition(ConfigLoader.validHostPattern(h) && h == ConfigLoader.normalizeHost(h), "a host kept as given: \(h)") }
        precondition((try? ConfigLoader.loadTenant(file: fuzzConfigFile, contents: data)) == t, "a tenant loads differently twice")
    } catch {
        let e = refusal(error)
        do { _ = try ConfigLoader.loadTenant(file: fuzzConfigFile, contents: data); preconditionFailure("refused once, loaded the next time") }
        catch { precondition(refusal(error) == e, "refused differently twice") }
    }
    do {
        let s = try ConfigLoader.loadServer(file: fuzzConfigFile, contents: data)
        precondition((try? ConfigLoader.loadServer(file: fuzzConfigFile, contents: data)) == s, "the server file loads differently twice")
    } catch {
        _ = refusal(error)
    }
    // Durations and sizes as the files spell them: a count, never a trap.
    let text = String(decoding: p, as: UTF8.self)
    if let d = ConfigLoader.duration(text) { precondition(d >= 0) }
    if let s = ConfigLoader.size(text) { precondition(s >= 0, "a negative size") }
}
