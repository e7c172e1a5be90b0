// Path text and file helpers (Sources/EdgeIO/Files.swift): the path rules
// against Foundation's NSString (which the config loaders used before), the
// file calls on real files in a temporary directory.
import Testing
import Foundation
import Glibc
@testable import EdgeIO

@Suite struct FilesTests {
    // (Not "." here: Foundation's NSString traps on it; see below.)
    static let paths = ["/a/b/c.json", "c.json", "/c", "/", "a/b/", "a//b", "/a/b//", "", "..", "./x", "a/./b/../c",
                        "/../a", "/a/../../b", "../a/b", "a/..", "/a/./", "tenants/x.y.json", ".hidden", "/x/.hidden", "a/b.c/d"]

    @Test func directoryAndLastComponentAgreeWithNSString() {
        for p in FilesTests.paths {
            #expect(Path.directory(of: p) == (p as NSString).deletingLastPathComponent, "directory of \(p)")
            #expect(Path.lastComponent(p) == (p as NSString).lastPathComponent, "last component of \(p)")
        }
        #expect(Path.directory(of: ".") == "" && Path.lastComponent(".") == ".")
    }

    @Test func joinAndExtensionAgreeWithNSString() {
        for base in ["", "/", "/etc", "/etc/", "rel", "rel/"] {
            for name in ["x.json", "a/b", "certs/k.pem"] {
                #expect(Path.join(base, name) == (base as NSString).appendingPathComponent(name), "\(base) + \(name)")
            }
        }
        for n in ["b.json", "b", ".json", "a.b.c", "x."] {
            #expect(Path.deletingExtension(n) == (n as NSString).deletingPathExtension, "\(n)")
        }
        #expect(Path.resolve("/abs/x", against: "/etc") == "/abs/x")
        #expect(Path.resolve("x", against: "/etc") == "/etc/x")
    }

    @Test func standardizeTakesBackDotsLexically() {
        #expect(Path.standardize("/a/./b/../c/") == "/a/c")
        #expect(Path.standardize("/../a") == "/a")
        #expect(Path.standardize("//a//b") == "/a/b")
        #expect(Path.standardize("/") == "/")
        #expect(Path.standardize("a/../../b") == "../b")
        #expect(Path.standardize("./") == ".")
        // Absolute paths agree with NSString's reading where no symbolic link is involved.
        for p in ["/a/./b/../c/", "/x//y/", "/a/b/.."] {
            #expect(Path.standardize(p) == (p as NSString).standardizingPath, "\(p)")
        }
    }

    @Test func filesAreWrittenReadListedAndRemoved() throws {
        let dir = NSTemporaryDirectory() + "edge-files-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        #expect(Files.makeDirectories(dir + "/a/b/c"))
        defer { _ = try? FileManager.default.removeItem(atPath: dir) }
        #expect(Files.isDirectory(dir + "/a/b/c") && !Files.isDirectory(dir + "/nothing"))
        #expect(Files.makeDirectories(dir + "/a/b/c"))   // there already: fine
        let big = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        #expect(Files.write(dir + "/a/f.bin", big))
        #expect(Files.read(dir + "/a/f.bin") == big)
        #expect(Files.replace(dir + "/a/f.bin", Array("é\n".utf8)))
        #expect(Files.readText(dir + "/a/f.bin") == "é\n")
        #expect(!Files.exists(dir + "/a/f.bin.tmp"))
        #expect(Files.write(dir + "/a/bad.txt", [0x61, 0xff]))
        #expect(Files.readText(dir + "/a/bad.txt") == nil)   // not UTF-8
        #expect(Files.read(dir + "/a") == nil)                // a directory
        #expect(Files.read(dir + "/missing") == nil)
        #expect(Set(Files.list(dir + "/a") ?? []) == ["b", "f.bin", "bad.txt"])
        #expect(Files.list(dir + "/missing") == nil)
        #expect(Files.isReadable(dir + "/a/f.bin") && Files.isWritable(dir + "/a"))
        #expect(Files.remove(dir + "/a/f.bin") && !Files.exists(dir + "/a/f.bin") && !Files.remove(dir + "/a/f.bin"))
        #expect(Files.write(dir + "/a/x", [1]))
        #expect(!Files.makeDirectories(dir + "/a/x/y") && errno == ENOTDIR)   // a file in the way
        #expect(!Files.makeDirectories(dir + "/a/x") && errno == ENOTDIR)
    }
}
