// The JSON layer of the config loaders: reading a file into an object, the
// typed accessors that name the field in every error, durations and sizes.
// Foundation is fine here (start and reload only, never per request).
import Foundation

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
    let dict: [String: Any]
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
        guard let s = v as? String else { throw fail(key, "expected a string") }
        return s
    }

    func requiredString(_ key: String) throws -> String {
        guard let s = try string(key) else { throw fail(key, "is required") }
        guard !s.isEmpty else { throw fail(key, "must not be empty") }
        return s
    }

    func bool(_ key: String) throws -> Bool? {
        guard let v = dict[key] else { return nil }
        guard let n = v as? NSNumber, isJSONBool(v) else { throw fail(key, "expected true or false") }
        return n.boolValue
    }

    func int(_ key: String, min: Int = 0, max: Int = Int.max) throws -> Int? {
        guard let v = dict[key] else { return nil }
        guard let n = v as? NSNumber, !isJSONBool(v), n.doubleValue == Double(n.intValue) else {
            throw fail(key, "expected a whole number")
        }
        guard n.intValue >= min && n.intValue <= max else { throw fail(key, "must be between \(min) and \(max)") }
        return n.intValue
    }

    func strings(_ key: String) throws -> [String]? {
        guard let v = dict[key] else { return nil }
        guard let a = v as? [Any] else { throw fail(key, "expected a list of strings") }
        return try a.enumerated().map { i, e in
            guard let s = e as? String else { throw ConfigError(file: file, field: "\(field(key))[\(i)]", message: "expected a string") }
            return s
        }
    }

    func object(_ key: String) throws -> Node? {
        guard let v = dict[key] else { return nil }
        guard let d = v as? [String: Any] else { throw fail(key, "expected an object") }
        return Node(dict: d, file: file, path: field(key))
    }

    func objects(_ key: String) throws -> [Node]? {
        guard let v = dict[key] else { return nil }
        guard let a = v as? [Any] else { throw fail(key, "expected a list of objects") }
        return try a.enumerated().map { i, e in
            guard let d = e as? [String: Any] else { throw ConfigError(file: file, field: "\(field(key))[\(i)]", message: "expected an object") }
            return Node(dict: d, file: file, path: "\(field(key))[\(i)]")
        }
    }

    /// A duration: a number of seconds, or a string like "3.5s", "500ms", "2m".
    func millis(_ key: String) throws -> Int64? {
        guard let v = dict[key] else { return nil }
        if let n = v as? NSNumber, !isJSONBool(v) {
            guard n.doubleValue >= 0 else { throw fail(key, "must not be negative") }
            guard let ms = wholeNumber(n.doubleValue * 1000) else { throw fail(key, "is too large") }
            return ms
        }
        guard let s = v as? String, let ms = parseDuration(s) else { throw fail(key, "expected a duration like \"10s\", \"500ms\" or \"2m\"") }
        return ms
    }

    /// A size: a number of bytes, or a string like "8KiB", "1MiB", "2GiB", "512k".
    func bytes(_ key: String) throws -> Int64? {
        guard let v = dict[key] else { return nil }
        if let n = v as? NSNumber, !isJSONBool(v), n.int64Value >= 0 { return n.int64Value }
        guard let s = v as? String, let b = parseSize(s) else { throw fail(key, "expected a size like 8192, \"8KiB\" or \"1MiB\"") }
        return b
    }
}


func parseDuration(_ s: String) -> Int64? {
    let t = s.trimmingCharacters(in: .whitespaces)
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
    let t = s.trimmingCharacters(in: .whitespaces)
    let units: [(String, Int64)] = [("KiB", 1024), ("MiB", 1 << 20), ("GiB", 1 << 30), ("k", 1024), ("K", 1024), ("M", 1 << 20), ("G", 1 << 30), ("B", 1)]
    for (u, f) in units where t.hasSuffix(u) {
        guard let v = Double(t.dropLast(u.count)) else { return nil }
        return wholeNumber(v * Double(f))
    }
    return Int64(t).flatMap { $0 >= 0 ? $0 : nil }   // a size is never negative
}

/// Reads a whole file with plain read(2) calls until EOF.
func readWholeFile(_ path: String) -> Data? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var out = Data()
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = read(fd, &buf, buf.count)
        if n == 0 { return out }
        if n < 0 { if errno == EINTR { continue }; return nil }
        out.append(contentsOf: buf[0..<n])
    }
}

/// The JSON object in file `path`, or in `contents` when given (the bytes of that file, read already).
func readJSON(_ path: String, contents: Data? = nil) throws -> [String: Any] {
    guard let data = contents ?? readWholeFile(path) else {
        throw ConfigError(file: path, field: "", message: "cannot read file")
    }
    let obj: Any
    do { obj = try JSONSerialization.jsonObject(with: data) } catch {
        let detail = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)"
        throw ConfigError(file: path, field: "", message: "invalid JSON: \(detail)")
    }
    guard let d = obj as? [String: Any] else { throw ConfigError(file: path, field: "", message: "expected a JSON object at the top level") }
    return d
}

/// JSONSerialization returns booleans as a distinct NSNumber subclass.
public func isJSONBool(_ v: Any) -> Bool {
    type(of: v as AnyObject) == type(of: NSNumber(value: true) as AnyObject)
}
