// The JSON layer of the config loaders: reading a file into an object, the
// typed accessors that name the field in every error, durations and sizes.
// Start and reload only, never per request.
#if canImport(EdgeJSON)   // (the config and admin fuzzers compile these sources as one module: tools/fuzz/run.sh)
import EdgeJSON
import EdgeIO
import EdgeHTTP
#endif

/// A configuration error naming the file and the field.
public struct ConfigError: Error, CustomStringConvertible, Equatable {
    public var file: String
    public var field: String
    public var message: String
    public init(file: String, field: String, message: String) { self.file = file; self.field = field; self.message = message }
    public var description: String { field.isEmpty ? "\(file): \(message)" : "\(file): \(field): \(message)" }
}

/// A JSON object with its file and path, for error messages.
struct Node {
    let dict: [String: JSON]
    let file: String
    let path: String

    func field(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }
    func fail(_ key: String, _ message: String) -> ConfigError { ConfigError(file: file, field: field(key), message: message) }

    func allowOnly(_ keys: Set<String>) throws {
        for k in dict.keys.sorted() where !keys.contains(k) {
            throw ConfigError(file: file, field: field(k.isEmpty ? "\"\"" : k), message: "unknown field (expected one of: \(keys.sorted().joined(separator: ", ")))")
        }
    }

    func string(_ key: String) throws -> String? {
        guard let v = dict[key] else { return nil }
        guard let s = v.string else { throw fail(key, "expected a string") }
        return s
    }

    func requiredString(_ key: String) throws -> String {
        guard let s = try string(key) else { throw fail(key, "is required") }
        guard !s.isEmpty else { throw fail(key, "must not be empty") }
        return s
    }

    func bool(_ key: String) throws -> Bool? {
        guard let v = dict[key] else { return nil }
        guard let b = v.bool else { throw fail(key, "expected true or false") }
        return b
    }

    func int(_ key: String, min: Int = 0, max: Int = Int.max) throws -> Int? {
        guard let v = dict[key] else { return nil }
        guard let n = v.int else { throw fail(key, "expected a whole number") }
        guard n >= min && n <= max else { throw fail(key, "must be between \(min) and \(max)") }
        return n
    }

    func strings(_ key: String) throws -> [String]? {
        guard let v = dict[key] else { return nil }
        guard let a = v.array else { throw fail(key, "expected a list of strings") }
        return try a.enumerated().map { i, e in
            guard let s = e.string else { throw ConfigError(file: file, field: "\(field(key))[\(i)]", message: "expected a string") }
            return s
        }
    }

    func object(_ key: String) throws -> Node? {
        guard let v = dict[key] else { return nil }
        guard let d = v.object else { throw fail(key, "expected an object") }
        return Node(dict: d, file: file, path: field(key))
    }

    func objects(_ key: String) throws -> [Node]? {
        guard let v = dict[key] else { return nil }
        guard let a = v.array else { throw fail(key, "expected a list of objects") }
        return try a.enumerated().map { i, e in
            guard let d = e.object else { throw ConfigError(file: file, field: "\(field(key))[\(i)]", message: "expected an object") }
            return Node(dict: d, file: file, path: "\(field(key))[\(i)]")
        }
    }

    /// A duration: a number of seconds, or a string like "3.5s", "500ms", "2m".
    func millis(_ key: String) throws -> Int64? {
        guard let v = dict[key] else { return nil }
        if let n = v.number {
            guard n >= 0 else { throw fail(key, "must not be negative") }
            guard let ms = wholeNumber(n * 1000) else { throw fail(key, "is too large") }
            return ms
        }
        guard let s = v.string, let ms = parseDuration(s) else { throw fail(key, "expected a duration like \"10s\", \"500ms\" or \"2m\"") }
        return ms
    }

    /// A size: a number of bytes, or a string like "8KiB", "1MiB", "2GiB", "512k".
    func bytes(_ key: String) throws -> Int64? {
        guard let v = dict[key] else { return nil }
        if let n = v.number, n >= 0, let b = wholeNumber(n) { return b }
        guard let s = v.string, let b = parseSize(s) else { throw fail(key, "expected a size like 8192, \"8KiB\" or \"1MiB\"") }
        return b
    }
}


func parseDuration(_ s: String) -> Int64? {
    let t = s.trimmedOWS()
    let units: [(String, Double)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
    for (u, f) in units where t.hasSuffix(u) {
        guard let v = Double(t.dropLast(u.count)) else { return nil }
        return wholeNumber(v * f)
    }
    return nil
}

/// `v` as a count of milliseconds or bytes: nil when negative, not finite, or too
/// large to mean anything (2^62 and beyond: "1e300s" and "inf" are refused, not trapped on).
func wholeNumber(_ v: Double) -> Int64? {
    guard v.isFinite, v >= 0, v < 4.6e18 else { return nil }
    return Int64(v)
}

func parseSize(_ s: String) -> Int64? {
    let t = s.trimmedOWS()
    let units: [(String, Int64)] = [("KiB", 1024), ("MiB", 1 << 20), ("GiB", 1 << 30), ("k", 1024), ("K", 1024), ("M", 1 << 20), ("G", 1 << 30), ("B", 1)]
    for (u, f) in units where t.hasSuffix(u) {
        guard let v = Double(t.dropLast(u.count)) else { return nil }
        return wholeNumber(v * Double(f))
    }
    return Int64(t).flatMap { $0 >= 0 ? $0 : nil }   // a size is never negative
}

/// The JSON object in file `path`, or in `contents` when given (the bytes of that file, read already).
func readJSON(_ path: String, contents: [UInt8]? = nil) throws -> [String: JSON] {
    guard let data = contents ?? Files.read(path) else {
        throw ConfigError(file: path, field: "", message: "cannot read file")
    }
    let obj: JSON
    do { obj = try JSON.parse(data) } catch {
        throw ConfigError(file: path, field: "", message: "invalid JSON: \(error)")
    }
    guard let d = obj.object else { throw ConfigError(file: path, field: "", message: "expected a JSON object at the top level") }
    return d
}
