// The server file's `log_format` (the access log's form; see LogFormat in Model.swift).
#if canImport(EdgeJSON)   // (the config and admin fuzzers compile these sources as one module: tools/fuzz/run.sh)
import EdgeJSON
#endif

/// `log_format`: "json", "combined", "common", or a list of JSON field keys.
func loadLogFormat(_ root: Node) throws -> LogFormat {
    let known = LogField.allCases.map(\.key).joined(separator: ", ")
    if let list = root.dict["log_format"]?.array {
        var fields: [LogField] = []
        for (i, item) in list.enumerated() {
            guard let k = item.string, let f = LogField(key: k) else {
                throw root.fail("log_format[\(i)]", "\(item) is not a log field (one of \(known))")
            }
            fields.append(f)
        }
        guard !fields.isEmpty else { throw root.fail("log_format", "lists no field") }
        return .json(LogFieldSet(fields))
    }
    switch try root.string("log_format") {
    case "json": return .json(.all)
    case "combined": return .combined
    case "common": return .common
    default: throw root.fail("log_format", "expected \"json\", \"combined\", \"common\" or a list of fields (\(known))")
    }
}
