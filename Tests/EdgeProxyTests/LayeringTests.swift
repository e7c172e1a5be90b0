// The seams other transports stand on, checked in the sources: HTTP/1.1 bytes
// towards clients are written by the HTTP/1 writer alone (a second transport,
// HTTP/2, implements the writer's calls and touches nothing else), and the
// origin leg's HTTP/1.1 request syntax stays in Forward.swift.
import Foundation
import Testing

@Suite struct LayeringTests {
    /// Swift files of a module directory, by name, with comments left out.
    func sources(_ module: String) throws -> [String: String] {
        let dir = repoRoot.appendingPathComponent("Sources/\(module)")
        var out: [String: String] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: dir.path) where name.hasSuffix(".swift") {
            let text = try String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8)
            out[name] = text.split(separator: "\n", omittingEmptySubsequences: false)
                .filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("//") }
                .joined(separator: "\n")
        }
        return out
    }

    /// The files of `module` that contain `needle`.
    func files(_ module: String, containing needle: String) throws -> Set<String> {
        Set(try sources(module).filter { $0.value.contains(needle) }.map(\.key))
    }

    @Test func onlyTheWriterFramesClientResponses() throws {
        // Chunk framing: the writer (responses) and the origin leg (request bodies).
        #expect(try files("EdgeProxy", containing: "ChunkFramer") == ["HTTP1Writer.swift", "Forward.swift"])
        // Status lines, framing fields and the end of a head: EdgeHTTP's serializer, called by the writer.
        #expect(try files("EdgeProxy", containing: "HTTP1Serializer") == ["HTTP1Writer.swift"])
        #expect(try files("EdgeAdmin", containing: "HTTP1Serializer") == ["AdminServer.swift"])
        // No file writes HTTP/1.1 syntax by hand, except the origin request line.
        #expect(try files("EdgeProxy", containing: "HTTP/1.1") == ["Forward.swift"])
        #expect(try files("EdgeAdmin", containing: "HTTP/1.1").isEmpty)
        for literal in ["Content-Length: ", "Transfer-Encoding: chunked", "Connection: close", "\\r\\n\\r\\n"] {
            let found = try files("EdgeProxy", containing: literal)
            #expect(found.isSubset(of: ["HTTP1Writer.swift", "Forward.swift"]), "\(literal) written in \(found)")
        }
        // Stored bodies leave without a copy through the writer's sendStored only.
        let setters = try sources("EdgeProxy").filter { $0.value.split(separator: "\n").contains { $0.contains("pendingBody = ") && !$0.contains("pendingBody = nil") } }
        #expect(Set(setters.keys) == ["HTTP1Writer.swift"])
    }

    @Test func thePipelineCallsTheStorageInterface() throws {
        // The memory tier is named where it is made, nowhere else: every call goes through CacheStorage.
        #expect(try files("EdgeProxy", containing: "MemoryStore") == ["Runtime.swift"])
        #expect(try files("EdgeAdmin", containing: "MemoryStore").isEmpty)
    }

    /// edged links no Foundation (ARCHITECTURE.md: ~6 MB of resident memory per process):
    /// no module but edgectl imports it, or FoundationEssentials, or Dispatch.
    @Test func nothingEdgedLinksImportsFoundation() throws {
        let modules = try FileManager.default.contentsOfDirectory(atPath: repoRoot.appendingPathComponent("Sources").path)
            .filter { $0 != "edgectl" && !$0.hasPrefix("C") }
        #expect(modules.contains("EdgeConfig") && modules.contains("EdgeAdmin") && modules.contains("edged"))
        for module in modules {
            for (name, text) in try sources(module) {
                for lib in ["import Foundation", "import FoundationEssentials", "import Dispatch"] {
                    #expect(!text.contains(lib), "\(module)/\(name) has \(lib)")
                }
            }
        }
    }

    @Test func thePurePartsImportNoIO() throws {
        for module in ["EdgeHTTP", "EdgeCache", "EdgeUpstream", "EdgeProtect", "EdgeJSON"] {
            for (name, text) in try sources(module) {
                for io in ["import EdgeIO", "import EdgeProxy", "import Foundation", "import EdgeTLS"] {
                    #expect(!text.contains(io), "\(module)/\(name) has \(io)")
                }
            }
        }
    }
}
