// Every input in tools/fuzz/regressions/ through the config loaders' property
// checks (ConfigProperties.swift), as a plain test, and the example tenants too.
import Foundation
import Testing
@testable import EdgeConfig

@Suite struct ConfigFuzzReplayTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let dir = root.appendingPathComponent("tools/fuzz/regressions")

    @Test func regressionsReplay() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.dir.path).sorted()
        #expect(names.contains { $0.hasPrefix("config-") })
        for n in names {
            let data = try Data(contentsOf: Self.dir.appendingPathComponent(n))
            Array(data).withUnsafeBytes { checkConfigProperties($0) }
        }
    }

    @Test func hugeDurationsAndSizesAreRefusedNotTrappedOn() {
        for (text, field) in [("{\"name\": \"x\", \"hosts\": [\"a.test\"], \"origins\": {\"b\": {\"servers\": [\"http://127.0.0.1:9000\"], \"fail_backoff\": 1e300}}}", "origins.b.fail_backoff"),
                              ("{\"name\": \"x\", \"hosts\": [\"a.test\"], \"origins\": {\"b\": {\"servers\": [\"http://127.0.0.1:9000\"], \"fail_backoff\": \"infs\"}}}", "origins.b.fail_backoff"),
                              ("{\"name\": \"x\", \"hosts\": [\"a.test\"], \"origins\": {\"b\": {\"servers\": [\"http://127.0.0.1:9000\"]}}, \"routes\": [{\"prefix\": \"/\", \"origin\": \"b\"}], \"limits\": {\"max_body\": \"9e99GiB\"}}", "limits.max_body"),
                              ("{\"name\": \"x\", \"hosts\": [\"a.test\"], \"\": 1}", "\"\"")] {
            #expect(throws: ConfigError.self) { try ConfigLoader.loadTenant(file: fuzzConfigFile, contents: Array(text.utf8)) }
            do { _ = try ConfigLoader.loadTenant(file: fuzzConfigFile, contents: Array(text.utf8)) }
            catch let e as ConfigError { #expect(e.field == field, "\(e)") }
            catch { Issue.record("\(error)") }
        }
        #expect(ConfigLoader.duration("infs") == nil && ConfigLoader.duration("1e300s") == nil && ConfigLoader.duration("1.5s") == 1500)
        #expect(ConfigLoader.size("9e99GiB") == nil && ConfigLoader.size("-5") == nil && ConfigLoader.size("1.5KiB") == 1536 && ConfigLoader.size("512") == 512)
    }

    @Test func theExampleTenantsHoldTheProperties() throws {
        for name in ["example.json", "api.json"] {
            let data = try Data(contentsOf: Self.root.appendingPathComponent("tenants/\(name)"))
            Array(data).withUnsafeBytes { checkConfigProperties($0) }
        }
    }
}
